/**
 * @dda/scorer-influence: influence-function scorers over per-example gradients, registered in the
 * `scorers` registry of @dda/core on import:
 * - `if-exact`: g_trainᵀ H⁻¹ g_test solved exactly (Cholesky; Woodbury when nTrain ≪ dim);
 * - `if-lissa`: the same with H⁻¹ by the LiSSA iteration;
 * - `datainf`: DataInf's closed-form inverse of a per-layer (block-diagonal) H;
 * - `if-ekfac`: an eigenvalue-corrected Kronecker-factored per-layer H (factors from per-example gradients);
 * - `grad-dot-pc`: grad-dot with the k leading principal directions of the training (or test)
 *   gradients projected out, as EleutherAI's bergson (units of grad-dot);
 * - `trackstar`: gradient cosine under a mixed training/query second moment, after TrackStar.
 * H is the damped empirical Fisher / Gauss–Newton matrix of the training gradients,
 * H = (1/n) Σ_i g_i g_iᵀ + λI (see `damping.ts` for the scale-aware default λ).
 * Scores are dimensionless; sign: higher = training sample more responsible for the test output.
 * The dense linear algebra (`choleskyFactor`, `choleskySolve`, `ridgeKernelScores`, `symmetricEigen`, ...) is
 * exported for other scorers (e.g. @dda/scorer-trak).
 */
import { registerAsPlugin } from '@dda/core';
import { registerInfluenceScorers } from './scorer.js';

export * from './linalg.js';
export * from './damping.js';
export * from './if-exact.js';
export * from './if-lissa.js';
export * from './datainf.js';
export * from './if-ekfac.js';
export * from './grad-dot-pc.js';
export * from './trackstar.js';
export * from './streamed-fit.js';
export {
  dataInfScorer,
  gradDotPcScorer,
  ifEkfacScorer,
  ifExactScorer,
  ifLissaScorer,
  trackStarScorer,
  readGradDotPcOptions,
  readIfEkfacOptions,
  readIfExactOptions,
  readIfLissaOptions,
  readTrackStarOptions,
  registerInfluenceScorers,
  scorerEntries,
} from './scorer.js';

registerAsPlugin('@dda/scorer-influence', registerInfluenceScorers);
