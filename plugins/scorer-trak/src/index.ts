/**
 * @dda/scorer-trak: the `trak` scorer (TRAK's projected kernel over seeded Gaussian projections of
 * the per-example gradients), registered in the `scorers` registry of @dda/core on import.
 * Scores are dimensionless; sign: higher = training sample more responsible for the test output.
 * (Importing it also imports @dda/scorer-influence, whose solver it uses, which registers
 * `if-exact`, `if-lissa` and `datainf`.)
 */
import { registerAsPlugin } from '@dda/core';
import { registerTrakScorer } from './scorer.js';

// `trak`
export {
  DEFAULT_PROJECTION_DIM, DEFAULT_TRAK_DAMPING_RATIO, type TrakOptions, projectRows,
  projectionMatrix, trakScores, trakScoresOnEngine, trakBlockSummaries,
} from './trak.js';
export { readTrakOptions, registerTrakScorer, scorerEntries, trakScorer } from './scorer.js';

registerAsPlugin('@dda/scorer-trak', registerTrakScorer);
