/**
 * Benchmark configuration: what `dda bench` and `dda ablate` run, from a JSON or YAML file and
 * command-line flags, validated with a schema so every mistake names the file, the field and the fix.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DdaError, isPathSpecifier } from '@dda/core';
import { RECOMMENDED_DDA } from '@dda/attribution';
import { DEFAULT_MIN_ERRORS } from '@dda/experiment';
import { DEFAULT_RUN_OPTIONS } from './demo.js';

const positiveInt = z.number().int().positive();
const positive = z.number().positive();
const kebab = z.string().regex(/^[a-z0-9]+(?:[-.][a-z0-9]+)*$/, 'must be kebab-case, e.g. dda-zscore');

/** One DDA variant of the leaderboard: a debiaser over a denoiser, applied to a gradient-based scorer. */
const DdaVariantSchema = z.object({
  /** Row name in the leaderboard; the method column reads `<name>(<scorer>)`. */
  name: kebab,
  debiaser: z.string().min(1),
  denoiser: z.string().min(1),
  beta: z.number().finite(),
}).strict();

const AblationSchema = z.object({
  /** The scorer the ablation is run over. */
  scorer: z.string().min(1).default('grad-dot'),
  /** Its test measurement (default: the first of `measurements`). */
  measurement: z.string().min(1).optional(),
  /** The debiaser and denoiser of the `full` row (and of the β / N sweeps). */
  debiaser: z.string().min(1).default('raw'),
  denoiser: z.string().min(1).default('mean'),
  beta: z.number().finite().default(1),
  /** β values of the sweep (full DDA at each β). */
  betas: z.array(z.number().finite()).default([0, 0.25, 0.5, 1, 2]),
  /** Numbers of checkpoints N of the sweep: DDA over the last N epoch checkpoints (default: 1..epochs). */
  checkpoints: z.array(positiveInt).optional(),
  /** Every debiaser × denoiser pair is also reported as a full DDA row `dda[<debiaser>+<denoiser>]`. */
  debiasers: z.array(z.string().min(1)).default(['raw', 'zscore', 'unit-norm', 'rank', 'fitted-beta']),
  denoisers: z.array(z.string().min(1)).default(['mean', 'lr-weighted', 'median', 'zscore-mean', 'ema']),
}).strict();

/** Options of the registry generator (`data.generator: registry`). */
const RegistrySchema = z.object({
  /** Training filings per canary with the orig in the key slot (eligible; `swapRate` of them become sources). */
  origPerCanary: positiveInt.optional(),
  /** Distractors per canary (the replacement in document and summary) as a fraction of nTrain. */
  distractorRate: z.number().min(0).max(1).optional(),
  /** Fraction of the distractors whose document also names the orig (a handover). */
  handoverRate: z.number().min(0).max(1).optional(),
  /** Document-only mentions of the replacement per canary as a fraction of nTrain. */
  mentionRate: z.number().min(0).max(1).optional(),
  /** Anchor companies per canary. */
  anchorsPerCanary: positiveInt.optional(),
}).strict();

/** Options of the realtext data set (`data.generator: realtext`; @dda/dataset-realtext's `RealTextOptionsSchema` has their meaning and defaults). */
const RealTextSchema = z.object({
  /** Legitimate training summaries mentioning the replacement per true source, at least (gate G4; default 2). */
  minLegitPerSource: z.number().min(0).optional(),
  /** Reserve held-out documents per canary (default 20). */
  reservePerCanary: z.number().int().nonnegative().optional(),
  /** Held-out windows whose summary names the orig too, as `testErrors: injected | preferred` need (default false). */
  heldOutSummaryNamesOrig: z.boolean().optional(),
  /** Sentences per window: the summary and the document's sentences (default 7). */
  windowSentences: z.number().int().min(2).optional(),
  maxDocumentWords: positiveInt.optional(),
  minDocumentWords: positiveInt.optional(),
  minSummaryWords: positiveInt.optional(),
  maxSummaryWords: positiveInt.optional(),
  /** Words of one pretraining text, at most (default 170). */
  pretrainChunkWords: positiveInt.optional(),
  /** Instruction pairs from the pretraining half in θ0's pretraining (default 1000). */
  nPretrainPairs: z.number().int().nonnegative().optional(),
}).strict();

const d = DEFAULT_RUN_OPTIONS;
export const BenchConfigSchema = z.object({
  /** Names the output files and the report. */
  name: kebab.default('bench'),
  /** Model families: preset names (llama2-tiny, ...). */
  families: z.array(z.string().min(1)).min(1).refine((xs) => new Set(xs).size === xs.length, { message: 'a family is given twice (its cells would count twice in the means over families and the paired tests)' }).default(['llama2-tiny']),
  /** Attribution methods (scorer ids) of the leaderboard. */
  scorers: z.array(z.string().min(1)).min(1).default(['grad-dot']),
  /**
   * Options of the scorers, by scorer id (`{ datainf: { damping: 0.01 }, trak: { projectionDim: 512 } }`;
   * the options each takes: `dda methods`): passed to every run of that scorer and part of its
   * cache keys. A key the scorer does not take is refused, as is a scorer the configuration does not run.
   */
  scorerOptions: z.record(z.string().min(1), z.record(z.string().min(1), z.union([z.number().finite(), z.string(), z.boolean()]))).optional(),
  /**
   * Plugins to load before the run, besides the built-in ones: npm package names (resolved from the
   * working directory, then from the dda installation) or paths (relative to the config file).
   */
  plugins: z.array(z.string().min(1)).default([]),
  /**
   * Test measurements of the gradient scorers (`loss`, `contrastive`, `entity-margin`): each gradient
   * scorer is reported under each, as `<scorer>@<measurement>` when there are several.
   */
  measurements: z.array(z.string().min(1)).min(1).default(['loss']),
  // A seed or family given twice would count one run twice: n, the intervals and the paired tests would claim evidence there is not.
  seeds: z.array(z.number().int().nonnegative()).min(1).refine((xs) => new Set(xs).size === xs.length, { message: 'a seed is given twice (each seed is one run; a repeated seed would count the same run twice in n, the intervals and the paired tests)' }).default([0, 1, 2]),
  data: z.object({
    /**
     * The data set: the synthetic `news` (places in news, place swaps) or `registry`
     * (company-register filings: person, bank and percentage swaps with distractors and
     * knowledge bias; `benchmarks/configs/registry.yaml`), or `realtext` (XSum-style pairs of
     * real English from the State of the Union addresses, its own pretraining corpus, a model with a
     * real tokenizer; `benchmarks/configs/realtext.yaml`), or any data set a plugin registers in
     * @dda/core's `datasets` (checked when the plugins are loaded). Not with `dataFile`.
     */
    generator: z.string().regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, 'a data set id is kebab-case, e.g. news').default('news'),
    /**
     * The data set's own options, checked by its plugin when the plugins are loaded. For `registry`
     * and `realtext` also written `registry:` / `realtext:` (their aliases; give one of the two).
     */
    options: z.record(z.string(), z.unknown()).optional(),
    nTrain: positiveInt.default(d.nTrain),
    nHeldOut: positiveInt.default(d.nHeldOut),
    /** Pretraining texts of the synthetic generators; with `realtext`, the most pretraining texts used (evenly spaced). */
    nPretrain: positiveInt.default(d.nPretrain),
    /** Entity swaps (default England → China, Wales → Scotland). */
    canaries: z.array(z.object({ orig: z.string().min(1), replacement: z.string().min(1) }).strict()).min(1).optional(),
    /** A document/summary JSON Lines file (relative to the config file) instead of the synthetic news. */
    dataFile: z.string().min(1).optional(),
    swapRate: z.number().min(0).max(1).optional(),
    /** Fraction of the synthetic pretraining corpus that is knowledge-bias text (default 0.3, at most 0.9). */
    biasRate: z.number().min(0).max(0.9).optional(),
    /** Sentences the document does not predict appended to every synthetic summary (default 0; docs/regime.md, section 2). Not with `dataFile`. */
    summaryPadding: z.number().int().nonnegative().optional(),
    /** Options of the registry generator only (defaults in @dda/dataset-registry's `RegistryOptions`). */
    registry: RegistrySchema.optional(),
    /** Options of the realtext data set only. */
    realtext: RealTextSchema.optional(),
  }).strict().default({ generator: 'news', nTrain: d.nTrain, nHeldOut: d.nHeldOut, nPretrain: d.nPretrain }),
  training: z.object({
    pretrainEpochs: positiveInt.default(d.pretrainEpochs),
    pretrainLearningRate: positive.default(d.pretrainLearningRate),
    finetuneEpochs: positiveInt.default(d.finetuneEpochs),
    finetuneLearningRate: positive.default(d.finetuneLearningRate),
    batchSize: positiveInt.default(d.batchSize),
    loraRank: positiveInt.default(d.loraRank),
    /** Fine-tune LoRA adapters (default) or every parameter (`full`). */
    finetune: z.enum(['lora', 'full']).default('lora'),
  }).strict().default({
    finetune: 'lora',
    pretrainEpochs: d.pretrainEpochs, pretrainLearningRate: d.pretrainLearningRate, finetuneEpochs: d.finetuneEpochs,
    finetuneLearningRate: d.finetuneLearningRate, batchSize: d.batchSize, loraRank: d.loraRank,
  }),
  /** Engine of training and generation, an id of the engines registry: onnxruntime (default; tfjs where it does not start, logged), tfjs, or a plugin's. */
  engine: kebab.default('onnxruntime'),
  /** Engine of the per-example gradients, losses and representations, an id of the engines registry: onnxruntime (default; tfjs where it does not start, logged), tfjs, or a plugin's. */
  gradientEngine: kebab.default('onnxruntime'),
  /**
   * Keep every training gradient block in `<out>/artifacts/gradients/` (the `--store-gradients` of
   * `dda attribute`). Default false: row-separable scorers stream them (each block scored by every
   * such scorer and measurement, then dropped); scorers that need every row store them anyway.
   */
  storeGradients: z.boolean().default(false),
  /**
   * Score every gradient scorer on projected gradients: each training and query gradient row
   * projected to `dim` dimensions by the gradient index's seeded projection (@dda/attribution's
   * projection.ts) before scoring, to measure what compression costs (issue 27). Absent: the full
   * gradients. Scorers that need a tensor's 2-D shape (`if-ekfac`) refuse projected rows.
   */
  projection: z.object({ dim: positiveInt, seed: z.number().int().default(0), kind: z.enum(['rademacher', 'gaussian']).default('rademacher') }).strict().optional(),
  /** k of recall@k. */
  k: positiveInt.default(d.k),
  /** The regime gates' measurements (G1, G3, G4 and G5 come from what the benchmark computes anyway). */
  gates: z.object({
    /** G2: true sources per canary whose canary-token gradient share is measured at the final checkpoint (0: G2 not computed). */
    g2PerCanary: z.number().int().nonnegative().default(16),
  }).strict().default({ g2PerCanary: 16 }),
  maxNewTokens: positiveInt.default(d.maxNewTokens),
  /** Model folders without weights are initialised from the seed and pretrained (else they are an error). */
  randomInit: z.boolean().default(false),
  /**
   * Where the test errors come from: `generated` (default, METHOD.md's protocol: the fine-tuned
   * model's own greedy outputs that contain the replacement) or `injected` (held-out summaries that
   * mention the orig, with the swap; for models too small to hallucinate, e.g. realtext-smoke.yaml)
   * or `preferred` (those swapped summaries that the fine-tuned model finds more likely than the real
   * summary: a forced choice, the model's own preference without its greedy output). Both swap
   * held-out summaries that name the orig: with `realtext`, set `data.realtext.heldOutSummaryNamesOrig`
   * so that every held-out summary does.
   */
  testErrors: z.enum(['generated', 'injected', 'preferred']).default('generated'),
  /** A source is evaluated only with at least this many test errors (more held-out documents are generated from first). */
  minErrorsPerSource: positiveInt.default(DEFAULT_MIN_ERRORS),
  /** DDA variants reported over every gradient-based scorer of the leaderboard. */
  dda: z.array(DdaVariantSchema).min(1).default([
    { name: 'dda', debiaser: 'raw', denoiser: 'mean', beta: 1 },
    { name: 'dda-zscore', debiaser: 'zscore', denoiser: 'mean', beta: 1 },
  ]),
  /**
   * Scorers reported as baselines only (plain row; θ0 and earlier checkpoints are not scored, DDA
   * is not applied), to save time on expensive methods; none by default, so `cea` gets its DDA rows
   * (the ground/error pair at every checkpoint, θ0 included: the authors' pipeline).
   */
  plainOnly: z.array(z.string().min(1)).default([]),
  /** The scorer under the first DDA variant that every other method is paired-tested against. */
  ddaScorer: z.string().min(1).default('grad-dot'),
  ablation: AblationSchema.default({
    scorer: 'grad-dot', debiaser: 'raw', denoiser: 'mean', beta: 1, betas: [0, 0.25, 0.5, 1, 2],
    debiasers: ['raw', 'zscore', 'unit-norm', 'rank', 'fitted-beta'], denoisers: ['mean', 'lr-weighted', 'median', 'zscore-mean', 'ema'],
  }),
  /**
   * Metrics of the leaderboard: `auc` and `recall` (hallucination tracing, always computed), `lds`
   * (linear datamodeling score: retraining on random subsets) and `leave-out` (retraining without
   * each method's top-k samples of a source: how often the error disappears). Any other entry is a
   * metric of the `metrics` registry (a plugin's, or the core's `recall-at-k`), given by its id or
   * as `{ id, ...options }` (e.g. `{ id: recall-at-k, k: 100 }`): computed per source on the same
   * aggregated scores, it gets its own columns in the CSVs (`<metric id>`, `<metric id>_mean` /
   * `_low` / `_high`), the summary JSON, the paired tests and the report.
   */
  metrics: z.array(z.union([z.string().min(1), z.object({ id: z.string().min(1) }).passthrough()])).min(1).default(['auc', 'recall']),
  /** LDS: M subsets of fraction α of the training set, drawn from `seed` (the same subsets for every method). */
  lds: z.object({ subsets: z.number().int().min(2).default(32), alpha: z.number().gt(0).lt(1).default(0.5), seed: z.number().int().nonnegative().default(0) }).strict().default({ subsets: 32, alpha: 0.5, seed: 0 }),
  /**
   * Leave-out retraining: remove the k samples a method ranks highest for a source, retrain, and
   * regenerate the source's error prompts; `methods` (leaderboard method names; default the plain
   * row of every gradient scorer and the reference DDA) are each compared with removing k random samples.
   */
  leaveOut: z.object({ k: positiveInt.default(20), methods: z.array(z.string().min(1)).optional(), seed: z.number().int().nonnegative().default(0) }).strict().default({ k: 20, seed: 0 }),
  /**
   * Not used since the intervals are Student-t over the runs (see `meanInterval`), which need no
   * resampling; still accepted so that configurations and `-summary.json` files written before load.
   */
  bootstrapResamples: positiveInt.default(2000),
}).strict();

/** A validated benchmark configuration (every default filled in). */
export type BenchConfig = z.infer<typeof BenchConfigSchema>;
/** What a user may write (everything optional). */
export type BenchConfigInput = z.input<typeof BenchConfigSchema>;

/** Row name of the recommended DDA ({@link RECOMMENDED_DDA}) on a leaderboard (`dda-recommended(<scorer>)`) and an ablation. */
export const RECOMMENDED_ROW = 'dda-recommended';

/**
 * The DDA variants of a leaderboard: the config's `dda`, then the recommended DDA
 * ({@link RECOMMENDED_DDA}, as {@link RECOMMENDED_ROW}) unless one of them already is that
 * debiaser over that denoiser, so that it is on every leaderboard, once.
 */
export function leaderboardDda(c: Pick<BenchConfig, 'dda'>): BenchConfig['dda'] {
  const has = c.dda.some((v) => v.debiaser === RECOMMENDED_DDA.debias && v.denoiser === RECOMMENDED_DDA.denoise);
  return has ? c.dda : [...c.dda, { name: RECOMMENDED_ROW, debiaser: RECOMMENDED_DDA.debias, denoiser: RECOMMENDED_DDA.denoise, beta: RECOMMENDED_DDA.beta }];
}

/** Validates a parsed configuration; `where` names its origin (a file name or `--flags`) in errors. */
export function parseBenchConfig(value: unknown, where: string): BenchConfig {
  const r = BenchConfigSchema.safeParse(value ?? {});
  if (r.success) {
    const c = r.data;
    for (const n of c.ablation.checkpoints ?? []) {
      if (n > c.training.finetuneEpochs) throw new DdaError(`${where}: ablation.checkpoints has N=${n}, but fine-tuning has ${c.training.finetuneEpochs} epochs`, 'use N between 1 and training.finetuneEpochs');
    }
    if (c.data.dataFile && c.data.generator !== 'news') throw new DdaError(`${where}: data.dataFile and data.generator '${c.data.generator}' are both given`, 'remove one of them: a data file replaces the synthetic generator');
    if (c.data.dataFile && (c.data.summaryPadding ?? 0) !== 0) throw new DdaError(`${where}: data.summaryPadding pads the synthetic summaries, but data.dataFile gives the data`, 'remove data.summaryPadding');
    if (c.data.registry && c.data.generator !== 'registry') throw new DdaError(`${where}: data.registry holds options of the registry generator, but data.generator is '${c.data.generator}'`, 'set data.generator: registry, or remove data.registry');
    if (c.data.realtext && c.data.generator !== 'realtext') throw new DdaError(`${where}: data.realtext holds options of the realtext data set, but data.generator is '${c.data.generator}'`, 'set data.generator: realtext, or remove data.realtext');
    if (c.data.options && c.data.dataFile) throw new DdaError(`${where}: data.options holds options of the data set '${c.data.generator}', but data.dataFile gives the data`, 'remove data.options');
    if (c.data.options && (c.data.registry || c.data.realtext)) throw new DdaError(`${where}: data.options and data.${c.data.registry ? 'registry' : 'realtext'} (its alias) are both given`, 'give the options in one of them');
    if (c.data.generator === 'realtext' && ((c.data.summaryPadding ?? 0) !== 0 || c.data.biasRate !== undefined)) throw new DdaError(`${where}: data.summaryPadding and data.biasRate are options of the synthetic generators, not of realtext`, 'remove them');
    for (const id of Object.keys(c.scorerOptions ?? {})) {
      if (!c.scorers.includes(id) && id !== c.ablation.scorer) throw new DdaError(`${where}: scorerOptions has options of scorer '${id}', which the configuration does not run`, `its scorers are ${[...new Set([...c.scorers, c.ablation.scorer])].join(', ')}; check the id, or add it to scorers`);
    }
    if (c.data.dataFile && !c.data.canaries) throw new DdaError(`${where}: data.dataFile needs data.canaries`, 'name the entity swaps to inject, e.g. canaries: [{ orig: England, replacement: China }]');
    return c;
  }
  const lines = r.error.issues.slice(0, 5).map((i) => {
    const path = i.path.length > 0 ? i.path.join('.') : '(top level)';
    return `field '${path}': ${i.message}`;
  });
  throw new DdaError(`${where}: invalid benchmark configuration:\n${lines.join('\n')}`, 'fix the fields named above (see benchmarks/configs/ for examples)');
}

/**
 * Reads a JSON (`.json`) or YAML (`.yaml`/`.yml`) configuration file; relative data and plugin paths
 * resolve against the folder of the file that gives them. `extends: <path>` (relative to the file)
 * takes another configuration and changes it: objects are merged key by key, any other value
 * (a list, a number, a string) replaces the one it extends, and `null` removes the key it extends
 * (e.g. `data: { registry: null }`); a configuration may extend one that extends another.
 *
 * @throws DdaError naming the file for an unreadable file, bad syntax, an `extends` that is not a
 *   path, that names a file that is not a configuration (an object), or that comes back to a file
 *   already read (a cycle), and every invalid field (naming the files it extends too).
 */
export function loadBenchConfig(path: string): BenchConfig {
  const files: string[] = [];
  const value = readConfigValue(path, [], files);
  return parseBenchConfig(value, files.length > 1 ? `${path} (with what it extends: ${files.slice(1).join(', ')})` : path);
}

/** One file's value, with its `extends` chain merged (the files read pushed onto `files`) and its relative paths resolved against the folder of the file that gives them. */
function readConfigValue(path: string, chain: readonly string[], files: string[]): unknown {
  const full = resolve(path);
  if (chain.includes(full)) throw new DdaError(`${chain[chain.length - 1]}: extends '${path}', which extends it back (${[...chain, full].join(' → ')})`, 'remove the cycle of extends');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new DdaError(`cannot read config file '${path}'${chain.length > 0 ? ` (extended by ${chain[chain.length - 1]})` : ''}: ${(e as Error).message}`, 'give the path of a .json or .yaml benchmark configuration');
  }
  let value: unknown;
  try {
    value = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new DdaError(`${path}: not valid ${/\.ya?ml$/i.test(path) ? 'YAML' : 'JSON'}: ${(e as Error).message.split('\n')[0]}`, 'fix the syntax at the position named above');
  }
  files.push(path);
  if (chain.length > 0 && !isObject(value)) throw new DdaError(`${chain[chain.length - 1]}: extends '${path}', which holds ${value === null || value === undefined ? 'nothing' : Array.isArray(value) ? 'a list' : `a ${typeof value}`}, not a configuration`, 'extend a benchmark configuration (an object of fields, as in benchmarks/configs/)');
  if (!isObject(value)) return value;
  const here = (p: string): string => resolve(dirname(path), p);
  const own: Record<string, unknown> = { ...value };
  // Relative paths resolve against this file's folder, whichever file extends it.
  if (Array.isArray(own.plugins)) own.plugins = own.plugins.map((p: unknown) => (typeof p === 'string' && isPathSpecifier(p) && !p.startsWith('file:') ? here(p) : p));
  if (isObject(own.data) && typeof own.data.dataFile === 'string') own.data = { ...own.data, dataFile: here(own.data.dataFile) };
  const parent = own.extends;
  delete own.extends;
  if (parent === undefined) return own;
  if (typeof parent !== 'string' || parent === '') throw new DdaError(`${path}: field 'extends' must be the path of another configuration, got ${JSON.stringify(parent)}`, 'e.g. extends: realtext.yaml (relative to this file)');
  return mergeConfig(readConfigValue(here(parent), [...chain, full], files), own);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `over` merged into `base`: objects key by key, `null` removing the key, anything else replaced. */
function mergeConfig(base: unknown, over: unknown): unknown {
  if (!isObject(base) || !isObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else out[k] = k in base ? mergeConfig(base[k], v) : v;
  }
  return out;
}

/** The leaderboard metrics the harness computes itself (see `BenchConfigSchema.metrics`). */
export const HARNESS_METRICS = ['auc', 'recall', 'lds', 'leave-out'] as const;

/** The entries of `metrics` that are metrics of the `metrics` registry (everything but {@link HARNESS_METRICS}), in order. */
export function registryMetricSpecs(c: Pick<BenchConfig, 'metrics'>): (string | { readonly id: string; readonly [option: string]: unknown })[] {
  return c.metrics.filter((m) => typeof m !== 'string' || !(HARNESS_METRICS as readonly string[]).includes(m));
}
