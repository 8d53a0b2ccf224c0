import { beforeAll, describe, it } from 'vitest';
import { OnnxDecoder, startOnnxRuntime, type OnnxRuntimeBackend } from '@dda/backend-onnxruntime';
import { llama3Config, llama3Fx, llama3Lora, llama3LoraWeights, llama3Weights } from '../../../packages/model/test/llama3-case.js';
import { expectOnnxFixtureParity } from './fixture-parity.js';

// The onnxruntime engine on Llama-3.x's llama3 RoPE scaling with tied embeddings, at positions beyond
// original_max_position_embeddings: PyTorch float64 (packages/model/test/fixtures/make-llama3-fixtures.py).
describe('ONNX decoder, llama3 RoPE scaling and tied embeddings vs PyTorch reference', () => {
  let backend: OnnxRuntimeBackend;
  beforeAll(async () => {
    backend = await startOnnxRuntime(['onnxruntime-cpu']);
  });

  it('logits, response losses and per-example LoRA gradients to 1e-4 relative (losses 1e-5), one by one and batched', async () => {
    const onnx = new OnnxDecoder(backend, llama3Config, llama3Lora, llama3Weights(), llama3LoraWeights());
    await expectOnnxFixtureParity(onnx, llama3Fx.examples);
    await onnx.release();
  });
});
