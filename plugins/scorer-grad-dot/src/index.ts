/**
 * @dda/scorer-grad-dot: the `grad-dot` and `grad-cos` scorers (influence with H = I) and `tracin-cp`
 * (their learning-rate-weighted combination over the epoch checkpoints), registered
 * in the `scorers` registry of @dda/core on import. Plain functions (`gradDotScores`,
 * `gradCosScores`, `gradDotValues`) are exported too.
 * Sign convention: higher = training sample more responsible for the test output.
 */
import { registerAsPlugin } from '@dda/core';
import { registerGradDotScorers } from './scorer.js';

// grad-dot and grad-cos
export {
  DEFAULT_BLOCK_ROWS, type DotEngineChoice, type GradDotOptions, checkGradientPair, gradDotValues,
  gradDotScores, gradCosScores,
} from './grad-dot.js';
// which engine computes the train × test inner products of the gradient scorers
export {
  type DotProductOptions, type DotProducts, dotProducts, gradDotScoresOnEngine,
  gradCosScoresOnEngine,
} from './gemm-engine.js';
// `tracin-cp`
export {
  TRACIN_CP_COMBINE, tracInCheckpointScores,
} from './tracin.js';
export { gradCosScorer, gradDotScorer, gradientScorer, readGradDotOptions, registerGradDotScorers, scorerEntries, tracInCpScorer, type GradientScoresFn } from './scorer.js';

registerAsPlugin('@dda/scorer-grad-dot', registerGradDotScorers);
