import { beforeAll, describe, expect, it } from 'vitest';
import { ropeCosSin, ropeInverseFrequencies } from '@dda/core';
import { SPECIAL_TOKENS, WordTokenizer, parseHfConfig } from '@dda/model';
import { DecoderModel, startTfjsBackend } from '@dda/backend-tfjs';
import { llama3Config, llama3Fx, llama3Lora, llama3LoraWeights, llama3Weights } from '../../../packages/model/test/llama3-case.js';
import { expectTfjsFixtureParity } from './fixture-parity.js';
import { maxRelErr } from '../../../packages/model/test/peft-variant-case.js';
import { expectRopeTables } from '../../../packages/model/test/real-parity-case.js';

// Llama-3.x's llama3 RoPE scaling and tied embeddings against PyTorch float64 (make-llama3-fixtures.py).
describe('llama3 RoPE scaling, tied embeddings (tfjs) vs PyTorch reference', () => {
  let model: DecoderModel;
  beforeAll(async () => {
    await startTfjsBackend(['tfjs-wasm']);
    const c = llama3Config;
    const words = Array.from({ length: c.vocabSize - SPECIAL_TOKENS.length }, (_, i) => `w${i}`);
    model = new DecoderModel(c, new WordTokenizer([...SPECIAL_TOKENS, ...words]), llama3Weights());
    model.setLora(llama3Lora, llama3LoraWeights());
  });

  it('reads the config.json: llama3 scaling, tied embeddings', () => {
    expect(llama3Config).toMatchObject({
      tieWordEmbeddings: true, numKvHeads: 1, ropeTheta: 100, maxSeqLen: 128,
      ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 },
    });
  });

  it('inverse frequencies equal the reference (kept, interpolated and divided bands all present) to 1e-15', () => {
    const inv = ropeInverseFrequencies(16, 100, llama3Config.ropeScaling);
    expect(maxRelErr(inv, llama3Fx.invFreq)).toBeLessThan(1e-15);
    const plain = ropeInverseFrequencies(16, 100);
    const ratio = [...inv].map((f, k) => plain[k]! / f);
    expect(ratio.filter((r) => Math.abs(r - 1) < 1e-12).length).toBeGreaterThan(0);
    expect(ratio.filter((r) => Math.abs(r - 8) < 1e-12).length).toBeGreaterThan(0);
    expect(ratio.filter((r) => r > 1 + 1e-6 && r < 8 - 1e-6).length).toBeGreaterThan(0);
  });

  it.each(llama3Fx.realRope.map((r) => [r.name, r] as const))('%s RoPE (published θ and llama3 scaling): frequencies to 1e-15, cos/sin up to position 131071 to 1e-6', (_, r) => {
    // The scaling as read from a config.json's rope_scaling.
    const { config } = parseHfConfig({
      architectures: ['LlamaForCausalLM'], hidden_size: r.headDim * 2, num_attention_heads: 2, num_hidden_layers: 1, intermediate_size: 8, vocab_size: 8,
      max_position_embeddings: 131072, rope_theta: r.theta, rope_scaling: r.ropeScaling,
    });
    expect(maxRelErr(ropeInverseFrequencies(r.headDim, r.theta, config.ropeScaling), r.invFreq)).toBeLessThan(1e-15);
    const T = Math.max(...r.positions) + 1;
    expectRopeTables(ropeCosSin(T, r.headDim, r.theta, config.ropeScaling), r.headDim, r);
  });

  it('the scaling matters here: plain RoPE would be far from the reference', () => {
    for (const ex of llama3Fx.examples) expect(ex.plainRopeRelDiff).toBeGreaterThan(0.1);
    const rs = llama3Config.ropeScaling;
    expect(rs?.type).toBe('llama3');
    expect(Math.max(...llama3Fx.examples.map((e) => e.tokens.length))).toBeGreaterThan(rs?.type === 'llama3' ? rs.originalMaxPositionEmbeddings : Infinity);
  });

  it('logits, response losses and per-example LoRA gradients agree to 1e-4 relative (losses 1e-5)', () => {
    expectTfjsFixtureParity(model, llama3Fx.examples);
  });
});
