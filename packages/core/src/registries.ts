import type { Backend, Debiaser, Denoiser, Measurement, Metric, Scorer } from './plugins.js';
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

/** Reads a numeric option, with a default and a clear error for a wrong type. */
export function numberOption(options: PluginOptions, key: string, fallback: number): number {
  const v = options[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new TypeError(`option '${key}' must be a finite number, got ${JSON.stringify(v)}`);
  }
  return v;
}
