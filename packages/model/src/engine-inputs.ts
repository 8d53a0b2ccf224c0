/**
 * What every engine checks before it runs a decoder (tfjs, onnxruntime): the training options, the
 * fit of a tokenizer to the embedding matrix, the options of optimizer steps from a checkpoint and
 * the prompt of greedy generation; and the training loop they share (epochs, seeded shuffles,
 * batches), around each engine's own optimizer step. No engine code here.
 */
import { DdaError, SeededRandom, yieldToEventLoop, type ModelStepOptions } from '@dda/core';
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

/**
 * Where a training stands, so that it can resume there: `epoch` epochs finished, then `step`
 * optimizer steps of the next one (0 right after an epoch), whose losses, each weighted by its
 * batch size, sum to `lossSum` (nats/token × sequences; the resumed epoch's mean loss needs it).
 */
export interface TrainingPosition {
  readonly epoch: number;
  readonly step: number;
  readonly lossSum: number;
}

/** What {@link trainingLoop} takes besides the engine's step: the loop's part of {@link TrainOptions}, and where to resume. */
export interface TrainingLoopOptions extends Pick<TrainOptions, 'epochs' | 'batchSize' | 'seed' | 'onEpochEnd' | 'onStep'> {
  /**
   * Where a resumed run starts (default: the beginning): the shuffles of the finished epochs are
   * replayed from the seed and the first `step` batches of the next are skipped, so the run goes on
   * with the batches of an uninterrupted one. A plain number is `{ epoch: n, step: 0, lossSum: 0 }`.
   */
  readonly from?: TrainingPosition | number;
  /**
   * Called with the position after each epoch (step 0), before `onEpochEnd`, and within an epoch
   * after a step once `stateEverySeconds` have passed since the last call (e.g. to store the weights
   * and the optimizer's state, so a run can resume from there).
   */
  readonly onState?: (position: TrainingPosition) => void | Promise<void>;
  /** Seconds of training between two mid-epoch {@link onState} calls (default: none mid-epoch; 0: after every step). */
  readonly stateEverySeconds?: number;
}

/**
 * The training loop of every engine (`EngineDecoder.train`): `epochs` passes over `examples`, each
 * in the order one `SeededRandom(seed).shuffle` per epoch gives, in batches of `batchSize` (the
 * last one smaller); `step` trains on one batch (one optimizer step) and returns its loss, the mean
 * over its sequences of each one's mean response-token cross-entropy (nats/token). Engines differ
 * only in `step`, so the same seed gives the same batches on every engine.
 *
 * @returns Each epoch's mean loss (nats/token; batches weighted by their size), of the epochs run
 *   (with `from`, the epochs after `from.epoch`, the first of them over all its steps).
 * @throws DdaError for no examples, epochs that are not a non-negative integer, a batch size below
 *   1, a `from` outside the training (epoch 0..epochs, step 0..steps per epoch − 1, none after the
 *   last epoch, a finite loss sum), or a step whose loss is not finite (`training diverged at
 *   epoch E`; a step should not apply such an update).
 */
export async function trainingLoop<E>(examples: readonly E[], o: TrainingLoopOptions, step: (batch: readonly E[]) => Promise<number>): Promise<number[]> {
  if (examples.length === 0) throw new DdaError('cannot train on an empty data set');
  if (!Number.isInteger(o.epochs) || o.epochs < 0) throw new DdaError(`epochs must be a non-negative integer, got ${o.epochs}`, 'pass e.g. 3');
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new DdaError(`batchSize must be a positive integer, got ${o.batchSize}`, 'pass e.g. 16');
  const stepsPerEpoch = Math.ceil(examples.length / o.batchSize);
  const from = typeof o.from === 'number' ? { epoch: o.from, step: 0, lossSum: 0 } : (o.from ?? { epoch: 0, step: 0, lossSum: 0 });
  if (!Number.isInteger(from.epoch) || from.epoch < 0 || from.epoch > o.epochs) throw new DdaError(`resume: epoch ${from.epoch} of ${o.epochs}`, 'resume from an epoch the training has');
  if (!Number.isInteger(from.step) || from.step < 0 || from.step >= stepsPerEpoch || (from.step > 0 && from.epoch === o.epochs) || !Number.isFinite(from.lossSum)) {
    throw new DdaError(`resume: step ${from.step} of epoch ${from.epoch + 1} (loss sum ${from.lossSum}), but an epoch has ${stepsPerEpoch} steps and the training ${o.epochs} epochs`, 'resume from a position this training has (the same examples, batch size and epochs)');
  }
  const rng = new SeededRandom(o.seed);
  for (let e = 0; e < from.epoch; e++) rng.shuffle(examples.map((_, i) => i));
  const epochLosses: number[] = [];
  let steps = from.epoch * stepsPerEpoch + from.step;
  let lastState = Date.now();
  for (let epoch = from.epoch + 1; epoch <= o.epochs; epoch++) {
    const order = rng.shuffle(examples.map((_, i) => i));
    const first = epoch === from.epoch + 1 ? from.step : 0;
    let sum = first > 0 ? from.lossSum : 0;
    for (let k = first; k < stepsPerEpoch; k++) {
      const batch = order.slice(k * o.batchSize, (k + 1) * o.batchSize).map((i) => examples[i] as E);
      const loss = await step(batch);
      if (!Number.isFinite(loss)) throw new DdaError(`training diverged at epoch ${epoch} (loss ${loss})`, 'lower the learning rate');
      sum += loss * batch.length;
      steps++;
      o.onStep?.(steps, stepsPerEpoch * o.epochs, loss);
      if (o.onState && o.stateEverySeconds !== undefined && k + 1 < stepsPerEpoch && Date.now() - lastState >= o.stateEverySeconds * 1000) {
        await o.onState({ epoch: epoch - 1, step: k + 1, lossSum: sum });
        lastState = Date.now();
      }
      await yieldToEventLoop();
    }
    epochLosses.push(sum / examples.length);
    // The state first: a caller that stores it has the epoch safe before anything else runs.
    await o.onState?.({ epoch, step: 0, lossSum: 0 });
    lastState = Date.now();
    await o.onEpochEnd?.(epoch, sum / examples.length);
  }
  return epochLosses;
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
