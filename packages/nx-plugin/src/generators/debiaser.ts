import { generatorFor } from './plugin.js';

/** `nx g @dda/nx-plugin:debiaser <name>`: a dda plugin package with a documented debiaser and a conformance test. */
export const debiaserGenerator = generatorFor('debiaser');
export default debiaserGenerator;
