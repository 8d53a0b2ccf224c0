/**
 * The onnxruntime side of the PyTorch-fixture tests of whole tiny models (Llama-3, Gemma-3):
 * logits, losses and per-example LoRA gradients one example at a time, then all examples in one batched run.
 */
import { expect } from 'vitest';
import type { OnnxDecoder } from '@dda/backend-onnxruntime';
import { encodeFixture, expectGradientRow, type FixtureExample } from '../../../packages/model/test/fixture-parity.js';
import { maxRelErr } from '../../../packages/model/test/peft-variant-case.js';

/** Losses within 1e-5 relative, logits and per-example LoRA gradients 1e-4, one by one and batched. */
export async function expectOnnxFixtureParity(onnx: OnnxDecoder, examples: readonly FixtureExample[]): Promise<void> {
  const enc = encodeFixture(examples);
  for (const [i, ex] of examples.entries()) {
    const { loss, gradient, names, sizes } = await onnx.lossAndGradient(enc[i]!);
    expect(Math.abs(loss - ex.loss) / ex.loss).toBeLessThan(1e-5);
    expect(maxRelErr(await onnx.logits(enc[i]!.tokens), ex.logits)).toBeLessThan(1e-4);
    expectGradientRow(gradient, names, sizes, ex.loraGrads);
  }
  // Batched: the examples padded to one length in one run.
  const matrix = await onnx.perExampleGradients(examples.map((_, i) => `e${i}`), enc, 'x');
  examples.forEach((ex, i) => expectGradientRow(matrix.rows[i]!, matrix.parameterNames, matrix.parameterSizes, ex.loraGrads, ' (batched)'));
}
