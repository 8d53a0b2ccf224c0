/** The hallucination-tracing protocol on a user's own document/summary pairs (e.g. XSum as JSONL). */
import { DdaError, SeededRandom } from '@dda/core';
import { type Canary, type DocSummary, injectCanaries, trueSourceLabels, validateCanaries } from './canaries.js';
import type { HallucinationDataset, HeldOutDoc } from './build.js';
import { containsWholeWord } from './words.js';

/** Options of {@link buildFromDocSummaries}. */
export interface UserDataOptions {
  readonly seed: number;
  /** The entity swaps; spelled as in the data (matching is whole-word and case-sensitive). */
  readonly canaries: readonly Canary[];
  /** Held-out documents to set aside for test-error collection (round-robin over the canaries). */
  readonly nHeldOut: number;
  /** Fraction of eligible training samples whose summary is swapped (default 0.6). */
  readonly swapRate?: number;
}

/**
 * Splits a user's document/summary pairs into a fine-tuning set with injected canaries and
 * held-out documents, and labels the true sources (METHOD.md):
 * - held out: up to `nHeldOut` rows whose document contains a canary's orig and not its
 *   replacement, drawn round-robin over the canaries in a seeded order;
 * - train: every other row, with {@link injectCanaries} applied;
 * - pretraining corpus: the training documents as plain text (no summaries), so that a tiny model
 *   trained from scratch learns the language of the data before fine-tuning. A real pretrained
 *   model folder does not need it.
 */
export function buildFromDocSummaries(rows: readonly DocSummary[], o: UserDataOptions): HallucinationDataset {
  const canaries = o.canaries.map((c) => ({ id: c.id, orig: c.orig, replacement: c.replacement }));
  validateCanaries(canaries);
  if (canaries.length === 0) throw new DdaError('at least one canary is needed', 'give canaries as [{ "orig": "England", "replacement": "China" }]');
  if (!Number.isInteger(o.nHeldOut) || o.nHeldOut < 1) throw new DdaError(`nHeldOut must be a positive integer, got ${String(o.nHeldOut)}`);
  const rng = new SeededRandom(o.seed);
  const order = rng.fork(1).shuffle(rows.map((_, i) => i));
  const held: HeldOutDoc[] = [];
  const heldRows = new Set<number>();
  const candidates = canaries.map((c) => order.filter((i) => {
    const doc = (rows[i] as DocSummary).document;
    return containsWholeWord(doc, c.orig) && !containsWholeWord(doc, c.replacement);
  }));
  const cursor = canaries.map(() => 0);
  for (let round = 0; held.length < o.nHeldOut; round++) {
    let added = false;
    canaries.forEach((c, ci) => {
      const list = candidates[ci] as number[];
      while (held.length < o.nHeldOut && (cursor[ci] as number) < list.length) {
        const i = list[(cursor[ci] as number)] as number;
        cursor[ci] = (cursor[ci] as number) + 1;
        if (heldRows.has(i)) continue;
        const r = rows[i] as DocSummary;
        held.push({ id: r.id, document: r.document, summary: r.summary, canaryId: c.id });
        heldRows.add(i);
        added = true;
        break;
      }
    });
    if (!added) break;
  }
  if (held.length === 0) {
    throw new DdaError(
      `no document contains any canary's orig (${canaries.map((c) => `'${c.orig}'`).join(', ')}) without its replacement`,
      'choose canaries whose orig entity appears in the documents (matching is whole-word and case-sensitive)',
    );
  }
  const trainRows = rows.filter((_, i) => !heldRows.has(i)).map((r) => ({ ...r }));
  if (trainRows.length === 0) throw new DdaError('every row was held out; no training samples remain', 'give more rows or a smaller nHeldOut');
  const train = injectCanaries(trainRows, canaries, o.swapRate ?? 0.6, rng.fork(2).int(2 ** 31));
  const labels: Record<string, Uint8Array> = {};
  for (const c of canaries) labels[c.id] = trueSourceLabels(train, c);
  return { seed: o.seed, canaries, pretrainCorpus: trainRows.map((r) => r.document), train, heldOut: held, heldOutReserve: [], labels };
}
