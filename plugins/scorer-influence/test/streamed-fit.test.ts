import { describe, expect, it } from 'vitest';
import { DdaError, SeededRandom, scoreByStreamedFit, scorers, type GradientMatrix } from '@dda/core';
import {
  dataInfScores, dataInfStreamedFit, gradDotPcScores, gradDotPcStreamedFit, ifEkfacScores, ifEkfacStreamedFit, ifExactScores, ifExactStreamedFit, trackStarScores, trackStarStreamedFit,
} from '@dda/scorer-influence';
import { grads, randomRows, relativeDifference, split } from './helpers.js';

const rng = new SeededRandom(29);
const sizes = [3, 1, 4, 2];
const train = grads(randomRows(rng, 9, 10), 'z', sizes);
const test = grads(randomRows(rng, 3, 10), 'e', sizes);
// A tensor (the last) with all-zero training gradients: DataInf skips it, on both paths.
const zeroLast = grads(train.rows.map((r) => [...r.slice(0, 8), 0, 0]), 'z', sizes);

describe('two-pass streamed fits equal the stored path', () => {
  for (const [name, tr] of [['random gradients', train], ['a tensor with all-zero training gradients', zeroLast]] as const) {
    it(`datainf, scale-aware damping (2 fit passes), ${name}`, async () => {
      const sf = dataInfStreamedFit();
      expect(sf.fitPasses).toBe(2);
      const stored = dataInfScores(tr, test);
      const streamed = await scoreByStreamedFit(sf, split(tr, [4, 2, 3]), test, 'epoch-1');
      expect(streamed.trainIds).toEqual(stored.trainIds);
      expect(relativeDifference(stored.values, streamed.values)).toBeLessThan(1e-12);
      expect(streamed.provenance.computedOver).toContain('streamed');
    });
  }

  it('datainf, absolute damping (1 fit pass), any split of the blocks', async () => {
    const sf = dataInfStreamedFit({ damping: 0.3 });
    expect(sf.fitPasses).toBe(1);
    const stored = dataInfScores(train, test, { damping: 0.3 });
    for (const blocks of [[9], [1, 1, 1, 1, 1, 1, 1, 1, 1], [5, 4]]) {
      expect(relativeDifference(stored.values, (await scoreByStreamedFit(sf, split(train, blocks), test, 'epoch-1')).values)).toBeLessThan(1e-12);
    }
  });

  it('if-exact (primal fit of GᵀG), default and absolute damping', async () => {
    for (const o of [{}, { damping: 0.05 }]) {
      const stored = ifExactScores(train, test, o);
      const streamed = await scoreByStreamedFit(ifExactStreamedFit(o), split(train, [2, 7]), test, 'epoch-1');
      expect(relativeDifference(stored.values, streamed.values)).toBeLessThan(1e-10);
    }
  });

  it('trackstar (R factored from Σ g gᵀ), several mixes', async () => {
    for (const o of [{}, { mix: 0 }, { mix: 1, damping: 0.2 }]) {
      const stored = await trackStarScores(train, test, { ...o, engine: 'js' });
      const streamed = await scoreByStreamedFit(trackStarStreamedFit(o), split(train, [3, 3, 3]), test, 'epoch-1');
      expect(relativeDifference(stored.values, streamed.values)).toBeLessThan(1e-10);
    }
  });

  it('if-ekfac (3 passes: factors, eigenvalue correction, scores) on matrices, a vector and an all-zero tensor, default and absolute damping', async () => {
    // Tensors [2 × 3], [4] (a vector: [4, 1]) and [3 × 2] whose training gradients are zero.
    const shapes = [[2, 3], [4], [3, 2]];
    const ekfacSizes = [6, 4, 6];
    const r = new SeededRandom(31);
    const withShapes = (g: GradientMatrix): GradientMatrix => ({ ...g, parameterShapes: shapes });
    const tr = withShapes(grads(randomRows(r, 11, 16).map((row) => [...row.slice(0, 10), 0, 0, 0, 0, 0, 0]), 'z', ekfacSizes));
    const te = withShapes(grads(randomRows(r, 3, 16), 'e', ekfacSizes));
    for (const o of [{}, { damping: 0.02 }]) {
      const sf = ifEkfacStreamedFit(o);
      expect(sf.fitPasses).toBe(2);
      const stored = ifEkfacScores(tr, te, o);
      const streamed = await scoreByStreamedFit(sf, split(tr, [5, 1, 5]), te, 'epoch-1');
      expect(relativeDifference(stored.values, streamed.values)).toBeLessThan(1e-10);
      // Skipped with the scale-aware damping (λ_l = 0), as the stored path does; an absolute damping keeps it.
      expect(streamed.provenance.computedOver.includes('1 with all-zero training gradients skipped')).toBe(o.damping === undefined);
    }
  });

  it('grad-dot-pc, training basis (V_k from Σ g gᵀ), k = 1 and 3; the query basis is row-separable instead', async () => {
    for (const k of [1, 3]) {
      const stored = await gradDotPcScores(train, test, { k, engine: 'js' });
      const streamed = await scoreByStreamedFit(gradDotPcStreamedFit({ k }), split(train, [4, 5]), test, 'epoch-1');
      expect(relativeDifference(stored.values, streamed.values)).toBeLessThan(1e-9);
    }
    await expect(scoreByStreamedFit(gradDotPcStreamedFit({ k: 9 }), [train], test, 'epoch-1')).rejects.toThrow(/k must be a positive integer below the 9 training gradients/);
    expect(() => gradDotPcStreamedFit({ basis: 'query' })).toThrow(/row-separable/);
    const q = await scorers.create('grad-dot-pc', { k: 1, basis: 'query' });
    expect([q.rowSeparable, q.streamedFit]).toEqual([true, undefined]);
  });

  it('the exact answer on a 1-row, 2-parameter case (datainf: n = 1, where its closed form is exact)', async () => {
    // H = g gᵀ + λI, g = [1, 2], v = [3, 0], λ = 1: H⁻¹ v = [2.5, −1], score = gᵀ H⁻¹ v = 0.5.
    const g = grads([[1, 2]], 'z');
    const v = grads([[3, 0]], 'e');
    for (const sf of [dataInfStreamedFit({ damping: 1 }), ifExactStreamedFit({ damping: 1 })]) {
      expect((await scoreByStreamedFit(sf, [g], v, 'epoch-1')).values[0]).toBeCloseTo(0.5, 14);
    }
  });
});

describe('two-pass streamed fits refuse what they cannot do', () => {
  it('if-exact and trackstar refuse a dim above maxSystemSize (the harness then stores the gradients), and if-exact the dual solver', () => {
    expect(ifExactStreamedFit({ maxSystemSize: 8 }).refuse?.(10, 9, 3)).toMatch(/dim = 10 is above maxSystemSize = 8.*n × n side/);
    expect(ifExactStreamedFit({ maxSystemSize: 8 }).refuse?.(8, 9, 3)).toBeUndefined();
    expect(ifExactStreamedFit({ solver: 'dual' }).refuse?.(8, 9, 3)).toMatch(/solver = 'dual'/);
    expect(trackStarStreamedFit({ maxSystemSize: 8 }).refuse?.(10, 9, 3)).toMatch(/dim = 10 is above maxSystemSize = 8/);
    expect(dataInfStreamedFit().refuse).toBeUndefined();
  });

  it('no training rows, all-zero gradients, or a fit of other test gradients: a DdaError', async () => {
    await expect(scoreByStreamedFit(ifExactStreamedFit(), [], test, 'epoch-1')).rejects.toThrow(/no training gradients/);
    const zeros = grads([[0, 0], [0, 0]], 'z');
    await expect(scoreByStreamedFit(ifExactStreamedFit(), [zeros], grads([[1, 0]], 'e'), 'epoch-1')).rejects.toThrow(/every training gradient is zero/);
    const sf = dataInfStreamedFit({ damping: 1 });
    const fit = await sf.finalize(await sf.fold(train, test, 0, null), 9, test, 0, null);
    await expect(sf.scoreBlock(fit, train, grads(randomRows(rng, 2, 10), 'e', sizes), 'epoch-1')).rejects.toThrow(DdaError);
  });

  it('the registered scorers declare their streamed fits (if-lissa\'s iterative, one pass per step)', async () => {
    for (const id of ['datainf', 'if-exact', 'trackstar', 'if-ekfac', 'grad-dot-pc', 'if-lissa']) expect((await scorers.create(id, {})).streamedFit).toBeDefined();
    expect((await scorers.create('if-lissa', {})).streamedFit).toMatchObject({ fitPasses: 200, iterative: true });
    for (const id of ['datainf', 'if-exact', 'trackstar', 'if-ekfac', 'grad-dot-pc']) expect((await scorers.create(id, {})).streamedFit?.iterative, id).toBeUndefined();
  });
});
