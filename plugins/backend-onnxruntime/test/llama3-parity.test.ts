import { beforeAll, describe, expect, it } from 'vitest';
import { OnnxDecoder, startOnnxRuntime, type OnnxRuntimeBackend } from '@dda/backend-onnxruntime';
import { llama3Config, llama3Fx, llama3Lora, llama3LoraWeights, llama3Weights } from '../../../packages/model/test/llama3-case.js';
import { maxRelErr } from '../../../packages/model/test/peft-variant-case.js';

// The onnxruntime engine on Llama-3.x's llama3 RoPE scaling with tied embeddings, at positions beyond
// original_max_position_embeddings: PyTorch float64 (packages/model/test/fixtures/make-llama3-fixtures.py).
describe('ONNX decoder, llama3 RoPE scaling and tied embeddings vs PyTorch reference', () => {
  let backend: OnnxRuntimeBackend;
  beforeAll(async () => {
    backend = await startOnnxRuntime(['onnxruntime-cpu']);
  });

  it('logits, response losses and per-example LoRA gradients to 1e-4 relative (losses 1e-5)', async () => {
    const onnx = new OnnxDecoder(backend, llama3Config, llama3Lora, llama3Weights(), llama3LoraWeights());
    const enc = llama3Fx.examples.map((ex) => ({ tokens: Int32Array.from(ex.tokens), lossMask: Float32Array.from(ex.lossMask) }));
    for (const [i, ex] of llama3Fx.examples.entries()) {
      const { loss, gradient, names, sizes } = await onnx.lossAndGradient(enc[i]!);
      expect([...names].sort()).toEqual(Object.keys(llama3Fx.lora).sort());
      expect(Math.abs(loss - ex.loss) / ex.loss).toBeLessThan(1e-5);
      expect(maxRelErr(await onnx.logits(enc[i]!.tokens), ex.logits)).toBeLessThan(1e-4);
      let off = 0;
      names.forEach((p, k) => {
        expect(maxRelErr(gradient.subarray(off, off + sizes[k]!), ex.loraGrads[p]!), p).toBeLessThan(1e-4);
        off += sizes[k]!;
      });
    }
    // Batched: the two examples padded to one length in one run.
    const matrix = await onnx.perExampleGradients(['a', 'b'], enc, 'x');
    for (const [i, ex] of llama3Fx.examples.entries()) {
      let off = 0;
      matrix.parameterNames.forEach((p, k) => {
        expect(maxRelErr(matrix.rows[i]!.subarray(off, off + matrix.parameterSizes[k]!), ex.loraGrads[p]!), `${p} (batched)`).toBeLessThan(1e-4);
        off += matrix.parameterSizes[k]!;
      });
    }
    await onnx.release();
  });
});
