/**
 * @dda/scorer-grad-dot: the `grad-dot` and `grad-cos` scorers (influence with H = I), registered
 * in the `scorers` registry of @dda/core on import. Plain functions (`gradDotScores`,
 * `gradCosScores`, `gradDotValues`) are exported too.
 * Sign convention: higher = training sample more responsible for the test output.
 */
import { registerGradDotScorers } from './scorer.js';

export * from './grad-dot.js';
export * from './gemm-engine.js';
export { gradCosScorer, gradDotScorer, gradientScorer, registerGradDotScorers, scorerEntries, type GradientScoresFn } from './scorer.js';

registerGradDotScorers();
