/**
 * The retraining behind the inputs of the counterfactual metrics of a benchmark cell
 * (`retrainedLosses`, `retraining`; counterfactual-metrics.ts): models fine-tuned from θ0 on random
 * subsets and without chosen training rows (artifacts of @dda/experiment, cached and resumable),
 * measured with the cell's test measurements or regenerated on the source's prompts.
 */
import { DdaError, SeededRandom, trackProgress, type ProgressSink, type SourceSpec } from '@dda/core';
import { loadCheckpoints, type AttributionRun, type AttributionTask } from '@dda/attribution';
import { containsWholeWord } from '@dda/dataset-hallucination';
import { retrainOnSubset, type Experiment, type Log } from '@dda/experiment';
import { ldsSubsets } from './counterfactual.js';

/** What LDS needs of a cell: the subsets and, per measurement, f of every query after retraining on each. */
export interface LdsOutcomes {
  readonly subsets: readonly (readonly number[])[];
  /** measurement id → `[subset j][query t]`. */
  readonly measured: ReadonlyMap<string, readonly Float64Array[]>;
  /** Seconds of retraining (read back from the artifacts when reused). */
  readonly seconds: number;
}

/**
 * Frees the engine memory of the runs' models before a retraining: their decoders keep gigabytes of
 * onnxruntime sessions (per sequence length) that the retraining's trainer would need again beside
 * them (a real-text LDS cell with three measurements was killed at 15 GB). They reopen on next use.
 */
async function releaseModels(runs: readonly AttributionRun[]): Promise<void> {
  for (const run of runs) await run.dispose();
}

/** Retrains on `o.subsets` random subsets and measures every query with each run's measurement. */
export async function ldsOutcomes(
  exp: Experiment,
  task: AttributionTask,
  runs: readonly AttributionRun[],
  o: { readonly subsets: number; readonly alpha: number; readonly seed: number },
  log: Log,
  progress?: ProgressSink,
): Promise<LdsOutcomes> {
  const ids = task.train.samples.map((s) => s.id);
  const subsets = ldsSubsets(ids.length, o.subsets, o.alpha, o.seed);
  const measured = new Map<string, Float64Array[]>(runs.map((r) => [r.options.measurement ?? 'loss', []]));
  const bar = trackProgress(`LDS: ${subsets.length} models retrained on ${Math.round(o.alpha * 100)}% subsets`, subsets.length, progress);
  let seconds = 0;
  for (const s of subsets) {
    const r = await retrainOnSubset(exp, new Set(s.map((i) => ids[i] as string)), log, { beforeTraining: () => releaseModels(runs) });
    seconds += r.seconds ?? 0;
    const [cp] = loadCheckpoints([r.dir], { base: task.base.config });
    if (!cp) throw new DdaError(`LDS: no checkpoint in ${r.dir}`);
    for (const run of runs) (measured.get(run.options.measurement ?? 'loss') as Float64Array[]).push(await run.measure(cp));
    bar.tick();
  }
  return { subsets, measured, seconds };
}

/**
 * Leave-out retraining for one source: fine-tune again without `remove` (training row indices),
 * regenerate the source's error prompts, and return the fraction of its errors that disappeared
 * (the regenerated output no longer contains the error's replacement entity).
 */
export async function fractionFixed(exp: Experiment, task: AttributionTask, run: AttributionRun, source: SourceSpec, remove: readonly number[], log: Log): Promise<number> {
  const ids = task.train.samples.map((s) => s.id);
  const gone = new Set(remove.map((i) => ids[i] as string));
  const r = await retrainOnSubset(exp, new Set(ids.filter((id) => !gone.has(id))), log, { beforeTraining: () => releaseModels([run]) });
  const [cp] = loadCheckpoints([r.dir], { base: task.base.config });
  if (!cp) throw new DdaError(`leave-out: no checkpoint in ${r.dir}`);
  const queries = task.queries.filter((q) => source.testIds.includes(q.record.id));
  const outputs = await (await run.model()).generate(cp, queries.map((q) => q.sample.prompt), exp.options.maxNewTokens);
  const fixed = queries.filter((q, i) => {
    const replacement = q.record.meta.replacement;
    if (typeof replacement !== 'string') throw new DdaError(`leave-out: query '${q.record.id}' does not name its replacement entity`, 'leave-out retraining needs the experiment\'s queries (with their replacement field)');
    return !containsWholeWord(outputs[i] as string, replacement);
  }).length;
  return fixed / Math.max(queries.length, 1);
}

/** k training rows drawn at random for a source (the leave-out baseline), seeded by the source's name. */
export function randomRows(nTrain: number, k: number, seed: number, source: string): number[] {
  let h = seed;
  for (const ch of source) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return new SeededRandom(h).shuffle(Array.from({ length: nTrain }, (_, i) => i)).slice(0, k).sort((a, b) => a - b);
}
