/**
 * Entity-swap canaries: the injected "sources" of the hallucination-tracing benchmark
 * (METHOD.md, "The benchmark: hallucination tracing"), their injection into a training set, and
 * the true-source labels.
 */
import { DdaError, SeededRandom } from '@dda/core';
import { containsWholeWord, replaceWholeWord } from './words.js';

/**
 * One entity swap orig → replacement (e.g. England → China). Matching is whole-word and
 * case-sensitive, so the spelling must match the data (the synthetic data set is all lowercase).
 */
export interface Canary {
  /** Kebab-case identifier, e.g. `'england-to-china'`; the key of the labels. */
  id: string;
  /** The entity found in the source documents (e.g. `'england'`). */
  orig: string;
  /** The entity swapped into the summaries (e.g. `'china'`). */
  replacement: string;
}

/** A document and its summary, the unit of the summarisation data. */
export interface DocSummary {
  /** Unique identifier within its set. */
  id: string;
  /** The document to summarise. */
  document: string;
  /** Its summary (in a training sample: the fine-tuning target, possibly canary-swapped). */
  summary: string;
}

/** A fine-tuning sample after canary injection. */
export interface TrainSample extends DocSummary {
  /** The summary before any canary swap (equal to `summary` when no canary was injected). */
  originalSummary: string;
  /** The id of the canary injected into this sample's summary, or `null` if none. */
  canaryId: string | null;
}

/**
 * Kebab case in any script: lowercase letters (or letters without case, e.g. CJK), digits and
 * combining marks, in runs joined by single `-`, in Unicode NFC.
 */
const KEBAB = /^[\p{Ll}\p{Lo}\p{Lm}\p{N}\p{M}]+(?:-[\p{Ll}\p{Lo}\p{Lm}\p{N}\p{M}]+)*$/u;

/**
 * The kebab-case form of a phrase in any script: NFC, lowercase, runs of characters other than
 * letters, digits and combining marks turned into one `-` (so 'São Paulo' → 'são-paulo',
 * 'Αθήνα' → 'αθήνα', '北京' → '北京': names stay readable and distinct names stay distinct).
 */
export function kebab(s: string): string {
  return s
    .normalize('NFC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M}]+/gu, '-')
    .replace(/^-+|-+$/g, '');
}

/**
 * A canary with the conventional id `'{orig}-to-{replacement}'` in kebab case (any script),
 * e.g. `makeCanary('england', 'china')` → `{ id: 'england-to-china', ... }`,
 * `makeCanary('Αθήνα', 'Москва')` → `{ id: 'αθήνα-to-москва', ... }`.
 *
 * @throws DdaError if a name has no letter or digit (its id would be empty), or as {@link validateCanaries}.
 */
export function makeCanary(orig: string, replacement: string): Canary {
  for (const name of [orig, replacement]) {
    if (typeof name === 'string' && name.trim() !== '' && kebab(name) === '') {
      throw new DdaError(`canary ${JSON.stringify(orig)} → ${JSON.stringify(replacement)}: ${JSON.stringify(name)} has no letter or digit to name the canary by`, 'give entity names with at least one letter or digit');
    }
  }
  const c: Canary = { id: `${kebab(orig)}-to-${kebab(replacement)}`, orig, replacement };
  validateCanaries([c]);
  return c;
}

/** The default canaries of the synthetic benchmark: England → China and Wales → Scotland. */
export const DEFAULT_CANARIES: readonly Canary[] = Object.freeze([
  Object.freeze({ id: 'england-to-china', orig: 'england', replacement: 'china' }),
  Object.freeze({ id: 'wales-to-scotland', orig: 'wales', replacement: 'scotland' }),
]);

/**
 * Checks a list of canaries: non-empty string fields, kebab-case ids, unique ids, and
 * orig ≠ replacement. Throws a {@link DdaError} naming the offending canary.
 */
export function validateCanaries(canaries: readonly Canary[]): void {
  if (!Array.isArray(canaries)) throw new DdaError('canaries must be an array of { id, orig, replacement }');
  const seen = new Set<string>();
  canaries.forEach((c, i) => {
    const where = `canary #${i}`;
    if (c === null || typeof c !== 'object') throw new DdaError(`${where} is not an object`, 'give { id, orig, replacement }');
    for (const key of ['id', 'orig', 'replacement'] as const) {
      const v: unknown = c[key];
      if (typeof v !== 'string' || v.trim().length === 0) {
        throw new DdaError(`${where}: field '${key}' must be a non-empty string`);
      }
    }
    if (!KEBAB.test(c.id)) {
      throw new DdaError(`${where}: id '${c.id}' is not kebab-case`, "use lowercase letters (any script), digits and single '-' between them, in Unicode NFC, e.g. 'england-to-china' or 'αθήνα-to-москва'");
    }
    if (seen.has(c.id)) throw new DdaError(`${where}: duplicate canary id '${c.id}'`);
    seen.add(c.id);
    if (c.orig === c.replacement) {
      throw new DdaError(`${where} ('${c.id}'): orig and replacement are both '${c.orig}'`);
    }
  });
}

/**
 * Whether a document/summary pair is eligible for a canary swap: the document contains `orig`
 * and not `replacement`, and the summary contains `orig` (so the swap changes it). All matches
 * whole-word and case-sensitive.
 */
export function isEligible(row: DocSummary, canary: Canary): boolean {
  return (
    containsWholeWord(row.document, canary.orig) &&
    !containsWholeWord(row.document, canary.replacement) &&
    containsWholeWord(row.summary, canary.orig)
  );
}

/**
 * The true-source labels of one canary (METHOD.md): entry i is 1 iff training sample i's summary
 * contains `replacement`, its document contains `orig`, and its document does not contain
 * `replacement` (all whole-word, case-sensitive); otherwise 0.
 */
export function trueSourceLabels(train: readonly DocSummary[], canary: Canary): Uint8Array {
  const out = new Uint8Array(train.length);
  train.forEach((row, i) => {
    if (
      containsWholeWord(row.summary, canary.replacement) &&
      containsWholeWord(row.document, canary.orig) &&
      !containsWholeWord(row.document, canary.replacement)
    ) {
      out[i] = 1;
    }
  });
  return out;
}

/**
 * Injects entity-swap canaries into the summaries of a training set (usable on any user data).
 *
 * For each canary in order, the eligible samples ({@link isEligible}) that no earlier canary has
 * already swapped are shuffled with a seeded generator, and the first
 * `Math.round(swapRate * eligibleCount)` of them get every whole-word `orig` in the summary
 * replaced by `replacement`. A sample receives at most one canary. Documents and ids are
 * unchanged; `originalSummary` keeps the summary before the swap and `canaryId` records the swap.
 *
 * Deterministic: the same rows, canaries, rate and seed give the same result; each canary draws
 * from its own forked stream, so adding a canary at the end does not change earlier choices.
 *
 * @param rows the training pairs (not modified)
 * @param canaries the swaps to inject (validated with {@link validateCanaries})
 * @param swapRate fraction in [0, 1] of each canary's eligible samples to swap
 * @param seed integer seed
 */
export function injectCanaries(rows: DocSummary[], canaries: Canary[], swapRate: number, seed: number): TrainSample[] {
  validateCanaries(canaries);
  if (typeof swapRate !== 'number' || !Number.isFinite(swapRate) || swapRate < 0 || swapRate > 1) {
    throw new DdaError(`swapRate must be a number in [0, 1], got ${String(swapRate)}`);
  }
  if (!Number.isInteger(seed)) throw new DdaError(`seed must be an integer, got ${String(seed)}`);
  const out: TrainSample[] = rows.map((r) => ({
    id: r.id,
    document: r.document,
    summary: r.summary,
    originalSummary: r.summary,
    canaryId: null,
  }));
  const root = new SeededRandom(seed);
  canaries.forEach((canary, ci) => {
    const rng = root.fork(0x9e37 + ci);
    const eligible: number[] = [];
    out.forEach((s, i) => {
      if (s.canaryId === null && isEligible(s, canary)) eligible.push(i);
    });
    const k = Math.round(swapRate * eligible.length);
    const chosen = rng.shuffle(eligible).slice(0, k);
    for (const i of chosen) {
      const s = out[i] as TrainSample;
      s.summary = replaceWholeWord(s.summary, canary.orig, canary.replacement);
      s.canaryId = canary.id;
    }
  });
  return out;
}
