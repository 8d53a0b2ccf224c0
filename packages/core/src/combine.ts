import { DdaError } from './errors.js';
import type { CheckpointInfo, Scorer } from './plugins.js';
import { denoisers } from './registries.js';
import type { ScoreMatrix } from './score-matrix.js';

/**
 * A scorer's answer for the fine-tuned model, from its scores at the epoch checkpoints θ1..θN
 * (`epochScores[i]` computed at `checkpoints[i]`, in epoch order):
 * - no `scorer.combine`: the scores at the final checkpoint, `epochScores[N − 1]`, unchanged;
 * - `scorer.combine = { denoiser }`: the registered denoiser `denoiser` applied over all N
 *   (e.g. TracIn-CP: `lr-weighted`, Σ_i η_i·score_i / Σ_i η_i). Its provenance lists every
 *   checkpoint and the transform `denoise:<id>`.
 * Sign and units are those of the scorer (and the denoiser), higher = more responsible.
 *
 * @throws DdaError if there are no epoch scores, or the denoiser is not registered or rejects the inputs.
 */
export async function scoreForFineTuned(
  scorer: Pick<Scorer, 'id' | 'combine'>,
  epochScores: readonly ScoreMatrix[],
  checkpoints: readonly CheckpointInfo[],
): Promise<ScoreMatrix> {
  const last = epochScores[epochScores.length - 1];
  if (last === undefined) {
    throw new DdaError(`scorer '${scorer.id}': no epoch checkpoint scores`, 'score at least one epoch checkpoint of the fine-tuning run');
  }
  if (!scorer.combine) return last;
  if (!denoisers.has(scorer.combine.denoiser)) {
    throw new DdaError(
      `scorer '${scorer.id}' combines its scores over the epoch checkpoints with denoiser '${scorer.combine.denoiser}', which is not registered`,
      `import the plugin that registers it (e.g. @dda/plugin-dda); registered: ${denoisers.ids().join(', ') || 'none'}`,
    );
  }
  const denoiser = await denoisers.create(scorer.combine.denoiser, {});
  return denoiser.denoise(epochScores, checkpoints);
}
