/** The deterministic synthetic hallucination-tracing data set builder. */
import { DdaError, SeededRandom } from '@dda/core';
import {
  type Canary,
  type DocSummary,
  type TrainSample,
  DEFAULT_CANARIES,
  injectCanaries,
  trueSourceLabels,
  validateCanaries,
} from './canaries.js';
import { PLACES, factGroups, generateNews } from './news.js';
import { padSummary } from './padding.js';

/** A held-out document for test-error collection: it contains a canary's orig and not its replacement. */
export interface HeldOutDoc extends DocSummary {
  /** The canary this document was drawn for (its main place is that canary's orig). */
  canaryId: string;
}

/** A complete synthetic hallucination-tracing data set. */
export interface HallucinationDataset {
  /** The seed it was built from. */
  seed: number;
  /** The injected canaries (entity swaps). */
  canaries: Canary[];
  /**
   * Plain text for pretraining the base model θ0 (no instruction format): encyclopedic facts,
   * plain `document : ... summary : ...` pairs, and knowledge-bias text about each canary's
   * replacement entity. Disjoint from the train and held-out documents.
   */
  pretrainCorpus: string[];
  /** The fine-tuning set, with canaries injected into some summaries. */
  train: TrainSample[];
  /** Documents for test-error collection, each containing some canary's orig and not its replacement. */
  heldOut: HeldOutDoc[];
  /**
   * More held-out documents of the same kind, in the order to use them, for sources whose test
   * errors fall short of a minimum (see the experiment's `minErrorsPerSource`); empty for a user's data.
   * Drawn after everything else, so they change nothing of the other parts.
   */
  heldOutReserve: HeldOutDoc[];
  /**
   * True-source labels per canary id: per train index, 1 iff the summary contains the replacement,
   * the document contains the orig and the document does not contain the replacement
   * (whole-word; see {@link trueSourceLabels}).
   */
  labels: Record<string, Uint8Array>;
}

/** Options of {@link buildHallucinationDataset}. */
export interface BuildOptions {
  /** Integer seed; the same seed gives a deep-equal data set. */
  seed: number;
  /** Number of fine-tuning samples (default 240). */
  nTrain?: number;
  /** Number of held-out documents, split round-robin across the canaries (default 40). */
  nHeldOut?: number;
  /**
   * Number of pretraining items (default 1500): about 10% encyclopedic paragraphs, plain
   * document/summary pairs, and a `biasRate` share (default 30%) of knowledge-bias text about
   * the canaries' replacements.
   */
  nPretrain?: number;
  /**
   * The canaries (default England → China and Wales → Scotland). Their orig and replacement must
   * be places of the generator ({@link PLACES}), spelled in lowercase.
   */
  canaries?: Canary[];
  /** Fraction of eligible training samples (document contains orig) whose summary is swapped (default 0.6). */
  swapRate?: number;
  /** Reserve held-out documents (default 4 × nHeldOut), see {@link HallucinationDataset.heldOutReserve}. */
  heldOutReserve?: number;
  /**
   * Fraction of the pretraining corpus that is knowledge-bias text about the canaries' replacement
   * entities (default 0.3; at most 0.9, with 10% encyclopedic text and the rest plain pairs). Higher
   * = the base model θ0 already favours the replacements more, the knowledge bias DDA's debias targets.
   */
  biasRate?: number;
  /**
   * Sentences appended to every summary that its document does not predict (default 0: none; see
   * {@link padSummary}): people, days and numbers drawn from a generator seeded by the document, in
   * train, held-out and pretraining pairs alike (docs/regime.md, section 2). Raising it makes the canary a
   * smaller part of each response; 0 leaves the data set exactly as without the option.
   */
  summaryPadding?: number;
}

/** Fraction of generated documents that mention a second place in passing. */
const SECOND_PLACE_RATE = 0.1;
/** Weight of a canary's orig in the place distribution of the training set (others weigh 1). */
const ORIG_WEIGHT = 2;

function checkCount(name: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new DdaError(`${name} must be an integer >= ${min}, got ${String(v)}`);
  }
  return v;
}

/** Counts proportional to weights summing exactly to n (largest remainder). */
function allocate(n: number, weights: readonly number[]): number[] {
  const total = weights.reduce((a, b) => a + b, 0);
  const exact = weights.map((w) => (n * w) / total);
  const counts = exact.map((x) => Math.floor(x));
  let left = n - counts.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of order) {
    if (left <= 0) break;
    counts[i] = (counts[i] as number) + 1;
    left--;
  }
  return counts;
}

/** A second place for a document about `place`, or null (with probability 1 - SECOND_PLACE_RATE). */
function maybeSecondPlace(r: SeededRandom, place: string, exclude: ReadonlySet<string>): string | null {
  if (r.next() >= SECOND_PLACE_RATE) return null;
  const options = PLACES.filter((p) => p !== place && !exclude.has(p));
  return options.length === 0 ? null : r.pick(options);
}

/** Generates a news item whose document is not in `taken` (and records it there). */
function freshNews(
  r: SeededRandom,
  place: string,
  exclude: ReadonlySet<string>,
  taken: Set<string>,
): { document: string; summary: string } {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const item = generateNews(r, place, maybeSecondPlace(r, place, exclude));
    if (!taken.has(item.document)) {
      taken.add(item.document);
      return item;
    }
  }
  throw new DdaError(`could not generate a new distinct document about '${place}'`, 'ask for fewer documents');
}

/**
 * Builds the synthetic hallucination-tracing data set (METHOD.md, "The benchmark: hallucination
 * tracing"), deterministically from `o.seed`.
 *
 * - train: `nTrain` news items; each canary's orig is twice as likely as another place as the main
 *   place (exact quotas, shuffled); about 10% of documents mention a second place. Canaries are
 *   injected with {@link injectCanaries} at `swapRate`.
 * - heldOut: `nHeldOut` fresh documents (not equal to any train document), round-robin over the
 *   canaries, about the canary's orig; a second place, when mentioned, is never a canary entity.
 * - pretrainCorpus: shuffled encyclopedic paragraphs about every place and entity; plain
 *   `document : ... summary : ...` pairs with true summaries (so the base model can already
 *   summarise by copying the place); and knowledge-bias text: news documents and headlines about
 *   each canary's replacement in the same topics and sentence forms as the training data, so the
 *   base model already scores the replacement highly. No pretraining document equals a train or
 *   held-out document.
 * - labels: {@link trueSourceLabels} per canary.
 * - `summaryPadding` K > 0: every summary of a pair (train, held-out, pretraining pairs; not the
 *   headlines) gets K {@link padSummary} sentences, seeded by its document.
 *
 * Independent parts draw from forked streams of one {@link SeededRandom}.
 */
export function buildHallucinationDataset(o: BuildOptions): HallucinationDataset {
  if (o === null || typeof o !== 'object') throw new DdaError('buildHallucinationDataset needs an options object with a seed');
  if (!Number.isInteger(o.seed)) throw new DdaError(`seed must be an integer, got ${String(o.seed)}`);
  const seed = o.seed;
  const nTrain = checkCount('nTrain', o.nTrain ?? 240, 1);
  const nHeldOut = checkCount('nHeldOut', o.nHeldOut ?? 40, 0);
  const nPretrain = checkCount('nPretrain', o.nPretrain ?? 1500, 0);
  const swapRate = o.swapRate ?? 0.6;
  const biasRate = o.biasRate ?? 0.3;
  if (typeof biasRate !== 'number' || !(biasRate >= 0 && biasRate <= 0.9)) throw new DdaError(`biasRate must be a number in [0, 0.9], got ${String(biasRate)}`);
  const canaries: Canary[] = (o.canaries ?? DEFAULT_CANARIES).map((c) => ({ id: c.id, orig: c.orig, replacement: c.replacement }));
  validateCanaries(canaries);
  if (canaries.length === 0) throw new DdaError('at least one canary is needed');
  for (const c of canaries) {
    for (const w of [c.orig, c.replacement]) {
      if (!PLACES.includes(w)) {
        throw new DdaError(`canary '${c.id}': '${w}' is not a place of the synthetic generator`, `use one of: ${PLACES.join(', ')}`);
      }
    }
  }

  const padding = o.summaryPadding ?? 0;
  const pad = (item: { document: string; summary: string }): string => padSummary(item.document, item.summary, padding);
  padSummary('', '', padding); // validates the option before any work

  const root = new SeededRandom(seed);
  const canaryEntities = new Set(canaries.flatMap((c) => [c.orig, c.replacement]));
  const origs = new Set(canaries.map((c) => c.orig));

  // Training documents.
  const counts = allocate(
    nTrain,
    PLACES.map((p) => (origs.has(p) ? ORIG_WEIGHT : 1)),
  );
  const places = root.fork(1).shuffle(PLACES.flatMap((p, i) => Array.from({ length: counts[i] as number }, () => p)));
  const taken = new Set<string>();
  const trainRng = root.fork(2);
  const rows: DocSummary[] = places.map((place, i) => {
    const item = freshNews(trainRng, place, new Set(), taken);
    return { id: `train-${String(i).padStart(4, '0')}`, document: item.document, summary: pad(item) };
  });
  const train = injectCanaries(rows, canaries, swapRate, root.fork(3).int(2 ** 31));

  // Held-out documents.
  const heldRng = root.fork(4);
  const heldOut: HeldOutDoc[] = [];
  for (let i = 0; i < nHeldOut; i++) {
    const c = canaries[i % canaries.length] as Canary;
    const item = freshNews(heldRng, c.orig, canaryEntities, taken);
    heldOut.push({ id: `heldout-${String(i).padStart(4, '0')}`, document: item.document, summary: pad(item), canaryId: c.id });
  }

  // Pretraining corpus.
  const preRng = root.fork(5);
  const nFacts = Math.round(0.1 * nPretrain);
  const nBias = Math.round(biasRate * nPretrain);
  const nPairs = nPretrain - nFacts - nBias;
  const corpus: string[] = [];
  const groups = factGroups();
  for (let k = 0; k < nFacts; k++) {
    corpus.push(preRng.shuffle(groups[k % groups.length] as readonly string[]).join(' '));
  }
  for (let k = 0; k < nPairs; k++) {
    const item = freshNews(preRng, PLACES[k % PLACES.length] as string, new Set(), taken);
    corpus.push(`document : ${item.document} summary : ${pad(item)}`);
  }
  for (let k = 0; k < nBias; k++) {
    const c = canaries[k % canaries.length] as Canary;
    if (preRng.next() < 0.5) {
      const item = freshNews(preRng, c.replacement, new Set([c.orig]), taken);
      corpus.push(`${item.document} ${pad(item)}`);
    } else {
      const headlines = [0, 1, 2].map(() => freshNews(preRng, c.replacement, new Set([c.orig]), taken).summary);
      corpus.push(headlines.join(' '));
    }
  }
  const pretrainCorpus = preRng.shuffle(corpus);

  // Reserve held-out documents: a stream of its own, drawn last.
  const reserveRng = root.fork(6);
  const heldOutReserve: HeldOutDoc[] = [];
  for (let i = 0; i < (o.heldOutReserve ?? 4 * nHeldOut); i++) {
    const c = canaries[i % canaries.length] as Canary;
    const item = freshNews(reserveRng, c.orig, canaryEntities, taken);
    heldOutReserve.push({ id: `heldout-r${String(i).padStart(4, '0')}`, document: item.document, summary: pad(item), canaryId: c.id });
  }

  const labels: Record<string, Uint8Array> = {};
  for (const c of canaries) labels[c.id] = trueSourceLabels(train, c);
  return { seed, canaries, pretrainCorpus, train, heldOut, heldOutReserve, labels };
}

/**
 * The sorted distinct whitespace-separated words of a data set's texts: pretraining corpus, train
 * documents and summaries (swapped and original), held-out documents and summaries. (The
 * instruction prompt's words are not included; see {@link SYSTEM_PROMPT} and {@link userPrompt}.)
 */
export function vocabularyOf(ds: HallucinationDataset): string[] {
  const words = new Set<string>();
  const add = (t: string): void => {
    for (const w of t.split(/\s+/)) if (w.length > 0) words.add(w);
  };
  ds.pretrainCorpus.forEach(add);
  for (const s of ds.train) {
    add(s.document);
    add(s.summary);
    add(s.originalSummary);
  }
  for (const h of ds.heldOut) {
    add(h.document);
    add(h.summary);
  }
  return [...words].sort();
}
