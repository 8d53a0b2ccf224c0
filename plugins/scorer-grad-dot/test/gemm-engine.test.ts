import { describe, expect, it } from 'vitest';
import '@dda/backend-onnxruntime'; // registers the onnxruntime dot-product kernel (dotKernels)
import { DdaError, SeededRandom, scorers, type GradientMatrix, type ScoringInput } from '@dda/core';
import { dotProducts, gradCosScores, gradCosScoresOnEngine, gradDotScores, gradDotScoresOnEngine } from '@dda/scorer-grad-dot';

function randomGrads(rng: SeededRandom, n: number, dim: number, prefix: string): GradientMatrix {
  return {
    ids: Array.from({ length: n }, (_, i) => `${prefix}${i}`),
    dim,
    rows: Array.from({ length: n }, () => Float32Array.from({ length: dim }, () => rng.normal())),
    parameterNames: ['lora.a', 'lora.b'],
    parameterSizes: [10, dim - 10],
    checkpoint: 'epoch-2',
  };
}

function input(train: GradientMatrix, test: GradientMatrix): ScoringInput {
  return {
    checkpoint: 'epoch-2',
    train: train.ids.map((id) => ({ id, prompt: 'p', response: 'r' })),
    test: test.ids.map((id) => ({ id, prompt: 'p', response: 'r' })),
    trainGradients: async () => train,
    testGradients: async () => test,
  };
}

const norm = (r: Float32Array): number => Math.sqrt(r.reduce((s, x) => s + x * x, 0));

describe('grad-dot on the onnxruntime GEMM', () => {
  const rng = new SeededRandom(3);
  const train = randomGrads(rng, 300, 5003, 'z');
  const test = randomGrads(rng, 9, 5003, 'e');

  it('agrees with the float64 JavaScript loop to float32 accuracy (grad-dot and grad-cos)', async () => {
    const js = gradDotScores(train, test);
    const onnx = await gradDotScoresOnEngine(train, test, { engine: 'onnxruntime', blockRows: 64 });
    expect(onnx.provenance.computedOver).toMatch(/float32 GEMM on onnxruntime-(cpu|cuda)/);
    expect(js.provenance.computedOver).toMatch(/float64 JavaScript loop/);
    for (let i = 0; i < 300; i++) {
      for (let j = 0; j < 9; j++) {
        const k = i * 9 + j;
        expect(Math.abs(onnx.values[k]! - js.values[k]!)).toBeLessThan(1e-5 * norm(train.rows[i]!) * norm(test.rows[j]!));
      }
    }
    const cosJs = gradCosScores(train, test);
    const cosOnnx = await gradCosScoresOnEngine(train, test, { engine: 'onnxruntime' });
    for (let k = 0; k < cosJs.values.length; k++) expect(Math.abs(cosOnnx.values[k]! - cosJs.values[k]!)).toBeLessThan(1e-5);
  });

  it('uses onnxruntime under auto and the loop under js', async () => {
    expect((await dotProducts(train, test)).engine).toMatch(/^onnxruntime-/);
    const js = await dotProducts(train, test, { engine: 'js' });
    expect(js.engine).toBe('js');
    expect(Array.from(js.values)).toEqual(Array.from(gradDotScores(train, test).values));
    await expect(dotProducts(train, test, { engine: 'fast' as never })).rejects.toThrow(/unknown dot-product engine 'fast'/);
  });

  it('the registered scorers take the engine option and use the GEMM by default', async () => {
    const dot = await scorers.create('grad-dot', {});
    const m = await dot.score(input(train, test));
    expect(m.provenance.computedOver).toMatch(/float32 GEMM on onnxruntime/);
    const jsDot = await scorers.create('grad-dot', { engine: 'js' });
    expect(Array.from((await jsDot.score(input(train, test))).values)).toEqual(Array.from(gradDotScores(train, test).values));
    await expect(scorers.create('grad-cos', { engine: 'gpu' })).rejects.toThrow(/option 'engine' must be one of auto, js, onnxruntime /);
  });

  it('grad-dot, grad-cos and tracin-cp agree with the float64 loop across the whole float32 range on every engine (no Infinity, no clamped or underflowed cosine)', async () => {
    const r = new SeededRandom(9);
    const dim = 40;
    // Rows near 3e38, near 1e-38 (products underflow in float32), mixed within a row, and ordinary.
    const shifts = [124, -126, 'mixed', 0];
    const grads = (n: number, prefix: string): GradientMatrix => {
      const g = randomGrads(r, n, dim, prefix);
      return {
        ...g,
        rows: g.rows.map((row, i) => row.map((x, d) => {
          const s = shifts[i % shifts.length];
          return x * 2 ** (s === 'mixed' ? (d % 2 === 0 ? 124 : -126) : (s as number));
        })),
      };
    };
    const tr = grads(8, 'z');
    const te = grads(4, 'e');
    const dotJs = gradDotScores(tr, te);
    const cosJs = gradCosScores(tr, te);
    for (const engine of ['onnxruntime', 'js', 'auto'] as const) {
      const dot = await gradDotScoresOnEngine(tr, te, { engine });
      const cos = await gradCosScoresOnEngine(tr, te, { engine });
      const tracin = await (await scorers.create('tracin-cp', { engine })).score(input(tr, te));
      for (let k = 0; k < dotJs.values.length; k++) {
        const [i, j] = [Math.floor(k / 4), k % 4];
        expect(Math.abs(dot.values[k]! - dotJs.values[k]!), `${engine} grad-dot ${k}`).toBeLessThanOrEqual(1e-5 * norm(tr.rows[i]!) * norm(te.rows[j]!));
        expect(tracin.values[k]).toBe(dot.values[k]);
        expect(Math.abs(cos.values[k]! - cosJs.values[k]!), `${engine} grad-cos ${k}`).toBeLessThan(1e-5);
      }
    }
    // The float64 reference itself: cosines strictly inside (-1, 1), grad-dot of the tiny rows not 0.
    expect(cosJs.values.every((c) => Math.abs(c) < 0.999)).toBe(true);
    expect(dotJs.values[1 * 4 + 1]).not.toBe(0);
  });

  it('checks shapes before choosing an engine', async () => {
    const short = randomGrads(new SeededRandom(1), 2, 40, 'e');
    await expect(gradDotScoresOnEngine(train, short)).rejects.toThrow(DdaError);
  });
});
