import { generatorFor } from './plugin.js';

/** `nx g @dda/nx-plugin:scorer <name>`: a dda plugin package with a documented scorer and a conformance test. */
export const scorerGenerator = generatorFor('scorer');
export default scorerGenerator;
