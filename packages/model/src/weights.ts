import { SeededRandom } from '@dda/core';
import type { DecoderConfig, LoraConfig, LoraTarget } from './config.js';

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
export function linearShape(c: DecoderConfig, t: LoraTarget): [number, number] {
  const d = c.hiddenSize;
  const kv = (c.hiddenSize / c.numHeads) * c.numKvHeads;
  switch (t) {
    case 'q': return [d, d];
    case 'k': return [kv, d];
    case 'v': return [kv, d];
    case 'o': return [d, d];
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

/** Randomly initialised base weights (normal, std 0.02 as in LLaMA; norms at 1), from a seed. */
export function initDecoderWeights(c: DecoderConfig, seed: number): TensorMap {
  const rng = new SeededRandom(seed);
  const m: TensorMap = new Map();
  const put = (name: string, shape: number[], data: Float32Array): void => void m.set(name, { shape, data });
  const std = 0.02;
  const d = c.hiddenSize;
  put('model.embed_tokens.weight', [c.vocabSize, d], normal(rng, c.vocabSize * d, std));
  for (let i = 0; i < c.numLayers; i++) {
    put(`${LAYER(i)}.input_layernorm.weight`, [d], new Float32Array(d).fill(1));
    for (const t of ['q', 'k', 'v', 'o'] as const) {
      const [o, n] = linearShape(c, t);
      put(`${targetModule(i, t)}.weight`, [o, n], normal(rng, o * n, std));
      if (c.attentionBias && t !== 'o') put(`${targetModule(i, t)}.bias`, [o], new Float32Array(o));
    }
    put(`${LAYER(i)}.post_attention_layernorm.weight`, [d], new Float32Array(d).fill(1));
    for (const t of ['gate', 'up', 'down'] as const) {
      const [o, n] = linearShape(c, t);
      put(`${targetModule(i, t)}.weight`, [o, n], normal(rng, o * n, std));
    }
  }
  put('model.norm.weight', [d], new Float32Array(d).fill(1));
  if (!c.tieWordEmbeddings) put('lm_head.weight', [c.vocabSize, d], normal(rng, c.vocabSize * d, std));
  return m;
}

/**
 * LoRA adapter weights in PEFT naming (`base_model.model.<module>.lora_A.weight` [r, in],
 * `...lora_B.weight` [out, r]). A is Kaiming-like random, B is zero, so the adapted model
 * starts equal to the base model.
 */
export function initLoraWeights(c: DecoderConfig, l: LoraConfig, seed: number): TensorMap {
  const rng = new SeededRandom(seed);
  const m: TensorMap = new Map();
  for (let i = 0; i < c.numLayers; i++) {
    for (const t of l.targets) {
      const [o, n] = linearShape(c, t);
      const name = `base_model.model.${targetModule(i, t)}`;
      m.set(`${name}.lora_A.weight`, { shape: [l.rank, n], data: normal(rng, l.rank * n, 1 / Math.sqrt(n)) });
      m.set(`${name}.lora_B.weight`, { shape: [o, l.rank], data: new Float32Array(o * l.rank) });
    }
  }
  return m;
}

/** Deep copy (the arrays are copied). */
export function cloneTensors(m: TensorMap): TensorMap {
  return new Map([...m].map(([k, v]) => [k, { shape: [...v.shape], data: Float32Array.from(v.data) }]));
}

/** Total number of scalars. */
export function countParameters(m: TensorMap): number {
  let n = 0;
  for (const v of m.values()) n += v.data.length;
  return n;
}
