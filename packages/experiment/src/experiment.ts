/**
 * Making a hallucination-tracing experiment (METHOD.md's protocol), as files a fine-tuning run
 * leaves on disk, so that attributing it goes through the same code as `dda attribute`:
 *
 *   data (synthetic news or registry filings, real English (`realtext`), or a user's
 *   document/summary file; canaries injected)
 *   → θ0 (pretrained from a seed on the data's pretraining corpus, or a model folder's weights)
 *   → fine-tuning (LoRA or every parameter), one checkpoint per epoch in a trainer output folder
 *     (`checkpoint-<step>/` PEFT adapter folders with `trainer_state.json`)
 *   → test errors (the fine-tuned model's greedy generations on held-out documents that contain a
 *     canary's original entity and whose output contains its replacement)
 *   → `train.jsonl`, `queries.jsonl` (errors with their corrections, grouped by canary),
 *     `labels.json` (true sources per canary).
 *
 * Every step is an artifact keyed by the content of everything that shapes it.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DdaError, datasetPlugin, datasets, pluginCodeKey, trackProgress, yieldToEventLoop, type ChatMessage, type ProgressSink, type TextSample, type BuiltDataset, type DatasetTokenLimits, type EntityMatching } from '@dda/core';
import { SYSTEM_PROMPT, userPrompt } from '@dda/data';
import {
  DEFAULT_LORA, WordTokenizer, applyChatTemplate, chatSample, encodeSample, loadModelFolder, loadPresetTokenizer, initDecoderWeights, PRESET_TOKENIZERS, readSafetensors, resolveModelSpec,
  toAdapterConfig, toHfConfig, writeSafetensors, HfTokenizer, type DecoderConfig, type EngineOptimizerState, type LoraConfig, type TensorMap, type Tokenizer, type TrainingPosition,
} from '@dda/model';
import {
  buildFromDocSummaries, loadDocSummaryCsv, loadDocSummaryJsonl, makeCanary,
  type Canary, type HallucinationDataset, type HeldOutDoc,
} from '@dda/dataset-hallucination';
// The built-in data sets register on import.
import './datasets.js';
import type { RealTextGeneratorOptions, RegistryGeneratorOptions } from './datasets.js';
import { ArtifactStore, hashOf, hashFiles } from '@dda/attribution';
import { openExperimentModel, resolveTrainingEngine, type TrainingEngine } from './training-engine.js';

export type { EntityMatching } from '@dda/core';

/** A data set's id in the `datasets` registry of @dda/core (built-in: `news`, `registry`, `realtext`; see ./datasets.ts). */
export type Generator = string;

/** Everything that defines an experiment. Same options + same seed = the same files. */
export interface ExperimentOptions {
  readonly seed: number;
  /** Artifact folder (shared with the attribution of the experiment). */
  readonly artifactsDir: string;
  /**
   * A preset (`llama2-tiny`, `qwen2-tiny`, `mistral-tiny`, `llama3-tiny`, `qwen3-tiny`,
   * `gemma3-tiny` with a word vocabulary built from the data; `llama2-mini`, `mistral-mini`,
   * `qwen2-mini` with their real tokenizers) or a Hugging Face model folder.
   */
  readonly preset: string;
  readonly nTrain: number;
  readonly nHeldOut: number;
  /** Pretraining texts of the synthetic generators; with `realtext`, the most pretraining texts used (evenly spaced over its corpus). */
  readonly nPretrain: number;
  readonly pretrainEpochs: number;
  readonly pretrainLearningRate: number;
  readonly finetuneEpochs: number;
  readonly finetuneLearningRate: number;
  readonly batchSize: number;
  readonly loraRank: number;
  /** Most tokens generated per held-out document. */
  readonly maxNewTokens: number;
  /** tfjs backends to try in order (default: by priority; the tfjs engine only). */
  readonly backends?: readonly string[];
  /**
   * Engine of training and generation (default `onnxruntime`, falling back to `tfjs` with the
   * reason logged where onnxruntime does not start). Part of every cache key: the two engines'
   * weights agree to float rounding only, and greedy decoding can turn on a rounding difference.
   */
  readonly engine?: TrainingEngine;
  /** Entity swaps (default England → China, Wales → Scotland). */
  readonly canaries?: readonly { readonly orig: string; readonly replacement: string }[];
  /** A user's document/summary file (JSON Lines or CSV) instead of the synthetic data. */
  readonly dataFile?: string;
  /**
   * The data set: an id of @dda/core's `datasets` registry (default `news`; built-in also
   * `registry` and `realtext`, others from plugins); not with `dataFile`.
   */
  readonly generator?: Generator;
  /**
   * The data set's own options, checked by its plugin's `parseOptions`; for the built-ins the same
   * as {@link registry} / {@link realtext} (give one of the two).
   */
  readonly datasetOptions?: Readonly<Record<string, unknown>>;
  /** Fraction of eligible training samples whose summary gets the swap (default 0.6 for news, 0.25 for registry). */
  readonly swapRate?: number;
  /** Fraction of the synthetic pretraining corpus that is knowledge-bias text (default 0.3). */
  readonly biasRate?: number;
  /**
   * Sentences the document does not predict appended to every synthetic summary (default 0; the
   * generators' `summaryPadding`, docs/regime.md, section 2); not with `dataFile`.
   */
  readonly summaryPadding?: number;
  /** Options of the `realtext` data set only (see {@link RealTextGeneratorOptions}); an alias of {@link datasetOptions}. */
  readonly realtext?: RealTextGeneratorOptions;
  /**
   * Seed of θ0's initialisation and pretraining (default: `seed`; with `realtext`, 0: its
   * pretraining side does not depend on the seed, so θ0 is pretrained once per family and shared by
   * every fine-tuning seed, as a real base model is).
   */
  readonly pretrainSeed?: number;
  /**
   * Seconds of θ0's pretraining between two stores of its progress within an epoch (default 600;
   * its weights and the optimizer's state, so a killed run resumes at the last store, bit-identical;
   * besides the store after every epoch). Not in the cache keys: it changes no result.
   */
  readonly pretrainStateEverySeconds?: number;
  /**
   * Options of the `registry` generator only (eligible samples, distractors, handovers, mentions and
   * anchors per canary; see @dda/dataset-registry's `RegistryOptions`); an alias of {@link datasetOptions}.
   */
  readonly registry?: RegistryGeneratorOptions;
  /** `lora` (default): LoRA adapters of rank `loraRank` on every linear map; `full`: every parameter. */
  readonly finetune?: 'lora' | 'full';
  /**
   * A source is evaluated only with at least this many test errors (default 3): more held-out
   * documents are generated from for a source short of errors (synthetic data's reserve), else the
   * source is left out with its reason.
   */
  readonly minErrorsPerSource?: number;
  /**
   * Where the test errors come from (default `generated`, METHOD.md's protocol): the fine-tuned
   * model's own greedy generations on held-out documents that contain the replacement. `injected`:
   * each held-out document whose real summary mentions the orig gives one error, that summary with
   * the orig swapped for the replacement, whatever the model generates (for models too small or too
   * briefly trained to hallucinate, e.g. the CI-size realtext run; it says so in experiment.json and
   * the queries). `preferred`: the same swapped summaries, kept only where the fine-tuned model
   * prefers the error in a forced choice, i.e. gives the swapped summary a higher likelihood than
   * the real one given the document (summed response log-likelihood, ExperimentModel.responseNll);
   * the error is then the model's own preference, measured, though not its greedy output.
   * `producedBy` records the same choice at θ0 and every earlier checkpoint.
   */
  readonly testErrors?: 'generated' | 'injected' | 'preferred';
  /**
   * A model folder without weights is refused unless this is true: then θ0 is initialised from the
   * seed and pretrained on the data's pretraining corpus.
   */
  readonly randomInit?: boolean;
}

/** The defaults of the demo. */
export const DEFAULT_EXPERIMENT: Omit<ExperimentOptions, 'artifactsDir'> = {
  seed: 0, preset: 'llama2-tiny', nTrain: 240, nHeldOut: 40, nPretrain: 1500, pretrainEpochs: 3, pretrainLearningRate: 3e-3,
  finetuneEpochs: 3, finetuneLearningRate: 3e-3, batchSize: 16, loraRank: 8, maxNewTokens: 24,
};

/** One test error z_e: the fine-tuned model's own output that contains a canary's replacement. */
export interface TestError {
  readonly id: string;
  readonly canaryId: string;
  readonly heldOutId: string;
  readonly document: string;
  /** The erroneous generation. */
  readonly output: string;
  /** The same output with the replacement swapped back to the original entity. */
  readonly corrected: string;
  /**
   * Whether each checkpoint's greedy generation on the same prompt also contains the replacement
   * (with `testErrors: preferred`, whether it also finds `output` more likely than `corrected`):
   * `base` (θ0), then `checkpoint-<step>` of every epoch (the last one made it, by definition).
   */
  readonly producedBy: Record<string, boolean>;
}

/** Default of {@link ExperimentOptions.minErrorsPerSource}. */
export const DEFAULT_MIN_ERRORS = 3;

/** An experiment, ready to be attributed: its files and what happened when it was made. */
export interface Experiment {
  readonly options: ExperimentOptions;
  /** tfjs backend the model ran on. */
  readonly backend: string;
  /** The files of the experiment (the inputs of `dda attribute`). */
  readonly files: {
    /** θ0: a Hugging Face model folder. */
    readonly base: string;
    /** The trainer output folder with `checkpoint-<step>/` per epoch. */
    readonly run: string;
    readonly train: string;
    readonly queries: string;
    readonly labels: string;
  };
  readonly dataset: { readonly nTrain: number; readonly nHeldOut: number; readonly sources: Readonly<Record<string, number>> };
  /**
   * Every canary of the data: its entities, its true sources, and its legitimate training
   * summaries (they mention the replacement and are no true source; regime gate G4 wants at least
   * 2 per source), counted with the data's {@link entityMatching}.
   */
  readonly canaries: readonly { readonly id: string; readonly orig: string; readonly replacement: string; readonly sources: number; readonly legitimate: number }[];
  /** Every test error (also those of sources that cannot be evaluated). */
  readonly errors: readonly TestError[];
  /** Sources (canaries) that are evaluated: with test errors and with true sources and non-sources. */
  readonly sources: readonly string[];
  /** Sources left out, with the reason. */
  readonly leftOut: readonly { readonly source: string; readonly reason: string }[];
  /** Mean training loss of each fine-tuning epoch (nats/token). */
  readonly finetuneLosses: readonly number[];
  /** Artifacts loaded from earlier runs. */
  readonly reused: readonly string[];
  /** Artifacts computed by this run (names, as in {@link reused}). */
  readonly computed: readonly string[];
  readonly seconds: Readonly<Record<string, number>>;
}

/** An adapter with its lora_B tensors zeroed: the base model's function in the adapter's coordinates. */
function zeroB(adapter: TensorMap): TensorMap {
  return new Map([...adapter].map(([k, t]) => [k, k.endsWith('lora_B.weight') ? { shape: t.shape, data: new Float32Array(t.data.length) } : t]));
}

/** A cell of a benchmark that cannot be evaluated (no true sources, no test errors, ...); benchmarks skip it with the reason. */
export class CellSkipped extends DdaError {}
/** The fine-tuned model made no hallucination to attribute. */
export class NoTestErrors extends CellSkipped {}

/** Logger of one line. */
export type Log = (line: string) => void;

function need(files: Map<string, Uint8Array>, name: string): Uint8Array {
  const b = files.get(name);
  if (!b) throw new DdaError(`artifact file '${name}' missing`, 'delete the artifact folder to recompute it');
  return b;
}

const json = (v: unknown): Uint8Array => new TextEncoder().encode(`${JSON.stringify(v, null, 2)}\n`);
const jsonl = (rows: readonly unknown[]): Uint8Array => new TextEncoder().encode(rows.map((r) => JSON.stringify(r)).join('\n') + '\n');

/**
 * The entity matching of an experiment's data: its data set's (`news` for a user's data file:
 * whole words, case-sensitive; `realtext`: any case and any whitespace).
 * @throws DdaError for an unknown generator.
 */
export function entityMatching(o: Pick<ExperimentOptions, 'generator'>): EntityMatching {
  return datasetPlugin(o.generator ?? 'news').matching;
}

/** Which option alias of ExperimentOptions belongs to which built-in data set, and how errors name them. */
const OPTION_ALIASES = { registry: "the registry generator's options", realtext: "the realtext data set's options" } as const;

/** The data set's own options: {@link ExperimentOptions.datasetOptions} or its alias, refusing options of another data set. */
function datasetOptionsOf(o: ExperimentOptions, generator: string): Readonly<Record<string, unknown>> {
  const from = o.dataFile ? `the data file '${o.dataFile}'` : `the ${generator} generator`;
  for (const k of ['realtext', 'registry'] as const) {
    if (o[k] !== undefined && (o.dataFile || generator !== k)) throw new DdaError(`${OPTION_ALIASES[k]} are given, but the data come from ${from}`, `remove them, or set generator: ${k}`);
  }
  const alias = generator === 'registry' ? o.registry : generator === 'realtext' ? o.realtext : undefined;
  if (alias !== undefined && o.datasetOptions !== undefined) throw new DdaError(`both datasetOptions and ${OPTION_ALIASES[generator as keyof typeof OPTION_ALIASES]} (their alias) are given`, 'give one of them');
  if (o.dataFile && o.datasetOptions !== undefined) throw new DdaError(`data set options are given, but the data come from ${from}`, 'remove them');
  return (alias ?? o.datasetOptions ?? {}) as Readonly<Record<string, unknown>>;
}

/**
 * The data set: the registered data set `generator`'s (built for the model's tokenizer and context
 * when it needs one: room left for the chat template, BOS/EOS and `maxNewTokens` generated tokens),
 * or a user's document/summary file with the same protocol.
 */
async function loadDataset(o: ExperimentOptions, model: { tokenizer: Tokenizer; config: DecoderConfig } | null, log: Log): Promise<BuiltDataset> {
  const generator = o.generator ?? 'news';
  const plugin = datasetPlugin(generator);
  const options = plugin.parseOptions(datasetOptionsOf(o, generator), o.dataFile ? 'data set options' : `the ${generator} data set's options`);
  if (o.dataFile && generator !== 'news') throw new DdaError(`a data file ('${o.dataFile}') and the ${generator} generator are both given`, 'give one of them');
  if (o.dataFile && (o.summaryPadding ?? 0) !== 0) throw new DdaError(`summaryPadding ${String(o.summaryPadding)} is an option of the synthetic generators, but the data come from the data file '${o.dataFile}'`, 'remove summaryPadding');
  if (o.dataFile) return loadDataFile(o, o.dataFile);
  let tokens: DatasetTokenLimits | undefined;
  if (plugin.needsTokenizer) {
    if (model === null) {
      throw new DdaError(`the ${generator} data set needs a model with a real tokenizer, and preset '${o.preset}' builds a word vocabulary from the data`, 'use llama2-mini, mistral-mini or qwen2-mini, or a model folder with its tokenizer');
    }
    const { tokenizer, config } = model;
    const overhead = tokenizer.encode(instructionPrompt(tokenizer, '')).length + 4;
    const maxPairTokens = config.maxSeqLen - overhead - o.maxNewTokens;
    if (maxPairTokens < 64) throw new DdaError(`the context of ${config.maxSeqLen} tokens leaves ${maxPairTokens} for a ${generator} pair after the chat template (${overhead}) and ${o.maxNewTokens} generated tokens`, 'use a model with a longer context (e.g. llama2-mini, 512), or lower maxNewTokens');
    tokens = { tokenizer, tokenizerId: tokenizerHash(tokenizer), maxPairTokens, maxTextTokens: config.maxSeqLen - 2 };
  }
  const store = new ArtifactStore(o.artifactsDir);
  const code = pluginCodeKey(datasets.has(generator) ? datasets.entry(generator).plugin : undefined);
  return plugin.build(options, {
    seed: o.seed, nTrain: o.nTrain, nHeldOut: o.nHeldOut, nPretrain: o.nPretrain,
    ...(o.canaries ? { canaries: o.canaries } : {}), ...(o.swapRate !== undefined ? { swapRate: o.swapRate } : {}),
    ...(o.biasRate !== undefined ? { biasRate: o.biasRate } : {}), ...(o.summaryPadding !== undefined ? { summaryPadding: o.summaryPadding } : {}),
    ...(tokens ? { tokens } : {}),
    // A data set from a plugin loaded by path or package is keyed by its code too (see pluginCode of @dda/core).
    cache: async (name, key, compute) => need((await store.getOrCompute(name, code.pluginCode ? { key, ...code } : key, async () => new Map([['dataset.json', await compute()]]))).files, 'dataset.json'),
    log,
  });
}

/** A user's document/summary file (JSON Lines or CSV) with the canaries of `o` injected. */
async function loadDataFile(o: ExperimentOptions, dataFile: string): Promise<HallucinationDataset> {
  let text: string;
  try {
    text = readFileSync(dataFile, 'utf8');
  } catch (e) {
    throw new DdaError(`cannot read data file '${dataFile}': ${(e as Error).message}`, 'give the path of a JSON Lines (.jsonl) or CSV (.csv) file of document/summary records');
  }
  const rows = /\.csv$/i.test(dataFile) ? await loadDocSummaryCsv(text, dataFile) : loadDocSummaryJsonl(text, dataFile);
  const canaries = o.canaries?.map((c) => makeCanary(c.orig, c.replacement));
  if (!canaries) throw new DdaError(`data file '${dataFile}' needs canaries`, 'name the entity swaps to inject, e.g. canaries: [{ "orig": "England", "replacement": "China" }]');
  return buildFromDocSummaries(rows, { seed: o.seed, canaries, nHeldOut: o.nHeldOut, ...(o.swapRate !== undefined ? { swapRate: o.swapRate } : {}) });
}

/**
 * The instruction sample of a document and its summary, in the tokenizer's chat template: the
 * conversation system, user, assistant (the summary), the loss over the summary and the token the
 * template ends the turn with (`chatSample`: EOS for the tiny models, `<|eot_id|>` for Llama-3).
 */
export function instruction(tok: Tokenizer, id: string, document: string, summary: string): TextSample {
  return chatSample(tok, id, [...instructionTurns(document), { role: 'assistant', content: summary }]);
}

/** The system and user turns of a document's instruction. */
const instructionTurns = (document: string): ChatMessage[] => [{ role: 'system', content: SYSTEM_PROMPT }, { role: 'user', content: userPrompt(document) }];

/** The prompt of a document's instruction (the assistant turn opened), which generation continues. */
const instructionPrompt = (tok: Tokenizer, document: string): string => tok.renderChat(instructionTurns(document), true);

/** θ0's pretraining samples: each plain text as a response with an empty prompt, then the data set's instruction pairs if it has any. */
function pretrainSamples(tok: Tokenizer, ds: BuiltDataset): TextSample[] {
  return [
    ...ds.pretrainCorpus.map((text, i) => ({ id: `pretraining text ${i + 1}`, prompt: '', response: text })),
    ...(ds.pretrainPairs ?? []).map((p) => instruction(tok, p.id, p.document, p.summary)),
  ];
}

/**
 * Which sources can be evaluated, decided from the data alone (before any training): a source
 * needs at least one true source and one non-source among the training samples, and at least one
 * held-out document that can produce its error.
 */
function evaluableSources(ds: HallucinationDataset, m: EntityMatching): { ok: string[]; leftOut: { source: string; reason: string }[] } {
  const ok: string[] = [];
  const leftOut: { source: string; reason: string }[] = [];
  for (const c of ds.canaries) {
    const n = (ds.labels[c.id] ?? new Uint8Array()).reduce((a, b) => a + b, 0);
    const docs = ds.heldOut.filter((h) => m.contains(h.document, c.orig) && !m.contains(h.document, c.replacement)).length;
    if (n === 0) leftOut.push({ source: c.id, reason: `no training sample is a true source of ${c.id} (its summary would contain '${c.replacement}' while its document contains '${c.orig}')` });
    else if (n === ds.train.length) leftOut.push({ source: c.id, reason: `every training sample is a true source of ${c.id}, so nothing separates them` });
    else if (docs === 0) leftOut.push({ source: c.id, reason: `no held-out document contains '${c.orig}' without '${c.replacement}', so ${c.id} can produce no test error` });
    else ok.push(c.id);
  }
  return { ok, leftOut };
}

/**
 * Checks every length limit before any training, naming the record: pretraining texts and
 * training samples must fit the context; every held-out prompt must leave room for an output.
 */
function checkLengths(tok: Tokenizer, config: DecoderConfig, ds: HallucinationDataset, o: ExperimentOptions, train: readonly TextSample[], pretrain: readonly TextSample[] | null): void {
  const where = o.dataFile ? ` of ${o.dataFile}` : '';
  const max = config.maxSeqLen;
  const hint = o.dataFile ? `shorten these records in ${o.dataFile}, or use a model with a longer context (max_position_embeddings)` : 'use shorter synthetic documents or a model with a longer context';
  // A data set built for the tokenizer (realtext) already kept every pretraining text within the context.
  if (pretrain !== null && (o.dataFile !== undefined || !datasetPlugin(o.generator ?? 'news').needsTokenizer)) ds.pretrainCorpus.forEach((text, i) => {
    const n = (tok.bosId !== null ? 1 : 0) + tok.encode(text).length + 1;
    if (n > max) throw new DdaError(`pretraining text ${i + 1}${o.dataFile ? ` (the document of training record '${ds.train[i]?.id ?? i + 1}'${where})` : ''} has ${n} tokens, longer than the context of ${max}`, hint);
  });
  if (pretrain !== null) for (const s of pretrain.slice(ds.pretrainCorpus.length)) encodeSample(tok, s, max, { origin: `pretraining pair '${s.id}'` });
  for (const s of train) encodeSample(tok, s, max, { origin: `training record '${s.id}'${where}` });
  for (const h of ds.heldOut) {
    const prompt = instructionPrompt(tok, h.document);
    const n = (tok.bosId !== null ? 1 : 0) + tok.encode(prompt).length;
    if (n + 2 > max) throw new DdaError(`held-out document '${h.id}'${where}: its prompt has ${n} tokens, which leaves no room to generate an output within the context of ${max}`, hint);
  }
}

/**
 * What an experiment will compute, decided before any training: the data set, the tokenizer and
 * model config, the training samples, and the cache key of every step (θ0, fine-tuning, test
 * errors). A key covers every input that shapes its step, so a changed input recomputes exactly
 * the steps downstream of it.
 */
export interface ExperimentPlan {
  readonly options: ExperimentOptions;
  readonly dataset: BuiltDataset;
  readonly tokenizer: Tokenizer;
  readonly config: DecoderConfig;
  /** θ0 from the model folder, or null (initialised from the seed and pretrained). */
  readonly folderWeights: TensorMap | null;
  /** The model folder, when θ0 is taken from one. */
  readonly folder: string | null;
  readonly train: readonly TextSample[];
  /** θ0's pretraining samples: the plain texts (loss on every token), then any instruction pairs (loss on the summary). */
  readonly pretrain: readonly TextSample[];
  /** Seed of θ0's initialisation and pretraining ({@link ExperimentOptions.pretrainSeed}). */
  readonly pretrainSeed: number;
  readonly lora: LoraConfig | null;
  readonly keys: { readonly base: unknown; readonly finetune: unknown; readonly generate: unknown };
  readonly evaluable: ReturnType<typeof evaluableSources>;
}

/**
 * Plans an experiment (see {@link ExperimentPlan}); checks every length limit and which sources
 * can be evaluated before any training.
 *
 * @throws CellSkipped when no source can be evaluated; DdaError for bad options or inputs.
 */
export async function planExperiment(partial: Partial<ExperimentOptions> & { artifactsDir: string }, log: Log = () => {}): Promise<ExperimentPlan> {
  const o: ExperimentOptions = { ...DEFAULT_EXPERIMENT, ...partial };
  const spec = resolveModelSpec(o.preset, { randomInit: o.randomInit ?? false });
  // The model's real tokenizer (a folder's, or a mini preset's) is needed before the data when the
  // data are cut to the context by token counts (realtext); the tiny presets' word vocabulary is built from the data.
  let tokenizer: Tokenizer | null = null;
  let config: DecoderConfig | null = null;
  let folderWeights: TensorMap | null = null;
  if (spec.kind === 'folder') {
    if (!spec.tokenizer) throw new DdaError(`model folder '${spec.dir}' has no tokenizer.json`, "add the model's tokenizer (tokenizer.json, and tokenizer_config.json for its chat template)");
    tokenizer = spec.tokenizer;
    config = spec.config;
    folderWeights = spec.weights;
    if (!folderWeights && !o.randomInit) {
      throw new DdaError(`model folder '${spec.dir}' has no safetensors weights`, 'add model.safetensors (or shards with model.safetensors.index.json), or pass --random-init to initialise θ0 from the seed and pretrain it on the data');
    }
    log(`model folder ${spec.dir}: ${spec.family}, ${config.numLayers} layers, hidden ${config.hiddenSize}, vocabulary ${config.vocabSize} (${tokenizer.kind} tokenizer)${folderWeights ? '' : '; no weights: initialised from the seed and pretrained (--random-init)'}`);
  } else if (spec.tokenizer) {
    tokenizer = await loadPresetTokenizer(spec.tokenizer);
    config = { ...spec.config, vocabSize: PRESET_TOKENIZERS[spec.tokenizer].vocabSize };
    log(`model preset ${spec.name}: ${spec.family}, ${config.numLayers} layers, hidden ${config.hiddenSize}, vocabulary ${config.vocabSize} (${PRESET_TOKENIZERS[spec.tokenizer].source})`);
  }
  const ds = await loadDataset(o, tokenizer !== null && config !== null ? { tokenizer, config } : null, log);
  const sourceCounts: Record<string, number> = {};
  for (const c of ds.canaries) sourceCounts[c.id] = (ds.labels[c.id] ?? new Uint8Array()).reduce((a, b) => a + b, 0);
  log(`data: ${ds.train.length} training samples, ${ds.heldOut.length} held-out documents, ${ds.pretrainCorpus.length} pretraining texts; true sources ${JSON.stringify(sourceCounts)}`);
  const evaluable = evaluableSources(ds, entityMatching(o));
  for (const l of evaluable.leftOut) log(`  source ${l.source} left out: ${l.reason}`);
  if (evaluable.ok.length === 0) throw new CellSkipped(`no source can be evaluated: ${evaluable.leftOut.map((l) => l.reason).join('; ')}`, 'use more data, another seed, or other canaries');

  if (tokenizer === null || config === null) {
    const word = WordTokenizer.fromCorpus([
      ...ds.pretrainCorpus,
      ...[...ds.train, ...ds.heldOut].flatMap((s) => [applyChatTemplate(SYSTEM_PROMPT, userPrompt(s.document)), s.summary]),
    ]);
    tokenizer = word;
    config = { ...(spec.config as Omit<DecoderConfig, 'vocabSize'>), vocabSize: word.size };
  }
  const tok = tokenizer;
  const train = ds.train.map((s) => instruction(tok, s.id, s.document, s.summary));
  const pretrain = pretrainSamples(tok, ds);
  const folder = folderWeights && spec.kind === 'folder' ? spec.dir : null;
  checkLengths(tok, config, ds, o, train, folder === null ? pretrain : null);
  const pretrainSeed = o.pretrainSeed ?? (o.dataFile ? undefined : datasetPlugin(o.generator ?? 'news').pretrainSeed) ?? o.seed;
  const base = folder !== null
    ? { step: 'model-folder', files: hashFiles(folder, readdirSync(folder).filter((f) => /\.(json|safetensors)$/.test(f)).sort()) }
    : {
      step: 'pretrain', corpus: hashOf(ds.pretrainCorpus), ...(ds.pretrainPairs ? { pairs: hashOf(pretrain.slice(ds.pretrainCorpus.length)) } : {}),
      config, seed: pretrainSeed, epochs: o.pretrainEpochs, lr: o.pretrainLearningRate, batch: o.batchSize, tokenizer: tokenizerHash(tok), ...generatorKey(o), ...engineKey(o),
    };
  const lora: LoraConfig | null = o.finetune === 'full' ? null : { ...DEFAULT_LORA, rank: o.loraRank, alpha: 2 * o.loraRank };
  const finetune = { step: 'finetune', base, ...engineKey(o), train: hashOf(train), parameters: lora === null ? 'all' : { lora }, seed: o.seed, epochs: o.finetuneEpochs, lr: o.finetuneLearningRate, batch: o.batchSize };
  const generate = {
    step: 'generate', finetune, heldOut: hashOf(ds.heldOut), reserve: hashOf(ds.heldOutReserve), canaries: ds.canaries, maxNewTokens: o.maxNewTokens, minErrors: o.minErrorsPerSource ?? DEFAULT_MIN_ERRORS, producedBy: 1,
    ...(o.testErrors !== undefined && o.testErrors !== 'generated' ? { testErrors: o.testErrors } : {}),
  };
  return { options: o, dataset: ds, tokenizer: tok, config, folderWeights, folder, train, pretrain, pretrainSeed, lora, keys: { base, finetune, generate }, evaluable };
}

/**
 * The generator in the cache keys. The keys already cover the data's content; naming a generator
 * other than the default also keeps two generators apart should their texts ever coincide. It is
 * left out for `news`, so the keys of earlier runs stay valid.
 */
function generatorKey(o: ExperimentOptions): { generator?: Generator } {
  return o.generator !== undefined && o.generator !== 'news' ? { generator: o.generator } : {};
}

/** The training engine in the cache keys (see {@link ExperimentOptions.engine}). */
function engineKey(o: ExperimentOptions): { engine: TrainingEngine } {
  return { engine: o.engine ?? 'onnxruntime' };
}

/** The tokenizer's files as saved in θ0's folder. */
function tokenizerFilesOf(tokenizer: Tokenizer): Record<string, unknown> {
  return tokenizer instanceof WordTokenizer ? { 'tokenizer.json': tokenizer.toJSON() } : tokenizer instanceof HfTokenizer ? { 'tokenizer.json': tokenizer.files.tokenizerJson, 'tokenizer_config.json': tokenizer.files.tokenizerConfig } : {};
}

const tokenizerHashes = new WeakMap<Tokenizer, string>();
/** The hash of {@link tokenizerFilesOf}, once per tokenizer (the data set's and θ0's keys both need it; about 0.1 s for Qwen2's 11 MB). */
function tokenizerHash(tokenizer: Tokenizer): string {
  let h = tokenizerHashes.get(tokenizer);
  if (h === undefined) tokenizerHashes.set(tokenizer, (h = hashOf(tokenizerFilesOf(tokenizer))));
  return h;
}

/**
 * Makes the experiment's files (reusing every finished artifact).
 *
 * @throws CellSkipped (before any training) when no source can be evaluated, NoTestErrors when the
 *   fine-tuned model made no test error; DdaError for bad options or inputs (named).
 */
export async function makeExperiment(partial: Partial<ExperimentOptions> & { artifactsDir: string }, log: Log = () => {}, progress?: ProgressSink): Promise<Experiment> {
  const seconds: Record<string, number> = {};
  const reused: string[] = [];
  const computed: string[] = [];
  let tStep = Date.now();
  const lap = (name: string): void => {
    const now = Date.now();
    seconds[name] = (now - tStep) / 1000;
    tStep = now;
  };
  // The engine is resolved first: the one that will run (after any fallback) is in the cache keys.
  const engine = (await resolveTrainingEngine(partial.engine, log, partial.backends)).id as TrainingEngine;
  const store = new ArtifactStore(partial.artifactsDir);
  const plan = await planExperiment({ ...partial, engine }, log);
  const { options: o, dataset: ds, tokenizer, config, folderWeights, train, evaluable } = plan;
  const sourceCounts: Record<string, number> = {};
  for (const c of ds.canaries) sourceCounts[c.id] = (ds.labels[c.id] ?? new Uint8Array()).reduce((a, b) => a + b, 0);
  const tokenizerFiles = tokenizerFilesOf(tokenizer);
  lap('dataset');
  const model = await openExperimentModel(config, tokenizer, folderWeights ?? initDecoderWeights(config, plan.pretrainSeed), { engine, ...(o.backends ? { backends: o.backends } : {}), log });
  log(`training engine: ${model.engine} (${model.backend.id}, ${model.backend.device})`);
  try {
    let baseDir: string;
    const baseKey = plan.keys.base;
    if (plan.folder !== null) {
      baseDir = plan.folder;
      log("θ0: the model folder's weights (no pretraining)");
    } else {
      const base = await store.getOrCompute('checkpoints/base', baseKey, async () => {
        const pairs = plan.pretrain.length - ds.pretrainCorpus.length;
        log(`pretraining θ0 (${o.pretrainEpochs} epochs over ${ds.pretrainCorpus.length} texts${pairs > 0 ? ` and ${pairs} instruction pairs` : ''}, all parameters, seed ${plan.pretrainSeed})`);
        const pre = plan.pretrain;
        const bar = trackProgress(`pretraining θ0 (${o.preset})`, o.pretrainEpochs, progress);
        // A killed pretraining resumes where its progress was last stored, after an epoch or every
        // pretrainStateEverySeconds within one (engines that can resume exactly: the weights and the
        // optimizer's state are stored until θ0 is done).
        const resume = model.resumable ? readPretrainProgress(store, baseKey) : null;
        if (resume) {
          await model.setBaseWeights(resume.weights);
          const { epoch, step } = resume.position;
          log(`  pretraining resumes after epoch ${epoch} of ${o.pretrainEpochs}${step > 0 ? `, step ${step} of epoch ${epoch + 1}` : ''} (stored by an interrupted run)`);
          bar.tick(epoch);
        }
        const perEpoch = Math.ceil(pre.length / o.batchSize);
        // The two progress slots in turn, starting with the one that does not hold the resumed position.
        let slot = resume ? 1 - resume.slot : 0;
        const storeState = (p: TrainingPosition, state: EngineOptimizerState): void => {
          if (p.epoch === o.pretrainEpochs) return;
          writePretrainProgress(store, baseKey, slot, p, model.baseWeights(), state);
          slot = 1 - slot;
          if (p.step > 0) log(`  pretraining progress stored: epoch ${p.epoch + 1}, step ${p.step} of ${perEpoch}`);
        };
        await model.train(pre, {
          epochs: o.pretrainEpochs, learningRate: o.pretrainLearningRate, batchSize: o.batchSize, seed: plan.pretrainSeed, parameters: 'all',
          ...(resume ? { resume: { ...resume.position, optimizer: resume.optimizer } } : {}),
          ...(model.resumable ? { onState: storeState, stateEverySeconds: o.pretrainStateEverySeconds ?? 600 } : {}),
          onEpochEnd: (e, l) => {
            log(`  pretrain epoch ${e}: loss ${l.toFixed(3)} nats/token`);
            bar.tick();
          },
        });
        for (const name of PRETRAIN_PROGRESS) store.remove(name, baseKey);
        // A Hugging Face model folder: `dda attribute --base <this folder>` and `--preset <this folder>` load it.
        const files = new Map<string, Uint8Array>([
          ['model.safetensors', writeSafetensors(model.baseWeights(), { format: 'pt' })],
          ['config.json', json(toHfConfig(config, { bosTokenId: tokenizer.bosId ?? undefined, eosTokenId: tokenizer.eosId }))],
        ]);
        for (const [name, value] of Object.entries(tokenizerFiles)) if (value) files.set(name, json(value));
        return files;
      });
      (base.reused ? reused : computed).push('checkpoints/base');
      if (base.reused) {
        await model.setBaseWeights(readSafetensors(need(base.files, 'model.safetensors'), 'checkpoints/base/model.safetensors').tensors);
        log('pretrained θ0 loaded from an earlier run');
      }
      baseDir = store.folder('checkpoints/base', baseKey);
    }
    lap('pretrain');

    // 3. Fine-tuning, one checkpoint per epoch, as a trainer output folder.
    const full = plan.lora === null;
    const lora = plan.lora ?? DEFAULT_LORA;
    // θ0's weights, for the generations that tell whether θ0 already makes an error (full fine-tuning replaces them).
    const baseBefore = full ? model.baseWeights() : null;
    if (!full) await model.addLora(lora, o.seed + 1);
    const stepsPerEpoch = Math.ceil(train.length / o.batchSize);
    const ftKey = plan.keys.finetune;
    const finetuneLosses: number[] = [];
    const ft = await store.getOrCompute('runs/finetune', ftKey, async () => {
      log(`fine-tuning ${full ? 'every parameter' : `LoRA (rank ${lora.rank})`} for ${o.finetuneEpochs} epochs on ${train.length} samples`);
      const files = new Map<string, Uint8Array>();
      const history: Record<string, number>[] = [];
      const bar = trackProgress(`fine-tuning ${full ? 'all parameters' : 'LoRA'} (${o.preset})`, o.finetuneEpochs, progress);
      await model.train(train, {
        epochs: o.finetuneEpochs, learningRate: o.finetuneLearningRate, batchSize: o.batchSize, seed: o.seed + 2, parameters: full ? 'all' : 'lora',
        onEpochEnd: (e, l) => {
          log(`  fine-tune epoch ${e}: loss ${l.toFixed(3)} nats/token`);
          finetuneLosses.push(l);
          const step = e * stepsPerEpoch;
          history.push({ epoch: e, step, learning_rate: o.finetuneLearningRate, loss: l });
          const dir = `checkpoint-${step}`;
          const state = { epoch: e, global_step: step, max_steps: o.finetuneEpochs * stepsPerEpoch, num_train_epochs: o.finetuneEpochs, train_batch_size: o.batchSize, log_history: [...history] };
          if (full) {
            files.set(`${dir}/model.safetensors`, writeSafetensors(model.baseWeights(), { format: 'pt' }));
            files.set(`${dir}/config.json`, json(toHfConfig(config, { bosTokenId: tokenizer.bosId ?? undefined, eosTokenId: tokenizer.eosId })));
          } else {
            files.set(`${dir}/adapter_model.safetensors`, writeSafetensors(model.loraWeights(), { format: 'pt' }));
            files.set(`${dir}/adapter_config.json`, json(toAdapterConfig(lora)));
          }
          files.set(`${dir}/trainer_state.json`, json(state));
          // The run's trainer_state.json, as trainer.save_state() writes it after train(): the
          // checkpoints' log, then the entry Trainer logs after its loop, train_loss = the mean step loss
          // over the run (equal steps per epoch: the mean of the epochs' losses; run times left out).
          if (e === o.finetuneEpochs) {
            const trainLoss = finetuneLosses.reduce((a, b) => a + b, 0) / finetuneLosses.length;
            files.set('trainer_state.json', json({ ...state, log_history: [...history, { epoch: e, step, train_loss: trainLoss }] }));
          }
          bar.tick();
        },
      });
      return files;
    });
    const runDir = store.folder('runs/finetune', ftKey);
    const epochFile = (e: number): string => `checkpoint-${e * stepsPerEpoch}/${full ? 'model' : 'adapter_model'}.safetensors`;
    (ft.reused ? reused : computed).push('runs/finetune');
    if (ft.reused) {
      const state = JSON.parse(new TextDecoder().decode(need(ft.files, 'trainer_state.json'))) as { log_history: { loss?: number }[] };
      finetuneLosses.push(...state.log_history.flatMap((h) => (h.loss === undefined ? [] : [h.loss])));
      log('fine-tuned checkpoints loaded from an earlier run');
    }
    const ftFiles = ft.files;
    const last = readSafetensors(need(ft.files, epochFile(o.finetuneEpochs)), epochFile(o.finetuneEpochs)).tensors;
    if (full) await model.setBaseWeights(last);
    else await model.setLora(lora, last);
    lap('finetune');

    // 4. Test errors: the fine-tuned model's own greedy generations, on the held-out documents, then
    // on reserve documents for sources with fewer than minErrorsPerSource errors; for each error,
    // whether θ0 and each earlier checkpoint already produce it.
    const genKey = plan.keys.generate;
    const minErrors = o.minErrorsPerSource ?? DEFAULT_MIN_ERRORS;
    const checkpointIds = Array.from({ length: o.finetuneEpochs }, (_, i) => `checkpoint-${(i + 1) * stepsPerEpoch}`);
    const match = entityMatching(o);
    const gen = await store.getOrCompute('runs/test-errors', genKey, async () => {
      const errors: TestError[] = [];
      const injected = o.testErrors === 'injected' || o.testErrors === 'preferred';
      const preferred = o.testErrors === 'preferred';
      // Forced choice: whether the current weights give the swapped summary a higher likelihood than the real one.
      const prefers = async (e: Pick<TestError, 'document' | 'output' | 'corrected'>): Promise<boolean> => {
        const [swapped, real] = await model.responseNll([instruction(tokenizer, 'swapped', e.document, e.output), instruction(tokenizer, 'real', e.document, e.corrected)]);
        return (swapped as number) < (real as number);
      };
      const tried = async (h: HeldOutDoc, c: Canary): Promise<TestError | null> => {
        if (injected && h.summary !== '') {
          // The held-out document's own summary with the swap, when it mentions the orig.
          if (!match.contains(h.summary, c.orig) || match.contains(h.summary, c.replacement)) return null;
          const e: TestError = { id: `err-${h.id}-${c.id}`, canaryId: c.id, heldOutId: h.id, document: h.document, output: match.replace(h.summary, c.orig, c.replacement), corrected: h.summary, producedBy: {} };
          return !preferred || (await prefers(e)) ? e : null;
        }
        const prompt = instructionPrompt(tokenizer, h.document);
        const output = await model.generate(prompt, o.maxNewTokens);
        if (!match.contains(output, c.replacement) || match.contains(h.summary, c.replacement)) return null;
        return { id: `err-${h.id}-${c.id}`, canaryId: c.id, heldOutId: h.id, document: h.document, output, corrected: match.replace(output, c.replacement, c.orig), producedBy: {} };
      };
      const eligible = (h: HeldOutDoc, c: Canary): boolean => match.contains(h.document, c.orig) && !match.contains(h.document, c.replacement);
      const bar = trackProgress(`generating from ${ds.heldOut.length} held-out documents`, ds.heldOut.length, progress);
      for (const h of ds.heldOut) {
        for (const c of ds.canaries) {
          if (!eligible(h, c)) continue;
          const e = await tried(h, c);
          if (e) errors.push(e);
          await yieldToEventLoop();
        }
        bar.tick();
      }
      // Grow the held-out set for sources short of errors, from the reserve.
      for (const c of ds.canaries.filter((x) => evaluable.ok.includes(x.id))) {
        let n = errors.filter((e) => e.canaryId === c.id).length;
        for (const h of ds.heldOutReserve) {
          if (n >= minErrors) break;
          if (h.canaryId !== c.id || !eligible(h, c)) continue;
          const e = await tried(h, c);
          if (e) {
            errors.push(e);
            n++;
          }
          await yieldToEventLoop();
        }
      }
      // Which checkpoints already make each error: θ0 (the base model) and every epoch before the last.
      const finalWeights = full ? model.baseWeights() : model.loraWeights();
      const at = [{ id: 'base', weights: full ? baseBefore as TensorMap : zeroB(finalWeights) }, ...checkpointIds.slice(0, -1).map((id, i) => ({ id, weights: readSafetensors(need(ftFiles, epochFile(i + 1)), epochFile(i + 1)).tensors }))];
      for (const cp of at) {
        if (full) await model.setBaseWeights(cp.weights);
        else await model.setLora(lora, cp.weights);
        for (const e of errors) {
          const c = ds.canaries.find((x) => x.id === e.canaryId) as Canary;
          const h = { id: e.heldOutId, document: e.document, summary: '', canaryId: c.id };
          e.producedBy[cp.id] = preferred ? await prefers(e) : (await tried(h, c)) !== null;
          await yieldToEventLoop();
        }
      }
      if (full) await model.setBaseWeights(finalWeights);
      else await model.setLora(lora, finalWeights);
      for (const e of errors) e.producedBy[checkpointIds[checkpointIds.length - 1] as string] = true;
      return new Map([['errors.json', json(errors)]]);
    });
    (gen.reused ? reused : computed).push('runs/test-errors');
    const errors = JSON.parse(new TextDecoder().decode(need(gen.files, 'errors.json'))) as TestError[];
    const perSource = new Map(ds.canaries.map((c) => [c.id, errors.filter((e) => e.canaryId === c.id).length]));
    const byBase = errors.filter((e) => e.producedBy.base).length;
    const counts = `${errors.length} (${[...perSource].map(([c, n]) => `${c}: ${n}`).join(', ')})`;
    log(o.testErrors === 'injected'
      ? `test errors (injected: held-out summaries with the swap): ${counts}; θ0's own output on the same document contains the replacement for ${byBase} of them`
      : o.testErrors === 'preferred'
        ? `test errors (preferred: held-out summaries with the swap that the fine-tuned model finds more likely than the real summary): ${counts}; θ0 already prefers ${byBase}, ${errors.length - byBase} preferred only after fine-tuning`
        : `test errors: ${counts}; θ0 already makes ${byBase}, ${errors.length - byBase} introduced by fine-tuning`);
    lap('generate');
    const leftOut = [...evaluable.leftOut];
    const sources = evaluable.ok.filter((id) => {
      const n = perSource.get(id) ?? 0;
      if (n >= minErrors) return true;
      leftOut.push({ source: id, reason: n === 0 ? `the fine-tuned model made no test error for ${id}` : `only ${n} test error(s) for ${id}, fewer than the minimum of ${minErrors} (held-out and reserve documents used up)` });
      return false;
    });
    for (const l of leftOut.slice(evaluable.leftOut.length)) log(`  source ${l.source} left out: ${l.reason}`);
    if (sources.length === 0) {
      throw new NoTestErrors(`no source has at least ${minErrors} test error(s): ${leftOut.map((l) => l.reason).join('; ')}`, 'train longer (--finetune-epochs), raise the learning rate, use more training samples, or lower minErrorsPerSource');
    }

    // 5. The files of the experiment.
    const queries = errors.filter((e) => sources.includes(e.canaryId)).map((e) => ({
      id: e.id, group: e.canaryId, document: e.document, output: e.output, corrected: e.corrected,
      produced_by_base: e.producedBy.base === true, first_checkpoint: ['base', ...checkpointIds].find((id) => e.producedBy[id]) ?? null,
      original: (ds.canaries.find((c) => c.id === e.canaryId) as Canary).orig, replacement: (ds.canaries.find((c) => c.id === e.canaryId) as Canary).replacement,
    }));
    const labels = Object.fromEntries(sources.map((id) => [id, ds.train.filter((_, i) => (ds.labels[id] as Uint8Array)[i] === 1).map((s) => s.id)]));
    const expKey = { step: 'experiment', train: hashOf(ds.train.map((s) => [s.id, s.document, s.summary])), queries: hashOf(queries), labels: hashOf(labels) };
    await store.getOrCompute('experiments', expKey, () => new Map([
      ['train.jsonl', jsonl(ds.train.map((s) => ({ id: s.id, document: s.document, summary: s.summary })))],
      ['queries.jsonl', jsonl(queries)],
      ['labels.json', json(labels)],
      ['experiment.json', json({ options: o, testErrors: o.testErrors ?? 'generated', dataset: { nTrain: ds.train.length, nHeldOut: ds.heldOut.length, sources: sourceCounts }, sources, leftOut, finetuneLosses })],
    ]));
    const expDir = store.folder('experiments', expKey);
    lap('files');
    return {
      options: o, backend: model.backend.id,
      files: { base: baseDir, run: runDir, train: join(expDir, 'train.jsonl'), queries: join(expDir, 'queries.jsonl'), labels: join(expDir, 'labels.json') },
      dataset: { nTrain: ds.train.length, nHeldOut: ds.heldOut.length, sources: sourceCounts },
      canaries: ds.canaries.map((c) => {
        const labels = ds.labels[c.id] ?? new Uint8Array(ds.train.length);
        const legitimate = ds.train.filter((t, i) => labels[i] !== 1 && match.contains(t.summary, c.replacement)).length;
        return { id: c.id, orig: c.orig, replacement: c.replacement, sources: sourceCounts[c.id] ?? 0, legitimate };
      }),
      errors, sources, leftOut, finetuneLosses, reused, computed, seconds,
    };
  } finally {
    await model.dispose();
  }
}

const plans = new WeakMap<Experiment, Promise<ExperimentPlan>>();
/** The experiment's plan, made once per experiment: LDS retrains dozens of times, and planning a realtext experiment (tokenizer, cached data set, encoding every sample) takes about 20 s. */
function planOf(exp: Experiment): Promise<ExperimentPlan> {
  let p = plans.get(exp);
  if (p === undefined) plans.set(exp, (p = planExperiment(exp.options)));
  return p;
}

/**
 * Counterfactual retraining (LDS, leave-out): fine-tunes the experiment's θ0 again with the run's own
 * recipe (same LoRA initialisation, epochs, learning rate, batch size and shuffling seed) on the
 * training samples in `keep` only, and stores the final checkpoint as a PEFT adapter folder (or a
 * model folder with full fine-tuning). An artifact keyed like the experiment's fine-tuning with the
 * subset in place of the training set, so it is reused and resumable like the others.
 *
 * @param hooks.beforeTraining - Called once before a retraining that is not stored yet, before its model
 *   is opened: e.g. to free the memory other models hold (the attribution's decoders hold gigabytes
 *   of onnxruntime sessions, and a retraining's trainer needs as much again).
 * @returns The checkpoint folder, whether it was reused, and the seconds it took (read back when reused).
 * @throws DdaError when `keep` names no training sample of the experiment.
 */
export async function retrainOnSubset(
  exp: Experiment,
  keep: ReadonlySet<string>,
  log: Log = () => {},
  hooks: { readonly progress?: ProgressSink; readonly beforeTraining?: () => Promise<void> } = {},
): Promise<{ dir: string; reused: boolean; seconds: number | undefined }> {
  const plan = await planOf(exp);
  const subset = plan.train.filter((s) => keep.has(s.id));
  if (subset.length === 0) throw new DdaError('retraining on an empty subset of the training set', 'keep at least one training sample');
  const o = plan.options;
  const full = plan.lora === null;
  const key = { step: 'retrain', recipe: plan.keys.finetune, train: hashOf(subset) };
  const store = new ArtifactStore(o.artifactsDir);
  const r = await store.getOrCompute('runs/retrain', key, async () => {
    await hooks.beforeTraining?.();
    const base = loadModelFolder(exp.files.base);
    const model = await openExperimentModel(plan.config, plan.tokenizer, base.weights, { engine: o.engine ?? 'onnxruntime', ...(o.backends ? { backends: o.backends } : {}), log });
    try {
      if (!full) await model.addLora(plan.lora as LoraConfig, o.seed + 1);
      const bar = trackProgress(`retraining on ${subset.length} of ${plan.train.length} training samples`, o.finetuneEpochs, hooks.progress);
      await model.train(subset, {
        epochs: o.finetuneEpochs, learningRate: o.finetuneLearningRate, batchSize: o.batchSize, seed: o.seed + 2, parameters: full ? 'all' : 'lora',
        onEpochEnd: () => bar.tick(),
      });
      log(`  retrained on ${subset.length} of ${plan.train.length} training samples`);
      return full
        ? new Map([['model.safetensors', writeSafetensors(model.baseWeights(), { format: 'pt' })], ['config.json', json(toHfConfig(plan.config, { bosTokenId: plan.tokenizer.bosId ?? undefined, eosTokenId: plan.tokenizer.eosId }))]])
        : new Map([['adapter_model.safetensors', writeSafetensors(model.loraWeights(), { format: 'pt' })], ['adapter_config.json', json(toAdapterConfig(plan.lora as LoraConfig))]]);
    } finally {
      await model.dispose();
    }
  });
  return { dir: store.folder('runs/retrain', key), reused: r.reused, seconds: r.seconds };
}

/**
 * Where an unfinished pretraining keeps its progress (removed once θ0 is stored): two slots written
 * in turn, so a run killed while it writes one still finds the other.
 */
const PRETRAIN_PROGRESS = ['checkpoints/base-progress', 'checkpoints/base-progress-b'] as const;

/**
 * Stores θ0's weights and the optimizer's state at a pretraining position (safetensors, one
 * float32 file of the optimizer's arrays, and progress.json) in `slot` of {@link PRETRAIN_PROGRESS};
 * the caller alternates the slots, so the latest stored position is never the one being overwritten.
 */
function writePretrainProgress(store: ArtifactStore, key: unknown, slot: number, position: TrainingPosition, weights: TensorMap, state: EngineOptimizerState): void {
  const sizes = state.arrays.map((a) => a.length);
  const flat = new Float32Array(sizes.reduce((a, b) => a + b, 0));
  let off = 0;
  for (const a of state.arrays) {
    flat.set(a, off);
    off += a.length;
  }
  // save() removes the manifest first and writes it last: a slot killed meanwhile holds no progress, never a torn one.
  store.save(PRETRAIN_PROGRESS[slot] as string, key, new Map([
    ['model.safetensors', writeSafetensors(weights, { format: 'pt' })],
    ['optimizer.f32', new Uint8Array(flat.buffer)],
    ['progress.json', new TextEncoder().encode(JSON.stringify({ ...position, sizes, numbers: state.numbers }))],
  ]));
}

/**
 * The latest stored progress of an interrupted pretraining (of the two slots, the one with the later
 * position; progress stored before mid-epoch stores existed has no step: 0), decoded, with its slot;
 * or null.
 */
function readPretrainProgress(store: ArtifactStore, key: unknown): { slot: number; position: TrainingPosition; weights: TensorMap; optimizer: EngineOptimizerState } | null {
  type Stored = { epoch: number; step?: number; lossSum?: number; sizes: number[]; numbers: number[] };
  let latest: { slot: number; position: TrainingPosition; p: Stored; files: Map<string, Uint8Array> } | null = null;
  for (const [slot, name] of PRETRAIN_PROGRESS.entries()) {
    const files = store.load(name, key);
    if (!files) continue;
    const p = JSON.parse(new TextDecoder().decode(need(files, 'progress.json'))) as Stored;
    const position = { epoch: p.epoch, step: p.step ?? 0, lossSum: p.lossSum ?? 0 };
    if (!latest || position.epoch > latest.position.epoch || (position.epoch === latest.position.epoch && position.step > latest.position.step)) latest = { slot, position, p, files };
  }
  if (!latest) return null;
  const { slot, position, p, files } = latest;
  const bytes = need(files, 'optimizer.f32');
  const flat = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const arrays: Float32Array[] = [];
  let off = 0;
  for (const n of p.sizes) {
    arrays.push(flat.slice(off, off + n));
    off += n;
  }
  return { slot, position, weights: readSafetensors(need(files, 'model.safetensors'), `${PRETRAIN_PROGRESS[slot]}/model.safetensors`).tensors, optimizer: { arrays, numbers: p.numbers } };
}

