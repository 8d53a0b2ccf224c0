import { join } from 'node:path';
import yargs from 'yargs';
import { DdaError, PLUGINS_ENV, backends, datasets, debiasers, denoisers, dotKernels, measurements, metrics, ortThreadsFromEnvironment, parsePluginList, scorers } from '@dda/core';
import { engines } from '@dda/model';
import {
  DEFAULT_RUN_OPTIONS, formatTable, loadBenchConfig, parseBenchConfig, removeCellResults, runAblation, runBench, runDda,
  summaryMarkdown, writeBenchOutputs, writeResultsCsv, type BenchConfig, type BenchFormat, type DdaRunResult,
} from '@dda/harness';
import { ATTRIBUTE_FILES, RECOMMENDED_DDA, checkEngineIds, checkScorerOptions, parseScorerOptions, loadUserPlugins, mergeShards, resolveShard, runAttribute, runShard, shardManifestPath, writeFileAtomic, type AttributeOptions, type AttributeResult } from '@dda/attribution';
import { parseFieldMap } from '@dda/data';
import { type RunInputArgs, runInputOptions, runInputsFrom } from './run-inputs.js';
import { PROGRESS_MODES, createReporter, progressModeOf, type ProgressMode, type Reporter, type Terminal } from './progress.js';
import { commandArgv, shardOptions, slurmOptions, submitSharded } from './slurm.js';
import { UsageError, checkNumericFlags, checkRepeatedFlags, knownFlags, multiValueFlags, withFlagSuggestions } from './flags.js';
import { computedSeconds, demoHeader, demoNextStep, readSummary } from './demo-output.js';
import { indexCommand } from './index-command.js';
import { checkJobs, runBenchWorkers } from './bench-jobs.js';

/** Streams the CLI writes to (replaceable in tests). */
export interface CliIo {
  /** One line of results (stdout). */
  out: (line: string) => void;
  /** One line of progress, log or error (stderr). */
  err: (line: string) => void;
  /** The terminal live progress bars are drawn on (stderr when it is a TTY); without it progress is printed as sparse lines. */
  terminal?: Terminal | undefined;
  /** Milliseconds for elapsed times and the pace of progress lines (tests); default `Date.now`. */
  clock?: () => number;
}
const defaultIo: CliIo = {
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
  terminal: process.stderr.isTTY ? process.stderr : undefined,
};

/** The benchmark configuration of `bench` / `ablate`: the file, then command-line overrides. */
function benchConfigFrom(a: { config?: string | undefined; families?: string[] | undefined; scorers?: string[] | undefined; scorer?: string | undefined; seeds?: number[] | undefined; name?: string | undefined; metrics?: string[] | undefined; projectionDim?: number | undefined; storeGradients?: boolean | undefined }): BenchConfig {
  const base = a.config ? loadBenchConfig(a.config) : parseBenchConfig({}, 'defaults');
  const overrides = {
    ...(a.families ? { families: a.families } : {}), ...(a.scorers ? { scorers: a.scorers } : {}), ...(a.seeds ? { seeds: a.seeds } : {}), ...(a.name ? { name: a.name } : {}),
    ...(a.metrics ? { metrics: a.metrics } : {}), ...(a.storeGradients ? { storeGradients: true } : {}),
    ...(a.projectionDim !== undefined ? { projection: { ...(base.projection ?? {}), dim: a.projectionDim } } : {}),
    ...(a.scorer ? { ablation: { ...base.ablation, scorer: a.scorer } } : {}),
  };
  return Object.keys(overrides).length > 0 ? parseBenchConfig({ ...base, ...overrides }, `${a.config ?? 'defaults'} with command-line flags`) : base;
}

function summaryJson(r: DdaRunResult, computedSeconds: number | undefined): string {
  return JSON.stringify({
    options: r.options, backend: r.backend, dataset: r.dataset, finetuneLosses: r.finetuneLosses, scoreScale: r.scoreScale, seconds: r.seconds, computedSeconds: computedSeconds ?? null, reused: r.reused, computed: r.computed,
    // A row's `values` repeats its fields by results.csv's column (an asked metric's is in `metrics`).
    errors: r.errors, rows: r.rows.map(({ values: _values, ...row }) => row),
    sign: 'higher score = training sample more responsible for the erroneous output',
  }, null, 2);
}

/**
 * Runs the `dda` command line. Returns the exit code: 0 on success, 1 on a user-facing error
 * (one line on stderr; the stack with --verbose), 2 on bad usage.
 */
export async function runCli(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  const verbose = argv.includes('--verbose');
  let code = 0;
  const d = DEFAULT_RUN_OPTIONS;
  // The reporter is made once the options are parsed; a usage error before that is reported in the mode asked for.
  const asked = progressModeOf(argv);
  let reporter: Reporter = createReporter(io, { mode: asked, quiet: argv.includes('--quiet'), ...(io.clock ? { clock: io.clock } : {}) });
  const parser = yargs([...argv]);
  parser
    .scriptName('dda')
    .usage('$0 <command> [options]\n\nTraining data attribution for LLMs with DDA (Debias and Denoise Attribution).\nScores: higher = training sample more responsible for the test output.')
    .option('verbose', { type: 'boolean', default: false, describe: 'print stacks of errors and more progress' })
    .option('progress', { type: 'string', choices: PROGRESS_MODES, default: 'auto', describe: 'progress on stderr: auto (a live bar on a terminal, else log), bar, log (a line per step at most every 15 s, and its final line), json (one JSON event per line: progress, log, error), none' })
    .option('quiet', { type: 'boolean', default: false, describe: 'no progress and no log lines on stderr (results still go to stdout, errors to stderr)' })
    .middleware((a) => {
      reporter = createReporter(io, { mode: a.progress as ProgressMode, quiet: a.quiet, ...(io.clock ? { clock: io.clock } : {}) });
      checkNumericFlags(a, argv);
      checkRepeatedFlags(a, multiValueFlags(parser));
      ortThreadsFromEnvironment(); // checked: a bad value would keep onnxruntime from starting, and the engine choice would move on to tfjs
    })
    .option('plugin', {
      type: 'string', array: true, global: true, requiresArg: true,
      describe: `load a plugin (npm package name, or a path to its file or folder relative to the current directory) that registers methods; repeatable; also from ${PLUGINS_ENV} (comma-separated)`,
    })
    // Before every command: the built-in plugins, then DDA_PLUGINS, then --plugin (a config's plugins: load with it).
    .middleware(async (a) => {
      await loadUserPlugins(parsePluginList(process.env[PLUGINS_ENV]), { origin: PLUGINS_ENV });
      await loadUserPlugins((a.plugin ?? []).map(String), { origin: '--plugin' });
      // Engine flags name an engine of the registry (a plugin's too): refused here, before any file is read.
      await checkEngineIds((['engine', 'gradient-engine'] as const).flatMap((f) => (typeof a[f] === 'string' ? [[`--${f}`, a[f] as string] as const] : [])));
    })
    .command(
      'demo',
      'End-to-end DDA on a built-in synthetic hallucination-tracing task: pretrain a tiny LLaMA-style model, LoRA fine-tune it, collect its hallucinations, attribute them, and report AUC / recall@k of plain influence, debias, denoise and DDA',
      (y) => y
        .option('seed', { type: 'number', default: d.seed, describe: 'seed of data, initialisation and shuffling' })
        .option('out', { type: 'string', default: d.outDir, describe: 'output folder (checkpoints, gradients, results.csv, summary.json); finished steps are reused' })
        .option('preset', { type: 'string', default: d.preset, describe: 'model: a preset (llama2-tiny, qwen2-tiny, mistral-tiny, llama3-tiny, qwen3-tiny, gemma3-tiny) or a Hugging Face model folder (config.json, safetensors, tokenizer.json)' })
        .option('n-train', { type: 'number', default: d.nTrain, describe: 'training samples' })
        .option('n-held-out', { type: 'number', default: d.nHeldOut, describe: 'held-out documents to generate from' })
        .option('n-pretrain', { type: 'number', default: d.nPretrain, describe: 'pretraining texts' })
        .option('pretrain-epochs', { type: 'number', default: d.pretrainEpochs })
        .option('pretrain-lr', { type: 'number', default: d.pretrainLearningRate })
        .option('finetune-epochs', { type: 'number', default: d.finetuneEpochs, describe: 'epochs = checkpoints averaged by the denoiser' })
        .option('finetune-lr', { type: 'number', default: d.finetuneLearningRate })
        .option('batch-size', { type: 'number', default: d.batchSize })
        .option('lora-rank', { type: 'number', default: d.loraRank })
        .option('engine', { type: 'string', default: 'onnxruntime', describe: 'an id of the engines registry (dda methods; built in: onnxruntime, tfjs): engine of training and generation: onnxruntime (tfjs where it does not start, the reason logged) or tfjs' })
        .option('gradient-engine', { type: 'string', default: 'onnxruntime', describe: 'an id of the engines registry (dda methods; built in: onnxruntime, tfjs): engine of the per-example gradients, losses and representations: the decoder as an ONNX graph on onnxruntime (tfjs where it does not start) or tfjs' })
        .option('finetune', { type: 'string', choices: ['lora', 'full'], default: 'lora', describe: 'fine-tune LoRA adapters, or every parameter (gradients then over every parameter)' })
        .option('random-init', { type: 'boolean', default: false, describe: 'with --preset <model folder> without weights: initialise θ0 from the seed and pretrain it on the data' })
        .option('min-errors', { type: 'number', default: 3, describe: 'a source is evaluated only with at least this many test errors (more held-out documents are generated from first)' })
        .option('scorer', { type: 'string', default: d.scorer, describe: 'attribution method id' })
        .option('measurement', { type: 'string', default: 'loss', describe: 'test measurement f: loss, contrastive (error vs correction) or entity-margin' })
        .option('beta', { type: 'number', default: d.beta, describe: 'β of the debias term' })
        .option('debias', { type: 'string', default: d.debiaser, describe: 'debiaser id for the debias and dda rows (raw = the paper; see `dda methods`)' })
        .option('denoise', { type: 'string', default: d.denoiser, describe: 'denoiser id for the denoise and dda rows (mean = the paper)' })
        .option('k', { type: 'number', default: d.k, describe: 'k of recall@k' })
        .option('metrics', { type: 'string', array: true, describe: 'more metrics from the metrics registry (dda methods; a plugin\'s too), each a column of results.csv: an id, or id:option=value,... e.g. recall-at-k:k=100' })
        .option('store-gradients', { type: 'boolean', default: false, describe: 'keep every training gradient in <out>/artifacts/gradients/ (as dda attribute --store-gradients); by default they are streamed: each block scored and dropped' })
        .option('backend', { type: 'string', array: true, describe: 'compute backends to try in order (default: by priority)' }),
      async (a) => {
        const positive = (name: string, v: number, integer = true): number => {
          if (!Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) throw new DdaError(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got ${v}`);
          return v;
        };
        if (!Number.isInteger(a.seed)) throw new DdaError(`--seed must be an integer, got ${a.seed}`);
        if (!Number.isFinite(a.beta)) throw new DdaError(`--beta must be a number, got ${a.beta}`);
        const result = await runDda({
          seed: a.seed, outDir: a.out, preset: a.preset,
          nTrain: positive('n-train', a['n-train']), nHeldOut: positive('n-held-out', a['n-held-out']), nPretrain: positive('n-pretrain', a['n-pretrain']),
          pretrainEpochs: positive('pretrain-epochs', a['pretrain-epochs']), pretrainLearningRate: positive('pretrain-lr', a['pretrain-lr'], false),
          finetuneEpochs: positive('finetune-epochs', a['finetune-epochs']), finetuneLearningRate: positive('finetune-lr', a['finetune-lr'], false),
          batchSize: positive('batch-size', a['batch-size']), loraRank: positive('lora-rank', a['lora-rank']), finetune: a.finetune as 'lora' | 'full', engine: String(a.engine), gradientEngine: String(a['gradient-engine']),
          randomInit: a['random-init'], minErrorsPerSource: positive('min-errors', a['min-errors']),
          scorer: a.scorer, measurement: a.measurement, beta: a.beta, debiaser: a.debias, denoiser: a.denoise, k: positive('k', a.k),
          ...(a['store-gradients'] ? { storeGradients: true } : {}),
          ...(a.metrics ? { metrics: a.metrics.map((m) => parseMetricSpec(String(m))) } : {}),
          ...(a.backend ? { backends: a.backend } : {}),
        }, reporter.log, reporter.progress);
        reporter.close();
        const computed = computedSeconds(result, readSummary(join(a.out, 'summary.json')));
        await writeResultsCsv(join(a.out, 'results.csv'), result.rows, result.metrics);
        writeFileAtomic(join(a.out, 'summary.json'), summaryJson(result, computed));
        io.out(demoHeader(result, computed));
        io.out(`ROC-AUC in %, recall@${a.k} as a fraction; scores: higher = more responsible`);
        io.out(formatTable(result));
        io.out(`results: ${join(a.out, 'results.csv')}, details: ${join(a.out, 'summary.json')}`);
        for (const line of demoNextStep(result.options)) io.out(line);
      },
    )
    .command(
      'attribute',
      'Attribute your own fine-tuned model: which training samples are responsible for each query output. Reads a base model folder, the run\'s checkpoints (PEFT adapters, model folders or a trainer output folder), the training data and the queries; writes the top-k training samples per query (topk.csv, topk.jsonl), the score matrix (scores.npy + scores.json), an HTML page (report.html), summary.json and, with --labels, metrics.csv. With --shard i/n (or --shards n and the index from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX) it computes one shard into --out; dda merge then writes the outputs',
      (y) => shardOptions(attributeOptions(y)),
      async (a) => {
        const start = Date.now();
        const o = { ...attributeOptionsFrom(a), command: `dda ${argv.join(' ')}`, log: reporter.log, progress: reporter.progress };
        if (o.scorerOptions) await checkScorerOptions(o.scorerOptions, '--scorer-option');
        const shard = resolveShard(a.shard, a.shards);
        if (shard) {
          const r = await runShard(o, shard);
          reporter.close();
          io.out(`shard ${shard.index}/${shard.count} ${r.skipped ? 'had finished earlier' : 'done'}: ${r.manifest.units} units, ${r.manifest.computed} artifacts computed, ${r.manifest.reused} reused; manifest ${shardManifestPath(a.out, shard)}`);
          return;
        }
        const r = await runAttribute(o);
        reporter.close();
        printAttribution(io, r, start);
      },
    )
    .command(
      'merge',
      'Merge the shards of a sharded attribution in --out: check that every shard finished with the same inputs (naming the missing or mismatched ones, to resubmit only those), then write the outputs of a one-machine run',
      (y) => y.option('out', { type: 'string', demandOption: true, describe: 'the output folder the shards wrote into' }),
      async (a) => {
        const start = Date.now();
        const r = await mergeShards(a.out, { log: reporter.log, progress: reporter.progress, command: `dda ${argv.join(' ')}` });
        reporter.close();
        io.out(`merged ${r.shards} shards (${r.computedAtMerge.length} artifacts computed at the merge)`);
        printAttribution(io, r, start);
      },
    )
    .command(
      'slurm',
      'Submit a sharded attribution to SLURM: a job array of `dda attribute ... --shards n` (one task per shard) and a `dda merge` job that runs after every task has ended (--dependency=afterany), with per-task resources. Takes every option of dda attribute',
      (y) => slurmOptions(attributeOptions(y)),
      async (a) => {
        const o = attributeOptionsFrom(a); // validate the values before submitting anything
        if (o.scorerOptions) await checkScorerOptions(o.scorerOptions, '--scorer-option');
        submitSharded(a, { args: ['attribute', ...attributeArgv(a)], merge: ['merge', '--out'], name: 'attribute' }, io.out);
      },
    )
    .command(
      'bench',
      'Leaderboard: every scorer (plain) and every DDA variant over every gradient-based scorer, for each model family × seed; CSV, summary with 95% Student-t intervals over the seeds, paired tests and an HTML report. Finished steps are reused, so an interrupted run resumes',
      (y) => benchOptions(y),
      async (a) => runBenchCommand('bench', a, argv, io, reporter),
    )
    .command(
      'ablate',
      'DDA ablation over one scorer: full, no-debias, no-denoise, neither; β sweep; number of checkpoints N; debiaser × denoiser grid',
      (y) => benchOptions(y).option('scorer', { type: 'string', describe: 'the scorer the ablation runs over, overriding the config\'s ablation.scorer (default grad-dot)' }),
      async (a) => runBenchCommand('ablation', a, argv, io, reporter),
    )
    .command('methods', 'List the registered scorers, measurements, debiasers, denoisers, metrics, engines, backends, dot-product kernels and data sets, with the plugin each came from', () => {}, async () => {
      const lists: [string, { list(): readonly { id: string; plugin?: string | undefined; description: string }[] }][] = [
        ['scorers', scorers], ['measurements', measurements], ['debiasers', debiasers], ['denoisers', denoisers], ['metrics', metrics], ['engines', engines], ['backends', backends], ['dot-product kernels', dotKernels], ['datasets', datasets],
      ];
      for (const [kind, reg] of lists) {
        io.out(`${kind}:`);
        for (const e of reg.list()) io.out(`  ${e.id.padEnd(16)} ${`[${e.plugin ?? 'registered directly'}]`.padEnd(28)} ${e.description}`);
      }
    })
    .demandCommand(1, 'name a command: attribute, merge, slurm, index, demo, bench, ablate, methods (see --help)')
    .strictCommands()
    .strictOptions()
    .recommendCommands()
    .exitProcess(false)
    .showHelpOnFail(false)
    .fail((msg, err) => {
      if (err && err.name !== 'YError') throw err;
      throw new UsageError(withFlagSuggestions(msg ?? err?.message ?? 'bad usage', knownFlags(parser), argv));
    })
    .help()
    .version(false);
  indexCommand(parser, { out: io.out, reporter: () => reporter });
  try {
    await parser.parseAsync();
  } catch (e) {
    reporter.close();
    if (e instanceof UsageError) {
      reporter.error(e.message);
      return 2;
    }
    reporter.error(e instanceof Error ? e.message : String(e));
    if (verbose && e instanceof Error && e.stack) io.err(e.stack);
    else if (!(e instanceof DdaError) && reporter.mode !== 'json') io.err('(run with --verbose for the stack)');
    code = 1;
  } finally {
    reporter.close();
  }
  return code;
}

/** The options of `dda attribute` (also taken by `dda slurm`). */
function attributeOptions<T>(y: import('yargs').Argv<T>) {
  return runInputOptions(y)
    .option('queries', { type: 'string', demandOption: true, describe: 'outputs to explain (in the formats of --train): prompt (or messages, conversations, instruction, document) and output; optional corrected, id, group' })
    .option('labels', { type: 'string', describe: 'true sources per query or group ({"<query id or group>": ["<train id>", ...]}), to report ROC-AUC and recall@k' })
    .option('query-fields', { type: 'string', array: true, describe: 'map the --queries file\'s column names: ours=theirs, e.g. --query-fields prompt=question output=generation' })
    .option('scorer', { type: 'string', default: 'grad-dot', describe: 'attribution method id (see `dda methods`)' })
    .option('scorer-option', { type: 'string', array: true, describe: 'an option of --scorer, key=value (a number where it reads as one), repeatable, e.g. --scorer-option damping=0.01 (the options: dda methods); a key the scorer does not take is refused' })
    .option('measurement', { type: 'string', default: 'loss', describe: 'test measurement f whose gradient the scorers use: loss, contrastive (output vs corrected), entity-margin (see `dda methods`)' })
    .option('debias', { type: 'string', default: RECOMMENDED_DDA.debias, describe: 'debiaser id, or none (the paper\'s formula: raw)' })
    .option('denoise', { type: 'string', describe: `denoiser id, or none (the paper's average: mean); default ${RECOMMENDED_DDA.denoise}, except for a scorer that combines its own checkpoints (tracin-cp: lr-weighted), which refuses another` })
    .option('beta', { type: 'number', describe: 'β of the debias term, default 1 (for a debiaser with a fixed β: raw, zscore, unit-norm, rank; refused where it would be ignored, e.g. with fitted-beta)' })
    .option('top-k', { type: 'number', default: 10, describe: 'training samples listed per query' })
    .option('heat-maps', { type: 'number', describe: 'queries (the first ones) whose top samples get token heat maps on the page, default 200; 0 for none (two forward passes per listed sample each: minutes at real size)' })
    .option('k', { type: 'number', default: 20, describe: 'k of recall@k (with --labels)' })
    .option('metrics', { type: 'string', array: true, describe: 'more metrics against --labels from the metrics registry (dda methods; a plugin\'s too), each a column of metrics.csv: an id, or id:option=value,... e.g. recall-at-k:k=100' })
    .option('out', { type: 'string', default: 'dda-attribution', describe: 'output folder (artifacts/ inside is reused by later runs)' })
    .option('learning-rates', { type: 'number', array: true, describe: 'learning rate at each checkpoint, in order (default: from trainer_state.json)' })
    .option('gradient-engine', { type: 'string', default: 'onnxruntime', describe: 'an id of the engines registry (dda methods; built in: onnxruntime, tfjs): engine of the per-example gradients, losses and representations (tfjs where onnxruntime does not start, the reason logged)' })
    .option('block-rows', { type: 'number', describe: 'training samples per gradient block (the unit of caching, resuming and sharding; a block\'s gradients are held in memory together); default 128, fewer where 128 rows of float32 gradients would exceed 1 GiB' })
    .option('store-gradients', { type: 'boolean', default: false, describe: 'keep every training gradient in <out>/artifacts/gradients/ (float32, 4 bytes per trainable parameter per sample and checkpoint) so new queries reuse them; by default grad-dot, grad-cos, tracin-cp and trak stream them (each block scored or summarized and dropped), and datainf, if-ekfac, if-exact, trackstar and grad-dot-pc in passes, fit then score (each gradient computed once per pass); if-lissa in depth + 1 passes, one per LiSSA step, only above 1 GiB of training gradients per checkpoint (its option streamAboveBytes; below, and with a minibatch, it stores them)' })
    .option('projection-dim', { type: 'number', describe: 'project every training and query gradient row to this many dimensions (the gradient index\'s seeded Rademacher projection, split across the tensors) before scoring: less memory for scorers that fit statistics over every row (trackstar, if-exact, grad-dot-pc stream up to 8,192 dimensions); scores approximate the unprojected ones (benchmarks/results/projection/)' })
    .option('projection-seed', { type: 'number', describe: 'seed of --projection-dim\'s projection (default 0; refused without --projection-dim)' })
    .option('index', { type: 'string', array: true, describe: 'a gradient index folder (dda index build --out) at one of the run\'s checkpoints (base for θ0); repeat it, one per checkpoint: the training gradients there are read from the index (float16 rows, projected) instead of computed, the queries\' gradients are projected with its projection, and checkpoints without an index get theirs computed and projected the same way. Each index must be over this run\'s base model, checkpoint, training samples (same order and rendering) and context length, else it is refused naming what differs' })
    .option('backend', { type: 'string', array: true, describe: 'tfjs backends to try in order (default: by priority)' });
}

/** Parsed `dda attribute` options (see {@link attributeOptions}). */
interface AttributeArgs extends RunInputArgs {
  queries: string; labels?: string | undefined; 'query-fields'?: (string | number)[] | undefined;
  scorer: string; measurement: string; debias: string; denoise?: string | undefined; beta?: number | undefined; 'top-k': number; k: number; out: string;
  'learning-rates'?: number[] | undefined; 'gradient-engine': string; 'block-rows'?: number | undefined; 'store-gradients': boolean; backend?: (string | number)[] | undefined;
  'projection-dim'?: number | undefined; 'projection-seed'?: number | undefined; index?: (string | number)[] | undefined; metrics?: (string | number)[] | undefined; 'heat-maps'?: number | undefined; 'scorer-option'?: (string | number)[] | undefined;
}

/** The option names of {@link attributeOptions}, for rebuilding a command line. */
const ATTRIBUTE_FLAGS = ['base', 'checkpoints', 'train', 'queries', 'labels', 'fields', 'query-fields', 'prompt-format', 'scorer', 'measurement', 'debias', 'denoise', 'beta', 'top-k', 'k', 'max-length', 'overlong', 'learning-rates', 'base-name', 'chat-date', 'tokenizer', 'loss-on', 'gradient-engine', 'block-rows', 'store-gradients', 'projection-dim', 'projection-seed', 'index', 'backend', 'metrics', 'scorer-option', 'heat-maps'] as const;

/** The `dda attribute` arguments of parsed options (paths made absolute), without --out and sharding. */
function attributeArgv(a: AttributeArgs): string[] {
  return commandArgv(a, ATTRIBUTE_FLAGS, new Set(['base', 'checkpoints', 'train', 'queries', 'labels', 'tokenizer', 'index']));
}

/**
 * A `--metrics` entry: `id`, or `id:option=value,...` (numbers where the value is one), as a
 * metrics registry spec.
 *
 * @throws DdaError for an option without `=`.
 */
function parseMetricSpec(text: string): string | { id: string; [option: string]: unknown } {
  const [id, rest] = [text.split(':')[0] as string, text.split(':').slice(1).join(':')];
  if (rest === '') return id;
  const options: Record<string, unknown> = {};
  for (const kv of rest.split(',')) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new DdaError(`--metrics ${text}: '${kv}' is not option=value`, 'e.g. --metrics recall-at-k:k=100');
    const v = kv.slice(eq + 1);
    options[kv.slice(0, eq)] = v !== '' && Number.isFinite(Number(v)) ? Number(v) : v;
  }
  return { id, ...options };
}

/** AttributeOptions of parsed `dda attribute` options, validated. */
function attributeOptionsFrom(a: AttributeArgs): Omit<AttributeOptions, 'log' | 'progress' | 'command'> {
  const positive = (name: string, v: number): number => {
    if (!Number.isInteger(v) || v <= 0) throw new DdaError(`--${name} must be a positive integer, got ${v}`);
    return v;
  };
  const off = (v: string): string | null => (v === 'none' ? null : v);
  if (a['projection-seed'] !== undefined && a['projection-dim'] === undefined) {
    throw new DdaError(`--projection-seed ${a['projection-seed']} has no effect without --projection-dim`, a.index ? 'drop it: with --index the run takes the indexes\' projection (their seed is in each index.json)' : 'give --projection-dim k too, or drop --projection-seed');
  }
  return {
    ...runInputsFrom(a), queries: a.queries,
    ...(a.labels ? { labels: a.labels } : {}),
    ...(a['query-fields'] ? { queryFields: parseFieldMap(a['query-fields'].map(String), '--query-fields') } : {}),
    method: { scorer: a.scorer, debias: off(a.debias), denoise: off(a.denoise ?? RECOMMENDED_DDA.denoise), denoiseGiven: a.denoise !== undefined, beta: a.beta ?? 1, betaGiven: a.beta !== undefined }, measurement: a.measurement,
    topK: positive('top-k', a['top-k']), recallK: positive('k', a.k), out: a.out,
    ...(a['heat-maps'] !== undefined ? { heatMaps: a['heat-maps'] } : {}),
    ...(a.metrics ? { metrics: a.metrics.map((m) => parseMetricSpec(String(m))) } : {}),
    ...(a['scorer-option'] ? { scorerOptions: { [a.scorer]: parseScorerOptions(a['scorer-option'].map(String)) } } : {}),
    ...(a['learning-rates'] ? { learningRates: a['learning-rates'] } : {}),
    gradientEngine: String(a['gradient-engine']), ...(a['block-rows'] !== undefined ? { blockRows: positive('block-rows', a['block-rows']) } : {}),
    ...(a['store-gradients'] ? { storeGradients: true } : {}),
    ...(a['projection-dim'] !== undefined ? { projection: { kind: 'rademacher' as const, dim: positive('projection-dim', a['projection-dim']), seed: a['projection-seed'] ?? 0 } } : {}),
    ...(a.index ? { indexes: a.index.map(String) } : {}),
    ...(a.backend ? { backends: a.backend.map(String) } : {}),
  };
}

/** Prints what an attribution found: the top training samples of the first queries and the metrics. */
function printAttribution(io: CliIo, r: AttributeResult, start: number): void {
  io.out(`Attribution (${r.method.description}${r.measurement !== null ? `; test measurement ${r.measurement}` : ''}): ${r.task.train.samples.length} training samples × ${r.task.queries.length} queries, ${((Date.now() - start) / 1000).toFixed(0)} s; higher score = more responsible`);
  for (const q of r.tops.slice(0, 10)) {
    io.out(`  ${q.queryId}${q.group ? ` (${q.group})` : ''}: ${q.top.slice(0, 3).map((t) => `${t.trainId} ${t.score.toPrecision(3)}${t.trueSource ? ' ✓' : ''}`).join(', ')}`);
  }
  if (r.tops.length > 10) io.out(`  ... ${r.tops.length - 10} more queries in ${r.files.find((f) => f.endsWith(ATTRIBUTE_FILES.topkCsv))}`);
  const average = r.metrics.filter((x) => x.source === 'average');
  if (average.length > 0) io.out('  ROC-AUC of each labelled group\'s mean scores over its queries (per-query mean in brackets); * = the method of this run');
  for (const m of average) io.out(`${m.chosen ? '* ' : '  '}${m.variant.padEnd(8)} ROC-AUC ${m.auc.toFixed(2)} % (${m.aucPerQueryMean.toFixed(2)} %), recall@${m.k} ${m.recallAtK.toFixed(3)}${Object.entries(m.metrics ?? {}).map(([id, v]) => `, ${id} ${v.toPrecision(4)}`).join('')}  (${m.description})`);
  io.out(`outputs: ${r.files.join(', ')}`);
}

function benchOptions<T>(y: import('yargs').Argv<T>) {
  return y
    .option('config', { type: 'string', describe: 'benchmark configuration (.json or .yaml); see benchmarks/configs/' })
    .option('out', { type: 'string', default: 'dda-bench', describe: 'output folder: artifacts/ (reused across runs), CSVs, summary and HTML report' })
    .option('families', { type: 'string', array: true, describe: 'model families (presets), overriding the config' })
    .option('scorers', { type: 'string', array: true, describe: 'scorer ids, overriding the config' })
    .option('seeds', { type: 'number', array: true, describe: 'seeds, overriding the config' })
    .option('metrics', { type: 'string', array: true, describe: 'metrics (auc, recall, lds, leave-out), overriding the config; lds and leave-out retrain the model' })
    .option('name', { type: 'string', describe: 'name of the output files, overriding the config' })
    .option('projection-dim', { type: 'number', describe: 'score every gradient scorer on gradients projected to this many dimensions (the gradient index\'s seeded projection), overriding the config\'s projection.dim' })
    .option('store-gradients', { type: 'boolean', describe: 'keep every training gradient in <out>/artifacts/gradients/ (float32, 4 bytes per trainable parameter per sample and checkpoint), overriding the config\'s storeGradients: the scorers that fit in passes (datainf, trackstar, grad-dot-pc, the influence functions) then read them instead of computing them once per pass' })
    .option('format', { type: 'string', array: true, choices: ['latex'], describe: 'extra table formats besides CSV, JSON and HTML: latex (booktabs <name>-summary.tex; an ablation also <name>-ablation-grid.tex)' })
    .option('jobs', { type: 'number', default: 1, describe: 'family × seed cells computed by this many worker processes at once (each claims the next cell; onnxruntime at ⌊cores / jobs⌋ threads each), then collected by this process: the same outputs as --jobs 1' })
    .option('claim', { type: 'string', hidden: true, describe: 'internal: the run id of a --jobs worker (compute only the cells this process claims)' });
}

async function runBenchCommand(
  kind: 'bench' | 'ablation',
  a: { config?: string | undefined; out: string; families?: (string | number)[] | undefined; scorers?: (string | number)[] | undefined; scorer?: string | undefined; seeds?: number[] | undefined; name?: string | undefined; format?: string[] | undefined; metrics?: (string | number)[] | undefined; 'projection-dim'?: number | undefined; 'store-gradients'?: boolean | undefined; jobs?: number | undefined; claim?: string | undefined },
  argv: readonly string[],
  io: CliIo,
  reporter: Reporter,
): Promise<void> {
  checkJobs(a.jobs ?? 1); // before anything starts
  // The ablation runs over one scorer (ablation.scorer); --scorers sets the leaderboard's, which it does not run.
  if (kind === 'ablation' && a.scorers !== undefined) {
    throw new DdaError(`dda ablate: --scorers ${a.scorers.join(' ')} sets the leaderboard's scorers, which the ablation does not run; it runs over one scorer`, `pass --scorer ${String(a.scorers[0] ?? '<id>')} (or set ablation.scorer in the configuration)`);
  }
  const config = benchConfigFrom({
    config: a.config, seeds: a.seeds, name: a.name,
    families: a.families?.map(String), scorers: a.scorers?.map(String), scorer: a.scorer, metrics: a.metrics?.map(String), projectionDim: a['projection-dim'], storeGradients: a['store-gradients'],
  });
  const start = Date.now();
  const log = reporter.log;
  const cells = config.families.length * config.seeds.length;
  log(`${kind}: ${config.families.join(', ')} × seeds ${config.seeds.join(', ')} (${cells} cells) × ${kind === 'bench' ? `scorers ${config.scorers.join(', ')}` : `scorer ${config.ablation.scorer}`} → ${a.out}`);
  if (a.claim !== undefined) {
    // A worker of --jobs: its claimed cells, saved for the collecting run; no outputs of its own.
    const part = kind === 'bench' ? await runBench(config, a.out, log, reporter.progress, { claim: a.claim }) : await runAblation(config, a.out, log, reporter.progress, { claim: a.claim });
    reporter.close();
    const failed = part.skipped.filter((x) => x.failed);
    if (failed.length > 0) throw new DdaError(`${failed.length} cell(s) failed in this worker (${failed.map((x) => `${x.family} seed ${x.seed}: ${x.reason}`).join('; ')})`);
    return;
  }
  const collect = (a.jobs ?? 1) !== 1 ? { collect: await runBenchWorkers(argv, a.jobs ?? 1, cells, a.out, kind, log) } : {};
  const result = kind === 'bench' ? await runBench(config, a.out, log, reporter.progress, collect) : await runAblation(config, a.out, log, reporter.progress, collect);
  if (collect.collect !== undefined) removeCellResults(a.out, kind, collect.collect);
  reporter.close();
  const files = await writeBenchOutputs(result, a.out, `dda ${argv.join(' ')}`, (a.format ?? []) as BenchFormat[]);
  io.out(`${kind === 'bench' ? 'Leaderboard' : 'Ablation'} (${config.name}): mean over ${config.families.length} famil${config.families.length === 1 ? 'y' : 'ies'} × ${config.seeds.length} seed(s), ${((Date.now() - start) / 1000).toFixed(0)} s`);
  io.out(summaryMarkdown(result));
  io.out(`outputs: ${files.join(', ')}`);
  const failed = result.skipped.filter((x) => x.failed);
  if (failed.length > 0) {
    throw new DdaError(
      `${failed.length} of ${cells} cells failed (${failed.map((x) => `${x.family} seed ${x.seed}: ${x.reason}`).join('; ')}); the results of the other cells are written above`,
      'fix the cause and run the same command again: finished cells are reused',
    );
  }
}
