import type { ScoreMatrix } from '@dda/core';

/** The union of the matrices' checkpoint ids, first occurrence order. */
export function mergeCheckpoints(matrices: readonly ScoreMatrix[]): string[] {
  const seen = new Set<string>();
  for (const m of matrices) for (const c of m.provenance.checkpoints) seen.add(c);
  return [...seen];
}
