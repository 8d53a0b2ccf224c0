/**
 * @dda/measurements: the test measurements f(z_e, θ) of METHOD.md, registered in @dda/core's
 * `measurements` registry on import: `loss`, `contrastive` and `entity-margin`.
 */
// test measurements f(z_e, θ) (docs/method.md, "Influence at one checkpoint")
export {
  lossMeasurement, contrastiveMeasurement, differingSpan, differingHunks, entityMarginMeasurement,
  measurementEntries, registerMeasurements,
} from './measurements.js';
import { registerAsPlugin } from '@dda/core';
import { registerMeasurements } from './measurements.js';

registerAsPlugin('@dda/measurements', registerMeasurements);
