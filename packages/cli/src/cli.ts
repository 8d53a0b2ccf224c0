import { join } from 'node:path';
import yargs from 'yargs';
import { DdaError, PLUGINS_ENV, backends, debiasers, denoisers, parsePluginList, scorers } from '@dda/core';
import {
  DEFAULT_RUN_OPTIONS, formatProgressBar, formatTable, loadBenchConfig, loadUserPlugins, parseBenchConfig, runAblation, runBench, runDda,
  summaryMarkdown, writeBenchOutputs, writeFileAtomic, writeResultsCsv, type BenchConfig, type DdaRunResult, type ProgressSink,
} from '@dda/harness';

/** Streams the CLI writes to (replaceable in tests). */
export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Redraws a progress line in place (terminals only); without it progress is logged every 10%. */
  status?: (line: string) => void;
}
const defaultIo: CliIo = {
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
  ...(process.stderr.isTTY ? { status: (l: string) => process.stderr.write(`\r\u001b[2K${l}`) } : {}),
};

/** Progress bars with ETA: redrawn in place on a terminal, else one log line per 10% step. */
function progressSink(io: CliIo): ProgressSink {
  const lastDecile = new Map<string, number>();
  return (p) => {
    const line = formatProgressBar(p);
    if (io.status) {
      io.status(p.done >= p.total ? '' : line);
      if (p.done >= p.total && p.total > 1) io.err(line);
      return;
    }
    const decile = Math.floor((10 * p.done) / Math.max(p.total, 1));
    if (decile !== lastDecile.get(p.label)) {
      lastDecile.set(p.label, decile);
      if (p.total > 1) io.err(line);
    }
  };
}

/** The benchmark configuration of `bench` / `ablate`: the file, then command-line overrides. */
function benchConfigFrom(a: { config?: string | undefined; families?: string[] | undefined; scorers?: string[] | undefined; seeds?: number[] | undefined; name?: string | undefined }): BenchConfig {
  const base = a.config ? loadBenchConfig(a.config) : parseBenchConfig({}, 'defaults');
  const overrides = { ...(a.families ? { families: a.families } : {}), ...(a.scorers ? { scorers: a.scorers } : {}), ...(a.seeds ? { seeds: a.seeds } : {}), ...(a.name ? { name: a.name } : {}) };
  return Object.keys(overrides).length > 0 ? parseBenchConfig({ ...base, ...overrides }, `${a.config ?? 'defaults'} with command-line flags`) : base;
}

function summaryJson(r: DdaRunResult): string {
  return JSON.stringify({
    options: r.options, backend: r.backend, dataset: r.dataset, finetuneLosses: r.finetuneLosses, scoreScale: r.scoreScale, seconds: r.seconds, reused: r.reused,
    errors: r.errors, rows: r.rows,
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
  const parser = yargs([...argv])
    .scriptName('dda')
    .usage('$0 <command> [options]\n\nTraining data attribution for LLMs with DDA (Debias and Denoise Attribution).\nScores: higher = training sample more responsible for the test output.')
    .option('verbose', { type: 'boolean', default: false, describe: 'print stacks of errors and more progress' })
    .option('plugin', {
      type: 'string', array: true, global: true, requiresArg: true,
      describe: `load a plugin (npm package name, or a path to its file or folder relative to the current directory) that registers methods; repeatable; also from ${PLUGINS_ENV} (comma-separated)`,
    })
    // Before every command: the built-in plugins, then DDA_PLUGINS, then --plugin (a config's plugins: load with it).
    .middleware(async (a) => {
      await loadUserPlugins(parsePluginList(process.env[PLUGINS_ENV]), { origin: PLUGINS_ENV });
      await loadUserPlugins((a.plugin ?? []).map(String), { origin: '--plugin' });
    })
    .command(
      'demo',
      'End-to-end DDA on a built-in synthetic hallucination-tracing task: pretrain a tiny LLaMA-style model, LoRA fine-tune it, collect its hallucinations, attribute them, and report AUC / recall@k of plain influence, debias, denoise and DDA',
      (y) => y
        .option('seed', { type: 'number', default: d.seed, describe: 'seed of data, initialisation and shuffling' })
        .option('out', { type: 'string', default: d.outDir, describe: 'output folder (checkpoints, gradients, results.csv, summary.json); finished steps are reused' })
        .option('preset', { type: 'string', default: d.preset, describe: 'model: a preset (llama2-tiny, qwen2-tiny, mistral-tiny) or a Hugging Face model folder (config.json, safetensors, tokenizer.json)' })
        .option('n-train', { type: 'number', default: d.nTrain, describe: 'training samples' })
        .option('n-held-out', { type: 'number', default: d.nHeldOut, describe: 'held-out documents to generate from' })
        .option('n-pretrain', { type: 'number', default: d.nPretrain, describe: 'pretraining texts' })
        .option('pretrain-epochs', { type: 'number', default: d.pretrainEpochs })
        .option('pretrain-lr', { type: 'number', default: d.pretrainLearningRate })
        .option('finetune-epochs', { type: 'number', default: d.finetuneEpochs, describe: 'epochs = checkpoints averaged by the denoiser' })
        .option('finetune-lr', { type: 'number', default: d.finetuneLearningRate })
        .option('batch-size', { type: 'number', default: d.batchSize })
        .option('lora-rank', { type: 'number', default: d.loraRank })
        .option('gradient-engine', { type: 'string', choices: ['tfjs', 'onnxruntime'], default: 'tfjs', describe: 'engine of the per-example gradients: tfjs, or the decoder as an ONNX graph on onnxruntime (faster)' })
        .option('finetune', { type: 'string', choices: ['lora', 'full'], default: 'lora', describe: 'fine-tune LoRA adapters, or every parameter (gradients then over every parameter)' })
        .option('scorer', { type: 'string', default: d.scorer, describe: 'attribution method id' })
        .option('beta', { type: 'number', default: d.beta, describe: 'β of the debias term' })
        .option('debias', { type: 'string', default: d.debiaser, describe: 'debiaser id for the debias and dda rows (raw = the paper; see `dda methods`)' })
        .option('denoise', { type: 'string', default: d.denoiser, describe: 'denoiser id for the denoise and dda rows (mean = the paper)' })
        .option('k', { type: 'number', default: d.k, describe: 'k of recall@k' })
        .option('backend', { type: 'string', array: true, describe: 'compute backends to try in order (default: by priority)' }),
      async (a) => {
        const positive = (name: string, v: number, integer = true): number => {
          if (!Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) throw new DdaError(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got ${v}`);
          return v;
        };
        if (!Number.isInteger(a.seed)) throw new DdaError(`--seed must be an integer, got ${a.seed}`);
        if (!Number.isFinite(a.beta)) throw new DdaError(`--beta must be a number, got ${a.beta}`);
        const start = Date.now();
        const log = (l: string): void => io.err(`[${((Date.now() - start) / 1000).toFixed(1).padStart(6)}s] ${l}`);
        const result = await runDda({
          seed: a.seed, outDir: a.out, preset: a.preset,
          nTrain: positive('n-train', a['n-train']), nHeldOut: positive('n-held-out', a['n-held-out']), nPretrain: positive('n-pretrain', a['n-pretrain']),
          pretrainEpochs: positive('pretrain-epochs', a['pretrain-epochs']), pretrainLearningRate: positive('pretrain-lr', a['pretrain-lr'], false),
          finetuneEpochs: positive('finetune-epochs', a['finetune-epochs']), finetuneLearningRate: positive('finetune-lr', a['finetune-lr'], false),
          batchSize: positive('batch-size', a['batch-size']), loraRank: positive('lora-rank', a['lora-rank']), finetune: a.finetune as 'lora' | 'full', gradientEngine: a['gradient-engine'] as 'tfjs' | 'onnxruntime',
          scorer: a.scorer, beta: a.beta, debiaser: a.debias, denoiser: a.denoise, k: positive('k', a.k),
          ...(a.backend ? { backends: a.backend } : {}),
        }, log, progressSink(io));
        await writeResultsCsv(join(a.out, 'results.csv'), result.rows);
        writeFileAtomic(join(a.out, 'summary.json'), summaryJson(result));
        io.out(`DDA demo (seed ${a.seed}, ${result.backend}, ${result.errors.length} test errors, ${result.seconds.total?.toFixed(0)} s)`);
        io.out(`ROC-AUC in %, recall@${a.k} as a fraction; scores: higher = more responsible`);
        io.out(formatTable(result));
        io.out(`results: ${join(a.out, 'results.csv')}, details: ${join(a.out, 'summary.json')}`);
      },
    )
    .command(
      'bench',
      'Leaderboard: every scorer (plain) and every DDA variant over every gradient-based scorer, for each model family × seed; CSV, summary with 95% bootstrap intervals, paired tests and an HTML report. Finished steps are reused, so an interrupted run resumes',
      (y) => benchOptions(y),
      async (a) => runBenchCommand('bench', a, argv, io),
    )
    .command(
      'ablate',
      'DDA ablation over one scorer: full, no-debias, no-denoise, neither; β sweep; number of checkpoints N; debiaser × denoiser grid',
      (y) => benchOptions(y),
      async (a) => runBenchCommand('ablation', a, argv, io),
    )
    .command('methods', 'List the registered scorers, debiasers, denoisers and backends, with the plugin each came from', () => {}, async () => {
      for (const [kind, reg] of [['scorers', scorers], ['debiasers', debiasers], ['denoisers', denoisers], ['backends', backends]] as const) {
        io.out(`${kind}:`);
        for (const e of reg.list()) io.out(`  ${e.id.padEnd(16)} ${`[${e.plugin ?? 'registered directly'}]`.padEnd(28)} ${e.description}`);
      }
    })
    .demandCommand(1, 'name a command: demo, bench, ablate, methods (see --help)')
    .strictCommands()
    .strictOptions()
    .recommendCommands()
    .exitProcess(false)
    .showHelpOnFail(false)
    .fail((msg, err) => {
      if (err && err.name !== 'YError') throw err;
      throw new UsageError(msg ?? err?.message ?? 'bad usage');
    })
    .help()
    .version(false);
  try {
    await parser.parseAsync();
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`dda: ${e.message}`);
      return 2;
    }
    io.err(`dda: ${e instanceof Error ? e.message.split('\n').join('\n  ') : String(e)}`);
    if (verbose && e instanceof Error && e.stack) io.err(e.stack);
    else if (!(e instanceof DdaError)) io.err('(run with --verbose for the stack)');
    code = 1;
  }
  return code;
}

class UsageError extends Error {}

function benchOptions<T>(y: import('yargs').Argv<T>) {
  return y
    .option('config', { type: 'string', describe: 'benchmark configuration (.json or .yaml); see benchmarks/configs/' })
    .option('out', { type: 'string', default: 'dda-bench', describe: 'output folder: artifacts/ (reused across runs), CSVs, summary and HTML report' })
    .option('families', { type: 'string', array: true, describe: 'model families (presets), overriding the config' })
    .option('scorers', { type: 'string', array: true, describe: 'scorer ids, overriding the config' })
    .option('seeds', { type: 'number', array: true, describe: 'seeds, overriding the config' })
    .option('name', { type: 'string', describe: 'name of the output files, overriding the config' });
}

async function runBenchCommand(
  kind: 'bench' | 'ablation',
  a: { config?: string | undefined; out: string; families?: (string | number)[] | undefined; scorers?: (string | number)[] | undefined; seeds?: number[] | undefined; name?: string | undefined },
  argv: readonly string[],
  io: CliIo,
): Promise<void> {
  const config = benchConfigFrom({
    config: a.config, seeds: a.seeds, name: a.name,
    families: a.families?.map(String), scorers: a.scorers?.map(String),
  });
  const start = Date.now();
  const log = (l: string): void => io.err(`[${((Date.now() - start) / 1000).toFixed(1).padStart(7)}s] ${l}`);
  const cells = config.families.length * config.seeds.length;
  log(`${kind}: ${config.families.join(', ')} × seeds ${config.seeds.join(', ')} (${cells} cells) × ${kind === 'bench' ? `scorers ${config.scorers.join(', ')}` : `scorer ${config.ablation.scorer}`} → ${a.out}`);
  const result = kind === 'bench' ? await runBench(config, a.out, log, progressSink(io)) : await runAblation(config, a.out, log, progressSink(io));
  const files = await writeBenchOutputs(result, a.out, `dda ${argv.join(' ')}`);
  io.out(`${kind === 'bench' ? 'Leaderboard' : 'Ablation'} (${config.name}): mean over ${config.families.length} famil${config.families.length === 1 ? 'y' : 'ies'} × ${config.seeds.length} seed(s), ${((Date.now() - start) / 1000).toFixed(0)} s`);
  io.out(summaryMarkdown(result));
  io.out(`outputs: ${files.join(', ')}`);
}
