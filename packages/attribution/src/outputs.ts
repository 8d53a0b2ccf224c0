/**
 * What `dda attribute` writes: the top-k training samples of every query (CSV and JSON Lines), the
 * full score matrix as NumPy `.npy` with its ids, sign and units beside it (`scores.json`), and
 * metrics against labels. Every file is written atomically; an output folder that is a file is
 * refused first ({@link checkOutFolder}).
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { writeToBuffer } from 'fast-csv';
import { DdaError, labelMetricColumns, metricTableHeader, scoreUnits, type MetricColumn, type ScoreMatrix } from '@dda/core';
import { writeFileAtomic } from './artifacts.js';
import { AUC_ON, AUC_PER_QUERY_MEAN, type AttributionEvaluation } from './evaluate.js';
import { debiasBeta, describeScores } from './method.js';
import type { AttributionTask } from './task.js';

/**
 * Refuses an output folder that is a file, or lies under one, before any work (mkdir and the
 * writes would otherwise fail late, with the operating system's words).
 *
 * @param option The option that named it, for the message.
 * @throws DdaError naming the option and the path.
 */
export function checkOutFolder(out: string, option = '--out'): void {
  let at = resolve(out);
  while (!existsSync(at)) {
    const up = dirname(at);
    if (up === at) return;
    at = up;
  }
  if (statSync(at).isDirectory()) return;
  throw new DdaError(at === resolve(out) ? `${option} ${out} is a file; give a folder` : `${option} ${out}: ${at} is a file; give a folder`, 'name a new folder (it is made) or an existing one');
}

/** One ranked training sample of one query. */
export interface TopEntry {
  readonly rank: number;
  readonly trainId: string;
  readonly score: number;
  /** Where the training record is (file:line). */
  readonly where: string;
  readonly prompt: string;
  readonly response: string;
  /** Whether it is a labelled true source of the query or its group (null without labels). */
  readonly trueSource: boolean | null;
}

/** The top training samples of one query. */
export interface QueryTop {
  readonly queryId: string;
  readonly group: string | null;
  readonly prompt: string;
  readonly output: string;
  readonly corrected: string | null;
  /** The query record's other fields. */
  readonly meta: Readonly<Record<string, unknown>>;
  readonly top: readonly TopEntry[];
  /** The `k` lowest-scoring training samples (the most opposing), lowest first; `rank` counts from the highest (n_train = lowest). */
  readonly bottom: readonly TopEntry[];
}

/**
 * The `k` highest-scoring training samples of every query (column), highest first, and the `k`
 * lowest, lowest first (ties by training order). `sources` (query id → set of true-source
 * training ids) marks labelled sources.
 */
export function topK(task: AttributionTask, m: ScoreMatrix, k: number, sources?: ReadonlyMap<string, ReadonlySet<string>>): QueryTop[] {
  const nTrain = m.trainIds.length;
  const nTest = m.testIds.length;
  const kk = Math.min(k, nTrain);
  const records = task.train.records;
  const samples = task.train.samples;
  return task.queries.map((q, j) => {
    if (m.testIds[j] !== q.record.id) throw new Error(`score matrix column ${j} is '${m.testIds[j]}', expected query '${q.record.id}'`);
    const order = Array.from({ length: nTrain }, (_, i) => i).sort((a, b) => (m.values[b * nTest + j] as number) - (m.values[a * nTest + j] as number) || a - b);
    const truth = sources?.get(q.record.id);
    const entry = (i: number, r: number): TopEntry => ({
      rank: r + 1,
      trainId: m.trainIds[i] as string,
      score: m.values[i * nTest + j] as number,
      where: records[i]?.where ?? '',
      prompt: samples[i]?.prompt ?? '',
      response: samples[i]?.response ?? '',
      trueSource: truth ? truth.has(m.trainIds[i] as string) : null,
    });
    return {
      queryId: q.record.id,
      group: q.record.group,
      prompt: q.sample.prompt,
      output: q.record.output,
      corrected: q.record.corrected,
      meta: q.record.meta,
      top: order.slice(0, kk).map((i, r) => entry(i, r)),
      bottom: order.map((i, r) => [i, r] as const).slice(nTrain - kk).reverse().map(([i, r]) => entry(i, r)),
    };
  });
}

/** CSV columns of `topk.csv`. */
export const TOPK_COLUMNS = ['query_id', 'group', 'rank', 'train_id', 'score', 'true_source', 'train_where', 'train_prompt', 'train_response'] as const;

/** Writes `topk.csv` (one row per query × rank) and `topk.jsonl` (one line per query with its ranked list). */
export async function writeTopK(csvPath: string, jsonlPath: string, tops: readonly QueryTop[]): Promise<void> {
  const rows = tops.flatMap((q) => q.top.map((t) => ({
    query_id: q.queryId, group: q.group ?? '', rank: t.rank, train_id: t.trainId, score: t.score,
    true_source: t.trueSource === null ? '' : t.trueSource ? 1 : 0, train_where: t.where, train_prompt: t.prompt, train_response: t.response,
  })));
  writeFileAtomic(csvPath, await writeToBuffer(rows, { headers: [...TOPK_COLUMNS] }));
  const lines = tops.map((q) => JSON.stringify({
    query_id: q.queryId, group: q.group, output: q.output, corrected: q.corrected, ...(Object.keys(q.meta).length ? { meta: q.meta } : {}),
    top: q.top.map((t) => ({ rank: t.rank, train_id: t.trainId, score: t.score, ...(t.trueSource !== null ? { true_source: t.trueSource } : {}), where: t.where, prompt: t.prompt, response: t.response })),
  }));
  writeFileAtomic(jsonlPath, `${lines.join('\n')}\n`);
}

/**
 * A float64 matrix as NumPy `.npy` bytes (format 1.0, little-endian `<f8`, C order, shape [rows, cols]):
 * `numpy.load(path)` reads it.
 */
export function npyBytes(values: Float64Array, rows: number, cols: number): Uint8Array {
  if (values.length !== rows * cols) throw new Error(`npy: ${values.length} values for shape (${rows}, ${cols})`);
  let header = `{'descr': '<f8', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + values.byteLength);
  out.set([0x93, ...new TextEncoder().encode('NUMPY'), 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), 10 + header.length);
  return out;
}

/**
 * Writes the score matrix as `scores.npy` [n_train × n_queries] and `scores.json` beside it (train
 * ids = rows, query ids = columns, sign, the method as `description` says it (by default
 * {@link describeScores} without the checkpoints' epochs), the units of the final scores
 * ({@link scoreUnits}), the test measurement the scorer differentiated (when given: `null` for a
 * scorer that takes no test gradient), β as applied ({@link debiasBeta}), provenance).
 */
export function writeScoreMatrix(npyPath: string, jsonPath: string, m: ScoreMatrix, description: string = describeScores(m), measurement?: { readonly id: string; readonly description: string } | null): void {
  writeFileAtomic(npyPath, npyBytes(m.values, m.trainIds.length, m.testIds.length));
  writeFileAtomic(jsonPath, `${JSON.stringify({
    format: 'scores.npy: float64 [n_train, n_queries], row i = train_ids[i], column j = query_ids[j]; numpy.load("scores.npy")',
    sign: 'higher score = training sample more responsible for the query output',
    method: description,
    units: scoreUnits(m),
    ...(measurement !== undefined ? { measurement: measurement ?? 'none: the scorer takes no test gradient' } : {}),
    beta: debiasBeta(m),
    provenance: m.provenance,
    shape: [m.trainIds.length, m.testIds.length],
    train_ids: m.trainIds,
    query_ids: m.testIds,
  }, null, 2)}\n`);
}

/** One row of `metrics.csv`: a variant on one labelled source (or `average`); `chosen` marks the variant that is the run's method. */
export type MetricRow = AttributionEvaluation & { readonly variant: string; readonly description: string; readonly chosen: boolean };

/** The columns of `metrics.csv` besides the metrics': before the lead metrics, after them, and after the other label metrics (the asked metrics come last). */
const METRIC_ROW_COLUMNS = { first: ['variant', 'chosen', 'source'], afterLead: ['k'], tail: ['n_positives', 'n_train', 'n_queries', 'description'] } as const;

/**
 * The AUC's two columns in `metrics.csv`: the `auc` label metric on each group's mean scores
 * ({@link AUC_ON}), and beside it the mean of its per-query values ({@link AUC_PER_QUERY_MEAN},
 * `aucPerQueryMean`). Every other metric has one column, named as in `results.csv`.
 */
export const GROUP_AUC = { column: 'auc', names: ['auc_of_group_mean_scores', 'auc_per_query_mean'] } as const;

/** A metric's column names in `metrics.csv`. */
const metricNames = (c: MetricColumn): readonly string[] => (c.column === GROUP_AUC.column ? GROUP_AUC.names : [c.column]);

/** The columns of `metrics.csv` for the metrics `list`: the label metrics ({@link labelMetricColumns}), then those asked for by `--metrics`, by id. */
export function metricColumns(list: readonly MetricColumn[]): string[] {
  return metricTableHeader(list, METRIC_ROW_COLUMNS, metricNames);
}

/**
 * CSV columns of `metrics.csv` with the label metrics alone: `auc_of_group_mean_scores` is
 * {@link AUC_ON}, `auc_per_query_mean` {@link AUC_PER_QUERY_MEAN}; `chosen` is 1 on the rows of the
 * variant the run's method is. `--metrics` add a column each at the end.
 */
export const METRIC_COLUMNS: readonly string[] = metricColumns(labelMetricColumns(1));

/** What `auc` and `aucPerQueryMean` of the metrics are, for summary.json and the page. */
export const METRICS_NOTE = { auc: AUC_ON, aucPerQueryMean: AUC_PER_QUERY_MEAN } as const;

/**
 * A row's cells of one metric: its value (rounded to 4 decimals), and for the AUC also the mean of
 * the per-query AUCs, under the metric's names ({@link metricColumns}).
 */
export function metricCells(r: Pick<MetricRow, 'values' | 'aucPerQueryMean'>, c: MetricColumn): [string, number][] {
  const r4 = (x: number): number => Number(x.toFixed(4));
  const value = r4(r.values[c.column] ?? Number.NaN);
  return c.column === GROUP_AUC.column ? [[GROUP_AUC.names[0], value], [GROUP_AUC.names[1], r4(r.aucPerQueryMean)]] : [[c.column, value]];
}

/**
 * Writes `metrics.csv`: every metric of `list` (the run's {@link labelMetricColumns}: AUC in percent, recall@k,
 * average precision, Recall@50 and the reciprocal rank of the first true source as fractions, the
 * `average` row's reciprocal rank being the MRR; then the registry metrics asked for by
 * `--metrics`, by id, in their own units) of every variant per labelled source, and their average;
 * each variant once.
 */
export async function writeMetrics(path: string, rows: readonly MetricRow[], list: readonly MetricColumn[]): Promise<void> {
  const out = rows.map((r) => ({
    variant: r.variant, chosen: r.chosen ? 1 : 0, source: r.source, k: r.k, n_positives: r.nPositives, n_train: r.nTrain, n_queries: r.nTests, description: r.description,
    ...Object.fromEntries(list.flatMap((c) => metricCells(r, c))),
  }));
  writeFileAtomic(path, await writeToBuffer(out, { headers: metricColumns(list) }));
}
