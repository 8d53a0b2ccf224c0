import { describe, expect, it } from 'vitest';
import '@dda/backend-onnxruntime'; // registers the onnxruntime dot-product kernel (dotKernels), with its float64 GEMM
import { SeededRandom, kernelProducts64, scoreByStreamedFit, type GradientMatrix } from '@dda/core';
import {
  crossProducts, dataInfScores, dataInfStreamedFit, gramMatrix, gramMatrixOn, ifEkfacScores, ifEkfacStreamedFit, ifExactScores, ifExactScoresOnEngine, ifLissaScores, ifLissaScoresOnEngine,
} from '@dda/scorer-influence';
import { grads, randomRows, relativeDifference, split } from './helpers.js';

/** Random float32 rows with entries of very different sizes (so the order of float64 sums matters in the last bits). */
function rows(rng: SeededRandom, n: number, dim: number): number[][] {
  return Array.from({ length: n }, () => Array.from({ length: dim }, () => Math.fround(rng.normal() * 2 ** Math.round(rng.normal() * 6))));
}

describe('the influence scorers\' float64 products on the engine (onnxruntime\'s double Gemm) equal the float64 loops', () => {
  const rng = new SeededRandom(41);
  const g = rows(rng, 23, 301).map((r) => Float32Array.from(r));
  const h = rows(rng, 5, 301).map((r) => Float32Array.from(r));

  it('products, chunked over the coordinates or not, agree with the loop to float64 rounding of the sums', async () => {
    const ref = crossProducts(g, h, 301);
    // |a·b − loop| ≤ a few ulps of Σ|a_d b_d| per entry; bounded here by 1e-13 of the largest |product|.
    for (const chunkBytes of [undefined, 8 * 28 * 7]) {
      const k = await kernelProducts64(g, h, 301, { engine: 'onnxruntime', ...(chunkBytes !== undefined ? { chunkBytes } : {}) });
      expect(k?.how).toBe('float64 GEMM on onnxruntime-cpu');
      expect(relativeDifference(ref, k!.values)).toBeLessThan(1e-13);
    }
    // js: no kernel, the caller's loop (null); a kernel id that does not exist: refused.
    expect(await kernelProducts64(g, h, 301, { engine: 'js' })).toBeNull();
    await expect(kernelProducts64(g, h, 301, { engine: 'nope' })).rejects.toThrow(/unknown dot-product engine 'nope'/);
  });

  it('the Gram matrix on the engine is exactly symmetric and equals the loop\'s', async () => {
    const k = await gramMatrixOn(g, 301, { engine: 'onnxruntime' }, 'test');
    const n = g.length;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) expect(k.values[i * n + j]).toBe(k.values[j * n + i]);
    expect(relativeDifference(gramMatrix(g, 301), k.values)).toBeLessThan(1e-13);
    const js = await gramMatrixOn(g, 301, { engine: 'js' }, 'test');
    expect([...js.values]).toEqual([...gramMatrix(g, 301)]);
    expect(js.how).toBe('float64 JavaScript loop');
  });

  const train = grads(randomRows(rng, 30, 64), 'z');
  const test = grads(randomRows(rng, 4, 64), 'e');

  it('if-exact (dual: Gram, Cholesky, cross products): the engine within 1e-10 of the loop; engine js is the loop bit for bit', async () => {
    for (const o of [{}, { damping: 1e-3 }]) {
      const ref = ifExactScores(train, test, o);
      const onnx = await ifExactScoresOnEngine(train, test, { ...o, engine: 'onnxruntime' });
      expect(relativeDifference(ref.values, onnx.values)).toBeLessThan(1e-10);
      expect(onnx.provenance.computedOver).toContain('30×30 Woodbury system, its products a float64 GEMM on onnxruntime-cpu');
      expect([...(await ifExactScoresOnEngine(train, test, { ...o, engine: 'js' })).values]).toEqual([...ref.values]);
    }
    // dim < n: the primal solver, which stays the loop
    const wide = grads(randomRows(rng, 12, 5), 'z');
    const primal = await ifExactScoresOnEngine(wide, grads(randomRows(rng, 2, 5), 'e'), { engine: 'onnxruntime' });
    expect(primal.provenance.computedOver).toContain('5×5 system');
  });

  it('if-lissa (dual recursion, every test output at once): full batch, minibatches with repeats, any test count; within 1e-9 of the loop', async () => {
    for (const o of [{}, { depth: 50, batch: 7, repeats: 3, seed: 5 }, { depth: 30, damping: 0.01, scale: 400 }]) {
      const ref = ifLissaScores(train, test, o);
      const onnx = await ifLissaScoresOnEngine(train, test, { ...o, engine: 'onnxruntime' });
      expect(relativeDifference(ref.values, onnx.values)).toBeLessThan(1e-9);
      expect(onnx.provenance.computedOver).toContain('every test output at once, products a float64 GEMM on onnxruntime-cpu');
      // one test output alone gets the same scores as in the batch of four (the same minibatches)
      const one = await ifLissaScoresOnEngine(train, grads([[...test.rows[2]!]], 'e'), { ...o, engine: 'onnxruntime' });
      for (let i = 0; i < 30; i++) expect(Math.abs(one.values[i]! - onnx.values[i * 4 + 2]!)).toBeLessThanOrEqual(1e-9 * Math.max(...[...onnx.values].map(Math.abs)));
      expect([...(await ifLissaScoresOnEngine(train, test, { ...o, engine: 'js' })).values]).toEqual([...ref.values]);
    }
  });

  it('if-lissa on the engine refuses a diverging recursion as the loop does', async () => {
    await expect(ifLissaScoresOnEngine(train, test, { scale: 1e-3, depth: 200, engine: 'onnxruntime' })).rejects.toThrow(/the iteration diverged at step \d+ of 200/);
    expect(() => ifLissaScores(train, test, { scale: 1e-3, depth: 200 })).toThrow(/the iteration diverged/);
  });

  it('if-ekfac streamed (factors, eigenvalue correction and scores as products on the engine) within 1e-9 of the stored float64 loop', async () => {
    const shapes = [[3, 5], [4], [2, 6]];
    const sizes = [15, 4, 12];
    const r = new SeededRandom(43);
    const withShapes = (m: GradientMatrix): GradientMatrix => ({ ...m, parameterShapes: shapes });
    const tr = withShapes(grads(randomRows(r, 17, 31), 'z', sizes));
    const te = withShapes(grads(randomRows(r, 3, 31), 'e', sizes));
    for (const o of [{}, { damping: 0.02 }]) {
      const stored = ifEkfacScores(tr, te, o);
      for (const engine of ['onnxruntime', 'js']) {
        const streamed = await scoreByStreamedFit(ifEkfacStreamedFit({ ...o, engine }), split(tr, [6, 4, 7]), te, 'epoch-1');
        expect(relativeDifference(stored.values, streamed.values), engine).toBeLessThan(1e-9);
        expect(streamed.provenance.computedOver).toContain(engine === 'js' ? 'their products a float64 JavaScript loop' : 'their products a float64 GEMM on onnxruntime-cpu');
      }
    }
  });

  it('datainf streamed (its inverse pass and scores as products on the engine) within 1e-10 of the stored float64 loop, an all-zero tensor skipped', async () => {
    const sizes = [9, 3, 20];
    const r = new SeededRandom(47);
    const tr = grads(randomRows(r, 14, 32).map((row) => [...row.slice(0, 12), ...new Array<number>(20).fill(0)]), 'z', sizes);
    const te = grads(randomRows(r, 3, 32), 'e', sizes);
    for (const o of [{}, { damping: 0.4 }]) {
      const stored = dataInfScores(tr, te, o);
      for (const engine of ['onnxruntime', 'js']) {
        const streamed = await scoreByStreamedFit(dataInfStreamedFit({ ...o, engine }), split(tr, [5, 9]), te, 'epoch-1');
        expect(relativeDifference(stored.values, streamed.values), engine).toBeLessThan(1e-10);
        expect(streamed.provenance.computedOver).toContain(engine === 'js' ? 'the products a float64 JavaScript loop' : 'the products a float64 GEMM on onnxruntime-cpu');
      }
    }
  });
});
