/**
 * The benchmark harness: `runBench` (leaderboard of attribution methods across model families,
 * sources and seeds) and `runAblation` (DDA with and without debias / denoise, β and N sweeps,
 * debiaser × denoiser grid). Both reuse every cached artifact (checkpoints, gradients, score
 * matrices) of earlier or interrupted runs in the same output folder.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  DdaError, type MetricEvaluation, type MetricInputs, type ScoreMatrix, type SourceSpec, aggregateColumns, averageMetricEvaluations, datasetPlugin, debiasers, denoisers, evaluateMetrics, measurements, recallCurve, rocCurve, scoreForFineTuned, scorers, trackProgress, type ProgressSink, type RocPoint,
} from '@dda/core';
import { AttributionRun, RECOMMENDED_DDA, checkEngineIds, checkScorerOptions, scoreBlocksTogether, type BlockJob, ddaMatrix, describeScores, loadUserPlugins, isModelFree, plainVariant, sourcesOf, writeFileAtomic, type AttributionTask, type CheckpointScores, type RunOptions, type Variant } from '@dda/attribution';
import { CellSkipped, entityMatching, makeExperiment, type Experiment, type ExperimentOptions, type Log } from '@dda/experiment';
import { leaderboardDda, RECOMMENDED_ROW, type BenchConfig } from './bench-config.js';
import { benchMetricList, type BenchMetric } from './bench-metrics.js';
import { fractionFixed, ldsOutcomes } from './counterfactual-runs.js';
import { errorKindSources, experimentTask } from './demo.js';
import { meanInterval, pairedPermutationTest } from './stats.js';
import { describeGates, meanOf, g1FromBenchRows, g5FromCheckpointScores, G1_METRIC, metricKeyOf, regimeGates, type CellGates, type G5Report, type RegimeGates } from './gates.js';
import { measureCanaryShares } from './canary-share.js';
import { cellDir, cellKey, cellResultPath, claimCell, readCellResult, writeCellResult } from './cell-results.js';

/**
 * One result: a method on one source (or `average`) of one model family and seed, with the value
 * of every metric of the run ({@link BenchMetric}, by key).
 */
export interface BenchRow {
  readonly family: string;
  /** `grad-dot` (plain scorer at the final checkpoint) or `<dda variant>(<scorer>)`. */
  readonly method: string;
  readonly scorer: string;
  /** `plain`, a DDA variant name, or an ablation row name. */
  readonly variant: string;
  /** The test measurement of a gradient scorer's row (`loss`, `contrastive`, ...); '' for scorers that take none. */
  readonly measurement: string;
  readonly seed: number;
  /**
   * Seconds of scoring for this method: the compute time of every score matrix it combines (read
   * from the artifact's manifest when the matrix was reused) plus its debias / denoise transforms.
   * Per-example gradients are timed once per family and seed (see timings). Score artifacts stored
   * before compute times were recorded fall back to the wall time of this run's scoring step.
   */
  readonly seconds: number;
  /** Source id, `average`, or an error kind's source (`<source>[introduced]`, `average[base-made]`). */
  readonly source: string;
  /** The configuration's k clamped to the number of training rows (the cut-off of its recall and curves). */
  readonly k: number;
  /** Number of true sources among the training rows (for an average: the sum over sources). */
  readonly nPositives: number;
  /** Number of training rows ranked. */
  readonly nTrain: number;
  /** Number of test outputs averaged into the source's score (for an average: the sum over sources). */
  readonly nTests: number;
  /**
   * The value of every metric of the run by its key ({@link BenchMetric.key}), in the metric's own
   * unit; for an average row the mean over its sources. NaN where it was not computed (not asked
   * for, or a metric whose inputs this row lacks: the retraining metrics on error-kind rows).
   */
  readonly metrics: Readonly<Record<string, number>>;
}

/**
 * Mean over seeds (or over family × seed units for family `all`) of every metric, with 95%
 * Student-t intervals over those n units (see {@link meanInterval}; NaN bounds when n < 2: too few
 * runs for an interval).
 */
export interface SummaryRow {
  readonly family: string;
  readonly method: string;
  readonly n: number;
  readonly secondsMean: number;
  /** Every metric's mean and interval by key ({@link BenchMetric.key}); NaN when it has no value. */
  readonly metrics: Readonly<Record<string, MetricSummary>>;
}

/** Mean of one metric over the n units with its 95% Student-t interval, cut to the metric's range (NaN when not computed). */
export interface MetricSummary {
  readonly mean: number;
  readonly low: number;
  readonly high: number;
  /** Number of units with a value (absent when there are none). */
  readonly n?: number;
}

/** What one unit of the paired tests is (see {@link pairedAgainst}). */
export const PAIRED_UNIT = "family × seed cell (the metric averaged over the cell's sources)";

/** Paired sign-flip test of a reference method (plain, or the recommended DDA) against another method over family × seed cells. */
export interface PairedRow {
  /** The metric compared: its key ({@link BenchMetric.key}: `auc`, `lds`, a registry metric's id); the difference is in its unit. */
  readonly metric: string;
  readonly reference: string;
  readonly method: string;
  /** What one unit is: {@link PAIRED_UNIT} (results written by older versions paired family × seed × source). */
  readonly unit: string;
  /** Number of units both methods have. */
  readonly n: number;
  /** Mean difference reference − method of the metric (AUC in points). */
  readonly meanDifference: number;
  readonly pValue: number;
  readonly exact: boolean;
  /** The smallest p-value the test can reach at this n (2 / 2^n exact): below 0.05 only from n = 6 on. */
  readonly minPValue: number;
}

/** A ROC curve of one method on one source (first seed of each family), for the report. */
export interface RocSet {
  readonly family: string;
  readonly source: string;
  readonly seed: number;
  readonly method: string;
  readonly points: readonly RocPoint[];
}

/** Recall@k of one method on one source for k = 1..K, K = the config's k (first seed of each family), for the report. */
export interface RecallSet {
  readonly family: string;
  readonly source: string;
  readonly seed: number;
  readonly method: string;
  /** `recall[k - 1]` = recall@k, a fraction in [0, 1] (ties in expectation, see `recallAtK`). */
  readonly recall: readonly number[];
  /** Training samples ranked (a random ranking's expected recall@k is k / nTrain). */
  readonly nTrain: number;
}

/** The scorer and the variant a leaderboard method name stands for: `grad-dot` → plain, `dda-zscore(grad-dot)` → dda-zscore over grad-dot. */
export function parseMethod(method: string): { scorer: string; variant: string } {
  const m = /^(.+)\(([^()]+)\)$/.exec(method);
  return m ? { variant: m[1] as string, scorer: m[2] as string } : { scorer: method, variant: 'plain' };
}

export interface BenchResult {
  readonly kind: 'bench' | 'ablation';
  readonly config: BenchConfig;
  /** The metrics of the run, in column order (the default list, then the configuration's registry metrics). */
  readonly metrics: readonly BenchMetric[];
  readonly rows: readonly BenchRow[];
  readonly summary: readonly SummaryRow[];
  readonly paired: readonly PairedRow[];
  readonly curves: readonly RocSet[];
  readonly recallCurves: readonly RecallSet[];
  /** Seconds per (family, seed) step: training, gradients, total; the LDS retraining's compute seconds when asked for. */
  readonly timings: readonly { family: string; seed: number; train: number; gradients: number; total: number; reused: number; ldsRetraining?: number }[];
  /**
   * Cells without results, with the reason: `skipped` when the cell cannot be evaluated (no true
   * source, no test error; found before training where the data alone tells), `failed` when it
   * stopped with an error. The other cells' results are written either way.
   */
  readonly skipped: readonly { family: string; seed: number; reason: string; failed?: boolean }[];
  /**
   * The regime gates of every cell that finished (see gates.ts): G1 when the config has plain
   * `grad-dot` under `loss` and `bm25`; G2 (canary-token gradient share of up to
   * `gates.g2PerCanary` sources per canary, measured at the final checkpoint), G3 and G4 on the
   * leaderboard; G5 of the DDA scorer under each measurement. Absent in results made before the
   * gates were computed.
   */
  readonly gates?: readonly CellGates[];
}

/** The experiment options of one (family, seed) cell of a benchmark. */
export function runOptionsFor(c: BenchConfig, family: string, seed: number, artifactsDir: string): Partial<ExperimentOptions> & { artifactsDir: string } {
  return {
    seed, artifactsDir, preset: family,
    nTrain: c.data.nTrain, nHeldOut: c.data.nHeldOut, nPretrain: c.data.nPretrain,
    ...(c.data.canaries ? { canaries: c.data.canaries } : {}),
    ...(c.data.dataFile ? { dataFile: c.data.dataFile } : {}),
    ...(c.data.swapRate !== undefined ? { swapRate: c.data.swapRate } : {}),
    ...(c.data.biasRate !== undefined ? { biasRate: c.data.biasRate } : {}),
    ...(c.data.summaryPadding !== undefined ? { summaryPadding: c.data.summaryPadding } : {}),
    ...(c.data.generator !== 'news' ? { generator: c.data.generator } : {}),
    ...(c.data.registry ? { registry: c.data.registry } : {}),
    ...(c.data.realtext ? { realtext: c.data.realtext } : {}),
    ...(c.data.options ? { datasetOptions: c.data.options } : {}),
    ...(c.testErrors !== 'generated' ? { testErrors: c.testErrors } : {}),
    ...c.training, maxNewTokens: c.maxNewTokens, minErrorsPerSource: c.minErrorsPerSource, randomInit: c.randomInit, engine: c.engine,
  };
}

/**
 * Loads the configuration's plugins and checks every plugin id of it before any training starts:
 * measurements, scorers, debiasers, denoisers, and the data set (`data.generator`) with its options.
 * @throws DdaError naming an unknown id (with the registered ones) or a bad data set option.
 */
export async function checkIds(c: BenchConfig, kind: 'bench' | 'ablation'): Promise<void> {
  await loadUserPlugins(c.plugins, { origin: 'plugins: of the benchmark configuration' });
  await checkEngineIds([['engine', c.engine], ['gradientEngine', c.gradientEngine]]);
  await benchMetricList(c, { kind, retrainedMethods: [] });
  if (!c.data.dataFile) {
    const data = datasetPlugin(c.data.generator);
    data.parseOptions(c.data.options ?? c.data.registry ?? c.data.realtext ?? {}, `data.options of data set '${data.id}'`);
  }
  for (const m of [...c.measurements, ...(c.ablation.measurement ? [c.ablation.measurement] : [])]) await measurements.create(m, {});
  await checkScorerOptions(c.scorerOptions ?? {}, 'scorerOptions');
  if (kind === 'bench') {
    for (const s of c.scorers) await scorers.create(s, c.scorerOptions?.[s] ?? {});
    for (const v of c.dda) {
      await debiasers.create(v.debiaser, { beta: v.beta });
      await denoisers.create(v.denoiser, {});
    }
  } else {
    await scorers.create(c.ablation.scorer, c.scorerOptions?.[c.ablation.scorer] ?? {});
    for (const id of new Set([c.ablation.debiaser, ...c.ablation.debiasers])) await debiasers.create(id, { beta: c.ablation.beta });
    for (const id of new Set([c.ablation.denoiser, ...c.ablation.denoisers])) await denoisers.create(id, {});
  }
}

/**
 * The options of a benchmark's attribution run under test measurement `measurement` (its log and
 * progress aside): the config's engine, storeGradients, scorerOptions (part of every scorer's cache
 * keys) and projection.
 */
export function benchRunOptions(c: BenchConfig, artifactsDir: string, measurement: string): RunOptions {
  return { artifactsDir, gradientEngine: c.gradientEngine, measurement, storeGradients: c.storeGradients, ...(c.scorerOptions ? { scorerOptions: c.scorerOptions } : {}), ...(c.projection ? { projection: c.projection } : {}) };
}

/** DDA = debias(denoise(epoch scores over the last `lastN` checkpoints), base). */
function dda(task: AttributionTask, s: CheckpointScores, debiaser: string, denoiser: string, beta: number, lastN = s.epochs.length): Promise<ScoreMatrix> {
  return ddaMatrix(s, task.checkpoints.map((c) => c.info), { debias: debiaser, denoise: denoiser, beta, lastN });
}

/**
 * A row's scores with what they cost: `uses` names the stored score matrices it combines
 * (checkpoint ids, `base`, or `base×<final>` for the cross reading), `transformSeconds` the time of
 * its debias / denoise transforms.
 */
interface TimedVariant extends Variant {
  readonly uses: readonly string[];
  readonly transformSeconds: number;
}

/** Times `make` (the transforms that turn stored score matrices into this row's scores); the row is described by its matrix ({@link describeScores}). */
async function timed(variant: string, uses: readonly string[], make: () => Promise<ScoreMatrix> | ScoreMatrix): Promise<TimedVariant> {
  const t0 = performance.now();
  const matrix = await make();
  const transformSeconds = (performance.now() - t0) / 1000;
  return { variant, description: describeScores(matrix), matrix, uses, transformSeconds };
}

/** Checkpoint ids of a scorer's plain row: every checkpoint when it declares `combine` (tracin-cp), else the final one. */
function plainUses(task: AttributionTask, combines: boolean): string[] {
  const ids = task.checkpoints.map((c) => c.id);
  return combines ? ids : ids.slice(-1);
}

/** The leaderboard rows of one scorer: plain, then every DDA variant of the config (gradient-based scorers only). */
async function leaderboardVariants(task: AttributionTask, s: CheckpointScores, c: BenchConfig): Promise<TimedVariant[]> {
  const out: TimedVariant[] = [await timed('plain', plainUses(task, s.scorer.combine !== undefined), async () => (await plainVariant(s, task.checkpoints.map((cp) => cp.info))).matrix)];
  if (isModelFree(s.scorer)) return out;
  const all = ['base', ...task.checkpoints.map((cp) => cp.id)];
  for (const v of leaderboardDda(c)) {
    out.push(await timed(v.name, all, () => dda(task, s, v.debiaser, v.denoiser, v.beta)));
  }
  return out;
}

/** The ablation rows over one scorer (see {@link runAblation}), including the `cross:` rows of the second reading of debias. */
async function ablationVariants(run: AttributionRun, s: CheckpointScores, c: BenchConfig): Promise<TimedVariant[]> {
  const task = run.task;
  const a = c.ablation;
  const final = s.epochs[s.epochs.length - 1] as ScoreMatrix;
  const N = s.epochs.length;
  const epochs = task.checkpoints.map((cp) => cp.id);
  const last = epochs.slice(-1);
  const all = ['base', ...epochs];
  const denoise = async (): Promise<ScoreMatrix> => (await denoisers.create(a.denoiser, {})).denoise(s.epochs, task.checkpoints.map((cp) => cp.info));
  const debias = await debiasers.create(a.debiaser, { beta: a.beta });
  const out: TimedVariant[] = [
    await timed('full', all, async () => debias.debias(await denoise(), s.base)),
    await timed('no-debias', epochs, denoise),
    await timed('no-denoise', ['base', ...last], () => debias.debias(final, s.base)),
    await timed('neither', last, () => final),
    await timed(RECOMMENDED_ROW, all, () => dda(task, s, RECOMMENDED_DDA.debias, RECOMMENDED_DDA.denoise, RECOMMENDED_DDA.beta)),
  ];
  for (const beta of a.betas) {
    out.push(await timed(`beta=${beta}`, all, () => dda(task, s, a.debiaser, a.denoiser, beta)));
  }
  for (const n of a.checkpoints ?? Array.from({ length: N }, (_, i) => i + 1)) {
    out.push(await timed(`N=${n}`, ['base', ...epochs.slice(N - n)], () => dda(task, s, a.debiaser, a.denoiser, a.beta, n)));
  }
  for (const db of a.debiasers) {
    for (const dn of a.denoisers) {
      out.push(await timed(`dda[${db}+${dn}]`, all, () => dda(task, s, db, dn, a.beta)));
    }
  }
  // The second reading of the debias term: training gradients at θ0, test gradients at θ' (gradient scorers).
  if (s.scorer.needs.includes('gradients')) {
    const cross: CheckpointScores = { ...s, base: await run.crossBaseScores(s.scorer.id) };
    const crossName = `base×${last[0]}`;
    out.push(await timed('cross:no-denoise', [crossName, ...last], () => debias.debias(final, cross.base)));
    for (const db of a.debiasers) {
      for (const dn of a.denoisers) {
        out.push(await timed(`cross:dda[${db}+${dn}]`, [crossName, ...epochs], () => dda(task, cross, db, dn, a.beta)));
      }
    }
  }
  return out;
}

/** The leaderboard methods a metric that fine-tunes again per method is run for unless the configuration lists them: the plain row of every scorer, the first DDA variant of the config and the recommended DDA. */
function defaultRetrainedMethods(c: BenchConfig, measurementIds: readonly string[]): string[] {
  const suffix = (id: string): string => (measurementIds.length > 1 ? `${id}@${measurementIds[0]}` : id);
  return [...new Set([...c.scorers.map(suffix), `${(c.dda[0] as { name: string }).name}(${suffix(c.ddaScorer)})`, ...pairedReferences('bench', c).slice(0, 1)])];
}

/**
 * The methods every other is paired-tested against: the recommended DDA and the plain scorer, the
 * two a user would choose between. Leaderboard: over `ddaScorer` (`<recommended row>(<scorer>)` and
 * `<scorer>`); ablation: the rows `dda-recommended` and `neither`.
 */
export function pairedReferences(kind: 'bench' | 'ablation', c: BenchConfig): string[] {
  if (kind === 'ablation') return [RECOMMENDED_ROW, 'neither'];
  const scorer = c.measurements.length > 1 ? `${c.ddaScorer}@${c.measurements[0]}` : c.ddaScorer;
  const recommended = leaderboardDda(c).find((v) => v.debiaser === RECOMMENDED_DDA.debias && v.denoiser === RECOMMENDED_DDA.denoise) as { name: string };
  return [`${recommended.name}(${scorer})`, scorer];
}

/**
 * Scoring seconds of a row: the stored compute seconds of the score matrices it uses plus its
 * transforms; undefined when a matrix has no recorded seconds (stored by an older version).
 */
function rowSeconds(run: AttributionRun, scorerId: string, v: TimedVariant): number | undefined {
  let total = v.transformSeconds;
  for (const name of v.uses) {
    const s = run.matrixSeconds(scorerId, name);
    if (s === undefined) return undefined;
    total += s;
  }
  return total;
}

/** Mean of each source's aggregated scores → ROC curve and recall@k for k = 1..K, for the report. */
function curvesOf(task: AttributionTask, family: string, seed: number, method: string, m: ScoreMatrix, K: number): { roc: RocSet[]; recall: RecallSet[] } {
  const sources = sourcesOf(task, task.labels ?? []);
  const agg = aggregateColumns(m, new Map(sources.map((s) => [s.id, s.testIds])));
  const scores = (id: string): Float64Array => agg.get(id) as Float64Array;
  return {
    roc: sources.map((s) => ({ family, source: s.id, seed, method, points: thin(rocCurve(scores(s.id), s.labels)) })),
    recall: sources.map((s) => ({ family, source: s.id, seed, method, recall: [...recallCurve(scores(s.id), s.labels, K)], nTrain: s.labels.length })),
  };
}

/**
 * Saves what a cell attributed beside the results (`cells/<family>-seed<seed>/`): the training set
 * after canary injection, the test errors (queries) and the true-source labels, with the
 * `dda attribute` command that re-runs the cell on the experiment's base model and checkpoints.
 */
function saveCellFiles(outDir: string, family: string, seed: number, exp: Experiment): string {
  const dir = cellDir(outDir, family, seed);
  mkdirSync(dir, { recursive: true });
  for (const [name, from] of [['train.jsonl', exp.files.train], ['queries.jsonl', exp.files.queries], ['labels.json', exp.files.labels]] as const) copyFileSync(from, join(dir, name));
  const command = `npm run -s dda -- attribute --base ${exp.files.base} --checkpoints ${exp.files.run} --train ${join(dir, 'train.jsonl')} --queries ${join(dir, 'queries.jsonl')} --labels ${join(dir, 'labels.json')} --out ${join(dir, 'attribution')}`;
  writeFileAtomic(join(dir, 'cell.json'), `${JSON.stringify({ family, seed, files: exp.files, sources: exp.sources, leftOut: exp.leftOut, errors: exp.errors.length, attribute: command }, null, 2)}\n`);
  return dir;
}

/**
 * The per-example gradients of a cell, first (timed on their own): row-separable scorers, scorers
 * with block summaries (trak) and scorers with a streamed fit (datainf, if-exact, trackstar), of
 * every measurement, in one pass per checkpoint, or one per fit pass and the score pass for a
 * streamed fit ({@link scoreBlocksTogether}: each training block's gradients computed once per
 * pass, scored, summarized or folded by all of them, and dropped unless `storeGradients`), at the
 * checkpoints each is scored at (the cross reading's θ0 × θ' too, for the ablation); the training
 * gradients of scorers that need every row at once are stored. Scorers whose scores are stored
 * cost nothing.
 */
async function gradientPass(kind: 'bench' | 'ablation', c: BenchConfig, task: AttributionTask, runs: readonly AttributionRun[], scorerIds: readonly string[]): Promise<void> {
  const jobs = new Map<string, BlockJob[]>();
  const last = task.checkpoints[task.checkpoints.length - 1] as AttributionTask['checkpoints'][number];
  const add = (cp: string, job: BlockJob): void => void jobs.set(cp, [...(jobs.get(cp) ?? []), job]);
  for (const run of runs) {
    for (const id of scorerIds) {
      const scorer = await run.scorer(id);
      if (!scorer.needs.includes('gradients')) continue;
      const plainOnly = kind === 'bench' && c.plainOnly.includes(id);
      const cps = plainOnly ? (scorer.combine ? task.checkpoints : [last]) : run.allCheckpoints;
      if (!scorer.rowSeparable && run.gradientPath(scorer) !== 'streamed') {
        if (await run.hasStoredScores(id)) continue;
        run.logGradientPath(scorer);
        for (const cp of cps) {
          for (const spec of run.trainBlocks(cp)) await run.trainGradientBlock(cp, spec);
          await run.queryGradients(cp);
        }
        continue;
      }
      if (!scorer.rowSeparable && await run.hasStoredScores(id)) continue; // summaries are needed only for scores not stored
      for (const cp of cps) add(cp.id, { run, scorer: id });
      if (kind === 'ablation') add('base', { run, scorer: id, testCp: last.id });
    }
  }
  for (const [cp, js] of jobs) await scoreBlocksTogether(js, cp);
}

/** A gate's value, or the reason it cannot be computed (a DdaError's message): a gate never fails its cell. */
function gateOrReason<T>(compute: () => T): T | string {
  try {
    return compute();
  } catch (e) {
    if (e instanceof DdaError) return e.message;
    throw e;
  }
}

/** At most ~200 points of a curve (it is drawn, not integrated). */
function thin(points: RocPoint[]): RocPoint[] {
  if (points.length <= 200) return points;
  const step = points.length / 200;
  const out: RocPoint[] = [];
  for (let i = 0; i < points.length; i += step) out.push(points[Math.floor(i)] as RocPoint);
  out.push(points[points.length - 1] as RocPoint);
  return out;
}

/** Options of {@link runBench} and {@link runAblation}. */
export interface GridOptions {
  /**
   * Set in the worker processes of `dda bench --jobs N` (the run's id): compute only the cells this
   * process claims first ({@link claimCell}), leave the others to the other workers, and save every
   * finished cell's result for the collecting run.
   */
  readonly claim?: string;
  /** Set in the run that started the workers (the same id): take the cells they saved, compute the rest. */
  readonly collect?: string;
}

/** What one cell adds to a grid's result, as saved beside it ({@link writeCellResult}). */
interface CellResult {
  readonly rows: BenchRow[];
  readonly curves: RocSet[];
  readonly recallCurves: RecallSet[];
  readonly timings: BenchResult['timings'][number][];
  readonly gates: CellGates[];
}

async function runGrid(kind: 'bench' | 'ablation', c: BenchConfig, outDir: string, log: Log, progress?: ProgressSink, o: GridOptions = {}): Promise<BenchResult> {
  await checkIds(c, kind);
  if (c.projection) log(`gradients projected to ${c.projection.dim} dimensions (${c.projection.kind}, seed ${c.projection.seed}, split across the tensors in proportion to their sizes) before every gradient scorer`);
  const artifacts = join(outDir, 'artifacts');
  const rows: BenchRow[] = [];
  const curves: RocSet[] = [];
  const recallCurves: RecallSet[] = [];
  const timings: BenchResult['timings'][number][] = [];
  const skipped: BenchResult['skipped'][number][] = [];
  const gates: CellGates[] = [];
  const scorerIds = kind === 'bench' ? c.scorers : [c.ablation.scorer];
  const measurementIds = kind === 'bench' ? c.measurements : [c.ablation.measurement ?? (c.measurements[0] as string)];
  const metricList = await benchMetricList(c, { kind, retrainedMethods: defaultRetrainedMethods(c, measurementIds) });
  const computed = metricList.filter((m) => m.computed);
  const needs = new Set(computed.flatMap((m) => m.metric.needs ?? []));
  const cells = c.families.flatMap((family) => c.seeds.map((seed) => ({ family, seed })));
  const bar = trackProgress(`${kind}: family × seed cells`, cells.length, progress);
  for (const { family, seed } of cells) {
    // A cell a worker of this run finished (dda bench --jobs) is taken as it is.
    const key = o.claim !== undefined || o.collect !== undefined ? cellKey(kind, c, family, seed) : '';
    const saved = o.collect !== undefined ? readCellResult<CellResult>(outDir, kind, o.collect, key, family, seed) : null;
    if (saved) {
      rows.push(...saved.rows);
      curves.push(...saved.curves);
      recallCurves.push(...saved.recallCurves);
      timings.push(...saved.timings);
      gates.push(...saved.gates);
      log(`${kind}: ${family}, seed ${seed}: computed by a worker (${cellResultPath(outDir, kind, o.collect as string, family, seed)})`);
      bar.tick();
      continue;
    }
    if (o.claim !== undefined && !claimCell(outDir, kind, o.claim, family, seed)) {
      bar.tick(); // another worker of this run computes it
      continue;
    }
    log(`${kind}: ${family}, seed ${seed}`);
    const t0 = Date.now();
    const at = { rows: rows.length, curves: curves.length, recallCurves: recallCurves.length, timings: timings.length, gates: gates.length };
    let exp: Experiment;
    try {
      exp = await makeExperiment(runOptionsFor(c, family, seed, artifacts), (l) => log(`  ${l}`), progress);
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      log(`  ${e instanceof CellSkipped ? 'skipped' : 'failed'}: ${reason}`);
      skipped.push({ family, seed, reason, ...(e instanceof CellSkipped ? {} : { failed: true }) });
      bar.tick();
      continue;
    }
    try {
      saveCellFiles(outDir, family, seed, exp);
      const task = await experimentTask(exp);
      // One attribution run per test measurement; they share the store, so the training gradients are
      // computed once, and one model, so one set of decoders and onnxruntime sessions is held, not one per run.
      const runOptions = (m: string): RunOptions => ({ ...benchRunOptions(c, artifacts, m), log: (l) => log(`  ${l}`), ...(progress ? { progress } : {}) });
      const first = await AttributionRun.open(task, runOptions(measurementIds[0] as string));
      const runs = [first, ...(await Promise.all(measurementIds.slice(1).map((m) => AttributionRun.open(task, { ...runOptions(m), model: first.model() }))))];
      try {
        const t1 = Date.now();
        await gradientPass(kind, c, task, runs, scorerIds);
        const t2 = Date.now();
        const infos = task.checkpoints.map((cp) => cp.info);
        // G3: the fine-tuned model's mean response loss over the training samples (one forward pass at θ′).
        const finalCheckpoint = task.checkpoints[task.checkpoints.length - 1];
        const g3 = kind === 'bench' && finalCheckpoint ? meanOf(await (await (runs[0] as AttributionRun).model()).losses(finalCheckpoint, task.train.samples)) : undefined;
        // The inputs the metrics declare beyond scores and labels: the models retrained on random subsets (cached artifacts, shared by every method).
        const subsetRuns = needs.has('retrainedLosses') ? await ldsOutcomes(exp, task, runs, c.lds, (l) => log(`  ${l}`), progress) : null;
        const sources = sourcesOf(task, task.labels ?? []);
        const g5: Record<string, G5Report> = {};
        // Fine-tuning again without chosen rows, once per source and row set in this cell (the models are cached artifacts, the generation is not).
        const retrained = new Map<string, Promise<number>>();
        const retraining = (run: AttributionRun, src: SourceSpec): NonNullable<MetricInputs['retraining']> => ({
          fractionFixed: (remove) => {
            const key = `${src.id}\u0000${remove.join(',')}`;
            if (!retrained.has(key)) retrained.set(key, fractionFixed(exp, task, run, src, remove, (l) => log(`  ${l}`)));
            return retrained.get(key) as Promise<number>;
          },
        });
        for (const [mi, run] of runs.entries()) {
          const measurement = measurementIds[mi] as string;
          for (const id of scorerIds) {
            const scorer = await run.scorer(id);
            // Only gradient scorers take the test measurement; the others are scored once.
            const measured = scorer.needs.includes('gradients');
            if (!measured && mi > 0) continue;
            const label = measured && measurementIds.length > 1 ? `${id}@${measurement}` : id;
            const ts = Date.now();
            let variants: TimedVariant[];
            if (kind === 'bench' && c.plainOnly.includes(id)) {
              const needed = scorer.combine ? task.checkpoints : task.checkpoints.slice(-1);
              const matrices: ScoreMatrix[] = [];
              for (const cp of needed) matrices.push(await run.scores(id, cp));
              variants = [await timed('plain', needed.map((cp) => cp.id), () => scoreForFineTuned(scorer, matrices, infos.slice(-needed.length)))];
            } else {
              const s = await run.scoreCheckpoints(id);
              if (id === c.ddaScorer && measured) {
                const r = gateOrReason(() => g5FromCheckpointScores(s, sources));
                if (typeof r === 'string') log(`  gate G5 of ${label} not computed: ${r}`);
                else g5[label] = r;
              }
              variants = kind === 'bench' ? await leaderboardVariants(task, s, c) : await ablationVariants(run, s, c);
            }
            const wall = (Date.now() - ts) / 1000;
            for (const v of variants) {
              const method = kind === 'ablation' ? v.variant : v.variant === 'plain' ? label : `${v.variant}(${label})`;
              const seconds = rowSeconds(run, id, v) ?? wall;
              const inputsOf = (src: SourceSpec): Omit<MetricInputs, 'matrix' | 'columns' | 'source'> => ({
                method,
                ...(subsetRuns ? { retrainedLosses: { subsets: subsetRuns.subsets, losses: subsetRuns.measured.get(measured ? measurement : measurementIds[0] as string) as Float64Array[] } } : {}),
                ...(needs.has('retraining') ? { retraining: retraining(run, src) } : {}),
              });
              for (const r of await evaluateBench(task, v.matrix, c.k, metricList, inputsOf)) {
                rows.push({ family, method, scorer: label, variant: v.variant, measurement: measured ? measurement : '', seed, seconds, ...r });
              }
              if (seed === c.seeds[0] && (kind === 'bench' || ['full', 'no-debias', 'no-denoise', 'neither', RECOMMENDED_ROW].includes(v.variant))) {
                const drawn = curvesOf(task, family, seed, method, v.matrix, c.k);
                curves.push(...drawn.roc);
                recallCurves.push(...drawn.recall);
              }
            }
            const avg = rows.filter((r) => r.family === family && r.seed === seed && r.scorer === label && r.source === 'average');
            const lead = metricList[0] as BenchMetric;
            log(`  ${label}: ${avg.map((r) => `${r.method} ${(r.metrics[lead.key] as number).toFixed(lead.metric.digits ?? 3)}`).join(', ')}`);
          }
        }
        const plainLoss = measurementIds.length > 1 ? 'grad-dot@loss' : 'grad-dot';
        const hasG1 = kind === 'bench' && measurementIds.includes('loss') && scorerIds.includes('grad-dot') && scorerIds.includes('bm25');
        const g1 = hasG1 ? gateOrReason(() => regimeGates({ g1: g1FromBenchRows(rows, family, seed, plainLoss, 'bm25', metricKeyOf(G1_METRIC, metricList)) })) : {};
        if (typeof g1 === 'string') log(`  gate G1 not computed: ${g1}`);
        const g3Gate = g3 !== undefined ? gateOrReason(() => regimeGates({ g3 })) : {};
        if (typeof g3Gate === 'string') log(`  gate G3 not computed: ${g3Gate}`);
        // G4 from the data (evaluated sources only), G2 measured at the final checkpoint.
        const evaluated = exp.canaries.filter((x) => exp.sources.includes(x.id));
        const g4Gate = kind === 'bench' ? gateOrReason(() => regimeGates({ g4: Object.fromEntries(evaluated.map((x) => [x.id, { legitimate: x.legitimate, sources: x.sources }])) })) : {};
        if (typeof g4Gate === 'string') log(`  gate G4 not computed: ${g4Gate}`);
        let g2Gate: RegimeGates | string = {};
        if (kind === 'bench' && finalCheckpoint && c.gates.g2PerCanary > 0) {
          const match = entityMatching(exp.options);
          const labelled = new Map((task.labels ?? []).map((l) => [l.key, l.sources]));
          const forShare = evaluated.map((x) => ({ id: x.id, spans: (text: string) => match.spans(text, x.replacement), sources: labelled.get(x.id) ?? [] }));
          try {
            const measured = await measureCanaryShares(await (runs[0] as AttributionRun).model(), task, finalCheckpoint, forShare, c.gates.g2PerCanary);
            if (measured.skipped.length > 0) log(`  gate G2: ${measured.skipped.length} source(s) not measured (${measured.skipped.slice(0, 3).map((x) => `${x.id}: ${x.reason}`).join('; ')})`);
            g2Gate = gateOrReason(() => regimeGates({ g2: measured.shares }));
          } catch (e) {
            if (!(e instanceof DdaError)) throw e;
            g2Gate = e.message;
          }
          if (typeof g2Gate === 'string') log(`  gate G2 not computed: ${g2Gate}`);
        }
        const part = (g: RegimeGates | string): RegimeGates => (typeof g === 'string' ? {} : g);
        const cellGates: CellGates = {
          family, seed, gates: { ...part(g1), ...part(g2Gate), ...part(g3Gate), ...part(g4Gate) }, g5,
          ...(exp.options.testErrors === 'injected' ? { notEvidence: "the test errors are injected (held-out summaries with the swap), not the fine-tuned model's own outputs: the gates describe the data and the scorers, not the paper's setting" } : {}),
          ...(exp.options.testErrors === 'preferred' ? { testErrors: "preferred: held-out summaries with the swap that the fine-tuned model finds more likely than the real summary (a forced choice), not its greedy outputs" } : {}),
        };
        gates.push(cellGates);
        for (const line of describeGates(cellGates)) log(`  gate ${line}`);
        timings.push({ family, seed, train: (t1 - t0) / 1000, gradients: (t2 - t1) / 1000, total: (Date.now() - t0) / 1000, reused: exp.reused.length + runs.reduce((a, r) => a + r.reused.length, 0), ...(subsetRuns ? { ldsRetraining: subsetRuns.seconds } : {}) });
        if (o.claim !== undefined) writeCellResult(outDir, kind, o.claim, key, family, seed, {
          rows: rows.slice(at.rows), curves: curves.slice(at.curves), recallCurves: recallCurves.slice(at.recallCurves), timings: timings.slice(at.timings), gates: gates.slice(at.gates),
        } satisfies CellResult);
      } finally {
        for (const run of runs) await run.dispose();
      }
    } catch (e) {
      // One failing cell must not lose the others' results: record it, go on, and report it at the end.
      const reason = e instanceof Error ? e.message : String(e);
      log(`  failed: ${reason}`);
      skipped.push({ family, seed, reason, failed: true });
      rows.splice(0, rows.length, ...rows.filter((r) => !(r.family === family && r.seed === seed)));
      curves.splice(0, curves.length, ...curves.filter((r) => !(r.family === family && r.seed === seed)));
      recallCurves.splice(0, recallCurves.length, ...recallCurves.filter((r) => !(r.family === family && r.seed === seed)));
      gates.splice(0, gates.length, ...gates.filter((r) => !(r.family === family && r.seed === seed)));
    }
    bar.tick();
  }
  const summary = summarize(rows, metricList);
  return { kind, config: c, metrics: metricList, rows, summary, paired: pairedReferences(kind, c).flatMap((ref) => pairedAgainst(rows, ref, metricList)), curves, recallCurves, timings, skipped, gates };
}

/**
 * The leaderboard: every scorer of the config (plain, at the final checkpoint) and every DDA variant
 * over every gradient-based scorer, for each model family × seed, on every source with test errors.
 */
export function runBench(c: BenchConfig, outDir: string, log: Log = () => {}, progress?: ProgressSink, o: GridOptions = {}): Promise<BenchResult> {
  return runGrid('bench', c, outDir, log, progress, o);
}

/**
 * The DDA ablation over `config.ablation.scorer`: `full`, `no-debias`, `no-denoise`, `neither`;
 * `beta=<β>` rows (sweep); `N=<n>` rows (DDA over the last n epoch checkpoints); and every
 * debiaser × denoiser pair as `dda[<debiaser>+<denoiser>]`; for gradient scorers the same with the
 * second reading of the base term (training gradients at θ0, test gradients at θ') as `cross:...`.
 */
export function runAblation(c: BenchConfig, outDir: string, log: Log = () => {}, progress?: ProgressSink, o: GridOptions = {}): Promise<BenchResult> {
  return runGrid('ablation', c, outDir, log, progress, o);
}

/**
 * The rows of one method's scores on a cell (`k`: the configuration's): every metric of `list` that is computed, per source,
 * their `average` (each source weighted equally), and the same per error kind
 * (`<source>[<kind>]`, `average[<kind>]`) where the queries say which kind each is. The inputs of
 * metrics with `needs` are given for the sources only, not for the error-kind rows.
 */
export async function evaluateBench(
  task: AttributionTask,
  matrix: ScoreMatrix,
  k: number,
  list: readonly BenchMetric[],
  inputsOf?: (source: SourceSpec) => Omit<MetricInputs, 'matrix' | 'columns' | 'source'> | undefined,
): Promise<Omit<BenchRow, 'family' | 'method' | 'scorer' | 'variant' | 'measurement' | 'seed' | 'seconds'>[]> {
  const computed = list.filter((m) => m.computed);
  const row = (e: MetricEvaluation): Omit<BenchRow, 'family' | 'method' | 'scorer' | 'variant' | 'measurement' | 'seed' | 'seconds'> => ({
    source: e.source, k: Math.min(k, e.nTrain), nPositives: e.nPositives, nTrain: e.nTrain, nTests: e.nTests,
    metrics: Object.fromEntries(list.map((m) => [m.key, m.computed ? e.values[computed.indexOf(m)] as number : Number.NaN])),
  });
  const evals = await evaluateMetrics(matrix, sourcesOf(task, task.labels ?? []), computed.map((m) => m.metric), inputsOf);
  const out = [...evals, averageMetricEvaluations(evals)].map(row);
  for (const { kind, sources } of errorKindSources(task)) {
    const byKind = await evaluateMetrics(matrix, sources, computed.map((m) => m.metric));
    out.push(...[...byKind, averageMetricEvaluations(byKind, `average[${kind}]`)].map(row));
  }
  return out;
}

/**
 * Every metric's mean over each (family, method)'s seeds (the `average` source rows) with 95%
 * Student-t intervals ({@link meanInterval}, cut to the metric's range), and over every family ×
 * seed unit as family `all`. `n` is the number of units; a metric's mean is over the units where
 * it has a value.
 */
export function summarize(rows: readonly BenchRow[], list: readonly Pick<BenchMetric, 'key' | 'metric'>[]): SummaryRow[] {
  const avg = rows.filter((r) => r.source === 'average');
  const families = [...new Set(avg.map((r) => r.family))];
  const methods = [...new Set(avg.map((r) => r.method))];
  const out: SummaryRow[] = [];
  const summaryOf = (values: number[], range: readonly [number, number] | undefined): MetricSummary => {
    const finite = values.filter(Number.isFinite);
    return finite.length ? meanInterval(finite, range ? { range } : {}) : { mean: Number.NaN, low: Number.NaN, high: Number.NaN };
  };
  for (const family of [...families, 'all']) {
    for (const method of methods) {
      const sel = avg.filter((r) => r.method === method && (family === 'all' || r.family === family));
      if (sel.length === 0) continue;
      out.push({
        family, method, n: sel.length,
        secondsMean: sel.reduce((a, r) => a + r.seconds, 0) / sel.length,
        metrics: Object.fromEntries(list.map((m) => [m.key, summaryOf(sel.map((r) => r.metrics[m.key] ?? Number.NaN), m.metric.range)])),
      });
    }
  }
  return out;
}

/**
 * Paired tests of `reference` against every other method on every metric of `list` that is
 * paired-tested ({@link BenchMetric.paired}) and has values. A unit is one family × seed cell
 * ({@link PAIRED_UNIT}: its `average` row, the metric averaged over the cell's sources), matched
 * between the two methods. Not one source: the sources of one cell share its trained model, so they
 * are not independent units, and counting them as such would overstate n.
 */
export function pairedAgainst(rows: readonly BenchRow[], reference: string, list: readonly Pick<BenchMetric, 'key' | 'paired'>[]): PairedRow[] {
  const cells = rows.filter((r) => r.source === 'average');
  const unit = (r: BenchRow): string => `${r.family}\u0000${r.seed}`;
  const out: PairedRow[] = [];
  for (const { key: metric } of list.filter((m) => m.paired)) {
    const value = (r: BenchRow): number => r.metrics[metric] ?? Number.NaN;
    const ref = new Map(cells.filter((r) => r.method === reference && Number.isFinite(value(r))).map((r) => [unit(r), value(r)]));
    if (ref.size === 0) continue;
    for (const method of [...new Set(cells.map((r) => r.method))]) {
      if (method === reference) continue;
      const a: number[] = [];
      const b: number[] = [];
      for (const r of cells.filter((x) => x.method === method && Number.isFinite(value(x)))) {
        const x = ref.get(unit(r));
        if (x === undefined) continue;
        a.push(x);
        b.push(value(r));
      }
      if (a.length === 0) continue;
      const t = pairedPermutationTest(a, b, { seed: 3 });
      out.push({ metric, reference, method, unit: PAIRED_UNIT, n: t.n, meanDifference: t.meanDifference, pValue: t.pValue, exact: t.exact, minPValue: t.minPValue });
    }
  }
  return out;
}
