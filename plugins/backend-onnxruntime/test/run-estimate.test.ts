import { beforeAll, describe, expect, it } from 'vitest';
import { loraWeightSpecs, type DecoderConfig } from '@dda/model';
import {
  OnnxDecoder, activationBytesPerExample, defaultMaxRunBytes, gradientRunBytes, largestDecodeBytes, startOnnxRuntime, type OnnxRuntimeBackend, type WeightMap,
} from '@dda/backend-onnxruntime';
import { decodeParts } from '../src/autodiff.js';
import type { BaseTensor } from '../src/narrow-weights.js';
import { LORA } from './fixtures.js';

// The memory estimate of a run of per-example LoRA gradients (issue 27): what decides how many
// examples a run takes. Exact arithmetic on a small config, and the run plan it gives.
const config: DecoderConfig = {
  vocabSize: 100, hiddenSize: 16, numLayers: 6, numHeads: 4, numKvHeads: 2, intermediateSize: 24, rmsNormEps: 1e-5, maxSeqLen: 64,
  ropeTheta: 1e4, tieWordEmbeddings: true, attentionBias: false, slidingWindow: null,
};
// Rank-4 LoRA on every linear map: per layer q 4·(16 + 16), k and v 4·(16 + 8), o 4·(16 + 16), gate, up and down 4·(16 + 24).
const LORA_ENTRIES = 6 * (128 + 96 + 96 + 128 + 3 * 160);

describe('gradientRunBytes', () => {
  let backend: OnnxRuntimeBackend;
  beforeAll(async () => {
    backend = await startOnnxRuntime(['onnxruntime-cpu']);
  });

  it('counts per example the activations and four copies of the LoRA parameters, per run the largest decoded matrix', () => {
    const T = 32;
    // Per layer 2·4·32² + 32·(14·16 + 5·24) = 19,200 values; the loss head 3·16·100 = 4,800.
    expect(activationBytesPerExample(config, T, 16)).toBe(4 * (6 * 19_200 + 4_800)); // 480,000
    // Recomputed: three layers' worth and the six layer inputs, 3·19,200 + 6·32·16 = 60,672.
    expect(activationBytesPerExample(config, T, 16, true)).toBe(4 * (60_672 + 4_800)); // 261,888
    expect(LORA_ENTRIES).toBe(5_568);
    // Copies, their gradients, grad_rows, the caller's row: 16 bytes a LoRA entry, 89,088 an example.
    expect(gradientRunBytes(config, T, 16, 1, { loraEntries: LORA_ENTRIES })).toBe(480_000 + 89_088);
    expect(gradientRunBytes(config, T, 16, 1, { recompute: true, loraEntries: LORA_ENTRIES })).toBe(261_888 + 89_088);
    // The tied embedding [100, 16] decoded whole in the loss head (scaled f16: 12,800 bytes), once per run.
    expect(gradientRunBytes(config, T, 16, 2, { recompute: true, loraEntries: LORA_ENTRIES, decodeBytes: 12_800 })).toBe(2 * (261_888 + 89_088) + 12_800); // 714,752
    expect(gradientRunBytes(config, T, 16, 3, { recompute: true, loraEntries: LORA_ENTRIES, decodeBytes: 12_800 })).toBe(3 * 350_976 + 12_800);
  });

  it('largestDecodeBytes: the narrow lm_head or tied embedding (8 bytes an entry, an unscaled f16 one 4), not an untied embedding (gathered by rows), nothing for float32', () => {
    const narrow = (shape: number[], format: 'f16' | 'bf16' = 'f16', scale = 2 ** -8): BaseTensor => ({ format, shape, bits: new Uint16Array(shape.reduce((a, b) => a * b, 1)), ...(format === 'f16' ? { scale } : {}) });
    const float = (shape: number[]): BaseTensor => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
    const base = (embed: BaseTensor, head?: BaseTensor): Map<string, BaseTensor> => new Map([
      ['model.embed_tokens.weight', embed], ...(head ? [['lm_head.weight', head] as [string, BaseTensor]] : []),
      ['model.layers.0.mlp.down_proj.weight', narrow([16, 24])], ['model.norm.weight', narrow([16])],
    ]);
    expect(largestDecodeBytes(config, base(narrow([100, 16])))).toBe(12_800); // the Cast's output and its product with the scale
    expect(largestDecodeBytes(config, base(narrow([100, 16], 'bf16')))).toBe(12_800); // int32 indices and gathered values
    expect(largestDecodeBytes(config, base(narrow([100, 16], 'f16', 1)))).toBe(6_400); // an F16 checkpoint's own tensor: the Cast alone
    const untied = { ...config, tieWordEmbeddings: false };
    expect(largestDecodeBytes(untied, base(narrow([100, 16]), narrow([100, 16])))).toBe(12_800);
    expect(largestDecodeBytes(untied, base(narrow([100, 16]), float([100, 16])))).toBe(8 * 384); // the layers' largest
    expect(largestDecodeBytes(config, new Map([['model.embed_tokens.weight', float([100, 16])]]))).toBe(0);
    // Qwen2-0.5B's tied head [151,936, 896] (0.54 GB as float32) is decoded in 9 parts: forward by
    // rows (16,882 a part), backward by columns (100 a part: 15,193,600 entries, the larger), each
    // part its Cast and scaled copy (8 bytes an entry) and its slice of the bits (2).
    expect(decodeParts(151_936, 896)).toHaveLength(9);
    expect(decodeParts(151_936, 896)[0]).toEqual([0, 16_882]);
    expect(decodeParts(896, 151_936).map(([a, b]) => b - a)).toEqual([100, 100, 100, 100, 100, 100, 100, 100, 96]);
    expect(decodeParts(100, 16)).toEqual([[0, 100]]);
    expect(largestDecodeBytes(config, base(narrow([151_936, 896])))).toBe(100 * 151_936 * 10); // 0.15 GB, was 1.09 GB decoded whole
    expect(largestDecodeBytes(config, base(narrow([151_936, 896], 'f16', 1)))).toBe(100 * 151_936 * 6);
  });

  it('defaultMaxRunBytes: 2 GiB, or the base weights\' bytes as held less 256 MiB where smaller, at least 256 MiB', () => {
    expect(defaultMaxRunBytes(3e9)).toBe(2 ** 31);
    expect(defaultMaxRunBytes(2.2e9)).toBe(2.2e9 - 2 ** 28); // TinyLlama-1.1B's BF16 file held as stored
    expect(defaultMaxRunBytes(0.988e9)).toBe(0.988e9 - 2 ** 28); // Qwen2-0.5B's
    expect(defaultMaxRunBytes(3e6)).toBe(2 ** 28); // a tiny test model
  });

  it('the run plan fits gradientRunBytes into maxRunBytes (one example more than fits starts a new run)', () => {
    // Base tensors of the config, narrow (f16 bits, any values: nothing runs here); LoRA tensors float32.
    const loraWeights: WeightMap = new Map(loraWeightSpecs(config, LORA).map(({ name, shape }) => [name, { shape, data: new Float32Array(shape[0] * shape[1]) }]));
    const base = new Map<string, BaseTensor>();
    const add = (name: string, shape: number[]): void => {
      base.set(name, { format: 'f16', shape, bits: new Uint16Array(shape.reduce((a, b) => a * b, 1)), scale: 2 ** -8 });
    };
    add('model.embed_tokens.weight', [100, 16]);
    add('model.norm.weight', [16]);
    for (let i = 0; i < config.numLayers; i++) {
      const p = `model.layers.${i}`;
      add(`${p}.input_layernorm.weight`, [16]);
      add(`${p}.post_attention_layernorm.weight`, [16]);
      for (const [m, shape] of [['self_attn.q_proj', [16, 16]], ['self_attn.k_proj', [8, 16]], ['self_attn.v_proj', [8, 16]], ['self_attn.o_proj', [16, 16]], ['mlp.gate_proj', [24, 16]], ['mlp.up_proj', [24, 16]], ['mlp.down_proj', [16, 24]]] as const) {
        add(`${p}.${m}.weight`, [...shape]);
      }
    }
    const T = 32;
    const examples = Array.from({ length: 5 }, () => ({ tokens: new Int32Array(T), lossMask: new Float32Array(T - 1).fill(1) }));
    const two = gradientRunBytes(config, T, T / 2, 2, { recompute: false, loraEntries: LORA_ENTRIES, decodeBytes: 12_800 });
    expect(two).toBe(2 * (480_000 + 89_088) + 12_800);
    const plan = (maxRunBytes: number): number[] => {
      const d = new OnnxDecoder(backend, config, LORA, base, loraWeights, { maxRunBytes, exampleBatch: 8, recompute: false });
      expect(d.parameterLayout().sizes.reduce((a, b) => a + b, 0)).toBe(LORA_ENTRIES);
      expect(d.runBytes(T, T / 2, 2)).toBe(two);
      return d.runPlan(examples).map((r) => r.length);
    };
    expect(plan(two)).toEqual([2, 2, 1]);
    expect(plan(two - 1)).toEqual([1, 1, 1, 1, 1]);
    expect(plan(1)).toEqual([1, 1, 1, 1, 1]); // at least one example per run
  });
});
