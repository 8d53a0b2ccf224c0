/**
 * The model of a task at any of its checkpoints: per-example gradients, losses, response
 * representations and optimizer-step losses, on onnxruntime (the decoder's ONNX graph,
 * @dda/backend-onnxruntime: gradients, losses, representations; the default) or on tfjs
 * (@dda/backend-tfjs: everything, and the optimizer steps of `cea` and generation in any case; started
 * only when first needed, so a model too large for tfjs-wasm is attributed on onnxruntime alone).
 */
import { DdaError, type GradientMatrix, type ModelStepOptions, type TextSample, yieldToEventLoop } from '@dda/core';
import { checkStepOptions, generationPrompt } from '@dda/model';
import { DecoderModel, startTfjsBackend } from '@dda/backend-tfjs';
import { ONNX_BACKEND_IDS, OnnxDecoder, OnnxGenerator, OnnxTrainer, tryStartOnnxRuntime, type OnnxBackendId, type OnnxRuntimeBackend } from '@dda/backend-onnxruntime';
import type { Checkpoint } from './checkpoints.js';
import type { AttributionTask } from './task.js';

/** Engine of the per-example gradients, losses and representations: the ONNX graph on onnxruntime (faster, the default) or tfjs (the reference). */
export type GradientEngine = 'tfjs' | 'onnxruntime';

/** A move of a checkpoint's trainable tensors along a direction (see {@link CheckpointModel.tokenLosses}). */
export interface TokenLossShift {
  /** Tensor names and sizes of `vector`, in order (a gradient row's `parameterNames` and `parameterSizes`). */
  readonly names: readonly string[];
  readonly sizes: readonly number[];
  readonly vector: Float32Array;
  /** Multiplier of `vector` (parameter units per unit of the vector). */
  readonly scale: number;
}

/**
 * `weights` with every tensor of `shift` moved by `scale`·vector (float64 sum rounded to float32);
 * tensors `shift` does not name are kept.
 *
 * @throws DdaError if a named tensor is missing or its size differs, or the sizes do not add up to the vector's length.
 */
export function shiftedWeights(weights: Checkpoint['weights'], shift: TokenLossShift): Map<string, { shape: number[]; data: Float32Array }> {
  const total = shift.sizes.reduce((a, b) => a + b, 0);
  if (shift.names.length !== shift.sizes.length || total !== shift.vector.length) {
    throw new DdaError(`shift: ${shift.names.length} tensors of ${total} values for a vector of ${shift.vector.length}`, 'lay the vector out as a gradient row at this checkpoint');
  }
  const out = new Map([...weights].map(([n, t]) => [n, { shape: [...t.shape], data: t.data }]));
  let off = 0;
  shift.names.forEach((name, k) => {
    const t = weights.get(name);
    const size = shift.sizes[k] as number;
    if (!t || t.data.length !== size) throw new DdaError(`shift: the checkpoint has no tensor '${name}' of ${size} values`, 'take the direction at the same checkpoint');
    const data = new Float32Array(size);
    for (let i = 0; i < size; i++) data[i] = (t.data[i] as number) + shift.scale * (shift.vector[off + i] as number);
    out.set(name, { shape: [...t.shape], data });
    off += size;
  });
  return out;
}

/**
 * −log softmax(logits[t])[tokens[t+1]] for t = 0..n−2, in float64 (nats), from row-major
 * next-token logits [n × V] of the sequence `tokens` (length n).
 */
export function tokenLossesFromLogits(logits: Float32Array, tokens: Int32Array, V: number): Float64Array {
  const n = tokens.length;
  if (logits.length < n * V) throw new DdaError(`token losses: ${logits.length} logits for ${n} tokens × ${V}`);
  const out = new Float64Array(Math.max(0, n - 1));
  for (let t = 0; t + 1 < n; t++) {
    const row = t * V;
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[row + v] as number);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp((logits[row + v] as number) - max);
    out[t] = max + Math.log(sum) - (logits[row + (tokens[t + 1] as number)] as number);
  }
  return out;
}

/** A logger of one line. */
export type Log = (line: string) => void;

/**
 * What {@link CheckpointModel} reads of a task: the base model, the encoding and the origin of each
 * sample (for errors). An {@link AttributionTask} is one; `dda index` builds one without queries.
 */
export type ModelTask = Pick<AttributionTask, 'base' | 'encoding' | 'encode' | 'origin'>;

/** Names and sizes of the differentiated tensors, in the order of a gradient row. */
export interface GradientLayout {
  readonly names: readonly string[];
  readonly sizes: readonly number[];
}

/** Options of {@link CheckpointModel.open}. */
export interface EngineOptions {
  /** Engine of the gradients, losses and representations (default `onnxruntime`, falling back to `tfjs` with the reason logged). */
  readonly gradientEngine?: GradientEngine;
  /** tfjs backends to try in order (default: by priority). */
  readonly backends?: readonly string[];
  readonly log?: Log;
}

/** One probe per list of backends and process: the backend, or why none started. */
const onnxProbes = new Map<string, ReturnType<typeof tryStartOnnxRuntime>>();

/**
 * The engine that will run for `what` (e.g. `gradient engine`): onnxruntime when asked for (the
 * default) and one of `preferred` starts in this process (probed once per list), else tfjs, with
 * the reason logged. Resolve it before computing cache keys, so that a fallback never stores tfjs
 * results under onnxruntime's keys.
 */
export async function resolveEngine(
  asked: GradientEngine | undefined, what: string, log: Log = () => {}, preferred: readonly OnnxBackendId[] = ONNX_BACKEND_IDS,
): Promise<{ engine: GradientEngine; onnx: OnnxRuntimeBackend | null }> {
  if ((asked ?? 'onnxruntime') === 'tfjs') return { engine: 'tfjs', onnx: null };
  const key = preferred.join(',');
  let probe = onnxProbes.get(key);
  if (probe === undefined) onnxProbes.set(key, (probe = tryStartOnnxRuntime(log, preferred)));
  const r = await probe;
  if (r.backend) return { engine: 'onnxruntime', onnx: r.backend };
  log(`${what}: onnxruntime unavailable (${r.reason}); falling back to tfjs`);
  return { engine: 'tfjs', onnx: null };
}

/** The gradient engine that will run (see {@link resolveEngine}). */
export async function resolveGradientEngine(asked: GradientEngine | undefined, log: Log = () => {}): Promise<GradientEngine> {
  return (await resolveEngine(asked, 'gradient engine', log)).engine;
}

/**
 * The task's model, moved between checkpoints on demand: LoRA checkpoints install their adapter on
 * the base weights (with the modules the adapter saved, modules_to_save, in place of the base
 * model's), full checkpoints replace every weight. Gradients are over the trainable parameters: the
 * LoRA adapters (not the saved modules), or every parameter for full checkpoints. Call {@link dispose}.
 */
export class CheckpointModel {
  private active: string | null = null;
  private onnx: { checkpoint: string; decoder: Promise<OnnxDecoder> } | null = null;
  private tfjsModel: Promise<DecoderModel> | null = null;
  /** The decoder that evaluates losses after optimizer steps (its adapter is replaced at each call), and the checkpoint whose saved modules it holds ('' for none). */
  private stepDecoder: { decoder: OnnxDecoder; saved: string } | null = null;
  /** Base tensors the tfjs model holds from a checkpoint's saved modules (modules_to_save), to restore when it moves. */
  private overridden: readonly string[] = [];

  private constructor(
    private readonly task: ModelTask,
    /** The backend of the gradient engine, e.g. `onnxruntime-cpu` or `tfjs-wasm`. */
    readonly backend: string,
    readonly gradientEngine: GradientEngine,
    private readonly onnxBackend: OnnxRuntimeBackend | null,
    private readonly options: EngineOptions,
    private readonly log: Log,
  ) {}

  /**
   * Starts the engine asked for (onnxruntime by default, tfjs where it does not start, the reason
   * logged); the tfjs model is built only when first needed.
   */
  static async open(task: ModelTask, o: EngineOptions = {}): Promise<CheckpointModel> {
    const log = o.log ?? (() => {});
    const { onnx } = await resolveEngine(o.gradientEngine, 'gradient engine', log);
    if (onnx) return new CheckpointModel(task, onnx.id, 'onnxruntime', onnx, o, log);
    const backend = await startTfjsBackend(o.backends, log);
    return new CheckpointModel(task, backend.id, 'tfjs', null, o, log);
  }

  /** The tfjs model, built on first use. */
  private tfjs(): Promise<DecoderModel> {
    this.tfjsModel ??= (async () => {
      await startTfjsBackend(this.options.backends, this.log);
      const model = new DecoderModel(this.task.base.config, this.task.base.tokenizer, this.task.base.weights);
      model.setEncoding({ maxLength: this.task.encoding.maxLength, overlong: this.task.encoding.overlong });
      return model;
    })();
    return this.tfjsModel;
  }

  /** What gradients are taken over at a checkpoint. */
  static parametersOf(cp: Checkpoint): 'lora' | 'all' {
    return cp.kind === 'lora' ? 'lora' : 'all';
  }

  /**
   * The frozen base weights at `cp`: the base model's, with the modules a LoRA checkpoint saved
   * (modules_to_save) replaced by its trained copies, as PEFT's ModulesToSaveWrapper runs them.
   */
  private baseAt(cp: Checkpoint): Checkpoint['weights'] {
    return cp.saved ? new Map([...this.task.base.weights, ...cp.saved.weights]) : this.task.base.weights;
  }

  /** The tfjs model, at `cp`. */
  private async activate(cp: Checkpoint): Promise<DecoderModel> {
    const model = await this.tfjs();
    if (this.active === cp.id) return model;
    if (cp.kind === 'lora') {
      // The saved modules of this checkpoint in, those of the previous one back to the base model's.
      const saved = cp.saved?.weights ?? new Map();
      const base = this.task.base.weights;
      const change = new Map([...this.overridden.filter((n) => !saved.has(n) && base.has(n)).map((n) => [n, base.get(n) as NonNullable<ReturnType<typeof base.get>>] as const), ...saved]);
      if (change.size > 0) model.replaceBaseTensors(change);
      this.overridden = [...saved.keys()];
      model.setLora(cp.lora as NonNullable<Checkpoint['lora']>, cp.weights);
    } else model.setBaseWeights(cp.weights);
    this.active = cp.id;
    return model;
  }

  /**
   * Per-example gradients of the mean response-token loss (nats/token) at `cp`, one row per sample,
   * over the trainable parameters (with their shapes).
   *
   * @param onSample - Called after each sample (for progress).
   */
  async gradients(cp: Checkpoint, samples: readonly TextSample[], onSample?: () => void): Promise<GradientMatrix> {
    const encoded = samples.map((s) => this.task.encode(s, this.task.origin(s.id)));
    const ids = samples.map((s) => s.id);
    if (this.gradientEngine === 'onnxruntime') {
      const decoder = await this.onnxDecoder(cp);
      const g = await decoder.perExampleGradients(ids, encoded, cp.id, () => onSample?.());
      const shapes = new Map<string, readonly number[]>([...cp.weights].map(([n, t]) => [n, t.shape]));
      return { ...g, parameterShapes: g.parameterNames.map((n) => [...(shapes.get(n) ?? this.task.base.weights.get(n)?.shape ?? [])]) };
    }
    const model = await this.activate(cp);
    const g = model.perExampleGradientsEncoded(ids, encoded, CheckpointModel.parametersOf(cp), cp.id, () => onSample?.());
    await yieldToEventLoop(); // let progress, signals and IPC through between blocks
    return g;
  }

  /**
   * The per-example gradients of {@link gradients} handed to `onRow` one sample at a time, without
   * collecting them (on onnxruntime: OnnxDecoder.forEachGradientRow, so memory stays one run's rows
   * however large a row is; on tfjs the block is computed, then handed over row by row). `onLayout`
   * gets the row layout before the first row; `index` is the sample's position in `samples` (rows
   * may come in another order); `row` may be a view of the engine's output: copy it to keep it.
   *
   * @returns The row layout (names and sizes of the differentiated tensors).
   */
  async forEachGradientRow(
    cp: Checkpoint, samples: readonly TextSample[], onRow: (index: number, row: Float32Array) => void | Promise<void>, onLayout?: (layout: GradientLayout) => void,
  ): Promise<GradientLayout> {
    if (this.gradientEngine === 'onnxruntime') {
      const encoded = samples.map((s) => this.task.encode(s, this.task.origin(s.id)));
      const decoder = await this.onnxDecoder(cp);
      const layout = decoder.parameterLayout();
      onLayout?.(layout);
      await decoder.forEachGradientRow(encoded, onRow);
      return layout;
    }
    const g = await this.gradients(cp, samples);
    const layout = { names: g.parameterNames, sizes: g.parameterSizes };
    onLayout?.(layout);
    for (const [i, row] of g.rows.entries()) await onRow(i, row);
    return layout;
  }

  /**
   * Mean final hidden state (after the last norm) over the positions that predict a response token,
   * of each sample at `cp` (rows [n][hiddenSize]).
   */
  async representations(cp: Checkpoint, samples: readonly TextSample[]): Promise<Float32Array[]> {
    if (this.onnxBackend === null) return (await this.activate(cp)).responseRepresentations(samples);
    const decoder = await this.onnxDecoder(cp);
    const d = this.task.base.config.hiddenSize;
    const rows: Float32Array[] = [];
    for (const s of samples) {
      const e = this.task.encode(s, this.task.origin(s.id));
      const h = await decoder.hiddenStates(e.tokens);
      // Position t predicts token t + 1, whose loss weight is lossMask[t].
      const acc = new Float64Array(d);
      let w = 0;
      for (let t = 0; t < e.lossMask.length; t++) {
        const m = e.lossMask[t] as number;
        if (m === 0) continue;
        w += m;
        for (let j = 0; j < d; j++) acc[j] = (acc[j] as number) + m * (h[t * d + j] as number);
      }
      rows.push(Float32Array.from(acc, (v) => v / w));
      await yieldToEventLoop();
    }
    return rows;
  }

  /**
   * Losses (nats/token) of `evaluate` after `o.steps` full-batch optimizer steps on `updateOn` from
   * `cp`'s adapter, which is left as it was (LoRA checkpoints only). Adam runs on onnxruntime (an
   * OnnxTrainer from the checkpoint's adapter with fresh moments, then the losses in a decoder kept
   * for these evaluations), SGD on tfjs.
   *
   * @throws DdaError for full checkpoints, or invalid options.
   */
  async lossesAfterSteps(cp: Checkpoint, updateOn: readonly TextSample[], evaluate: readonly TextSample[], o: ModelStepOptions): Promise<Float64Array> {
    if (cp.kind !== 'lora') throw new DdaError('optimizer steps from a checkpoint are offered on LoRA adapters only', 'use LoRA checkpoints for cea, or another scorer');
    if (this.onnxBackend !== null && o.optimizer === 'adam') {
      checkStepOptions(updateOn, o);
      const lora = { config: cp.lora as NonNullable<Checkpoint['lora']>, weights: cp.weights };
      const encode = (s: TextSample) => this.task.encode(s, this.task.origin(s.id));
      const base = this.baseAt(cp);
      const trainer = new OnnxTrainer(this.onnxBackend, this.task.base.config, 'lora', base, lora, { intraOpNumThreads: 1 });
      let stepped: Map<string, { shape: number[]; data: Float32Array }>;
      try {
        // One batch of every sample per epoch: `steps` full-batch Adam steps (DecoderModel.lossesAfterLoraSteps).
        await trainer.train(updateOn.map(encode), { epochs: o.steps, learningRate: o.learningRate, batchSize: updateOn.length, seed: 0 });
        stepped = trainer.trainedWeights();
      } finally {
        await trainer.release();
      }
      // The base weights are baked into the decoder's sessions: a new one where the saved modules differ.
      const savedKey = cp.saved ? cp.id : '';
      if (this.stepDecoder && this.stepDecoder.saved !== savedKey) {
        await this.stepDecoder.decoder.release();
        this.stepDecoder = null;
      }
      this.stepDecoder ??= { decoder: new OnnxDecoder(this.onnxBackend, this.task.base.config, lora.config, base, stepped, { parameters: 'lora' }), saved: savedKey };
      const decoder = this.stepDecoder.decoder;
      await decoder.setWeights({ lora: stepped });
      const out = new Float64Array(evaluate.length);
      for (const [i, s] of evaluate.entries()) out[i] = await decoder.loss(encode(s));
      return out;
    }
    return (await this.activate(cp)).lossesAfterLoraSteps(updateOn, evaluate, o);
  }

  /** Mean response-token loss (nats/token) of each sample at `cp`. */
  async losses(cp: Checkpoint, samples: readonly TextSample[]): Promise<Float64Array> {
    if (this.onnxBackend === null) return (await this.activate(cp)).losses(samples);
    const decoder = await this.onnxDecoder(cp);
    const out = new Float64Array(samples.length);
    for (const [i, s] of samples.entries()) out[i] = await decoder.loss(this.task.encode(s, this.task.origin(s.id)));
    return out;
  }

  /**
   * Per-token losses of each sample at `cp`, or at `cp` with its trainable tensors (the LoRA
   * adapters, or every weight of a full checkpoint) moved to θ + `shift.scale`·`shift.vector`
   * (summed in float64, rounded to float32). `shift.vector` is laid out as a gradient row of
   * {@link gradients} at `cp` (`names`, `sizes`). Entry t of a sample's row is
   * −log p(tokens[t+1] | tokens[≤t]) in nats (length tokens − 1; the sample's loss mask says which
   * are response tokens), computed in float64 from the engine's float32 logits. The model is back
   * at `cp` afterwards.
   *
   * @throws DdaError if `shift` does not lay out the trainable tensors of `cp`.
   */
  async tokenLosses(cp: Checkpoint, samples: readonly TextSample[], shift?: TokenLossShift): Promise<Float64Array[]> {
    const V = this.task.base.config.vocabSize;
    const tokens = samples.map((s) => this.task.encode(s, this.task.origin(s.id)).tokens);
    const moved = shift ? shiftedWeights(cp.weights, shift) : null;
    if (this.onnxBackend === null) {
      const model = await this.activate(cp);
      if (moved) {
        this.active = null; // re-installed from cp by the next activate
        if (cp.kind === 'lora') model.setLora(cp.lora as NonNullable<Checkpoint['lora']>, moved);
        else model.setBaseWeights(moved);
      }
      return tokens.map((t) => tokenLossesFromLogits(model.logits(Array.from(t)), t, V));
    }
    const decoder = await this.onnxDecoder(cp);
    const install = (w: Checkpoint['weights']): Promise<void> => decoder.setWeights(cp.kind === 'lora' ? { lora: w } : { base: w });
    if (moved) await install(moved);
    try {
      const out: Float64Array[] = [];
      for (const t of tokens) out.push(tokenLossesFromLogits(await decoder.logits(t), t, V));
      return out;
    } finally {
      if (moved) await install(cp.weights);
    }
  }

  /**
   * Greedy generations (at most `maxNewTokens` tokens each, stopping at EOS or the chat template's end-of-turn token, or when output and EOS
   * would no longer fit the encoding's length) of the model at `cp`: onnxruntime with its key/value
   * cache (OnnxGenerator) or tfjs, as the engine.
   */
  async generate(cp: Checkpoint, prompts: readonly string[], maxNewTokens: number): Promise<string[]> {
    if (this.onnxBackend === null) {
      const model = await this.activate(cp);
      return prompts.map((p) => model.generate(p, maxNewTokens));
    }
    const { tokenizer, config } = this.task.base;
    const context = Math.min(this.task.encoding.maxLength, config.maxSeqLen);
    const full = cp.kind === 'full';
    const generator = new OnnxGenerator(this.onnxBackend, config, context - 1, full ? cp.weights : this.baseAt(cp), full ? null : { config: cp.lora as NonNullable<Checkpoint['lora']>, weights: cp.weights });
    try {
      const out: string[] = [];
      for (const p of prompts) {
        const { ids } = generationPrompt(tokenizer, p, context);
        out.push(tokenizer.decode(await generator.generate(ids, { maxNewTokens, eosId: tokenizer.eosId, stopIds: [tokenizer.endOfTurn.id] })));
      }
      return out;
    } finally {
      await generator.release();
    }
  }

  /**
   * The ONNX decoder at `cp`, one at a time: concurrent callers (a scorer asks for training and test
   * gradients together) share one promise, and the previous checkpoint's sessions are released once.
   */
  private onnxDecoder(cp: Checkpoint): Promise<OnnxDecoder> {
    if (this.onnx?.checkpoint === cp.id) return this.onnx.decoder;
    const previous = this.onnx?.decoder;
    const decoder = (async (): Promise<OnnxDecoder> => {
      if (previous) await (await previous).release();
      const backend = this.onnxBackend;
      if (backend === null) throw new DdaError('internal: the ONNX decoder was asked for on the tfjs engine');
      const full = cp.kind === 'full';
      return new OnnxDecoder(backend, this.task.base.config, full ? null : cp.lora, full ? cp.weights : this.baseAt(cp), full ? null : cp.weights, { parameters: CheckpointModel.parametersOf(cp) });
    })();
    this.onnx = { checkpoint: cp.id, decoder };
    return decoder;
  }

  /** Releases the ONNX sessions and the tfjs tensors. */
  async dispose(): Promise<void> {
    if (this.onnx) await (await this.onnx.decoder).release();
    this.onnx = null;
    if (this.stepDecoder) await this.stepDecoder.decoder.release();
    this.stepDecoder = null;
    if (this.tfjsModel) (await this.tfjsModel).dispose();
    this.tfjsModel = null;
  }
}
