import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { backends, registerAsPlugin, type Backend } from '@dda/core';

/**
 * The tfjs engines this package runs on, registered in the core `backends` registry:
 * `tfjs-wasm` (default: WebAssembly with SIMD, one thread in Node) and `tfjs-cpu`
 * (pure JavaScript, about 30× slower, used when wasm cannot start).
 */
async function useTfjsBackend(name: 'wasm' | 'cpu'): Promise<void> {
  const ok = await tf.setBackend(name);
  await tf.ready();
  if (!ok || tf.getBackend() !== name) throw new Error(`tfjs could not start its '${name}' backend`);
}

let registered = false;
/** Registers `tfjs-wasm` and `tfjs-cpu` (idempotent). Called on import of @dda/backend-tfjs. */
export function registerTfjsBackends(): void {
  if (registered) return;
  registered = true;
  backends.register({
    id: 'tfjs-wasm',
    description: 'tfjs WebAssembly backend (SIMD, single thread in Node)',
    priority: 20,
    create: async (): Promise<Backend> => {
      await useTfjsBackend('wasm');
      return { id: 'tfjs-wasm', engine: 'tfjs', device: 'cpu (tfjs wasm, SIMD, 1 thread)' };
    },
  });
  backends.register({
    id: 'tfjs-cpu',
    description: 'tfjs pure-JavaScript backend (slow, always available)',
    priority: 10,
    create: async (): Promise<Backend> => {
      await useTfjsBackend('cpu');
      return { id: 'tfjs-cpu', engine: 'tfjs', device: 'cpu (tfjs pure JS)' };
    },
  });
}
registerAsPlugin('@dda/backend-tfjs', registerTfjsBackends);

/**
 * Starts the first tfjs backend that works among `preferred` (default: all tfjs backends by
 * priority) and logs each fallback with its reason through `log`.
 */
export async function startTfjsBackend(preferred?: readonly string[], log: (line: string) => void = () => {}): Promise<Backend> {
  const candidates = preferred ?? backends.list().filter((b) => b.id.startsWith('tfjs-')).map((b) => b.id);
  const { value, failures } = await backends.resolve({}, candidates);
  for (const f of failures) log(`backend ${f.id} unavailable (${f.reason}); falling back`);
  return value;
}
