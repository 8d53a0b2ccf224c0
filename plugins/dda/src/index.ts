/**
 * @dda/plugin-dda: the two DDA strategies as plugins over score matrices, so they wrap any scorer.
 *
 * - Debiasers (registered in `debiasers`): `raw` (the paper, IS_θ' − β·IS_θ0), `zscore`,
 *   `unit-norm`, `rank` (normalise per test column before subtracting), `fitted-beta`.
 * - Denoisers (registered in `denoisers`): `mean` (the paper, (1/N) Σ_i IS_θi), `lr-weighted`,
 *   `median`, `zscore-mean`.
 * - {@link ddaCombine}: both, denoise then debias.
 *
 * Importing this package registers them. Plain functions (`debiasRaw`, `denoiseMean`, ...) are
 * exported too. Sign convention is kept: higher = training sample more responsible.
 */
import { registerAsPlugin } from '@dda/core';
import { registerDdaPlugins } from './register.js';

// debiasers (DDA's strategy 1)
export {
  debiasRaw, debiasZScore, debiasUnitNorm, debiasRank, debiasFittedBeta, fittedBetas,
} from './debias.js';
// denoisers (DDA's strategy 2)
export {
  denoiseMean, denoiseLrWeighted, denoiseMedian, denoiseZScoreMean, denoiseEma,
} from './denoise.js';
// the DDA combination: denoise over the epochs, then debias
export {
  ddaCombine,
} from './combine.js';
export { debiaserEntries, denoiserEntries, registerDdaPlugins } from './register.js';

registerAsPlugin('@dda/plugin-dda', registerDdaPlugins);
