import type { Backend, Debiaser, Denoiser, DotKernel, Measurement, Metric, Scorer } from './plugins.js';
import type { DatasetPlugin } from './datasets.js';
import { DdaError } from './errors.js';
import { Registry } from './registry.js';

/** Options passed to plugin factories; each plugin documents the keys it reads. */
export type PluginOptions = Record<string, unknown>;

/** The process-wide registries plugins add themselves to on import. */
export const scorers = new Registry<Scorer, PluginOptions>('scorer');
export const debiasers = new Registry<Debiaser, PluginOptions>('debiaser');
export const denoisers = new Registry<Denoiser, PluginOptions>('denoiser');
export const metrics = new Registry<Metric, PluginOptions>('metric');
export const backends = new Registry<Backend, PluginOptions>('backend');
export const measurements = new Registry<Measurement, PluginOptions>('measurement');
/** Engines of the gradient scorers' train × query inner products ({@link DotKernel}), tried by priority. */
export const dotKernels = new Registry<DotKernel, PluginOptions>('dot-product kernel');
/**
 * Benchmark data sets (the `generator` of experiments and benchmark configs): `create` returns the
 * {@link DatasetPlugin} itself, synchronously. The kind reads `data generator` in errors
 * (`unknown data generator 'x'`).
 */
export const datasets = new Registry<DatasetPlugin, PluginOptions>('data generator');

/** Adds a data set to {@link datasets} (priority 0; registering the same plugin object again is a no-op). */
export function registerDataset(plugin: DatasetPlugin): void {
  datasets.register(datasetEntry(plugin));
}

const entriesOf = new WeakMap<DatasetPlugin, Parameters<typeof datasets.register>[0]>();
function datasetEntry(plugin: DatasetPlugin): Parameters<typeof datasets.register>[0] {
  let e = entriesOf.get(plugin);
  if (e === undefined) entriesOf.set(plugin, (e = { id: plugin.id, description: plugin.description, priority: 0, options: plugin.optionKeys, create: () => plugin }));
  return e;
}

/**
 * The data set registered under `id`.
 * @throws DdaError for an unknown id (listing the registered ones), or an entry whose `create` is asynchronous.
 */
export function datasetPlugin(id: string): DatasetPlugin {
  const made = datasets.entry(id).create({});
  if (made instanceof Promise) throw new DdaError(`data generator '${id}' is created asynchronously`, "a data set's registry entry must return its DatasetPlugin from create() synchronously (registerDataset does)");
  return made;
}

/** Reads a numeric option, with a default and a clear error for a wrong type. */
export function numberOption(options: PluginOptions, key: string, fallback: number): number {
  const v = options[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new TypeError(`option '${key}' must be a finite number, got ${JSON.stringify(v)}`);
  }
  return v;
}
