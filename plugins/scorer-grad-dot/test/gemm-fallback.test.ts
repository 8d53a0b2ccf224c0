import { describe, expect, it } from 'vitest';
import { dotKernels, type DotKernel, type GradientMatrix } from '@dda/core';
import { dotProducts, gradDotScores } from '@dda/scorer-grad-dot';

// A dot-product kernel that cannot start (as onnxruntime where onnxruntime-node is not installed),
// registered under the id the onnxruntime plugin uses; that plugin is not imported here.
dotKernels.register({
  id: 'onnxruntime',
  description: 'a kernel that cannot start (test)',
  priority: 35,
  create: () => Promise.reject(new Error('onnxruntime-node is not installed (test)')),
}, true);

const g = (rows: number[][], prefix: string): GradientMatrix => ({
  ids: rows.map((_, i) => `${prefix}${i}`),
  dim: 3,
  rows: rows.map((r) => Float32Array.from(r)),
  parameterNames: ['p'],
  parameterSizes: [3],
  checkpoint: 'base',
});

describe('grad-dot without a dot-product kernel that starts', () => {
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
    expect(lines).toEqual(['grad-dot: no dot-product kernel started (onnxruntime: onnxruntime-node is not installed (test)); falling back to the float64 JavaScript loop']);
  });

  it('fails with the reason when the kernel is required by id', async () => {
    await expect(dotProducts(train, test, { engine: 'onnxruntime' })).rejects.toThrow(/onnxruntime dot-product engine cannot run: onnxruntime-node is not installed \(test\)/);
  });

  it('refuses an engine id no kernel has, listing the ones there are', async () => {
    await expect(dotProducts(train, test, { engine: 'cuda-gemm' })).rejects.toThrow(/unknown dot-product engine 'cuda-gemm'/);
  });

  it('uses a registered kernel by priority, recording its backend and how it computed', async () => {
    const calls: number[] = [];
    const exact: DotKernel = {
      id: 'test-kernel', backend: 'test-backend', how: 'float64 test kernel',
      dot: (rows, dim, q, nTest) => {
        calls.push(rows.length);
        const out = new Float64Array(rows.length * nTest);
        rows.forEach((r, i) => { for (let j = 0; j < nTest; j++) for (let k = 0; k < dim; k++) out[i * nTest + j] += (r[k] as number) * (q[j * dim + k] as number); });
        return Promise.resolve(out);
      },
    };
    // The registry is this file's (vitest isolates test files); the kernels registered here stay for the tests after.
    dotKernels.register({ id: 'test-kernel', description: 'exact products (test)', priority: 50, create: () => exact });
    const d = await dotProducts(train, test);
    expect(d).toMatchObject({ engine: 'test-backend', how: 'float64 test kernel' });
    expect(Array.from(d.values)).toEqual([1, 0, 0, 0, 2, -1.5]);
    expect(calls).toEqual([3]);
  });

  it('leaves the products to the float64 loop when a kernel fails while computing under auto, and refuses by id', async () => {
    const failing: DotKernel = { id: 'failing-kernel', backend: 'failing-backend', how: 'fails (test)', dot: () => Promise.reject(new Error('device lost (test)')) };
    dotKernels.register({ id: 'failing-kernel', description: 'fails while computing (test)', priority: 60, create: () => failing });
    const d = await dotProducts(train, test, { log: () => {} });
    expect(d.engine).toBe('js');
    expect(Array.from(d.values)).toEqual([1, 0, 0, 0, 2, -1.5]);
    await expect(dotProducts(train, test, { engine: 'failing-kernel' })).rejects.toThrow(/the failing-kernel dot-product engine cannot run: device lost \(test\)/);
  });
});
