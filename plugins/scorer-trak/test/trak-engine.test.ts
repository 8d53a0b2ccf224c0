import { describe, expect, it } from 'vitest';
import '@dda/backend-onnxruntime'; // registers the onnxruntime dot-product kernel (dotKernels)
import { SeededRandom, scorers, type GradientMatrix } from '@dda/core';
import { registerTrakScorer, trakBlockSummaries, trakScores, trakScoresOnEngine } from '@dda/scorer-trak';
import { combinedInBlocks } from './blocks.js';

/** Seeded gradient rows [n × dim] with entries of several magnitudes. */
function grads(n: number, dim: number, seed: number, prefix: string): GradientMatrix {
  const rng = new SeededRandom(seed);
  return {
    ids: Array.from({ length: n }, (_, i) => `${prefix}${i}`), dim,
    rows: Array.from({ length: n }, () => Float32Array.from({ length: dim }, (_, p) => rng.normal() * (1 + (p % 5)))),
    parameterNames: ['a', 'b'], parameterSizes: [1, dim - 1], checkpoint: 'epoch-1',
  };
}

describe('trak with its projection on the dot-product kernel', () => {
  const train = grads(40, 3000, 1, 't');
  const test = grads(7, 3000, 2, 'q');

  it('agrees with the float64 loop (trakScores) to 1e-5 of the largest score, and engine js is the loop exactly', async () => {
    const exact = trakScores(train, test, { projectionDim: 64, seed: 4 });
    const onKernel = await trakScoresOnEngine(train, test, { projectionDim: 64, seed: 4 });
    expect(onKernel.provenance.computedOver).toMatch(/projected by float32 GEMM on onnxruntime-cpu \(one row per product, P rounded to float32\)/);
    const scale = exact.values.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
    let worst = 0;
    exact.values.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - (onKernel.values[i] as number)) / scale)));
    expect(worst).toBeGreaterThan(0);
    expect(worst).toBeLessThan(1e-5);
    const js = await trakScoresOnEngine(train, test, { projectionDim: 64, seed: 4, engine: 'js' });
    expect(Array.from(js.values)).toEqual(Array.from(exact.values));
  });

  it('the streamed scorer (blocks projected on the kernel) equals the stored scorer bit for bit, whatever the blocks', async () => {
    registerTrakScorer();
    const stored = await trakScoresOnEngine(train, test, { projectionDim: 64, seed: 4 });
    const bs = trakBlockSummaries({ projectionDim: 64, seed: 4 });
    for (const cuts of [[40], [13, 40], [1, 17, 33, 40]]) {
      const m = await combinedInBlocks(bs, train, test, cuts);
      expect(Array.from(m.values), `blocks ending at ${cuts.join(', ')}`).toEqual(Array.from(stored.values));
      expect(m.provenance.computedOver).toMatch(/by float32 GEMM on onnxruntime-cpu/);
    }
    await expect(scorers.create('trak', { engine: 7 })).rejects.toThrow(/option 'engine' must be a string/);
    const s = await scorers.create('trak', { projectionDim: 64, seed: 4, engine: 'no-such-kernel' });
    await expect(s.score({
      checkpoint: 'epoch-1', train: train.ids.map((id) => ({ id, prompt: 'p', response: 'r' })), test: test.ids.map((id) => ({ id, prompt: 'p', response: 'r' })),
      trainGradients: async () => train, testGradients: async () => test,
    })).rejects.toThrow(/trak: unknown dot-product engine 'no-such-kernel'/);
  });
});
