import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DdaError, type CheckpointInfo, type GradientMatrix, type ScoreMatrix, type Scorer, type ScoringInput, type SourceSpec,
  type ModelStepOptions, type TextSample, averageEvaluations, createScoreMatrix, scoreForFineTuned, yieldToEventLoop, debiasers, denoisers, evaluateSources, scorers, type SourceEvaluation,
} from '@dda/core';
import {
  DEFAULT_LORA, DecoderModel, WordTokenizer, applyChatTemplate, initDecoderWeights, readSafetensors, resolveModelSpec,
  startTfjsBackend, toHfConfig, writeSafetensors, type DecoderConfig, type LoraConfig, type TensorMap, type Tokenizer,
} from '@dda/model';
import {
  SYSTEM_PROMPT, buildFromDocSummaries, buildHallucinationDataset, containsWholeWord, loadDocSummaryCsv, loadDocSummaryJsonl, makeCanary,
  replaceWholeWord, userPrompt, type HallucinationDataset,
} from '@dda/dataset-hallucination';
import { ensurePlugins } from './plugins.js';
import { ArtifactStore, hashOf } from './artifacts.js';
import { OnnxDecoder, startOnnxRuntime } from '@dda/backend-onnxruntime';
import { openGradientBlocks, storeGradientBlocks } from './gradient-store.js';
import { trackProgress, type ProgressSink } from './progress.js';

/** Everything that defines a DDA demo run. Same options + same seed = same scores. */
export interface DdaRunOptions {
  readonly seed: number;
  /** Folder for checkpoints, gradients, scores and reports (reused across runs when inputs match). */
  readonly outDir: string;
  readonly preset: string;
  readonly nTrain: number;
  readonly nHeldOut: number;
  readonly nPretrain: number;
  readonly pretrainEpochs: number;
  readonly pretrainLearningRate: number;
  readonly finetuneEpochs: number;
  readonly finetuneLearningRate: number;
  readonly batchSize: number;
  readonly loraRank: number;
  /** Scorer id (registered in @dda/core's `scorers`). */
  readonly scorer: string;
  /** β of the debias term. */
  readonly beta: number;
  /** Debiaser id for the `debias` and `dda` rows (default `raw`, the paper's formula). */
  readonly debiaser: string;
  /** Denoiser id for the `denoise` and `dda` rows (default `mean`, the paper's average). */
  readonly denoiser: string;
  /** k of recall@k. */
  readonly k: number;
  /** Most tokens generated per held-out document. */
  readonly maxNewTokens: number;
  /** tfjs backends to try in order (default: by priority). */
  readonly backends?: readonly string[];
  /** Entity swaps (default England → China, Wales → Scotland); synthetic data needs places of its generator. */
  readonly canaries?: readonly { readonly orig: string; readonly replacement: string }[];
  /** A user's document/summary JSON Lines file to use instead of the synthetic news (see buildFromDocSummaries). */
  readonly dataFile?: string;
  /** Fraction of eligible training samples whose summary gets the canary swap (default 0.6). */
  readonly swapRate?: number;
  /** Fraction of the synthetic pretraining corpus that is knowledge-bias text (default 0.3). */
  readonly biasRate?: number;
  /**
   * What fine-tuning trains (default `lora`): LoRA adapters (rank `loraRank`, all linear maps), or
   * `full`: every parameter; gradients are then taken over every parameter too.
   */
  readonly finetune?: 'lora' | 'full';
  /**
   * Engine of the per-example gradients (default `tfjs`): `onnxruntime` runs the decoder's ONNX
   * graph, forward and backward (@dda/backend-onnxruntime; agrees with tfjs to about 1e-6 relative,
   * several times faster), falling back to nothing: it fails with the reason if onnxruntime cannot start.
   */
  readonly gradientEngine?: 'tfjs' | 'onnxruntime';
}

export const DEFAULT_RUN_OPTIONS: DdaRunOptions = {
  seed: 0,
  outDir: 'dda-out',
  preset: 'llama2-tiny',
  nTrain: 240,
  nHeldOut: 40,
  nPretrain: 1500,
  pretrainEpochs: 3,
  pretrainLearningRate: 3e-3,
  finetuneEpochs: 3,
  finetuneLearningRate: 3e-3,
  batchSize: 16,
  loraRank: 8,
  scorer: 'grad-dot',
  beta: 1,
  debiaser: 'raw',
  denoiser: 'mean',
  k: 20,
  maxNewTokens: 24,
};

/** One test error z_e: the fine-tuned model's own output that contains a canary's replacement. */
export interface TestError {
  readonly id: string;
  readonly canaryId: string;
  readonly heldOutId: string;
  readonly prompt: string;
  /** The erroneous generation. */
  readonly output: string;
  /** The same output with the replacement swapped back to the original entity. */
  readonly corrected: string;
}

/** One row of the result table: a variant of the attribution (plain, debias, denoise, dda) on one source. */
export interface ResultRow extends SourceEvaluation {
  readonly variant: string;
  readonly scorer: string;
  readonly description: string;
}

export interface DdaRunResult {
  readonly options: DdaRunOptions;
  readonly backend: string;
  readonly dataset: { readonly nTrain: number; readonly nHeldOut: number; readonly sources: Record<string, number> };
  readonly errors: readonly TestError[];
  readonly rows: readonly ResultRow[];
  /** Final scores of every variant (n_train × n_test). */
  readonly scores: ReadonlyMap<string, ScoreMatrix>;
  /** Mean training loss per fine-tuning epoch. */
  readonly finetuneLosses: readonly number[];
  /** Mean |score| of the base (θ0) and final-checkpoint matrices: the scale mismatch raw debias suffers from. */
  readonly scoreScale: { readonly base: number; readonly final: number };
  /** Steps that were loaded from earlier runs instead of recomputed. */
  readonly reused: readonly string[];
  readonly seconds: Record<string, number>;
}

/** A sample in the instruction format of METHOD.md through the tiny models' word-level chat template (a model folder's tokenizer applies its own). */
export function instructionSample(id: string, document: string, response: string): TextSample {
  return { id, prompt: applyChatTemplate(SYSTEM_PROMPT, userPrompt(document)), response };
}

function tensorsToFiles(name: string, t: TensorMap, meta: Record<string, string> = {}): Map<string, Uint8Array> {
  return new Map([[name, writeSafetensors(t, meta)]]);
}
function need(files: Map<string, Uint8Array>, name: string): Uint8Array {
  const b = files.get(name);
  if (!b) throw new DdaError(`artifact file '${name}' missing`);
  return b;
}


/** The fine-tuned model made no hallucination to attribute: nothing to evaluate (a benchmark reports the cell as skipped). */
export class NoTestErrors extends DdaError {}

/** The bytes of a folder's tokenizer files, for cache keys. */
function tokenizerFiles(dir: string): string[] {
  return ['tokenizer.json', 'tokenizer_config.json'].map((f) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : ''));
}

/** Logger with elapsed time. */
export type Log = (line: string) => void;

/**
 * A fine-tuned experiment, ready to be attributed: the data, the model with its base and epoch
 * checkpoints (LoRA adapters), and the test errors (the fine-tuned model's hallucinations) grouped
 * by source. Built by {@link trainExperiment}; scored by {@link scoreCheckpoints}.
 */
export interface Experiment {
  readonly options: DdaRunOptions;
  readonly backend: string;
  readonly config: DecoderConfig;
  readonly model: DecoderModel;
  readonly lora: LoraConfig;
  /** What was fine-tuned, and what gradients are taken over: the LoRA adapters, or all parameters. */
  readonly parameters: 'lora' | 'all';
  /**
   * `base` (θ0) then `epoch-1..N`: the LoRA adapter at each (θ0 has the initial, zero-effect
   * adapter), or with full fine-tuning every base weight.
   */
  readonly checkpoints: readonly { readonly id: string; readonly weights: TensorMap }[];
  /** Puts the model at a checkpoint (sets its adapter, or its base weights). */
  activate(checkpoint: Experiment['checkpoints'][number]): void;
  /** The epoch checkpoints' metadata (for denoisers). */
  readonly epochInfos: readonly CheckpointInfo[];
  readonly train: readonly TextSample[];
  /** The test errors as samples: prompt + erroneous output. */
  readonly test: readonly TextSample[];
  readonly errors: readonly TestError[];
  /** Sources with at least one test error, with their test ids and true-source labels. */
  readonly sources: readonly SourceSpec[];
  readonly dataset: DdaRunResult['dataset'];
  readonly finetuneLosses: readonly number[];
  readonly store: ArtifactStore;
  /** Cache key of the fine-tuning run; everything computed from its checkpoints depends on it. */
  readonly finetuneKey: unknown;
  /** Steps loaded from earlier runs (appended to by scoring). */
  readonly reused: string[];
  readonly seconds: Record<string, number>;
  readonly progress?: ProgressSink;
  /** Frees the model's tensors. */
  dispose(): void;
}

/** Scores of one scorer at every checkpoint of an experiment. */
export interface CheckpointScores {
  readonly scorer: Scorer;
  /** At θ0. */
  readonly base: ScoreMatrix;
  /** At epoch 1..N, in order. */
  readonly epochs: readonly ScoreMatrix[];
}

/** The data set of a run: the synthetic news set, or a user's JSONL / CSV file with the same protocol. */
async function loadDataset(o: DdaRunOptions): Promise<HallucinationDataset> {
  const canaries = o.canaries?.map((c) => makeCanary(c.orig, c.replacement));
  if (o.dataFile) {
    let text: string;
    try {
      text = readFileSync(o.dataFile, 'utf8');
    } catch (e) {
      throw new DdaError(`cannot read data file '${o.dataFile}': ${(e as Error).message}`, 'give the path of a JSON Lines (.jsonl) or CSV (.csv) file of document/summary records');
    }
    const rows = /\.csv$/i.test(o.dataFile) ? await loadDocSummaryCsv(text, o.dataFile) : loadDocSummaryJsonl(text, o.dataFile);
    if (!canaries) throw new DdaError(`data file '${o.dataFile}' needs canaries`, 'name the entity swaps to inject, e.g. canaries: [{ "orig": "England", "replacement": "China" }]');
    return buildFromDocSummaries(rows, { seed: o.seed, canaries, nHeldOut: o.nHeldOut, ...(o.swapRate !== undefined ? { swapRate: o.swapRate } : {}) });
  }
  return buildHallucinationDataset({
    seed: o.seed, nTrain: o.nTrain, nHeldOut: o.nHeldOut, nPretrain: o.nPretrain,
    ...(canaries ? { canaries } : {}), ...(o.swapRate !== undefined ? { swapRate: o.swapRate } : {}),
    ...(o.biasRate !== undefined ? { biasRate: o.biasRate } : {}),
  });
}

/**
 * Steps 1–4 of the pipeline, each cached in the artifact store:
 * dataset → pretrain θ0 (all parameters) → LoRA fine-tune (one checkpoint per epoch) → test errors
 * (greedy generations on held-out documents that contain a canary's replacement).
 * The caller must `dispose()` the experiment.
 */
export async function trainExperiment(partial: Partial<DdaRunOptions> = {}, log: Log = () => {}, progress?: ProgressSink): Promise<Experiment> {
  await ensurePlugins();
  const o: DdaRunOptions = { ...DEFAULT_RUN_OPTIONS, ...partial };
  const spec = resolveModelSpec(o.preset);
  const seconds: Record<string, number> = {};
  const reused: string[] = [];
  const t0 = Date.now();
  let tStep = t0;
  const lap = (name: string): void => {
    const now = Date.now();
    seconds[name] = (now - tStep) / 1000;
    tStep = now;
  };
  const backend = await startTfjsBackend(o.backends, log);
  log(`backend: ${backend.id} (${backend.device})`);

  // 1. Data set.
  const ds = await loadDataset(o);
  const dataHash = hashOf({ pretrain: ds.pretrainCorpus, train: ds.train, heldOut: ds.heldOut, canaries: ds.canaries });
  const sourceCounts: Record<string, number> = {};
  for (const c of ds.canaries) sourceCounts[c.id] = (ds.labels[c.id] ?? new Uint8Array()).reduce((a, b) => a + b, 0);
  log(`data: ${ds.train.length} training samples, ${ds.heldOut.length} held-out documents, ${ds.pretrainCorpus.length} pretraining texts; true sources ${JSON.stringify(sourceCounts)}`);
  lap('dataset');

  // 2. Tokenizer and model. A preset gets a word-level tokenizer built on the data and is pretrained
  // from a seed; a model folder brings its own tokenizer (and chat template) and, if it has weights, θ0.
  let tokenizer: Tokenizer;
  let config: DecoderConfig;
  let folderWeights: TensorMap | null = null;
  if (spec.kind === 'preset') {
    const word = WordTokenizer.fromCorpus([
      ...ds.pretrainCorpus,
      ...[...ds.train, ...ds.heldOut].flatMap((s) => [instructionSample(s.id, s.document, s.summary).prompt, s.summary]),
    ]);
    tokenizer = word;
    config = { ...spec.config, vocabSize: word.size };
  } else {
    if (!spec.tokenizer) {
      throw new DdaError(`model folder '${spec.dir}' has no tokenizer.json`, 'add the model\'s tokenizer (tokenizer.json, and tokenizer_config.json for its chat template)');
    }
    tokenizer = spec.tokenizer;
    config = spec.config;
    folderWeights = spec.weights;
    log(`model folder ${spec.dir}: ${spec.family}, ${config.numLayers} layers, hidden ${config.hiddenSize}, vocabulary ${config.vocabSize} (${tokenizer.kind} tokenizer)${folderWeights ? '' : '; no weights: initialised from the seed and pretrained'}`);
  }
  const chatSample = (id: string, document: string, response: string): TextSample => ({ id, prompt: tokenizer.applyChatTemplate(SYSTEM_PROMPT, userPrompt(document)), response });
  const train = ds.train.map((s) => chatSample(s.id, s.document, s.summary));
  const store = new ArtifactStore(o.outDir);
  const model = new DecoderModel(config, tokenizer, folderWeights ?? initDecoderWeights(config, o.seed));
  try {
    const baseKey = folderWeights && spec.kind === 'folder'
      ? { step: 'model-folder', dir: spec.dir, config, weights: hashOf([...folderWeights].map(([n, t]) => [n, t.shape, t.data])), tokenizer: hashOf(tokenizerFiles(spec.dir)) }
      : { step: 'pretrain', dataHash, config, seed: o.seed, epochs: o.pretrainEpochs, lr: o.pretrainLearningRate, batch: o.batchSize, vocab: spec.kind === 'preset' ? hashOf((tokenizer as WordTokenizer).vocab) : hashOf(tokenizerFiles(spec.dir)) };
    if (folderWeights) {
      log('θ0: the model folder\'s weights (no pretraining)');
    } else {
      const base = await store.getOrCompute('checkpoints/base', baseKey, async () => {
        log(`pretraining θ0 (${o.pretrainEpochs} epochs over ${ds.pretrainCorpus.length} texts, all parameters)`);
        const pre = ds.pretrainCorpus.map((text, i) => ({ id: `pre-${i}`, prompt: '', response: text }));
        const bar = trackProgress(`pretraining θ0 (${o.preset})`, o.pretrainEpochs, progress);
        await model.train(pre, {
          epochs: o.pretrainEpochs, learningRate: o.pretrainLearningRate, batchSize: o.batchSize, seed: o.seed, parameters: 'all',
          onEpochEnd: (e, l) => {
            log(`  pretrain epoch ${e}: loss ${l.toFixed(3)} nats/token`);
            bar.tick();
          },
        });
        // A Hugging Face model folder (config.json, model.safetensors, tokenizer.json): `--preset <this folder>` loads it.
        const files = new Map([
          ['model.safetensors', writeSafetensors(model.baseWeights(), { format: 'pt' })],
          ['config.json', new TextEncoder().encode(JSON.stringify(toHfConfig(config, { bosTokenId: tokenizer.bosId ?? undefined, eosTokenId: tokenizer.eosId }), null, 2))],
        ]);
        if (tokenizer instanceof WordTokenizer) files.set('tokenizer.json', new TextEncoder().encode(JSON.stringify(tokenizer.toJSON())));
        return files;
      });
      if (base.reused) {
        reused.push('checkpoints/base');
        model.setBaseWeights(readSafetensors(need(base.files, 'model.safetensors'), 'checkpoints/base/model.safetensors').tensors);
        log('pretrained θ0 loaded from an earlier run');
      }
    }
    lap('pretrain');

    // 3. Fine-tuning (LoRA adapters, or every parameter), one checkpoint per epoch.
    const full = o.finetune === 'full';
    const lora = { ...DEFAULT_LORA, rank: o.loraRank, alpha: 2 * o.loraRank };
    if (!full) model.addLora(lora, o.seed + 1);
    const initialWeights = full ? model.baseWeights() : model.loraWeights();
    const ftKey = full
      ? { step: 'finetune', base: baseKey, parameters: 'all', seed: o.seed, epochs: o.finetuneEpochs, lr: o.finetuneLearningRate, batch: o.batchSize }
      : { step: 'finetune', base: baseKey, lora, seed: o.seed, epochs: o.finetuneEpochs, lr: o.finetuneLearningRate, batch: o.batchSize };
    const epochFile = (e: number): string => `epoch-${e}/${full ? 'model' : 'adapter_model'}.safetensors`;
    const epochWeights: TensorMap[] = [];
    const finetuneLosses: number[] = [];
    const ft = await store.getOrCompute('checkpoints/finetune', ftKey, async () => {
      log(`fine-tuning ${full ? 'every parameter' : `LoRA (rank ${lora.rank})`} for ${o.finetuneEpochs} epochs on ${train.length} samples`);
      const files = new Map<string, Uint8Array>();
      const bar = trackProgress(`fine-tuning ${full ? 'all parameters' : 'LoRA'} (${o.preset})`, o.finetuneEpochs, progress);
      await model.train(train, {
        epochs: o.finetuneEpochs, learningRate: o.finetuneLearningRate, batchSize: o.batchSize, seed: o.seed + 2, parameters: full ? 'all' : 'lora',
        onEpochEnd: (e, l) => {
          log(`  fine-tune epoch ${e}: loss ${l.toFixed(3)} nats/token`);
          finetuneLosses.push(l);
          files.set(epochFile(e), writeSafetensors(full ? model.baseWeights() : model.loraWeights(), { format: 'pt', loss: String(l) }));
          bar.tick();
        },
      });
      if (!full) files.set('adapter_config.json', new TextEncoder().encode(JSON.stringify({ peft_type: 'LORA', r: lora.rank, lora_alpha: lora.alpha, target_modules: lora.targets }, null, 2)));
      return files;
    });
    for (let e = 1; e <= o.finetuneEpochs; e++) {
      const st = readSafetensors(need(ft.files, epochFile(e)), epochFile(e));
      epochWeights.push(st.tensors);
      if (ft.reused) finetuneLosses.push(Number(st.metadata.loss));
    }
    if (ft.reused) reused.push('checkpoints/finetune');
    const activate = (cp: { readonly weights: TensorMap }): void => (full ? model.setBaseWeights(cp.weights) : model.setLora(lora, cp.weights));
    lap('finetune');

    // 4. Test errors: the fine-tuned model's own greedy generations.
    activate({ weights: epochWeights[epochWeights.length - 1] as TensorMap });
    const errors: TestError[] = [];
    for (const h of ds.heldOut) {
      for (const c of ds.canaries) {
        if (!containsWholeWord(h.document, c.orig) || containsWholeWord(h.document, c.replacement)) continue;
        const prompt = chatSample(h.id, h.document, h.summary).prompt;
        const output = model.generate(prompt, o.maxNewTokens);
        await yieldToEventLoop();
        if (containsWholeWord(output, c.replacement) && !containsWholeWord(h.summary, c.replacement)) {
          errors.push({ id: `err-${h.id}-${c.id}`, canaryId: c.id, heldOutId: h.id, prompt, output, corrected: replaceWholeWord(output, c.replacement, c.orig) });
        }
      }
    }
    const perSource = new Map(ds.canaries.map((c) => [c.id, errors.filter((e) => e.canaryId === c.id).map((e) => e.id)]));
    log(`test errors: ${errors.length} (${[...perSource].map(([c, ids]) => `${c}: ${ids.length}`).join(', ')})`);
    lap('generate');
    const sources: SourceSpec[] = ds.canaries
      .filter((c) => (perSource.get(c.id) ?? []).length > 0)
      .map((c) => ({ id: c.id, testIds: perSource.get(c.id) ?? [], labels: ds.labels[c.id] as Uint8Array }));
    if (sources.length === 0) {
      throw new NoTestErrors('the fine-tuned model produced no test errors (no generation contains a canary replacement)', 'train longer (--finetune-epochs), raise the learning rate, or use more training samples');
    }
    return {
      options: o, backend: backend.id, config, model, lora, parameters: full ? 'all' : 'lora', activate,
      checkpoints: [{ id: 'base', weights: initialWeights }, ...epochWeights.map((w, i) => ({ id: `epoch-${i + 1}`, weights: w }))],
      epochInfos: epochWeights.map((_, i) => ({ id: `epoch-${i + 1}`, epoch: i + 1, learningRate: o.finetuneLearningRate })),
      train, test: errors.map((e) => ({ id: e.id, prompt: e.prompt, response: e.output })), errors, sources,
      dataset: { nTrain: ds.train.length, nHeldOut: ds.heldOut.length, sources: sourceCounts },
      finetuneLosses, store, finetuneKey: ftKey, reused, seconds,
      ...(progress ? { progress } : {}),
      dispose: () => model.dispose(),
    };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

function scoresToFiles(m: ScoreMatrix): Map<string, Uint8Array> {
  const meta = { trainIds: m.trainIds, testIds: m.testIds, provenance: m.provenance };
  return new Map([
    ['scores.f64', new Uint8Array(m.values.buffer.slice(m.values.byteOffset, m.values.byteOffset + m.values.byteLength))],
    ['scores.json', new TextEncoder().encode(JSON.stringify(meta))],
  ]);
}
function scoresFromFiles(files: Map<string, Uint8Array>): ScoreMatrix {
  const meta = JSON.parse(new TextDecoder().decode(need(files, 'scores.json'))) as Pick<ScoreMatrix, 'trainIds' | 'testIds' | 'provenance'>;
  const bytes = need(files, 'scores.f64');
  const values = new Float64Array(bytes.byteLength / 8);
  new Uint8Array(values.buffer).set(bytes);
  return createScoreMatrix(meta.trainIds, meta.testIds, values, meta.provenance);
}

/**
 * Per-example gradients of the LoRA parameters at one checkpoint, of the training samples (loss
 * over the summary tokens) or of the test errors (loss over the erroneous output), cached in the
 * artifact store.
 */
export async function gradientsAt(exp: Experiment, checkpoint: string, which: 'train' | 'test', log: Log = () => {}): Promise<GradientMatrix> {
  return (await gradientBlocksAt(exp, checkpoint, which, log)).readAll();
}

/**
 * The same gradients as an on-disk store read block by block (see gradient-store.ts): computed
 * block by block the first time, so neither computing nor streaming them holds the whole set in memory.
 */
export async function gradientBlocksAt(exp: Experiment, checkpoint: string, which: 'train' | 'test', log: Log = () => {}): Promise<ReturnType<typeof openGradientBlocks>> {
  const cp = exp.checkpoints.find((c) => c.id === checkpoint);
  if (!cp) throw new DdaError(`no checkpoint '${checkpoint}'`, `use one of: ${exp.checkpoints.map((c) => c.id).join(', ')}`);
  const samples = which === 'train' ? exp.train : exp.test;
  const onnx = exp.options.gradientEngine === 'onnxruntime';
  const key = { step: 'gradients', format: 'blocks', which, checkpoint: cp.id, ft: exp.finetuneKey, samples: hashOf(samples), ...(onnx ? { engine: 'onnxruntime' } : {}) };
  let bar: { tick(n?: number): void } | undefined;
  let decoder: OnnxDecoder | undefined;
  try {
    const r = await storeGradientBlocks(exp.store, `gradients/${cp.id}/${which}`, key, samples.map((s) => s.id), async (start, end) => {
      if (!bar) {
        log(`  gradients of ${samples.length} ${which} samples at ${cp.id}${onnx ? ' (onnxruntime)' : ''}`);
        bar = trackProgress(`gradients of ${samples.length} ${which} samples at ${cp.id}`, samples.length, exp.progress);
      }
      const part = samples.slice(start, end);
      if (onnx) {
        decoder ??= await onnxDecoderAt(exp, cp, log);
        const g = await decoder.perExampleGradients(part.map((x) => x.id), part.map((x) => exp.model.encode(x)), cp.id, () => bar?.tick());
        return { ...g, parameterShapes: g.parameterNames.map((n) => shapeOf(exp, cp, n)) };
      }
      exp.activate(cp);
      const g = exp.model.perExampleGradients(part, exp.parameters, cp.id, () => bar?.tick());
      await yieldToEventLoop(); // let progress, signals and IPC through between blocks
      return g;
    });
    if (r.reused) exp.reused.push(`gradients/${cp.id}/${which}`);
    return r.blocks as ReturnType<typeof openGradientBlocks>;
  } finally {
    await decoder?.release();
  }
}

/** The decoder at a checkpoint as an ONNX graph on onnxruntime (base weights baked in, the adapter fed). */
async function onnxDecoderAt(exp: Experiment, cp: Experiment['checkpoints'][number], log: Log): Promise<OnnxDecoder> {
  const backend = await startOnnxRuntime(undefined, log);
  const full = exp.parameters === 'all';
  exp.activate(cp);
  return new OnnxDecoder(backend, exp.config, full ? null : exp.lora, full ? cp.weights : exp.model.baseWeights(), full ? null : cp.weights, { parameters: exp.parameters });
}

/** Shape of a parameter tensor at a checkpoint (from the adapter or the base weights). */
function shapeOf(exp: Experiment, cp: Experiment['checkpoints'][number], name: string): number[] {
  const t = cp.weights.get(name) ?? exp.model.baseWeights().get(name);
  if (!t) throw new DdaError(`onnxruntime gradients name an unknown parameter '${name}'`);
  return [...t.shape];
}

/**
 * Step 5: one scorer at θ0 and at every epoch checkpoint. Per-example gradients and score matrices
 * are cached in the artifact store, so several scorers share the gradients and a re-run or a
 * resumed run recomputes nothing that finished.
 */
export async function scoreCheckpoints(exp: Experiment, scorerId: string, log: Log = () => {}): Promise<CheckpointScores> {
  await ensurePlugins();
  const scorer = await scorers.create(scorerId, {});
  const at = new Map<string, ScoreMatrix>();
  for (const cp of exp.checkpoints) at.set(cp.id, await scoreOneCheckpoint(exp, scorer, cp, log));
  return {
    scorer,
    base: at.get('base') as ScoreMatrix,
    epochs: exp.checkpoints.slice(1).map((c) => at.get(c.id) as ScoreMatrix),
  };
}

/**
 * Only the scorer's answer for the fine-tuned model (the `plain` row): the final checkpoint, or
 * every epoch checkpoint combined when the scorer declares `combine` (tracin-cp); θ0 is not scored.
 * For baselines that DDA is not applied to, e.g. the expensive `cea` in a leaderboard.
 */
export async function scoreFineTuned(exp: Experiment, scorerId: string, log: Log = () => {}): Promise<{ scorer: Scorer; matrix: ScoreMatrix }> {
  await ensurePlugins();
  const scorer = await scorers.create(scorerId, {});
  const epochs = exp.checkpoints.slice(1);
  const needed = scorer.combine ? epochs : epochs.slice(-1);
  const matrices: ScoreMatrix[] = [];
  for (const cp of needed) matrices.push(await scoreOneCheckpoint(exp, scorer, cp, log));
  return { scorer, matrix: await scoreForFineTuned(scorer, matrices, exp.epochInfos.slice(-needed.length)) };
}

/**
 * The second reading of the paper's debias term (METHOD.md): the scorer over the training gradients
 * at θ0 and the test gradients at the final checkpoint θ', e.g. ⟨∇ℓ(z_t, θ0), ∇f(z_e, θ')⟩ for
 * grad-dot. Gradient scorers only; cached like every score matrix.
 */
export async function scoreCrossBase(exp: Experiment, scorerId: string, log: Log = () => {}): Promise<ScoreMatrix> {
  await ensurePlugins();
  const scorer = await scorers.create(scorerId, {});
  if (!scorer.needs.includes('gradients')) throw new DdaError(`the cross-checkpoint debias term needs a gradient scorer; '${scorerId}' is not one`, 'use grad-dot, grad-cos, an influence function or trak');
  const final = exp.checkpoints[exp.checkpoints.length - 1] as Experiment['checkpoints'][number];
  const id = `base×${final.id}`;
  const input: ScoringInput = {
    checkpoint: id, train: exp.train, test: exp.test,
    trainGradients: () => gradientsAt(exp, 'base', 'train', log),
    testGradients: () => gradientsAt(exp, final.id, 'test', log),
  };
  return storedScores(exp, scorer, 'cross-base', id, input);
}

/** The scorer's scores on `input`, cached as the artifact `scores/<scorer>/<name>`. */
async function storedScores(exp: Experiment, scorer: Scorer, name: string, checkpoint: string, input: ScoringInput): Promise<ScoreMatrix> {
  const r = await exp.store.getOrCompute(`scores/${scorer.id}/${name}`, scoresKey(exp, scorer, checkpoint), async () => scoresToFiles(await scorer.score(input)));
  if (r.reused) exp.reused.push(`scores/${scorer.id}/${name}`);
  return scoresFromFiles(r.files);
}

/** Cache key of one scorer's scores at one checkpoint of an experiment. */
function scoresKey(exp: Experiment, scorer: Scorer, checkpoint: string): unknown {
  const engine = exp.options.gradientEngine === 'onnxruntime' ? { engine: 'onnxruntime' } : {};
  return { step: 'scores', scorer: scorer.id, description: scorer.description, checkpoint, ft: exp.finetuneKey, train: hashOf(exp.train), test: hashOf(exp.test), ...engine };
}

/** Whether the scores of `scorer` at every checkpoint are already stored (intact), so scoring needs no gradients. */
export function hasStoredScores(exp: Experiment, scorer: Scorer): boolean {
  return exp.checkpoints.every((cp) => exp.store.locate(`scores/${scorer.id}/${cp.id}`, scoresKey(exp, scorer, cp.id)) !== undefined);
}

/** One scorer at one checkpoint, cached in the artifact store. */
async function scoreOneCheckpoint(exp: Experiment, scorer: Scorer, cp: Experiment['checkpoints'][number], log: Log): Promise<ScoreMatrix> {
  const { model, train, test, config } = exp;
  const representations = (samples: readonly TextSample[]) => async () => {
    exp.activate(cp);
    return { ids: samples.map((s) => s.id), dim: config.hiddenSize, rows: model.responseRepresentations(samples), checkpoint: cp.id };
  };
  const input: ScoringInput = {
    checkpoint: cp.id, train, test,
    trainGradients: () => gradientsAt(exp, cp.id, 'train', log),
    trainGradientBlocks: () => gradientBlocksAt(exp, cp.id, 'train', log),
    testGradients: () => gradientsAt(exp, cp.id, 'test', log),
    trainRepresentations: representations(train),
    testRepresentations: representations(test),
    // For contrastive scorers (cea): the corrected outputs, and optimizer steps from this checkpoint (adapter restored after).
    testCorrections: exp.errors.map((e) => ({ id: e.id, prompt: e.prompt, response: e.corrected })),
    // Optimizer steps are offered on LoRA adapters only (restoring every base weight is not implemented).
    ...(exp.parameters === 'lora' ? {
      model: {
        lossesAfterSteps: async (updateOn: readonly TextSample[], evaluate: readonly TextSample[], opts: ModelStepOptions) => {
          exp.activate(cp);
          return model.lossesAfterLoraSteps(updateOn, evaluate, opts);
        },
      },
    } : {}),
  };
  return storedScores(exp, scorer, cp.id, cp.id, input);
}

/** A scorer that does not use the model (bm25, random): same scores at every checkpoint, so debias and denoise do not apply. */
export function isModelFree(scorer: Scorer): boolean {
  return !scorer.needs.includes('gradients') && !scorer.needs.includes('representations') && !scorer.needs.includes('model');
}

/** A named score matrix to evaluate: a variant of the attribution (plain, debias, denoise, dda, ...). */
export interface Variant {
  readonly variant: string;
  readonly description: string;
  readonly matrix: ScoreMatrix;
}

/**
 * The `plain` variant: the scorer's own answer for the fine-tuned model, its scores at the final
 * checkpoint, or their combination over the epoch checkpoints when the scorer declares one (tracin-cp).
 */
export async function plainVariant(s: CheckpointScores, epochInfos: readonly CheckpointInfo[]): Promise<Variant> {
  return {
    variant: 'plain',
    description: s.scorer.combine ? `${s.scorer.id} combined over the ${s.epochs.length} epoch checkpoints by denoiser '${s.scorer.combine.denoiser}'` : `${s.scorer.id} at the final checkpoint (epoch ${s.epochs.length})`,
    matrix: await scoreForFineTuned(s.scorer, s.epochs, epochInfos),
  };
}

/**
 * Step 6: the variants of the demo: plain (final checkpoint, or the scorer's `combine` over the epochs), debias, denoise and DDA with the
 * run's debiaser and denoiser, and the z-scored debias / DDA. Model-free scorers get plain only.
 */
export async function ddaVariants(s: CheckpointScores, epochInfos: readonly CheckpointInfo[], o: Pick<DdaRunOptions, 'debiaser' | 'denoiser' | 'beta'>): Promise<Variant[]> {
  await ensurePlugins();
  const plain = await plainVariant(s, epochInfos);
  const final = plain.matrix;
  if (isModelFree(s.scorer)) return [plain];
  const debias = await debiasers.create(o.debiaser, { beta: o.beta });
  const zDebias = await debiasers.create('zscore', { beta: o.beta });
  const denoise = await denoisers.create(o.denoiser, {});
  const denoised = denoise.denoise(s.epochs, epochInfos);
  return [
    plain,
    { variant: 'debias', description: `debiaser '${o.debiaser}' (β=${o.beta}): final vs base`, matrix: debias.debias(final, s.base) },
    { variant: 'denoise', description: `denoiser '${o.denoiser}' over the ${s.epochs.length} epoch checkpoints`, matrix: denoised },
    { variant: 'dda', description: `debiaser '${o.debiaser}' (β=${o.beta}) over denoiser '${o.denoiser}'`, matrix: debias.debias(denoised, s.base) },
    { variant: 'debias-zscore', description: 'z-scored final − β·z-scored base (per test output)', matrix: zDebias.debias(final, s.base) },
    { variant: 'dda-zscore', description: 'z-scored mean over epochs − β·z-scored base', matrix: zDebias.debias(denoised, s.base) },
  ];
}

/** ROC-AUC and recall@k of one variant per source, then their average (source `average`). */
export function evaluateVariant(exp: Pick<Experiment, 'sources'>, v: Variant, scorer: string, k: number): ResultRow[] {
  const evals = evaluateSources(v.matrix, exp.sources, k);
  return [...evals, averageEvaluations(evals)].map((e) => ({ ...e, variant: v.variant, scorer, description: v.description }));
}

/** Mean |score| of a matrix. */
function meanAbs(m: ScoreMatrix): number {
  return m.values.reduce((a, b) => a + Math.abs(b), 0) / Math.max(m.values.length, 1);
}

/**
 * The whole DDA job, end to end, on a synthetic hallucination-tracing set:
 * dataset → pretrain θ0 → LoRA fine-tune (checkpoint per epoch) → test errors (greedy generations
 * containing a canary's replacement) → per-example gradients at θ0 and every epoch → scores →
 * debias / denoise / DDA → ROC-AUC and recall@k per source.
 */
export async function runDda(partial: Partial<DdaRunOptions> = {}, log: Log = () => {}, progress?: ProgressSink): Promise<DdaRunResult> {
  await ensurePlugins();
  const o: DdaRunOptions = { ...DEFAULT_RUN_OPTIONS, ...partial };
  // Resolve the plugins first, so that a wrong id fails before minutes of training.
  await scorers.create(o.scorer, {});
  await debiasers.create(o.debiaser, { beta: o.beta });
  await denoisers.create(o.denoiser, {});
  const t0 = Date.now();
  const exp = await trainExperiment(o, log, progress);
  try {
    let tStep = Date.now();
    const s = await scoreCheckpoints(exp, o.scorer, log);
    exp.seconds['gradients+scores'] = (Date.now() - tStep) / 1000;
    tStep = Date.now();
    const variants = await ddaVariants(s, exp.epochInfos, o);
    if (isModelFree(s.scorer)) log(`scorer '${o.scorer}' does not use the model: debias and denoise do not apply, reporting the plain row only`);
    const rows = variants.flatMap((v) => evaluateVariant(exp, v, o.scorer, o.k));
    exp.seconds.metrics = (Date.now() - tStep) / 1000;
    exp.seconds.total = (Date.now() - t0) / 1000;
    const final = s.epochs[s.epochs.length - 1] as ScoreMatrix;
    const scoreScale = { base: meanAbs(s.base), final: meanAbs(final) };
    log(`mean |score|: base ${scoreScale.base.toExponential(3)}, final ${scoreScale.final.toExponential(3)} (ratio ${(scoreScale.base / scoreScale.final).toFixed(2)})`);
    return {
      options: o, backend: exp.backend, dataset: exp.dataset, errors: exp.errors, rows,
      scores: new Map(variants.map((v) => [v.variant, v.matrix])),
      finetuneLosses: exp.finetuneLosses, scoreScale, reused: exp.reused, seconds: exp.seconds,
    };
  } finally {
    exp.dispose();
  }
}
