import { describe, expect, it } from 'vitest';
import { DdaError } from '@dda/core';
import { combineGradientTerms } from '@dda/attribution';

describe("a measurement's gradient from several per-example gradients", () => {
  it('sums in float64: exact where float32 partial sums would overflow, refused where the sum itself is beyond float32', () => {
    const big = 3e38;
    const a = Float32Array.of(big, 1e-38, -2);
    const b = Float32Array.of(big, 1e-38, 1);
    // (a + b) − b: a float32 running sum overflows at a + b; float64 gets a back exactly.
    const back = combineGradientTerms([{ weight: 1, row: a }, { weight: 1, row: b }, { weight: -1, row: b }], 3, 'q');
    expect(Array.from(back)).toEqual(Array.from(a));
    expect(Array.from(combineGradientTerms([{ weight: 1, row: a }, { weight: -1, row: b }], 3, 'q'))).toEqual([0, 0, -3]);
    const sum = () => combineGradientTerms([{ weight: 1, row: a }, { weight: 1, row: b }], 3, "query 'ερώτηση-1' at checkpoint-8");
    expect(sum).toThrow(DdaError);
    expect(sum).toThrow(/query 'ερώτηση-1' at checkpoint-8: the measurement's gradient .* has entry 0 = 6\.0\d*e\+38, not representable in float32/);
  });
});
