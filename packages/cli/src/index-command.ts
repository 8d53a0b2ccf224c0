/**
 * `dda index build`, `dda index query`, `dda index sketch` (for approximate queries), and `dda index
 * merge` / `dda index slurm` for a build in shards: a compressed gradient index of a training set at one checkpoint (seeded random
 * projections of the per-example gradients, float16 rows in one flat file with index.json beside
 * it; see @dda/attribution's gradient-index.ts), queried many times.
 */
import type { Argv } from 'yargs';
import { DdaError } from '@dda/core';
import {
  DEFAULT_INDEX_BLOCK_ROWS, DEFAULT_INDEX_DIM, DEFAULT_SKETCH_DIM, INDEX_FILES, buildIndexSketch, PROJECTION_KINDS, RECOMMENDED_DDA, buildGradientIndex, buildGradientIndexShard, indexShardRows,
  mergeGradientIndexShards, queryGradientIndex, queryGradientIndexesDda, resolveShard, type IndexBuildOptions, type ProjectionKind,
} from '@dda/attribution';
import { parseFieldMap, scanTrainingData } from '@dda/data';
import type { Reporter } from './progress.js';
import { type RunInputArgs, runInputOptions, runInputsFrom } from './run-inputs.js';
import { commandArgv, shardOptions, slurmOptions, submitSharded, type SlurmArgs } from './slurm.js';

/** Where the command prints: results (stdout) and the reporter of the run (made after parsing). */
export interface IndexCommandIo {
  readonly out: (line: string) => void;
  readonly reporter: () => Reporter;
}

const positive = (name: string, v: number | undefined): number | undefined => {
  if (v !== undefined && (!Number.isInteger(v) || v <= 0)) throw new DdaError(`--${name} must be a positive integer, got ${v}`);
  return v;
};

function buildOptions<T>(y: Argv<T>) {
  return runInputOptions(y)
    .option('checkpoint', { type: 'string', demandOption: true, describe: 'the checkpoint of the index: base (θ0, the final adapter\'s lora_A with lora_B = 0), a checkpoint id (checkpoint-500) or one of the --checkpoints folders' })
    .option('out', { type: 'string', default: 'dda-index', describe: `index folder: ${INDEX_FILES.rows} (float16 [n × dim]) and ${INDEX_FILES.header}; a killed build resumes there` })
    .option('dim', { type: 'number', default: DEFAULT_INDEX_DIM, describe: 'projected dimensions k per sample (2 bytes each), split across the LoRA matrices in proportion to their sizes' })
    .option('seed', { type: 'number', default: 0, describe: 'seed of the projection (regenerated from it at query time, never stored)' })
    .option('projection', { type: 'string', choices: PROJECTION_KINDS, default: 'rademacher', describe: 'entries of the projection: ±1/√k_m (rademacher) or N(0, 1/k_m) (gaussian)' })
    .option('measurement', { type: 'string', default: 'loss', describe: 'test measurement f of the queries this index answers (see `dda methods`)' })
    .option('block-rows', { type: 'number', default: DEFAULT_INDEX_BLOCK_ROWS, describe: 'training samples per block (the unit of writing and resuming)' })
    .option('gradient-engine', { type: 'string', default: 'onnxruntime', describe: 'an id of the engines registry (dda methods; built in: onnxruntime, tfjs): engine of the per-example gradients' })
    .option('backend', { type: 'string', array: true, describe: 'tfjs backends to try in order (default: by priority)' });
}

/** Parsed `dda index build` options (see {@link buildOptions}). */
interface BuildArgs extends RunInputArgs {
  checkpoint: string; out: string; dim: number; seed: number; projection: string; measurement: string; 'block-rows': number; 'gradient-engine': string; backend?: (string | number)[] | undefined;
}

/** The option names of {@link buildOptions}, for the command line of `dda index slurm`'s tasks. */
const BUILD_FLAGS = [
  'base', 'checkpoints', 'train', 'fields', 'prompt-format', 'max-length', 'overlong', 'tokenizer', 'loss-on', 'chat-date', 'base-name',
  'checkpoint', 'dim', 'seed', 'projection', 'measurement', 'block-rows', 'gradient-engine', 'backend',
] as const;

/** The IndexBuildOptions of parsed options, validated (without the log and progress). */
function buildOptionsFrom(a: BuildArgs): Omit<IndexBuildOptions, 'log' | 'progress'> {
  return {
    ...runInputsFrom(a), checkpoint: a.checkpoint,
    out: a.out, dim: positive('dim', a.dim) as number, seed: a.seed, projection: a.projection as ProjectionKind, measurement: a.measurement,
    blockRows: positive('block-rows', a['block-rows']) as number, gradientEngine: String(a['gradient-engine']),
    ...(a.backend ? { backends: a.backend.map(String) } : {}),
  };
}

function queryOptions<T>(y: Argv<T>) {
  return y
    .option('index', { type: 'string', array: true, demandOption: true, describe: 'the index folder (dda index build --out); repeat it with one index at base (θ0) and one per checkpoint for DDA over them (--debias, --denoise, --beta)' })
    .option('debias', { type: 'string', describe: `with several --index: the debiaser (default ${RECOMMENDED_DDA.debias}; none: off)` })
    .option('denoise', { type: 'string', describe: `with several --index: the denoiser over the checkpoints (default ${RECOMMENDED_DDA.denoise}; none: the last checkpoint's scores)` })
    .option('beta', { type: 'number', describe: `with several --index: β of the debiaser (default ${RECOMMENDED_DDA.beta})` })
    .option('queries', { type: 'string', demandOption: true, describe: 'outputs to explain (as dda attribute --queries)' })
    .option('query-fields', { type: 'string', array: true, describe: 'map the --queries file\'s column names: ours=theirs' })
    .option('base', { type: 'string', describe: 'base model folder (default: the one index.json records; its content must match)' })
    .option('checkpoints', { type: 'string', array: true, describe: 'checkpoint folders (default: those index.json records; the index\'s checkpoint must be among them, same content)' })
    .option('base-name', { type: 'string', describe: 'the Hub id of the model in --base, where its folder is named otherwise' })
    .option('tokenizer', { type: 'string', describe: 'tokenizer folder, where the index was built with --tokenizer (default: the one index.json records; its content must match)' })
    .option('train', { type: 'string', describe: 'the training file, where it has moved since the build (default: the one index.json records; its content must match): the texts of the top-k lists come from it' })
    .option('measurement', { type: 'string', describe: 'test measurement f (default and only choice: the index\'s; another is refused)' })
    .option('dim', { type: 'number', describe: 'expected projected dimensions (refused when the index\'s differ)' })
    .option('seed', { type: 'number', describe: 'expected projection seed (refused when the index\'s differs)' })
    .option('projection', { type: 'string', choices: PROJECTION_KINDS, describe: 'expected projection kind (refused when the index\'s differs)' })
    .option('top-k', { type: 'number', default: 10, describe: 'training samples listed per query' })
    .option('normalize', { type: 'boolean', default: false, describe: 'score by cosine (as grad-cos) instead of inner product (as grad-dot)' })
    .option('candidates', { type: 'number', describe: 'approximate search (one --index; needs dda index sketch first): only the C rows per query that each of the sketch\'s two halves ranks highest are scored exactly; the scores printed are exact, a row neither half ranks among its C best is missed, and a query whose halves disagree is flagged (default: every row scored)' })
    .option('out', { type: 'string', default: 'dda-index-query', describe: 'output folder: topk.csv, topk.jsonl, query.json' })
    .option('gradient-engine', { type: 'string', default: 'onnxruntime', describe: 'an id of the engines registry (dda methods; built in: onnxruntime, tfjs): engine of the query gradients' })
    .option('backend', { type: 'string', array: true, describe: 'tfjs backends to try in order (default: by priority)' });
}

/** Adds `dda index build` and `dda index query` to a yargs parser. */
export function indexCommand<T>(y: Argv<T>, io: IndexCommandIo): Argv<T> {
  return y.command(
    'index',
    'A compressed gradient index: `dda index build` projects every training sample\'s per-example gradient at one checkpoint (seeded random projection per LoRA matrix) into float16 rows of one flat file (or one shard of them: `dda index merge` joins the shards); `dda index query` scores new queries against it (top-k by inner product, or cosine)',
    (c) => c
      .command(
        'build',
        'Build (or resume) the index of a training set at one checkpoint: <out>/gradients.f16 (float16, row-major [n × dim]) and <out>/index.json. With --shard i/n (or --shards n and the index from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX) it builds shard i\'s rows into <out>/shards/; dda index merge then writes the index',
        (b) => shardOptions(buildOptions(b)),
        async (a) => {
          const o = buildOptionsFrom(a);
          const shard = resolveShard(a.shard, a.shards);
          const reporter = io.reporter();
          if (shard) {
            const r = await buildGradientIndexShard({ ...o, log: reporter.log, progress: reporter.progress }, shard);
            reporter.close();
            const what = { built: 'done', 'finished-earlier': 'had finished earlier', merged: 'is in the merged index already' }[r.status];
            io.out(`index shard ${shard.index}/${shard.count} ${what}: rows ${r.rows.start} to ${r.rows.end - 1} of ${r.total}`);
            if (r.status !== 'merged') io.out(r.unfinished.length > 0 ? `not finished yet: shard${r.unfinished.length > 1 ? 's' : ''} ${r.unfinished.join(', ')} of ${shard.count}` : `every shard has finished: dda index merge --index ${a.out}`);
            return;
          }
          const h = await buildGradientIndex({ ...o, log: reporter.log, progress: reporter.progress });
          reporter.close();
          io.out(`index ${a.out}: ${h.count} training samples × ${h.dim} float16 at ${h.checkpoint.id} (${h.bytesPerRow.index} bytes per sample; the float32 gradient is ${h.bytesPerRow.fullGradient}), projection ${h.projection.kind} seed ${h.projection.seed}, measurement ${h.measurement}`);
          io.out(`read with numpy in ${a.out}: ${h.read}`);
        },
      )
      .command(
        'query',
        'Score queries against an index at its checkpoint: their measurement gradients projected with the index\'s seeded projection, the top-k training samples by inner product (or cosine with --normalize); writes topk.csv and topk.jsonl as dda attribute',
        (q) => queryOptions(q),
        async (a) => {
          const indexes = a.index.map(String);
          const strategyFlags = (['debias', 'denoise', 'beta'] as const).filter((f) => a[f] !== undefined);
          if (indexes.length === 1 && strategyFlags.length > 0) throw new DdaError(`--${strategyFlags[0]} is DDA's, over several indexes; one --index was given`, 'give the index at base (θ0) and one per checkpoint, or drop the flag');
          const reporter = io.reporter();
          const start = Date.now();
          // The options of a query, one index or several (DDA).
          const common = {
            queries: a.queries,
            ...(a['query-fields'] ? { queryFields: parseFieldMap(a['query-fields'].map(String), '--query-fields') } : {}),
            ...(a.base !== undefined ? { base: a.base } : {}), ...(a.checkpoints ? { checkpoints: a.checkpoints.map(String) } : {}),
            ...(a['base-name'] !== undefined ? { baseName: a['base-name'] } : {}), ...(a.tokenizer !== undefined ? { tokenizer: a.tokenizer } : {}), ...(a.train !== undefined ? { train: a.train } : {}),
            ...(a.measurement !== undefined ? { measurement: a.measurement } : {}),
            projection: { ...(a.dim !== undefined ? { dim: a.dim } : {}), ...(a.seed !== undefined ? { seed: a.seed } : {}), ...(a.projection !== undefined ? { kind: a.projection as ProjectionKind } : {}) },
            topK: positive('top-k', a['top-k']) as number, normalize: a.normalize, out: a.out, ...(a.candidates !== undefined ? { candidates: positive('candidates', a.candidates) as number } : {}), gradientEngine: String(a['gradient-engine']),
            ...(a.backend ? { backends: a.backend.map(String) } : {}),
            log: reporter.log, progress: reporter.progress,
          };
          if (indexes.length > 1) {
            const off = (v: string | undefined): string | null | undefined => (v === 'none' ? null : v);
            const r = await queryGradientIndexesDda({
              ...common, indexes,
              ...(a.debias !== undefined ? { debias: off(a.debias) } : {}), ...(a.denoise !== undefined ? { denoise: off(a.denoise) } : {}), ...(a.beta !== undefined ? { beta: a.beta } : {}),
            });
            reporter.close();
            io.out(`Index DDA: ${r.tops.length} queries × ${r.matrix.trainIds.length} training samples over base and ${r.checkpoints.join(', ')}, ${((Date.now() - start) / 1000).toFixed(1)} s; scores: ${r.description}`);
            for (const q of r.tops.slice(0, 10)) io.out(`  ${q.queryId}${q.group ? ` (${q.group})` : ''}: ${q.top.map((t) => `${t.trainId} ${t.score.toPrecision(3)}`).join(', ')}`);
            if (r.tops.length > 10) io.out(`  ... ${r.tops.length - 10} more queries in ${r.files[0]}`);
            io.out(`outputs: ${r.files.join(', ')}`);
            return;
          }
          const r = await queryGradientIndex({ ...common, index: indexes[0] as string });
          reporter.close();
          io.out(`Index query: ${r.tops.length} queries × ${r.header.count} training samples at ${r.header.checkpoint.id}, ${((Date.now() - start) / 1000).toFixed(1)} s; score: ${r.units}`);
          for (const q of r.tops.slice(0, 10)) io.out(`  ${q.queryId}${q.group ? ` (${q.group})` : ''}: ${q.top.map((t) => `${t.trainId} ${t.score.toPrecision(3)}`).join(', ')}`);
          if (r.tops.length > 10) io.out(`  ... ${r.tops.length - 10} more queries in ${r.files[0]}`);
          io.out(`outputs: ${r.files.join(', ')}`);
        },
      )
      .command(
        'sketch',
        'Make (once) the sketch of an index for approximate queries: each row\'s seeded random projection to --dim dimensions, float16, in <index>/sketch.f16 and sketch.json; then dda index query --candidates C scans the sketch and scores only the C best rows per query (by each of its two halves) exactly',
        (s) => s
          .option('index', { type: 'string', demandOption: true, describe: 'the index folder (dda index build --out)' })
          .option('dim', { type: 'number', default: DEFAULT_SKETCH_DIM, describe: 'sketch dimensions s per row (even: two halves of s/2; 2 × s bytes each)' })
          .option('seed', { type: 'number', default: 0, describe: 'seed of the sketch\'s projection (regenerated at query time)' }),
        async (a) => {
          const reporter = io.reporter();
          const h = await buildIndexSketch({ index: a.index, dim: a.dim, seed: a.seed, log: reporter.log, progress: reporter.progress });
          reporter.close();
          io.out(`sketch of ${a.index}: ${h.count} rows × ${h.dim} float16, seed ${h.seed}: ${h.how}`);
          io.out(`approximate queries: dda index query --index ${a.index} --candidates 10000 ...`);
        },
      )
      .command(
        'merge',
        'Merge the shards of an index built with --shard i/n: check that every shard finished with the same inputs (naming the missing or mismatched ones, to rebuild only those), concatenate them into <index>/gradients.f16 and index.json, exactly as one build writes them, then delete <index>/shards/',
        (m) => m.option('index', { type: 'string', demandOption: true, describe: 'the index folder the shards were built into (dda index build --out)' }),
        (a) => {
          const reporter = io.reporter();
          const r = mergeGradientIndexShards(a.index, { log: reporter.log });
          reporter.close();
          io.out(`index ${a.index}: ${r.merged > 0 ? `merged ${r.merged} shards` : 'merged already'}: ${r.header.count} training samples × ${r.header.dim} float16 at ${r.header.checkpoint.id}`);
          io.out(`read with numpy in ${a.index}: ${r.header.read}`);
        },
      )
      .command(
        'slurm',
        'Submit an index build in shards to SLURM: a job array of `dda index build ... --shards n` (one task per shard) and a `dda index merge` job that runs after every task has ended (--dependency=afterany), with per-task resources; scripts and logs in <out>/slurm/. Takes every option of dda index build',
        (s) => slurmOptions(buildOptions(s)),
        async (a) => {
          const o = buildOptionsFrom(a); // validate the values before submitting anything
          // Every shard must have rows (as the build checks): read the training set as the build does (one record at a time), before any script is written.
          const n = (await scanTrainingData(o.train, { promptFormat: o.promptFormat ?? 'raw', ...(o.fields ? { fields: o.fields } : {}) }, () => {})).count;
          if (n === 0) throw new DdaError(`--train ${o.train}: no training records`);
          if (Number.isInteger(a.shards) && a.shards > 0) indexShardRows(n, o.blockRows ?? DEFAULT_INDEX_BLOCK_ROWS, { index: 0, count: a.shards });
          const args = commandArgv(a, BUILD_FLAGS, new Set(['base', 'checkpoints', 'train', 'tokenizer']));
          submitSharded(a as typeof a & SlurmArgs, { args: ['index', 'build', ...args], merge: ['index', 'merge', '--index'], name: 'index' }, io.out);
        },
      )
      .demandCommand(1, 'name a subcommand: dda index build, query, sketch, merge or slurm (see dda index --help)'),
  );
}
