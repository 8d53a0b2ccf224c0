import type { CheckpointInfo, Debiaser, Denoiser, ScoreMatrix } from '@dda/core';

/**
 * DDA, both strategies: `debiaser.debias(denoiser.denoise(perCheckpoint, checkpoints), base)`.
 * Denoising comes first, then the base model's scores are subtracted from the combined epoch scores.
 *
 * With the `raw` debiaser and the `mean` denoiser this is the paper's
 * IS_DDA = (1/N) Σ_i IS_θi − β·IS_θ0, which by linearity equals the mean of the per-epoch
 * debiased scores (1/N) Σ_i (IS_θi − β·IS_θ0). Normalising debiasers (`zscore`, `unit-norm`,
 * `rank`, `fitted-beta`) and non-linear denoisers (`median`, `zscore-mean`) do not commute like
 * this: here the normalisation is applied to the already denoised matrix.
 *
 * @param perCheckpoint - Scores [nTrain × nTest] at the epoch checkpoints θ1..θN, same ids in the same order.
 * @param checkpoints - `checkpoints[i]` describes the checkpoint of `perCheckpoint[i]`.
 * @param base - Scores at the base model θ0, same ids in the same order.
 * @returns A new matrix whose provenance lists both transforms, e.g. `denoise:mean`, `debias:raw(beta=1)`.
 * @throws DdaError (from the denoiser or debiaser) if the inputs do not line up.
 */
export function ddaCombine(
  perCheckpoint: readonly ScoreMatrix[],
  checkpoints: readonly CheckpointInfo[],
  base: ScoreMatrix,
  denoiser: Denoiser,
  debiaser: Debiaser,
): ScoreMatrix {
  return debiaser.debias(denoiser.denoise(perCheckpoint, checkpoints), base);
}
