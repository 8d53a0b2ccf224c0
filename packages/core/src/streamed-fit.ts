/**
 * Helpers of the two-pass streamed form of a scorer ({@link StreamedFit}): the elementwise sum of
 * the blocks' partial statistics, the rows of scored blocks stacked, and the whole procedure over
 * blocks held in memory (the reference a harness's stored, resumable passes must equal).
 */
import { DdaError } from './errors.js';
import type { GradientMatrix } from './gradients.js';
import type { StreamedFit } from './plugins.js';
import { createScoreMatrix, type ScoreMatrix } from './score-matrix.js';

/**
 * Adds `partial` into `sum` elementwise (in place) and returns `sum`; `sum` null starts a copy of `partial`.
 * @throws DdaError when the two have different lengths (`what` names the pass in the message).
 */
export function addPartial(sum: Float64Array | null, partial: Float64Array, what: string): Float64Array {
  if (sum === null) return Float64Array.from(partial);
  if (sum.length !== partial.length) throw new DdaError(`${what}: a block's partial statistic has ${partial.length} entries, the others ${sum.length}`, 'delete the stored partials of this pass to recompute them');
  for (let k = 0; k < sum.length; k++) sum[k] = (sum[k] as number) + (partial[k] as number);
  return sum;
}

/**
 * The rows of scored training blocks stacked in order [Σ rows × nTest], with the provenance of the
 * first block and `note` appended to its computedOver.
 * @throws DdaError for no blocks or blocks with different test columns.
 */
export function stackScoreBlocks(parts: readonly ScoreMatrix[], what: string, note = ''): ScoreMatrix {
  const first = parts[0];
  if (!first) throw new DdaError(`${what}: no training samples to score`);
  const nTest = first.testIds.length;
  const values = new Float64Array(parts.reduce((a, p) => a + p.trainIds.length, 0) * nTest);
  let off = 0;
  for (const p of parts) {
    if (p.testIds.length !== nTest || p.testIds.some((t, j) => t !== first.testIds[j])) throw new DdaError(`${what}: score blocks have different test columns`);
    values.set(p.values, off);
    off += p.values.length;
  }
  return createScoreMatrix(parts.flatMap((p) => p.trainIds), first.testIds, values, { ...first.provenance, computedOver: `${first.provenance.computedOver}${note}` });
}

/**
 * A streamed-fit scorer's matrix [Σ block rows × nTest] over training `blocks` held in memory (in
 * training order): every fit pass folds each block and finalizes the sum, then each block is scored
 * against the last fit. What a harness does with stored partials and fits, without the storage.
 *
 * @throws DdaError for a scorer with no fit pass, and whatever the scorer's functions throw.
 */
export async function scoreByStreamedFit(sf: StreamedFit, blocks: readonly GradientMatrix[], test: GradientMatrix, checkpoint: string, what = 'streamed fit'): Promise<ScoreMatrix> {
  if (!Number.isInteger(sf.fitPasses) || sf.fitPasses < 1) throw new DdaError(`${what}: fitPasses must be a positive integer, got ${sf.fitPasses}`);
  const nTrain = blocks.reduce((a, b) => a + b.rows.length, 0);
  let fit: Float64Array | null = null;
  for (let pass = 0; pass < sf.fitPasses; pass++) {
    let sum: Float64Array | null = null;
    for (const b of blocks) sum = addPartial(sum, await sf.fold(b, test, pass, fit), `${what}, fit pass ${pass + 1}`);
    fit = await sf.finalize(sum ?? new Float64Array(0), nTrain, test, pass, fit);
  }
  const parts: ScoreMatrix[] = [];
  for (const b of blocks) parts.push(await sf.scoreBlock(fit as Float64Array, b, test, checkpoint));
  return stackScoreBlocks(parts, what);
}
