import { describe, expect, it } from 'vitest';
import { DdaError, SeededRandom, scorers, type GradientMatrix, type ScoringInput } from '@dda/core';
import { ifExactScores } from '@dda/scorer-influence';
import { projectRows, projectionMatrix, registerTrakScorer, trakBlockSummaries, trakScores } from '@dda/scorer-trak';
import { combinedInBlocks } from './blocks.js';

function grads(rows: number[][], prefix: string, emptyDim = 9): GradientMatrix {
  const dim = rows[0]?.length ?? emptyDim;
  return {
    ids: rows.map((_, i) => `${prefix}${i}`),
    dim,
    rows: rows.map((r) => Float32Array.from(r)),
    parameterNames: ['lora.a', 'lora.b'],
    parameterSizes: [1, dim - 1],
    checkpoint: 'epoch-1',
  };
}

function randomRows(rng: SeededRandom, n: number, dim: number): number[][] {
  return Array.from({ length: n }, () => Array.from({ length: dim }, () => Math.round(rng.normal() * 64) / 64));
}

function input(train: GradientMatrix, test: GradientMatrix): ScoringInput {
  return {
    checkpoint: 'epoch-1',
    train: train.ids.map((id) => ({ id, prompt: 'p', response: 'r' })),
    test: test.ids.map((id) => ({ id, prompt: 'p', response: 'r' })),
    trainGradients: async () => train,
    testGradients: async () => test,
  };
}

/** Naive inverse by Gauss–Jordan (independent reference). */
function inverse(a: number[][]): number[][] {
  const n = a.length;
  const m = a.map((r, i) => [...r, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[p]![c]!)) p = r;
    [m[c], m[p]] = [m[p]!, m[c]!];
    const d = m[c]![c]!;
    for (let k = 0; k < 2 * n; k++) m[c]![k]! /= d;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r]![c]!;
      for (let k = 0; k < 2 * n; k++) m[r]![k]! -= f * m[c]![k]!;
    }
  }
  return m.map((r) => r.slice(n));
}

/** score[i][j] = t_jᵀ (ΦᵀΦ + λI)⁻¹ φ_i with explicit matrices. */
function naiveKernel(phi: number[][], phiTest: number[][], lambda: number): number[] {
  const k = phi[0]!.length;
  const a = Array.from({ length: k }, (_, p) => Array.from({ length: k }, (_, q) => phi.reduce((s, r) => s + r[p]! * r[q]!, 0) + (p === q ? lambda : 0)));
  const inv = inverse(a);
  const out: number[] = [];
  for (const f of phi) {
    for (const t of phiTest) {
      let s = 0;
      for (let p = 0; p < k; p++) for (let q = 0; q < k; q++) s += t[p]! * inv[p]![q]! * f[q]!;
      out.push(s);
    }
  }
  return out;
}

const rng = new SeededRandom(17);
const tr = randomRows(rng, 6, 9);
const te = randomRows(rng, 3, 9);
const train = grads(tr, 'z');
const test = grads(te, 'e');

describe('trak', () => {
  it('with projectionDim 0 equals the exact kernel computed naively', () => {
    const m = trakScores(train, test, { projectionDim: 0, damping: 0.7 });
    naiveKernel(tr, te, 0.7).forEach((w, k) => expect(m.values[k]).toBeCloseTo(w, 10));
    // Default damping λ = 0.1 × trace(GᵀG) / dim.
    const lambda = (0.1 * tr.flat().reduce((s, x) => s + x * x, 0)) / 9;
    const d = trakScores(train, test, { projectionDim: 0 });
    naiveKernel(tr, te, lambda).forEach((w, k) => expect(d.values[k]).toBeCloseTo(w, 10));
    // ... which is if-exact / n for the same relative damping.
    const exact = ifExactScores(train, test).values;
    exact.forEach((x, k) => expect(d.values[k]).toBeCloseTo(x / 6, 10));
    expect(d.provenance).toMatchObject({ method: 'trak', checkpoints: ['epoch-1'], transforms: [] });
    expect(d.provenance.computedOver).toMatch(/no projection/);
  });

  it('projects with P drawn row by row from SeededRandom(seed), entries N(0, 1/k)', () => {
    const k = 4;
    const r = new SeededRandom(3);
    const p = Array.from({ length: 9 }, () => Array.from({ length: k }, () => r.normal() / 2));
    const [phi, phiTest] = projectRows([train.rows, test.rows], 9, k, 3) as [Float64Array[], Float64Array[]];
    const proj = (g: number[]): number[] => Array.from({ length: k }, (_, c) => g.reduce((s, x, q) => s + x * p[q]![c]!, 0));
    tr.forEach((g, i) => proj(g).forEach((x, c) => expect(phi[i]![c]).toBeCloseTo(x, 12)));
    te.forEach((g, j) => proj(g).forEach((x, c) => expect(phiTest[j]![c]).toBeCloseTo(x, 12)));
    // The scores are the exact kernel on those projections.
    const m = trakScores(train, test, { projectionDim: k, seed: 3, damping: 0.4 });
    naiveKernel(tr.map(proj), te.map(proj), 0.4).forEach((w, q) => expect(m.values[q]).toBeCloseTo(w, 10));
    // More rows than one chunk of P gives the same stream.
    const long = randomRows(rng, 2, 150).map((x) => Float32Array.from(x));
    const [a] = projectRows([long], 150, 3, 8) as [Float64Array[]];
    const r2 = new SeededRandom(8);
    const p2 = Array.from({ length: 150 }, () => Array.from({ length: 3 }, () => r2.normal() / Math.sqrt(3)));
    for (let c = 0; c < 3; c++) expect(a[1]![c]).toBeCloseTo(Array.from(long[1]!).reduce((s, x, q) => s + x * p2[q]![c]!, 0), 10);
  });

  it('preserves inner products in expectation (a large k approximates the unprojected kernel)', () => {
    const [phi] = projectRows([train.rows], 9, 20_000, 1) as [Float64Array[]];
    const dot = (a: ArrayLike<number>, b: ArrayLike<number>, n: number): number => {
      let s = 0;
      for (let q = 0; q < n; q++) s += (a[q] as number) * (b[q] as number);
      return s;
    };
    for (const [i, j] of [[0, 0], [1, 2], [3, 5]] as const) {
      const want = dot(train.rows[i]!, train.rows[j]!, 9);
      const scale = Math.sqrt(dot(train.rows[i]!, train.rows[i]!, 9) * dot(train.rows[j]!, train.rows[j]!, 9));
      expect(Math.abs(dot(phi[i]!, phi[j]!, 20_000) - want)).toBeLessThan(0.05 * scale);
    }
  });

  it('is deterministic under a seed, and different seeds differ', async () => {
    registerTrakScorer(); // idempotent
    const s = await scorers.create('trak', { projectionDim: 5, seed: 42 });
    expect(s.needs).toEqual(['gradients']);
    const a = await s.score(input(train, test));
    const b = trakScores(train, test, { projectionDim: 5, seed: 42 });
    const c = trakScores(train, test, { projectionDim: 5, seed: 43 });
    expect(Array.from(a.values)).toEqual(Array.from(b.values));
    expect(Array.from(c.values)).not.toEqual(Array.from(a.values));
    expect(a.provenance.computedOver).toMatch(/random projection 9 → 5 \(seed 42\)/);
    // The default k = 512 > n uses the n×n side and still equals the primal side.
    const dual = trakScores(train, test, { seed: 1 });
    const primal = trakScores(train, test, { seed: 1, solver: 'primal' });
    dual.values.forEach((x, k) => expect(primal.values[k]).toBeCloseTo(x, 9));
  });

  it('streamed (block summaries): P drawn whole equals P drawn by chunks, and blocks of any split combine to the whole set\'s scores bit for bit', async () => {
    const long = randomRows(rng, 3, 150).map((x) => Float32Array.from(x));
    expect(projectRows([long], 150, 7, 2, projectionMatrix(150, 7, 2)).map((s) => s.map((r) => Array.from(r)))).toEqual(projectRows([long], 150, 7, 2).map((s) => s.map((r) => Array.from(r))));
    const whole = trakScores(train, test, { projectionDim: 5, seed: 9 });
    const bs = trakBlockSummaries({ projectionDim: 5, seed: 9 });
    for (const cuts of [[6], [1, 6], [2, 3, 6]]) {
      const m = await combinedInBlocks(bs, train, test, cuts);
      expect(Array.from(m.values), `blocks ending at ${cuts.join(', ')}`).toEqual(Array.from(whole.values));
      expect(m.provenance.computedOver).toMatch(new RegExp(`projected block by block as they were streamed in ${cuts.length} block`));
    }
    await expect(bs.combine([new Float64Array(4)], train.ids, test, 'epoch-1')).rejects.toThrow(/the block summaries hold 4 numbers, expected 6 training rows × 5 projected dimensions/);
    expect(() => trakBlockSummaries({ projectionDim: 0 })).toThrow(/without a projection/);
    registerTrakScorer();
    expect((await scorers.create('trak', { projectionDim: 0 })).blockSummaries).toBeUndefined();
    expect((await scorers.create('trak', {})).blockSummaries?.description).toBe('512 projected dimensions per training row (float64, seed 0)');
  });

  it('says what to change when its needs are not met', async () => {
    expect(() => trakScores(train, grads([[1, 2]], 'e'))).toThrow(/9 entries per row but test gradients 2/);
    expect(() => trakScores(train, test, { projectionDim: -1 })).toThrow(/'projectionDim' must be a non-negative integer/);
    expect(() => trakScores(train, test, { projectionDim: 2.5 })).toThrow(DdaError);
    expect(() => trakScores(train, test, { seed: 0.5 })).toThrow(/'seed' must be an integer/);
    expect(() => trakScores(train, test, { damping: 0 })).toThrow(/'damping' must be a positive/);
    expect(() => trakScores(grads([], 'z'), test)).toThrow(/no training gradients/);
    expect(() => trakScores(grads([[0, 0, 0]], 'z'), grads([[1, 1, 1]], 'e'))).toThrow(/every projected training gradient is zero/);
    expect(() => trakScores(train, test, { projectionDim: 0, solver: 'primal', maxSystemSize: 4 })).toThrow(/above maxSystemSize/);
    await expect(scorers.create('trak', { solver: 'lu' })).rejects.toThrow(/'solver' must be/);
    const s = await scorers.create('trak', {});
    await expect(s.score({ ...input(train, test), test: [] })).rejects.toThrow(/do not match the 0 test outputs/);
  });
});
