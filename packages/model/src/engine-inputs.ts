/**
 * What every engine checks before it runs a decoder (tfjs, onnxruntime): the training options, the
 * fit of a tokenizer to the embedding matrix, the options of optimizer steps from a checkpoint and
 * the prompt of greedy generation. No engine code here.
 */
import { DdaError, type ModelStepOptions } from '@dda/core';
import type { DecoderConfig } from './config.js';
import type { Tokenizer } from './tokenizer.js';

/** Which parameters are trained / differentiated: the LoRA adapters (default) or every base weight. */
export type ParameterSet = 'lora' | 'all';

/** Options of an engine's training loop (@dda/backend-tfjs's `DecoderModel.train`, @dda/backend-onnxruntime's `OnnxTrainer`). */
export interface TrainOptions {
  readonly epochs: number;
  readonly learningRate: number;
  readonly batchSize: number;
  /** Seed of the shuffling order. */
  readonly seed: number;
  readonly parameters: ParameterSet;
  /** Called after each epoch with the 1-based epoch and the mean training loss (nats/token). */
  readonly onEpochEnd?: (epoch: number, meanLoss: number) => void | Promise<void>;
  /** Called after each optimizer step. */
  readonly onStep?: (step: number, stepsTotal: number, loss: number) => void;
}

/** Throws a DdaError when the tokenizer's ids do not fit the model's embedding matrix (every engine's decoder checks it). */
export function checkTokenizerFits(tokenizer: Tokenizer, config: DecoderConfig): void {
  const exact = tokenizer.kind === 'word-level';
  if (exact ? tokenizer.size !== config.vocabSize : tokenizer.size > config.vocabSize) {
    throw new DdaError(
      `tokenizer has ${tokenizer.size} entries but the model's vocabSize is ${config.vocabSize}`,
      'use the tokenizer saved with this model, or a config whose vocabSize matches the tokenizer',
    );
  }
}

/**
 * Checks the inputs of optimizer steps from a checkpoint (`cea`): a positive integer number of
 * steps, a positive finite learning rate, `adam` or `sgd`, and at least one sample to step on.
 *
 * @throws DdaError naming the first invalid option.
 */
export function checkStepOptions(updateOn: readonly unknown[], o: ModelStepOptions): void {
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new DdaError(`steps must be a positive integer, got ${o.steps}`, 'pass e.g. steps = 3');
  if (!(o.learningRate > 0) || !Number.isFinite(o.learningRate)) throw new DdaError(`learningRate must be a positive number, got ${o.learningRate}`, 'pass e.g. learningRate = 3e-3');
  if (o.optimizer !== 'adam' && o.optimizer !== 'sgd') throw new DdaError(`optimizer must be 'adam' or 'sgd', got ${String(o.optimizer)}`);
  if (updateOn.length === 0) throw new DdaError('no samples to take optimizer steps on', 'pass at least one sample to update on');
}

/**
 * The token ids greedy decoding starts from (BOS added where the tokenizer has one) and the length
 * prompt + output may reach: `context − 1`, so that the output and EOS fit the context (the
 * gradient of (prompt, output) is taken later). Shared by every engine's generation.
 *
 * @throws DdaError if the prompt is empty without a BOS token, or leaves no room for an output.
 */
export function generationPrompt(tokenizer: Tokenizer, prompt: string, context: number): { ids: number[]; limit: number } {
  const p = tokenizer.encode(prompt);
  const ids = tokenizer.bosId === null || p[0] === tokenizer.bosId ? p : [tokenizer.bosId, ...p];
  if (ids.length === 0) throw new DdaError('generate: the prompt is empty and the tokenizer has no BOS token to start from', 'give a non-empty prompt');
  const limit = context - 1;
  if (ids.length >= limit) {
    throw new DdaError(`generate: the prompt has ${ids.length} tokens, which leaves no room for an output within the context of ${limit + 1} tokens`, 'shorten the prompt (document) or use a model with a longer context');
  }
  return { ids, limit };
}
