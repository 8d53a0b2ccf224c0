import { type AttentionLayerType, DdaError, type RopeScaling } from '@dda/core';
import { type DecoderConfig, headDim, validateDecoderConfig } from './config.js';

/** The decoder families this package runs, by their Hugging Face `model_type`. */
export type ModelFamily = 'llama' | 'qwen2' | 'mistral' | 'qwen3' | 'gemma3_text';

/** Hugging Face architecture class of each family (`architectures[0]` in config.json). */
export const FAMILY_ARCHITECTURES: Readonly<Record<ModelFamily, string>> = {
  llama: 'LlamaForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
  gemma3_text: 'Gemma3ForCausalLM',
};

/** Defaults of the Hugging Face config classes (transformers' LlamaConfig, Qwen2Config, MistralConfig, Qwen3Config) for fields a config.json may omit. */
const HF_DEFAULTS: Readonly<Record<ModelFamily, { maxPositions: number; ropeTheta: number; rmsNormEps: number; slidingWindow: number | null }>> = {
  llama: { maxPositions: 2048, ropeTheta: 10000, rmsNormEps: 1e-6, slidingWindow: null },
  qwen2: { maxPositions: 32768, ropeTheta: 10000, rmsNormEps: 1e-6, slidingWindow: 4096 },
  mistral: { maxPositions: 4096 * 32, ropeTheta: 10000, rmsNormEps: 1e-6, slidingWindow: 4096 },
  qwen3: { maxPositions: 32768, ropeTheta: 10000, rmsNormEps: 1e-6, slidingWindow: 4096 },
  gemma3_text: { maxPositions: 131072, ropeTheta: 1e6, rmsNormEps: 1e-6, slidingWindow: 4096 },
};
/** Qwen3Config's default `head_dim` (Qwen3 always has an explicit head size; its attention reads config.head_dim). */
const QWEN3_DEFAULT_HEAD_DIM = 128;
/**
 * Gemma3TextConfig's defaults (transformers' configuration_gemma3.py) for the Gemma-3 fields a
 * config.json may omit: head_dim 256, num_key_value_heads 4, query_pre_attn_scalar 256,
 * rope_local_base_freq 1e4, sliding_window_pattern 6 (layer i is full_attention when (i + 1) % 6 = 0),
 * tie_word_embeddings true.
 */
const GEMMA3_DEFAULTS = { headDim: 256, numKvHeads: 4, queryPreAttnScalar: 256, ropeLocalTheta: 10000, slidingWindowPattern: 6, tieWordEmbeddings: true } as const;
/**
 * Fields only Gemma3TextConfig has (refused by name for the other families). All are read by
 * parseGemma3 except `cache_implementation` ('hybrid': which key/value cache `generate` uses), which
 * does not change the function the model computes.
 */
const GEMMA3_FIELDS = new Set([
  'hidden_activation', 'query_pre_attn_scalar', 'rope_local_base_freq', 'sliding_window_pattern', '_sliding_window_pattern', 'final_logit_softcapping',
  'attn_logit_softcapping', 'use_bidirectional_attention', 'cache_implementation',
]);

/** Fields read into the DecoderConfig (or checked against it). */
const SUPPORTED_FIELDS = new Set([
  'architectures', 'model_type', 'vocab_size', 'hidden_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads',
  'intermediate_size', 'rope_theta', 'rope_scaling', 'rope_parameters', 'rms_norm_eps', 'max_position_embeddings', 'tie_word_embeddings',
  'hidden_act', 'attention_bias', 'mlp_bias', 'head_dim', 'sliding_window', 'use_sliding_window', 'max_window_layers', 'layer_types',
  'use_mrope', ...GEMMA3_FIELDS,
]);
/**
 * Fields that do not change the function the model computes (metadata, token ids, cache and
 * training-only settings such as dropout, `pretraining_tp` which only splits matmuls): accepted, ignored.
 */
const IGNORED_FIELDS = new Set([
  '_name_or_path', 'torch_dtype', 'dtype', 'transformers_version', 'initializer_range', 'use_cache', 'bos_token_id', 'eos_token_id',
  'pad_token_id', 'attention_dropout', 'pretraining_tp', 'output_attentions', 'output_hidden_states', 'return_dict', 'use_return_dict',
  // Written by tools that re-save checkpoints (transformers' attention autoselection, transformers.js, unsloth): metadata only.
  '_attn_implementation_autoset', 'transformers.js_config', 'unsloth_version', 'unsloth_fixed',
]);

/** A parsed Hugging Face config.json: the decoder shape and the family it was written for. */
export interface HfModelConfig {
  readonly family: ModelFamily;
  readonly config: DecoderConfig;
}

/**
 * Reads a Hugging Face `config.json` (already JSON-parsed) of a `LlamaForCausalLM`,
 * `Qwen2ForCausalLM`, `MistralForCausalLM` or `Qwen3ForCausalLM` (q/k RMSNorm per head, explicit `head_dim`). Missing optional fields take the defaults of the
 * transformers config class. An unknown architecture, an unknown field, or a value this decoder
 * cannot compute (a rope_scaling other than llama3, an activation other than silu, MLP biases, per-layer sliding
 * windows, ...) throws a DdaError naming it.
 */
export function parseHfConfig(json: unknown, fileName = 'config.json'): HfModelConfig {
  const fail = (what: string, hint: string): never => {
    throw new DdaError(`${fileName}: ${what}`, hint);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('not a JSON object', 'a Hugging Face config.json is a JSON object');
  const j = json as Record<string, unknown>;
  const family = familyOf(j, fail);
  const unknown = Object.keys(j).filter((k) => (!SUPPORTED_FIELDS.has(k) && !IGNORED_FIELDS.has(k)) || (family !== 'gemma3_text' && GEMMA3_FIELDS.has(k)));
  if (unknown.length) {
    fail(`unsupported field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}`,
      `this decoder supports ${[...SUPPORTED_FIELDS].join(', ')} (and ignores ${[...IGNORED_FIELDS].join(', ')}); remove the field if it does not change the model, or use a model without it`);
  }
  const defaults = HF_DEFAULTS[family];
  const int = (k: string, dflt?: number): number => {
    const v = j[k] ?? dflt;
    if (v === undefined) fail(`missing required field '${k}'`, 'add it (a positive integer)');
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(`'${k}' must be a positive integer, got ${JSON.stringify(v)}`, 'fix the value');
    return v as number;
  };
  const num = (k: string, dflt: number): number => {
    const v = j[k] ?? dflt;
    if (typeof v !== 'number' || !(v > 0)) fail(`'${k}' must be a positive number, got ${JSON.stringify(v)}`, 'fix the value');
    return v as number;
  };
  const bool = (k: string, dflt: boolean): boolean => {
    const v = j[k] ?? dflt;
    if (typeof v !== 'boolean') fail(`'${k}' must be true or false, got ${JSON.stringify(v)}`, 'fix the value');
    return v as boolean;
  };

  if (family === 'gemma3_text') return { family, config: parseGemma3(j, { fail, int, num, bool }) };
  const act = j.hidden_act ?? 'silu';
  if (act !== 'silu') fail(`hidden_act ${JSON.stringify(act)} is not supported`, "this decoder's MLP is SwiGLU: hidden_act must be 'silu'");
  let ropeScaling = parseRopeScaling(j.rope_scaling, 'rope_scaling', fail);
  let ropeTheta = num('rope_theta', defaults.ropeTheta);
  if (j.rope_parameters !== undefined && j.rope_parameters !== null) {
    // transformers 5 writes rope_parameters: {rope_type, rope_theta, and the scaling's own fields}.
    const rp = j.rope_parameters as Record<string, unknown>;
    if (typeof rp !== 'object' || Array.isArray(rp)) fail(`rope_parameters ${JSON.stringify(rp)} is not an object`, 'write {rope_type, rope_theta, ...}');
    const { rope_theta: rpTheta, ...rest } = rp;
    if (rpTheta !== undefined) {
      if (typeof rpTheta !== 'number' || !(rpTheta > 0)) fail(`rope_parameters.rope_theta must be a positive number`, 'fix the value');
      ropeTheta = rpTheta as number;
    }
    const fromParameters = parseRopeScaling(rest, 'rope_parameters', fail);
    if (fromParameters && ropeScaling) fail('both rope_scaling and rope_parameters set a RoPE scaling', 'keep one of them');
    ropeScaling = ropeScaling ?? fromParameters;
  }
  if (bool('mlp_bias', false)) fail("mlp_bias true is not supported", 'this decoder has no MLP biases');
  // Qwen2.5's config.json carries use_mrope false; multimodal rotary embeddings (true) change the positions.
  if (bool('use_mrope', false)) fail('use_mrope true is not supported', 'multimodal RoPE (Qwen2-VL) is not implemented; only use_mrope false');

  let attentionBias: boolean;
  if (family === 'qwen2') {
    if (j.attention_bias !== undefined) fail("'attention_bias' is not a Qwen2 field", 'Qwen2 always has q/k/v biases; remove the field');
    attentionBias = true;
  } else {
    // LlamaConfig/MistralConfig/Qwen3Config attention_bias puts biases on q, k, v *and* o; this decoder has q/k/v biases only.
    if (bool('attention_bias', false)) fail(`attention_bias true is not supported for ${FAMILY_ARCHITECTURES[family]}`, 'it adds an o_proj bias, which this decoder does not have');
    attentionBias = false;
  }

  const numLayers = int('num_hidden_layers');
  let slidingWindow: number | null = null;
  if (family === 'llama') {
    for (const k of ['sliding_window', 'use_sliding_window', 'max_window_layers']) if (j[k] !== undefined) fail(`'${k}' is not a LLaMA field`, 'use MistralForCausalLM for sliding-window attention');
  } else if (family === 'mistral') {
    for (const k of ['use_sliding_window', 'max_window_layers']) if (j[k] !== undefined) fail(`'${k}' is not a Mistral field`, 'remove it');
    slidingWindow = j.sliding_window === null ? null : int('sliding_window', defaults.slidingWindow as number);
  } else if (bool('use_sliding_window', false)) {
    // Qwen2 windows layers i >= max_window_layers; this decoder windows all layers or none.
    const mwl = j.max_window_layers ?? 28;
    if (mwl !== 0) fail(`use_sliding_window with max_window_layers ${JSON.stringify(mwl)} (only some layers windowed) is not supported`, 'this decoder applies the window to every layer: set max_window_layers to 0, or use_sliding_window false');
    slidingWindow = int('sliding_window', defaults.slidingWindow as number);
  }
  if (j.layer_types !== undefined) {
    const want = slidingWindow === null ? 'full_attention' : 'sliding_attention';
    if (!Array.isArray(j.layer_types) || j.layer_types.length !== numLayers || !j.layer_types.every((t) => t === want)) {
      fail(`layer_types ${JSON.stringify(j.layer_types)} is not supported`, `this decoder needs every layer to be '${want}'`);
    }
  }

  const hiddenSize = int('hidden_size');
  const numHeads = int('num_attention_heads');
  // transformers' attention of every family here reads config.head_dim when set, else hidden_size / num_attention_heads;
  // Qwen3Config defaults it to 128 (and a null one would fail in transformers).
  if (family === 'qwen3' && j.head_dim === null) fail("head_dim null is not a valid Qwen3 head size", 'give head_dim (Qwen3Config defaults it to 128)');
  const explicitHeadDim = j.head_dim === undefined || j.head_dim === null ? (family === 'qwen3' ? QWEN3_DEFAULT_HEAD_DIM : undefined) : int('head_dim');
  const config: DecoderConfig = {
    vocabSize: int('vocab_size'),
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads: int('num_key_value_heads', numHeads),
    intermediateSize: int('intermediate_size'),
    ropeTheta,
    ...(ropeScaling ? { ropeScaling } : {}),
    rmsNormEps: num('rms_norm_eps', defaults.rmsNormEps),
    maxSeqLen: int('max_position_embeddings', defaults.maxPositions),
    tieWordEmbeddings: bool('tie_word_embeddings', false),
    attentionBias,
    slidingWindow,
    ...(explicitHeadDim !== undefined && explicitHeadDim !== hiddenSize / numHeads ? { headDim: explicitHeadDim } : {}),
    ...(family === 'qwen3' ? { qkNorm: true } : {}),
  };
  try {
    validateDecoderConfig(config);
  } catch (e) {
    fail((e as Error).message, 'fix config.json');
  }
  return { family, config };
}

/** config.json's view of the helpers of {@link parseHfConfig}. */
interface FieldReaders {
  readonly fail: (what: string, hint: string) => never;
  readonly int: (k: string, dflt?: number) => number;
  readonly num: (k: string, dflt: number) => number;
  readonly bool: (k: string, dflt: boolean) => boolean;
}

/**
 * A Gemma3ForCausalLM / `gemma3_text` config.json (transformers' Gemma3TextConfig and
 * modeling_gemma3.py): GeGLU MLP (hidden_activation gelu_pytorch_tanh), Gemma norms, q/k norms,
 * head_dim, query_pre_attn_scalar, layer_types (or sliding_window_pattern) with sliding_window,
 * rope_local_base_freq for the sliding layers and rope_theta / rope_scaling (default or linear, or
 * llama3) for the full ones; rope_parameters per layer type (transformers 5) too. Refused by name:
 * final_logit_softcapping or attn_logit_softcapping not null, use_bidirectional_attention true
 * (EmbeddingGemma), attention_bias true, another activation, scaled RoPE on the sliding layers.
 */
function parseGemma3(j: Record<string, unknown>, { fail, int, num, bool }: FieldReaders): DecoderConfig {
  const act = j.hidden_activation ?? 'gelu_pytorch_tanh';
  if (act !== 'gelu_pytorch_tanh') fail(`hidden_activation ${JSON.stringify(act)} is not supported`, "Gemma-3's MLP here is GeGLU with gelu_pytorch_tanh");
  // Gemma3MLP reads hidden_activation only; a hidden_act beside it (written by some converters) must agree rather than be ignored.
  if (j.hidden_act !== undefined && j.hidden_act !== act) fail(`hidden_act ${JSON.stringify(j.hidden_act)} differs from hidden_activation ${JSON.stringify(act)}`, 'Gemma3ForCausalLM uses hidden_activation: remove hidden_act or make it equal');
  for (const k of ['final_logit_softcapping', 'attn_logit_softcapping']) {
    if (j[k] !== undefined && j[k] !== null) fail(`${k} ${JSON.stringify(j[k])} is not supported`, `tanh soft-capping is not implemented: only ${k} null (as every published Gemma-3)`);
  }
  if (bool('use_bidirectional_attention', false)) fail('use_bidirectional_attention true is not supported', 'only causal attention (Gemma-3 language models; EmbeddingGemma is bidirectional)');
  if (bool('attention_bias', false)) fail('attention_bias true is not supported for Gemma3ForCausalLM', 'it adds q/k/v/o biases, which this decoder does not have');
  if (bool('mlp_bias', false)) fail("mlp_bias true is not supported", 'this decoder has no MLP biases');
  for (const k of ['use_sliding_window', 'max_window_layers', 'use_mrope']) if (j[k] !== undefined) fail(`'${k}' is not a Gemma-3 field`, 'remove it');
  const numLayers = int('num_hidden_layers');
  let layerTypes: AttentionLayerType[];
  if (j.layer_types !== undefined && j.layer_types !== null) {
    const lt = j.layer_types;
    if (!Array.isArray(lt) || lt.length !== numLayers || !lt.every((t) => t === 'full_attention' || t === 'sliding_attention')) {
      fail(`layer_types ${JSON.stringify(lt)} is not a list of ${numLayers} 'full_attention' / 'sliding_attention' entries`, 'one entry per layer');
    }
    layerTypes = [...(lt as AttentionLayerType[])];
  } else {
    if (j.sliding_window_pattern !== undefined && j._sliding_window_pattern !== undefined && j.sliding_window_pattern !== j._sliding_window_pattern) {
      fail('sliding_window_pattern and _sliding_window_pattern differ', 'keep one of them');
    }
    const pattern = int(j._sliding_window_pattern !== undefined ? '_sliding_window_pattern' : 'sliding_window_pattern', GEMMA3_DEFAULTS.slidingWindowPattern);
    layerTypes = Array.from({ length: numLayers }, (_, i) => ((i + 1) % pattern === 0 ? 'full_attention' : 'sliding_attention'));
  }
  // With layer_types given, a pattern beside it must describe the same layers (transformers keeps layer_types).
  for (const k of ['sliding_window_pattern', '_sliding_window_pattern']) {
    if (j[k] === undefined || j.layer_types === undefined || j.layer_types === null) continue;
    const p = int(k);
    if (layerTypes.some((t, i) => (t === 'full_attention') !== ((i + 1) % p === 0))) fail(`${k} ${p} disagrees with layer_types`, 'make them describe the same layers, or remove the pattern');
  }
  let ropeTheta = num('rope_theta', HF_DEFAULTS.gemma3_text.ropeTheta);
  let ropeLocalTheta = num('rope_local_base_freq', GEMMA3_DEFAULTS.ropeLocalTheta);
  let ropeScaling = parseRopeScaling(j.rope_scaling, 'rope_scaling', fail, true);
  if (j.rope_parameters !== undefined && j.rope_parameters !== null) {
    // transformers 5: rope_parameters = {full_attention: {rope_type, rope_theta, ...}, sliding_attention: {...}}.
    const rp = j.rope_parameters as Record<string, unknown>;
    if (typeof rp !== 'object' || Array.isArray(rp) || Object.keys(rp).some((k) => k !== 'full_attention' && k !== 'sliding_attention')) {
      fail(`rope_parameters ${JSON.stringify(rp)} is not {full_attention: {...}, sliding_attention: {...}}`, "Gemma-3's rope_parameters has one entry per layer type");
    }
    if (j.rope_scaling !== undefined && j.rope_scaling !== null) fail('both rope_scaling and rope_parameters are set', 'keep one of them');
    const read = (type: AttentionLayerType): { theta?: number; scaling: RopeScaling | null } => {
      const v = rp[type];
      if (v === undefined || v === null) return { scaling: null };
      if (typeof v !== 'object' || Array.isArray(v)) fail(`rope_parameters.${type} is not an object`, 'write {rope_type, rope_theta, ...}');
      const { rope_theta: theta, ...rest } = v as Record<string, unknown>;
      if (theta !== undefined && (typeof theta !== 'number' || !(theta > 0))) fail(`rope_parameters.${type}.rope_theta must be a positive number`, 'fix the value');
      return { ...(theta !== undefined ? { theta: theta as number } : {}), scaling: parseRopeScaling(rest, `rope_parameters.${type}`, fail, true) };
    };
    const full = read('full_attention');
    const local = read('sliding_attention');
    if (local.scaling) fail('rope_parameters.sliding_attention has a RoPE scaling', 'only plain RoPE on the sliding-window layers is implemented (as every published Gemma-3)');
    ropeTheta = full.theta ?? ropeTheta;
    ropeLocalTheta = local.theta ?? ropeLocalTheta;
    ropeScaling = full.scaling;
  }
  const hiddenSize = int('hidden_size');
  const numHeads = int('num_attention_heads');
  if (j.head_dim === null) fail('head_dim null is not a valid Gemma-3 head size', 'give head_dim (Gemma3TextConfig defaults it to 256)');
  const hd = int('head_dim', GEMMA3_DEFAULTS.headDim);
  const config: DecoderConfig = {
    vocabSize: int('vocab_size'),
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads: int('num_key_value_heads', GEMMA3_DEFAULTS.numKvHeads),
    intermediateSize: int('intermediate_size'),
    ropeTheta,
    ...(ropeScaling ? { ropeScaling } : {}),
    rmsNormEps: num('rms_norm_eps', HF_DEFAULTS.gemma3_text.rmsNormEps),
    maxSeqLen: int('max_position_embeddings', HF_DEFAULTS.gemma3_text.maxPositions),
    tieWordEmbeddings: bool('tie_word_embeddings', GEMMA3_DEFAULTS.tieWordEmbeddings),
    attentionBias: false,
    slidingWindow: int('sliding_window', HF_DEFAULTS.gemma3_text.slidingWindow as number),
    ...(hd !== hiddenSize / numHeads ? { headDim: hd } : {}),
    qkNorm: true,
    hiddenAct: 'gelu_pytorch_tanh',
    gemmaNorms: true,
    queryPreAttnScalar: num('query_pre_attn_scalar', GEMMA3_DEFAULTS.queryPreAttnScalar),
    layerTypes,
    ropeLocalTheta,
  };
  try {
    validateDecoderConfig(config);
  } catch (e) {
    fail((e as Error).message, 'fix config.json');
  }
  return config;
}

/** Fields of a llama3 RoPE scaling in config.json, by their DecoderConfig names (transformers' `_compute_llama3_parameters`). */
const LLAMA3_ROPE_FIELDS = {
  factor: 'factor', low_freq_factor: 'lowFreqFactor', high_freq_factor: 'highFreqFactor', original_max_position_embeddings: 'originalMaxPositionEmbeddings',
} as const;

/**
 * A config.json `rope_scaling` (or the scaling part of `rope_parameters`): null, absent or of type
 * 'default' → null (plain RoPE); type 'llama3' → its four parameters; type 'linear' → its factor when
 * `allowLinear` (Gemma-3, where its parity is tested). Another type (dynamic, yarn, longrope, ...),
 * a missing or unknown field throws naming it.
 */
function parseRopeScaling(v: unknown, field: string, fail: (what: string, hint: string) => never, allowLinear = false): RopeScaling | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) fail(`${field} ${JSON.stringify(v)} is not an object`, 'write null for plain RoPE');
  const o = v as Record<string, unknown>;
  const type = o.rope_type ?? o.type ?? 'default';
  const fields = Object.keys(o).filter((k) => k !== 'rope_type' && k !== 'type');
  if (type === 'default') {
    if (fields.length) fail(`${field} of type 'default' has field${fields.length > 1 ? 's' : ''} ${fields.map((k) => `'${k}'`).join(', ')}`, 'plain RoPE takes no parameters: remove them');
    return null;
  }
  if (type === 'linear' && allowLinear) {
    const extra = fields.filter((k) => k !== 'factor');
    if (extra.length) fail(`${field} of type 'linear' has unknown field${extra.length > 1 ? 's' : ''} ${extra.map((k) => `'${k}'`).join(', ')}`, 'a linear scaling has exactly factor');
    if (typeof o.factor !== 'number' || !Number.isFinite(o.factor)) fail(`${field}.factor must be a number, got ${JSON.stringify(o.factor)}`, 'give the linear scaling factor (e.g. 8)');
    return { type: 'linear', factor: o.factor as number };
  }
  if (type !== 'llama3') fail(`${field} of type ${JSON.stringify(type)} is not supported`, `only plain RoPE and the 'llama3' scaling (Llama-3.1 / 3.2)${allowLinear ? " and 'linear'" : " are implemented (and 'linear' for Gemma-3's full-attention layers)"}${allowLinear ? ' are implemented' : ''}`);
  const unknown = fields.filter((k) => !(k in LLAMA3_ROPE_FIELDS));
  if (unknown.length) fail(`${field} of type 'llama3' has unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}`, `a llama3 scaling has exactly ${Object.keys(LLAMA3_ROPE_FIELDS).join(', ')}`);
  const out: Record<string, number> = {};
  for (const [k, name] of Object.entries(LLAMA3_ROPE_FIELDS)) {
    const x = o[k];
    if (typeof x !== 'number' || !Number.isFinite(x)) fail(`${field}.${k} must be a number, got ${JSON.stringify(x)}`, 'a llama3 scaling needs factor, low_freq_factor, high_freq_factor and original_max_position_embeddings');
    out[name] = x as number;
  }
  // Ranges are checked with the whole config (validateDecoderConfig).
  return { type: 'llama3', factor: out.factor!, lowFreqFactor: out.lowFreqFactor!, highFreqFactor: out.highFreqFactor!, originalMaxPositionEmbeddings: out.originalMaxPositionEmbeddings! };
}

function familyOf(j: Record<string, unknown>, fail: (what: string, hint: string) => never): ModelFamily {
  const known = Object.entries(FAMILY_ARCHITECTURES) as [ModelFamily, string][];
  const list = known.map(([, a]) => a).join(', ');
  const arch = j.architectures;
  if (j.model_type === 'gemma3' || (Array.isArray(arch) && arch[0] === 'Gemma3ForConditionalGeneration')) {
    fail('a multimodal Gemma-3 (Gemma3ForConditionalGeneration, model_type gemma3) is not supported', "pass a text-only Gemma3ForCausalLM folder (model_type gemma3_text: gemma-3-270m, gemma-3-1b, or the text model extracted from a 4B/12B/27B checkpoint, whose weights are named model.layers.*)");
  }
  let family: ModelFamily | undefined;
  if (arch !== undefined) {
    if (!Array.isArray(arch) || arch.length !== 1 || typeof arch[0] !== 'string') fail(`'architectures' must be a list of one class name, got ${JSON.stringify(arch)}`, `use one of ${list}`);
    family = known.find(([, a]) => a === arch[0])?.[0];
    if (!family) fail(`unsupported architecture '${String(arch[0])}'`, `supported: ${list}`);
  }
  const mt = j.model_type;
  if (mt !== undefined) {
    const byType = known.find(([f]) => f === mt)?.[0];
    if (!byType) fail(`unsupported model_type ${JSON.stringify(mt)}`, `supported: ${known.map(([f]) => f).join(', ')}`);
    if (family && family !== byType) fail(`model_type '${String(mt)}' does not match architecture '${String((arch as string[])[0])}'`, 'make them name the same family');
    family = byType;
  }
  if (!family) fail("neither 'architectures' nor 'model_type' is given", `name the family, e.g. "architectures": ["${FAMILY_ARCHITECTURES.llama}"]`);
  return family as ModelFamily;
}

/** The family a config belongs to when none is named: Gemma norms → gemma3_text, q/k norms → qwen3, q/k/v biases → qwen2, a sliding window → mistral, else llama. */
export function inferFamily(c: DecoderConfig): ModelFamily {
  return c.gemmaNorms ? 'gemma3_text' : c.qkNorm ? 'qwen3' : c.attentionBias ? 'qwen2' : c.slidingWindow !== null ? 'mistral' : 'llama';
}

/** Options of {@link toHfConfig}. */
export interface HfConfigOptions {
  /** Family to write; default {@link inferFamily}. */
  readonly family?: ModelFamily;
  readonly bosTokenId?: number;
  readonly eosTokenId?: number;
  /** `torch_dtype` to record (the stored dtype of the weights); default 'float32'. */
  readonly torchDtype?: string;
}

/**
 * A Hugging Face config.json object for a DecoderConfig; {@link parseHfConfig} reads it back to
 * the same config. Throws if the family cannot express the config (q/k/v biases only exist in
 * Qwen2; LLaMA has no sliding window).
 */
export function toHfConfig(c: DecoderConfig, o: HfConfigOptions = {}): Record<string, unknown> {
  validateDecoderConfig(c);
  const family = o.family ?? inferFamily(c);
  const arch = FAMILY_ARCHITECTURES[family];
  if (c.attentionBias && family !== 'qwen2') throw new DdaError(`${arch} cannot express q/k/v biases without an o_proj bias`, "write the config as family 'qwen2'");
  if (!c.attentionBias && family === 'qwen2') throw new DdaError('Qwen2ForCausalLM always has q/k/v biases, this config has none', "write it as family 'llama' or 'mistral'");
  if (c.slidingWindow !== null && family === 'llama') throw new DdaError('LlamaForCausalLM has no sliding-window attention', "write it as family 'mistral'");
  if (family === 'gemma3_text') return gemma3HfConfig(c, o);
  const gemmaOnly = (['gemmaNorms', 'queryPreAttnScalar', 'layerTypes', 'ropeLocalTheta'] as const).filter((k) => c[k] !== undefined && c[k] !== false);
  if (c.hiddenAct !== undefined && c.hiddenAct !== 'silu') gemmaOnly.push('hiddenAct' as never);
  if (gemmaOnly.length) throw new DdaError(`${arch} cannot express ${gemmaOnly.join(', ')}`, "write the config as family 'gemma3_text'");
  if (Boolean(c.qkNorm) !== (family === 'qwen3')) {
    throw new DdaError(c.qkNorm ? `${arch} has no q/k norms` : 'Qwen3ForCausalLM always has q/k norms, this config has none', c.qkNorm ? "write it as family 'qwen3'" : "write it as another family, or set qkNorm");
  }
  const out: Record<string, unknown> = {
    ...shapeFields(c, family),
    hidden_act: 'silu',
    max_position_embeddings: c.maxSeqLen,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    rope_scaling: ropeScalingJson(c.ropeScaling),
    tie_word_embeddings: c.tieWordEmbeddings,
  };
  if (family === 'llama') Object.assign(out, { attention_bias: false, mlp_bias: false });
  if (family === 'mistral') out.sliding_window = c.slidingWindow;
  if (c.headDim !== undefined || family === 'qwen3') out.head_dim = headDim(c);
  if (family === 'qwen3') out.attention_bias = false;
  if (family === 'qwen2' || family === 'qwen3') {
    Object.assign(out, c.slidingWindow === null
      ? { use_sliding_window: false, sliding_window: null, max_window_layers: c.numLayers }
      : { use_sliding_window: true, sliding_window: c.slidingWindow, max_window_layers: 0 });
  }
  return withTokenIdsAndDtype(out, o);
}

/** The fields every family's config.json has: class, model_type and sizes. */
function shapeFields(c: DecoderConfig, family: ModelFamily): Record<string, unknown> {
  return {
    architectures: [FAMILY_ARCHITECTURES[family]], model_type: family, vocab_size: c.vocabSize, hidden_size: c.hiddenSize, intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers, num_attention_heads: c.numHeads, num_key_value_heads: c.numKvHeads,
  };
}

/** `out` with the options' bos/eos token ids and torch_dtype (default float32) written last. */
function withTokenIdsAndDtype(out: Record<string, unknown>, o: HfConfigOptions): Record<string, unknown> {
  if (o.bosTokenId !== undefined) out.bos_token_id = o.bosTokenId;
  if (o.eosTokenId !== undefined) out.eos_token_id = o.eosTokenId;
  out.torch_dtype = o.torchDtype ?? 'float32';
  return out;
}

/** A RopeScaling as config.json's rope_scaling (null for plain RoPE). */
function ropeScalingJson(rs: RopeScaling | null | undefined): Record<string, unknown> | null {
  if (!rs) return null;
  if (rs.type === 'linear') return { rope_type: 'linear', factor: rs.factor };
  return { rope_type: 'llama3', factor: rs.factor, low_freq_factor: rs.lowFreqFactor, high_freq_factor: rs.highFreqFactor, original_max_position_embeddings: rs.originalMaxPositionEmbeddings };
}

/** {@link toHfConfig} for Gemma3ForCausalLM: the config must have every Gemma-3 feature (Gemma norms, q/k norms, GeGLU, layerTypes, no biases). */
function gemma3HfConfig(c: DecoderConfig, o: HfConfigOptions): Record<string, unknown> {
  const missing = [
    ...(c.gemmaNorms ? [] : ['gemmaNorms']), ...(c.qkNorm ? [] : ['qkNorm']), ...(c.hiddenAct === 'gelu_pytorch_tanh' ? [] : ["hiddenAct 'gelu_pytorch_tanh'"]),
    ...(c.layerTypes ? [] : ['layerTypes']), ...(c.attentionBias ? ['no attentionBias'] : []),
    // rope_local_base_freq always means plain RoPE on the sliding layers: without ropeLocalTheta they would share the global scaling.
    ...(c.ropeLocalTheta === undefined && c.ropeScaling ? ["ropeLocalTheta (the sliding layers' plain RoPE θ)"] : []),
  ];
  if (missing.length) throw new DdaError(`Gemma3ForCausalLM needs ${missing.join(', ')}`, 'write the config as another family, or give it every Gemma-3 feature');
  const out: Record<string, unknown> = {
    ...shapeFields(c, 'gemma3_text'),
    head_dim: headDim(c),
    hidden_activation: 'gelu_pytorch_tanh',
    max_position_embeddings: c.maxSeqLen,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    rope_scaling: ropeScalingJson(c.ropeScaling),
    rope_local_base_freq: c.ropeLocalTheta ?? c.ropeTheta,
    query_pre_attn_scalar: c.queryPreAttnScalar ?? headDim(c),
    sliding_window: c.slidingWindow ?? HF_DEFAULTS.gemma3_text.slidingWindow,
    layer_types: [...(c.layerTypes ?? [])],
    attention_bias: false,
    final_logit_softcapping: null,
    attn_logit_softcapping: null,
    tie_word_embeddings: c.tieWordEmbeddings,
  };
  return withTokenIdsAndDtype(out, o);
}
