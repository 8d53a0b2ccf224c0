import { generatorFor } from './plugin.js';

/** `nx g @dda/nx-plugin:dataset <name>`: a dda plugin package with a documented benchmark data set and a conformance test. */
export const datasetGenerator = generatorFor('dataset');
export default datasetGenerator;
