/**
 * The engine an experiment trains and generates with, from @dda/model's `engines` registry (the
 * engine contract; no engine is imported by name): onnxruntime by default (on the CPU), tfjs (the
 * reference) where it does not start. Both give the same training semantics (shuffling from the
 * seed, batches, the mean response-token loss, Adam, tfjs's step for step) and the same greedy
 * decoding; their weights agree to float rounding (the engine conformance suite and the plugins'
 * parity tests), so the engine is part of every cache key of an experiment.
 */
import { DdaError, type TextSample } from '@dda/core';
import {
  encodeSample, generationPrompt, initLoraWeights, validateLoraConfig, type DecoderConfig, type DecoderEngine, type EngineDecoder, type EngineTrainOptions, type LoraConfig, type ParameterSet, type TensorMap, type Tokenizer, type TrainOptions,
} from '@dda/model';
import { resolveEngine } from '@dda/attribution';

/** An id of @dda/model's `engines` registry (built in: `onnxruntime`, `tfjs`; a plugin's too); an unknown id is refused when it is resolved. */
export type TrainingEngine = string;

/** A decoder being trained: its base weights, optional LoRA adapters, training and greedy decoding. */
export interface ExperimentModel {
  /** The engine in use (after any fallback). */
  readonly engine: TrainingEngine;
  /** The engine's backend, e.g. `onnxruntime-cpu` or `tfjs-wasm`, and its device in words. */
  readonly backend: { readonly id: string; readonly device: string };
  /** Whether {@link train} can stop after an epoch and resume bit-identically, after an epoch or mid-epoch (`resume`, `onState`: the engine's). */
  readonly resumable: boolean;
  /** Copies of the base weights (Hugging Face names). */
  baseWeights(): TensorMap;
  /** Copies of the LoRA adapter weights (PEFT names); empty without adapters. */
  loraWeights(): TensorMap;
  /** Replaces every base weight (same names and sizes). */
  setBaseWeights(w: TensorMap): Promise<void>;
  /** Installs LoRA adapters (replacing any), checking that they fit. */
  setLora(config: LoraConfig, w: TensorMap): Promise<void>;
  /** Adds LoRA adapters initialised from `seed` (A Gaussian, B zero: the model is unchanged). */
  addLora(config: LoraConfig, seed: number): Promise<void>;
  /**
   * Trains with Adam (see @dda/model's `TrainOptions`); `onEpochEnd` sees the weights of the epoch
   * just finished through {@link baseWeights} / {@link loraWeights}.
   *
   * @returns The mean loss of each epoch (nats/token).
   * @throws DdaError for an empty data set, invalid options, or divergence.
   */
  train(samples: readonly TextSample[], o: TrainOptions & Pick<EngineTrainOptions, 'resume' | 'onState' | 'stateEverySeconds'>): Promise<number[]>;
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
  /** Threads per operator, for engines with such a setting (onnxruntime; default 1: the fastest on the tiny models here, BENCHMARKS.md). */
  readonly intraOpNumThreads?: number;
  readonly log?: (line: string) => void;
}

/**
 * The engine that will be used: `onnxruntime` (on the CPU) when asked for and it starts, else
 * `tfjs` (with the reason onnxruntime did not start logged). Resolve it before computing cache keys.
 */
export function resolveTrainingEngine(asked: TrainingEngine | undefined, log: (line: string) => void = () => {}, backends?: readonly string[]): Promise<DecoderEngine> {
  return resolveEngine(asked, 'training engine', log, ['onnxruntime-cpu', ...(backends ?? [])]);
}

/** Opens a model on the engine asked for (falling back as {@link resolveTrainingEngine}). */
export async function openExperimentModel(config: DecoderConfig, tokenizer: Tokenizer, weights: TensorMap, o: ExperimentModelOptions = {}): Promise<ExperimentModel> {
  const engine = await resolveTrainingEngine(o.engine, o.log ?? (() => {}), o.backends);
  // Threads per operator go to every engine: one with no such setting ignores them (EngineOpenOptions).
  const threads = o.intraOpNumThreads ?? 1;
  const decoder = await engine.open(config, tokenizer, { base: weights, adapter: null }, { trainable: 'all', threads });
  return new EngineExperimentModel(engine, decoder, config, tokenizer, threads);
}

/**
 * A model being trained, on an engine of the contract: one decoder at a time, opened again when
 * the adapters are added or replaced, or when training switches between the adapters and every
 * base weight (what the decoder trains is fixed when it is opened).
 */
class EngineExperimentModel implements ExperimentModel {
  readonly engine: TrainingEngine;
  readonly backend: { readonly id: string; readonly device: string };
  readonly resumable: boolean;

  constructor(
    private readonly decoderEngine: DecoderEngine,
    private decoder: EngineDecoder,
    private readonly config: DecoderConfig,
    private readonly tokenizer: Tokenizer,
    private readonly threads: number,
  ) {
    this.engine = decoderEngine.id as TrainingEngine;
    this.backend = decoderEngine.backend;
    this.resumable = decoderEngine.resumable;
  }

  baseWeights(): TensorMap {
    return this.decoder.weights().base;
  }

  loraWeights(): TensorMap {
    return this.decoder.weights().adapter?.weights ?? new Map();
  }

  /** Opens the decoder again at `weights`, training `trainable`. */
  private async reopen(weights: Parameters<DecoderEngine['open']>[2], trainable: ParameterSet): Promise<void> {
    const next = await this.decoderEngine.open(this.config, this.tokenizer, weights, { trainable, threads: this.threads });
    await this.decoder.release();
    this.decoder = next;
  }

  async setBaseWeights(w: TensorMap): Promise<void> {
    const base = this.decoder.weights().base;
    for (const [name, t] of base) {
      if (w.get(name)?.data.length !== t.data.length) throw new DdaError(`base weight '${name}' is missing or has the wrong size`);
    }
    await this.decoder.setWeights({ base: w });
  }

  async setLora(config: LoraConfig, w: TensorMap): Promise<void> {
    validateLoraConfig(config);
    const current = this.decoder.weights();
    if (current.adapter && JSON.stringify(current.adapter.config) === JSON.stringify(config)) return this.decoder.setWeights({ adapter: w });
    return this.reopen({ base: current.base, adapter: { config, weights: w } }, this.decoder.trainable);
  }

  addLora(config: LoraConfig, seed: number): Promise<void> {
    validateLoraConfig(config);
    return this.setLora(config, initLoraWeights(this.config, config, seed));
  }

  async train(samples: readonly TextSample[], o: TrainOptions & Pick<EngineTrainOptions, 'resume' | 'onState' | 'stateEverySeconds'>): Promise<number[]> {
    const current = this.decoder.weights();
    if (o.parameters === 'lora' && !current.adapter) throw new DdaError('LoRA training was asked for, but the model has no LoRA adapters', 'add adapters first (addLora)');
    if (o.parameters !== this.decoder.trainable) await this.reopen(current, o.parameters);
    const encoded = samples.map((s) => encodeSample(this.tokenizer, s, this.config.maxSeqLen));
    const { parameters: _p, ...rest } = o;
    return this.decoder.train(encoded, rest);
  }

  async generate(prompt: string, maxNewTokens: number): Promise<string> {
    const { ids, limit } = generationPrompt(this.tokenizer, prompt, this.config.maxSeqLen);
    return this.tokenizer.decode(await this.decoder.generate(ids, { maxNewTokens, limit, eosId: this.tokenizer.eosId, stopIds: [this.tokenizer.endOfTurn.id] }));
  }

  async responseNll(samples: readonly TextSample[]): Promise<Float64Array> {
    const out = new Float64Array(samples.length);
    for (let i = 0; i < samples.length; i++) {
      const e = encodeSample(this.tokenizer, samples[i] as TextSample, this.config.maxSeqLen);
      out[i] = (await this.decoder.loss(e)) * lossTokens(e.lossMask);
    }
    return out;
  }

  dispose(): Promise<void> {
    return this.decoder.release();
  }
}
