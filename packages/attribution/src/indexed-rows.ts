/**
 * Training gradients read from gradient indexes (`dda attribute --index`): an index (`dda index
 * build`) holds every training sample's per-example gradient at one checkpoint, projected to k
 * dimensions and rounded to float16. Given one index per checkpoint (θ0 included), an attribution
 * reads its training rows instead of computing them, computes only the queries' gradients (projected
 * with the indexes' projection), and scores, debiases and denoises as usual: the scores are the
 * scorer's on the projected rows, as with `--projection-dim` (whose rows are the same before the
 * float16 rounding). Checkpoints without an index get their training rows computed and projected
 * with the same projection (float32, not rounded).
 *
 * An index is used only where it is over this run's inputs: the same base model and checkpoint
 * files (content hashes), the same training samples in the same order (ids, and the hash of the
 * rendered samples: fields, prompt format, loss-on, chat date), the same context length and overlong
 * policy; every index has the same projection, and a projection asked for (`--projection-dim`,
 * `--projection-seed`) must be theirs. Anything else is refused, naming what differs. The index's
 * measurement does not matter here: its rows are training-loss gradients whatever queries it was
 * built for, and the run's `--measurement` applies to the queries.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { DdaError, type CheckpointInfo, type ScoreMatrix } from '@dda/core';
import { hashOf } from './artifacts.js';
import type { Log } from './engine.js';
import { INDEX_FILES, comparableIdentity, differences, readIndexHeader, readIndexRows, recordedIdentity, type IndexHeader } from './gradient-index.js';
import { estimateProjectionError, type ErrorIndex, type ProjectionErrorSummary } from './index-dda-error.js';
import { projectionDifferences, type ProjectionSpec } from './projection.js';
import type { AttributionRun, CheckpointScores, RunOptions, TrainRowSource, TrainRowsAt } from './run.js';
import type { AttributionTask } from './task.js';

/** One index of a run and the checkpoint it is at. */
export interface RunIndex {
  readonly dir: string;
  readonly header: IndexHeader;
}

/** What {@link openTrainIndexes} gives a run: the indexes' projection and their rows as the run's {@link TrainRowSource}. */
export interface IndexedTraining {
  readonly projection: ProjectionSpec;
  readonly trainRows: TrainRowSource;
  /** By checkpoint id. */
  readonly indexes: ReadonlyMap<string, RunIndex>;
  /** Checkpoint ids of the run without an index (their rows are computed and projected). */
  readonly computedAt: readonly string[];
  /** For summary.json and shard manifests: each index's folder, checkpoint and identity hash. */
  readonly record: readonly { readonly dir: string; readonly checkpoint: string; readonly identity: string; readonly rows: number; readonly dim: number }[];
}

/**
 * The key of scores computed from an index's rows: what it is over (its identity without folders),
 * its rows' shape, float16 statistics and content (`rowsSha256`, checked before use; for an index of
 * an earlier version, which records none, the rows file's inode, size, modification and change
 * times, so that a file replaced since is not answered from the scores of the one before).
 */
function indexKey(h: IndexHeader, dir: string): string {
  const rows = (): Record<string, number> => {
    const s = statSync(join(dir, INDEX_FILES.rows));
    return { ino: s.ino, size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs };
  };
  return hashOf({ identity: comparableIdentity(recordedIdentity(h)), count: h.count, dim: h.dim, modules: h.modules, float16: h.float16, rows: h.rowsSha256 ?? { unchecked: rows() } });
}

/**
 * Reads and checks the indexes of an attribution against its task (see the module doc).
 *
 * @param o.projection - The projection asked for besides the indexes (each of kind, seed and dim
 *   must be theirs).
 * @param o.gradientEngine - The run's gradient engine: an index whose rows another engine computed
 *   is used, with a note in the log.
 * @throws DdaError naming the index folder and what differs: an index at a checkpoint the run does
 *   not have, two at one checkpoint, another base model or checkpoint (content), other training
 *   samples or order, another context length or overlong policy, indexes projected otherwise than
 *   each other or than asked; and an unfinished or damaged index (as {@link readIndexHeader}).
 */
export function openTrainIndexes(task: AttributionTask, dirs: readonly string[], o: { readonly projection?: ProjectionSpec; readonly gradientEngine?: string; readonly log?: Log } = {}): IndexedTraining {
  const log = o.log ?? (() => {});
  if (dirs.length === 0) throw new DdaError('--index: no index folders given');
  const all = [task.baseCheckpoint, ...task.checkpoints];
  const ids = task.train.samples.map((s) => s.id);
  const samplesHash = hashOf(task.train.samples);
  const byCp = new Map<string, RunIndex>();
  let first: RunIndex | null = null;
  for (const dir of dirs) {
    const h = readIndexHeader(dir, log);
    const where = `--index ${dir}`;
    const cp = all.find((c) => c.id === h.checkpoint.id);
    if (!cp) {
      throw new DdaError(
        `${where} is at ${h.checkpoint.id}, which this run does not have (its checkpoints: base (θ0), ${task.checkpoints.map((c) => c.id).join(', ')})`,
        `give the --checkpoints the index was built from (${h.checkpoints.join(', ')}), or leave this index out`,
      );
    }
    const twice = byCp.get(cp.id);
    if (twice) throw new DdaError(`${where} and --index ${twice.dir} are both at ${cp.id}`, 'give one index per checkpoint');
    const model = differences(h.model.hash, task.base.hash, 'base model files');
    if (model.length > 0) throw new DdaError(`${where} was built on another base model than --base ${task.base.dir} (${model.slice(0, 4).join('; ')})`, 'give the --base the index was built from, or build the index again on this one');
    const at = differences({ kind: h.checkpoint.kind, hash: h.checkpoint.hash }, { kind: cp.kind, hash: cp.hash }, cp.id);
    if (at.length > 0) throw new DdaError(`${where} was built at another ${cp.id} than this run's ${cp.id === 'base' ? '(θ0 is the base model with the final adapter\'s lora_A)' : `(${cp.dir})`}: ${at.slice(0, 4).join('; ')}`, 'give the checkpoints the index was built from, or build the index again at this checkpoint');
    if (h.count !== ids.length) throw new DdaError(`${where} holds ${h.count} training rows; --train has ${ids.length} samples`, 'give the --train the index was built from, or build the index again over this one');
    const row = h.trainIds.findIndex((id, i) => id !== ids[i]);
    if (row >= 0) throw new DdaError(`${where}: row ${row} is training sample '${h.trainIds[row]}', but sample ${row} of --train is '${ids[row]}'`, 'give the --train the index was built from (the same records in the same order)');
    if (h.train.samples !== samplesHash) {
      throw new DdaError(
        `${where} was built over the same training ids rendered otherwise (hash of the rendered samples: index ${h.train.samples}, this run ${samplesHash}): the records' text, --fields, --prompt-format, --loss-on or --chat-date differ (the index records prompt format ${h.encoding.promptFormat}${h.encoding.lossOn ? `, loss on ${h.encoding.lossOn}` : ''}${h.encoding.chatDate ? `, chat date ${h.encoding.chatDate}` : ''})`,
        'render the training data as the build did, or build the index again',
      );
    }
    const enc = differences({ maxLength: h.encoding.maxLength, overlong: h.encoding.overlong }, task.encoding, 'encoding');
    if (enc.length > 0) throw new DdaError(`${where} was built with another context length or overlong policy (${enc.join('; ')})`, 'give the --max-length and --overlong of the build, or build the index again');
    if (first) {
      const proj = projectionDifferences(first.header.projection, h.projection, (x, a, b) => `${x} ${a} in ${first?.dir}, ${b} in ${dir}`);
      if (proj.length > 0) throw new DdaError(`--index ${first.dir} and ${where} were projected otherwise (${proj.join('; ')})`, 'build every index of one attribution with the same --dim, --seed and --projection');
    }
    const engine = o.gradientEngine ?? 'onnxruntime';
    if (h.engine !== engine) log(`note: ${where}: its rows were computed on ${h.engine}; this run's query gradients on ${engine} (the engines agree to float32 rounding)`);
    const entry = { dir, header: h };
    byCp.set(cp.id, entry);
    first ??= entry;
  }
  const head = (first as RunIndex).header;
  const projection: ProjectionSpec = { kind: head.projection.kind, seed: head.projection.seed, dim: head.projection.dim };
  if (o.projection) {
    const asked = projectionDifferences(o.projection, projection, (x, a, b) => `${x}: asked ${a}, the indexes ${b}`);
    if (asked.length > 0) throw new DdaError(`--projection-dim / --projection-seed ask for another projection than the indexes' (${asked.join('; ')})`, 'drop --projection-dim and --projection-seed: with --index the run takes the indexes\' projection');
  }
  const computedAt = all.filter((c) => !byCp.has(c.id)).map((c) => c.id);
  const rowsAt = new Map<string, TrainRowsAt>();
  const keys = new Map([...byCp].map(([id, x]) => [id, indexKey(x.header, x.dir)])); // once per index: it hashes the training ids
  for (const [id, { dir, header: h }] of byCp) {
    rowsAt.set(id, {
      key: { index: keys.get(id), dtype: h.dtype },
      modules: h.modules,
      where: `the index ${dir}`,
      read(start, end) {
        const flat = readIndexRows(dir, h, start, end);
        return Array.from({ length: end - start }, (_, i) => flat.subarray(i * h.dim, (i + 1) * h.dim));
      },
    });
  }
  log(`training gradients read from ${byCp.size} gradient index${byCp.size === 1 ? '' : 'es'}, not computed: ${[...byCp].map(([id, x]) => `${id} ← ${x.dir}`).join(', ')} (${head.count} float16 rows × k = ${projection.dim}, ${projection.kind} projection, seed ${projection.seed}; the queries' gradients are projected with it)`);
  if (computedAt.length > 0) log(`training gradients computed at ${computedAt.join(', ')} (no --index at ${computedAt.length === 1 ? 'it' : 'them'}), projected with the indexes' projection (float32, not rounded to float16 as index rows are)`);
  return {
    projection,
    trainRows: { at: (id) => rowsAt.get(id) },
    indexes: byCp,
    computedAt,
    record: [...byCp].map(([id, x]) => ({ dir: x.dir, checkpoint: id, identity: keys.get(id) as string, rows: x.header.count, dim: x.header.dim })),
  };
}

/**
 * The run options of an attribution with `--index` folders: the indexes' projection and rows
 * ({@link openTrainIndexes}); none without indexes.
 */
export function indexRunOptions(task: AttributionTask, o: { readonly indexes?: readonly string[] | undefined; readonly projection?: ProjectionSpec | undefined; readonly gradientEngine?: string | undefined; readonly log?: Log | undefined }): { indexed: IndexedTraining | null; options: Pick<RunOptions, 'projection' | 'trainRows'> } {
  if (!o.indexes || o.indexes.length === 0) return { indexed: null, options: {} };
  const indexed = openTrainIndexes(task, o.indexes, { ...(o.projection ? { projection: o.projection } : {}), ...(o.gradientEngine ? { gradientEngine: o.gradientEngine } : {}), ...(o.log ? { log: o.log } : {}) });
  return { indexed, options: { projection: indexed.projection, trainRows: indexed.trainRows } };
}

/**
 * The projection error of an attribution over indexes, estimated as `dda index query` estimates it
 * for DDA over indexes (index-dda-error.ts: the JL variance per tensor from sampled index rows and
 * the queries' projected gradients, propagated through the method's debias and denoise): for
 * `grad-dot` and `grad-cos` (inner products and cosines of projected rows, which the estimate
 * models) when every checkpoint, θ0 included, has an index; otherwise skipped, saying why. Logs a
 * warning when the error is a large part of the scores (a larger `--dim` is the remedy).
 */
export async function indexProjectionError(
  run: AttributionRun, ix: IndexedTraining, s: CheckpointScores, infos: readonly CheckpointInfo[], o: { readonly debias: string | null; readonly denoise: string | null; readonly beta: number }, out: ScoreMatrix, topK: number, log: Log,
): Promise<ProjectionErrorSummary | { readonly skipped: string }> {
  if (s.scorer.id !== 'grad-dot' && s.scorer.id !== 'grad-cos') return { skipped: `the estimate models inner products and cosines of projected rows (grad-dot, grad-cos), not ${s.scorer.id}` };
  if (ix.computedAt.length > 0) return { skipped: `no index at ${ix.computedAt.join(', ')} (their rows were computed and not kept)` };
  const indexes: ErrorIndex[] = [];
  for (const cp of run.allCheckpoints) {
    const { dir, header: h } = ix.indexes.get(cp.id) as RunIndex;
    const q = await run.queryGradients(cp);
    indexes.push({ id: cp.id, modules: h.modules, queries: q.rows.map((r) => Float64Array.from(r)), row: (i) => readIndexRows(dir, h, i, i + 1) });
  }
  const { summary } = await estimateProjectionError(indexes, s, infos, o, out, topK, s.scorer.id === 'grad-cos');
  if (summary.warning) log(`warning: ${summary.warning}`);
  return summary;
}
