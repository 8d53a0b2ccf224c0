import { beforeAll, describe, expect, it } from 'vitest';
import { GELU_TANH_C, embeddingScale, layerAttention, ropeInverseFrequencies } from '@dda/core';
import { SPECIAL_TOKENS, WordTokenizer, decoderWeightSpecs } from '@dda/model';
import { DecoderModel, startTfjsBackend } from '@dda/backend-tfjs';
import { gemma3Config, gemma3Fx, gemma3Lora, gemma3LoraWeights, gemma3Parsed, gemma3Weights } from '../../../packages/model/test/gemma3-case.js';
import { expectTfjsFixtureParity } from './fixture-parity.js';

// Gemma-3 (Gemma3ForCausalLM) on the tfjs engine against PyTorch float64 (make-gemma3-fixtures.py).
describe('Gemma-3 (tfjs) vs PyTorch reference', () => {
  let model: DecoderModel;
  beforeAll(async () => {
    await startTfjsBackend(['tfjs-wasm']);
    const c = gemma3Config;
    const words = Array.from({ length: c.vocabSize - SPECIAL_TOKENS.length }, (_, i) => `w${i}`);
    model = new DecoderModel(c, new WordTokenizer([...SPECIAL_TOKENS, ...words]), gemma3Weights());
    model.setLora(gemma3Lora, gemma3LoraWeights());
  });

  it('reads the config.json: every Gemma-3 feature, sliding and full layers with their own RoPE', () => {
    expect(gemma3Parsed.family).toBe('gemma3_text');
    expect(gemma3Config).toEqual({
      vocabSize: 29, hiddenSize: 24, numLayers: 3, numHeads: 4, numKvHeads: 2, intermediateSize: 40, ropeTheta: 100, ropeScaling: { type: 'linear', factor: 4 },
      rmsNormEps: 1e-6, maxSeqLen: 64, tieWordEmbeddings: true, attentionBias: false, slidingWindow: 4, headDim: 8, qkNorm: true,
      hiddenAct: 'gelu_pytorch_tanh', gemmaNorms: true, queryPreAttnScalar: 10, layerTypes: ['sliding_attention', 'full_attention', 'sliding_attention'], ropeLocalTheta: 10,
    });
    expect([0, 1, 2].map((i) => layerAttention(gemma3Config, i))).toEqual([
      { window: 4, theta: 10, scaling: null }, { window: null, theta: 100, scaling: { type: 'linear', factor: 4 } }, { window: 4, theta: 10, scaling: null },
    ]);
    expect(embeddingScale(gemma3Config)).toBe(gemma3Fx.embedScale);
    // Linear scaling: every inverse frequency of the full layers divided by the factor (transformers' _compute_linear_scaling_rope_parameters).
    // gelu_pytorch_tanh's constant and form (as both engines write it) against torch's gelu(approximate='tanh').
    gemma3Fx.gelu.x.forEach((x, k) => expect(Math.abs(0.5 * x * (1 + Math.tanh(GELU_TANH_C * (x + 0.044715 * x ** 3))) - gemma3Fx.gelu.y[k]!)).toBeLessThan(1e-15));
    const plain = ropeInverseFrequencies(8, 100);
    expect([...ropeInverseFrequencies(8, 100, gemma3Config.ropeScaling)]).toEqual([...plain].map((f) => f / 4));
    // The weights the config needs are exactly the fixture's (four norms per layer, q/k norms, tied head).
    expect(decoderWeightSpecs(gemma3Config).map((s) => s.name).sort()).toEqual(Object.keys(gemma3Fx.weights).sort());
  });

  it('the fixture exercises the window, the two RoPEs and the linear scaling: without any of them the logits move far', () => {
    for (const ex of gemma3Fx.examples) {
      expect(ex.noWindowRelDiff).toBeGreaterThan(0.1);
      expect(ex.oneRopeRelDiff).toBeGreaterThan(0.1);
      expect(ex.noScalingRelDiff).toBeGreaterThan(0.1);
      expect(ex.tokens.length).toBeGreaterThanOrEqual(3 * gemma3Config.slidingWindow!);
    }
  });

  it('logits, response losses and per-example LoRA gradients agree to 1e-4 relative (losses 1e-5)', () => {
    expectTfjsFixtureParity(model, gemma3Fx.examples);
  });
});
