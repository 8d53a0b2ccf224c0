/**
 * The parity check shared by the PyTorch-fixture tests of whole tiny models on the tfjs engine
 * (Llama-3, Gemma-3): logits, response losses and per-example LoRA gradients of each example.
 */
import { expect } from 'vitest';
import { maxRelErr } from './peft-variant-case.js';

/** One example of such a fixture: token ids, loss mask and the reference's loss, logits [T·V] and LoRA gradients by PEFT name. */
export interface FixtureExample {
  tokens: number[];
  lossMask: number[];
  loss: number;
  logits: number[];
  loraGrads: Record<string, number[]>;
}

/** The examples as encoded inputs (tokens, loss mask). */
export const encodeFixture = (examples: readonly FixtureExample[]): { tokens: Int32Array; lossMask: Float32Array }[] =>
  examples.map((ex) => ({ tokens: Int32Array.from(ex.tokens), lossMask: Float32Array.from(ex.lossMask) }));

/** Expects every gradient of `row` (tensors `names` of `sizes`, in order) within 1e-4 relative of the reference's. */
export function expectGradientRow(row: Float32Array, names: readonly string[], sizes: readonly number[], want: Record<string, number[]>, what = ''): void {
  expect([...names].sort()).toEqual(Object.keys(want).sort());
  let off = 0;
  names.forEach((name, k) => {
    const size = sizes[k]!;
    expect(maxRelErr(row.subarray(off, off + size), want[name]!), `${name}${what}`).toBeLessThan(1e-4);
    off += size;
  });
}
