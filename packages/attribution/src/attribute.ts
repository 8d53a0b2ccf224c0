/**
 * `dda attribute`: a user's base model, fine-tuning checkpoints, training data and queries in;
 * the training samples responsible for each query out (top-k CSV/JSONL, the score matrix, an
 * HTML page, summary.json, and metrics when labels are given). Every step is cached by content in
 * `<out>/artifacts/`, so an interrupted run resumes and a changed input recomputes only what
 * depends on it.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DdaError, createMetrics, labelMetricColumns, refuseLabelMetricsAsked, scoreUnits, trivialRecallWarnings, type Metric } from '@dda/core';
import { writeFileAtomic } from './artifacts.js';
import { describeSavedModules, trainingSetSizeWarning } from './checkpoints.js';
import { evaluateMatrix, sourcesOf } from './evaluate.js';
import { indexProjectionError, indexRunOptions } from './indexed-rows.js';
import { type MethodSpec, checkMethod, checkRequirements, debiasBeta, methodFor, methodRequirements, methodVariants, type Variant } from './method.js';
import { METRIC_COLUMNS, METRICS_NOTE, type MetricRow, type QueryTop, checkOutFolder, topK, writeMetrics, writeScoreMatrix, writeTopK } from './outputs.js';
import { PAGE_CHART_LIMIT, renderAttributionPage } from './page.js';
import { AttributionRun, type RunOptions } from './run.js';
import { type TokenAttribution, tokenAttribution } from './token-attribution.js';
import { type AttributionTask, type TaskFiles, loadTask, tokenizerRecord } from './task.js';
import { type QueryLossCheck, type TrainingLossCheck, checkQueryLoss, checkTrainingLoss } from './training-loss.js';
import { describeTruncation } from './truncation.js';

/** Everything `dda attribute` takes: the task's files, the method, the outputs, and how to run (see {@link RunOptions}). */
export interface AttributeOptions extends TaskFiles, Omit<RunOptions, 'artifactsDir'> {
  /** Output folder. */
  readonly out: string;
  readonly method: MethodSpec;
  /** Training samples listed per query (default 10). */
  readonly topK?: number;
  /** k of recall@k against labels (default 20). */
  readonly recallK?: number;
  /**
   * More metrics against the labels, from @dda/core's `metrics` registry (a plugin's too): an id,
   * or `{ id, ...options }` (e.g. `{ id: 'recall-at-k', k: 100 }`); each adds a column to
   * `metrics.csv` named by the metric's id. Needs `labels`.
   */
  readonly metrics?: readonly (string | { readonly id: string; readonly [option: string]: unknown })[];
  /**
   * Queries whose top samples get token heat maps on the page (the first ones; default
   * {@link PAGE_CHART_LIMIT}; 0 = none): two forward passes per listed sample each, seconds at real
   * size (10 queries × 10 samples took 10 minutes on a Qwen2-0.5B-shaped model here).
   */
  readonly heatMaps?: number;
  /**
   * Gradient index folders (`dda index build --out`), at most one per checkpoint (θ0 included):
   * the training gradients at their checkpoints are read from them (float16 rows, projected), not
   * computed; the run takes their projection (see indexed-rows.ts for what must match).
   */
  readonly indexes?: readonly string[];
  /** Artifact folder (default `<out>/artifacts`); several outputs may share one. */
  readonly artifactsDir?: string;
  /** The command line, recorded in summary.json and the page. */
  readonly command?: string;
}

/** What a run produced. */
export interface AttributeResult {
  readonly task: AttributionTask;
  /** The method's matrix [nTrain × nQueries]; higher = more responsible. One of `variants` (the one it is). */
  readonly method: Variant;
  /** plain / debias / denoise / dda (the strategies the method uses). */
  readonly variants: readonly Variant[];
  /** The test measurement the scorer differentiated (`loss`, `contrastive`, ...), or null for a scorer that takes no test gradient. */
  readonly measurement: string | null;
  readonly tops: readonly QueryTop[];
  /** Per-token attribution of the top samples of the first {@link PAGE_CHART_LIMIT} queries (drawn on the page), or why there is none. */
  readonly tokens: TokenAttribution;
  /** Per variant (each once; `chosen` on the method's) and labelled source (with `average`), when labels were given. */
  readonly metrics: readonly MetricRow[];
  /** The final checkpoint's loss on the training data against the loss its trainer logged (see {@link checkTrainingLoss}), or why it was skipped. */
  readonly trainingLoss: TrainingLossCheck | { readonly skipped: string };
  /** The final checkpoint's loss on the query outputs against its loss on the training samples (see {@link checkQueryLoss}), or why it was skipped. */
  readonly queryLoss: QueryLossCheck | { readonly skipped: string };
  /** Output files written. */
  readonly files: readonly string[];
  readonly reused: readonly string[];
  readonly computed: readonly string[];
  readonly seconds: Readonly<Record<string, number>>;
}

/** The output file names in `--out`. */
export const ATTRIBUTE_FILES = {
  topkCsv: 'topk.csv', topkJsonl: 'topk.jsonl', scores: 'scores.npy', scoresMeta: 'scores.json', page: 'report.html', summary: 'summary.json', metrics: 'metrics.csv',
} as const;

/**
 * The registry metrics of `o.metrics`, created (plugins are loaded by then).
 *
 * @throws DdaError for metrics without labels, an unknown id, or a metric whose id is a column
 *   `metrics.csv` has already.
 */
async function labelMetrics(o: AttributeOptions): Promise<Metric[]> {
  if (!o.metrics || o.metrics.length === 0) return [];
  if (!o.labels) throw new DdaError('--metrics needs --labels: a metric compares the scores with the true sources', 'give --labels, or drop --metrics');
  const out = await createMetrics(o.metrics);
  refuseLabelMetricsAsked(o.recallK ?? 20, out); // a label metric again (the demo's check and message)
  labelMetricColumns(1, out); // a metric asked for twice, or one that needs a benchmark's inputs
  for (const m of out) {
    if (METRIC_COLUMNS.includes(m.id)) throw new DdaError(`--metrics ${m.id}: metrics.csv has a column '${m.id}' already`, 'drop it from --metrics');
  }
  return out;
}

/**
 * Runs an attribution end to end and writes its outputs into `o.out`.
 *
 * @throws DdaError for any bad input (named by file and record; an `out` that is a file) before
 *   model work starts, and for unknown scorer, debiaser or denoiser ids.
 */
export async function runAttribute(o: AttributeOptions): Promise<AttributeResult> {
  const log = o.log ?? (() => {});
  const t0 = Date.now();
  checkOutFolder(o.out);
  await checkMethod(o.method);
  const extraMetrics = await labelMetrics(o);
  const task = await loadTask(o);
  const truncation = describeTruncation(task.truncated);
  if (truncation) log(truncation);
  log(`task: ${task.train.samples.length} training samples, ${task.queries.length} queries, ${task.checkpoints.length} checkpoint(s) (${task.checkpoints.map((c) => `${c.id}${Number.isNaN(c.info.learningRate) ? '' : ` lr ${Number(c.info.learningRate.toPrecision(6))}`}`).join(', ')}), base ${task.base.family} ${task.base.config.numLayers} layers, context ${task.encoding.maxLength}`);
  const size = trainingSetSizeWarning(task.checkpoints, task.train.records.length, o.train); // --train against the run's steps per epoch × batch
  if (size !== null) log(size);
  const { indexed, options: fromIndexes } = indexRunOptions(task, { ...o, log });
  const projection = fromIndexes.projection ?? o.projection;
  const run = await AttributionRun.open(task, { ...o, ...fromIndexes, artifactsDir: o.artifactsDir ?? join(o.out, 'artifacts'), log });
  try {
    const scorer = await run.scorer(o.method.scorer);
    if (indexed && !scorer.needs.includes('gradients')) throw new DdaError(`--index has no effect on '${scorer.id}', which takes no training gradients`, 'drop --index, or use a gradient scorer (dda methods)');
    if (o.projection && !indexed && !scorer.needs.includes('gradients')) throw new DdaError(`--projection-dim has no effect on '${scorer.id}', which takes no gradients (its scores would be the same, recorded as projected)`, 'drop --projection-dim (and --projection-seed), or use a gradient scorer (dda methods)');
    if (o.storeGradients && !scorer.needs.includes('gradients')) throw new DdaError(`--store-gradients has no effect on '${scorer.id}', which takes no gradients`, 'drop --store-gradients, or use a gradient scorer (dda methods)');
    const spec = methodFor(o.method, scorer, log);
    await checkRequirements(spec, task, scorer, await run.measurement(), log); // what the method needs, before any model work
    if (o.learningRates && !(await methodRequirements(spec, scorer, await run.measurement())).some((r) => r.need === 'learning-rates')) {
      throw new DdaError(`--learning-rates has no effect: nothing in this method weights the checkpoints by their learning rate (--scorer ${spec.scorer}, --denoise ${spec.denoise ?? 'none'})`, 'drop --learning-rates, or use --scorer tracin-cp or --denoise lr-weighted, which use them');
    }
    if (scorer.needs.includes('gradients')) await run.measurementTerms(); // every query measurable, before any model work
    const m = await run.measurement();
    // The test measurement f is what the gradient scorers differentiate; the others never see it.
    const measured = scorer.needs.includes('gradients') ? { id: m.id, description: m.description } : null;
    if (!measured && m.id !== 'loss') log(`warning: --measurement ${m.id} does not apply to '${o.method.scorer}', which takes no test gradient (its scores are the same under any measurement); use a gradient scorer to score under ${m.id}`);
    const trainingLoss = await checkTrainingLoss(run, o.method.scorer, log); // the data rendered as in training (warns)
    const queryLoss = await checkQueryLoss(run, o.method.scorer, log); // the queries rendered as the data (warns)
    const s = await run.scoreCheckpoints(o.method.scorer);
    const infos = task.checkpoints.map((c) => c.info);
    const { method, variants } = await methodVariants(s, infos, spec);
    const k = o.topK ?? 10;
    const projectionError = indexed ? await indexProjectionError(run, indexed, s, infos, spec, method.matrix, k, log) : null;
    const sources = task.labels ? sourcesOf(task, task.labels) : null;
    const truth = new Map<string, Set<string>>();
    if (task.labels) {
      for (const q of task.queries) {
        const set = new Set<string>();
        for (const l of task.labels) if ((l.kind === 'query' && l.key === q.record.id) || (l.kind === 'group' && l.key === q.record.group)) l.sources.forEach((x) => set.add(x));
        truth.set(q.record.id, set);
      }
    }
    const tops = topK(task, method.matrix, k, task.labels ? truth : undefined);
    const tTokens = Date.now();
    const heatMaps = o.heatMaps ?? PAGE_CHART_LIMIT;
    if (!Number.isInteger(heatMaps) || heatMaps < 0) throw new DdaError(`--heat-maps must be a non-negative integer, got ${heatMaps}`);
    const tokens: TokenAttribution = heatMaps === 0
      ? { kind: 'omitted', reason: 'No token heat maps: --heat-maps 0 (each map takes two forward passes per listed sample).' }
      : await tokenAttribution(run, s, tops.slice(0, heatMaps));
    log(tokens.kind === 'computed'
      ? `token heat maps: top ${k} samples of ${Math.min(tops.length, heatMaps)} queries at ${tokens.checkpoint}, 2 forward passes each, ${((Date.now() - tTokens) / 1000).toFixed(1)} s`
      : heatMaps === 0 ? 'token heat maps: none (--heat-maps 0)' : `token heat maps: none (${projection ? `the scores are over gradients projected to ${projection.dim} dimensions` : `${o.method.scorer} is not a gradient dot product`})`);
    const recallK = o.recallK ?? 20;
    if (sources) for (const w of trivialRecallWarnings(o.metrics ?? [], task.train.samples.length)) log(w);
    if (sources && recallK > task.train.samples.length) log(`note: -k ${recallK} is more than the ${task.train.samples.length} training samples: recall@k is recall@${task.train.samples.length} (every sample counted), 1 for every method`);
    const metrics: MetricRow[] = sources ? variants.flatMap((v) => evaluateMatrix(v.matrix, sources, recallK, extraMetrics).map((e) => ({ ...e, variant: v.variant, description: v.description, chosen: v === method }))) : [];
    // The columns of metrics.csv and the page's table: the label metrics at the k evaluated (clamped to the training set), then --metrics.
    const metricList = labelMetricColumns(Math.min(recallK, task.train.samples.length), extraMetrics);
    const F = ATTRIBUTE_FILES;
    const path = (f: string): string => join(o.out, f);
    await writeTopK(path(F.topkCsv), path(F.topkJsonl), tops);
    writeScoreMatrix(path(F.scores), path(F.scoresMeta), method.matrix, method.description, measured);
    if (sources) await writeMetrics(path(F.metrics), metrics, metricList);
    else if (existsSync(path(F.metrics))) {
      // An earlier run's metrics beside this run's scores would be read as this run's.
      rmSync(path(F.metrics));
      log(`removed ${path(F.metrics)}: it held an earlier run's metrics, and this run has no --labels`);
    }
    const command = o.command ?? 'dda attribute';
    const methodMetrics = metrics.filter((m) => m.chosen);
    writeFileAtomic(path(F.page), await renderAttributionPage({
      title: 'Training data attribution', method: method.description,
      units: `Units of the scores: ${scoreUnits(method.matrix)}. Computed over: ${method.matrix.provenance.computedOver}`,
      matrix: method.matrix, tops, metrics: sources ? { rows: methodMetrics, columns: metricList } : null, command, tokens,
    }));
    const files = [F.topkCsv, F.topkJsonl, F.scores, F.scoresMeta, F.page, ...(sources ? [F.metrics] : []), F.summary].map(path);
    writeFileAtomic(path(F.summary), `${JSON.stringify({
      command,
      sign: 'higher score = training sample more responsible for the query output',
      // β as applied (a number, `β fitted per test column: ...`, or null without a debiaser), not the requested default.
      method: {
        scorer: spec.scorer, debias: spec.debias, denoise: spec.denoise, beta: debiasBeta(method.matrix), variant: method.variant, description: method.description,
        units: scoreUnits(method.matrix), computedOver: method.matrix.provenance.computedOver, checkpoints: method.matrix.provenance.checkpoints, transforms: method.matrix.provenance.transforms,
      },
      inputs: {
        base: o.base, checkpoints: o.checkpoints, train: o.train, queries: o.queries, ...(o.labels ? { labels: o.labels } : {}),
        fields: o.fields ?? {}, queryFields: o.queryFields ?? {}, promptFormat: o.promptFormat ?? 'raw', lossOn: o.lossOn ?? 'assistant', rendering: task.rendering, tokenizer: tokenizerRecord(task.base), baseMatch: task.baseMatch, hashes: task.hashes,
      },
      checkpoints: task.checkpoints.map((c) => ({
        id: c.id, dir: c.dir, kind: c.kind, epoch: c.info.epoch, step: c.step, learningRate: Number.isNaN(c.info.learningRate) ? null : c.info.learningRate,
        ...(c.trainerState ? { trainerState: c.trainerState.path } : {}),
        gradientsOver: c.kind === 'lora' ? 'LoRA parameters only' : 'every parameter of the model',
        ...(c.saved ? { modulesToSave: { entries: c.saved.entries, modules: c.saved.modules, embeddingLayers: c.saved.embeddingLayers, applied: describeSavedModules(c.saved) } } : {}),
      })),
      counts: { train: task.train.samples.length, queries: task.queries.length, checkpoints: task.checkpoints.length },
      trainingLoss,
      queryLoss,
      truncated: task.truncated,
      measurement: measured ?? { id: null, description: `none: '${o.method.scorer}' takes no test gradient` },
      engine: run.reused.length + run.computed.length > 0 ? { backend: (await run.model()).backend, gradients: (await run.model()).gradientEngine } : { backend: null, gradients: o.gradientEngine ?? 'onnxruntime' },
      // A row's `values` repeats its fields by metrics.csv's column (an asked metric's is in `metrics`).
      metrics: sources ? { ...METRICS_NOTE, rows: metrics.map(({ values: _values, ...row }) => row) } : null,
      artifacts: { reused: run.reused.length, computed: run.computed.length },
      // Where the training gradients went: streamed blocks were computed, scored and dropped (see RunOptions.storeGradients).
      gradients: { path: run.gradientPath(scorer), streamedBlocks: run.streamed.length, ...(indexed ? { readFromIndexes: run.readRows.length } : {}) },
      // Every gradient row projected before scoring (RunOptions.projection): the scores are the scorer's on the projected rows.
      projection: projection ? { ...projection, note: 'every training and query gradient row was projected to dim dimensions by the seeded projection of projection.ts before scoring' } : null,
      // The training rows read from gradient indexes (float16) instead of computed, by checkpoint.
      indexes: indexed ? { used: indexed.record, computedAt: indexed.computedAt, projectionError, note: 'training gradient rows at these checkpoints were read from the indexes (projected, rounded to float16); at computedAt they were computed and projected with the same projection' } : null,
      seconds: { ...run.seconds, total: (Date.now() - t0) / 1000 },
      outputs: files,
    }, null, 2)}\n`);
    log(`artifacts: ${run.computed.length} computed, ${run.reused.length} reused`);
    return { task, method, variants, measurement: measured?.id ?? null, tops, tokens, metrics, trainingLoss, queryLoss, files, reused: run.reused, computed: run.computed, seconds: run.seconds };
  } finally {
    await run.dispose();
  }
}
