/**
 * The LLaMA-style decoder of @dda/model (RMSNorm, RoPE, SwiGLU, causal / sliding-window attention,
 * grouped-query attention, optional q/k/v biases, tied embeddings, LoRA on q, k, v, o, gate, up,
 * down) as an ONNX graph: forward (logits, masked mean cross-entropy) and, through
 * {@link GraphBuilder}'s hand-written VJPs, the gradient of that loss with respect to every LoRA
 * tensor. One example per run; the sequence is right-padded to a bucket length, which changes
 * nothing before the padding because attention is causal and padded positions carry no loss.
 */
import { DdaError, type GradientMatrix } from '@dda/core';
import type { DecoderConfig, LoraConfig, LoraTarget } from '@dda/model';
import { GraphBuilder } from './autodiff.js';
import type { OnnxRuntimeBackend } from './backend.js';
import { ONNX_TYPE, type OnnxModel, type OnnxValueInfo } from './onnx-model.js';
import type { OrtSession, OrtTensor } from './ort.js';

/** The decoder shape: @dda/model's DecoderConfig (a type-only import: this plugin never loads tfjs). */
export type OnnxDecoderConfig = Omit<DecoderConfig, 'maxSeqLen'>;
/** A LoRA target module. */
export type OnnxLoraTarget = LoraTarget;
/** LoRA adapters: ΔW = (alpha / rank) · B·A (PEFT). */
export type OnnxLoraConfig = LoraConfig;
/** Float32 tensors by Hugging Face / PEFT name (linear weights [out, in]), e.g. @dda/model's TensorMap. */
export type WeightMap = ReadonlyMap<string, { readonly shape: readonly number[]; readonly data: Float32Array }>;

const MODULE: Record<OnnxLoraTarget, string> = {
  q: 'self_attn.q_proj', k: 'self_attn.k_proj', v: 'self_attn.v_proj', o: 'self_attn.o_proj',
  gate: 'mlp.gate_proj', up: 'mlp.up_proj', down: 'mlp.down_proj',
};
const modulePath = (i: number, t: OnnxLoraTarget): string => `model.layers.${i}.${MODULE[t]}`;

function linearShape(c: OnnxDecoderConfig, t: OnnxLoraTarget): [number, number] {
  const d = c.hiddenSize;
  const kv = (d / c.numHeads) * c.numKvHeads;
  const shapes: Record<OnnxLoraTarget, [number, number]> = {
    q: [d, d], k: [kv, d], v: [kv, d], o: [d, d], gate: [c.intermediateSize, d], up: [c.intermediateSize, d], down: [d, c.intermediateSize],
  };
  return shapes[t];
}

/** Which parameters per-example gradients are taken over: the LoRA adapters or every base tensor. */
export type OnnxParameterSet = 'lora' | 'all';

/** PEFT names and shapes of every LoRA tensor (layer by layer, targets in config order, A [r, in] then B [out, r]). */
export function loraSpecs(c: OnnxDecoderConfig, lora: OnnxLoraConfig): { layer: number; target: OnnxLoraTarget; a: string; b: string; aShape: [number, number]; bShape: [number, number] }[] {
  const out = [];
  for (let i = 0; i < c.numLayers; i++) {
    for (const t of lora.targets) {
      const [o, n] = linearShape(c, t);
      const p = `base_model.model.${modulePath(i, t)}`;
      out.push({ layer: i, target: t, a: `${p}.lora_A.weight`, b: `${p}.lora_B.weight`, aShape: [lora.rank, n] as [number, number], bShape: [o, lora.rank] as [number, number] });
    }
  }
  return out;
}

/** Names of the graph's inputs and outputs. */
export const DECODER_IO = { ids: 'ids', positions: 'loss_positions', targets: 'targets', weights: 'loss_weights', loss: 'loss', logits: 'logits', hidden: 'hidden' } as const;
/** Graph output holding the gradient of LoRA tensor `name`. */
export const gradOutput = (name: string): string => `grad:${name}`;

/** RoPE tables as @dda/model builds them: frequencies repeated over both halves; cos, sin [T, hd]. */
function ropeTables(T: number, hd: number, theta: number): { cos: Float32Array; sin: Float32Array } {
  const half = hd / 2;
  const cos = new Float32Array(T * hd);
  const sin = new Float32Array(T * hd);
  for (let t = 0; t < T; t++) {
    for (let k = 0; k < half; k++) {
      const ang = t / Math.pow(theta, (2 * k) / hd);
      cos[t * hd + k] = cos[t * hd + k + half] = Math.cos(ang);
      sin[t * hd + k] = sin[t * hd + k + half] = Math.sin(ang);
    }
  }
  return { cos, sin };
}

/**
 * Builds the decoder graph for sequences of exactly `T` tokens with `P` loss positions.
 * Inputs: `ids` int64 [T]; `loss_positions` int64 [P] (positions whose next token carries loss),
 * `targets` int64 [P] (those next tokens), `loss_weights` [P, 1] (mask / number of loss tokens; 0
 * for padding entries); every LoRA tensor by name; every base tensor by name unless `baseWeights`
 * are given (then they are initializers of the graph). The output projection runs on the P loss
 * positions only (and on all T when `logits` is asked for).
 * Outputs: `loss` (scalar, nats/token), optionally `logits` [T, V] and `hidden` [T, d] (the final
 * hidden states, after the last norm), and with `gradients` one
 * `grad:<name>` per LoRA tensor in `loraNames` order.
 */
export function buildDecoderGraph(
  c: OnnxDecoderConfig,
  lora: OnnxLoraConfig | null,
  T: number,
  P: number,
  o: {
    readonly gradients: boolean;
    readonly logits: boolean;
    readonly hidden?: boolean;
    readonly baseWeights?: WeightMap;
    /** Differentiate the LoRA tensors (default) or every base tensor (then the base weights are inputs, never baked). */
    readonly parameters?: OnnxParameterSet;
  },
): { model: OnnxModel; parameterNames: string[] } {
  const all = o.parameters === 'all';
  if (all && o.baseWeights) throw new DdaError('ONNX decoder: base weights cannot be baked into a graph that differentiates them', "leave baseWeights out with parameters 'all'");
  const g = new GraphBuilder('dda-decoder');
  const d = c.hiddenSize;
  const H = c.numHeads;
  const KV = c.numKvHeads;
  const hd = d / H;
  const V = c.vocabSize;
  const ids = g.input(DECODER_IO.ids, [T], ONNX_TYPE.int64);
  const positions = g.input(DECODER_IO.positions, [P], ONNX_TYPE.int64);
  const targets = g.input(DECODER_IO.targets, [P], ONNX_TYPE.int64);
  const weights = g.input(DECODER_IO.weights, [P, 1]);
  // Frozen base weights: initializers when given (onnxruntime pre-packs them for its GEMMs), else graph inputs.
  const bases = new Map<string, string>();
  const base = (name: string, shape: readonly number[]): string => {
    let v = bases.get(name);
    if (v === undefined) {
      const t = o.baseWeights?.get(name);
      if (o.baseWeights && t === undefined) throw new DdaError(`ONNX decoder: missing base weight '${name}'`, 'pass every base tensor of the config');
      if (t && (t.shape.length !== shape.length || t.shape.some((x, k) => x !== shape[k]))) {
        throw new DdaError(`ONNX decoder: '${name}' has shape [${t.shape.join(', ')}], the config needs [${shape.join(', ')}]`, 'load weights that match the config');
      }
      v = t ? g.initializer(name, t.data, shape) : g.input(name, shape, ONNX_TYPE.float, all);
      bases.set(name, v);
    }
    return v;
  };
  const loraNames: string[] = [];
  const loraOf = new Map<string, { a: string; b: string }>();
  for (const spec of lora ? loraSpecs(c, lora) : []) {
    const a = g.input(spec.a, spec.aShape, ONNX_TYPE.float, !all);
    const b = g.input(spec.b, spec.bShape, ONNX_TYPE.float, !all);
    loraNames.push(a, b);
    loraOf.set(`${spec.layer}.${spec.target}`, { a, b });
  }
  const scale = lora ? g.scalar(lora.alpha / lora.rank) : '';
  const linear = (i: number, t: OnnxLoraTarget, x: string): string => {
    const mod = modulePath(i, t);
    const [out] = linearShape(c, t);
    let y = g.linear(x, base(`${mod}.weight`, linearShape(c, t)));
    if (c.attentionBias && (t === 'q' || t === 'k' || t === 'v')) y = g.add(y, base(`${mod}.bias`, [out]));
    const ab = loraOf.get(`${i}.${t}`);
    if (ab) y = g.add(y, g.mul(g.linear(g.linear(x, ab.a), ab.b), scale));
    return y;
  };
  const eps = g.scalar(c.rmsNormEps);
  const rmsNorm = (x: string, w: string): string => g.mul(g.mul(x, g.rsqrt(g.add(g.meanLast(g.mul(x, x)), eps))), w);
  const { cos: cosData, sin: sinData } = ropeTables(T, hd, c.ropeTheta);
  const cos = g.constant('rope_cos', cosData, [T, hd]);
  const sin = g.constant('rope_sin', sinData, [T, hd]);
  // rotate_half(x) = [−x2, x1] = x · R.
  const rData = new Float32Array(hd * hd);
  for (let j = 0; j < hd / 2; j++) {
    rData[(j + hd / 2) * hd + j] = -1;
    rData[j * hd + j + hd / 2] = 1;
  }
  const rot = g.constant('rope_rot', rData, [hd, hd]);
  const maskData = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) maskData[i * T + j] = j <= i && (c.slidingWindow === null || i - j < c.slidingWindow) ? 0 : -1e9;
  const mask = g.constant('causal_mask', maskData, [T, T]);
  const rope = (x: string, n: number): string => g.add(g.mul(x, cos), g.mul(g.matmul(x, g.expand(rot, [n, hd, hd])), sin));
  const heads = (y: string, n: number): string => g.transpose(g.reshape(y, [T, n, hd]), [1, 0, 2]);
  const repeatKv = (y: string): string => (KV === H ? y : g.reshape(g.expand(g.reshape(y, [KV, 1, T, hd]), [KV, H / KV, T, hd]), [H, T, hd]));
  const invSqrtHd = g.scalar(1 / Math.sqrt(hd));

  const embed = base('model.embed_tokens.weight', [V, d]);
  // Differentiated embeddings need the scatter-add VJP of gatherRows; frozen ones a plain Gather.
  let x = all ? g.gatherRows(embed, ids) : g.gather(embed, ids);
  for (let i = 0; i < c.numLayers; i++) {
    const h = rmsNorm(x, base(`model.layers.${i}.input_layernorm.weight`, [d]));
    const q = rope(heads(linear(i, 'q', h), H), H);
    const k = repeatKv(rope(heads(linear(i, 'k', h), KV), KV));
    const v = repeatKv(heads(linear(i, 'v', h), KV));
    const scores = g.add(g.mul(g.matmul(q, g.swapLast(k)), invSqrtHd), mask);
    const att = g.matmul(g.softmax(scores), v);
    x = g.add(x, linear(i, 'o', g.reshape(g.transpose(att, [1, 0, 2]), [T, d])));
    const h2 = rmsNorm(x, base(`model.layers.${i}.post_attention_layernorm.weight`, [d]));
    const gate = linear(i, 'gate', h2);
    x = g.add(x, linear(i, 'down', g.mul(g.mul(gate, g.sigmoid(gate)), linear(i, 'up', h2))));
  }
  const hidden = rmsNorm(x, base('model.norm.weight', [d]));
  const head = c.tieWordEmbeddings ? embed : base('lm_head.weight', [V, d]);
  const loss = g.crossEntropy(g.linear(g.gatherRows(hidden, positions), head), targets, weights);
  const outputs: OnnxValueInfo[] = [g.output(DECODER_IO.loss, loss)];
  if (o.logits) outputs.push(g.output(DECODER_IO.logits, g.linear(hidden, head)));
  if (o.hidden) outputs.push(g.output(DECODER_IO.hidden, hidden));
  const parameterNames = all ? [...bases.keys()] : loraNames;
  if (o.gradients) {
    if (!all && !lora) throw new DdaError('ONNX decoder: gradients over LoRA parameters were asked for, but there are no LoRA adapters', "pass a LoRA config, or use parameters 'all'");
    const grads = g.backward(loss, parameterNames);
    for (const n of parameterNames) outputs.push(g.output(gradOutput(n), grads.get(n) as string));
  }
  return { model: g.model(outputs), parameterNames };
}

/** One encoded example: token ids and the loss mask (length tokens − 1; 1 where tokens[t+1] is a response token). */
export interface OnnxEncodedExample {
  readonly tokens: Int32Array;
  readonly lossMask: Float32Array;
}

/**
 * The decoder on an onnxruntime backend: losses, logits, hidden states and per-example LoRA gradients, agreeing
 * with @dda/model's tfjs engine. Sessions are built per padded sequence length and reused; the base
 * weights are baked into each session's graph, the LoRA weights are fed at every run.
 */
export class OnnxDecoder {
  private readonly sessions = new Map<string, Promise<{ session: OrtSession; parameterNames: string[] }>>();
  private readonly weightFeeds: Record<string, OrtTensor> = {};

  readonly padMultiple: number;
  /** The parameters gradients are taken over. */
  readonly parameters: OnnxParameterSet;
  private readonly threads: number | undefined;

  /**
   * @param options.padMultiple - Sequences (and loss positions) are right-padded to a multiple of
   *   this (default 16), so one session serves many lengths.
   * @param options.intraOpNumThreads - onnxruntime threads per operator (default: onnxruntime's, one per core).
   * @param options.parameters - Gradients over the LoRA tensors (`lora`, default: the base weights are
   *   baked into the graph) or over every base tensor (`all`, in the order of `base`'s keys, as tfjs's
   *   `perExampleGradients(..., 'all')`; the base weights are then fed at every run).
   */
  constructor(
    readonly backend: OnnxRuntimeBackend,
    readonly config: OnnxDecoderConfig,
    readonly lora: OnnxLoraConfig | null,
    base: WeightMap,
    loraWeights: WeightMap | null,
    options: { readonly padMultiple?: number; readonly intraOpNumThreads?: number; readonly parameters?: OnnxParameterSet } = {},
  ) {
    this.padMultiple = options.padMultiple ?? 16;
    this.parameters = options.parameters ?? 'lora';
    this.threads = options.intraOpNumThreads;
    if (!Number.isInteger(this.padMultiple) || this.padMultiple < 1) throw new DdaError(`ONNX decoder: padMultiple must be a positive integer, got ${this.padMultiple}`, 'pass e.g. 16');
    this.base = base;
    const fed = this.parameters === 'all' ? [...base, ...(loraWeights ?? new Map())] : [...(loraWeights ?? new Map())];
    for (const [name, t] of fed) this.weightFeeds[name] = new backend.ort.Tensor('float32', t.data, [...t.shape]);
  }

  private readonly base: WeightMap;

  private session(T: number, P: number, gradients: boolean, logits: boolean, hidden: boolean): Promise<{ session: OrtSession; parameterNames: string[] }> {
    const key = `${T}:${P}:${gradients}:${logits}:${hidden}`;
    let s = this.sessions.get(key);
    if (s === undefined) {
      const all = this.parameters === 'all';
      const { model, parameterNames } = buildDecoderGraph(this.config, this.lora, T, P, { gradients, logits, hidden, parameters: this.parameters, ...(all ? {} : { baseWeights: this.base }) });
      s = this.backend.createSession(model, this.threads === undefined ? {} : { intraOpNumThreads: this.threads }).then((session) => ({ session, parameterNames }));
      this.sessions.set(key, s);
    }
    return s;
  }

  /** Feeds of one example: ids padded to T, loss positions padded to P (weight 0). */
  private feeds(e: OnnxEncodedExample): { T: number; P: number; feeds: (names: readonly string[]) => Record<string, OrtTensor> } {
    const { Tensor } = this.backend.ort;
    const n = e.tokens.length;
    if (n < 2 || e.lossMask.length !== n - 1) throw new DdaError(`ONNX decoder: ${n} tokens with a loss mask of ${e.lossMask.length}`, 'give tokens.length − 1 mask entries and at least 2 tokens');
    const T = this.padded(n);
    const ids = new BigInt64Array(T);
    for (let t = 0; t < n; t++) {
      const id = e.tokens[t] as number;
      if (!(Number.isInteger(id) && id >= 0 && id < this.config.vocabSize)) throw new DdaError(`ONNX decoder: token id ${id} outside the vocabulary of ${this.config.vocabSize}`, "encode with the model's tokenizer");
      ids[t] = BigInt(id);
    }
    const loss: number[] = [];
    let count = 0;
    for (let t = 0; t < n - 1; t++) {
      const m = e.lossMask[t] as number;
      count += m;
      if (m !== 0) loss.push(t);
    }
    const P = this.padded(Math.max(1, loss.length));
    const positions = new BigInt64Array(P);
    const targets = new BigInt64Array(P);
    const w = new Float32Array(P);
    loss.forEach((t, k) => {
      positions[k] = BigInt(t);
      targets[k] = BigInt(e.tokens[t + 1] as number);
      w[k] = (e.lossMask[t] as number) / Math.max(count, 1);
    });
    return {
      T,
      P,
      feeds: (inputNames) => {
        const feeds: Record<string, OrtTensor> = {
          [DECODER_IO.ids]: new Tensor('int64', ids, [T]),
          [DECODER_IO.positions]: new Tensor('int64', positions, [P]),
          [DECODER_IO.targets]: new Tensor('int64', targets, [P]),
          [DECODER_IO.weights]: new Tensor('float32', w, [P, 1]),
        };
        for (const name of inputNames) {
          if (name in feeds) continue;
          const f = this.weightFeeds[name];
          if (f === undefined) throw new DdaError(`ONNX decoder: missing weight '${name}'`, 'pass every LoRA tensor of the config (and every base tensor with parameters all)');
          feeds[name] = f;
        }
        return feeds;
      },
    };
  }

  private padded(n: number): number {
    return Math.ceil(n / this.padMultiple) * this.padMultiple;
  }

  private async run(e: OnnxEncodedExample, gradients: boolean, logits: boolean, hidden = false): Promise<{ out: Record<string, OrtTensor> }> {
    const { T, P, feeds } = this.feeds(e);
    const { session } = await this.session(T, P, gradients, logits, hidden);
    return { out: await session.run(feeds(session.inputNames)) };
  }

  /** Mean masked cross-entropy (nats/token) of one example. */
  async loss(e: OnnxEncodedExample): Promise<number> {
    return ((await this.run(e, false, false)).out[DECODER_IO.loss]?.data as Float32Array)[0] as number;
  }

  /** Final hidden states (after the last norm) [n × d], row-major, of one token sequence. */
  async hiddenStates(tokens: Int32Array): Promise<Float32Array> {
    const { out } = await this.run({ tokens, lossMask: new Float32Array(tokens.length - 1) }, false, false, true);
    return (out[DECODER_IO.hidden]?.data as Float32Array).slice(0, tokens.length * this.config.hiddenSize);
  }

  /** Next-token logits [n × V] (row-major) of one token sequence. */
  async logits(tokens: Int32Array): Promise<Float32Array> {
    const { out } = await this.run({ tokens, lossMask: new Float32Array(tokens.length - 1) }, false, true);
    return (out[DECODER_IO.logits]?.data as Float32Array).slice(0, tokens.length * this.config.vocabSize);
  }

  /** Names and sizes of the differentiated tensors, in flattening order (PEFT order for LoRA, `base`'s key order for all). */
  private parameterLayout(): { names: string[]; sizes: number[] } {
    if (this.parameters === 'all') return { names: [...this.base.keys()], sizes: [...this.base.values()].map((t) => t.data.length) };
    if (!this.lora) throw new DdaError('ONNX decoder: gradients over LoRA parameters were asked for, but there are no LoRA adapters', "pass a LoRA config, or use parameters 'all'");
    const specs = loraSpecs(this.config, this.lora);
    return { names: specs.flatMap((s) => [s.a, s.b]), sizes: specs.flatMap((s) => [s.aShape[0] * s.aShape[1], s.bShape[0] * s.bShape[1]]) };
  }

  /**
   * Gradient of the example's loss with respect to the decoder's parameter set (see the
   * constructor), flattened and concatenated in {@link parameterLayout} order, and the loss.
   */
  async lossAndGradient(e: OnnxEncodedExample): Promise<{ loss: number; gradient: Float32Array; names: string[]; sizes: number[] }> {
    const { names, sizes } = this.parameterLayout();
    const { out } = await this.run(e, true, false);
    const gradient = new Float32Array(sizes.reduce((a, b) => a + b, 0));
    let off = 0;
    names.forEach((n, k) => {
      const part = out[gradOutput(n)]?.data as Float32Array | undefined;
      if (part === undefined || part.length !== sizes[k]) throw new DdaError(`ONNX decoder: no gradient of the expected size for '${n}'`, 'check that the weights match the config');
      gradient.set(part, off);
      off += part.length;
    });
    return { loss: (out[DECODER_IO.loss]?.data as Float32Array)[0] as number, gradient, names, sizes };
  }

  /**
   * Per-example gradients as a core GradientMatrix (one row per example), what tfjs's
   * `DecoderModel.perExampleGradientsEncoded(ids, encoded, parameters, checkpoint)` returns.
   */
  async perExampleGradients(ids: readonly string[], encoded: readonly OnnxEncodedExample[], checkpoint: string, onSample?: (done: number) => void): Promise<GradientMatrix> {
    if (ids.length !== encoded.length) throw new DdaError(`ONNX decoder: ${ids.length} ids for ${encoded.length} examples`, 'pass one id per example');
    const { names, sizes } = this.parameterLayout();
    const rows: Float32Array[] = [];
    for (const [k, e] of encoded.entries()) {
      rows.push((await this.lossAndGradient(e)).gradient);
      onSample?.(k + 1);
    }
    return { ids: [...ids], dim: sizes.reduce((a, b) => a + b, 0), rows, parameterNames: names, parameterSizes: sizes, checkpoint };
  }

  /** Releases every session. */
  async release(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).session.release();
    this.sessions.clear();
  }
}
