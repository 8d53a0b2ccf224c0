/**
 * `tracin-cp`: TracIn over checkpoints (Pruthi et al. 2020),
 *
 *     TracIn-CP(z_t, z_e) = Σ_i η_i ⟨∇θ ℓ(z_t, θ_i), ∇θ f(z_e, θ_i)⟩
 *
 * over the epoch checkpoints θ1..θN of the fine-tuning run, η_i the learning rate in effect over
 * epoch i. A scorer sees one checkpoint at a time, so the scorer returns the per-checkpoint term
 * ⟨∇ℓ(z_t, θ_i), ∇f(z_e, θ_i)⟩ (the grad-dot score, under the method id `tracin-cp`) and declares
 * `combine: { denoiser: 'lr-weighted' }`: the harness combines the epoch terms into
 * Σ_i η_i·term_i / Σ_i η_i, i.e. **TracIn-CP divided by Σ_i η_i** (a positive constant of the run:
 * the ranking is TracIn-CP's, and the units stay those of grad-dot, nats² per squared parameter
 * unit, so that DDA's debias against the base model's term is on the same scale). Multiply by
 * Σ_i η_i for Pruthi et al.'s unnormalised value. Sign: higher = the training sample's gradient
 * steps lowered the test output's loss more over training = more responsible.
 */
import type { GradientMatrix, ScoreMatrix } from '@dda/core';
import { gradDotScoresOnEngine } from './gemm-engine.js';
import type { GradDotOptions } from './grad-dot.js';

/** The denoiser TracIn-CP combines its per-checkpoint terms with (Σ η_i·term_i / Σ η_i). */
export const TRACIN_CP_COMBINE = { denoiser: 'lr-weighted' } as const;

/**
 * The TracIn-CP term at one checkpoint: the grad-dot scores `score[i][j] = ∇ℓ(train i) · ∇f(test j)`
 * (on the engine of `options.engine`: onnxruntime's float32 GEMM by default where it starts, else the
 * float64 JavaScript loop) under the method id `tracin-cp`, to be combined over the epoch checkpoints with
 * {@link TRACIN_CP_COMBINE} (see the module doc). Units nats² per squared parameter unit.
 *
 * @throws DdaError as `gradDotScoresOnEngine` (malformed or mismatched gradients, a required engine that cannot start).
 */
export async function tracInCheckpointScores(
  train: GradientMatrix,
  test: GradientMatrix,
  options: GradDotOptions = {},
  checkpoint: string = train.checkpoint,
): Promise<ScoreMatrix> {
  const m = await gradDotScoresOnEngine(train, test, options, checkpoint);
  return {
    ...m,
    provenance: {
      ...m.provenance,
      method: 'tracin-cp',
      computedOver: `TracIn-CP term at ${checkpoint}, to be combined over the epoch checkpoints as Σ η_i·term_i / Σ η_i (TracIn-CP / Σ η_i): ${m.provenance.computedOver}`,
    },
  };
}
