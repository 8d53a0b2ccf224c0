/**
 * The counterfactual metrics as entries of @dda/core's `metrics` registry: `lds`, `leave-out` and
 * `leave-out-random`. They need more than a source's scores and labels, and say so in their
 * `needs` (`retrainedLosses`, `retraining`); the benchmark harness makes those inputs
 * (counterfactual-runs.ts) for every metric that declares them, and evaluates these metrics the
 * same way as any other (see counterfactual.ts for the definitions).
 */
import { DdaError, metrics, numberOption, registerAsPlugin, type Metric, type MetricInputs, type PluginOptions } from '@dda/core';
import { linearDatamodelingScore, topRows } from './counterfactual.js';
import { randomRows } from './counterfactual-runs.js';

/** The input `name` of `inputs`; @throws DdaError when the harness did not give it (a bug: evaluateMetrics checks it first). */
function input<K extends 'retrainedLosses' | 'retraining'>(inputs: MetricInputs | undefined, name: K, metric: string): NonNullable<MetricInputs[K]> {
  const v = inputs?.[name];
  if (v === undefined) throw new DdaError(`metric '${metric}' needs the input ${name}`, `evaluate it where ${name} is made (dda bench)`);
  return v as NonNullable<MetricInputs[K]>;
}

/**
 * `lds`: the linear datamodeling score of a method for one source, the mean over the source's test
 * outputs of Spearman_j(Σ_{i∈S_j} τ(z, i), −f(z, θ_{S_j})) over the retrained models
 * ({@link linearDatamodelingScore}); a correlation in [−1, 1], higher is better.
 */
export const ldsMetric: Metric = {
  id: 'lds',
  description: 'linear datamodeling score: Spearman correlation of the predicted effect of each retraining subset with the measured one, mean over the source\'s test outputs (correlation in [-1, 1]; higher = better)',
  label: 'LDS', units: 'correlation', range: [-1, 1],
  needs: ['retrainedLosses'],
  compute(_scores, _labels, inputs) {
    const r = input(inputs, 'retrainedLosses', 'lds');
    return linearDatamodelingScore((inputs as MetricInputs).matrix, r.subsets, r.losses, { columns: (inputs as MetricInputs).columns }).mean.mean;
  },
};

/** A string-list option (`methods`), or undefined when absent. */
function stringsOption(options: PluginOptions, key: string): readonly string[] | undefined {
  const v = options[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new DdaError(`option '${key}' must be a list of strings, got ${JSON.stringify(v)}`);
  return v as string[];
}

/** A positive integer option. */
function positiveIntOption(options: PluginOptions, key: string, fallback: number, metric: string): number {
  const v = numberOption(options, key, fallback);
  if (!Number.isInteger(v) || v < 1) throw new DdaError(`${metric}: option ${key} must be a positive integer, got ${v}`);
  return v;
}

/**
 * `leave-out` (options `k`, default 20, and `methods`, the methods it retrains for: every one when
 * absent): the fraction of the source's errors that disappear when the model is fine-tuned again
 * without the method's k top-scoring training samples (ranked by the scores averaged over the
 * source's test outputs, ties by row order); NaN for a method it is not asked to retrain for.
 */
export function leaveOutMetric(k: number, methods?: readonly string[]): Metric {
  const asked = methods ? new Set(methods) : undefined;
  return {
    id: 'leave-out',
    description: `fraction of the source's errors fixed when the method's top ${k} training samples are removed and the model fine-tuned again (fraction 0-1; higher = better)`,
    label: 'leave-out (errors fixed)', units: 'fraction', range: [0, 1],
    needs: ['retraining'],
    async compute(_scores, _labels, inputs) {
      const retraining = input(inputs, 'retraining', 'leave-out');
      const i = inputs as MetricInputs;
      if (asked && !asked.has(i.method)) return Number.NaN;
      return retraining.fractionFixed(topRows(i.matrix, i.columns, k));
    },
  };
}

/**
 * `leave-out-random` (options `k`, default 20, and `seed`, default 0): the baseline of
 * `leave-out`, the fraction of the source's errors fixed when k training samples drawn at random
 * (seeded by `seed` and the source's id, the same for every method) are removed.
 */
export function leaveOutRandomMetric(k: number, seed: number): Metric {
  return {
    id: 'leave-out-random',
    description: `fraction of the source's errors fixed when ${k} random training samples are removed and the model fine-tuned again: the baseline of leave-out, the same for every method (fraction 0-1)`,
    label: 'random k', units: 'fraction', range: [0, 1],
    needs: ['retraining'],
    compute(scores, _labels, inputs) {
      const retraining = input(inputs, 'retraining', 'leave-out-random');
      return retraining.fractionFixed(randomRows(scores.length, k, seed, (inputs as MetricInputs).source));
    },
  };
}

/** Registers `lds`, `leave-out` and `leave-out-random` in the `metrics` registry (idempotent). */
export function registerCounterfactualMetrics(): void {
  const entries = [
    { id: 'lds', description: ldsMetric.description, priority: 20, options: [], create: (): Metric => ldsMetric },
    { id: 'leave-out', description: 'fraction of a source\'s errors fixed by fine-tuning again without the method\'s top k samples (options k, default 20; methods)', priority: 10, options: ['k', 'methods'], create: (o: PluginOptions): Metric => leaveOutMetric(positiveIntOption(o, 'k', 20, 'leave-out'), stringsOption(o, 'methods')) },
    { id: 'leave-out-random', description: 'the leave-out baseline: k random samples removed (options k, default 20; seed, default 0)', priority: 5, options: ['k', 'seed'], create: (o: PluginOptions): Metric => leaveOutRandomMetric(positiveIntOption(o, 'k', 20, 'leave-out-random'), numberOption(o, 'seed', 0)) },
  ];
  for (const e of entries) if (!metrics.has(e.id)) metrics.register(e);
}

registerAsPlugin('@dda/harness', registerCounterfactualMetrics);
