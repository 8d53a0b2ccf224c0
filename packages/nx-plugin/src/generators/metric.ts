import { generatorFor } from './plugin.js';

/** `nx g @dda/nx-plugin:metric <name>`: a dda plugin package with a documented metric and a conformance test. */
export const metricGenerator = generatorFor('metric');
export default metricGenerator;
