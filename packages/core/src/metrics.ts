/**
 * Evaluation metrics for training data attribution: ROC-AUC, recall@k, average precision and the
 * reciprocal rank of the first true source, of one score vector against binary ground-truth
 * labels; the `auc` / `recall-at-k` / `average-precision` / `mrr` entries of the `metrics`
 * registry, and the per-source evaluation of the hallucination-tracing benchmark.
 *
 * Conventions: `scores[i]` is the score of training sample i, higher = more responsible for the
 * test output(s); `labels[i]` is 1 when sample i is a true source and 0 otherwise.
 * Every metric is "larger is better".
 *
 * Ties: a metric never depends on the input order of tied scores. ROC-AUC counts a tied
 * (source, non-source) pair 1/2; average precision treats tied scores as one threshold (as
 * scikit-learn's `average_precision_score`); recall@k and the reciprocal rank are expectations over
 * a uniformly random order within each group of tied scores.
 *
 * Note on imports: this module imports `./registries.js`; `registries.ts` must never import this
 * module back, so that the registry exists before {@link registerCoreMetrics} runs at load.
 */
import { DdaError } from './errors.js';
import type { Metric, MetricInputs } from './plugins.js';
import { metrics, numberOption, type PluginOptions } from './registries.js';
import { registerAsPlugin, type RegistryEntry } from './registry.js';
import { aggregateColumns, type ScoreMatrix } from './score-matrix.js';

/** Checks lengths, finiteness of scores and that labels are 0/1; returns the number of positives. */
function checkScoresAndLabels(scores: ArrayLike<number>, labels: ArrayLike<number>, what: string): number {
  if (scores.length !== labels.length) {
    throw new DdaError(
      `${what}: ${scores.length} scores but ${labels.length} labels`,
      'pass exactly one label per training sample, in the same order as the scores',
    );
  }
  let nPos = 0;
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i] as number;
    if (!Number.isFinite(s)) {
      throw new DdaError(
        `${what}: score ${i} is not finite (${s})`,
        'fix or drop the non-finite scores before evaluating (check the gradients for NaN/Inf)',
      );
    }
    const y = labels[i] as number;
    if (y === 1) nPos++;
    else if (y !== 0) {
      throw new DdaError(`${what}: label ${i} is ${y}`, 'labels must be 1 (true source) or 0 (not a source)');
    }
  }
  return nPos;
}

/** Indices 0..n-1 sorted by score; `descending` puts the highest score first. Ties keep index order. */
function sortedIndices(scores: ArrayLike<number>, descending: boolean): number[] {
  const idx = Array.from({ length: scores.length }, (_, i) => i);
  const sign = descending ? -1 : 1;
  idx.sort((a, b) => sign * ((scores[a] as number) - (scores[b] as number)) || a - b);
  return idx;
}

/** One group of tied scores in a ranking: ranks [start, end) (0-based) of the sorted order, holding `positives` true sources. */
interface TieGroup {
  readonly start: number;
  readonly end: number;
  readonly positives: number;
}

/** The groups of tied scores of `scores`, highest score first (each group once, in rank order). */
function tieGroupsDescending(scores: ArrayLike<number>, labels: ArrayLike<number>): TieGroup[] {
  const n = scores.length;
  const idx = sortedIndices(scores, true);
  const groups: TieGroup[] = [];
  let start = 0;
  while (start < n) {
    const s = scores[idx[start] as number] as number;
    let end = start;
    let positives = 0;
    while (end < n && (scores[idx[end] as number] as number) === s) {
      if ((labels[idx[end] as number] as number) === 1) positives++;
      end++;
    }
    groups.push({ start, end, positives });
    start = end;
  }
  return groups;
}

/** Throws when the labels hold no true source: `metric` is then undefined. */
function requirePositive(nPos: number, what: string, metric: string): void {
  if (nPos === 0) {
    throw new DdaError(
      `${what}: the labels have no positive (true source), so ${metric} is undefined`,
      'evaluate only sources that have at least one true source among the training samples',
    );
  }
}

/**
 * ROC-AUC of `scores` against binary `labels`, as a fraction in [0, 1]: the probability that a
 * randomly drawn true source (label 1) scores higher than a randomly drawn non-source (label 0),
 * ties counting 1/2. Computed exactly with the Mann–Whitney U statistic over mid-ranks, in
 * O(n log n).
 *
 * @param scores - One score per training sample (length n); higher = more responsible. Must be finite.
 * @param labels - One label per training sample (length n): 1 = true source, 0 = not a source.
 * @returns AUC as a fraction in [0, 1] (0.5 = chance). Multiply by 100 for the percent papers report.
 * @throws DdaError if the lengths differ, a score is not finite, a label is not 0/1, or the
 *   labels hold no positive or no negative (the AUC is then undefined).
 */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  const nPos = checkScoresAndLabels(scores, labels, 'rocAuc');
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) {
    throw new DdaError(
      `rocAuc: the labels have ${nPos} positive(s) and ${nNeg} negative(s); AUC needs at least one of each`,
      'evaluate only sources that have at least one true source and one non-source among the training samples',
    );
  }
  const idx = sortedIndices(scores, false);
  // Sum of the (1-based, mid-)ranks of the positives.
  let rankSumPos = 0;
  let start = 0;
  while (start < n) {
    const s = scores[idx[start] as number] as number;
    let end = start + 1;
    while (end < n && (scores[idx[end] as number] as number) === s) end++;
    const midRank = (start + 1 + end) / 2; // mean of ranks start+1 .. end
    for (let t = start; t < end; t++) if ((labels[idx[t] as number] as number) === 1) rankSumPos += midRank;
    start = end;
  }
  const u = rankSumPos - (nPos * (nPos + 1)) / 2;
  return u / (nPos * nNeg);
}

/** One point of a ROC curve: false- and true-positive rates at a score threshold. */
export interface RocPoint {
  readonly fpr: number;
  readonly tpr: number;
}

/**
 * The ROC curve of `scores` against binary `labels`: from (0, 0) to (1, 1), one point per distinct
 * score threshold, highest first (tied scores move together, so the trapezoidal area under these
 * points equals {@link rocAuc}).
 */
export function rocCurve(scores: ArrayLike<number>, labels: ArrayLike<number>): RocPoint[] {
  const nPos = checkScoresAndLabels(scores, labels, 'rocCurve');
  const nNeg = scores.length - nPos;
  if (nPos === 0 || nNeg === 0) throw new DdaError(`rocCurve: the labels have ${nPos} positive(s) and ${nNeg} negative(s)`, 'a ROC curve needs at least one of each');
  const points: RocPoint[] = [{ fpr: 0, tpr: 0 }];
  let tp = 0;
  for (const g of tieGroupsDescending(scores, labels)) {
    tp += g.positives;
    points.push({ fpr: (g.end - tp) / nNeg, tpr: tp / nPos });
  }
  return points;
}

/**
 * Recall@k: the fraction of true sources (label 1) that are among the k highest-scoring training
 * samples. Ties are handled in expectation over a random order within ties: a group of equal
 * scores that straddles the cutoff contributes (its positives) × (slots left in the top k) /
 * (group size). The result therefore does not depend on the input order.
 *
 * @param scores - One score per training sample (length n); higher = more responsible. Must be finite.
 * @param labels - One label per training sample (length n): 1 = true source, 0 = not a source.
 * @param k - Size of the top list: a non-negative integer; values above n are clamped to n.
 * @returns Recall as a fraction in [0, 1].
 * @throws DdaError if the lengths differ, a score is not finite, a label is not 0/1, k is not a
 *   non-negative integer, or the labels hold no positive.
 */
export function recallAtK(scores: ArrayLike<number>, labels: ArrayLike<number>, k: number): number {
  const n = scores.length;
  const nPos = checkScoresAndLabels(scores, labels, 'recallAtK');
  if (!Number.isInteger(k) || k < 0) {
    throw new DdaError(`recallAtK: k must be a non-negative integer, got ${k}`, 'pass k as a whole number, e.g. 500');
  }
  requirePositive(nPos, 'recallAtK', 'recall');
  const kk = Math.min(k, n);
  return kk === 0 ? 0 : (recallCurve(scores, labels, kk)[kk - 1] as number);
}

/**
 * Recall@k for every k = 1..K in one pass: element k−1 is {@link recallAtK}(scores, labels, k),
 * ties counted in expectation the same way. For recall@k curves in reports.
 *
 * @param K - Largest k, a positive integer (clamped to the number of samples).
 * @returns A Float64Array of length min(K, n) with values in [0, 1], non-decreasing.
 * @throws DdaError on non-finite scores, labels other than 0/1, mismatched lengths, no positive, or a bad K.
 */
export function recallCurve(scores: ArrayLike<number>, labels: ArrayLike<number>, K: number): Float64Array {
  const n = scores.length;
  const nPos = checkScoresAndLabels(scores, labels, 'recallCurve');
  if (!Number.isInteger(K) || K < 1) throw new DdaError(`recallCurve: K must be a positive integer, got ${K}`, 'pass the largest k of the curve, e.g. 20');
  requirePositive(nPos, 'recallCurve', 'recall');
  const kk = Math.min(K, n);
  const out = new Float64Array(kk);
  const idx = sortedIndices(scores, true);
  let found = 0; // expected true sources among ranks [0, start)
  let start = 0;
  while (start < kk) {
    const s = scores[idx[start] as number] as number;
    let end = start + 1;
    while (end < n && (scores[idx[end] as number] as number) === s) end++;
    let pos = 0;
    for (let t = start; t < end; t++) if ((labels[idx[t] as number] as number) === 1) pos++;
    // Within a tie group every rank holds a true source with probability pos / size.
    for (let r = start; r < Math.min(end, kk); r++) out[r] = (found + (pos * (r + 1 - start)) / (end - start)) / nPos;
    found += pos;
    start = end;
  }
  return out;
}

/**
 * Average precision (AP) of `scores` against binary `labels`, as a fraction in [0, 1]: the area
 * under the precision–recall curve as a step function, AP = Σ_n (R_n − R_{n−1}) · P_n over the
 * distinct score thresholds taken from the highest down, where P_n and R_n are the precision and
 * recall of the set of samples scoring at least the n-th threshold (R_0 = 0).
 *
 * Ties: tied scores form one threshold, so a group of tied samples enters the curve at once, with
 * the precision of the whole group; this is scikit-learn's `average_precision_score`, and the
 * value does not depend on the input order. A random ranking's AP is about the fraction of
 * positives (nPositives / n).
 *
 * @param scores - One score per training sample (length n); higher = more responsible. Must be finite.
 * @param labels - One label per training sample (length n): 1 = true source, 0 = not a source.
 * @returns AP as a fraction in [0, 1] (1 = every true source ranked above every non-source).
 * @throws DdaError if the lengths differ, a score is not finite, a label is not 0/1, or the
 *   labels hold no positive (AP is then undefined).
 */
export function averagePrecision(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const nPos = checkScoresAndLabels(scores, labels, 'averagePrecision');
  requirePositive(nPos, 'averagePrecision', 'average precision');
  let tp = 0;
  let ap = 0;
  for (const g of tieGroupsDescending(scores, labels)) {
    tp += g.positives;
    // Recall rises by positives / nPos at this threshold, with the precision of the g.end samples at or above it.
    if (g.positives > 0) ap += (g.positives / nPos) * (tp / g.end);
  }
  return ap;
}

/**
 * The reciprocal rank of the first true source: 1 / (1-based rank of the highest-ranked sample
 * with label 1) when the samples are sorted by score, highest first; averaged over sources it is
 * the mean reciprocal rank (MRR).
 *
 * Ties: the expectation over a uniformly random order within each group of tied scores. If the
 * first group that holds a true source has g samples, p of them true sources, and a samples score
 * higher, the first true source is at rank a + J with P(J = j) = C(g − j, p − 1) / C(g, p),
 * j = 1..g − p + 1, and the result is E[1 / (a + J)]. The value does not depend on the input order.
 * Example: scores [3, 2, 2] with labels [0, 1, 0] give (1/2 + 1/3) / 2 = 5/12.
 *
 * @param scores - One score per training sample (length n); higher = more responsible. Must be finite.
 * @param labels - One label per training sample (length n): 1 = true source, 0 = not a source.
 * @returns A fraction in (0, 1]: 1 when a true source has the strictly highest score.
 * @throws DdaError if the lengths differ, a score is not finite, a label is not 0/1, or the
 *   labels hold no positive.
 */
export function reciprocalRank(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const nPos = checkScoresAndLabels(scores, labels, 'reciprocalRank');
  requirePositive(nPos, 'reciprocalRank', 'the rank of the first true source');
  const first = tieGroupsDescending(scores, labels).find((g) => g.positives > 0) as TieGroup;
  const size = first.end - first.start;
  const p = first.positives;
  // P(J = 1) = p / size; P(J = j + 1) / P(J = j) = (size − j − p + 1) / (size − j).
  let prob = p / size;
  let expected = 0;
  for (let j = 1; j <= size - p + 1; j++) {
    expected += prob / (first.start + j);
    prob *= (size - j - p + 1) / (size - j);
  }
  return expected;
}

/** The `auc` metric: ROC-AUC in percent (0–100), as the paper reports it; 50 = chance. */
export const aucMetric: Metric = {
  id: 'auc',
  description: 'ROC-AUC of the scores against the true-source labels, in percent (50 = chance, ties count 1/2)',
  label: 'AUC (%)', units: 'percent', range: [0, 100], digits: 2,
  compute: (scores, labels) => 100 * rocAuc(scores, labels),
};

/**
 * The `recall-at-${k}` metric: the fraction (0–1) of true sources among the k top-scoring
 * training samples, ties at the cutoff counted in expectation (see {@link recallAtK}).
 *
 * @param k - Size of the top list, a positive integer (clamped to the number of training samples).
 * @throws DdaError if k is not a positive integer.
 */
export function recallAtKMetric(k: number): Metric {
  if (!Number.isInteger(k) || k < 1) {
    throw new DdaError(`recall-at-k: option k must be a positive integer, got ${k}`, 'pass e.g. {k: 500}');
  }
  return {
    id: `recall-at-${k}`,
    description: `fraction of true sources among the ${k} top-scoring training samples (ties at the cutoff counted in expectation)`,
    label: `recall@${k}`, units: 'fraction', range: [0, 1],
    compute: (scores, labels) => recallAtK(scores, labels, k),
  };
}

/** Default k of the `recall-at-k` factory: the paper reports R@500. */
export const DEFAULT_RECALL_K = 500;

/** The k of the fixed recall column of every evaluation, as DATE-LM reports it (Recall@50). */
export const RECALL_AT_50 = 50;

/** The `average-precision` metric: AP as a fraction in [0, 1], tied scores as one threshold (see {@link averagePrecision}). */
export const averagePrecisionMetric: Metric = {
  id: 'average-precision',
  description: 'average precision (area under the step precision-recall curve, fraction 0-1; tied scores form one threshold, as scikit-learn)',
  label: 'AP', units: 'fraction', range: [0, 1],
  compute: (scores, labels) => averagePrecision(scores, labels),
};

/** The `mrr` metric: reciprocal rank of the first true source, in (0, 1], ties in expectation (see {@link reciprocalRank}); its mean over sources is the MRR. */
export const mrrMetric: Metric = {
  id: 'mrr',
  description: 'reciprocal rank of the highest-ranked true source (fraction in (0, 1]; ties in expectation over random orders); averaged over sources: MRR',
  label: 'MRR', units: 'fraction', range: [0, 1],
  compute: (scores, labels) => reciprocalRank(scores, labels),
};

/** Registry entry `auc` (no options). */
const aucEntry: RegistryEntry<Metric, PluginOptions> = {
  id: 'auc',
  description: aucMetric.description,
  priority: 100,
  options: [],
  create: () => aucMetric,
};

/** Registry entry `recall-at-k` (option `k`, default {@link DEFAULT_RECALL_K}). */
const recallEntry: RegistryEntry<Metric, PluginOptions> = {
  id: 'recall-at-k',
  description: `recall@k, fraction of true sources in the top k (option k, default ${DEFAULT_RECALL_K}); produces metric id recall-at-<k>`,
  priority: 50,
  options: ['k'],
  create: (options) => recallAtKMetric(numberOption(options, 'k', DEFAULT_RECALL_K)),
};

/** Registry entries `average-precision` and `mrr` (no options). */
const apEntry: RegistryEntry<Metric, PluginOptions> = { id: 'average-precision', description: averagePrecisionMetric.description, priority: 40, options: [], create: () => averagePrecisionMetric };
const mrrEntry: RegistryEntry<Metric, PluginOptions> = { id: 'mrr', description: mrrMetric.description, priority: 30, options: [], create: () => mrrMetric };

/**
 * Registers the core metrics in the `metrics` registry: `auc` (percent), the factory
 * `recall-at-k` (option `k`, default 500; the metric it creates has id `recall-at-${k}`; Recall@50
 * is `{k: 50}`), `average-precision` and `mrr` (fractions).
 * Idempotent: an id that is already registered (by an earlier call, or replaced by the user)
 * is left as it is. Called once when this module loads.
 */
export function registerCoreMetrics(): void {
  for (const entry of [aucEntry, recallEntry, apEntry, mrrEntry]) {
    if (!metrics.has(entry.id)) metrics.register(entry);
  }
}

registerAsPlugin('@dda/core', registerCoreMetrics);

/** A spec of the `metrics` registry: an id, or an id with the entry's options (e.g. `{ id: 'recall-at-k', k: 100 }`). */
export type MetricSpec = string | { readonly id: string; readonly [option: string]: unknown };

/**
 * A metric of a results table (the demo's `results.csv`, `dda attribute`'s `metrics.csv` and its
 * page): a metric created from the `metrics` registry, and the column its values go in. Tables
 * read every metric's header, digits and direction from {@link Metric}'s descriptor.
 */
export interface MetricColumn {
  /** The column (and the key of {@link SourceEvaluation.values}): a label metric's name in the committed files, an asked-for metric's id. */
  readonly column: string;
  /** The metric, created from the registry (its descriptor: label, higherIsBetter, units, range, digits). */
  readonly metric: Metric;
  /** Written before the table's `k` column (AUC and recall@k lead every table). */
  readonly lead: boolean;
  /** A registry metric the user asked for (`--metrics`, a plugin's too): written after the table's fixed columns. */
  readonly asked: boolean;
}

/**
 * The label metrics every evaluation computes (scores and labels only), in the order of their
 * columns: the registry spec of each for the recall cut-off `k`, and its column, the name the
 * committed results, `results.csv` and `metrics.csv` use. AUC (percent) and recall@k lead; average
 * precision, Recall@50 and the reciprocal rank of the first true source (fractions) follow. The
 * harness's benchmark list (`DEFAULT_BENCH_METRICS`) takes these and adds its counterfactual
 * metrics; this is the only place that names them.
 */
export const LABEL_METRICS: readonly { readonly spec: (k: number) => MetricSpec; readonly column: string; readonly lead: boolean }[] = [
  { spec: () => 'auc', column: 'auc', lead: true },
  { spec: (k) => ({ id: 'recall-at-k', k }), column: 'recall_at_k', lead: true },
  { spec: () => 'average-precision', column: 'average_precision', lead: false },
  { spec: () => ({ id: 'recall-at-k', k: RECALL_AT_50 }), column: 'recall_at_50', lead: false },
  { spec: () => 'mrr', column: 'mrr', lead: false },
];

/**
 * A metric of the registry created synchronously from its spec.
 *
 * @throws DdaError for an unknown id, or an entry that creates its metric asynchronously.
 */
export function createMetricSync(spec: MetricSpec): Metric {
  const { id, ...options } = typeof spec === 'string' ? { id: spec } : spec;
  if (!metrics.has(id)) throw new DdaError(`unknown metric '${id}'`, `use one of the metrics registry: ${metrics.ids().join(', ')} (a plugin's metric needs --plugin)`);
  const made = metrics.entry(id).create(options);
  if (made instanceof Promise) throw new DdaError(`the metric '${id}' is created asynchronously`, 'register it with a synchronous create');
  return made;
}

/**
 * The metric columns of a results table: the {@link LABEL_METRICS} for recall cut-off `k`, created
 * from the registry, then `asked` (e.g. {@link createMetrics} of `--metrics`), each in a column
 * named by its id.
 *
 * @param what - Who asks, for the messages (`--metrics`, `evaluateSources`).
 * @throws DdaError when an asked metric is asked for twice, needs inputs beyond scores and labels
 *   (which only a benchmark makes, {@link Metric.needs}), or has a label metric's column as id.
 */
export function labelMetricColumns(k: number, asked: readonly Metric[] = [], what = '--metrics'): MetricColumn[] {
  checkMetricList(asked, what);
  const needing = asked.find((m) => (m.needs ?? []).length > 0);
  if (needing !== undefined) throw new DdaError(`${what}: the metric '${needing.id}' needs ${(needing.needs ?? []).join(', ')}, which only a benchmark (dda bench) provides`, 'use metrics of scores and labels here');
  const fixed = LABEL_METRICS.map((m): MetricColumn => ({ column: m.column, metric: createMetricSync(m.spec(k)), lead: m.lead, asked: false }));
  for (const m of asked) {
    if (fixed.some((c) => c.column === m.id)) throw new DdaError(`metric '${m.id}' has the name of a column every evaluation has`, 'drop it, or give the metric another id');
  }
  return [...fixed, ...asked.map((metric): MetricColumn => ({ column: metric.id, metric, lead: false, asked: true }))];
}

/**
 * Refuses an asked metric that is one of the label metrics at recall cut-off `k` (its id is theirs:
 * `auc`, `recall-at-<k>`, `average-precision`, `recall-at-50`, `mrr`): a results table would show
 * the same numbers twice, under two columns. `dda attribute` and `dda demo` both call it on their
 * `--metrics` (one message for both); {@link evaluateSources} takes such a metric (its value
 * equals the label field's).
 *
 * @throws DdaError naming the metric and the column that has it.
 */
export function refuseLabelMetricsAsked(k: number, asked: readonly Metric[], what = '--metrics'): void {
  const ids = new Map(LABEL_METRICS.map((m) => [createMetricSync(m.spec(k)).id, m.column]));
  for (const m of asked) {
    const column = ids.get(m.id);
    if (column !== undefined) throw new DdaError(`${what} ${m.id}: every evaluation has this metric already, in column '${column}'`, `drop it from ${what}`);
  }
}

/** A metric's header in printed tables and pages: its label (default its id), with `(lower = better)` when lower is better. */
export function metricHeader(m: Pick<Metric, 'id' | 'label' | 'higherIsBetter'>): string {
  return `${m.label ?? m.id}${m.higherIsBetter === false ? ' (lower = better)' : ''}`;
}

/**
 * The header of a results table over `list`: `parts.first`, the lead label metrics' columns,
 * `parts.afterLead`, the other label metrics' columns, `parts.tail`, then the asked metrics'
 * columns. `names` gives a metric's column names in this table (default: its column).
 */
export function metricTableHeader(
  list: readonly MetricColumn[],
  parts: { readonly first: readonly string[]; readonly afterLead: readonly string[]; readonly tail: readonly string[] },
  names: (c: MetricColumn) => readonly string[] = (c) => [c.column],
): string[] {
  const fixed = list.filter((c) => !c.asked);
  return [
    ...parts.first, ...fixed.filter((c) => c.lead).flatMap(names), ...parts.afterLead, ...fixed.filter((c) => !c.lead).flatMap(names),
    ...parts.tail, ...list.filter((c) => c.asked).flatMap(names),
  ];
}

/** One source (canary) to evaluate: its test outputs and the per-training-row ground truth. */
export interface SourceSpec {
  /** Source id, e.g. `england-china`. */
  readonly id: string;
  /** Test ids (columns of the score matrix) whose scores are averaged into this source's score. */
  readonly testIds: readonly string[];
  /** One label per training row of the matrix, same order as `trainIds`: 1 = true source, 0 = not. */
  readonly labels: ArrayLike<number>;
}

/** The evaluation of one source (or the `average` row of {@link averageEvaluations}). */
export interface SourceEvaluation {
  /** Source id, or `average`. */
  readonly source: string;
  /** ROC-AUC in percent (0–100; 50 = chance). */
  readonly auc: number;
  /** Recall@k as a fraction in [0, 1]. */
  readonly recallAtK: number;
  /** The k used: the requested k clamped to the number of training samples. */
  readonly k: number;
  /** Average precision as a fraction in [0, 1], tied scores as one threshold (see {@link averagePrecision}). */
  readonly averagePrecision: number;
  /** Recall@50 as a fraction in [0, 1] (k = 50 clamped to the number of training rows; ties in expectation), whatever `k` is. */
  readonly recallAt50: number;
  /** Reciprocal rank of the first true source, in (0, 1] (ties in expectation, see {@link reciprocalRank}); for `average`: the MRR. */
  readonly mrr: number;
  /** Number of true sources among the training rows (for `average`: the sum over sources). */
  readonly nPositives: number;
  /** Number of training rows ranked. */
  readonly nTrain: number;
  /** Number of test outputs averaged into the source's score (for `average`: the sum over sources). */
  readonly nTests: number;
  /**
   * The values of the extra metrics asked for (`metrics` registry entries, e.g. a plugin's), by
   * metric id, each in the metric's own unit (its description says which); for `average`: the mean
   * over sources. Empty when none were asked for.
   */
  readonly metrics?: Readonly<Record<string, number>>;
  /**
   * Every metric's value by its column ({@link labelMetricColumns}: the label metrics under their
   * columns, `auc`, `recall_at_k`, ..., then the extra metrics under their ids), each in the
   * metric's unit; for `average`: the mean over sources. What the results tables read.
   */
  readonly values: Readonly<Record<string, number>>;
}

/**
 * Evaluates a score matrix per source, the paper's protocol: for each source, every training
 * sample's score is the mean over that source's test columns ({@link aggregateColumns}), then
 * AUC (percent), recall@k, average precision, Recall@50 and the reciprocal rank of the first
 * true source (fractions) are computed over the whole training set against the source's labels.
 *
 * @param matrix - Scores [nTrain × nTest]; higher = more responsible.
 * @param sources - Sources to evaluate; `labels` has length nTrain, `testIds` are columns of `matrix`.
 * @param k - Recall cut-off, a positive integer (clamped to nTrain).
 * @param extra - More metrics (e.g. from the `metrics` registry, {@link createMetrics}), each
 *   computed on the same aggregated scores and labels into `metrics[id]`.
 * @returns One {@link SourceEvaluation} per source, in the given order.
 * @throws DdaError on duplicate source ids, labels of the wrong length, unknown test ids, a
 *   source without test outputs, a source whose labels have no positive or no negative, two
 *   extra metrics with one id, or an extra metric that returns a non-finite value (naming it).
 */
export function evaluateSources(
  matrix: ScoreMatrix,
  sources: readonly SourceSpec[],
  k: number,
  extra: readonly Metric[] = [],
): SourceEvaluation[] {
  if (!Number.isInteger(k) || k < 1) {
    throw new DdaError(`evaluateSources: k must be a positive integer, got ${k}`, 'pass e.g. k = 500');
  }
  const nTrain = matrix.trainIds.length;
  const kk = Math.min(k, nTrain);
  const columns = labelMetricColumns(kk, extra, 'evaluateSources');
  return sourceScores(matrix, sources, 'evaluateSources').map(({ source: s, scores, nPositives }) => {
    const values = Object.fromEntries(columns.map((c) => [c.column, finiteMetric(c.metric, c.metric.compute(scores, s.labels), s.id)]));
    return {
      source: s.id,
      ...labelFields(values, kk),
      nPositives,
      nTrain,
      nTests: s.testIds.length,
      ...(extra.length > 0 ? { metrics: Object.fromEntries(extra.map((m) => [m.id, values[m.id] as number])) } : {}),
      values,
    };
  });
}

/** The named fields of a {@link SourceEvaluation} (in the order its JSON has them) from its values by column ({@link LABEL_METRICS}) and its k. */
function labelFields(values: Readonly<Record<string, number>>, k: number): Pick<SourceEvaluation, 'auc' | 'recallAtK' | 'k' | 'averagePrecision' | 'recallAt50' | 'mrr'> {
  const v = (column: string): number => values[column] as number;
  return { auc: v('auc'), recallAtK: v('recall_at_k'), k, averagePrecision: v('average_precision'), recallAt50: v('recall_at_50'), mrr: v('mrr') };
}

/** @throws DdaError when two metrics of `list` have one id. */
function checkMetricList(list: readonly Metric[], what: string): void {
  const ids = list.map((m) => m.id);
  const twice = ids.find((id, i) => ids.indexOf(id) !== i);
  if (twice !== undefined) throw new DdaError(`${what}: the metric '${twice}' is asked for twice`, 'list every metric once');
}

/**
 * Every source's scores averaged over its test columns ({@link aggregateColumns}), with its number
 * of true sources, after checking the sources against the matrix.
 *
 * @throws DdaError on duplicate source ids, labels of the wrong length, unknown test ids, a source
 *   without test outputs, or a source whose labels have no positive or no negative.
 */
function sourceScores(matrix: ScoreMatrix, sources: readonly SourceSpec[], what: string): { source: SourceSpec; scores: Float64Array; nPositives: number }[] {
  const nTrain = matrix.trainIds.length;
  const groups = new Map<string, readonly string[]>();
  for (const s of sources) {
    if (groups.has(s.id)) throw new DdaError(`${what}: source '${s.id}' is listed twice`, 'give every source a distinct id');
    if (s.labels.length !== nTrain) {
      throw new DdaError(
        `${what}: source '${s.id}' has ${s.labels.length} labels but the score matrix has ${nTrain} training rows`,
        'pass one label per training row, in the order of matrix.trainIds',
      );
    }
    groups.set(s.id, s.testIds);
  }
  const aggregated = aggregateColumns(matrix, groups);
  return sources.map((s) => {
    let nPositives = 0;
    for (let i = 0; i < nTrain; i++) if ((s.labels[i] as number) === 1) nPositives++;
    if (nPositives === 0 || nPositives === nTrain) {
      throw new DdaError(
        `${what}: source '${s.id}' has ${nPositives} true source(s) among ${nTrain} training rows; AUC needs at least one true source and one non-source`,
        'drop this source from the evaluation, or check how its labels were built',
      );
    }
    return { source: s, scores: aggregated.get(s.id) as Float64Array, nPositives };
  });
}

/** A metric's value `v` for `source`; @throws DdaError when it is not a finite number. */
function finiteMetric(m: Metric, v: number | Promise<number>, source: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new DdaError(`metric '${m.id}' returned ${String(v)} for source '${source}'`, 'a metric must return a finite number for every source with a true source and a non-source');
  return v;
}

/** One source's values of a list of metrics ({@link evaluateMetrics}), or their mean over sources ({@link averageMetricEvaluations}). */
export interface MetricEvaluation {
  /** Source id, or the average row's name. */
  readonly source: string;
  /** The metrics' values, in the order of the list; NaN where a metric with `needs` was not computed. */
  readonly values: readonly number[];
  /** Number of true sources among the training rows (for an average: the sum over sources). */
  readonly nPositives: number;
  /** Number of training rows ranked. */
  readonly nTrain: number;
  /** Number of test outputs averaged into the source's score (for an average: the sum over sources). */
  readonly nTests: number;
}

/**
 * Evaluates a score matrix per source on a list of metrics, each the same way: the source's scores
 * (every training sample's score averaged over the source's test columns) and labels go to
 * `compute`; a metric that declares {@link Metric.needs} also gets its inputs from `inputsOf`, and
 * is not computed (NaN) for a source where `inputsOf` gives none or lacks one it needs.
 *
 * @param inputsOf - The inputs of a source's row (the method's matrix and the source's columns are
 *   filled in here), or undefined where none can be made.
 * @param list - The metrics, in the order of the values (one id may appear twice, e.g. recall@k
 *   at the configuration's k and Recall@50 when k = 50).
 * @throws DdaError as {@link evaluateSources} does for the sources, or for a metric that returns a
 *   non-finite value where it was computed (NaN is allowed only from a metric with `needs`: a row
 *   it does not measure).
 */
export async function evaluateMetrics(
  matrix: ScoreMatrix,
  sources: readonly SourceSpec[],
  list: readonly Metric[],
  inputsOf?: (source: SourceSpec) => Omit<MetricInputs, 'matrix' | 'columns' | 'source'> | undefined,
): Promise<MetricEvaluation[]> {
  const column = new Map(matrix.testIds.map((id, j) => [id, j]));
  const out: MetricEvaluation[] = [];
  for (const { source: s, scores, nPositives } of sourceScores(matrix, sources, 'evaluateMetrics')) {
    const given = inputsOf?.(s);
    const values: number[] = [];
    for (const m of list) {
      const needs = m.needs ?? [];
      if (needs.length === 0) {
        values.push(finiteMetric(m, m.compute(scores, s.labels), s.id));
        continue;
      }
      if (given === undefined || needs.some((n) => given[n] === undefined)) {
        values.push(Number.NaN);
        continue;
      }
      const v = await m.compute(scores, s.labels, { ...given, source: s.id, matrix, columns: s.testIds.map((id) => column.get(id) as number) });
      values.push(Number.isNaN(v) ? v : finiteMetric(m, v, s.id));
    }
    out.push({ source: s.id, values, nPositives, nTrain: matrix.trainIds.length, nTests: s.testIds.length });
  }
  return out;
}

/**
 * The mean of per-source evaluations ({@link evaluateMetrics}) as one row named `source`: each
 * metric's mean over the sources, each source weighted equally (NaN when a source's value is NaN);
 * `nPositives` and `nTests` summed.
 *
 * @throws DdaError if `list` is empty, or its rows differ in the number of metrics or in nTrain.
 */
export function averageMetricEvaluations(list: readonly MetricEvaluation[], source = 'average'): MetricEvaluation {
  const first = list[0];
  if (first === undefined) throw new DdaError('averageMetricEvaluations: no evaluations to average', 'evaluate at least one source');
  const sums = first.values.map(() => 0);
  let nPositives = 0;
  let nTests = 0;
  for (const e of list) {
    if (e.values.length !== sums.length || e.nTrain !== first.nTrain) throw new DdaError(`averageMetricEvaluations: '${e.source}' has ${e.values.length} metric(s) over ${e.nTrain} training rows, '${first.source}' ${sums.length} over ${first.nTrain}`, 'average only evaluations of the same metrics over the same training set');
    e.values.forEach((v, i) => (sums[i] = (sums[i] as number) + v));
    nPositives += e.nPositives;
    nTests += e.nTests;
  }
  return { source, values: sums.map((x) => x / list.length), nPositives, nTrain: first.nTrain, nTests };
}

/**
 * The metrics of the `metrics` registry named by `specs` (an id, or an id with the entry's options,
 * e.g. `{ id: 'recall-at-k', k: 100 }`), created in order. Awaits nothing but the registry's
 * factories: load plugins first for a plugin's metric.
 *
 * An option key the entry does not declare ({@link RegistryEntry.options}; a plugin's entry too) is
 * refused with the closest declared one, as `--scorer-option` is: `recall-at-k:kk=5` would
 * otherwise be created with its default k.
 *
 * @param what - Who asks, to start the messages (`--metrics`, a config's `metrics`).
 * @throws DdaError naming an id the registry does not have (with the ids it has), an option the
 *   entry does not take, or a factory's error.
 */
export async function createMetrics(specs: readonly MetricSpec[], what = '--metrics'): Promise<Metric[]> {
  const out: Metric[] = [];
  for (const spec of specs) {
    const { id, ...options } = typeof spec === 'string' ? { id: spec } : spec;
    if (!metrics.has(id)) throw new DdaError(`unknown metric '${id}'`, `use one of the metrics registry: ${metrics.ids().join(', ')} (a plugin's metric needs --plugin)`);
    metrics.refuseUnknownOptions(id, options, `${what} ${id}`);
    out.push((await metrics.resolve(options, [id])).value);
  }
  return out;
}

/**
 * A warning for each `recall-at-k` of `specs` whose k (default {@link DEFAULT_RECALL_K}) is at
 * least `nTrain`: its top k holds every training sample, so its recall is 1 whatever the scores.
 */
export function trivialRecallWarnings(specs: readonly MetricSpec[], nTrain: number, what = '--metrics'): string[] {
  return specs.flatMap((spec) => {
    if (typeof spec === 'string' ? spec !== 'recall-at-k' : spec.id !== 'recall-at-k') return [];
    const k = typeof spec === 'string' || spec.k === undefined ? DEFAULT_RECALL_K : spec.k;
    if (typeof k !== 'number' || k < nTrain) return [];
    return [`warning: ${what} recall-at-k: k = ${k} is at least the ${nTrain} training samples, so recall@${k} is 1 for every method (a trivial column); give k below ${nTrain}, e.g. recall-at-k:k=${Math.max(1, Math.min(50, Math.floor(nTrain / 10)))}`];
  });
}

/**
 * The average row of a list of per-source evaluations (the paper's "average" column): the mean of
 * every metric's value over the sources (AUC in percent, recall@k, average precision, Recall@50,
 * the reciprocal rank, whose mean is the MRR, and the extra metrics), each source weighted equally.
 * `nPositives` and `nTests` are summed over the sources.
 *
 * @param list - Evaluations of the same training set at the same k (e.g. from {@link evaluateSources}).
 * @returns A {@link SourceEvaluation} with `source: 'average'`.
 * @throws DdaError if `list` is empty, or its rows differ in k or nTrain.
 */
export function averageEvaluations(list: readonly SourceEvaluation[]): SourceEvaluation {
  const first = list[0];
  if (first === undefined) throw new DdaError('averageEvaluations: no evaluations to average', 'evaluate at least one source');
  const extraIds = Object.keys(first.metrics ?? {});
  const columns = Object.keys(first.values);
  const sums = new Map(columns.map((c) => [c, 0]));
  let nPositives = 0;
  let nTests = 0;
  for (const e of list) {
    const got = Object.keys(e.metrics ?? {});
    if (got.length !== extraIds.length || got.some((id) => !extraIds.includes(id)) || Object.keys(e.values).length !== columns.length) {
      throw new DdaError(`averageEvaluations: '${e.source}' has the metrics [${got.join(', ')}], '${first.source}' [${extraIds.join(', ')}]`, 'average only evaluations with the same metrics');
    }
    if (e.k !== first.k || e.nTrain !== first.nTrain) {
      throw new DdaError(
        `averageEvaluations: '${e.source}' was evaluated with k=${e.k} over ${e.nTrain} training rows, '${first.source}' with k=${first.k} over ${first.nTrain}`,
        'average only evaluations of the same training set at the same k',
      );
    }
    for (const c of columns) sums.set(c, (sums.get(c) as number) + (e.values[c] as number));
    nPositives += e.nPositives;
    nTests += e.nTests;
  }
  const values = Object.fromEntries(columns.map((c) => [c, (sums.get(c) as number) / list.length]));
  return {
    source: 'average',
    ...labelFields(values, first.k),
    nPositives,
    nTrain: first.nTrain,
    nTests,
    ...(extraIds.length > 0 ? { metrics: Object.fromEntries(extraIds.map((id) => [id, values[id] as number])) } : {}),
    values,
  };
}
