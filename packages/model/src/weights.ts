import { DdaError, SeededRandom } from '@dda/core';
import { type DecoderConfig, type LoraConfig, type LoraTarget, headDim, loraModuleList } from './config.js';

/** A named float32 tensor in Hugging Face layout (linear weights are [out, in]). */
export interface NamedTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}
/** Tensors by Hugging Face / PEFT name, in a stable insertion order. */
export type TensorMap = Map<string, NamedTensor>;

const LAYER = (i: number): string => `model.layers.${i}`;

/** Hugging Face module path of a LoRA target in layer i. */
export function targetModule(i: number, t: LoraTarget): string {
  const attn = { q: 'q_proj', k: 'k_proj', v: 'v_proj', o: 'o_proj' } as const;
  const mlp = { gate: 'gate_proj', up: 'up_proj', down: 'down_proj' } as const;
  return t in attn ? `${LAYER(i)}.self_attn.${attn[t as keyof typeof attn]}` : `${LAYER(i)}.mlp.${mlp[t as keyof typeof mlp]}`;
}

/** [out, in] shape of a linear map. */
export function linearShape(c: Pick<DecoderConfig, 'hiddenSize' | 'numHeads' | 'numKvHeads' | 'headDim' | 'intermediateSize'>, t: LoraTarget): [number, number] {
  const d = c.hiddenSize;
  const qd = headDim(c) * c.numHeads;
  const kv = headDim(c) * c.numKvHeads;
  switch (t) {
    case 'q': return [qd, d];
    case 'k': return [kv, d];
    case 'v': return [kv, d];
    case 'o': return [d, qd];
    case 'gate': return [c.intermediateSize, d];
    case 'up': return [c.intermediateSize, d];
    case 'down': return [d, c.intermediateSize];
  }
}

function normal(rng: SeededRandom, n: number, std: number): Float32Array {
  const a = new Float32Array(n);
  for (let k = 0; k < n; k++) a[k] = rng.normal() * std;
  return a;
}

/**
 * How a base tensor is initialised: random normal (std 0.02), ones (norms), zeros (biases) or
 * norm offsets (Gemma norms, which multiply by 1 + w: zeros, as transformers' Gemma3PreTrainedModel).
 */
export type WeightInit = 'normal' | 'ones' | 'zeros' | 'normOffsets';

/**
 * Names (Hugging Face), shapes and initialisation of every base tensor a config needs, in the
 * stable order used for initialisation and for writing checkpoints. `lm_head.weight` is absent
 * when the embeddings are tied.
 */
export function decoderWeightSpecs(c: DecoderConfig): { name: string; shape: [number] | [number, number]; init: WeightInit }[] {
  const d = c.hiddenSize;
  const norm: WeightInit = c.gemmaNorms ? 'normOffsets' : 'ones';
  const out: { name: string; shape: [number] | [number, number]; init: WeightInit }[] = [];
  out.push({ name: 'model.embed_tokens.weight', shape: [c.vocabSize, d], init: 'normal' });
  for (let i = 0; i < c.numLayers; i++) {
    out.push({ name: `${LAYER(i)}.input_layernorm.weight`, shape: [d], init: norm });
    for (const t of ['q', 'k', 'v', 'o'] as const) {
      const shape = linearShape(c, t);
      out.push({ name: `${targetModule(i, t)}.weight`, shape, init: 'normal' });
      if (c.attentionBias && t !== 'o') out.push({ name: `${targetModule(i, t)}.bias`, shape: [shape[0]], init: 'zeros' });
    }
    if (c.qkNorm) for (const n of ['q_norm', 'k_norm']) out.push({ name: `${LAYER(i)}.self_attn.${n}.weight`, shape: [headDim(c)], init: norm });
    out.push({ name: `${LAYER(i)}.post_attention_layernorm.weight`, shape: [d], init: norm });
    // Gemma-3: the MLP's input norm and the norm of its output (post_attention_layernorm then normalises the attention output).
    if (c.gemmaNorms) for (const n of ['pre_feedforward_layernorm', 'post_feedforward_layernorm']) out.push({ name: `${LAYER(i)}.${n}.weight`, shape: [d], init: norm });
    for (const t of ['gate', 'up', 'down'] as const) out.push({ name: `${targetModule(i, t)}.weight`, shape: linearShape(c, t), init: 'normal' });
  }
  out.push({ name: 'model.norm.weight', shape: [d], init: norm });
  if (!c.tieWordEmbeddings) out.push({ name: 'lm_head.weight', shape: [c.vocabSize, d], init: 'normal' });
  return out;
}

/** Randomly initialised base weights (normal, std 0.02 as in LLaMA; norms at 1, Gemma norm offsets at 0), from a seed. */
export function initDecoderWeights(c: DecoderConfig, seed: number): TensorMap {
  const rng = new SeededRandom(seed);
  const m: TensorMap = new Map();
  for (const { name, shape, init } of decoderWeightSpecs(c)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = init === 'normal' ? normal(rng, n, 0.02) : new Float32Array(n).fill(init === 'ones' ? 1 : 0);
    m.set(name, { shape, data });
  }
  return m;
}

/** PEFT name prefix of the LoRA tensors of a module: `base_model.model.<module>`. */
export const loraPrefix = (i: number, t: LoraTarget): string => `base_model.model.${targetModule(i, t)}`;

/**
 * Names (PEFT: `base_model.model.<module>.lora_A.weight` [r, in], `...lora_B.weight` [out, r])
 * and shapes of every LoRA tensor of a config, in initialisation order.
 */
export function loraWeightSpecs(c: DecoderConfig, l: LoraConfig): { name: string; shape: [number, number]; target: LoraTarget; part: 'A' | 'B'; rank: number }[] {
  return loraModuleList(c.numLayers, l).flatMap(({ layer: i, target: t, rank }) => {
    const [o, n] = linearShape(c, t);
    return [
      { name: `${loraPrefix(i, t)}.lora_A.weight`, shape: [rank, n] as [number, number], target: t, part: 'A' as const, rank },
      { name: `${loraPrefix(i, t)}.lora_B.weight`, shape: [o, rank] as [number, number], target: t, part: 'B' as const, rank },
    ];
  });
}

/**
 * LoRA adapter weights in PEFT naming (see {@link loraWeightSpecs}). A is Kaiming-like random
 * (std 1/√in), B is zero, so the adapted model starts equal to the base model.
 */
export function initLoraWeights(c: DecoderConfig, l: LoraConfig, seed: number): TensorMap {
  const rng = new SeededRandom(seed);
  const m: TensorMap = new Map();
  for (const { name, shape, part } of loraWeightSpecs(c, l)) {
    const n = shape[0] * shape[1];
    m.set(name, { shape, data: part === 'A' ? normal(rng, n, 1 / Math.sqrt(shape[1])) : new Float32Array(n) });
  }
  return m;
}

/** Deep copy (the arrays are copied). */
export function cloneTensors(m: TensorMap): TensorMap {
  return new Map([...m].map(([k, v]) => [k, { shape: [...v.shape], data: Float32Array.from(v.data) }]));
}

/** Whether two arrays hold the same values, bit for bit (NaN never equal). */
const sameValues = (x: Float32Array, y: Float32Array): boolean => {
  for (let k = 0; k < x.length; k++) if (x[k] !== y[k]) return false;
  return true;
};

/**
 * Whether two tensor maps hold the same tensors: the same names and shapes, and values that
 * `same` accepts (default: equal bit for bit, NaN never equal) for each pair of arrays, `a`'s first.
 */
export function tensorsEqual(a: TensorMap, b: TensorMap, same: (x: Float32Array, y: Float32Array) => boolean = sameValues): boolean {
  if (a.size !== b.size) return false;
  for (const [name, x] of a) {
    const y = b.get(name);
    if (!y || x.shape.length !== y.shape.length || x.shape.some((d, i) => d !== y.shape[i]) || x.data.length !== y.data.length) return false;
    if (!same(x.data, y.data)) return false;
  }
  return true;
}

/** Total number of scalars. */
export function countParameters(m: TensorMap): number {
  let n = 0;
  for (const v of m.values()) n += v.data.length;
  return n;
}

/** Throws a DdaError naming the first tensor (and index) of `m` that holds NaN or ±Infinity. */
export function assertFiniteTensors(m: TensorMap, source: string): void {
  for (const [name, t] of m) {
    for (let k = 0; k < t.data.length; k++) {
      const x = t.data[k] as number;
      if (!Number.isFinite(x)) {
        throw new DdaError(`${source}: tensor '${name}' holds ${x} at flat index ${k}`, 'the checkpoint is corrupt or its training diverged; use an earlier checkpoint or retrain with a lower learning rate');
      }
    }
  }
}
