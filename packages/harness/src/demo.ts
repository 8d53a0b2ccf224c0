/**
 * The demo: one experiment made (@dda/experiment) and attributed through the same code as
 * `dda attribute` (@dda/attribution): plain influence, debias, denoise, DDA and the z-scored
 * variants, with ROC-AUC and recall@k per source.
 */
import { cpSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { averageEvaluations, createMetrics, debiasers, denoisers, evaluateSources, labelMetricColumns, refuseLabelMetricsAsked, trivialRecallWarnings, type Metric, type MetricColumn, type MetricSpec, measurements, scorers, type ScoreMatrix, type SourceEvaluation, type SourceSpec, type ProgressSink } from '@dda/core';
import {
  AttributionRun, RECOMMENDED_DDA, ensurePlugins, isModelFree, loadTask, plainVariant, ddaMatrix, sourcesOf, variantOf, noteSameScores, type AttributionTask, type CheckpointScores, type GradientEngine, type Variant,
} from '@dda/attribution';
import { DEFAULT_EXPERIMENT, makeExperiment, type Experiment, type ExperimentOptions, type Log, type TestError } from '@dda/experiment';

/** Everything that defines a demo run. Same options + same seed = same scores. */
export interface DdaRunOptions extends Omit<ExperimentOptions, 'artifactsDir'> {
  /** Output folder; its `artifacts/` holds the experiment and every cached step. */
  readonly outDir: string;
  /** Scorer id. */
  readonly scorer: string;
  /** β of the debias term. */
  readonly beta: number;
  /** Debiaser of the `debias` and `dda` rows (default `raw`, the paper's formula). */
  readonly debiaser: string;
  /** Denoiser of the `denoise` and `dda` rows (default `mean`, the paper's average). */
  readonly denoiser: string;
  /** k of recall@k. */
  readonly k: number;
  /** Engine of the per-example gradients, losses and representations (default onnxruntime, tfjs where it does not start). */
  readonly gradientEngine?: GradientEngine;
  /** Test measurement f (default `loss`; `contrastive`, `entity-margin`). */
  readonly measurement?: string;
  /** Keep the training gradients in the store (see `storeGradients` of @dda/attribution's RunOptions; default false: streamed). */
  readonly storeGradients?: boolean;
  /**
   * More metrics of @dda/core's `metrics` registry (a plugin's too; `dda demo --metrics`): an id, or
   * `{ id, ...options }`; each is computed per source beside the label metrics and adds a column
   * to `results.csv` named by its id. Metrics of scores and labels only (no `needs`).
   */
  readonly metrics?: readonly MetricSpec[];
}

export const DEFAULT_RUN_OPTIONS: DdaRunOptions = {
  ...DEFAULT_EXPERIMENT, outDir: 'dda-out', scorer: 'grad-dot', beta: 1, debiaser: 'raw', denoiser: 'mean', k: 20,
};

/** One row of the result table: a variant of the attribution on one source (or `average`). */
export interface ResultRow extends SourceEvaluation {
  readonly variant: string;
  readonly scorer: string;
  readonly description: string;
}

export interface DdaRunResult {
  readonly options: DdaRunOptions;
  readonly backend: string;
  readonly dataset: Experiment['dataset'];
  readonly errors: readonly TestError[];
  readonly experiment: Experiment['files'];
  readonly rows: readonly ResultRow[];
  /** The metrics of the rows, in the columns of `results.csv`: the label metrics, then the `metrics` asked for. */
  readonly metrics: readonly MetricColumn[];
  /** Scores of every variant [n_train × n_test]. */
  readonly scores: ReadonlyMap<string, ScoreMatrix>;
  readonly finetuneLosses: readonly number[];
  /** Mean |score| of the base (θ0) and final-checkpoint matrices: the scale mismatch raw debias suffers from. */
  readonly scoreScale: { readonly base: number; readonly final: number };
  /** Artifacts loaded from earlier runs instead of recomputed. */
  readonly reused: readonly string[];
  /** Artifacts computed by this run; none when every result came from an earlier run. */
  readonly computed: readonly string[];
  readonly seconds: Record<string, number>;
}

/** The attribution task of an experiment: its files, loaded as `dda attribute` loads them. */
export function experimentTask(exp: Experiment): Promise<AttributionTask> {
  return loadTask({ base: exp.files.base, checkpoints: [exp.files.run], train: exp.files.train, queries: exp.files.queries, labels: exp.files.labels });
}

/**
 * The demo's variants: plain (final checkpoint, or the scorer's own combination), debias, denoise
 * and DDA with the run's debiaser and denoiser (the paper's by default), the z-scored debias / DDA,
 * and the recommended DDA ({@link RECOMMENDED_DDA}). Model-free scorers get plain only.
 */
export async function demoVariants(s: CheckpointScores, task: AttributionTask, o: Pick<DdaRunOptions, 'debiaser' | 'denoiser' | 'beta'>): Promise<Variant[]> {
  const infos = task.checkpoints.map((c) => c.info);
  const plain = await plainVariant(s, infos); // (loads the built-in plugins)
  if (isModelFree(s.scorer)) return [plain];
  const final = plain.matrix;
  const zDebias = await debiasers.create('zscore', { beta: o.beta });
  const denoised = (await denoisers.create(o.denoiser, {})).denoise(s.epochs, infos);
  // Descriptions and units come from each matrix's provenance (describeScores), so they say what was applied;
  // a row with the scores of an earlier one (e.g. dda = dda-recommended with those options) says so.
  return noteSameScores([
    plain,
    variantOf('debias', await ddaMatrix(s, infos, { debias: o.debiaser, denoise: null, beta: o.beta })),
    variantOf('denoise', denoised),
    variantOf('dda', await ddaMatrix(s, infos, { debias: o.debiaser, denoise: o.denoiser, beta: o.beta })),
    variantOf('debias-zscore', zDebias.debias(final, s.base)),
    variantOf('dda-zscore', zDebias.debias(denoised, s.base)),
    variantOf('dda-recommended', await ddaMatrix(s, infos, { debias: RECOMMENDED_DDA.debias, denoise: RECOMMENDED_DDA.denoise, beta: o.beta })),
  ]);
}

/** ROC-AUC, recall@k, average precision, Recall@50, reciprocal rank and the `extra` metrics of one variant per labelled source, then their average. */
export function evaluateVariant(task: AttributionTask, v: Variant, scorer: string, k: number, extra: readonly Metric[] = []): ResultRow[] {
  const evals = evaluateSources(v.matrix, sourcesOf(task, task.labels ?? []), k, extra);
  return [...evals, averageEvaluations(evals)].map((e) => ({ ...e, variant: v.variant, scorer, description: v.description }));
}

/**
 * Copies an experiment's files into `dir` under readable names (`base/`, `run/`, `train.jsonl`,
 * `queries.jsonl`, `labels.json`): the inputs of `dda attribute`, as a user's own run would be.
 */
export function exportExperiment(exp: Experiment, dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  // θ0 pretrained by the experiment is copied; a user's model folder (maybe gigabytes) is linked.
  if (resolve(exp.files.base).startsWith(resolve(exp.options.artifactsDir))) cpSync(exp.files.base, join(dir, 'base'), { recursive: true, filter: (src) => !src.endsWith('manifest.json') });
  else symlinkSync(resolve(exp.files.base), join(dir, 'base'), 'dir');
  cpSync(exp.files.run, join(dir, 'run'), { recursive: true, filter: (src) => !src.endsWith('manifest.json') });
  for (const f of ['train', 'queries', 'labels'] as const) cpSync(exp.files[f], join(dir, f === 'labels' ? 'labels.json' : `${f}.jsonl`));
}

/** The two kinds of test error of an experiment: made by θ0 already, or introduced by fine-tuning. */
export const ERROR_KINDS = ['introduced', 'base-made'] as const;

/**
 * The sources of each error kind ({@link ERROR_KINDS}) that has test outputs, as `<source>[<kind>]`
 * with that kind's test outputs only (queries flagged `produced_by_base` by the experiment:
 * `base-made`; the others: `introduced`); a source without errors of a kind is left out of it.
 * None when the queries carry no such flag. The benchmark evaluates each kind's sources and their
 * average (`average[<kind>]`) beside the sources.
 */
export function errorKindSources(task: AttributionTask): { kind: (typeof ERROR_KINDS)[number]; sources: SourceSpec[] }[] {
  const flag = new Map(task.queries.map((q) => [q.record.id, q.record.meta.produced_by_base]));
  if (![...flag.values()].some((x) => typeof x === 'boolean')) return [];
  const out: { kind: (typeof ERROR_KINDS)[number]; sources: SourceSpec[] }[] = [];
  for (const kind of ERROR_KINDS) {
    const sources = sourcesOf(task, task.labels ?? [])
      .map((s) => ({ ...s, id: `${s.id}[${kind}]`, testIds: s.testIds.filter((id) => (flag.get(id) === true) === (kind === 'base-made')) }))
      .filter((s) => s.testIds.length > 0);
    if (sources.length > 0) out.push({ kind, sources });
  }
  return out;
}

/** Mean |score| of a matrix. */
function meanAbs(m: ScoreMatrix): number {
  return m.values.reduce((a, b) => a + Math.abs(b), 0) / Math.max(m.values.length, 1);
}

/**
 * The whole demo end to end: make the experiment (dataset → θ0 → LoRA checkpoints → test errors),
 * attribute it (gradients → scores at θ0 and every checkpoint → debias / denoise / DDA) and
 * evaluate (ROC-AUC and recall@k per source).
 */
export async function runDda(partial: Partial<DdaRunOptions> = {}, log: Log = () => {}, progress?: ProgressSink): Promise<DdaRunResult> {
  const o: DdaRunOptions = { ...DEFAULT_RUN_OPTIONS, ...partial };
  const t0 = Date.now();
  const artifactsDir = join(o.outDir, 'artifacts');
  const { outDir: _out, scorer: _s, beta: _b, debiaser: _db, denoiser: _dn, k: _k, gradientEngine: _g, measurement: _m, storeGradients: _sg, metrics: _mt, ...expOptions } = o;
  // Resolve the plugins first, so that a wrong id fails before minutes of training.
  await ensurePlugins();
  const asked = await createMetrics(o.metrics ?? []);
  refuseLabelMetricsAsked(o.k, asked); // as dda attribute: a label metric again would be a second column of the same numbers
  const metricColumns = labelMetricColumns(o.k, asked); // refuses a metric asked twice, or one only a benchmark can compute
  await scorers.create(o.scorer, {});
  await measurements.create(o.measurement ?? 'loss', {});
  await debiasers.create(o.debiaser, { beta: o.beta });
  await denoisers.create(o.denoiser, {});
  const exp = await makeExperiment({ ...expOptions, artifactsDir }, log, progress);
  exportExperiment(exp, join(o.outDir, 'experiment'));
  const task = await experimentTask(exp);
  for (const w of trivialRecallWarnings(o.metrics ?? [], task.train.samples.length)) log(w);
  const run = await AttributionRun.open(task, {
    artifactsDir, log, ...(progress ? { progress } : {}), ...(o.gradientEngine ? { gradientEngine: o.gradientEngine } : {}), ...(o.backends ? { backends: o.backends } : {}),
    ...(o.measurement ? { measurement: o.measurement } : {}), ...(o.storeGradients ? { storeGradients: true } : {}),
  });
  try {
    const tStep = Date.now();
    const s = await run.scoreCheckpoints(o.scorer);
    const seconds: Record<string, number> = { ...exp.seconds, 'gradients+scores': (Date.now() - tStep) / 1000 };
    const variants = await demoVariants(s, task, o);
    if (isModelFree(s.scorer)) log(`scorer '${o.scorer}' does not use the model: debias and denoise do not apply, reporting the plain row only`);
    const rows = variants.flatMap((v) => evaluateVariant(task, v, o.scorer, o.k, asked));
    seconds.total = (Date.now() - t0) / 1000;
    const final = s.epochs[s.epochs.length - 1] as ScoreMatrix;
    const scoreScale = { base: meanAbs(s.base), final: meanAbs(final) };
    log(`mean |score|: base ${scoreScale.base.toExponential(3)}, final ${scoreScale.final.toExponential(3)} (ratio ${(scoreScale.base / scoreScale.final).toFixed(2)})`);
    return {
      options: o, backend: exp.backend, dataset: exp.dataset, errors: exp.errors, experiment: exp.files, rows, metrics: metricColumns,
      scores: new Map(variants.map((v) => [v.variant, v.matrix])),
      finetuneLosses: exp.finetuneLosses, scoreScale, reused: [...exp.reused, ...run.reused], computed: [...exp.computed, ...run.computed], seconds,
    };
  } finally {
    await run.dispose();
  }
}
