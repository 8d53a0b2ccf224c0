/**
 * The engine contract: what an engine (tfjs, onnxruntime, a user's) offers for a decoder that
 * @dda/model describes. An engine opens a decoder at given weights and computes on encoded
 * examples and token ids (the tokenizer and the chat template stay outside it): losses, logits,
 * hidden states, per-example gradient rows, greedy generation and training. Engines register in
 * the {@link engines} registry, which tries them by priority and reports every failure in one error;
 * `engineConformance` of `@dda/conformance/vitest` checks an engine against this contract.
 */
import { Registry } from '@dda/core';
import type { DecoderConfig, LoraConfig } from './config.js';
import type { ParameterSet, TrainingPosition, TrainOptions } from './engine-inputs.js';
import type { EncodedExample, Tokenizer } from './tokenizer.js';
import type { BaseWeightMap } from './narrow-weights.js';
import type { TensorMap } from './weights.js';

/** LoRA adapters: their configuration and weights (PEFT names). */
export interface EngineAdapter {
  readonly config: LoraConfig;
  readonly weights: TensorMap;
}

/** The weights a decoder runs: the base model's (Hugging Face names) and optional LoRA adapters. */
export interface EngineWeights {
  readonly base: TensorMap;
  readonly adapter: EngineAdapter | null;
}

/**
 * The weights {@link DecoderEngine.openNarrow} takes: base tensors float32 or narrow (a BF16 or F16
 * checkpoint's stored 16-bit patterns, see `storedBaseWeights`; the engine decodes them exactly, so
 * every result is bit-identical to opening at the widened float32 weights), and optional LoRA adapters.
 */
export interface NarrowEngineWeights {
  readonly base: BaseWeightMap;
  readonly adapter: EngineAdapter | null;
}

/** Options of {@link EngineDecoder.generate}. */
export interface EngineGenerateOptions {
  /** At most this many new tokens. */
  readonly maxNewTokens: number;
  /** Stop before the sequence (prompt + output) reaches this length (`generationPrompt`'s `limit`). */
  readonly limit: number;
  /** Stop at this token (not emitted). */
  readonly eosId: number;
  /** More tokens that stop generation (not emitted), e.g. the chat template's end-of-turn token. */
  readonly stopIds?: readonly number[];
}

/** An optimizer's state between epochs, engine-specific in meaning but plain data (float32 arrays and numbers), so a host can store it. */
export interface EngineOptimizerState {
  readonly arrays: readonly Float32Array[];
  readonly numbers: readonly number[];
}

/** Options of {@link EngineDecoder.train}: {@link TrainOptions} without the parameter set (the decoder's `trainable`), plus the optimizer. */
export type EngineTrainOptions = Omit<TrainOptions, 'parameters'> & {
  /** `adam` (default: fresh moments at every call, as transformers' Trainer starts) or plain `sgd`, where the engine offers it ({@link DecoderEngine.optimizers}). */
  readonly optimizer?: 'adam' | 'sgd';
  /**
   * Continue a training stopped at a position `onState` gave (after `epoch` epochs and `step`
   * steps of the next, default 0, whose batch-size-weighted losses sum to `lossSum`, default 0):
   * the decoder holds the weights of that position, and `optimizer` is the state `onState` gave
   * then. The rest runs bit-identical to an uninterrupted training. Only on engines with
   * {@link DecoderEngine.resumable}.
   */
  readonly resume?: { readonly epoch: number; readonly step?: number; readonly lossSum?: number; readonly optimizer: EngineOptimizerState };
  /**
   * Called after each epoch, before `onEpochEnd`, and within an epoch every `stateEverySeconds`, with
   * the position and the optimizer's state, the position's weights in the decoder (engines with
   * {@link DecoderEngine.resumable}).
   */
  readonly onState?: (position: TrainingPosition, optimizer: EngineOptimizerState) => void | Promise<void>;
  /** Seconds of training between two mid-epoch `onState` calls (default: after epochs only). */
  readonly stateEverySeconds?: number;
};

/** Names, sizes and shapes of the differentiated tensors, in the order of a gradient row. */
export interface EngineGradientLayout {
  readonly names: readonly string[];
  readonly sizes: readonly number[];
  readonly shapes: readonly (readonly number[])[];
}

/**
 * A decoder opened on an engine. Every number is float32 unless said otherwise; losses are the mean
 * cross-entropy (nats per token) over the tokens an example's loss mask weights. Call {@link release}.
 */
export interface EngineDecoder {
  /** The engine's registry id (e.g. `onnxruntime`, `tfjs`). */
  readonly engine: string;
  /** The backend it runs on, e.g. `onnxruntime-cpu` or `tfjs-wasm`, and its device in words. */
  readonly backend: { readonly id: string; readonly device: string };
  /** What gradients and training are over: the LoRA adapters (`lora`) or every base weight (`all`). */
  readonly trainable: ParameterSet;
  /** Copies of the current weights. */
  weights(): EngineWeights;
  /**
   * Replaces the given base tensors (a subset by name, e.g. the modules an adapter saved) and/or
   * every adapter tensor (same configuration).
   * @throws DdaError naming a tensor the decoder does not have, or of another size.
   */
  setWeights(w: { readonly base?: TensorMap; readonly adapter?: TensorMap }): Promise<void>;
  /** Mean masked loss (nats/token) of one encoded example. */
  loss(e: EncodedExample): Promise<number>;
  /** Next-token logits [T × V] (row-major) of one token sequence. */
  logits(tokens: Int32Array): Promise<Float32Array>;
  /** Final hidden states (after the last norm) [T × hiddenSize] (row-major) of one token sequence. */
  hiddenStates(tokens: Int32Array): Promise<Float32Array>;
  /** The layout of a gradient row. */
  gradientLayout(): EngineGradientLayout;
  /**
   * The gradient of each example's {@link loss} with respect to the `trainable` tensors, handed to
   * `onRow` with the example's index in `encoded` (rows may come in another order; `row` may be a
   * view of the engine's output: copy it to keep it). Each row depends on its example only.
   */
  forEachGradientRow(encoded: readonly EncodedExample[], onRow: (index: number, row: Float32Array) => void | Promise<void>): Promise<void>;
  /** Greedy decoding from `promptIds`: the new token ids (without the stop token). */
  generate(promptIds: readonly number[], o: EngineGenerateOptions): Promise<number[]>;
  /**
   * Trains the `trainable` tensors in place on the mean loss of batches (the order shuffled from
   * `o.seed`), as transformers' Trainer with Adam or SGD at a constant rate.
   * @returns The mean loss of each epoch (nats/token).
   * @throws DdaError for no examples, an optimizer the engine does not offer, or divergence.
   */
  train(encoded: readonly EncodedExample[], o: EngineTrainOptions): Promise<number[]>;
  /** Frees the engine's memory and sessions; the decoder is unusable afterwards. */
  release(): Promise<void>;
}

/** Options of {@link DecoderEngine.open}. */
export interface EngineOpenOptions {
  /** What gradients and training are over (default `lora` when an adapter is given, else `all`). */
  readonly trainable?: ParameterSet;
  /** Threads per operator, where the engine has such a setting (onnxruntime; default the engine's). */
  readonly threads?: number;
}

/** An engine, started (its backend initialised): opens decoders. */
export interface DecoderEngine {
  /** Registry id, e.g. `onnxruntime`. */
  readonly id: string;
  /** The backend it started, e.g. `onnxruntime-cpu`, and its device in words. */
  readonly backend: { readonly id: string; readonly device: string };
  /** The optimizers {@link EngineDecoder.train} offers. */
  readonly optimizers: readonly ('adam' | 'sgd')[];
  /** Whether its training can stop (after an epoch, or mid-epoch) and resume bit-identically (`resume`, `onState`). */
  readonly resumable: boolean;
  /**
   * Opens a decoder at `weights`; `tokenizer` must fit the embedding matrix (`checkTokenizerFits`).
   * @throws DdaError for an invalid config, adapter or weights, or a tokenizer that does not fit.
   */
  open(config: DecoderConfig, tokenizer: Tokenizer, weights: EngineWeights, o?: EngineOpenOptions): Promise<EngineDecoder>;
  /**
   * The capability to take narrow base weights, present on engines that have it (onnxruntime; not
   * tfjs, which takes float32 only): opens a decoder as {@link open} does, at base tensors that may
   * be narrow ({@link NarrowEngineWeights}), which the engine keeps as given (2 bytes a weight)
   * instead of widening them, with results bit-identical to {@link open} at the widened weights.
   * The decoder's {@link EngineDecoder.weights} widens copies; `setWeights` replaces a base tensor
   * only by one of the same form (narrow by narrow of the same format and scale, float32 by float32).
   * @throws DdaError as {@link open}, and for a narrow tensor of the wrong element count or a non-finite value.
   */
  openNarrow?(config: DecoderConfig, tokenizer: Tokenizer, weights: NarrowEngineWeights, o?: EngineOpenOptions): Promise<EngineDecoder>;
}

/** Options of an engine entry's `create`: the backends to try, in order (default: the engine's own order), and a logger. */
export interface EngineStartOptions {
  readonly backends?: readonly string[];
  readonly log?: (line: string) => void;
  readonly [option: string]: unknown;
}

/** The engines, by priority (`onnxruntime` before `tfjs`): `engines.resolve(options, candidates)` starts the first that works and keeps why the others did not. */
export const engines = new Registry<DecoderEngine, EngineStartOptions>('engine');

/** The weights an {@link EngineDecoder} trains by default: `lora` with an adapter, else `all`. */
export function defaultTrainable(w: Pick<EngineWeights, 'adapter'>): ParameterSet {
  return w.adapter ? 'lora' : 'all';
}
