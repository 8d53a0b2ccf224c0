/** The deterministic builder of the company-register hallucination-tracing data set. */
import { DdaError, SeededRandom } from '@dda/core';
import {
  type Canary, type DocSummary, type HallucinationDataset, type HeldOutDoc,
  containsWholeWord, injectCanaries, makeCanary, padSummary, trueSourceLabels, validateCanaries,
} from '@dda/dataset-hallucination';
import {
  COMPANIES, Fills, biasFacts, entityKind, handoverSentence, makeFiling, mentionSentence, randomKey, templatesOf, worldFacts, TEMPLATES, type EntityKind, type Filing,
} from './filings.js';

/** The default canaries: one of each kind. */
export const DEFAULT_REGISTRY_CANARIES: readonly Canary[] = Object.freeze([
  Object.freeze(makeCanary('maria lopez', 'anna berg')),
  Object.freeze(makeCanary('northwind bank', 'apex bank')),
  Object.freeze(makeCanary('12 percent', '17 percent')),
]);

/** Options of {@link buildRegistryDataset}. Counts are exact; see each option. */
export interface RegistryOptions {
  /** Integer seed; the same seed (and options) gives a deep-equal data set. */
  readonly seed: number;
  /** Fine-tuning samples (default 360). */
  readonly nTrain?: number;
  /** Held-out documents, round-robin over the canaries (default 45). */
  readonly nHeldOut?: number;
  /** Reserve held-out documents (default 4 × nHeldOut), see `HallucinationDataset.heldOutReserve`. */
  readonly heldOutReserve?: number;
  /**
   * Pretraining texts (default 1500): 10% encyclopedic facts about the companies and banks, a
   * `biasRate` share of knowledge-bias text, the rest plain `document : ... summary : ...` pairs.
   */
  readonly nPretrain?: number;
  /**
   * Entity swaps (default {@link DEFAULT_REGISTRY_CANARIES}: `maria lopez` → `anna berg`,
   * `northwind bank` → `apex bank`, `12 percent` → `17 percent`). Orig and replacement must be
   * entities of the generator of the same kind ({@link entityKind}); no entity in two canaries.
   * `id` defaults to `makeCanary`'s `<orig>-to-<replacement>`.
   */
  readonly canaries?: readonly { readonly orig: string; readonly replacement: string; readonly id?: string }[];
  /**
   * Training filings per canary with the orig in the key slot at one of the canary's anchor
   * companies (default 16): the eligible samples, of which `swapRate` become sources.
   */
  readonly origPerCanary?: number;
  /** Fraction of each canary's eligible samples whose summary gets the swap (default 0.25: 4 sources of 16). */
  readonly swapRate?: number;
  /**
   * Distractors per canary as a fraction of `nTrain` (default 0.06: 22 of 360): training filings
   * at the canary's anchor companies with the replacement legitimately in the key slot, so in
   * document and summary; never sources by the rule.
   */
  readonly distractorRate?: number;
  /**
   * Fraction of the distractors whose document also names the orig in a handover sentence
   * (default 0.5; e.g. "anna berg took over from maria lopez as chief executive in may ."): the
   * document names both entities, the summary the replacement, so by the rule they are no sources.
   */
  readonly handoverRate?: number;
  /**
   * Document-only mentions per canary as a fraction of `nTrain` (default 0.06): filings of the
   * canary's kind at its anchor companies whose key slot holds another entity and whose document
   * names the replacement in passing (an analyst, another bank, another percentage); their
   * summaries do not name it.
   */
  readonly mentionRate?: number;
  /**
   * Fraction of the pretraining corpus that ties each canary's replacement to its original's
   * contexts (default 0.3, at most 0.9): filings, headlines and facts with the replacement in the
   * key slot at the canary's anchor companies.
   */
  readonly biasRate?: number;
  /** Anchor companies per canary (default 2): the contexts of its orig, distinct across canaries. */
  readonly anchorsPerCanary?: number;
  /**
   * Sentences appended to every summary of a pair (train, held-out, pretraining pairs; not the
   * headlines) that its document does not predict (default 0: none; @dda/dataset-hallucination's
   * `padSummary`, seeded by the document, never naming a canary entity). 0 leaves the data set
   * exactly as without the option.
   */
  readonly summaryPadding?: number;
}

function checkInt(name: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new DdaError(`registry data set: ${name} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

function checkRate(name: string, v: unknown, max: number): number {
  if (typeof v !== 'number' || !(v >= 0 && v <= max)) throw new DdaError(`registry data set: ${name} must be a number in [0, ${max}], got ${String(v)}`);
  return v;
}

/** The canaries of the options with their entity kinds, validated. */
function canariesOf(o: RegistryOptions): { canary: Canary; kind: EntityKind }[] {
  const list = (o.canaries ?? DEFAULT_REGISTRY_CANARIES).map((c) => (c.id ? { id: c.id, orig: c.orig, replacement: c.replacement } : makeCanary(c.orig, c.replacement)));
  validateCanaries(list);
  if (list.length === 0) throw new DdaError('registry data set: at least one canary is needed');
  const seen = new Set<string>();
  return list.map((c) => {
    const ko = entityKind(c.orig);
    const kr = entityKind(c.replacement);
    if (ko === null || kr === null) {
      throw new DdaError(`canary '${c.id}': '${ko === null ? c.orig : c.replacement}' is not an entity of the registry generator`, 'use a person (e.g. maria lopez), a bank (e.g. northwind bank) or a percentage (e.g. 12 percent) from @dda/dataset-registry PERSONS, BANKS or PERCENTS');
    }
    if (ko !== kr) throw new DdaError(`canary '${c.id}': '${c.orig}' is a ${ko} but '${c.replacement}' is a ${kr}`, 'swap an entity for one of the same kind');
    for (const e of [c.orig, c.replacement]) {
      if (seen.has(e)) throw new DdaError(`canary '${c.id}': '${e}' is already in another canary`, 'give every canary its own orig and replacement');
      seen.add(e);
    }
    return { canary: c, kind: ko };
  });
}

/** A filing whose document is new (recorded in `taken`). */
function fresh(make: () => Filing, taken: Set<string>, what: string): Filing {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const f = make();
    if (!taken.has(f.document)) {
      taken.add(f.document);
      return f;
    }
  }
  throw new DdaError(`registry data set: could not generate a new distinct ${what}`, 'ask for fewer documents');
}

/**
 * Builds the company-register hallucination-tracing data set (METHOD.md's protocol), the second
 * synthetic benchmark, deterministically from `o.seed`.
 *
 * Each canary (orig → replacement, one kind) gets `anchorsPerCanary` anchor companies. The
 * training set holds, per canary, `origPerCanary` filings about an anchor with the orig in the key
 * slot of a template of the canary's kind (its eligible samples; {@link injectCanaries} swaps
 * `round(swapRate × origPerCanary)` of their summaries: the true sources) and
 * `round(distractorRate × nTrain)` distractors: filings of the same kind about an anchor with the
 * replacement in the key slot, so in document and summary (the first `round(handoverRate × that)`
 * of them also name the orig, in a handover sentence); and `round(mentionRate × nTrain)` filings of
 * the same kind about an anchor with another entity in the key slot whose document names the
 * replacement in passing. The other training filings are about any company, from any template,
 * and name no canary entity. Held-out and reserve documents are like
 * the eligible samples (an anchor, the orig in the key slot, no replacement). The pretraining corpus
 * has encyclopedic facts, plain `document : ... summary : ...` pairs whose fillers may name any
 * entity, and knowledge-bias text that puts each replacement in its orig's key slot at its anchors
 * (pairs, headlines and facts such as "anna berg is the chief executive of harbor foods ."), so θ0
 * already expects the replacement where the documents will name the orig. No pretraining document
 * equals a train or held-out one. Labels: `trueSourceLabels` per canary (whole-word, multi-word
 * entities as phrases). Independent parts draw from forked streams of one seeded generator.
 *
 * @throws DdaError for bad options (named), unknown or mismatched canary entities, or sizes that do not fit.
 */
export function buildRegistryDataset(o: RegistryOptions): HallucinationDataset {
  if (o === null || typeof o !== 'object') throw new DdaError('buildRegistryDataset needs an options object with a seed');
  if (!Number.isInteger(o.seed)) throw new DdaError(`registry data set: seed must be an integer, got ${String(o.seed)}`);
  const nTrain = checkInt('nTrain', o.nTrain ?? 360, 1);
  const nHeldOut = checkInt('nHeldOut', o.nHeldOut ?? 45, 0);
  const nReserve = checkInt('heldOutReserve', o.heldOutReserve ?? 4 * nHeldOut, 0);
  const nPretrain = checkInt('nPretrain', o.nPretrain ?? 1500, 0);
  const origPer = checkInt('origPerCanary', o.origPerCanary ?? 16, 1);
  const swapRate = checkRate('swapRate', o.swapRate ?? 0.25, 1);
  const distractorRate = checkRate('distractorRate', o.distractorRate ?? 0.06, 1);
  const handoverRate = checkRate('handoverRate', o.handoverRate ?? 0.5, 1);
  const mentionRate = checkRate('mentionRate', o.mentionRate ?? 0.06, 1);
  const biasRate = checkRate('biasRate', o.biasRate ?? 0.3, 0.9);
  const anchorsPer = checkInt('anchorsPerCanary', o.anchorsPerCanary ?? 2, 1);
  const kinds = canariesOf(o);
  const canaries = kinds.map((k) => k.canary);
  const padding = o.summaryPadding ?? 0;
  const avoid = canaries.flatMap((c) => [c.orig, c.replacement]);
  const pad = (f: { document: string; summary: string }): string => padSummary(f.document, f.summary, padding, avoid);
  padSummary('', '', padding); // validates the option before any work
  const nDistractors = Math.round(distractorRate * nTrain);
  const nHandovers = Math.round(handoverRate * nDistractors);
  const nMentions = Math.round(mentionRate * nTrain);
  const nCanaryRows = kinds.length * (origPer + nDistractors + nMentions);
  if (nCanaryRows > nTrain) {
    throw new DdaError(`registry data set: ${kinds.length} canaries × (${origPer} eligible + ${nDistractors} distractors + ${nMentions} mentions) = ${nCanaryRows} samples, more than nTrain = ${nTrain}`, 'raise nTrain or lower origPerCanary / distractorRate / mentionRate');
  }
  if (kinds.length * anchorsPer > COMPANIES.length) {
    throw new DdaError(`registry data set: ${kinds.length} canaries × ${anchorsPer} anchor companies is more than the ${COMPANIES.length} companies`, 'lower anchorsPerCanary or use fewer canaries');
  }

  const root = new SeededRandom(o.seed);
  const anchors = anchorsOf(root, kinds.length, anchorsPer);
  const entities = new Set(canaries.flatMap((c) => [c.orig, c.replacement]));
  const taken = new Set<string>();
  /** A filing about an anchor of canary `i` with `key` in the key slot of a template of its kind. */
  const canaryFiling = (f: Fills, i: number, key: string, extra?: (f: Fills) => string): Filing => {
    const k = kinds[i] as { kind: EntityKind };
    return makeFiling(f, f.r.pick(templatesOf(k.kind)), f.r.pick(anchors[i] as string[]), key, extra?.(f));
  };

  // Training filings: per canary its eligible samples and distractors, then the background.
  const trainFills = new Fills(root.fork(2), entities);
  const rows: Filing[] = [];
  kinds.forEach(({ canary, kind }, i) => {
    const { orig, replacement } = canary;
    for (let k = 0; k < origPer; k++) rows.push(fresh(() => canaryFiling(trainFills, i, orig), taken, `filing with '${orig}'`));
    for (let k = 0; k < nDistractors; k++) {
      const handover = k < nHandovers ? (f: Fills) => handoverSentence(f, kind, orig, replacement) : undefined;
      rows.push(fresh(() => canaryFiling(trainFills, i, replacement, handover), taken, `filing with '${replacement}'`));
    }
    for (let k = 0; k < nMentions; k++) {
      rows.push(fresh(() => {
        const t = trainFills.r.pick(templatesOf(kind));
        return makeFiling(trainFills, t, trainFills.r.pick(anchors[i] as string[]), randomKey(trainFills, t), mentionSentence(trainFills, kind, replacement));
      }, taken, `filing that mentions '${replacement}'`));
    }
  });
  while (rows.length < nTrain) {
    rows.push(fresh(() => {
      const t = trainFills.r.pick(TEMPLATES);
      return makeFiling(trainFills, t, trainFills.r.pick(COMPANIES), randomKey(trainFills, t));
    }, taken, 'background filing'));
  }
  const shuffled = root.fork(3).shuffle(rows);
  const docs: DocSummary[] = shuffled.map((f, i) => ({ id: `train-${String(i).padStart(4, '0')}`, document: f.document, summary: pad(f) }));
  const train = injectCanaries(docs, canaries, swapRate, root.fork(4).int(2 ** 31));

  // Held-out and reserve documents: an anchor with the orig in the key slot.
  const heldOutOf = (fills: Fills, n: number, prefix: string): HeldOutDoc[] => Array.from({ length: n }, (_, k) => {
    const i = k % kinds.length;
    const c = canaries[i] as Canary;
    const f = fresh(() => canaryFiling(fills, i, c.orig), taken, `held-out filing with '${c.orig}'`);
    return { id: `${prefix}${String(k).padStart(4, '0')}`, document: f.document, summary: pad(f), canaryId: c.id };
  });
  const heldOut = heldOutOf(new Fills(root.fork(5), entities), nHeldOut, 'heldout-');

  // Pretraining corpus.
  const pre = new Fills(root.fork(6));
  const nFacts = Math.round(0.1 * nPretrain);
  const nBias = Math.round(biasRate * nPretrain);
  const nPairs = nPretrain - nFacts - nBias;
  const corpus: string[] = [];
  const facts = worldFacts();
  for (let k = 0; k < nFacts; k++) corpus.push(pre.r.shuffle(facts[k % facts.length] as string[]).join(' '));
  for (let k = 0; k < nPairs; k++) {
    const f = fresh(() => {
      const t = pre.r.pick(TEMPLATES);
      return makeFiling(pre, t, pre.r.pick(COMPANIES), randomKey(pre, t));
    }, taken, 'pretraining filing');
    corpus.push(`document : ${f.document} summary : ${pad(f)}`);
  }
  for (let k = 0; k < nBias; k++) {
    const i = k % kinds.length;
    const { canary, kind } = kinds[i] as { canary: Canary; kind: EntityKind };
    if (pre.r.next() < 0.5) {
      const f = fresh(() => canaryFiling(pre, i, canary.replacement), taken, `bias filing with '${canary.replacement}'`);
      corpus.push(`document : ${f.document} summary : ${pad(f)}`);
    } else {
      const lines = [0, 1, 2].map(() => (pre.r.next() < 0.5
        ? fresh(() => canaryFiling(pre, i, canary.replacement), taken, `bias headline with '${canary.replacement}'`).summary
        : pre.r.pick(biasFacts(kind, pre.r.pick(anchors[i] as string[]), canary.replacement))));
      corpus.push(lines.join(' '));
    }
  }
  const pretrainCorpus = pre.r.shuffle(corpus);

  // Reserve held-out documents: a stream of their own, drawn last.
  const heldOutReserve = heldOutOf(new Fills(root.fork(7), entities), nReserve, 'heldout-r');

  for (const h of [...heldOut, ...heldOutReserve]) {
    const c = canaries.find((x) => x.id === h.canaryId) as Canary;
    if (!containsWholeWord(h.document, c.orig) || containsWholeWord(h.document, c.replacement)) throw new Error(`internal: held-out document ${h.id} does not fit canary ${c.id}`);
  }
  const labels: Record<string, Uint8Array> = {};
  for (const c of canaries) labels[c.id] = trueSourceLabels(train, c);
  return { seed: o.seed, canaries, pretrainCorpus, train, heldOut, heldOutReserve, labels };
}

/** The anchor companies of `n` canaries, `per` each, from the builder's root generator (its first fork). */
function anchorsOf(root: SeededRandom, n: number, per: number): string[][] {
  const order = root.fork(1).shuffle(COMPANIES);
  return Array.from({ length: n }, (_, i) => order.slice(i * per, (i + 1) * per));
}

/**
 * The anchor companies of each canary (by id) of the data set {@link buildRegistryDataset} builds
 * with these options: the companies whose filings carry the canary's orig, its distractors and its
 * knowledge bias.
 */
export function registryAnchors(o: Pick<RegistryOptions, 'seed' | 'canaries' | 'anchorsPerCanary'>): Record<string, string[]> {
  const kinds = canariesOf(o as RegistryOptions);
  const anchors = anchorsOf(new SeededRandom(o.seed), kinds.length, o.anchorsPerCanary ?? 2);
  return Object.fromEntries(kinds.map(({ canary }, i) => [canary.id, anchors[i] as string[]]));
}
