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

// small dense linear algebra in float64 for the influence scorers (and TRAK)
export {
  type Rows, crossProducts, gramMatrix, choleskyFactor, choleskySolve, type KernelSolver,
  type RidgeKernelOptions, DEFAULT_MAX_SYSTEM_SIZE, ridgeKernelScores, type SymmetricEigen,
  symmetricEigen, type Float64EngineOptions, type Float64Products, crossProductsOn, gramMatrixOn, ridgeKernelScoresOn,
} from './linalg.js';
// the damping of the Hessian every scorer of this package uses
export {
  DEFAULT_DAMPING_RATIO, type DampingOptions,
} from './damping.js';
// `if-exact`
export {
  type IfExactOptions, ifExactScores, ifExactScoresOnEngine,
} from './if-exact.js';
// `if-lissa`
export {
  DEFAULT_LISSA_DEPTH, DEFAULT_LISSA_STREAM_ABOVE_BYTES, DEFAULT_TEST_BLOCK, type IfLissaOptions, ifLissaScores, ifLissaScoresOnEngine, ifLissaStreamedFit,
} from './if-lissa.js';
// `datainf`
export {
  type DataInfOptions, type ParameterBlock, parameterBlocks, dataInfScores,
} from './datainf.js';
// `if-ekfac`
export {
  DEFAULT_MAX_FACTOR_SIZE, type IfEkfacOptions, type EkfacBlock, ekfacFactors, ifEkfacScores,
  ifEkfacStreamedFit,
} from './if-ekfac.js';
// `grad-dot-pc`
export {
  type PcBasis, type GradDotPcOptions, DEFAULT_PC_K, type LeadingEigen, topEigen, gradDotPcScores,
} from './grad-dot-pc.js';
// `trackstar`
export {
  type TrackStarOptions, DEFAULT_TRACKSTAR_MIX, trackStarScores,
} from './trackstar.js';
// the two-pass streamed forms (fit, then score) of datainf, if-exact, trackstar and grad-dot-pc
export {
  dataInfStreamedFit, ifExactStreamedFit, trackStarStreamedFit, gradDotPcStreamedFit,
} from './streamed-fit.js';
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
