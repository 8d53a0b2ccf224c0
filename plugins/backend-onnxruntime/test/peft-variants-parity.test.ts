import { beforeAll, describe, expect, it } from 'vitest';
import { OnnxDecoder, startOnnxRuntime, type OnnxRuntimeBackend } from '@dda/backend-onnxruntime';
import { maxRelErr, readVariantAdapter, toTensorMap, variantFx, variantModelConfig } from '../../../packages/model/test/peft-variant-case.js';

// The onnxruntime engine on the PEFT-variant fixtures (rsLoRA, rank_pattern / alpha_pattern,
// regular-expression target_modules, exclude_modules, layers_to_transform): PyTorch float64 with
// PEFT's own selection and scaling (packages/model/test/fixtures/make-peft-variant-fixtures.py).
describe('ONNX decoder on PEFT adapter variants vs PyTorch reference', () => {
  let backend: OnnxRuntimeBackend;
  beforeAll(async () => {
    backend = await startOnnxRuntime(['onnxruntime-cpu']);
  });

  for (const [name, x] of Object.entries(variantFx.adapters)) {
    it(`${name}: logits, losses and per-example LoRA gradients to 1e-4 relative (losses 1e-5)`, async () => {
      const adapter = readVariantAdapter(x);
      const onnx = new OnnxDecoder(backend, variantModelConfig, adapter.config, toTensorMap(variantFx.weights), adapter.weights);
      const enc = x.examples.map((ex) => ({ tokens: Int32Array.from(ex.tokens), lossMask: Float32Array.from(ex.lossMask) }));
      for (const [i, ex] of x.examples.entries()) {
        const { loss, gradient, names, sizes } = await onnx.lossAndGradient(enc[i]!);
        expect([...names].sort()).toEqual(Object.keys(x.lora).sort());
        expect(Math.abs(loss - ex.loss) / ex.loss).toBeLessThan(1e-5);
        expect(maxRelErr(await onnx.logits(enc[i]!.tokens), ex.logits)).toBeLessThan(1e-4);
        let off = 0;
        names.forEach((p, k) => {
          expect(maxRelErr(gradient.subarray(off, off + sizes[k]!), ex.loraGrads[p]!), `${name} ${p}`).toBeLessThan(1e-4);
          off += sizes[k]!;
        });
      }
      const matrix = await onnx.perExampleGradients(['a', 'b'], enc, 'x');
      for (const [i, ex] of x.examples.entries()) {
        let off = 0;
        matrix.parameterNames.forEach((p, k) => {
          expect(maxRelErr(matrix.rows[i]!.subarray(off, off + matrix.parameterSizes[k]!), ex.loraGrads[p]!), `${name} ${p} (batched)`).toBeLessThan(1e-4);
          off += matrix.parameterSizes[k]!;
        });
      }
      await onnx.release();
    });
  }
});
