import * as tf from '@tensorflow/tfjs';
import { backends, registerAsPlugin, type Backend } from '@dda/core';

/**
 * Optional native tfjs backends: `tfjs-node-gpu` (CUDA) and `tfjs-node` (libtensorflow on the CPU).
 * Neither package is a dependency: their install scripts download libtensorflow, which fails on
 * machines without internet access (such as this project's CI), so they must never be able to
 * break `npm install`. They are imported lazily when the backend is resolved; when the import
 * fails the registry records why and falls back to the next backend (tfjs-wasm).
 */
const WHY_MISSING =
  'is not installed; its install script downloads libtensorflow, so install it yourself on a machine that can reach storage.googleapis.com (npm install PACKAGE)';

async function importOptional(pkg: string): Promise<void> {
  try {
    // A computed specifier keeps bundlers and TypeScript from requiring the package at build time.
    const spec: string = pkg;
    await import(spec);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const code = (e as { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || /Cannot find (package|module)|Could not resolve/.test(msg)) throw new Error(`${pkg} ${WHY_MISSING.replace('PACKAGE', pkg)}`);
    throw new Error(`${pkg} is installed but failed to load: ${msg.split('\n')[0]}`);
  }
}

async function start(pkg: string, id: string, device: string): Promise<Backend> {
  await importOptional(pkg);
  const ok = await tf.setBackend('tensorflow');
  await tf.ready();
  if (!ok || tf.getBackend() !== 'tensorflow') throw new Error(`${pkg} loaded but tfjs could not switch to its 'tensorflow' backend`);
  return { id, engine: 'tfjs', device };
}

let registered = false;
/** Registers `tfjs-node-gpu` (priority 40) and `tfjs-node` (priority 30); idempotent, runs on import. */
export function registerTfjsNodeBackends(): void {
  if (registered) return;
  registered = true;
  backends.register({
    id: 'tfjs-node-gpu',
    description: 'tfjs with libtensorflow and CUDA (@tensorflow/tfjs-node-gpu, optional)',
    priority: 40,
    create: () => start('@tensorflow/tfjs-node-gpu', 'tfjs-node-gpu', 'gpu (libtensorflow CUDA)'),
  });
  backends.register({
    id: 'tfjs-node',
    description: 'tfjs with native libtensorflow on the CPU (@tensorflow/tfjs-node, optional)',
    priority: 30,
    create: () => start('@tensorflow/tfjs-node', 'tfjs-node', 'cpu (libtensorflow)'),
  });
}
registerAsPlugin('@dda/backend-tfjs-node', registerTfjsNodeBackends);
