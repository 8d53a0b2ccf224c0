import * as tf from '@tensorflow/tfjs';
import { DdaError, type GradientMatrix, type ModelStepOptions, type TextSample } from '@dda/core';
import {
  type DecoderConfig, type EncodeOptions, type EncodedExample, type LoraConfig, type NamedTensor, type TensorMap, type Tokenizer, type ParameterSet, type TrainOptions,
  assertFiniteTensors, checkLoraFits, checkStepOptions, checkTokenizerFits, cloneTensors, generationPrompt, encodeSample, initLoraWeights, loraModuleList, loraWeightSpecs, targetModule, trainingLoop,
  validateDecoderConfig, validateLoraConfig,
} from '@dda/model';
import { type DecoderParams, type VariableMap, forward, sequenceLosses } from './decoder.js';

let variableCounter = 0;
function toVariables(m: TensorMap, trainable: boolean): VariableMap {
  const out: VariableMap = new Map();
  // tfjs variable names are global and must be unique: suffix a counter.
  for (const [name, t] of m) out.set(name, tf.variable(tf.tensor(t.data, [...t.shape], 'float32'), trainable, `${name}#${variableCounter++}`));
  return out;
}

function readVariables(m: VariableMap): TensorMap {
  const out: TensorMap = new Map();
  for (const [name, v] of m) out.set(name, { shape: [...v.shape], data: Float32Array.from(v.dataSync() as Float32Array) });
  return out;
}

/**
 * A LLaMA-style decoder on tfjs with optional LoRA adapters: loss, training, greedy generation,
 * hidden states and per-example gradients. Weights use Hugging Face / PEFT tensor names.
 * Call {@link dispose} when done (tfjs memory is not garbage-collected).
 */
export class DecoderModel {
  private base: VariableMap;
  private lora: { config: LoraConfig; vars: VariableMap; scales: ReadonlyMap<string, number> } | null = null;

  /**
   * @param tokenizer A word-level tokenizer must have exactly `config.vocabSize` entries; a Hugging
   *   Face tokenizer at most that many (checkpoints pad their embedding matrix).
   */
  constructor(readonly config: DecoderConfig, readonly tokenizer: Tokenizer, baseWeights: TensorMap) {
    validateDecoderConfig(config);
    checkTokenizerFits(tokenizer, config);
    assertFiniteTensors(baseWeights, 'base weights');
    this.base = toVariables(baseWeights, true);
  }

  /** Whether the pass being run differentiates the base weights (training or gradients over 'all'). */
  private baseNeedsGrad = false;

  private get params(): DecoderParams {
    return { config: this.config, base: this.base, lora: this.lora, frozenBase: !this.baseNeedsGrad };
  }

  /** Runs `f` with the base weights marked as differentiated when `set` is 'all'. */
  private withParameterSet<T>(set: ParameterSet, f: () => T): T {
    const before = this.baseNeedsGrad;
    this.baseNeedsGrad = set === 'all';
    try {
      return f();
    } finally {
      this.baseNeedsGrad = before;
    }
  }

  /** Adds fresh LoRA adapters (B = 0, so outputs are unchanged) from a seed, replacing any existing ones. */
  addLora(config: LoraConfig, seed: number): void {
    validateLoraConfig(config);
    this.setLora(config, initLoraWeights(this.config, config, seed));
  }

  /**
   * Installs LoRA adapter weights (PEFT names), checking that they fit ({@link checkLoraFits});
   * the tensors are kept in {@link loraWeightSpecs} order, which fixes the order of gradient rows.
   */
  setLora(config: LoraConfig, weights: TensorMap): void {
    validateLoraConfig(config);
    checkLoraFits(this.config, config, weights);
    const ordered: TensorMap = new Map(loraWeightSpecs(this.config, config).map(({ name }) => [name, weights.get(name) as NamedTensor]));
    if (this.lora) for (const v of this.lora.vars.values()) v.dispose();
    const scales = new Map(loraModuleList(this.config.numLayers, config).map((m) => [targetModule(m.layer, m.target), m.scale]));
    this.lora = { config, vars: toVariables(ordered, true), scales };
  }

  get loraConfig(): LoraConfig | null {
    return this.lora?.config ?? null;
  }

  /** Copies of the base weights. */
  baseWeights(): TensorMap {
    return readVariables(this.base);
  }

  /** Copies of the LoRA weights (throws if there are none). */
  loraWeights(): TensorMap {
    if (!this.lora) throw new DdaError('the model has no LoRA adapters', 'call addLora or load an adapter first');
    return readVariables(this.lora.vars);
  }

  /** Names, sizes and shapes of the tensors a gradient row over `set` holds, in row order. */
  parameterLayout(set: ParameterSet): { names: string[]; sizes: number[]; shapes: number[][] } {
    const { names, vars } = this.variablesOf(set);
    return { names: [...names], sizes: vars.map((v) => v.size), shapes: vars.map((v) => [...v.shape]) };
  }

  /** Replaces the base weights in place (same names and shapes). */
  setBaseWeights(weights: TensorMap): void {
    assertFiniteTensors(weights, 'base weights');
    for (const [name, v] of this.base) {
      const t = weights.get(name);
      if (!t || t.data.length !== v.size) throw new DdaError(`base weight '${name}' is missing or has the wrong size`);
      v.assign(tf.tensor(t.data, [...v.shape], 'float32'));
    }
  }

  /**
   * Replaces some base weights in place (the names given; the same shapes), e.g. the modules an
   * adapter saved (PEFT's modules_to_save) over the base model's.
   *
   * @throws DdaError naming a tensor the model does not have, or of another size.
   */
  replaceBaseTensors(weights: TensorMap): void {
    assertFiniteTensors(weights, 'base weights');
    for (const [name, t] of weights) {
      const v = this.base.get(name);
      if (!v || t.data.length !== v.size) throw new DdaError(`base weight '${name}' is ${v ? `of ${v.size} values, not ${t.data.length}` : 'not a weight of this model'}`);
    }
    for (const [name, t] of weights) (this.base.get(name) as tf.Variable).assign(tf.tensor(t.data, [...(this.base.get(name) as tf.Variable).shape], 'float32'));
  }

  private encoding: { maxLength: number; overlong: EncodeOptions['overlong'] } | null = null;

  /**
   * How {@link encode} treats long samples from now on: at most `maxLength` tokens (default and
   * upper bound: the config's maxSeqLen), longer ones failing or truncated (see OverlongPolicy).
   */
  setEncoding(o: { readonly maxLength?: number; readonly overlong?: EncodeOptions['overlong'] }): void {
    const maxLength = Math.min(o.maxLength ?? this.config.maxSeqLen, this.config.maxSeqLen);
    this.encoding = { maxLength, overlong: o.overlong };
  }

  /** Encodes a sample with this model's tokenizer and context length (see {@link encodeSample} and {@link setEncoding}). */
  encode(s: TextSample, o: EncodeOptions = {}): EncodedExample {
    const e = this.encoding;
    return encodeSample(this.tokenizer, s, e?.maxLength ?? this.config.maxSeqLen, { ...(e?.overlong ? { overlong: e.overlong } : {}), ...o });
  }

  private batchTensors(batch: readonly EncodedExample[]): { tokens: tf.Tensor2D; mask: tf.Tensor2D } {
    const T = Math.max(...batch.map((e) => e.tokens.length));
    const tokens = new Int32Array(batch.length * T).fill(this.tokenizer.padId);
    const mask = new Float32Array(batch.length * (T - 1));
    batch.forEach((e, b) => {
      tokens.set(e.tokens, b * T);
      mask.set(e.lossMask, b * (T - 1));
    });
    return { tokens: tf.tensor2d(tokens, [batch.length, T], 'int32'), mask: tf.tensor2d(mask, [batch.length, T - 1]) };
  }

  private variablesOf(set: ParameterSet): { names: string[]; vars: tf.Variable[] } {
    const src = set === 'lora' ? this.lora?.vars : this.base;
    if (!src) throw new DdaError('gradients over LoRA parameters were asked for, but the model has no LoRA adapters', "add adapters, or use parameters 'all'");
    return { names: [...src.keys()], vars: [...src.values()] };
  }

  /** Mean response-token cross-entropy (nats/token) of each sample. */
  losses(samples: readonly TextSample[], batchSize = 16): Float64Array {
    const enc = samples.map((s) => this.encode(s));
    const out = new Float64Array(samples.length);
    for (let s = 0; s < enc.length; s += batchSize) {
      const batch = enc.slice(s, s + batchSize);
      const l = tf.tidy(() => {
        const { tokens, mask } = this.batchTensors(batch);
        return sequenceLosses(this.params, tokens, mask);
      });
      out.set(l.dataSync() as Float32Array, s);
      l.dispose();
    }
    return out;
  }

  /** Trains with Adam on the mean per-sample loss; returns the mean loss of each epoch. */
  async train(samples: readonly TextSample[], o: TrainOptions): Promise<number[]> {
    if (samples.length === 0) throw new DdaError('cannot train on an empty data set');
    return this.trainEncoded(samples.map((s) => this.encode(s)), o);
  }

  /** {@link train} on already-encoded examples, with Adam (default) or plain SGD. */
  async trainEncoded(enc: readonly EncodedExample[], o: TrainOptions & { readonly optimizer?: 'adam' | 'sgd' }): Promise<number[]> {
    const { vars } = this.variablesOf(o.parameters);
    const opt = (o.optimizer ?? 'adam') === 'adam' ? tf.train.adam(o.learningRate) : tf.train.sgd(o.learningRate);
    try {
      // The loop every engine runs (@dda/model); the step here: tfjs's optimizer on the batch's mean loss.
      return await trainingLoop(enc, o, async (batch) => {
        const lossT = this.withParameterSet(o.parameters, () => tf.tidy(() => {
          const { tokens, mask } = this.batchTensors(batch);
          return opt.minimize(() => tf.mean(sequenceLosses(this.params, tokens, mask)) as tf.Scalar, true, vars) as tf.Scalar;
        }));
        const loss = (await lossT.data())[0] as number;
        lossT.dispose();
        return loss;
      });
    } finally {
      opt.dispose();
    }
  }

  /**
   * Per-example gradients of the mean response-token loss (nats/token) with respect to the
   * chosen parameters, one flattened Float32Array row per sample, tensors in name order.
   */
  perExampleGradients(samples: readonly TextSample[], set: ParameterSet, checkpoint: string, onSample?: (done: number) => void): GradientMatrix {
    return this.perExampleGradientsEncoded(samples.map((s) => s.id), samples.map((s) => this.encode(s)), set, checkpoint, onSample);
  }

  /** {@link perExampleGradients} on already-encoded examples. */
  perExampleGradientsEncoded(
    ids: readonly string[],
    encoded: readonly EncodedExample[],
    set: ParameterSet,
    checkpoint: string,
    onSample?: (done: number) => void,
  ): GradientMatrix {
    const { names, vars } = this.variablesOf(set);
    const sizes = vars.map((v) => v.size);
    const dim = sizes.reduce((a, b) => a + b, 0);
    const rows: Float32Array[] = [];
    encoded.forEach((e, idx) => {
      const row = new Float32Array(dim);
      this.withParameterSet(set, () => tf.tidy(() => {
        const { tokens, mask } = this.batchTensors([e]);
        const { grads } = tf.variableGrads(() => tf.sum(sequenceLosses(this.params, tokens, mask)) as tf.Scalar, vars);
        let off = 0;
        vars.forEach((v, k) => {
          const g = grads[v.name];
          if (g) row.set(g.dataSync() as Float32Array, off);
          off += sizes[k] as number;
        });
      }));
      rows.push(row);
      onSample?.(idx + 1);
    });
    return { ids: [...ids], dim, rows, parameterNames: names, parameterSizes: sizes, parameterShapes: vars.map((v) => [...v.shape]), checkpoint };
  }

  /** Next-token logits [T × V] (row-major) of one token sequence. */
  logits(tokens: readonly number[]): Float32Array {
    // The array is read outside tf.tidy: tidy walks a returned container element by element
    // looking for tensors, which takes a minute for T × 32,000 logits.
    const t = tf.tidy(() => forward(this.params, tf.tensor2d(Int32Array.from(tokens), [1, tokens.length], 'int32')).logits);
    try {
      return (t.dataSync() as Float32Array).slice();
    } finally {
      t.dispose();
    }
  }

  /** Mean masked loss of already-encoded examples (nats/token). */
  lossesEncoded(encoded: readonly EncodedExample[]): Float64Array {
    const out = new Float64Array(encoded.length);
    encoded.forEach((e, k) => {
      const l = tf.tidy(() => {
        const { tokens, mask } = this.batchTensors([e]);
        return sequenceLosses(this.params, tokens, mask).dataSync()[0] as number;
      });
      out[k] = l;
    });
    return out;
  }

  /** Final hidden states (after the last norm) [T × hiddenSize] (row-major) of one token sequence. */
  hiddenStates(tokens: readonly number[]): Float32Array {
    const t = tf.tidy(() => forward(this.params, tf.tensor2d(Int32Array.from(tokens), [1, tokens.length], 'int32')).hidden);
    try {
      return (t.dataSync() as Float32Array).slice();
    } finally {
      t.dispose();
    }
  }

  /** Mean final hidden state over the response tokens of each sample: rows [n][hiddenSize]. */
  responseRepresentations(samples: readonly TextSample[]): Float32Array[] {
    return samples.map((s) => {
      const e = this.encode(s);
      return tf.tidy(() => {
        const { tokens, mask } = this.batchTensors([e]);
        const { hidden } = forward(this.params, tokens);
        const h = tf.slice(tf.squeeze(hidden, [0]), [0, 0], [e.tokens.length - 1, this.config.hiddenSize]);
        const m = tf.reshape(tf.squeeze(mask, [0]), [-1, 1]);
        return Float32Array.from(tf.div(tf.sum(tf.mul(h, m), 0), tf.sum(m)).dataSync() as Float32Array);
      });
    });
  }

  /**
   * Greedy decoding of a response to `prompt`, at most `maxNewTokens`, stopping at EOS or the chat
   * template's end-of-turn token ({@link Tokenizer.endOfTurn}), or when
   * prompt + output + EOS would no longer fit the context (so the sample can always be encoded).
   *
   * @throws DdaError if the prompt is empty without a BOS token, or leaves no room for an output.
   */
  generate(prompt: string, maxNewTokens: number): string {
    const { ids, limit } = generationPrompt(this.tokenizer, prompt, this.encoding?.maxLength ?? this.config.maxSeqLen);
    return this.tokenizer.decode(this.generateIds(ids, { maxNewTokens, limit, eosId: this.tokenizer.eosId, stopIds: [this.tokenizer.endOfTurn.id] }));
  }

  /**
   * Greedy decoding from token ids: at most `maxNewTokens` new ids, stopping at `eosId` or a
   * `stopIds` token (not emitted) or before prompt + output reaches `limit` tokens.
   */
  generateIds(promptIds: readonly number[], o: { readonly maxNewTokens: number; readonly limit: number; readonly eosId: number; readonly stopIds?: readonly number[] }): number[] {
    const ids = [...promptIds];
    const stop = new Set([o.eosId, ...(o.stopIds ?? [])]);
    const out: number[] = [];
    for (let n = 0; n < o.maxNewTokens && ids.length < o.limit; n++) {
      const next = tf.tidy(() => {
        const tokens = tf.tensor2d(Int32Array.from(ids), [1, ids.length], 'int32');
        const { logits } = forward(this.params, tokens);
        const last = tf.slice(logits, [0, ids.length - 1, 0], [1, 1, this.config.vocabSize]);
        return tf.argMax(tf.reshape(last, [-1])).dataSync()[0] as number;
      });
      if (stop.has(next)) break;
      ids.push(next);
      out.push(next);
    }
    return out;
  }

  /**
   * Losses after a few optimizer steps, for contrastive error attribution (`cea`): takes
   * `o.steps` full-batch steps (`adam` with fresh moments, or plain `sgd`, at `o.learningRate`) on the
   * mean response-token loss of `updateOn` over the LoRA adapters, evaluates the loss of every
   * sample of `evaluate` (mean response-token cross-entropy, nats/token), and then restores the
   * adapters bit for bit, also when it throws. Deterministic (full batch, no sampling); the base
   * weights are never touched. Cost: `steps` forward/backward passes over `updateOn` plus one
   * forward pass over `evaluate`.
   *
   * @throws DdaError if the model has no LoRA adapters, `updateOn` is empty, or the options are invalid.
   */
  async lossesAfterLoraSteps(updateOn: readonly TextSample[], evaluate: readonly TextSample[], o: ModelStepOptions): Promise<Float64Array> {
    checkStepOptions(updateOn, o);
    const { vars } = this.variablesOf('lora');
    const saved = vars.map((v) => v.clone());
    const opt = o.optimizer === 'adam' ? tf.train.adam(o.learningRate) : tf.train.sgd(o.learningRate);
    try {
      const enc = updateOn.map((s) => this.encode(s));
      for (let step = 0; step < o.steps; step++) {
        const loss = tf.tidy(() => {
          const { tokens, mask } = this.batchTensors(enc);
          return opt.minimize(() => tf.mean(sequenceLosses(this.params, tokens, mask)) as tf.Scalar, true, vars) as tf.Scalar;
        });
        const l = (await loss.data())[0] as number;
        loss.dispose();
        if (!Number.isFinite(l)) throw new DdaError(`the loss diverged during the optimizer steps (${l})`, 'lower the learning rate');
      }
      return this.losses(evaluate);
    } finally {
      vars.forEach((v, k) => v.assign(saved[k] as tf.Tensor));
      for (const t of saved) t.dispose();
      opt.dispose();
    }
  }

  /** A copy of the model state (base and LoRA weights). */
  snapshot(): { base: TensorMap; lora: TensorMap | null } {
    return { base: cloneTensors(this.baseWeights()), lora: this.lora ? this.loraWeights() : null };
  }

  dispose(): void {
    for (const v of this.base.values()) v.dispose();
    if (this.lora) for (const v of this.lora.vars.values()) v.dispose();
    this.lora = null;
  }
}
