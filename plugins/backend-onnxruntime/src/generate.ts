/**
 * Greedy decoding on onnxruntime with a key/value cache: one prefill run over the prompt (the
 * decoder graph with `present` outputs: every layer's keys after RoPE and values), then one run
 * of the one-token decode graph ({@link buildDecodeStepGraph}) per new token, which attends to the
 * cached keys and values instead of re-running the prefix. Same stopping rule as @dda/backend-tfjs's
 * `DecoderModel.generate`: at most `maxNewTokens`, stop at EOS (not emitted), never beyond the
 * context length.
 */
import { DdaError, attentionMaskRow } from '@dda/core';
import { headDim } from '@dda/model';
import type { OnnxRuntimeBackend } from './backend.js';
import {
  DECODER_IO, DECODE_IO, attentionKinds, buildDecodeStepGraph, buildDecoderGraph, chooseBaseWeightPlacement, ortWeightFeeds, presentOutputs, ropeTables,
  type BaseWeightPlacement, type OnnxDecoderConfig, type OnnxLoraConfig, type WeightMap,
} from './decoder-graph.js';
import type { OrtSession, OrtTensor } from './ort.js';

/** Options of {@link OnnxGenerator.generate}. */
export interface OnnxGenerateOptions {
  /** At most this many new tokens. */
  readonly maxNewTokens: number;
  /** The end-of-sequence id: decoding stops when it is the argmax (it is not returned). */
  readonly eosId: number;
  /** Other ids that stop decoding as eosId does (a chat template's end-of-turn token, e.g. Llama-3's `<|eot_id|>`). */
  readonly stopIds?: readonly number[];
}

/** Index of the largest entry (the first one on ties, as tfjs's argMax). */
function argmax(x: Float32Array): number {
  let best = 0;
  for (let k = 1; k < x.length; k++) if ((x[k] as number) > (x[best] as number)) best = k;
  return best;
}

/**
 * Greedy generation with a decoder's base weights and optional LoRA adapters (the adapters baked
 * into the graphs as initializers, the base weights too up to 256 MiB, else fed at every run: see
 * {@link BaseWeightPlacement}). One decode-step session for the whole context; prefill sessions
 * per padded prompt length.
 */
export class OnnxGenerator {
  private readonly sessions = new Map<string, Promise<OrtSession>>();
  private readonly padMultiple: number;
  /** RoPE tables [contextLength, hd] and window of each attention kind (see attentionKinds). */
  private readonly kinds: Map<string, { cos: Float32Array; sin: Float32Array; window: number | null }>;
  private readonly hd: number;
  private readonly kvDim: number;
  /** Where the base weights are (see {@link BaseWeightPlacement}). */
  readonly basePlacement: BaseWeightPlacement;
  /** The base weights' tensors when they are fed. */
  private readonly baseFeeds: Record<string, OrtTensor>;

  /**
   * @param contextLength - The model's context length (maxSeqLen): no token is generated at or beyond it.
   * @param options.padMultiple - Prompts are right-padded to a multiple of this (default 16) for the prefill.
   * @param options.intraOpNumThreads - onnxruntime threads per operator (default: onnxruntime's).
   * @param options.basePlacement - Base weights baked into the graphs or fed at every run (default `auto`: fed above 256 MiB).
   * @throws DdaError if the context length is not a positive integer.
   */
  constructor(
    readonly backend: OnnxRuntimeBackend,
    readonly config: OnnxDecoderConfig,
    readonly contextLength: number,
    private readonly base: WeightMap,
    private readonly lora: { readonly config: OnnxLoraConfig; readonly weights: WeightMap } | null,
    private readonly options: { readonly padMultiple?: number; readonly intraOpNumThreads?: number; readonly basePlacement?: BaseWeightPlacement | 'auto' } = {},
  ) {
    if (!Number.isInteger(contextLength) || contextLength < 1) throw new DdaError(`ONNX generator: contextLength must be a positive integer, got ${contextLength}`, "pass the model's maxSeqLen");
    this.padMultiple = options.padMultiple ?? 16;
    this.hd = headDim(config);
    this.kvDim = config.numKvHeads * this.hd;
    this.kinds = new Map([...attentionKinds(config).kinds].map(([kind, a]) => [kind, { ...ropeTables(contextLength, this.hd, a.theta, a.scaling), window: a.window }]));
    this.basePlacement = chooseBaseWeightPlacement(base, options.basePlacement);
    this.baseFeeds = this.basePlacement === 'inputs' ? ortWeightFeeds(backend, base) : {};
  }

  /** The fed base weights a session reads. */
  private fedBase(session: OrtSession): Record<string, OrtTensor> {
    const out: Record<string, OrtTensor> = {};
    for (const name of session.inputNames) {
      const t = this.baseFeeds[name];
      if (t !== undefined) out[name] = t;
    }
    return out;
  }

  private session(key: string, build: () => Parameters<OnnxRuntimeBackend['createSession']>[0]): Promise<OrtSession> {
    let s = this.sessions.get(key);
    if (s === undefined) {
      s = this.backend.createSession(build(), this.options.intraOpNumThreads === undefined ? {} : { intraOpNumThreads: this.options.intraOpNumThreads });
      this.sessions.set(key, s);
    }
    return s;
  }

  private weights(): { baseWeights?: WeightMap; loraWeights?: WeightMap } {
    return { ...(this.basePlacement === 'initializers' ? { baseWeights: this.base } : {}), ...(this.lora ? { loraWeights: this.lora.weights } : {}) };
  }

  /** The prefill: logits at position n − 1 of `ids` and, with `cache`, every layer's keys and values [T, kvDim]. */
  private async prefill(ids: readonly number[], cache: boolean): Promise<Record<string, OrtTensor>> {
    const n = ids.length;
    const T = Math.ceil(n / this.padMultiple) * this.padMultiple;
    const session = await this.session(`prefill:${T}:${cache}`, () => buildDecoderGraph(this.config, this.lora?.config ?? null, T, 1, {
      loss: false, gradients: false, logits: false, positionLogits: true, present: cache, ...this.weights(),
    }).model);
    const { Tensor } = this.backend.ort;
    const tokens = new BigInt64Array(T);
    ids.forEach((id, t) => (tokens[t] = BigInt(id)));
    return session.run({ ...this.fedBase(session), [DECODER_IO.ids]: new Tensor('int64', tokens, [T]), [DECODER_IO.positions]: new Tensor('int64', BigInt64Array.of(BigInt(n - 1)), [1]) });
  }

  private checkPrompt(promptIds: readonly number[], o: OnnxGenerateOptions): void {
    if (promptIds.length === 0) throw new DdaError('generate: the prompt is empty', 'give at least one token (e.g. BOS)');
    for (const id of promptIds) {
      if (!(Number.isInteger(id) && id >= 0 && id < this.config.vocabSize)) throw new DdaError(`generate: token id ${id} outside the vocabulary of ${this.config.vocabSize}`, "encode with the model's tokenizer");
    }
    if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 0) throw new DdaError(`generate: maxNewTokens must be a non-negative integer, got ${o.maxNewTokens}`, 'pass e.g. 24');
  }

  /**
   * Greedy decoding with the key/value cache.
   *
   * @param promptIds - The prompt's token ids (with BOS if the model expects it).
   * @returns The new token ids (without EOS); empty if the prompt already fills the context.
   * @throws DdaError if the prompt is empty or has an id outside the vocabulary.
   */
  async generate(promptIds: readonly number[], o: OnnxGenerateOptions): Promise<number[]> {
    this.checkPrompt(promptIds, o);
    const S = this.contextLength;
    const out: number[] = [];
    let length = promptIds.length;
    if (o.maxNewTokens === 0 || length >= S) return out;
    const first = await this.prefill(promptIds, true);
    let next = argmax(first[DECODER_IO.positionLogits]?.data as Float32Array);
    if (next === o.eosId || o.stopIds?.includes(next)) return out;
    out.push(next);
    length++;
    if (out.length >= o.maxNewTokens || length >= S) return out;
    const { Tensor } = this.backend.ort;
    // Caches of S rows, fed in place at every step: the prompt's keys and values, then one row per decoded token.
    const kv = this.kvDim;
    const caches: Record<string, OrtTensor> = {};
    const rows: { cache: Float32Array; output: string }[] = [];
    for (let i = 0; i < this.config.numLayers; i++) {
      for (const [present, past, output] of [[presentOutputs(i).k, DECODE_IO.pastK(i), DECODE_IO.newK(i)], [presentOutputs(i).v, DECODE_IO.pastV(i), DECODE_IO.newV(i)]] as const) {
        const c = new Float32Array(S * kv);
        c.set((first[present]?.data as Float32Array).subarray(0, promptIds.length * kv));
        caches[past] = new Tensor('float32', c, [S, kv]);
        rows.push({ cache: c, output });
      }
    }
    const step = await this.session('decode', () => buildDecodeStepGraph(this.config, this.lora?.config ?? null, S, this.weights()));
    const hd = this.hd;
    const masks = new Map([...this.kinds.keys()].map((kind) => [kind, new Float32Array(S)]));
    const token = BigInt64Array.of(0n);
    const index = BigInt64Array.of(0n);
    const feeds: Record<string, OrtTensor> = {
      ...this.fedBase(step),
      ...caches,
      [DECODE_IO.token]: new Tensor('int64', token, [1]),
      [DECODE_IO.index]: new Tensor('int64', index, [1, 1]),
    };
    for (const [kind, mask] of masks) feeds[DECODE_IO.mask(kind)] = new Tensor('float32', mask, [1, S]);
    while (out.length < o.maxNewTokens && length < S) {
      const p = length - 1; // position of the token just appended
      const ropeRows: Record<string, OrtTensor> = {};
      for (const [kind, { cos, sin, window }] of this.kinds) {
        attentionMaskRow(p, S, window, masks.get(kind) as Float32Array);
        ropeRows[DECODE_IO.cos(kind)] = new Tensor('float32', cos.subarray(p * hd, (p + 1) * hd), [1, hd]);
        ropeRows[DECODE_IO.sin(kind)] = new Tensor('float32', sin.subarray(p * hd, (p + 1) * hd), [1, hd]);
      }
      token[0] = BigInt(next);
      index[0] = BigInt(p);
      const r = await step.run({ ...feeds, ...ropeRows });
      for (const { cache, output } of rows) cache.set(r[output]?.data as Float32Array, p * kv);
      next = argmax(r[DECODE_IO.logits]?.data as Float32Array);
      if (next === o.eosId || o.stopIds?.includes(next)) break;
      out.push(next);
      length++;
    }
    return out;
  }

  /** Greedy decoding without a cache: the whole prefix runs again for every token (the reference {@link generate} is measured against). */
  async generateWithoutCache(promptIds: readonly number[], o: OnnxGenerateOptions): Promise<number[]> {
    this.checkPrompt(promptIds, o);
    const ids = [...promptIds];
    const out: number[] = [];
    while (out.length < o.maxNewTokens && ids.length < this.contextLength) {
      const next = argmax((await this.prefill(ids, false))[DECODER_IO.positionLogits]?.data as Float32Array);
      if (next === o.eosId || o.stopIds?.includes(next)) break;
      ids.push(next);
      out.push(next);
    }
    return out;
  }

  /** Releases every session. */
  async release(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).release();
    this.sessions.clear();
  }
}
