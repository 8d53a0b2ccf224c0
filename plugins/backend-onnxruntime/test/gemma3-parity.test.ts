import { beforeAll, describe, expect, it } from 'vitest';
import { OnnxDecoder, OnnxGenerator, startOnnxRuntime, type OnnxRuntimeBackend } from '@dda/backend-onnxruntime';
import { gemma3Config, gemma3Fx, gemma3Lora, gemma3LoraWeights, gemma3Weights } from '../../../packages/model/test/gemma3-case.js';
import { expectOnnxFixtureParity } from './fixture-parity.js';

// The onnxruntime engine on Gemma-3 (GeGLU, (1 + w) norms, four norms per layer, embedding scale,
// q/k norms, query_pre_attn_scalar, sliding and full layers with their own RoPE, linear RoPE scaling
// on the full layer): PyTorch float64 (packages/model/test/fixtures/make-gemma3-fixtures.py).
describe('ONNX decoder, Gemma-3 vs PyTorch reference', () => {
  let backend: OnnxRuntimeBackend;
  beforeAll(async () => {
    backend = await startOnnxRuntime(['onnxruntime-cpu']);
  });

  it('logits, response losses and per-example LoRA gradients to 1e-4 relative (losses 1e-5), one by one and batched', async () => {
    const onnx = new OnnxDecoder(backend, gemma3Config, gemma3Lora, gemma3Weights(), gemma3LoraWeights());
    await expectOnnxFixtureParity(onnx, gemma3Fx.examples);
    await onnx.release();
  });

  it('greedy decoding with the key/value cache (sliding and full layers) equals decoding without it, beyond the window', async () => {
    const gen = new OnnxGenerator(backend, gemma3Config, gemma3Config.maxSeqLen, gemma3Weights(), { config: gemma3Lora, weights: gemma3LoraWeights() }, { padMultiple: 4 });
    const prompt = gemma3Fx.examples[1]!.tokens.slice(0, 6);
    const o = { maxNewTokens: 14, eosId: -1 };
    const cached = await gen.generate(prompt, o);
    expect(cached).toHaveLength(14);
    expect(cached).toEqual(await gen.generateWithoutCache(prompt, o));
    await gen.release();
  });
});
