import { generatorFor } from './plugin.js';

/** `nx g @dda/nx-plugin:engine <name>`: a dda plugin package with an engine (a delegate to start from) and a conformance test. */
export const engineGenerator = generatorFor('engine');
export default engineGenerator;
