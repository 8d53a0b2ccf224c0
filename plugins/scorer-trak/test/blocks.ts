import type { BlockSummaries, GradientMatrix, ScoreMatrix } from '@dda/core';

/** The training rows cut into blocks ending at `cuts` (exclusive ends, the last = n), each summarized, then combined: what a streamed run does. */
export async function combinedInBlocks(bs: BlockSummaries, train: GradientMatrix, test: GradientMatrix, cuts: readonly number[]): Promise<ScoreMatrix> {
  const parts: Float64Array[] = [];
  let lo = 0;
  for (const hi of cuts) {
    parts.push(await bs.summarize({ ...train, ids: train.ids.slice(lo, hi), rows: train.rows.slice(lo, hi) }, test));
    lo = hi;
  }
  return bs.combine(parts, train.ids, test, 'epoch-1');
}
