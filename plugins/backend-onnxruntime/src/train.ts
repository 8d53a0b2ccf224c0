/**
 * Training on onnxruntime: pretraining (every base tensor) and LoRA or full fine-tuning with
 * Adam, with the semantics of @dda/backend-tfjs's `DecoderModel.train`: the same loop
 * (`trainingLoop` of @dda/model: the shuffled order from the seed, once per epoch, the same
 * batches, callbacks and divergence error), the same loss (the mean over the batch of each
 * sequence's mean response-token cross-entropy, nats/token), the same Adam ({@link Adam}: tfjs's
 * `tf.train.adam(lr)` step for step). Each step is one forward/backward run of the batched decoder
 * graph ({@link buildDecoderGraph} with `batch` = the batch's size), or, with `workers` ≥ 2, of one
 * shard of the batch per worker thread, the shards' losses and gradients summed in shard order.
 */
import { DdaError } from '@dda/core';
import { trainingLoop, type TrainingPosition, type TrainOptions } from '@dda/model';
import { Adam } from './adam.js';
import type { OnnxRuntimeBackend } from './backend.js';
import {
  DECODER_IO, GRAD_ROWS, activationBytesPerExample, batchInputs, buildDecoderGraph, recomputeLayers, chooseBaseWeightPlacement, lossPositionBucket, loraSpecs, ortBatchFeeds, ortWeightFeeds, pickFeeds, poolBatchFeeds,
  type BaseWeightPlacement, type BatchInputs, type OnnxDecoderConfig, type OnnxEncodedExample, type OnnxLoraConfig, type OnnxParameterSet, type WeightMap,
} from './decoder-graph.js';
import { encodeOnnxModel } from './onnx-model.js';
import { OrtWorkerPool, sharedFloat32, type PoolTensor } from './ort-pool.js';
import { SessionCache } from './session-cache.js';
import type { OrtSession, OrtTensor } from './ort.js';

/**
 * Options of {@link OnnxTrainer.train}: @dda/model's `TrainOptions` (epochs, learningRate,
 * batchSize, seed, onEpochEnd, onStep) less `parameters`, which is fixed per trainer.
 */
export type OnnxTrainOptions = Omit<TrainOptions, 'parameters'> & {
  /**
   * Continue a training stopped at a position `onState` gave (its weights installed in the trainer,
   * the optimizer's state from `onState`): the rest runs bit-identical to an uninterrupted run (the
   * shuffles of the finished epochs are replayed from the seed, the next one's first `step` batches skipped).
   */
  readonly resume?: { readonly epoch: number; readonly step?: number; readonly lossSum?: number; readonly optimizer: { readonly arrays: readonly Float32Array[]; readonly numbers: readonly number[] } };
  /** Called with the position and the optimizer's state after each epoch, before `onEpochEnd`, and mid-epoch every `stateEverySeconds` (to resume from there). */
  readonly onState?: (position: TrainingPosition, optimizer: { arrays: Float32Array[]; numbers: number[] }) => void | Promise<void>;
};

/** Options of the {@link OnnxTrainer} constructor. */
export interface OnnxTrainerOptions {
  /** Sequences are right-padded to a multiple of this (default 16), so one session serves several lengths. */
  readonly padMultiple?: number;
  /** onnxruntime threads per operator of the main-thread session (default: onnxruntime's, one per core). */
  readonly intraOpNumThreads?: number;
  /**
   * Worker threads (default 1: one session on the main thread). With n ≥ 2 each batch is split
   * into n contiguous shards run at once, one per worker (one intra-op thread each); the result
   * is deterministic, but it sums the shards in a different order than one batched run (float
   * rounding only). CPU only.
   */
  readonly workers?: number;
  /**
   * Where the frozen base weights of LoRA training are ({@link BaseWeightPlacement}; default
   * `auto`: baked up to 256 MiB of float32, fed at every run above, read in place from `base`).
   */
  readonly basePlacement?: BaseWeightPlacement | 'auto';
  /**
   * Main-thread sessions kept at once, by size (default 4 GiB, as the decoder's): the least
   * recently run idle sessions are released while the activation estimates of those kept
   * ({@link activationBytesPerExample} × the batch) sum above this. Each session holds its largest
   * run's activations; four batch shapes of 16 real-text sequences of up to 512 tokens kept
   * fine-tuning at 6.8–8.7 GB RSS (BENCHMARKS.md).
   */
  readonly maxSessionBytes?: number;
  /**
   * The training graphs recompute each layer's values in the backward pass instead of keeping
   * them (gradient checkpointing, `recompute` of the decoder graph): `true`, `false` or `auto`
   * (default: by the size of one sequence's activations, recomputeLayers). Losses, gradients and
   * so the trained weights are the same bits either way.
   */
  readonly recompute?: boolean | 'auto';
}

/** A tensor with a copy of its data that training updates in place. */
interface Trained {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** Main-thread training sessions kept at once (one per batch shape; see {@link OrtWorkerPoolOptions.maxSessionsPerWorker}). */
const MAX_LOCAL_SESSIONS = 4;

/**
 * Trains a decoder's LoRA adapters (`parameters` 'lora'; the base weights are baked into the
 * graph up to 256 MiB, fed at every run above: {@link OnnxTrainerOptions.basePlacement}) or every base tensor ('all'; LoRA adapters, if any, stay fixed) with Adam on
 * onnxruntime. Weights are copied in; read the trained ones with {@link trainedWeights}.
 */
export class OnnxTrainer {
  private readonly trained: Trained[];
  private readonly feedsOf: Record<string, OrtTensor> = {};
  /** Main-thread sessions by batch shape, at most MAX_LOCAL_SESSIONS and {@link OnnxTrainerOptions.maxSessionBytes}, the least recently run released first (each holds its largest run's memory). */
  private readonly sessions: SessionCache<Promise<OrtSession>>;
  private readonly models = new Map<string, Uint8Array>();
  private readonly padMultiple: number;
  private readonly workers: number;
  private pool: Promise<OrtWorkerPool> | undefined;
  /** Where the frozen base weights are ('inputs' when they are trained). */
  readonly basePlacement: BaseWeightPlacement;
  /** Frozen base weights fed at every run (basePlacement 'inputs' with parameters 'lora'). */
  private readonly frozen: [string, { readonly shape: readonly number[]; readonly data: Float32Array }][];

  /**
   * @param backend - An onnxruntime backend (see `startOnnxRuntime`).
   * @param config - The decoder shape.
   * @param parameters - 'lora' trains the adapters, 'all' every base tensor.
   * @param base - Base weights (Hugging Face names): copied when trained ('all'); else baked into
   *   each graph when it is built, or fed at every run from these arrays (basePlacement; do not
   *   change them while the trainer is in use).
   * @param lora - LoRA adapters (config and PEFT-named weights), or null: copied when trained
   *   ('lora'); else baked into the graphs as `base` is.
   * @throws DdaError if 'lora' is asked for without adapters, or the options are invalid.
   */
  constructor(
    readonly backend: OnnxRuntimeBackend,
    readonly config: OnnxDecoderConfig,
    readonly parameters: OnnxParameterSet,
    private readonly base: WeightMap,
    private readonly lora: { readonly config: OnnxLoraConfig; readonly weights: WeightMap } | null,
    private readonly options: OnnxTrainerOptions = {},
  ) {
    this.padMultiple = options.padMultiple ?? 16;
    this.workers = options.workers ?? 1;
    this.sessions = new SessionCache(MAX_LOCAL_SESSIONS, async (s) => (await s.catch(() => null))?.release(), 'ONNX trainer', options.maxSessionBytes ?? 4 * 2 ** 30);
    if (!Number.isInteger(this.padMultiple) || this.padMultiple < 1) throw new DdaError(`ONNX trainer: padMultiple must be a positive integer, got ${this.padMultiple}`, 'pass e.g. 16');
    if (!Number.isInteger(this.workers) || this.workers < 1) throw new DdaError(`ONNX trainer: workers must be a positive integer, got ${this.workers}`, 'pass 1 (main thread) or the number of cores');
    if (this.workers > 1 && backend.executionProviders[0] !== 'cpu') throw new DdaError('ONNX trainer: worker threads run on the CPU only', 'use workers: 1 on a GPU backend');
    if (parameters === 'lora' && !lora) throw new DdaError('ONNX trainer: LoRA training was asked for, but there are no LoRA adapters', "pass adapters, or train parameters 'all'");
    // The tensors the decoder reads, in graph order (a small forward graph also checks every name and shape).
    const read = (): string[] => buildDecoderGraph(config, lora?.config ?? null, 1, 1, { gradients: false, logits: false, parameters: 'all', ...(lora ? { loraWeights: lora.weights } : {}) }).parameterNames;
    const source: [string, { readonly shape: readonly number[]; readonly data: Float32Array }][] = parameters === 'all'
      ? read().map((n) => {
        const t = base.get(n);
        if (!t) throw new DdaError(`ONNX trainer: missing base weight '${n}'`, 'pass every base tensor of the config');
        return [n, t];
      })
      : loraSpecs(config, (lora as { config: OnnxLoraConfig }).config).flatMap((s) => [s.a, s.b]).map((n) => {
        const t = lora?.weights.get(n);
        if (!t) throw new DdaError(`ONNX trainer: missing LoRA tensor '${n}'`, 'pass every LoRA tensor of the adapter config');
        return [n, t];
      });
    // Shared memory when workers read the weights in place; Adam updates them between steps.
    this.trained = source.map(([name, t]) => ({ name, shape: [...t.shape], data: this.workers > 1 ? sharedFloat32(t.data.length, t.data) : Float32Array.from(t.data) }));
    this.basePlacement = parameters === 'all' ? 'inputs' : chooseBaseWeightPlacement(base, options.basePlacement);
    this.frozen = parameters === 'lora' && this.basePlacement === 'inputs' ? [...base] : [];
    ortWeightFeeds(backend, [...this.trained.map((t) => [t.name, t] as const), ...this.frozen], this.feedsOf);
  }

  /** Copies of the trained tensors (the LoRA adapters, or every base tensor), by name. */
  trainedWeights(): Map<string, { shape: number[]; data: Float32Array }> {
    return new Map(this.trained.map((t) => [t.name, { shape: [...t.shape], data: Float32Array.from(t.data) }]));
  }

  /**
   * Trains for `o.epochs` epochs; Adam's moments start at zero on each call (as a fresh
   * `tf.train.adam`). Deterministic: the same inputs give bit-identical weights and losses.
   *
   * @param examples - Encoded examples (tokens, and loss mask over tokens[1..]).
   * @returns The mean loss of each epoch run (nats/token; each step's batch-mean loss weighted by its batch size; with `resume`, the epochs after it).
   * @throws DdaError if `examples` is empty, an option is invalid, or a step's loss is not finite
   *   (`training diverged at epoch E`).
   */
  async train(examples: readonly OnnxEncodedExample[], o: OnnxTrainOptions): Promise<number[]> {
    const { resume, onState, learningRate, ...loop } = o;
    const adam = new Adam(this.trained.map((t) => t.data.length), learningRate);
    if (resume) adam.restore(resume.optimizer);
    // The loop every engine runs (@dda/model); the step here: the batch's loss and gradients, then Adam (not on a diverged loss).
    const state = onState ? { onState: (position: TrainingPosition) => onState(position, adam.state()) } : {};
    const from = resume ? { epoch: resume.epoch, step: resume.step ?? 0, lossSum: resume.lossSum ?? 0 } : 0;
    return trainingLoop(examples, { ...loop, from, ...state }, async (batch) => {
      const { loss, gradients } = await this.lossAndGradients(batch);
      if (!Number.isFinite(loss)) return loss;
      adam.step(this.trained.map((t) => t.data), gradients);
      if (this.pool) (await this.pool).constantsChanged();
      return loss;
    });
  }

  /**
   * The batch's loss (mean over its sequences of each one's mean response-token cross-entropy,
   * nats/token) and its gradient with respect to each trained tensor, in {@link trainedWeights} order.
   */
  async lossAndGradients(batch: readonly OnnxEncodedExample[]): Promise<{ loss: number; gradients: Float32Array[] }> {
    const T = this.padded(Math.max(...batch.map((e) => e.tokens.length)));
    if (this.workers === 1) return this.runLocal(this.inputs(batch, T, batch.length));
    // Contiguous shards, sizes differing by at most one; a batch smaller than the pool uses fewer workers.
    const n = Math.min(this.workers, batch.length);
    const shards = Array.from({ length: n }, (_, k) => batch.slice(Math.floor((k * batch.length) / n), Math.floor(((k + 1) * batch.length) / n)));
    const pool = await this.workerPool();
    const parts = await Promise.all(shards.map((shard, w) => this.runShard(pool, w, this.inputs(shard, T, batch.length))));
    let loss = 0;
    const gradients = this.trained.map((t) => new Float32Array(t.data.length));
    for (const part of parts) {
      loss += part.loss;
      gradients.forEach((g, k) => {
        const p = part.gradients[k] as Float32Array;
        for (let i = 0; i < g.length; i++) g[i] = (g[i] as number) + (p[i] as number);
      });
    }
    return { loss, gradients };
  }

  private inputs(examples: readonly OnnxEncodedExample[], T: number, meanOver: number): BatchInputs {
    const cap = examples.length * T;
    return batchInputs(examples, this.config.vocabSize, T, (p) => lossPositionBucket(p, this.padMultiple, cap), meanOver);
  }

  private padded(n: number): number {
    return Math.ceil(n / this.padMultiple) * this.padMultiple;
  }

  /** The batched graph whose `grad_rows` output is every trained tensor's gradient, side by side in {@link trained} order. */
  /** Whether the training graphs of `T`-token sequences recompute their layers ({@link OnnxTrainerOptions.recompute}). */
  private recomputes(T: number): boolean {
    return recomputeLayers(this.config, T, this.options.recompute);
  }

  private graph(b: BatchInputs) {
    const all = this.parameters === 'all';
    return buildDecoderGraph(this.config, this.lora?.config ?? null, b.T, b.P, {
      batch: b.B, gradients: true, logits: false, parameters: this.parameters, gradientRows: this.trained.map((t) => t.name),
      recompute: this.recomputes(b.T),
      ...(all ? (this.lora ? { loraWeights: this.lora.weights } : {}) : this.basePlacement === 'initializers' ? { baseWeights: this.base } : {}),
    });
  }

  private key(b: BatchInputs): string {
    return `${b.B}:${b.T}:${b.P}`;
  }

  /** The trained tensors' gradients: views of one flat gradient. */
  private gradientsOf(flat: Float32Array | undefined): Float32Array[] {
    const dim = this.trained.reduce((a, t) => a + t.data.length, 0);
    if (flat === undefined || flat.length !== dim) throw new DdaError(`ONNX trainer: a gradient of ${flat?.length ?? 0} values, expected ${dim}`, 'check that the weights match the config');
    let off = 0;
    return this.trained.map((t) => flat.subarray(off, (off += t.data.length)));
  }

  private async runLocal(b: BatchInputs): Promise<{ loss: number; gradients: Float32Array[] }> {
    const key = this.key(b);
    const create = (): Promise<OrtSession> => this.backend.createSession(this.graph(b).model, this.options.intraOpNumThreads === undefined ? {} : { intraOpNumThreads: this.options.intraOpNumThreads });
    const out = await this.sessions.use(key, create, async (s) => {
      const session = await s;
      return session.run({ ...ortBatchFeeds(this.backend, b), ...pickFeeds(session.inputNames, this.feedsOf) });
    }, b.B * activationBytesPerExample(this.config, b.T, b.P / b.B, this.recomputes(b.T)));
    return { loss: (out[DECODER_IO.loss]?.data as Float32Array)[0] as number, gradients: this.gradientsOf(out[GRAD_ROWS]?.data as Float32Array | undefined) };
  }

  private workerPool(): Promise<OrtWorkerPool> {
    this.pool ??= (async () => {
      const pool = await OrtWorkerPool.create(this.workers);
      await pool.setConstants(Object.fromEntries([...this.trained.map((t) => [t.name, t] as const), ...this.frozen].map(([name, t]) => [name, { type: 'float32', data: t.data, dims: t.shape } satisfies PoolTensor])));
      return pool;
    })();
    return this.pool;
  }

  private async runShard(pool: OrtWorkerPool, w: number, b: BatchInputs): Promise<{ loss: number; gradients: Float32Array[] }> {
    const key = this.key(b);
    const model = (): Uint8Array => {
      let bytes = this.models.get(key);
      if (bytes === undefined) {
        bytes = encodeOnnxModel(this.graph(b).model);
        this.models.set(key, bytes);
      }
      return bytes;
    };
    const r = await pool.run(w, key, model, poolBatchFeeds(b), [DECODER_IO.loss, GRAD_ROWS]);
    return { loss: (r[DECODER_IO.loss] as Float32Array)[0] as number, gradients: this.gradientsOf(r[GRAD_ROWS]) };
  }

  /** Main-thread sessions open now (at most 4, and within {@link OnnxTrainerOptions.maxSessionBytes} between runs). */
  get openSessions(): number {
    return this.sessions.size;
  }

  /** Releases every session and stops the workers. */
  async release(): Promise<void> {
    await this.sessions.clear();
    this.models.clear();
    if (this.pool) await (await this.pool).terminate();
    this.pool = undefined;
  }
}
