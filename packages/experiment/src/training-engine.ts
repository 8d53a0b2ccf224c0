/**
 * The engine an experiment trains and generates with: onnxruntime (@dda/backend-onnxruntime's
 * OnnxTrainer and OnnxGenerator, the default) or tfjs (@dda/backend-tfjs's DecoderModel, the reference
 * and the fallback where onnxruntime does not start). Both give the same training semantics
 * (shuffling from the seed, batches, the mean response-token loss, Adam, tfjs's step for step) and
 * the same greedy decoding; their weights agree to float rounding (the plugin's parity tests), so
 * the engine is part of every cache key of an experiment.
 */
import { DdaError, type TextSample } from '@dda/core';
import {
  assertFiniteTensors, checkLoraFits, cloneTensors, checkTokenizerFits, encodeSample, generationPrompt, initLoraWeights, validateDecoderConfig, validateLoraConfig, type DecoderConfig, type LoraConfig, type TensorMap, type Tokenizer, type TrainOptions,
} from '@dda/model';
import { DecoderModel, startTfjsBackend } from '@dda/backend-tfjs';
import { OnnxDecoder, OnnxGenerator, OnnxTrainer, type OnnxRuntimeBackend } from '@dda/backend-onnxruntime';
import { resolveEngine } from '@dda/attribution';

/** Engines an experiment can train and generate with. */
export const TRAINING_ENGINES = ['onnxruntime', 'tfjs'] as const;
/** One of {@link TRAINING_ENGINES}. */
export type TrainingEngine = (typeof TRAINING_ENGINES)[number];

/** A decoder being trained: its base weights, optional LoRA adapters, training and greedy decoding. */
export interface ExperimentModel {
  /** The engine in use (after any fallback). */
  readonly engine: TrainingEngine;
  /** The engine's backend, e.g. `onnxruntime-cpu` or `tfjs-wasm`, and its device in words. */
  readonly backend: { readonly id: string; readonly device: string };
  /** Copies of the base weights (Hugging Face names). */
  baseWeights(): TensorMap;
  /** Copies of the LoRA adapter weights (PEFT names); empty without adapters. */
  loraWeights(): TensorMap;
  setBaseWeights(w: TensorMap): void;
  setLora(config: LoraConfig, w: TensorMap): void;
  /** Adds LoRA adapters initialised from `seed` (A Gaussian, B zero: the model is unchanged). */
  addLora(config: LoraConfig, seed: number): void;
  /**
   * Trains with Adam (see @dda/model's `TrainOptions`); `onEpochEnd` sees the weights of the epoch
   * just finished through {@link baseWeights} / {@link loraWeights}.
   *
   * @returns The mean loss of each epoch (nats/token).
   * @throws DdaError for an empty data set, invalid options, or divergence.
   */
  train(samples: readonly TextSample[], o: TrainOptions): Promise<number[]>;
  /**
   * Greedy decoding (at most `maxNewTokens`, stopping at EOS or when prompt + output + EOS would no
   * longer fit the context), as @dda/backend-tfjs's `DecoderModel.generate`.
   */
  generate(prompt: string, maxNewTokens: number): Promise<string>;
  /**
   * The summed cross-entropy (nats, not per token) of each sample's response tokens, those its loss
   * mask weights (the response and the token that ends it), under the current weights: minus the
   * log-likelihood of the response given the prompt. Lower = the model finds the response more likely.
   */
  responseNll(samples: readonly TextSample[]): Promise<Float64Array>;
  dispose(): Promise<void>;
}

/** How many tokens an encoded sample's loss counts (its loss mask's sum). */
const lossTokens = (mask: Float32Array): number => mask.reduce((a, b) => a + b, 0);

/** Options of {@link openExperimentModel}. */
export interface ExperimentModelOptions {
  /** The engine asked for (default `onnxruntime`); onnxruntime falls back to tfjs, with the reason logged. */
  readonly engine?: TrainingEngine;
  /** tfjs backends to try in order (tfjs engine only; default: by priority). */
  readonly backends?: readonly string[];
  /** onnxruntime threads per operator (default 1: the fastest on the tiny models here, BENCHMARKS.md). */
  readonly intraOpNumThreads?: number;
  readonly log?: (line: string) => void;
}

/**
 * The engine that will be used: `onnxruntime` when asked for and it starts, else `tfjs` (with the
 * reason onnxruntime did not start logged). Resolve it before computing cache keys.
 */
export function resolveTrainingEngine(asked: TrainingEngine | undefined, log: (line: string) => void = () => {}): Promise<{ engine: TrainingEngine; onnx: OnnxRuntimeBackend | null }> {
  return resolveEngine(asked, 'training engine', log, ['onnxruntime-cpu']);
}

/** Opens a model on the engine asked for (falling back as {@link resolveTrainingEngine}). */
export async function openExperimentModel(config: DecoderConfig, tokenizer: Tokenizer, weights: TensorMap, o: ExperimentModelOptions = {}): Promise<ExperimentModel> {
  const log = o.log ?? (() => {});
  const { engine, onnx } = await resolveTrainingEngine(o.engine, log);
  if (engine === 'onnxruntime' && onnx) return new OnnxExperimentModel(onnx, config, tokenizer, weights, o.intraOpNumThreads ?? 1);
  const backend = await startTfjsBackend(o.backends, log);
  return new TfjsExperimentModel(new DecoderModel(config, tokenizer, weights), { id: backend.id, device: backend.device });
}

/** The tfjs engine: @dda/backend-tfjs's DecoderModel. */
class TfjsExperimentModel implements ExperimentModel {
  readonly engine = 'tfjs';
  constructor(private readonly model: DecoderModel, readonly backend: { readonly id: string; readonly device: string }) {}
  baseWeights(): TensorMap { return this.model.baseWeights(); }
  loraWeights(): TensorMap { return this.model.loraWeights(); }
  setBaseWeights(w: TensorMap): void { this.model.setBaseWeights(w); }
  setLora(config: LoraConfig, w: TensorMap): void { this.model.setLora(config, w); }
  addLora(config: LoraConfig, seed: number): void { this.model.addLora(config, seed); }
  train(samples: readonly TextSample[], o: TrainOptions): Promise<number[]> { return this.model.train(samples, o); }
  generate(prompt: string, maxNewTokens: number): Promise<string> { return Promise.resolve(this.model.generate(prompt, maxNewTokens)); }
  responseNll(samples: readonly TextSample[]): Promise<Float64Array> {
    const mean = this.model.losses(samples);
    return Promise.resolve(mean.map((m, i) => m * lossTokens(this.model.encode(samples[i] as TextSample).lossMask)));
  }
  dispose(): Promise<void> {
    this.model.dispose();
    return Promise.resolve();
  }
}

/**
 * The onnxruntime engine: weights held in JavaScript memory; each `train` call runs an
 * {@link OnnxTrainer} over them (fresh Adam moments, as DecoderModel.train) and copies the trained
 * tensors back; generation runs an {@link OnnxGenerator} built for the current weights.
 */
class OnnxExperimentModel implements ExperimentModel {
  readonly engine = 'onnxruntime';
  readonly backend: { readonly id: string; readonly device: string };
  private base: TensorMap;
  private lora: { config: LoraConfig; weights: TensorMap } | null = null;
  private generator: OnnxGenerator | null = null;

  /** Checks what DecoderModel's constructor checks: the config, that the tokenizer fits, finite weights. */
  constructor(private readonly onnx: OnnxRuntimeBackend, private readonly config: DecoderConfig, private readonly tokenizer: Tokenizer, weights: TensorMap, private readonly threads: number) {
    validateDecoderConfig(config);
    checkTokenizerFits(tokenizer, config);
    assertFiniteTensors(weights, 'base weights');
    this.base = cloneTensors(weights);
    this.backend = { id: onnx.id, device: onnx.device };
  }

  baseWeights(): TensorMap { return cloneTensors(this.base); }
  loraWeights(): TensorMap { return this.lora ? cloneTensors(this.lora.weights) : new Map(); }

  private async changed(): Promise<void> {
    const g = this.generator;
    this.generator = null;
    if (g) await g.release();
  }

  setBaseWeights(w: TensorMap): void {
    assertFiniteTensors(w, 'base weights');
    for (const [name, t] of this.base) {
      if (w.get(name)?.data.length !== t.data.length) throw new DdaError(`base weight '${name}' is missing or has the wrong size`);
    }
    this.base = cloneTensors(w);
    void this.changed();
  }

  setLora(config: LoraConfig, w: TensorMap): void {
    validateLoraConfig(config);
    checkLoraFits(this.config, config, w);
    this.lora = { config, weights: cloneTensors(w) };
    void this.changed();
  }

  addLora(config: LoraConfig, seed: number): void {
    this.setLora(config, initLoraWeights(this.config, config, seed));
  }

  async train(samples: readonly TextSample[], o: TrainOptions): Promise<number[]> {
    if (o.parameters === 'lora' && !this.lora) throw new DdaError('LoRA training was asked for, but the model has no LoRA adapters', 'add adapters first (addLora)');
    await this.changed();
    const encoded = samples.map((s) => encodeSample(this.tokenizer, s, this.config.maxSeqLen));
    const trainer = new OnnxTrainer(this.onnx, this.config, o.parameters, this.base, this.lora, { intraOpNumThreads: this.threads });
    const install = (): void => {
      const w = trainer.trainedWeights();
      if (o.parameters === 'all') this.base = w;
      else if (this.lora) this.lora = { config: this.lora.config, weights: w };
    };
    try {
      const { parameters: _p, ...rest } = o;
      return await trainer.train(encoded, {
        ...rest,
        onEpochEnd: async (epoch, loss) => {
          install();
          await o.onEpochEnd?.(epoch, loss);
        },
      });
    } finally {
      install();
      await trainer.release();
    }
  }

  async generate(prompt: string, maxNewTokens: number): Promise<string> {
    const { ids, limit } = generationPrompt(this.tokenizer, prompt, this.config.maxSeqLen);
    this.generator ??= new OnnxGenerator(this.onnx, this.config, limit, this.base, this.lora, { intraOpNumThreads: this.threads });
    return this.tokenizer.decode(await this.generator.generate(ids, { maxNewTokens, eosId: this.tokenizer.eosId, stopIds: [this.tokenizer.endOfTurn.id] }));
  }

  /** One sequence at a time through OnnxDecoder's loss graph (no gradient), at the current weights. */
  async responseNll(samples: readonly TextSample[]): Promise<Float64Array> {
    const out = new Float64Array(samples.length);
    if (samples.length === 0) return out;
    const decoder = new OnnxDecoder(this.onnx, this.config, this.lora?.config ?? null, this.base, this.lora?.weights ?? null, { parameters: this.lora ? 'lora' : 'all', intraOpNumThreads: this.threads });
    try {
      for (let i = 0; i < samples.length; i++) {
        const e = encodeSample(this.tokenizer, samples[i] as TextSample, this.config.maxSeqLen);
        out[i] = (await decoder.loss(e)) * lossTokens(e.lossMask);
      }
    } finally {
      await decoder.release();
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.changed();
  }
}
