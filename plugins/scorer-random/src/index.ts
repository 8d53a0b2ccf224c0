/**
 * @dda/scorer-random: the `random` scorer (seeded uniform scores, the chance baseline), registered
 * in the `scorers` registry of @dda/core on import. Needs nothing from the model.
 */
import { registerAsPlugin } from '@dda/core';
import { registerRandomScorer } from './scorer.js';

// `random`
export {
  type RandomOptions, fnv1a, randomScores,
} from './random-scorer.js';
export { randomScorer, readRandomOptions, registerRandomScorer, scorerEntries } from './scorer.js';

registerAsPlugin('@dda/scorer-random', registerRandomScorer);
