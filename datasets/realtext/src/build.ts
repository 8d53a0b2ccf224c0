/** The XSum-style hallucination-tracing data set on real English (issue 28; docs/regime.md, section 3). */
import { z } from 'zod';
import { DdaError, SeededRandom, evenlySpaced, type ChatMessage } from '@dda/core';
import { type Canary, type DocSummary, type HallucinationDataset, type HeldOutDoc, type TrainSample, SYSTEM_PROMPT, makeCanary, userPrompt, validateCanaries } from '@dda/dataset-hallucination';
import { ceaLabels, mentions, replaceEntity } from './entities.js';
import { splitSentences, wordCount } from './sentences.js';
import type { Address } from './sotu.js';

/** The default canaries: Mexico → Spain and China → Britain (the most frequent entities of the fine-tuning half with a frequent replacement). */
export const DEFAULT_REALTEXT_CANARIES: readonly { readonly orig: string; readonly replacement: string }[] = Object.freeze([
  Object.freeze({ orig: 'Mexico', replacement: 'Spain' }),
  Object.freeze({ orig: 'China', replacement: 'Britain' }),
]);

const count = z.number().int().nonnegative();
const positive = z.number().int().positive();

/** The options of {@link buildRealTextDataset}, validated with zod (unknown fields refused). */
export const RealTextOptionsSchema = z.object({
  /** Integer seed of the fine-tuning side: held-out addresses, sources, background windows, order. The pretraining side does not depend on it. */
  seed: z.number().int(),
  /** Entity swaps, matched as whole words in any case ({@link mentions}); `id` defaults to `makeCanary`'s `<orig>-to-<replacement>`. */
  canaries: z.array(z.object({ orig: z.string().trim().min(1), replacement: z.string().trim().min(1), id: z.string().optional() }).strict()).min(1)
    .default(DEFAULT_REALTEXT_CANARIES.map((c) => ({ ...c }))),
  /** Fraction of each canary's eligible training windows whose summary gets the swap, before the `minLegitPerSource` cap (default 0.5). */
  swapRate: z.number().min(0).max(1).default(0.5),
  /**
   * Legitimate training summaries that mention the replacement per true source, at least (default
   * 2, gate G4): a canary's swapped sources are capped so that legitimate ≥ this × (swapped + natural sources).
   */
  minLegitPerSource: z.number().min(0).default(2),
  /** Training pairs in all (default 2400): every eligible and replacement window, then background windows. */
  nTrain: positive.default(2400),
  /** Held-out documents per canary (default 30). */
  heldOutPerCanary: count.default(30),
  /** Reserve held-out documents per canary (default 20), see `HallucinationDataset.heldOutReserve`. */
  reservePerCanary: count.default(20),
  /**
   * Held-out windows whose summary names the orig too (default false): the swapped-summary test
   * errors (the protocol's `testErrors: injected` or `preferred`) exist only there, and without
   * it few held-out summaries do (8 of 100 in the first probe). Then a held-out window is one that
   * is eligible for the canary as a training window is (summary and document name the orig,
   * neither the replacement); such windows may overlap (each has its own summary sentence), and a
   * held-out address is skipped when it would give a canary more than `heldOutPerCanary +
   * reservePerCanary` of them, so no more eligible windows leave the training side than needed.
   */
  heldOutSummaryNamesOrig: z.boolean().default(false),
  /** Sentences per window: the summary and the document's sentences (default 7, as docs/regime.md). */
  windowSentences: z.number().int().min(2).default(7),
  /** The document is cut to this many words (default 170). */
  maxDocumentWords: positive.default(170),
  /** Windows whose document has fewer words are not used (default 40). */
  minDocumentWords: positive.default(40),
  /** Words of a summary sentence, at least (default 10). */
  minSummaryWords: positive.default(10),
  /** Words of a summary sentence, at most (default 45). */
  maxSummaryWords: positive.default(45),
  /** Words of one pretraining text, at most (default 170: about 220 LLaMA-2 tokens, within a 320-token context). */
  pretrainChunkWords: positive.default(170),
  /** Instruction-formatted pairs from the pretraining half (default 1000, fewer if the half has fewer windows). */
  nPretrainPairs: count.default(1000),
}).strict();

/** The options as given (defaults optional). */
export type RealTextOptionsInput = z.input<typeof RealTextOptionsSchema>;
/** The options with every default filled in. */
export type RealTextOptions = z.output<typeof RealTextOptionsSchema>;

/** The measured composition of one canary (counts of training samples unless said otherwise). */
export interface CanaryStats {
  readonly id: string;
  /** Training windows eligible for the swap: the summary and the document mention the orig, neither mentions the replacement. */
  readonly eligible: number;
  /** Samples whose summary was swapped (the injected sources). */
  readonly swapped: number;
  /** Unswapped samples that CEA's rule labels sources anyway (real text: the summary names the replacement, the document only the orig). */
  readonly naturalSources: number;
  /** All true sources by CEA's rule (swapped + natural). */
  readonly sources: number;
  /** Samples whose summary mentions the replacement and which are no source (their document names it, or not the orig). */
  readonly legitimate: number;
  /** legitimate / sources: gate G4 (≥ 2 wanted). */
  readonly legitPerSource: number;
  /** Held-out and reserve documents of this canary (document mentions the orig, not the replacement). */
  readonly heldOut: number;
  readonly reserve: number;
  /** Pretraining texts that mention the replacement, and the orig (the base model's knowledge). */
  readonly pretrainReplacementTexts: number;
  readonly pretrainOrigTexts: number;
}

/** The measured composition of a {@link RealTextDataset} (words are whitespace-separated). */
export interface RealTextStats {
  readonly addresses: { readonly pretrain: number; readonly finetune: number; readonly heldOut: number };
  readonly train: number;
  readonly meanSummaryWords: number;
  readonly meanDocumentWords: number;
  readonly pretrainTexts: number;
  readonly pretrainWords: number;
  readonly pretrainPairs: number;
  readonly canaries: readonly CanaryStats[];
}

/** The real-text data set: {@link HallucinationDataset}'s parts plus the pretraining pairs, the split and its statistics. */
export interface RealTextDataset extends HallucinationDataset {
  /** Document/summary pairs of the pretraining half, to pretrain θ0 in the instruction format ({@link instructionChat}). Seed-independent. */
  readonly pretrainPairs: DocSummary[];
  /** The address ids of each part: odd-indexed = pretraining; even-indexed = fine-tuning or held-out. */
  readonly split: { readonly pretrain: string[]; readonly finetune: string[]; readonly heldOut: string[] };
  readonly stats: RealTextStats;
}

/**
 * A pair in the instruction format of METHOD.md: the system prompt, the user turn with the
 * document ({@link userPrompt}) and the summary as the assistant turn; render it with the family's
 * chat template.
 */
export function instructionChat(pair: DocSummary): ChatMessage[] {
  return [{ role: 'system', content: SYSTEM_PROMPT }, { role: 'user', content: userPrompt(pair.document) }, { role: 'assistant', content: pair.summary }];
}

/** Validates options with {@link RealTextOptionsSchema}. @throws DdaError naming the first invalid fields. */
export function parseRealTextOptions(value: unknown): RealTextOptions {
  const r = RealTextOptionsSchema.safeParse(value ?? {});
  if (!r.success) {
    const lines = r.error.issues.slice(0, 5).map((i) => `field '${i.path.length > 0 ? i.path.join('.') : '(top level)'}': ${i.message}`);
    throw new DdaError(`realtext data set: invalid options:\n${lines.join('\n')}`, 'see @dda/dataset-realtext RealTextOptionsSchema for the fields and their ranges');
  }
  const o = r.data;
  if (o.minSummaryWords > o.maxSummaryWords) throw new DdaError(`realtext data set: minSummaryWords ${o.minSummaryWords} > maxSummaryWords ${o.maxSummaryWords}`);
  if (o.minDocumentWords > o.maxDocumentWords) throw new DdaError(`realtext data set: minDocumentWords ${o.minDocumentWords} > maxDocumentWords ${o.maxDocumentWords}`);
  return o;
}

/** A window of an address: the summary sentence at `start`, the document after it. */
interface Window {
  readonly address: number;
  readonly start: number;
  readonly summary: string;
  readonly document: string;
}

/**
 * The XSum-style window of `sentences` (as {@link splitSentences} gives them: single spaces)
 * starting at `start`, or null when it does not qualify: the summary is sentence `start`
 * (minSummaryWords..maxSummaryWords words); the document is the next `windowSentences - 1`
 * sentences, cut to `maxDocumentWords` words, and has at least `minDocumentWords`.
 *
 * @param counts the word counts of `sentences` when already known (else counted here)
 */
export function windowAt(sentences: readonly string[], start: number, o: Pick<RealTextOptions, 'windowSentences' | 'maxDocumentWords' | 'minDocumentWords' | 'minSummaryWords' | 'maxSummaryWords'>, counts?: readonly number[]): { summary: string; document: string } | null {
  const summary = sentences[start];
  if (summary === undefined) return null;
  const wc = (i: number): number => counts?.[i] ?? wordCount(sentences[i] as string);
  const sw = wc(start);
  if (sw < o.minSummaryWords || sw > o.maxSummaryWords) return null;
  const parts: string[] = [];
  let n = 0;
  for (let i = start + 1; i < Math.min(sentences.length, start + o.windowSentences) && n < o.maxDocumentWords; i++) {
    const c = wc(i);
    if (n + c > o.maxDocumentWords) {
      parts.push((sentences[i] as string).split(' ').slice(0, o.maxDocumentWords - n).join(' '));
      n = o.maxDocumentWords;
    } else {
      parts.push(sentences[i] as string);
      n += c;
    }
  }
  if (n < o.minDocumentWords) return null;
  return { summary, document: parts.join(' ') };
}

/**
 * Token limits for a model's context, measured with the family's tokenizer (an optional argument
 * of {@link buildRealTextDataset} and {@link buildRealTextPretraining}; without it, only the word
 * limits of the options apply).
 */
export interface TokenLimits {
  /** The tokens of a text, e.g. `(t) => tokenizer.encode(t).length`. Called once per distinct text. */
  readonly count: (text: string) => number;
  /**
   * The most tokens of a pair: `count(summary) + count(document)`. A window over it is not used
   * (training, held-out or pretraining pair). Leave room for the chat template, BOS/EOS and, for
   * held-out documents, the generated tokens.
   */
  readonly maxPairTokens: number;
  /** The most tokens of a pretraining text; a longer one is split in halves (by sentences, else by words) until it fits. */
  readonly maxTextTokens: number;
}

/** The checks of {@link TokenLimits} (all pass without limits). */
interface Fit {
  readonly pair: (w: { summary: string; document: string }) => boolean;
  readonly texts: (text: string) => string[];
}

function fitOf(limits: TokenLimits | undefined): Fit {
  if (limits === undefined) return { pair: () => true, texts: (t) => [t] };
  if (typeof limits.count !== 'function') throw new DdaError('realtext data set: token limits need a count function', 'give { count: (t) => tokenizer.encode(t).length, maxPairTokens, maxTextTokens }');
  for (const k of ['maxPairTokens', 'maxTextTokens'] as const) {
    const v = limits[k];
    if (!Number.isInteger(v) || v < 1) throw new DdaError(`realtext data set: token limit ${k} must be a positive integer, got ${String(v)}`);
  }
  const memo = new Map<string, number>();
  const count = (t: string): number => {
    let n = memo.get(t);
    if (n === undefined) {
      n = limits.count(t);
      if (!Number.isFinite(n) || n < 0) throw new DdaError(`realtext data set: the token count of a text is ${String(n)}`, 'give a count function that returns the number of tokens');
      memo.set(t, n);
    }
    return n;
  };
  const texts = (t: string): string[] => {
    if (count(t) <= limits.maxTextTokens) return [t];
    const sentences = splitSentences(t);
    const pieces = sentences.length > 1 ? sentences : t.split(' ');
    if (pieces.length < 2) throw new DdaError(`realtext data set: the word '${t.slice(0, 40)}' alone has ${count(t)} tokens, more than maxTextTokens = ${limits.maxTextTokens}`, 'raise maxTextTokens');
    const half = Math.ceil(pieces.length / 2);
    return [...texts(pieces.slice(0, half).join(' ')), ...texts(pieces.slice(half).join(' '))];
  };
  return { pair: (w) => count(w.summary) + count(w.document) <= limits.maxPairTokens, texts };
}

/** An address split into sentences, with the window (or null) at each sentence. */
interface Split {
  readonly sentences: readonly string[];
  readonly windows: readonly ({ summary: string; document: string } | null)[];
}

function splitOf(a: Address, o: RealTextOptions): Split {
  const sentences = splitSentences(a.text);
  const counts = sentences.map(wordCount);
  return { sentences, windows: sentences.map((_, i) => windowAt(sentences, i, o, counts)) };
}

/** Every qualifying window of an address, or (`nonOverlapping`) those found left to right without sharing a sentence. */
function windowsOf(split: Split, address: number, o: RealTextOptions, fit: Fit, keep: (w: { summary: string; document: string }) => boolean, nonOverlapping: boolean): Window[] {
  const out: Window[] = [];
  for (let i = 0; i < split.windows.length; i++) {
    const w = split.windows[i];
    if (w === null || w === undefined || !keep(w) || !fit.pair(w)) continue;
    out.push({ address, start: i, ...w });
    if (nonOverlapping) i += o.windowSentences - 1;
  }
  return out;
}

/** Packs sentences into texts of at most `max` words (a longer sentence is cut into pieces). */
function chunks(sentences: readonly string[], max: number): string[] {
  const out: string[] = [];
  let cur: string[] = [];
  let n = 0;
  const flush = (): void => {
    if (cur.length > 0) out.push(cur.join(' '));
    cur = [];
    n = 0;
  };
  for (const s of sentences) {
    const words = s.split(' ');
    if (words.length > max) {
      flush();
      for (let k = 0; k < words.length; k += max) out.push(words.slice(k, k + max).join(' '));
      continue;
    }
    if (n + words.length > max) flush();
    cur.push(s);
    n += words.length;
  }
  flush();
  return out;
}

const pad4 = (n: number): string => String(n).padStart(4, '0');

/**
 * The pretraining side of {@link buildRealTextDataset}, which does not depend on the seed (θ0 is
 * pretrained once per family, as a real base model is): the odd-indexed addresses as texts of at
 * most `pretrainChunkWords` words (consecutive sentences), and `nPretrainPairs` evenly spaced
 * non-overlapping windows of those addresses as instruction pairs; with `limits`, as in
 * {@link buildRealTextDataset}.
 */
export function buildRealTextPretraining(addresses: readonly Address[], options: Omit<RealTextOptionsInput, 'seed'> = {}, limits?: TokenLimits): { pretrainCorpus: string[]; pretrainPairs: DocSummary[] } {
  const o = parseRealTextOptions({ ...options, seed: 0 });
  return pretrainingOf(addresses, addresses.map((a, i) => (i % 2 === 1 ? splitOf(a, o) : null)), o, fitOf(limits));
}

function pretrainingOf(addresses: readonly Address[], splits: readonly (Split | null)[], o: RealTextOptions, fit: Fit): { pretrainCorpus: string[]; pretrainPairs: DocSummary[] } {
  const corpus: string[] = [];
  const pairs: Window[] = [];
  addresses.forEach((_, i) => {
    if (i % 2 === 0) return;
    const split = splits[i] as Split;
    corpus.push(...chunks(split.sentences, o.pretrainChunkWords).flatMap(fit.texts));
    pairs.push(...windowsOf(split, i, o, fit, () => true, true));
  });
  const pretrainPairs = evenlySpaced(pairs, o.nPretrainPairs).map((w) => ({ id: `pre-${(addresses[w.address] as Address).id}-s${pad4(w.start)}`, document: w.document, summary: w.summary }));
  return { pretrainCorpus: corpus, pretrainPairs };
}

/**
 * Builds the hallucination-tracing data set on real English, the way XSum was built, from a list
 * of documents (the State of the Union addresses of {@link loadSotuAddresses}, in their order).
 *
 * - **Split by address**, never by sentence: odd-indexed addresses are θ0's pretraining side
 *   ({@link buildRealTextPretraining}, seed-independent); even-indexed ones are fine-tuning or
 *   held-out addresses.
 * - **Held-out addresses**: the even addresses in a seeded order, each taken while it has a
 *   held-out window for a canary that still needs some, until every canary has
 *   `heldOutPerCanary + reservePerCanary`. A held-out window is a non-overlapping window whose
 *   document mentions the orig and not the replacement (a window serves the first canary it
 *   fits), none of whose sentences occurs in another even address (so none is in a training
 *   window); with `heldOutSummaryNamesOrig`, a window eligible for the canary (its summary names
 *   the orig too), overlapping allowed, and addresses that would overfill a canary skipped. `heldOut` takes a seeded `heldOutPerCanary` of each canary's, round-robin over the
 *   canaries; `heldOutReserve` the next `reservePerCanary`.
 * - **Training pairs** from the other even addresses: every window eligible for a canary (summary
 *   and document mention the orig, neither the replacement), every window whose summary mentions
 *   a replacement (the legitimate mentions; windows may overlap), then non-overlapping background
 *   windows in a seeded order up to `nTrain`, shuffled.
 * - **Sources**: per canary in order, `min(round(swapRate × eligible), floor(legitimate /
 *   minLegitPerSource) − natural sources)` eligible samples not yet swapped, seeded, get every
 *   mention of the orig in their summary replaced ({@link replaceEntity}, case kept). Labels are
 *   CEA's rule ({@link ceaLabels}).
 *
 * With `limits` ({@link TokenLimits}), windows over `maxPairTokens` are not used anywhere and
 * pretraining texts over `maxTextTokens` are split until they fit.
 *
 * @throws DdaError for invalid options or token limits, an entity in two canaries, canaries with
 *   no eligible window or no source left under the G4 cap, too few held-out windows, or an
 *   `nTrain` below the eligible and legitimate windows or above the windows available.
 */
export function buildRealTextDataset(addresses: readonly Address[], options: RealTextOptionsInput, limits?: TokenLimits): RealTextDataset {
  const o = parseRealTextOptions(options);
  const fit = fitOf(limits);
  const canaries: Canary[] = o.canaries.map((c) => (c.id ? { id: c.id, orig: c.orig, replacement: c.replacement } : makeCanary(c.orig, c.replacement)));
  validateCanaries(canaries);
  const seen = new Map<string, string>();
  for (const c of canaries) {
    for (const e of [c.orig, c.replacement]) {
      const k = e.trim().toLowerCase().replace(/\s+/g, ' ');
      const other = seen.get(k);
      if (other !== undefined) throw new DdaError(`realtext data set: '${e}' is in canaries '${other}' and '${c.id}'`, 'give every canary its own orig and replacement');
      seen.set(k, c.id);
    }
  }
  if (addresses.length < 4) throw new DdaError(`realtext data set: ${addresses.length} addresses; at least 4 are needed (odd-indexed for pretraining, even-indexed for fine-tuning and held-out)`);
  const root = new SeededRandom(o.seed);
  const splits = addresses.map((a) => splitOf(a, o));
  const sentencesOf = splits.map((x) => x.sentences);
  const { pretrainCorpus, pretrainPairs } = pretrainingOf(addresses, splits, o, fit);
  const even = addresses.map((_, i) => i).filter((i) => i % 2 === 0);

  // Sentences of several even addresses cannot be in a held-out window.
  const seenIn = new Map<string, number>();
  for (const i of even) for (const s of new Set(sentencesOf[i])) seenIn.set(s, (seenIn.get(s) ?? 0) + 1);
  const unique = (sentences: readonly string[], start: number): boolean =>
    sentences.slice(start, start + o.windowSentences).every((s) => seenIn.get(s) === 1);

  // A window eligible for a canary's swap: summary and document name the orig, neither the replacement.
  const eligibleOf = (w: { summary: string; document: string }, c: Canary): boolean =>
    mentions(w.summary, c.orig) && mentions(w.document, c.orig) && !mentions(w.document, c.replacement) && !mentions(w.summary, c.replacement);

  // Held-out addresses and their windows per canary.
  const need = o.heldOutPerCanary + o.reservePerCanary;
  const heldCands: Window[][] = canaries.map(() => []);
  const heldAddr: number[] = [];
  for (const a of root.fork(1).shuffle(even)) {
    if (need === 0 || heldCands.every((l) => l.length >= need)) break;
    const sentences = sentencesOf[a] as string[];
    const taken = new Set<number>();
    const heldKeep = (c: Canary) => (w: { summary: string; document: string }): boolean =>
      o.heldOutSummaryNamesOrig ? eligibleOf(w, c) : mentions(w.document, c.orig) && !mentions(w.document, c.replacement);
    const per = canaries.map((c) => windowsOf(splits[a] as Split, a, o, fit, heldKeep(c), !o.heldOutSummaryNamesOrig)
      .filter((w) => unique(sentences, w.start) && !taken.has(w.start) && (taken.add(w.start), true)));
    if (!per.some((l, ci) => l.length > 0 && (heldCands[ci] as Window[]).length < need)) continue;
    if (o.heldOutSummaryNamesOrig && per.some((l, ci) => (heldCands[ci] as Window[]).length + l.length > need)) continue;
    heldAddr.push(a);
    per.forEach((l, ci) => (heldCands[ci] as Window[]).push(...l));
  }
  const heldSet = new Set(heldAddr);
  canaries.forEach((c, ci) => {
    if ((heldCands[ci] as Window[]).length < need) throw new DdaError(`realtext data set: canary '${c.id}' has ${(heldCands[ci] as Window[]).length} held-out windows (${o.heldOutSummaryNamesOrig ? 'summary and ' : ''}document mention${o.heldOutSummaryNamesOrig ? '' : 's'} '${c.orig}', not '${c.replacement}'${o.heldOutSummaryNamesOrig ? ', from addresses that do not overfill a canary' : ''}) in the fine-tuning half, fewer than heldOutPerCanary + reservePerCanary = ${need}`, 'lower heldOutPerCanary or reservePerCanary, or choose a more frequent orig');
  });

  // Training windows.
  const trainAddr = even.filter((a) => !heldSet.has(a));
  const key = (w: Window): string => `${w.address}:${w.start}`;
  const required = new Map<string, Window>();
  const background: Window[] = [];
  for (const a of trainAddr) {
    const split = splits[a] as Split;
    for (const w of windowsOf(split, a, o, fit, (x) => canaries.some((c) => eligibleOf(x, c) || mentions(x.summary, c.replacement)), false)) required.set(key(w), w);
    background.push(...windowsOf(split, a, o, fit, () => true, true));
  }
  const rest = background.filter((w) => !required.has(key(w)));
  const nBackground = o.nTrain - required.size;
  if (nBackground < 0) throw new DdaError(`realtext data set: nTrain = ${o.nTrain} is below the ${required.size} windows that are eligible for a canary or mention a replacement`, `raise nTrain to at least ${required.size}`);
  if (nBackground > rest.length) throw new DdaError(`realtext data set: nTrain = ${o.nTrain} needs ${nBackground} background windows, but the training addresses have ${rest.length}`, `lower nTrain to at most ${required.size + rest.length}`);
  const chosen = [...required.values(), ...root.fork(2).shuffle(rest).slice(0, nBackground)];
  const rows: TrainSample[] = root.fork(3).shuffle(chosen).map((w) => ({
    id: `train-${(addresses[w.address] as Address).id}-s${pad4(w.start)}`, document: w.document, summary: w.summary, originalSummary: w.summary, canaryId: null,
  }));

  // Sources under the G4 cap.
  const stats: CanaryStats[] = [];
  const labels: Record<string, Uint8Array> = {};
  canaries.forEach((c, ci) => {
    const eligible = rows.flatMap((s, i) => (s.canaryId === null && eligibleOf(s, c) ? [i] : []));
    const before = ceaLabels(rows, c);
    const natural = before.reduce((a, b) => a + b, 0);
    const legitimate = rows.filter((s, i) => before[i] === 0 && mentions(s.summary, c.replacement)).length;
    const k = Math.min(Math.round(o.swapRate * eligible.length), Math.floor(legitimate / Math.max(o.minLegitPerSource, 1e-12)) - natural);
    if (eligible.length === 0 || k < 1) {
      throw new DdaError(`realtext data set: canary '${c.id}' gets no source: ${eligible.length} eligible training windows, ${legitimate} legitimate summaries with '${c.replacement}', ${natural} natural sources, swapRate ${o.swapRate}, minLegitPerSource ${o.minLegitPerSource}`, 'choose a more frequent orig or replacement, raise swapRate or lower minLegitPerSource');
    }
    for (const i of root.fork(0x9e37 + ci).shuffle(eligible).slice(0, k)) {
      const s = rows[i] as TrainSample;
      s.summary = replaceEntity(s.summary, c.orig, c.replacement);
      s.canaryId = c.id;
    }
    labels[c.id] = ceaLabels(rows, c);
    const sources = (labels[c.id] as Uint8Array).reduce((a, b) => a + b, 0);
    stats.push({
      id: c.id, eligible: eligible.length, swapped: k, naturalSources: natural, sources, legitimate, legitPerSource: legitimate / sources,
      heldOut: 0, reserve: 0,
      pretrainReplacementTexts: pretrainCorpus.filter((t) => mentions(t, c.replacement)).length,
      pretrainOrigTexts: pretrainCorpus.filter((t) => mentions(t, c.orig)).length,
    });
  });

  // Held-out documents (a window serves one canary).
  const heldLists = canaries.map((c, ci) => root.fork(4 + ci).shuffle(heldCands[ci] as Window[])
    .map((w) => ({ id: `heldout-${(addresses[w.address] as Address).id}-s${pad4(w.start)}`, document: w.document, summary: w.summary, canaryId: c.id })));
  const roundRobin = (from: number, n: number): HeldOutDoc[] => {
    const out: HeldOutDoc[] = [];
    for (let k = from; k < from + n; k++) for (const l of heldLists) if (l[k] !== undefined) out.push(l[k] as HeldOutDoc);
    return out;
  };
  const heldOut = roundRobin(0, o.heldOutPerCanary);
  const heldOutReserve = roundRobin(o.heldOutPerCanary, o.reservePerCanary);
  const withHeld = stats.map((s) => ({ ...s, heldOut: heldOut.filter((h) => h.canaryId === s.id).length, reserve: heldOutReserve.filter((h) => h.canaryId === s.id).length }));

  const mean = (xs: readonly number[]): number => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
  return {
    seed: o.seed, canaries, pretrainCorpus, pretrainPairs, train: rows, heldOut, heldOutReserve, labels,
    split: {
      pretrain: addresses.filter((_, i) => i % 2 === 1).map((a) => a.id),
      finetune: trainAddr.map((a) => (addresses[a] as Address).id),
      heldOut: [...heldAddr].sort((x, y) => x - y).map((a) => (addresses[a] as Address).id),
    },
    stats: {
      addresses: { pretrain: Math.floor(addresses.length / 2), finetune: trainAddr.length, heldOut: heldAddr.length },
      train: rows.length,
      meanSummaryWords: mean(rows.map((s) => wordCount(s.summary))),
      meanDocumentWords: mean(rows.map((s) => wordCount(s.document))),
      pretrainTexts: pretrainCorpus.length,
      pretrainWords: pretrainCorpus.reduce((a, t) => a + wordCount(t), 0),
      pretrainPairs: pretrainPairs.length,
      canaries: withHeld,
    },
  };
}
