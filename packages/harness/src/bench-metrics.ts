/**
 * The metrics of a benchmark: {@link DEFAULT_BENCH_METRICS}, the default list (the metric columns of
 * the committed results, in their order: the published schema of `<name>.csv`, `-summary.csv` and
 * `-summary.json`), then the registry metrics a configuration's `metrics:` adds. Every one is a
 * `Metric` of @dda/core's `metrics` registry, created by its id and evaluated, summarized,
 * paired-tested and written the same way (bench.ts, report.ts); nothing else in the harness names
 * a metric.
 */
import { DdaError, LABEL_METRICS, createMetricSync, createMetrics, metrics, type Metric, type MetricSpec } from '@dda/core';
import { HARNESS_METRICS, registryMetricSpecs, type BenchConfig } from './bench-config.js';
import './counterfactual-metrics.js';

/** One metric of a benchmark, with where its values go. */
export interface BenchMetric {
  /** Key of its values in rows and summaries (`BenchRow.metrics`), and the `metric` of its paired tests: its column. */
  readonly key: string;
  /** The metric (its descriptor: label, direction, units, range, digits, needs). */
  readonly metric: Metric;
  /** Its column in `<name>.csv`. */
  readonly column: string;
  /** Stem of its columns in `-summary.csv`: `<stem>_mean`, `<stem>_low`, `<stem>_high`. */
  readonly summaryColumn: string;
  /** Stem of its flat fields in `-summary.json` (`<stem>Mean`, `<stem>Low`, `<stem>High`); absent: under `metrics.<key>` as `{ mean, low, high }`. */
  readonly jsonField?: string;
  /** Its columns come before the counts and the seconds (the tracing metrics every benchmark has). */
  readonly lead: boolean;
  /** The summary gives a 95% interval (low, high) beside the mean. */
  readonly interval: boolean;
  /** Paired-tested against the reference methods. */
  readonly paired: boolean;
  /** Computed in this run; false: its columns are there, empty (not asked for by the configuration). */
  readonly computed: boolean;
  /** A registry metric the configuration's `metrics:` adds (not of the default list): the report gives it a column of the LaTeX summary and a chart of its own. */
  readonly asked: boolean;
}

/** An entry of {@link DEFAULT_BENCH_METRICS}. */
interface DefaultMetric extends Omit<BenchMetric, 'metric' | 'computed' | 'key' | 'asked'> {
  /** The registry spec of the metric for a configuration. */
  readonly spec: (c: BenchConfig, o: DefaultMetricContext) => MetricSpec;
  /** The name in a configuration's `metrics:` that turns it on; absent: always computed. */
  readonly when?: (typeof HARNESS_METRICS)[number];
}

/** What a default metric's options may depend on besides the configuration. */
export interface DefaultMetricContext {
  readonly kind: 'bench' | 'ablation';
  /** The methods a metric that fine-tunes again per method runs for by default (leave-out: unless the configuration's `leaveOut.methods` lists them; none in an ablation). */
  readonly retrainedMethods: readonly string[];
}

/**
 * The default metric list: the columns of the committed results, in order. The label metrics come
 * from @dda/core's `LABEL_METRICS` (registry spec and column, in its order), with their names in the
 * summaries added here. `auc` and the
 * configuration's recall@k lead (before `k`, the counts and the seconds); the LDS (`lds`) and
 * leave-out retraining (`leave-out`, and its random baseline) are computed when the configuration's
 * `metrics:` names them, and written (empty) either way; average precision, Recall@50 and MRR are
 * always computed. AUC and LDS are paired-tested (the published `-paired.csv`), as is every metric
 * a configuration adds.
 */
export const DEFAULT_BENCH_METRICS: readonly DefaultMetric[] = (() => {
  // The label metrics (@dda/core's LABEL_METRICS: registry spec, column, lead) with their names in the summaries.
  const label = (i: number, where: Pick<DefaultMetric, 'summaryColumn' | 'jsonField' | 'interval' | 'paired'>): DefaultMetric => {
    const m = LABEL_METRICS[i] as (typeof LABEL_METRICS)[number];
    return { spec: (c) => m.spec(c.k), column: m.column, lead: m.lead, ...where };
  };
  return [
    label(0, { summaryColumn: 'auc', jsonField: 'auc', interval: true, paired: true }),
    label(1, { summaryColumn: 'recall', jsonField: 'recall', interval: true, paired: false }),
    { spec: () => 'lds', when: 'lds', column: 'lds', summaryColumn: 'lds', jsonField: 'lds', lead: false, interval: true, paired: true },
    { spec: (c, o) => ({ id: 'leave-out', k: c.leaveOut.k, methods: o.kind === 'bench' ? c.leaveOut.methods ?? o.retrainedMethods : [] }), when: 'leave-out', column: 'leave_out', summaryColumn: 'leave_out', jsonField: 'leaveOut', lead: false, interval: false, paired: false },
    { spec: (c) => ({ id: 'leave-out-random', k: c.leaveOut.k, seed: c.leaveOut.seed }), when: 'leave-out', column: 'leave_out_random', summaryColumn: 'leave_out_random', jsonField: 'leaveOutRandom', lead: false, interval: false, paired: false },
    label(2, { summaryColumn: 'ap', jsonField: 'ap', interval: true, paired: false }),
    label(3, { summaryColumn: 'recall50', jsonField: 'recall50', interval: true, paired: false }),
    label(4, { summaryColumn: 'mrr', jsonField: 'mrr', interval: true, paired: false }),
  ];
})();

/** The columns of `<name>.csv` besides the metrics': before the lead metrics, and between them and the others. */
export const ROW_COLUMNS = { first: ['family', 'method', 'scorer', 'variant', 'source', 'seed'], afterLead: ['k', 'n_positives', 'n_train', 'n_tests', 'seconds', 'measurement'] } as const;
/** The columns of `-summary.csv` besides the metrics'. */
export const SUMMARY_ROW_COLUMNS = { first: ['family', 'method', 'n'], afterLead: ['seconds_mean'] } as const;
/** CSV columns of the paired tests. */
export const PAIRED_COLUMNS = ['metric', 'reference', 'method', 'unit', 'n', 'mean_difference', 'p_value', 'min_p_value', 'exact'] as const;

/** What the tables and pages read of a metric: its descriptor, without `compute`. */
export type MetricDescriptor = Omit<Metric, 'compute' | 'needs'>;

/** A {@link BenchMetric} as the report reads it (from a run, or rebuilt from a summary JSON). */
export type ReportMetric = Omit<BenchMetric, 'metric'> & { readonly metric: MetricDescriptor };

/**
 * The default list for a configuration, each metric created from the registry synchronously (so
 * that a stored summary can be read back without awaiting), `computed` as the configuration asks.
 *
 * @throws DdaError when a default metric's registry entry creates it asynchronously.
 */
export function defaultBenchMetrics(c: BenchConfig, o: DefaultMetricContext): BenchMetric[] {
  const named = new Set(c.metrics.filter((m): m is string => typeof m === 'string'));
  return DEFAULT_BENCH_METRICS.map((d) => {
    const { spec, when, ...where } = d;
    return { ...where, key: d.column, metric: createMetricSync(spec(c, o)), computed: when === undefined || named.has(when), asked: false };
  });
}

/** The columns of a list of metrics in `<name>.csv`. */
export function rowColumns(list: readonly Pick<BenchMetric, 'lead' | 'column'>[]): string[] {
  return [...ROW_COLUMNS.first, ...list.filter((m) => m.lead).map((m) => m.column), ...ROW_COLUMNS.afterLead, ...list.filter((m) => !m.lead).map((m) => m.column)];
}

/** The columns of a list of metrics in `-summary.csv`. */
export function summaryColumns(list: readonly Pick<BenchMetric, 'lead' | 'summaryColumn' | 'interval'>[]): string[] {
  const of = (m: Pick<BenchMetric, 'summaryColumn' | 'interval'>): string[] => (m.interval ? [`${m.summaryColumn}_mean`, `${m.summaryColumn}_low`, `${m.summaryColumn}_high`] : [`${m.summaryColumn}_mean`]);
  return [...SUMMARY_ROW_COLUMNS.first, ...list.filter((m) => m.lead).flatMap(of), ...SUMMARY_ROW_COLUMNS.afterLead, ...list.filter((m) => !m.lead).flatMap(of)];
}

/**
 * The metrics of a benchmark run: the default list (computed as {@link DEFAULT_BENCH_METRICS} says)
 * and then every registry metric of the configuration's `metrics:` (a plugin's, or
 * `{ id: recall-at-k, k }`), each computed, with its id as column (`<id>`, `<id>_mean` / `_low` /
 * `_high`, `metrics.<id>` in the summary JSON), paired-tested. Load the plugins first.
 *
 * @throws DdaError for an unknown id, a metric asked for twice, or a metric whose columns are
 *   columns the default list or the harness writes.
 */
export async function benchMetricList(c: BenchConfig, o: DefaultMetricContext): Promise<BenchMetric[]> {
  const defaults = defaultBenchMetrics(c, o);
  const specs = registryMetricSpecs(c);
  const unknown = specs.map((m) => (typeof m === 'string' ? m : m.id)).find((id) => !metrics.has(id));
  if (unknown !== undefined) {
    throw new DdaError(`metrics: unknown metric '${unknown}'`, `the benchmark's metrics are ${HARNESS_METRICS.join(', ')} or an id of the metrics registry (${metrics.ids().join(', ')}; a plugin's metric needs its plugin under plugins: or --plugin)`);
  }
  const taken: readonly string[] = [...rowColumns(defaults), ...summaryColumns(defaults), ...PAIRED_COLUMNS];
  const made = await createMetrics(specs, 'metrics');
  const twice = made.map((m) => m.id).find((id, i, ids) => ids.indexOf(id) !== i);
  if (twice !== undefined) throw new DdaError(`metrics: the metric '${twice}' is asked for twice`, 'list every metric once');
  const extra = made.map((metric): BenchMetric => {
    if ([metric.id, `${metric.id}_mean`, `${metric.id}_low`, `${metric.id}_high`].some((x) => taken.includes(x))) throw new DdaError(`metric '${metric.id}' has the name of a column the harness writes itself`, 'give the metric another id');
    return { key: metric.id, metric, column: metric.id, summaryColumn: metric.id, lead: false, interval: true, paired: true, computed: true, asked: true };
  });
  return [...defaults, ...extra];
}

/** A metric's header in printed tables: its label, with `(lower = better)` when lower is better (@dda/core's). */
export { metricHeader } from '@dda/core';
