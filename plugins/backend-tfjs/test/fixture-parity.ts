import { expect } from 'vitest';
import type { DecoderModel } from '@dda/backend-tfjs';
import { encodeFixture, expectGradientRow, type FixtureExample } from '../../../packages/model/test/fixture-parity.js';
import { maxRelErr } from '../../../packages/model/test/peft-variant-case.js';

/** Logits within 1e-4 relative (of the largest), losses 1e-5, per-example LoRA gradients 1e-4 on the tfjs engine. */
export function expectTfjsFixtureParity(model: DecoderModel, examples: readonly FixtureExample[]): void {
  const enc = encodeFixture(examples);
  for (const ex of examples) expect(maxRelErr(model.logits(ex.tokens), ex.logits)).toBeLessThan(1e-4);
  const losses = model.lossesEncoded(enc);
  const grads = model.perExampleGradientsEncoded(enc.map((_, i) => `ex${i}`), enc, 'lora', 'fixture');
  examples.forEach((ex, i) => {
    expect(Math.abs(losses[i]! - ex.loss) / ex.loss).toBeLessThan(1e-5);
    expectGradientRow(grads.rows[i]!, grads.parameterNames, grads.parameterSizes, ex.loraGrads);
  });
}
