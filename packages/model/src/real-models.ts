import { join } from 'node:path';
import { DdaError } from '@dda/core';
import { type DecoderConfig, type LoraConfig, validateDecoderConfig } from './config.js';
import { writeJsonAtomic } from './files.js';
import { type ModelFamily, parseHfConfig, toHfConfig } from './hf-config.js';
import { checkTokenizerFits } from './engine-inputs.js';
import { HfTokenizer } from './hf-tokenizer.js';
import { CONFIG_FILE, TORCH_DTYPES, writeTokenizerFolder } from './model-folder.js';
import type { SafetensorsDtype } from './safetensors.js';
import { type TensorSource, writeSafetensorsFolderStreamed } from './safetensors-folder.js';
import type { Tokenizer } from './tokenizer.js';
import { type TensorMap, decoderWeightSpecs, loraWeightSpecs } from './weights.js';

/**
 * Real model configurations (the published config.json of each model, verbatim) and a seeded,
 * streamed writer of random-weight Hugging Face folders at those sizes, for tests and benchmarks
 * at real widths without downloading weights.
 */

/** Names of the real configurations. */
export type RealModelName = 'tinyllama-1.1b' | 'qwen2-0.5b' | 'mistral-7b' | 'llama3.2-1b' | 'llama3.1-8b' | 'qwen3-0.6b' | 'gemma-3-1b' | 'gemma-3-270m';

/** A published model: its config.json and what it parses to. */
export interface RealModel {
  /** Hugging Face repository the config.json is from. */
  readonly repo: string;
  readonly family: ModelFamily;
  /** The repository's config.json, verbatim. */
  readonly configJson: Readonly<Record<string, unknown>>;
  /** {@link parseHfConfig} of configJson. */
  readonly config: DecoderConfig;
}

/** The published config.json files (field for field as in the repositories). */
const CONFIG_JSONS: Readonly<Record<RealModelName, { repo: string; json: Record<string, unknown> }>> = {
  /** LLaMA-2 architecture, grouped-query attention (32 query / 4 key-value heads). */
  'tinyllama-1.1b': {
    repo: 'TinyLlama/TinyLlama-1.1B-Chat-v1.0',
    json: {
      architectures: ['LlamaForCausalLM'], attention_bias: false, bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: 2048,
      initializer_range: 0.02, intermediate_size: 5632, max_position_embeddings: 2048, model_type: 'llama', num_attention_heads: 32,
      num_hidden_layers: 22, num_key_value_heads: 4, pretraining_tp: 1, rms_norm_eps: 1e-5, rope_scaling: null, rope_theta: 10000.0,
      tie_word_embeddings: false, torch_dtype: 'bfloat16', transformers_version: '4.35.0', use_cache: true, vocab_size: 32000,
    },
  },
  /** Qwen2: q/k/v biases, tied embeddings, 14 query / 2 key-value heads, RoPE θ = 1e6, no sliding window. */
  'qwen2-0.5b': {
    repo: 'Qwen/Qwen2-0.5B',
    json: {
      architectures: ['Qwen2ForCausalLM'], attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151643, hidden_act: 'silu', hidden_size: 896,
      initializer_range: 0.02, intermediate_size: 4864, max_position_embeddings: 131072, max_window_layers: 24, model_type: 'qwen2',
      num_attention_heads: 14, num_hidden_layers: 24, num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 1000000.0, sliding_window: 131072,
      tie_word_embeddings: true, torch_dtype: 'bfloat16', transformers_version: '4.40.1', use_cache: true, use_sliding_window: false, vocab_size: 151936,
    },
  },
  /** Mistral: 32 query / 8 key-value heads, sliding-window attention over 4096 tokens. */
  'mistral-7b': {
    repo: 'mistralai/Mistral-7B-v0.1',
    json: {
      architectures: ['MistralForCausalLM'], bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: 4096, initializer_range: 0.02,
      intermediate_size: 14336, max_position_embeddings: 32768, model_type: 'mistral', num_attention_heads: 32, num_hidden_layers: 32,
      num_key_value_heads: 8, rms_norm_eps: 1e-5, rope_theta: 10000.0, sliding_window: 4096, tie_word_embeddings: false, torch_dtype: 'bfloat16',
      transformers_version: '4.34.0.dev0', use_cache: true, vocab_size: 32000,
    },
  },
  /** Llama-3.2: 32 query / 8 key-value heads, tied embeddings, 128,256 vocabulary, RoPE θ = 5e5 with the llama3 scaling (factor 32). */
  'llama3.2-1b': {
    repo: 'meta-llama/Llama-3.2-1B',
    json: {
      architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 128000, eos_token_id: 128001, head_dim: 64,
      hidden_act: 'silu', hidden_size: 2048, initializer_range: 0.02, intermediate_size: 8192, max_position_embeddings: 131072, mlp_bias: false,
      model_type: 'llama', num_attention_heads: 32, num_hidden_layers: 16, num_key_value_heads: 8, pretraining_tp: 1, rms_norm_eps: 1e-5,
      rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
      rope_theta: 500000.0, tie_word_embeddings: true, torch_dtype: 'bfloat16', transformers_version: '4.45.0.dev0', use_cache: true, vocab_size: 128256,
    },
  },
  /**
   * Llama-3.1-8B: 32 query / 8 key-value heads of 128, MLP 14,336, untied 128,256-token embeddings, a 131,072-token context
   * from RoPE θ = 5e5 with the llama3 scaling (factor 8 over the original 8192 tokens); 8,030,261,248 parameters.
   */
  'llama3.1-8b': {
    repo: 'meta-llama/Llama-3.1-8B',
    json: {
      architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 128000, eos_token_id: 128001,
      hidden_act: 'silu', hidden_size: 4096, initializer_range: 0.02, intermediate_size: 14336, max_position_embeddings: 131072, mlp_bias: false,
      model_type: 'llama', num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 8, pretraining_tp: 1, rms_norm_eps: 1e-5,
      rope_scaling: { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
      rope_theta: 500000.0, tie_word_embeddings: false, torch_dtype: 'bfloat16', transformers_version: '4.43.0.dev0', use_cache: true, vocab_size: 128256,
    },
  },
  /** Qwen3: q/k RMSNorm per head, head_dim 128 (16 · 128 = 2048 ≠ hidden 1024), 16 query / 8 key-value heads, tied embeddings, no biases. */
  'qwen3-0.6b': {
    repo: 'Qwen/Qwen3-0.6B',
    json: {
      architectures: ['Qwen3ForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151645, head_dim: 128,
      hidden_act: 'silu', hidden_size: 1024, initializer_range: 0.02, intermediate_size: 3072, max_position_embeddings: 40960, max_window_layers: 28,
      model_type: 'qwen3', num_attention_heads: 16, num_hidden_layers: 28, num_key_value_heads: 8, rms_norm_eps: 1e-6, rope_scaling: null,
      rope_theta: 1000000, sliding_window: null, tie_word_embeddings: true, torch_dtype: 'bfloat16', transformers_version: '4.51.0', use_cache: true,
      use_sliding_window: false, vocab_size: 151936,
    },
  },
  /**
   * Gemma-3 1B (text only): 26 layers, 5 sliding-window layers (512 tokens, RoPE θ = 1e4) per full
   * layer (θ = 1e6; sliding_window_pattern 6), 4 query heads of size 256 sharing 1 key-value head,
   * GeGLU 1152 → 6912, tied 262,144-token embeddings (999,885,952 parameters).
   */
  'gemma-3-1b': {
    repo: 'google/gemma-3-1b-pt',
    json: {
      architectures: ['Gemma3ForCausalLM'], attention_bias: false, attention_dropout: 0.0, attn_logit_softcapping: null, bos_token_id: 2,
      cache_implementation: 'hybrid', eos_token_id: 1, final_logit_softcapping: null, head_dim: 256, hidden_activation: 'gelu_pytorch_tanh',
      hidden_size: 1152, initializer_range: 0.02, intermediate_size: 6912, max_position_embeddings: 32768, model_type: 'gemma3_text',
      num_attention_heads: 4, num_hidden_layers: 26, num_key_value_heads: 1, pad_token_id: 0, query_pre_attn_scalar: 256, rms_norm_eps: 1e-6,
      rope_local_base_freq: 10000, rope_scaling: null, rope_theta: 1000000, sliding_window: 512, sliding_window_pattern: 6, torch_dtype: 'bfloat16',
      transformers_version: '4.50.0.dev0', use_cache: true, vocab_size: 262144,
    },
  },
  /** Gemma-3 270M: 18 layers (layer_types: full attention at layers 5, 11, 17), hidden 640, GeGLU 2048, otherwise as gemma-3-1b (268,098,176 parameters). */
  'gemma-3-270m': {
    repo: 'google/gemma-3-270m',
    json: {
      _sliding_window_pattern: 6, architectures: ['Gemma3ForCausalLM'], attention_bias: false, attention_dropout: 0.0, attn_logit_softcapping: null,
      bos_token_id: 2, eos_token_id: 1, final_logit_softcapping: null, head_dim: 256, hidden_activation: 'gelu_pytorch_tanh', hidden_size: 640,
      initializer_range: 0.02, intermediate_size: 2048,
      layer_types: Array.from({ length: 18 }, (_, i) => ((i + 1) % 6 === 0 ? 'full_attention' : 'sliding_attention')),
      max_position_embeddings: 32768, model_type: 'gemma3_text', num_attention_heads: 4, num_hidden_layers: 18, num_key_value_heads: 1, pad_token_id: 0,
      query_pre_attn_scalar: 256, rms_norm_eps: 1e-6, rope_local_base_freq: 10000.0, rope_scaling: null, rope_theta: 1000000.0, sliding_window: 512,
      torch_dtype: 'bfloat16', transformers_version: '4.55.0.dev0', use_bidirectional_attention: false, use_cache: true, vocab_size: 262144,
    },
  },
};

/** The real configurations by name, parsed with {@link parseHfConfig} from their published config.json. */
export const REAL_MODELS: Readonly<Record<RealModelName, RealModel>> = Object.fromEntries(
  (Object.entries(CONFIG_JSONS) as [RealModelName, { repo: string; json: Record<string, unknown> }][]).map(([name, { repo, json }]) => {
    const { family, config } = parseHfConfig(json, `${repo}/config.json`);
    return [name, { repo, family, configJson: Object.freeze({ ...json }), config }];
  }),
) as Record<RealModelName, RealModel>;

/** Changes to a real configuration, for tests: fewer layers, another window, a shorter context. */
export interface RealConfigOverrides {
  /** Number of decoder layers (the real widths stay). */
  readonly numLayers?: number;
  /** Sliding-window span (Mistral, or Qwen2 with every layer windowed); null for none. */
  readonly slidingWindow?: number | null;
  readonly maxSeqLen?: number;
}

/**
 * A real configuration by name, with overrides. Returns the family, the DecoderConfig and the
 * config.json to write: the published one with the overridden fields changed (num_hidden_layers,
 * and max_window_layers for Qwen2; sliding_window; max_position_embeddings), which
 * {@link parseHfConfig} reads back to the same config.
 *
 * @throws DdaError for an unknown name (listing the known ones) or an invalid override.
 */
export function realModelConfig(name: string, o: RealConfigOverrides = {}): { family: ModelFamily; config: DecoderConfig; configJson: Record<string, unknown> } {
  const m = Object.hasOwn(REAL_MODELS, name) ? REAL_MODELS[name as RealModelName] : undefined;
  if (!m) throw new DdaError(`unknown real model configuration '${name}'`, `use one of ${Object.keys(REAL_MODELS).join(', ')}`);
  const json: Record<string, unknown> = { ...m.configJson };
  if (o.numLayers !== undefined) {
    json.num_hidden_layers = o.numLayers;
    if (m.family === 'qwen2' || m.family === 'qwen3') json.max_window_layers = o.numLayers;
    // Gemma-3: the first layers of the published pattern.
    if (Array.isArray(json.layer_types)) json.layer_types = json.layer_types.slice(0, o.numLayers);
  }
  if (o.maxSeqLen !== undefined) json.max_position_embeddings = o.maxSeqLen;
  if (o.slidingWindow !== undefined) {
    if (m.family === 'llama' && o.slidingWindow !== null) throw new DdaError(`${name} (LLaMA) has no sliding-window attention`, 'use mistral-7b for a windowed configuration');
    if (m.family === 'gemma3_text' && o.slidingWindow === null) throw new DdaError(`${name} (Gemma-3) always has sliding-window layers`, 'give a window size');
    if (m.family === 'qwen2' || m.family === 'qwen3') Object.assign(json, o.slidingWindow === null ? { use_sliding_window: false } : { use_sliding_window: true, sliding_window: o.slidingWindow, max_window_layers: 0 });
    else json.sliding_window = o.slidingWindow;
  }
  const { family, config } = parseHfConfig(json, `${m.repo}/config.json with overrides`);
  return { family, config, configJson: json };
}

// ---------------------------------------------------------------------------------------------
// A counter-based generator: value k of a tensor is a hash of (seed, tensor name, k), so any
// range of any tensor can be produced on its own, in any order, and another language can
// reproduce it bit for bit (make-real-parity-fixtures.py does, with numpy).

/** lowbias32 (Chris Wellons' integer hash): a bijection of 32-bit integers. */
function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** FNV-1a over the UTF-8 bytes of `s`. */
function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

/**
 * Fills `out` with values k = start … start + out.length − 1 of the uniform stream of
 * (`seed`, `name`): u_k = (⌊h_k / 256⌋ − 2^23) / 2^23 ∈ [−1, 1) (24 bits, exact in float32) with
 * h_k = mix32(mix32(k ⊕ a) ⊕ b), a = mix32(fnv1a32(name) ⊕ mix32(seed)), b = mix32(a + 0x9e3779b9);
 * each value is fround(center + halfWidth · u_k). Deterministic and independent of chunking.
 */
export function fillUniformStream(seed: number, name: string, center: number, halfWidth: number, start: number, out: Float32Array): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new DdaError(`seed must be an integer in [0, 2^32), got ${seed}`);
  if (start + out.length > 0x100000000) throw new DdaError(`tensor '${name}' has more than 2^32 elements`);
  const a = mix32((fnv1a32(name) ^ mix32(seed)) >>> 0);
  const b = mix32((a + 0x9e3779b9) >>> 0);
  // halfWidth · (m / 2^23) = (halfWidth / 2^23) · m exactly (both round the same exact product once).
  const scale = halfWidth / 0x800000;
  for (let i = 0; i < out.length; i++) {
    const h = mix32((mix32(((start + i) ^ a) >>> 0) ^ b) >>> 0);
    out[i] = center + scale * ((h >>> 8) - 0x800000);
  }
}

/** Scales of the random weights (uniform distributions, so every value is reproducible exactly). */
export interface RandomInit {
  /** Standard deviation of the embeddings and linear weights (uniform on ±std·√3); default 0.02, as LLaMA's initializer_range. */
  readonly std?: number;
  /** Half-width of the RMSNorm weights' uniform noise around 1 (Gemma's offsets: around 0); default 0 (as initialised). */
  readonly normNoise?: number;
  /** Half-width of the q/k/v biases' uniform noise around 0; default 0 (zeros, as initialised). */
  readonly biasNoise?: number;
}

/**
 * The base tensors of a config ({@link decoderWeightSpecs} names and order) as
 * {@link TensorSource}s of seeded random values ({@link fillUniformStream}): embeddings and linear
 * weights uniform with standard deviation `init.std`, norms 1 ± `init.normNoise` (Gemma's norm offsets 0 ± normNoise), biases
 * 0 ± `init.biasNoise`. Nothing is held in memory: values are made when asked for.
 */
export function randomWeightSources(c: DecoderConfig, seed: number, init: RandomInit = {}): TensorSource[] {
  validateDecoderConfig(c);
  const std = init.std ?? 0.02;
  return decoderWeightSpecs(c).map(({ name, shape, init: kind }) => {
    const [center, half] = kind === 'normal' ? [0, std * Math.sqrt(3)] : kind === 'ones' ? [1, init.normNoise ?? 0] : kind === 'normOffsets' ? [0, init.normNoise ?? 0] : [0, init.biasNoise ?? 0];
    return { name, shape, fill: (start: number, out: Float32Array) => fillUniformStream(seed, name, center, half, start, out) };
  });
}

/** {@link randomWeightSources} materialised as float32 tensors (for tests at sizes that fit in memory). */
export function randomDecoderWeights(c: DecoderConfig, seed: number, init: RandomInit = {}): TensorMap {
  const m: TensorMap = new Map();
  for (const s of randomWeightSources(c, seed, init)) {
    const data = new Float32Array(s.shape.reduce((a, b) => a * b, 1));
    s.fill(0, data);
    m.set(s.name, { shape: s.shape, data });
  }
  return m;
}

/**
 * A LoRA adapter of `lora` on `c` ({@link loraWeightSpecs} names, PEFT's) with every A and B entry
 * uniform on ±`halfWidth` from {@link fillUniformStream}(`seed`, the tensor's name): B ≠ 0, so the
 * adapter moves the model (dda_reference.py's `uniform_lora` makes the same values).
 */
export function randomLoraWeights(c: DecoderConfig, lora: LoraConfig, seed: number, halfWidth: number): TensorMap {
  return new Map(loraWeightSpecs(c, lora).map(({ name, shape }) => {
    const data = new Float32Array(shape[0] * shape[1]);
    fillUniformStream(seed, name, 0, halfWidth, 0, data);
    return [name, { shape, data }];
  }));
}

/** Options of {@link writeRandomModelFolder}. */
export interface RandomFolderOptions extends RealConfigOverrides {
  /** A real configuration by name ({@link REAL_MODELS}), or a family and config of your own. */
  readonly model: RealModelName | { readonly family?: ModelFamily; readonly config: DecoderConfig };
  readonly seed: number;
  /** Stored dtype; default BF16 (as the real checkpoints). F16/BF16 values are the float32 values rounded to nearest even. */
  readonly dtype?: SafetensorsDtype;
  /** Shard above this many bytes of tensor data (model-0000i-of-0000n.safetensors + index); default 2 GB. */
  readonly maxShardBytes?: number;
  readonly init?: RandomInit;
  /** Written as the folder's tokenizer (its size must fit the vocabulary). */
  readonly tokenizer?: Tokenizer;
}

/**
 * Writes a Hugging Face model folder with seeded random weights at a real (or given)
 * configuration, streamed tensor by tensor ({@link writeSafetensorsFolderStreamed}: one chunk of
 * 2^20 values in memory whatever the model size, e.g. 4.4 GB of F32 or 2.2 GB of BF16 for
 * TinyLlama-1.1B). Sharded with `model.safetensors.index.json` above `maxShardBytes`. config.json
 * is the published one with the overrides applied and torch_dtype set to the stored dtype; it is
 * written last. The same options give the same bytes.
 *
 * @returns the config written and the files.
 * @throws DdaError for an unknown model, invalid overrides, or a tokenizer larger than the vocabulary.
 */
export function writeRandomModelFolder(dir: string, o: RandomFolderOptions): { family: ModelFamily; config: DecoderConfig; files: string[] } {
  const dtype = o.dtype ?? 'BF16';
  let family: ModelFamily;
  let config: DecoderConfig;
  let json: Record<string, unknown>;
  const overrides = { ...(o.numLayers !== undefined ? { numLayers: o.numLayers } : {}), ...(o.slidingWindow !== undefined ? { slidingWindow: o.slidingWindow } : {}), ...(o.maxSeqLen !== undefined ? { maxSeqLen: o.maxSeqLen } : {}) };
  if (typeof o.model === 'string') {
    ({ family, config, configJson: json } = realModelConfig(o.model, overrides));
  } else {
    config = { ...o.model.config, ...overrides };
    json = toHfConfig(config, o.model.family ? { family: o.model.family } : {});
    family = parseHfConfig(json).family;
  }
  json = { ...json, torch_dtype: TORCH_DTYPES[dtype] };
  if (o.tokenizer) checkTokenizerFits(o.tokenizer instanceof HfTokenizer ? o.tokenizer.limitedTo(config.vocabSize) : o.tokenizer, config);
  const files = writeSafetensorsFolderStreamed(dir, randomWeightSources(config, o.seed, o.init), { dtype, maxShardBytes: o.maxShardBytes ?? 2e9 });
  if (o.tokenizer) writeTokenizerFolder(dir, o.tokenizer);
  writeJsonAtomic(join(dir, CONFIG_FILE), json);
  return { family, config, files: [...files, CONFIG_FILE] };
}
