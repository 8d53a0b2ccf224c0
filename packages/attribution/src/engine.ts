/**
 * The model of a task at any of its checkpoints: per-example gradients, losses, response
 * representations, generations and optimizer-step losses, on one engine of @dda/model's `engines`
 * registry (the engine contract): onnxruntime by default, tfjs where it does not start, or any
 * engine a plugin registers. SGD steps (`cea` with `sgd`) run on an engine that offers SGD (tfjs).
 */
import { DdaError, type GradientMatrix, type ModelStepOptions, type TextSample, yieldToEventLoop } from '@dda/core';
import {
  checkStepOptions, engines, generationPrompt, tensorBytes, type BaseWeightMap, type DecoderEngine, type EncodedExample, type EngineDecoder, type EngineGradientLayout,
  type EngineWeights,
} from '@dda/model';
import type { Checkpoint } from './checkpoints.js';
import { ensurePlugins } from './plugins.js';
import type { AttributionTask } from './task.js';

/**
 * Engine of the per-example gradients, losses and representations: an id of @dda/model's `engines`
 * registry (built in: `onnxruntime`, the ONNX graph, faster, the default; `tfjs`, the reference; or
 * an engine a plugin registers). An unknown id is refused when it is resolved, listing the engines.
 */
export type GradientEngine = string;

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
  /** Backends to try in order (tfjs ones for the tfjs engine, onnxruntime ones for onnxruntime; default: each engine's own order). */
  readonly backends?: readonly string[];
  /**
   * Hand a BF16/F16 base folder's tensors to the engine as stored (2 bytes a weight, never widened
   * to float32) when the engine takes narrow base weights (`DecoderEngine.openNarrow`) and the
   * checkpoint is a LoRA adapter without saved modules; results are bit-identical either way.
   * Default true; false always hands float32 (the task's widened `base.weights`).
   */
  readonly narrowBase?: boolean;
  readonly log?: Log;
}

/**
 * The engine that will run for `what` (e.g. `gradient engine`), from @dda/model's `engines`
 * registry: the engine asked for (default `onnxruntime`), else, for onnxruntime, `tfjs`, with the
 * reason logged. Resolve it before computing cache keys, so that a fallback never stores tfjs
 * results under onnxruntime's keys.
 *
 * @param backends - Backends the engines may start (see {@link EngineOptions.backends}).
 * @throws DdaError listing why every candidate engine failed to start.
 */
export async function resolveEngine(asked: GradientEngine | undefined, what: string, log: Log = () => {}, backends?: readonly string[]): Promise<DecoderEngine> {
  await ensurePlugins(); // the built-in engines register when their plugins load
  if (engines.ids().length === 0) {
    throw new DdaError(`no ${what} is installed: no engine plugin registered one`, 'install an engine plugin where dda runs: npm install @dda/backend-onnxruntime (or @dda/backend-tfjs); the dda command (@dda/cli) brings both');
  }
  const want = asked ?? 'onnxruntime';
  // onnxruntime falls back to tfjs; either may be absent from an installation (optional peers).
  const candidates = want === 'onnxruntime' ? ['onnxruntime', 'tfjs'].filter((id) => engines.has(id)) : [want];
  if (candidates.length === 0) throw new DdaError(`${what} onnxruntime: neither onnxruntime nor its fallback tfjs is installed`, `install @dda/backend-onnxruntime (or @dda/backend-tfjs), or choose one of the engines there are: ${engines.ids().join(', ')}`);
  if (candidates[0] !== want) log(`${what}: ${want} is not installed; falling back to ${candidates[0] as string}`);
  const { id, value, failures } = await engines.resolve({ log, ...(backends ? { backends } : {}) }, candidates);
  for (const f of failures) log(`${what}: ${f.id} unavailable (${f.reason}); falling back to ${id}`);
  return value;
}

/**
 * Refuses engine ids that are not in the `engines` registry (after the built-in plugins load),
 * before anything runs.
 *
 * @param given - What names each id, for the message (e.g. `gradientEngine` or `--engine`), and the id.
 * @throws DdaError naming the first unknown id and the engines there are.
 */
export async function checkEngineIds(given: readonly (readonly [what: string, id: string])[]): Promise<void> {
  await ensurePlugins();
  for (const [what, id] of given) {
    if (!engines.has(id)) throw new DdaError(`${what} ${id}: no such engine`, `the engines are ${engines.ids().join(', ')} (a plugin's engine needs its plugin loaded, --plugin or plugins:)`);
  }
}

/** The gradient engine that will run (see {@link resolveEngine}). */
export async function resolveGradientEngine(asked: GradientEngine | undefined, log: Log = () => {}): Promise<GradientEngine> {
  return (await resolveEngine(asked, 'gradient engine', log)).id as GradientEngine;
}

/** The decoder a {@link CheckpointModel} moves between checkpoints, and where it is. */
interface Placed {
  readonly decoder: EngineDecoder;
  /** Checkpoints of the same kind and adapter config share the decoder: what they have in common. */
  readonly shape: string;
  /** The checkpoint its weights are at. */
  checkpoint: string;
  /** Base tensors it holds from a checkpoint's saved modules (modules_to_save), to restore when it moves. */
  overridden: readonly string[];
}

/**
 * The task's model, moved between checkpoints on demand, on one engine of @dda/model's `engines`
 * registry (onnxruntime by default; no engine is imported by name): LoRA checkpoints install their
 * adapter on the base weights (with the modules the adapter saved, modules_to_save, in place of the
 * base model's), full checkpoints replace every weight. One decoder serves every checkpoint of the
 * same kind and adapter config (the base weights stay, the adapter is swapped). A BF16/F16 base
 * folder's weights go to an engine that takes narrow base weights as stored, never widened, under
 * LoRA checkpoints (see {@link EngineOptions.narrowBase}; bit-identical results), else as float32,
 * which of the two logged. Gradients are over
 * the trainable parameters: the LoRA adapters (not the saved modules), or every parameter for full
 * checkpoints. Call {@link dispose}.
 */
export class CheckpointModel {
  private placed: Promise<Placed> | null = null;
  /** The decoder of optimizer steps (`lossesAfterSteps`), at the checkpoint it was opened for. */
  private stepper: { checkpoint: string; optimizer: string; decoder: Promise<EngineDecoder> } | null = null;
  /** Lines already logged about the form of the base weights (each once). */
  private readonly logged = new Set<string>();

  private constructor(
    private readonly task: ModelTask,
    private readonly engine: DecoderEngine,
    private readonly options: EngineOptions,
    private readonly log: Log,
  ) {}

  /** The backend of the gradient engine, e.g. `onnxruntime-cpu` or `tfjs-wasm`. */
  get backend(): string {
    return this.engine.backend.id;
  }

  /** The engine in use (after any fallback). */
  get gradientEngine(): GradientEngine {
    return this.engine.id as GradientEngine;
  }

  /** Starts the engine asked for (onnxruntime by default, tfjs where it does not start, the reason logged). */
  static async open(task: ModelTask, o: EngineOptions = {}): Promise<CheckpointModel> {
    const log = o.log ?? (() => {});
    return new CheckpointModel(task, await resolveEngine(o.gradientEngine, 'gradient engine', log, o.backends), o, log);
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

  private logOnce(line: string): void {
    if (this.logged.has(line)) return;
    this.logged.add(line);
    this.log(line);
  }

  /**
   * The base tensors to open `cp` at as stored (narrow), or null for float32, the reason logged
   * once: narrow when {@link EngineOptions.narrowBase} allows it, `cp` is a LoRA checkpoint without
   * saved modules (full checkpoints replace every weight, and saved modules are float32 tensors
   * moved in and out of the base), the base folder is BF16 or F16 and the engine has `openNarrow`.
   */
  private narrowBaseFor(cp: Checkpoint): BaseWeightMap | null {
    if (this.options.narrowBase === false || cp.kind !== 'lora') return null;
    const narrow = this.task.base.narrowWeights?.() ?? null;
    if (narrow === null) return null; // float32 stored (or a model built in memory): nothing to save
    if (!this.engine.openNarrow) {
      this.logOnce(`base weights: widened to float32 (the ${this.engine.id} engine takes float32 base weights only)`);
      return null;
    }
    if (cp.saved) {
      this.logOnce(`base weights: widened to float32 at ${cp.id} (its adapter saves modules, modules_to_save, that replace base tensors)`);
      return null;
    }
    const bytes = [...narrow.values()].reduce((a, t) => a + tensorBytes(t), 0);
    this.logOnce(`base weights: fed to ${this.engine.id} as stored (narrow, ${(bytes / 1e9).toFixed(2)} GB; not widened to float32)`);
    return narrow;
  }

  /** The weights of `cp` as the engine contract takes them. */
  private weightsAt(cp: Checkpoint): EngineWeights {
    return cp.kind === 'full' ? { base: cp.weights, adapter: null } : { base: this.baseAt(cp), adapter: { config: cp.lora as NonNullable<Checkpoint['lora']>, weights: cp.weights } };
  }

  /** Checkpoints with the same shape (and the same form of base weights, narrow or float32) share one decoder. */
  private static shapeOf(cp: Checkpoint, narrow: boolean): string {
    return cp.kind === 'full' ? 'full' : `lora:${JSON.stringify(cp.lora)}${narrow ? ':narrow' : ''}`;
  }

  /**
   * The decoder at `cp`: moved there (the adapter swapped, saved modules in and out), or opened for
   * a checkpoint of another shape. Concurrent callers at the same checkpoint share it.
   */
  private at(cp: Checkpoint): Promise<EngineDecoder> {
    const previous = this.placed;
    const next = (async (): Promise<Placed> => {
      const p = previous ? await previous.catch(() => null) : null;
      if (p && p.checkpoint === cp.id) return p;
      const narrow = this.narrowBaseFor(cp);
      const shape = CheckpointModel.shapeOf(cp, narrow !== null);
      if (p && p.shape === shape) {
        if (cp.kind === 'full') await p.decoder.setWeights({ base: cp.weights });
        else {
          // The saved modules of this checkpoint in, those of the previous one back to the base model's.
          // (The float32 base is read only when a saved module goes back: narrow decoders have none.)
          const saved = cp.saved?.weights ?? new Map();
          const back = p.overridden.filter((n) => !saved.has(n));
          const base = back.length > 0 ? this.task.base.weights : new Map();
          const change = new Map([...back.filter((n) => base.has(n)).map((n) => [n, base.get(n) as NonNullable<ReturnType<typeof base.get>>] as const), ...saved]);
          await p.decoder.setWeights({ adapter: cp.weights, ...(change.size > 0 ? { base: change } : {}) });
          p.overridden = [...saved.keys()];
        }
        p.checkpoint = cp.id;
        return p;
      }
      if (p) await p.decoder.release();
      const { config, tokenizer } = this.task.base;
      const trainable = CheckpointModel.parametersOf(cp);
      const decoder = narrow !== null && this.engine.openNarrow
        ? await this.engine.openNarrow(config, tokenizer, { base: narrow, adapter: { config: cp.lora as NonNullable<Checkpoint['lora']>, weights: cp.weights } }, { trainable })
        : await this.engine.open(config, tokenizer, this.weightsAt(cp), { trainable });
      return { decoder, shape, checkpoint: cp.id, overridden: [...(cp.saved?.weights.keys() ?? [])] };
    })();
    this.placed = next;
    return next.then((p) => p.decoder);
  }

  private encode(s: TextSample): EncodedExample {
    return this.task.encode(s, this.task.origin(s.id));
  }

  /**
   * Per-example gradients of the mean response-token loss (nats/token) at `cp`, one row per sample,
   * over the trainable parameters (with their shapes).
   *
   * @param onSample - Called after each sample (for progress).
   */
  async gradients(cp: Checkpoint, samples: readonly TextSample[], onSample?: () => void): Promise<GradientMatrix> {
    const rows: Float32Array[] = new Array<Float32Array>(samples.length);
    const layout = await this.forEachGradientRow(cp, samples, (i, row) => {
      rows[i] = Float32Array.from(row);
      onSample?.();
    });
    return {
      ids: samples.map((s) => s.id), dim: layout.sizes.reduce((a, b) => a + b, 0), rows, parameterNames: [...layout.names], parameterSizes: [...layout.sizes],
      parameterShapes: layout.shapes.map((sh) => [...sh]), checkpoint: cp.id,
    };
  }

  /**
   * The per-example gradients of {@link gradients} handed to `onRow` one sample at a time, without
   * collecting them (the engine's `forEachGradientRow`: on onnxruntime memory stays one run's rows
   * however large a row is). `onLayout` gets the row layout before the first row; `index` is the
   * sample's position in `samples` (rows may come in another order); `row` may be a view of the
   * engine's output: copy it to keep it.
   *
   * @returns The row layout (names, sizes and shapes of the differentiated tensors).
   */
  async forEachGradientRow(
    cp: Checkpoint, samples: readonly TextSample[], onRow: (index: number, row: Float32Array) => void | Promise<void>, onLayout?: (layout: GradientLayout) => void,
  ): Promise<EngineGradientLayout> {
    const encoded = samples.map((s) => this.encode(s));
    const decoder = await this.at(cp);
    const layout = decoder.gradientLayout();
    onLayout?.(layout);
    await decoder.forEachGradientRow(encoded, async (i, row) => {
      await onRow(i, row);
      await yieldToEventLoop(); // let progress, signals and IPC through between rows
    });
    return layout;
  }

  /**
   * Mean final hidden state (after the last norm) over the positions that predict a response token,
   * of each sample at `cp` (rows [n][hiddenSize]).
   */
  async representations(cp: Checkpoint, samples: readonly TextSample[]): Promise<Float32Array[]> {
    const decoder = await this.at(cp);
    const d = this.task.base.config.hiddenSize;
    const rows: Float32Array[] = [];
    for (const s of samples) {
      const e = this.encode(s);
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
   * `cp`'s adapter, which is left as it was (LoRA checkpoints only): a decoder opened at `cp` for
   * these steps (on the gradient engine when it offers the optimizer, else on tfjs: onnxruntime
   * offers Adam only) trains `o.steps` epochs of one batch, evaluates, and is moved back to `cp`.
   *
   * @throws DdaError for full checkpoints, invalid options, or no engine offering the optimizer.
   */
  async lossesAfterSteps(cp: Checkpoint, updateOn: readonly TextSample[], evaluate: readonly TextSample[], o: ModelStepOptions): Promise<Float64Array> {
    if (cp.kind !== 'lora') throw new DdaError('optimizer steps from a checkpoint are offered on LoRA adapters only', 'use LoRA checkpoints for cea, or another scorer');
    checkStepOptions(updateOn, o);
    if (this.stepper && (this.stepper.checkpoint !== cp.id || this.stepper.optimizer !== o.optimizer)) {
      const old = this.stepper.decoder;
      this.stepper = null;
      await (await old).release();
    }
    this.stepper ??= {
      checkpoint: cp.id, optimizer: o.optimizer,
      decoder: (async () => {
        const engine = this.engine.optimizers.includes(o.optimizer) ? this.engine : await resolveEngine('tfjs', `${o.optimizer} steps`, this.log, this.options.backends);
        this.logOnce(`base weights: float32 for the ${o.optimizer} steps of ${engine.id} (training graphs take float32 base weights; a BF16/F16 folder is widened)`);
        return engine.open(this.task.base.config, this.task.base.tokenizer, this.weightsAt(cp), { trainable: 'lora' });
      })(),
    };
    const decoder = await this.stepper.decoder;
    try {
      // One batch of every sample per epoch: `steps` full-batch steps.
      await decoder.train(updateOn.map((s) => this.encode(s)), { epochs: o.steps, learningRate: o.learningRate, batchSize: updateOn.length, seed: 0, optimizer: o.optimizer });
      const out = new Float64Array(evaluate.length);
      for (const [i, s] of evaluate.entries()) out[i] = await decoder.loss(this.encode(s));
      return out;
    } finally {
      await decoder.setWeights({ adapter: cp.weights });
    }
  }

  /** Mean response-token loss (nats/token) of each sample at `cp`. */
  async losses(cp: Checkpoint, samples: readonly TextSample[]): Promise<Float64Array> {
    const decoder = await this.at(cp);
    const out = new Float64Array(samples.length);
    for (const [i, s] of samples.entries()) out[i] = await decoder.loss(this.encode(s));
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
    const tokens = samples.map((s) => this.encode(s).tokens);
    const moved = shift ? shiftedWeights(cp.weights, shift) : null;
    const decoder = await this.at(cp);
    const install = (w: Checkpoint['weights']): Promise<void> => decoder.setWeights(cp.kind === 'lora' ? { adapter: w } : { base: w });
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
   * Greedy generations (at most `maxNewTokens` tokens each, stopping at EOS or the chat template's
   * end-of-turn token, or when output and EOS would no longer fit the encoding's length) of the
   * model at `cp`, on the engine (onnxruntime: with its key/value cache).
   */
  async generate(cp: Checkpoint, prompts: readonly string[], maxNewTokens: number): Promise<string[]> {
    const { tokenizer, config } = this.task.base;
    const context = Math.min(this.task.encoding.maxLength, config.maxSeqLen);
    const decoder = await this.at(cp);
    const out: string[] = [];
    for (const p of prompts) {
      const { ids, limit } = generationPrompt(tokenizer, p, context);
      out.push(tokenizer.decode(await decoder.generate(ids, { maxNewTokens, limit, eosId: tokenizer.eosId, stopIds: [tokenizer.endOfTurn.id] })));
    }
    return out;
  }

  /** Releases the engine's decoders. */
  async dispose(): Promise<void> {
    const placed = this.placed;
    this.placed = null;
    if (placed) await (await placed.catch(() => null))?.decoder.release();
    const stepper = this.stepper;
    this.stepper = null;
    if (stepper) await (await stepper.decoder.catch(() => null))?.release();
  }
}
