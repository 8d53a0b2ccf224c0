import { describe, expect, it, vi } from 'vitest';
import type { GradientMatrix } from '@dda/core';

// onnxruntime cannot start: the backend plugin's start function rejects with a reason.
vi.mock('@dda/backend-onnxruntime', async (importOriginal) => ({
  ...(await importOriginal<typeof import('@dda/backend-onnxruntime')>()),
  startOnnxRuntime: () => Promise.reject(new Error('onnxruntime-node is not installed (test)')),
}));

const { dotProducts, gradDotScores } = await import('@dda/scorer-grad-dot');

const g = (rows: number[][], prefix: string): GradientMatrix => ({
  ids: rows.map((_, i) => `${prefix}${i}`),
  dim: 3,
  rows: rows.map((r) => Float32Array.from(r)),
  parameterNames: ['p'],
  parameterSizes: [3],
  checkpoint: 'base',
});

describe('grad-dot without onnxruntime', () => {
  const train = g([[1, 2, 0], [0, 0, 0], [-1, 1, 3]], 'z');
  const test = g([[1, 0, 1], [2, -1, 0.5]], 'e');

  it('falls back to the float64 loop under auto, logging the reason once', async () => {
    const lines: string[] = [];
    const log = (l: string): void => void lines.push(l);
    const a = await dotProducts(train, test, { log });
    const b = await dotProducts(train, test, { log });
    expect(a.engine).toBe('js');
    expect(Array.from(a.values)).toEqual([1, 0, 0, 0, 2, -1.5]);
    expect(Array.from(b.values)).toEqual(Array.from(gradDotScores(train, test).values));
    expect(lines).toEqual(['grad-dot: onnxruntime GEMM unavailable (onnxruntime-node is not installed (test)); falling back to the float64 JavaScript loop']);
  });

  it('fails with the reason when onnxruntime is required', async () => {
    await expect(dotProducts(train, test, { engine: 'onnxruntime' })).rejects.toThrow(/onnxruntime dot-product engine cannot run: onnxruntime-node is not installed \(test\)/);
  });
});
