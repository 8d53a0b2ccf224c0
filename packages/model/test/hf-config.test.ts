import { describe, expect, it } from 'vitest';
import { REAL_MODELS, TINY_PRESETS, inferFamily, parseHfConfig, toHfConfig, type DecoderConfig } from '@dda/model';

// Shaped like the config.json files published with Llama-2-7b-hf, Qwen2-0.5B and Mistral-7B-v0.1.
const LLAMA2_7B = {
  architectures: ['LlamaForCausalLM'], bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: 4096, initializer_range: 0.02,
  intermediate_size: 11008, max_position_embeddings: 4096, model_type: 'llama', num_attention_heads: 32, num_hidden_layers: 32,
  num_key_value_heads: 32, pretraining_tp: 1, rms_norm_eps: 1e-5, rope_scaling: null, tie_word_embeddings: false, torch_dtype: 'float16',
  transformers_version: '4.31.0.dev0', use_cache: true, vocab_size: 32000,
};
const QWEN2_05B = {
  architectures: ['Qwen2ForCausalLM'], attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151643, hidden_act: 'silu', hidden_size: 896,
  initializer_range: 0.02, intermediate_size: 4864, max_position_embeddings: 131072, max_window_layers: 24, model_type: 'qwen2',
  num_attention_heads: 14, num_hidden_layers: 24, num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 1000000.0, sliding_window: 131072,
  tie_word_embeddings: true, torch_dtype: 'bfloat16', transformers_version: '4.40.1', use_cache: true, use_sliding_window: false, vocab_size: 151936,
};
const MISTRAL_7B = {
  architectures: ['MistralForCausalLM'], bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: 4096, initializer_range: 0.02,
  intermediate_size: 14336, max_position_embeddings: 32768, model_type: 'mistral', num_attention_heads: 32, num_hidden_layers: 32,
  num_key_value_heads: 8, rms_norm_eps: 1e-5, rope_theta: 10000.0, sliding_window: 4096, tie_word_embeddings: false, torch_dtype: 'bfloat16',
  transformers_version: '4.34.0.dev0', use_cache: true, vocab_size: 32000,
};
// Qwen/Qwen3-0.6B's config.json as published (transformers 4.51).
const QWEN3_06B = {
  architectures: ['Qwen3ForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151645, head_dim: 128,
  hidden_act: 'silu', hidden_size: 1024, initializer_range: 0.02, intermediate_size: 3072, max_position_embeddings: 40960, max_window_layers: 28,
  model_type: 'qwen3', num_attention_heads: 16, num_hidden_layers: 28, num_key_value_heads: 8, rms_norm_eps: 1e-6, rope_scaling: null,
  rope_theta: 1000000, sliding_window: null, tie_word_embeddings: true, torch_dtype: 'bfloat16', transformers_version: '4.51.0', use_cache: true,
  use_sliding_window: false, vocab_size: 151936,
};

describe('Hugging Face config.json → DecoderConfig', () => {
  it('reads Qwen3 (q/k norms, explicit head_dim 128 ≠ 1024 / 16, GQA, tied embeddings); head_dim defaults to 128 as in Qwen3Config', () => {
    const { family, config } = parseHfConfig(QWEN3_06B);
    expect(family).toBe('qwen3');
    expect(config).toEqual({
      vocabSize: 151936, hiddenSize: 1024, numLayers: 28, numHeads: 16, numKvHeads: 8, intermediateSize: 3072, ropeTheta: 1e6, rmsNormEps: 1e-6,
      maxSeqLen: 40960, tieWordEmbeddings: true, attentionBias: false, slidingWindow: null, headDim: 128, qkNorm: true,
    });
    const { head_dim: _hd, ...noHeadDim } = QWEN3_06B;
    // 2048 / 16 = 128: the default head size equals hidden / heads, so none is recorded.
    expect(parseHfConfig({ ...noHeadDim, hidden_size: 2048 }).config).toMatchObject({ hiddenSize: 2048, qkNorm: true });
    expect(parseHfConfig({ ...noHeadDim, hidden_size: 2048 }).config.headDim).toBeUndefined();
    expect(parseHfConfig(noHeadDim).config.headDim).toBe(128);
    expect(() => parseHfConfig({ ...QWEN3_06B, head_dim: null })).toThrow('head_dim null is not a valid Qwen3 head size');
    expect(() => parseHfConfig({ ...QWEN3_06B, attention_bias: true })).toThrow('attention_bias true is not supported for Qwen3ForCausalLM');
    expect(() => parseHfConfig({ ...QWEN3_06B, head_dim: 127 })).toThrow('head size 127 must be even for RoPE');
  });

  it('reads LLaMA2 (multi-head, no biases, default rope_theta 1e4)', () => {
    expect(parseHfConfig(LLAMA2_7B)).toEqual({
      family: 'llama',
      config: {
        vocabSize: 32000, hiddenSize: 4096, numLayers: 32, numHeads: 32, numKvHeads: 32, intermediateSize: 11008, ropeTheta: 10000,
        rmsNormEps: 1e-5, maxSeqLen: 4096, tieWordEmbeddings: false, attentionBias: false, slidingWindow: null,
      },
    });
  });

  it('reads Qwen2 (GQA, q/k/v biases, tied embeddings, rope_theta 1e6, window off)', () => {
    expect(parseHfConfig(QWEN2_05B)).toEqual({
      family: 'qwen2',
      config: {
        vocabSize: 151936, hiddenSize: 896, numLayers: 24, numHeads: 14, numKvHeads: 2, intermediateSize: 4864, ropeTheta: 1e6,
        rmsNormEps: 1e-6, maxSeqLen: 131072, tieWordEmbeddings: true, attentionBias: true, slidingWindow: null,
      },
    });
  });

  it('reads Mistral (GQA, sliding window)', () => {
    const { family, config } = parseHfConfig(MISTRAL_7B);
    expect(family).toBe('mistral');
    expect(config).toMatchObject({ numHeads: 32, numKvHeads: 8, slidingWindow: 4096, attentionBias: false, ropeTheta: 10000, maxSeqLen: 32768 });
    expect(parseHfConfig({ ...MISTRAL_7B, sliding_window: null }).config.slidingWindow).toBeNull();
    // MistralConfig's default window when the field is absent.
    const { sliding_window: _w, ...noWindow } = MISTRAL_7B;
    expect(parseHfConfig(noWindow).config.slidingWindow).toBe(4096);
  });

  it('takes the family from model_type alone, and Qwen2 windows only when every layer is windowed', () => {
    const { architectures: _a, ...byType } = QWEN2_05B;
    expect(parseHfConfig(byType).family).toBe('qwen2');
    expect(parseHfConfig({ ...QWEN2_05B, use_sliding_window: true, max_window_layers: 0, sliding_window: 64 }).config.slidingWindow).toBe(64);
  });

  it('names unknown architectures, fields and unsupported values', () => {
    expect(() => parseHfConfig({ ...LLAMA2_7B, architectures: ['GPT2LMHeadModel'] }, 'm/config.json'))
      .toThrow("m/config.json: unsupported architecture 'GPT2LMHeadModel'");
    expect(() => parseHfConfig({ ...LLAMA2_7B, model_type: 'mistral' })).toThrow("model_type 'mistral' does not match architecture 'LlamaForCausalLM'");
    expect(() => parseHfConfig({ ...LLAMA2_7B, rope_scaling: { type: 'linear', factor: 2 } })).toThrow('rope_scaling of type "linear" is not supported');
    expect(() => parseHfConfig({ ...LLAMA2_7B, hidden_act: 'gelu' })).toThrow('hidden_act "gelu" is not supported');
    expect(() => parseHfConfig({ ...LLAMA2_7B, quantization_config: { bits: 4 }, foo: 1 })).toThrow("unsupported fields 'quantization_config', 'foo'");
    expect(() => parseHfConfig({ ...LLAMA2_7B, attention_bias: true })).toThrow('attention_bias true is not supported for LlamaForCausalLM');
    expect(() => parseHfConfig({ ...LLAMA2_7B, mlp_bias: true })).toThrow('mlp_bias true is not supported');
    expect(() => parseHfConfig({ ...LLAMA2_7B, sliding_window: 128 })).toThrow("'sliding_window' is not a LLaMA field");
    expect(() => parseHfConfig({ ...QWEN2_05B, use_sliding_window: true })).toThrow('use_sliding_window with max_window_layers 24 (only some layers windowed) is not supported');
    // transformers' LlamaAttention reads config.head_dim too: an explicit one is computed, not refused.
    expect(parseHfConfig({ ...LLAMA2_7B, head_dim: 256 }).config.headDim).toBe(256);
    expect(parseHfConfig({ ...LLAMA2_7B, head_dim: 128 }).config.headDim).toBeUndefined();
    expect(() => parseHfConfig({ ...LLAMA2_7B, num_key_value_heads: 5 })).toThrow('numHeads 32 is not a multiple of numKvHeads 5');
    const { hidden_size: _h, ...noHidden } = LLAMA2_7B;
    expect(() => parseHfConfig(noHidden)).toThrow("missing required field 'hidden_size'");
    expect(() => parseHfConfig({ vocab_size: 3 })).toThrow("neither 'architectures' nor 'model_type' is given");
  });
});

/** meta-llama/Llama-3.2-1B's config.json, verbatim: llama3 RoPE scaling (factor 32), tied embeddings, explicit head_dim. */
const LLAMA32_1B = {
  architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 128000, eos_token_id: 128001, head_dim: 64,
  hidden_act: 'silu', hidden_size: 2048, initializer_range: 0.02, intermediate_size: 8192, max_position_embeddings: 131072, mlp_bias: false,
  model_type: 'llama', num_attention_heads: 32, num_hidden_layers: 16, num_key_value_heads: 8, pretraining_tp: 1, rms_norm_eps: 1e-5,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  rope_theta: 500000.0, tie_word_embeddings: true, torch_dtype: 'bfloat16', transformers_version: '4.45.0.dev0', use_cache: true, vocab_size: 128256,
};
/** meta-llama/Llama-3.1-8B-Instruct's config.json: llama3 scaling factor 8, untied, a list of end-of-turn ids. */
const LLAMA31_8B_INSTRUCT = {
  architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 128000, eos_token_id: [128001, 128008, 128009],
  hidden_act: 'silu', hidden_size: 4096, initializer_range: 0.02, intermediate_size: 14336, max_position_embeddings: 131072, mlp_bias: false,
  model_type: 'llama', num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 8, pretraining_tp: 1, rms_norm_eps: 1e-5,
  rope_scaling: { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  rope_theta: 500000.0, tie_word_embeddings: false, torch_dtype: 'bfloat16', transformers_version: '4.42.3', use_cache: true, vocab_size: 128256,
};

describe('Llama-3.x config.json (llama3 RoPE scaling)', () => {
  it('reads Llama-3.2-1B: llama3 scaling factor 32, tied embeddings, head_dim 64', () => {
    const { family, config } = parseHfConfig(LLAMA32_1B);
    expect(family).toBe('llama');
    expect(config).toEqual({
      vocabSize: 128256, hiddenSize: 2048, numLayers: 16, numHeads: 32, numKvHeads: 8, intermediateSize: 8192, ropeTheta: 500000,
      ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
      rmsNormEps: 1e-5, maxSeqLen: 131072, tieWordEmbeddings: true, attentionBias: false, slidingWindow: null,
    });
  });

  it('reads Llama-3.1-8B-Instruct (a list of eos ids, factor 8, untied) and the same scaling as transformers 5 rope_parameters', () => {
    const { config } = parseHfConfig(LLAMA31_8B_INSTRUCT);
    expect(config).toMatchObject({ tieWordEmbeddings: false, ropeTheta: 500000, ropeScaling: { type: 'llama3', factor: 8 } });
    const { rope_scaling: rs, rope_theta: theta, ...rest } = LLAMA31_8B_INSTRUCT;
    expect(parseHfConfig({ ...rest, rope_parameters: { ...rs, rope_theta: theta } }).config).toEqual(config);
    // {rope_type: 'default'} is plain RoPE, in either field.
    expect(parseHfConfig({ ...LLAMA31_8B_INSTRUCT, rope_scaling: { rope_type: 'default' } }).config.ropeScaling).toBeUndefined();
    expect(parseHfConfig({ ...rest, rope_parameters: { rope_type: 'default', rope_theta: 1e4 } }).config).toMatchObject({ ropeTheta: 1e4 });
  });

  it('refuses the other scalings by name, and a llama3 scaling with a missing, unknown or out-of-range field', () => {
    for (const type of ['linear', 'dynamic', 'yarn', 'longrope', 'ntk']) {
      expect(() => parseHfConfig({ ...LLAMA32_1B, rope_scaling: { rope_type: type, factor: 2 } }, 'm/config.json')).toThrow(`m/config.json: rope_scaling of type "${type}" is not supported`);
      expect(() => parseHfConfig({ ...LLAMA32_1B, rope_scaling: null, rope_parameters: { rope_type: type, factor: 2, rope_theta: 1e4 } })).toThrow(`rope_parameters of type "${type}" is not supported`);
    }
    const { low_freq_factor: _l, ...noLow } = LLAMA32_1B.rope_scaling;
    expect(() => parseHfConfig({ ...LLAMA32_1B, rope_scaling: noLow })).toThrow('rope_scaling.low_freq_factor must be a number, got undefined');
    expect(() => parseHfConfig({ ...LLAMA32_1B, rope_scaling: { ...LLAMA32_1B.rope_scaling, attention_factor: 1 } })).toThrow("rope_scaling of type 'llama3' has unknown field 'attention_factor'");
    expect(() => parseHfConfig({ ...LLAMA32_1B, rope_scaling: { ...LLAMA32_1B.rope_scaling, high_freq_factor: 1 } })).toThrow('llama3 ropeScaling');
    expect(() => parseHfConfig({ ...LLAMA32_1B, rope_scaling: { rope_type: 'default', factor: 2 } })).toThrow("rope_scaling of type 'default' has field 'factor'");
    expect(() => parseHfConfig({ ...LLAMA32_1B, rope_parameters: { ...LLAMA32_1B.rope_scaling } })).toThrow('both rope_scaling and rope_parameters set a RoPE scaling');
    // An explicit head_dim is read for every family, as transformers does (Qwen3's merge): 2048 wide with 32 heads of 128.
    expect(parseHfConfig({ ...LLAMA32_1B, head_dim: 128 }).config.headDim).toBe(128);
  });

  it('writes the llama3 scaling back to config.json, and reads it back to the same config', () => {
    const { config } = parseHfConfig(LLAMA32_1B);
    const json = toHfConfig(config);
    expect(json.rope_scaling).toEqual({ rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 });
    expect(parseHfConfig(JSON.parse(JSON.stringify(json)))).toEqual({ family: 'llama', config });
  });
});

describe('DecoderConfig → Hugging Face config.json', () => {
  it.each(Object.keys(TINY_PRESETS))('%s reads back to the same config and family', (name) => {
    const c: DecoderConfig = { ...TINY_PRESETS[name]!, vocabSize: 390 };
    const json = JSON.parse(JSON.stringify(toHfConfig(c)));
    expect(parseHfConfig(json)).toEqual({ family: inferFamily(c), config: c });
  });

  it('writes each family with its own fields', () => {
    const q: DecoderConfig = { ...TINY_PRESETS['qwen2-tiny']!, vocabSize: 100 };
    expect(toHfConfig(q, { bosTokenId: 2, eosTokenId: 3 })).toEqual({
      architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', vocab_size: 100, hidden_size: 64, intermediate_size: 172, num_hidden_layers: 2,
      num_attention_heads: 4, num_key_value_heads: 2, hidden_act: 'silu', max_position_embeddings: 160, rms_norm_eps: 1e-6, rope_theta: 1e6,
      rope_scaling: null, tie_word_embeddings: true, use_sliding_window: false, sliding_window: null, max_window_layers: 2,
      bos_token_id: 2, eos_token_id: 3, torch_dtype: 'float32',
    });
    const m: DecoderConfig = { ...TINY_PRESETS['mistral-tiny']!, vocabSize: 100 };
    expect(toHfConfig(m)).toMatchObject({ architectures: ['MistralForCausalLM'], sliding_window: 32 });
    // A windowed Qwen2 config round-trips through use_sliding_window / max_window_layers 0.
    const qw: DecoderConfig = { ...q, slidingWindow: 16 };
    expect(parseHfConfig(toHfConfig(qw)).config).toEqual(qw);
  });

  it('refuses a family that cannot express the config', () => {
    const q: DecoderConfig = { ...TINY_PRESETS['qwen2-tiny']!, vocabSize: 100 };
    expect(() => toHfConfig(q, { family: 'llama' })).toThrow('LlamaForCausalLM cannot express q/k/v biases without an o_proj bias');
    const m: DecoderConfig = { ...TINY_PRESETS['mistral-tiny']!, vocabSize: 100 };
    expect(() => toHfConfig(m, { family: 'llama' })).toThrow('LlamaForCausalLM has no sliding-window attention');
    expect(() => toHfConfig(m, { family: 'qwen2' })).toThrow('Qwen2ForCausalLM always has q/k/v biases');
    const q3: DecoderConfig = { ...TINY_PRESETS['qwen3-tiny']!, vocabSize: 100 };
    expect(() => toHfConfig(q3, { family: 'llama' })).toThrow('LlamaForCausalLM has no q/k norms');
    expect(() => toHfConfig({ ...q3, qkNorm: false }, { family: 'qwen3' })).toThrow('Qwen3ForCausalLM always has q/k norms');
    expect(toHfConfig(q3)).toMatchObject({ architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', head_dim: 32, attention_bias: false, use_sliding_window: false });
    expect(parseHfConfig(toHfConfig({ ...q3, slidingWindow: 16 })).config).toEqual({ ...q3, slidingWindow: 16 });
  });
});

// google/gemma-3-1b-pt's config.json as REAL_MODELS holds it (transformers 4.50: sliding_window_pattern, no layer_types) and
// the text config of google/gemma-3-4b-it (linear RoPE scaling of factor 8 on the full layers).
const GEMMA3_1B = REAL_MODELS['gemma-3-1b'].configJson as Record<string, unknown> & { sliding_window_pattern: number; rope_local_base_freq: number; num_key_value_heads: number; head_dim: number; query_pre_attn_scalar: number };
const GEMMA3_4B_TEXT = {
  ...GEMMA3_1B, hidden_size: 2560, intermediate_size: 10240, num_attention_heads: 8, num_hidden_layers: 34, num_key_value_heads: 4,
  max_position_embeddings: 131072, sliding_window: 1024, rope_scaling: { factor: 8.0, rope_type: 'linear' }, vocab_size: 262208,
};

describe('Gemma-3 config.json (Gemma3ForCausalLM, gemma3_text)', () => {
  const globalLayers = (types: readonly string[] | undefined): number[] => (types ?? []).flatMap((t, i) => (t === 'full_attention' ? [i] : []));

  it("reads gemma-3-1b: GeGLU, Gemma norms, q/k norms, head_dim 256, query_pre_attn_scalar, five sliding layers per full one", () => {
    const { family, config } = parseHfConfig(GEMMA3_1B);
    expect(family).toBe('gemma3_text');
    const { layerTypes, ...rest } = config;
    expect(rest).toEqual({
      vocabSize: 262144, hiddenSize: 1152, numLayers: 26, numHeads: 4, numKvHeads: 1, intermediateSize: 6912, ropeTheta: 1e6, rmsNormEps: 1e-6,
      maxSeqLen: 32768, tieWordEmbeddings: true, attentionBias: false, slidingWindow: 512, headDim: 256, qkNorm: true, hiddenAct: 'gelu_pytorch_tanh',
      gemmaNorms: true, queryPreAttnScalar: 256, ropeLocalTheta: 10000,
    });
    // transformers: layer i is full_attention when (i + 1) % sliding_window_pattern == 0.
    expect(globalLayers(layerTypes)).toEqual([5, 11, 17, 23]);
    // Gemma3TextConfig's defaults for omitted fields (sliding_window_pattern 6, rope_local_base_freq 1e4, tied, 4 kv heads, head_dim 256).
    const { sliding_window_pattern: _p, rope_local_base_freq: _r, num_key_value_heads: _k, head_dim: _h, query_pre_attn_scalar: _q, ...sparse } = GEMMA3_1B;
    expect(parseHfConfig(sparse).config).toEqual({ ...config, numKvHeads: 4 });
    // layer_types (transformers >= 4.53) instead of the pattern.
    expect(parseHfConfig({ ...GEMMA3_1B, sliding_window_pattern: undefined, layer_types: layerTypes }).config).toEqual(config);
    expect(parseHfConfig({ ...GEMMA3_1B, sliding_window_pattern: 2 }).config.layerTypes!.filter((t) => t === 'full_attention')).toHaveLength(13);
  });

  it('reads a 4B text config: linear RoPE scaling (factor 8) on the full layers; transformers 5 rope_parameters per layer type', () => {
    const { config } = parseHfConfig(GEMMA3_4B_TEXT);
    expect(config).toMatchObject({ ropeScaling: { type: 'linear', factor: 8 }, ropeTheta: 1e6, ropeLocalTheta: 1e4, slidingWindow: 1024, numKvHeads: 4 });
    const { rope_scaling: _s, rope_theta: _t, rope_local_base_freq: _l, ...v5 } = GEMMA3_4B_TEXT;
    const rope_parameters = { full_attention: { rope_type: 'linear', factor: 8.0, rope_theta: 1e6 }, sliding_attention: { rope_type: 'default', rope_theta: 1e4 } };
    expect(parseHfConfig({ ...v5, rope_parameters }).config).toEqual(config);
    expect(() => parseHfConfig({ ...v5, rope_parameters: { ...rope_parameters, sliding_attention: { rope_type: 'linear', factor: 2 } } }))
      .toThrow('rope_parameters.sliding_attention has a RoPE scaling');
    expect(() => parseHfConfig({ ...GEMMA3_1B, rope_scaling: { rope_type: 'yarn', factor: 8 } })).toThrow('rope_scaling of type "yarn" is not supported');
  });

  it('refuses by name what it does not compute, and the multimodal config', () => {
    expect(() => parseHfConfig({ ...GEMMA3_1B, final_logit_softcapping: 30 })).toThrow('final_logit_softcapping 30 is not supported');
    expect(() => parseHfConfig({ ...GEMMA3_1B, attn_logit_softcapping: 50 })).toThrow('attn_logit_softcapping 50 is not supported');
    expect(() => parseHfConfig({ ...GEMMA3_1B, use_bidirectional_attention: true })).toThrow('use_bidirectional_attention true is not supported');
    expect(() => parseHfConfig({ ...GEMMA3_1B, hidden_activation: 'gelu' })).toThrow('hidden_activation "gelu" is not supported');
    expect(() => parseHfConfig({ ...GEMMA3_1B, hidden_act: 'silu' })).toThrow('hidden_act "silu" differs from hidden_activation');
    expect(parseHfConfig({ ...GEMMA3_1B, hidden_act: 'gelu_pytorch_tanh' }).config).toEqual(parseHfConfig(GEMMA3_1B).config);
    expect(() => parseHfConfig({ ...GEMMA3_1B, attention_bias: true })).toThrow('attention_bias true is not supported for Gemma3ForCausalLM');
    expect(() => parseHfConfig({ ...GEMMA3_1B, layer_types: ['full_attention'] })).toThrow("layer_types [\"full_attention\"] is not a list of 26");
    expect(() => parseHfConfig({ ...GEMMA3_1B, layer_types: Array(26).fill('full_attention') })).toThrow('sliding_window_pattern 6 disagrees with layer_types');
    expect(() => parseHfConfig({ ...GEMMA3_1B, use_sliding_window: true })).toThrow("'use_sliding_window' is not a Gemma-3 field");
    expect(() => parseHfConfig({ architectures: ['Gemma3ForConditionalGeneration'], model_type: 'gemma3', text_config: GEMMA3_4B_TEXT }, 'g/config.json'))
      .toThrow('g/config.json: a multimodal Gemma-3 (Gemma3ForConditionalGeneration, model_type gemma3) is not supported');
    // Gemma-only fields on another family are unknown fields there.
    expect(() => parseHfConfig({ ...LLAMA2_7B, query_pre_attn_scalar: 128 })).toThrow("unsupported field 'query_pre_attn_scalar'");
  });

  it('writes Gemma3ForCausalLM for gemma3-tiny and reads it back; other families refuse Gemma features', () => {
    const g: DecoderConfig = { ...TINY_PRESETS['gemma3-tiny']!, vocabSize: 100 };
    expect(inferFamily(g)).toBe('gemma3_text');
    const json = toHfConfig(g, { bosTokenId: 2, eosTokenId: 1 });
    expect(json).toMatchObject({
      architectures: ['Gemma3ForCausalLM'], model_type: 'gemma3_text', head_dim: 32, hidden_activation: 'gelu_pytorch_tanh', query_pre_attn_scalar: 32,
      rope_local_base_freq: 1e4, rope_theta: 1e6, sliding_window: 32, layer_types: ['sliding_attention', 'full_attention'], final_logit_softcapping: null,
    });
    expect(parseHfConfig(json).config).toEqual(g);
    const linear: DecoderConfig = { ...g, ropeScaling: { type: 'linear', factor: 8 } };
    expect(parseHfConfig(toHfConfig(linear)).config).toEqual(linear);
    const oneB = parseHfConfig(GEMMA3_1B).config;
    expect(parseHfConfig(toHfConfig(oneB)).config).toEqual(oneB);
    expect(() => toHfConfig(g, { family: 'qwen3' })).toThrow('Qwen3ForCausalLM cannot express gemmaNorms, queryPreAttnScalar, layerTypes, ropeLocalTheta, hiddenAct');
    const q3: DecoderConfig = { ...TINY_PRESETS['qwen3-tiny']!, vocabSize: 100 };
    expect(() => toHfConfig(q3, { family: 'gemma3_text' })).toThrow("Gemma3ForCausalLM needs gemmaNorms, hiddenAct 'gelu_pytorch_tanh', layerTypes");
  });
});
