import { generatorFor } from './plugin.js';

/** `nx g @dda/nx-plugin:denoiser <name>`: a dda plugin package with a documented denoiser and a conformance test. */
export const denoiserGenerator = generatorFor('denoiser');
export default denoiserGenerator;
