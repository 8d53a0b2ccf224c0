/**
 * The model of a task at any of its checkpoints: per-example gradients, response representations
 * and optimizer-step losses, on the tfjs engine (@dda/model) or, for gradients, on onnxruntime
 * (the decoder's ONNX graph, @dda/backend-onnxruntime).
 */
import { DdaError, type GradientMatrix, type ModelStepOptions, type TextSample, yieldToEventLoop } from '@dda/core';
import { DecoderModel, startTfjsBackend } from '@dda/model';
import { OnnxDecoder, startOnnxRuntime } from '@dda/backend-onnxruntime';
import type { Checkpoint } from './checkpoints.js';
import type { AttributionTask } from './task.js';

/** Engine of the per-example gradients: tfjs (the reference) or the ONNX graph on onnxruntime (faster). */
export type GradientEngine = 'tfjs' | 'onnxruntime';

/** A logger of one line. */
export type Log = (line: string) => void;

/** Options of {@link CheckpointModel.open}. */
export interface EngineOptions {
  /** Engine of the per-example gradients (default `tfjs`). */
  readonly gradientEngine?: GradientEngine;
  /** tfjs backends to try in order (default: by priority). */
  readonly backends?: readonly string[];
  readonly log?: Log;
}

/**
 * The task's model, moved between checkpoints on demand: LoRA checkpoints install their adapter on
 * the base weights, full checkpoints replace every weight. Gradients are over the trainable
 * parameters: the LoRA adapters, or every parameter for full checkpoints. Call {@link dispose}.
 */
export class CheckpointModel {
  private active: string | null = null;
  private onnx: { checkpoint: string; decoder: Promise<OnnxDecoder> } | null = null;

  private constructor(
    private readonly task: AttributionTask,
    private readonly model: DecoderModel,
    /** The tfjs backend in use, e.g. `tfjs-wasm`. */
    readonly backend: string,
    readonly gradientEngine: GradientEngine,
    private readonly log: Log,
  ) {}

  /** Starts the tfjs backend and builds the base model. */
  static async open(task: AttributionTask, o: EngineOptions = {}): Promise<CheckpointModel> {
    const log = o.log ?? (() => {});
    const backend = await startTfjsBackend(o.backends, log);
    const model = new DecoderModel(task.base.config, task.base.tokenizer, task.base.weights);
    model.setEncoding({ maxLength: task.encoding.maxLength, overlong: task.encoding.overlong });
    return new CheckpointModel(task, model, backend.id, o.gradientEngine ?? 'tfjs', log);
  }

  /** What gradients are taken over at a checkpoint. */
  static parametersOf(cp: Checkpoint): 'lora' | 'all' {
    return cp.kind === 'lora' ? 'lora' : 'all';
  }

  /** Puts the tfjs model at `cp`. */
  activate(cp: Checkpoint): void {
    if (this.active === cp.id) return;
    if (cp.kind === 'lora') this.model.setLora(cp.lora as NonNullable<Checkpoint['lora']>, cp.weights);
    else this.model.setBaseWeights(cp.weights);
    this.active = cp.id;
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
    this.activate(cp);
    const g = this.model.perExampleGradientsEncoded(ids, encoded, CheckpointModel.parametersOf(cp), cp.id, () => onSample?.());
    await yieldToEventLoop(); // let progress, signals and IPC through between blocks
    return g;
  }

  /** Mean final hidden state over the response tokens of each sample at `cp` (rows [n][hiddenSize]). */
  representations(cp: Checkpoint, samples: readonly TextSample[]): Float32Array[] {
    this.activate(cp);
    return this.model.responseRepresentations(samples);
  }

  /**
   * Losses (nats/token) of `evaluate` after optimizer steps on `updateOn` from `cp`, the adapter
   * restored afterwards (LoRA checkpoints only).
   *
   * @throws DdaError for full checkpoints.
   */
  async lossesAfterSteps(cp: Checkpoint, updateOn: readonly TextSample[], evaluate: readonly TextSample[], o: ModelStepOptions): Promise<Float64Array> {
    if (cp.kind !== 'lora') throw new DdaError('optimizer steps from a checkpoint are offered on LoRA adapters only', 'use LoRA checkpoints for cea, or another scorer');
    this.activate(cp);
    return this.model.lossesAfterLoraSteps(updateOn, evaluate, o);
  }

  /** Mean response-token loss (nats/token) of each sample at `cp`. */
  losses(cp: Checkpoint, samples: readonly TextSample[]): Float64Array {
    this.activate(cp);
    return this.model.losses(samples);
  }

  /** Greedy generations (at most `maxNewTokens` tokens each, stopping at EOS) of the model at `cp`. */
  generate(cp: Checkpoint, prompts: readonly string[], maxNewTokens: number): string[] {
    this.activate(cp);
    return prompts.map((p) => this.model.generate(p, maxNewTokens));
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
      const backend = await startOnnxRuntime(undefined, this.log);
      const full = cp.kind === 'full';
      return new OnnxDecoder(backend, this.task.base.config, full ? null : cp.lora, full ? cp.weights : this.task.base.weights, full ? null : cp.weights, { parameters: CheckpointModel.parametersOf(cp) });
    })();
    this.onnx = { checkpoint: cp.id, decoder };
    return decoder;
  }

  /** Releases the ONNX sessions and the tfjs tensors. */
  async dispose(): Promise<void> {
    if (this.onnx) await (await this.onnx.decoder).release();
    this.onnx = null;
    this.model.dispose();
  }
}
