import { describe, expect, it } from 'vitest';
import { DdaError, SeededRandom, createScoreMatrix, debiasers, denoisers, type CheckpointInfo, type ScoreMatrix } from '@dda/core';
import {
  ddaCombine,
  debiasFittedBeta,
  debiasRank,
  debiasRaw,
  debiasUnitNorm,
  debiasZScore,
  denoiseEma,
  denoiseLrWeighted,
  denoiseMean,
  denoiseMedian,
  denoiseZScoreMean,
  fittedBetas,
  registerDdaPlugins,
} from '@dda/plugin-dda';

const TRAIN = ['r0', 'r1', 'r2'];
const TEST = ['t0', 't1'];

/** A 3×2 matrix from rows [[r0t0, r0t1], [r1t0, r1t1], [r2t0, r2t1]]. */
function mat(rows: number[][], checkpoint: string, method = 'grad-dot', train = TRAIN, test = TEST): ScoreMatrix {
  return createScoreMatrix(train, test, rows.flat(), {
    method,
    computedOver: 'hand-written',
    checkpoints: [checkpoint],
    transforms: [],
  });
}

function rows(m: ScoreMatrix): number[][] {
  const n = m.testIds.length;
  return m.trainIds.map((_, i) => Array.from(m.values.subarray(i * n, (i + 1) * n)));
}

function expectRows(m: ScoreMatrix, expected: number[][]): void {
  const got = rows(m);
  expect(got.length).toBe(expected.length);
  got.forEach((r, i) => r.forEach((x, j) => expect(x).toBeCloseTo(expected[i]![j]!, 12)));
}

const ft = mat([[1, 4], [2, 0], [3, 2]], 'epoch-3');
const base = mat([[2, 2], [0, 2], [1, 8]], 'base');
const c = Math.sqrt(1.5); // |z| of the extreme entries of a 3-row column with evenly spaced values

describe('debiasers', () => {
  it('raw: fine-tuned − β·base', () => {
    expectRows(debiasRaw(ft, base), [[-1, 2], [2, -2], [2, -6]]);
    expectRows(debiasRaw(ft, base, 0.5), [[0, 3], [2, -1], [2.5, -2]]);
  });

  it('raw with β = 0 gives the fine-tuned scores', () => {
    expect(Array.from(debiasRaw(ft, base, 0).values)).toEqual(Array.from(ft.values));
  });

  it('zscore: per-column z-scores, then the difference', () => {
    // ft: col0 [1,2,3] → [-c,0,c]; col1 [4,0,2] → [c,-c,0]
    // base: col0 [2,0,1] → [c,-c,0]; col1 [2,2,8] → [-1/√2,-1/√2,√2]
    expectRows(debiasZScore(ft, base), [
      [-2 * c, c + Math.SQRT1_2],
      [c, -c + Math.SQRT1_2],
      [c, -Math.SQRT2],
    ]);
  });

  it('zscore leaves a constant column centred (zeros), never NaN', () => {
    const constant = createScoreMatrix(TRAIN, ['t0'], [0.1, 0.1, 0.1], { method: 'grad-dot', computedOver: '', checkpoints: ['epoch-1'], transforms: [] });
    const b = createScoreMatrix(TRAIN, ['t0'], [1, 2, 3], { method: 'grad-dot', computedOver: '', checkpoints: ['base'], transforms: [] });
    expectRows(debiasZScore(constant, b), [[c], [0], [-c]]);
    expectRows(debiasZScore(b, constant), [[-c], [0], [c]]);
  });

  it('unit-norm: each column scaled to unit L2 norm, then the difference', () => {
    const [f0, f1, b0, b1] = [Math.sqrt(14), Math.sqrt(20), Math.sqrt(5), Math.sqrt(72)];
    expectRows(debiasUnitNorm(ft, base), [
      [1 / f0 - 2 / b0, 4 / f1 - 2 / b1],
      [2 / f0 - 0 / b0, 0 / f1 - 2 / b1],
      [3 / f0 - 1 / b0, 2 / f1 - 8 / b1],
    ]);
    const zero = mat([[0, 1], [0, 0], [0, 0]], 'epoch-1');
    expectRows(debiasUnitNorm(zero, base, 0), [[0, 1], [0, 0], [0, 0]]);
  });

  it('rank: [0,1] mid-ranks per column, then the difference', () => {
    // ft ranks: col0 [0, .5, 1], col1 [1, 0, .5]; base ranks: col0 [1, 0, .5], col1 [.25, .25, 1] (tie)
    expectRows(debiasRank(ft, base), [[-1, 0.75], [0.5, -0.25], [0.5, -0.5]]);
    expectRows(debiasRank(ft, base, 0), [[0, 1], [0.5, 0], [1, 0.5]]);
  });

  it('fitted-beta: per-column least-squares residual', () => {
    // col0: β = cov/var = (-1/3)/(2/3) = -0.5; col1: cov = 0 → β = 0
    expect(Array.from(fittedBetas(ft, base))).toEqual([-0.5, 0]);
    expectRows(debiasFittedBeta(ft, base), [[-0.5, 2], [-0.5, -2], [1, 0]]);
    // an exact affine function of the base leaves no residual
    const affine = mat([[7, 3], [1, 3], [4, 15]], 'epoch-1'); // 3·base + 1 in col0, 2·base − 1 in col1
    expectRows(debiasFittedBeta(affine, base), [[0, 0], [0, 0], [0, 0]]);
    // a constant base column gives β = 0 (centred fine-tuned scores)
    const flat = mat([[5, 1], [5, 1], [5, 1]], 'base');
    expectRows(debiasFittedBeta(ft, flat), [[-1, 2], [0, -2], [1, 0]]);
  });

  it('records provenance', () => {
    const out = debiasRaw(ft, base);
    expect(out.provenance.method).toBe('grad-dot');
    expect(out.provenance.checkpoints).toEqual(['epoch-3', 'base']);
    expect(out.provenance.transforms).toEqual(['debias:raw(beta=1)']);
    expect(out.provenance.computedOver).toMatch(/hand-written; debiased against base scores .*fine-tuned − 1 × base/);
    expect(debiasZScore(ft, base, 0.5).provenance.transforms).toEqual(['debias:zscore(beta=0.5)']);
    expect(debiasFittedBeta(ft, base).provenance.computedOver).toMatch(/fitted β from -0.5000 to 0.000/);
  });

  it('throws when the matrices do not line up', () => {
    const otherTrain = mat([[1, 1], [1, 1], [1, 1]], 'base', 'grad-dot', ['r0', 'r2', 'r1']);
    const otherTest = mat([[1, 1], [1, 1], [1, 1]], 'base', 'grad-dot', TRAIN, ['t1', 't0']);
    for (const f of [debiasRaw, debiasZScore, debiasUnitNorm, debiasRank, debiasFittedBeta]) {
      expect(() => f(ft, otherTrain)).toThrow(DdaError);
      expect(() => f(ft, otherTest)).toThrow(/do not line up/);
    }
    expect(() => debiasRaw(ft, base, NaN)).toThrow(/beta must be a finite number/);
  });
});

const e1 = mat([[1, 2], [3, 4], [5, 6]], 'epoch-1');
const e2 = mat([[3, 2], [1, 0], [5, 9]], 'epoch-2');
const e3 = mat([[2, 8], [2, 1], [-1, 0]], 'epoch-3');
const infos: CheckpointInfo[] = [
  { id: 'epoch-1', epoch: 1, learningRate: 3e-4 },
  { id: 'epoch-2', epoch: 2, learningRate: 2e-4 },
  { id: 'epoch-3', epoch: 3, learningRate: 1e-4 },
];

describe('denoisers', () => {
  it('mean: element-wise mean over checkpoints', () => {
    expectRows(denoiseMean([e1, e2, e3], infos), [[2, 4], [2, 5 / 3], [3, 5]]);
  });

  it('mean over one checkpoint is the identity', () => {
    const out = denoiseMean([e2], [infos[1]!]);
    expect(Array.from(out.values)).toEqual(Array.from(e2.values));
    expect(out.provenance.transforms).toEqual(['denoise:mean']);
  });

  it('lr-weighted: Σ lr·IS / Σ lr', () => {
    // weights 3:2:1
    expectRows(denoiseLrWeighted([e1, e2, e3], infos), [[11 / 6, 3], [13 / 6, 13 / 6], [4, 6]]);
    const equal = infos.map((i) => ({ ...i, learningRate: 1e-4 }));
    expectRows(denoiseLrWeighted([e1, e2, e3], equal), rows(denoiseMean([e1, e2, e3], infos)));
    expect(() => denoiseLrWeighted([e1], [{ ...infos[0]!, learningRate: 0 }])).toThrow(/learning rate 0/);
    expect(() => denoiseLrWeighted([e1], [{ ...infos[0]!, learningRate: -1 }])).toThrow(DdaError);
  });

  it('median: element-wise median (mean of the middle two for even N)', () => {
    expectRows(denoiseMedian([e1, e2, e3], infos), [[2, 2], [2, 1], [5, 6]]);
    expectRows(denoiseMedian([e1, e2], infos.slice(0, 2)), rows(denoiseMean([e1, e2], infos.slice(0, 2))));
  });

  it('ema: s_i = α·IS_i + (1 − α)·s_{i−1}; α = 1 is the final checkpoint', () => {
    // α = 0.5 over e1, e2, e3: weights 0.25, 0.25, 0.5; first entry 0.25·1 + 0.25·3 + 0.5·2 = 2
    expectRows(denoiseEma([e1, e2, e3], infos, 0.5), [[2, 5], [2, 1.5], [2, 3.75]]);
    expectRows(denoiseEma([e1, e2, e3], infos, 1), rows(e3));
    expect(() => denoiseEma([e1], infos.slice(0, 1), 0)).toThrow(/alpha must be in \(0, 1\]/);
  });

  it('zscore-mean: z-score each checkpoint per column, then the mean', () => {
    // a rescaled, shifted copy has the same z-scores, so the mean is z(e1): every column [-c, 0, c]
    const scaled = mat([[13, 23], [33, 43], [53, 63]], 'epoch-2'); // 10·e1 + 3
    expectRows(denoiseZScoreMean([e1, scaled], infos.slice(0, 2)), [[-c, -c], [0, 0], [c, c]]);
  });

  it('records provenance', () => {
    const out = denoiseMean([e1, e2, e3], infos);
    expect(out.provenance).toMatchObject({
      method: 'grad-dot',
      checkpoints: ['epoch-1', 'epoch-2', 'epoch-3'],
      transforms: ['denoise:mean'],
    });
    expect(out.provenance.computedOver).toMatch(/^the scores at each of 3 checkpoint\(s\) \(epoch-1, epoch-2, epoch-3\), each computed as at the first: .*; denoised over them: /);
  });

  it('throws when the inputs do not line up', () => {
    const otherTest = mat([[1, 1], [1, 1], [1, 1]], 'epoch-2', 'grad-dot', TRAIN, ['t0', 'tx']);
    for (const f of [denoiseMean, denoiseLrWeighted, denoiseMedian, denoiseZScoreMean]) {
      expect(() => f([e1, otherTest], infos.slice(0, 2))).toThrow(/do not line up/);
      expect(() => f([], [])).toThrow(/no checkpoint scores/);
      expect(() => f([e1, e2], infos)).toThrow(/2 score matrices but 3 checkpoint/);
      expect(() => f([e1, e2], [infos[1]!, infos[0]!])).toThrow(/computed at epoch-1, but its CheckpointInfo says 'epoch-2'/);
      expect(() => f([e1, e1], [infos[0]!, infos[0]!])).toThrow(/listed twice/);
      expect(() => f([e1, mat([[0, 0], [0, 0], [0, 0]], 'epoch-2', 'grad-cos')], infos.slice(0, 2))).toThrow(/combine only scores of one method/);
    }
  });
});

describe('DDA (denoise, then debias)', () => {
  function randomMatrix(rng: SeededRandom, checkpoint: string, nTrain: number, nTest: number): ScoreMatrix {
    const train = Array.from({ length: nTrain }, (_, i) => `z${i}`);
    const test = Array.from({ length: nTest }, (_, j) => `e${j}`);
    const v = Array.from({ length: nTrain * nTest }, () => rng.normal() * 3);
    return createScoreMatrix(train, test, v, { method: 'grad-dot', computedOver: 'random', checkpoints: [checkpoint], transforms: [] });
  }

  it('raw + mean equals the mean of the per-epoch debiased scores (linearity)', () => {
    const rng = new SeededRandom(3);
    const epochs = infos.map((i) => randomMatrix(rng, i.id, 17, 5));
    const b = randomMatrix(rng, 'base', 17, 5);
    for (const beta of [1, 0.3, 2]) {
      const combined = debiasRaw(denoiseMean(epochs, infos), b, beta);
      const perEpoch = denoiseMean(
        epochs.map((e) => debiasRaw(e, b, beta)),
        infos,
      );
      expectRows(combined, rows(perEpoch));
    }
  });

  it('ddaCombine works on registry instances and records both transforms', async () => {
    const dn = await denoisers.create('mean', {});
    const db = await debiasers.create('raw', {});
    const out = ddaCombine([e1, e2, e3], infos, base, dn, db);
    // mean [[2,4],[2,5/3],[3,5]] − base [[2,2],[0,2],[1,8]]
    expectRows(out, [[0, 2], [2, -1 / 3], [2, -3]]);
    expect(out.provenance).toMatchObject({
      method: 'grad-dot',
      checkpoints: ['epoch-1', 'epoch-2', 'epoch-3', 'base'],
      transforms: ['denoise:mean', 'debias:raw(beta=1)'],
    });
    expect(() => ddaCombine([e1], [infos[0]!], mat([[0, 0], [0, 0], [0, 0]], 'base', 'grad-dot', ['a', 'b', 'c']), dn, db)).toThrow(DdaError);
  });
});

describe('registration', () => {
  it('registers every debiaser and denoiser, idempotently', async () => {
    expect(debiasers.ids()).toEqual(['raw', 'zscore', 'unit-norm', 'rank', 'fitted-beta']);
    expect(denoisers.ids()).toEqual(['mean', 'lr-weighted', 'median', 'zscore-mean', 'ema']);
    registerDdaPlugins();
    expect(debiasers.ids()).toHaveLength(5);
    for (const id of debiasers.ids()) expect((await debiasers.create(id, {})).id).toBe(id);
    for (const id of denoisers.ids()) expect((await denoisers.create(id, {})).id).toBe(id);
  });

  it('reads the beta option', async () => {
    const half = await debiasers.create('raw', { beta: 0.5 });
    expectRows(half.debias(ft, base), [[0, 3], [2, -1], [2.5, -2]]);
    const z0 = await debiasers.create('zscore', { beta: 0 });
    expect(z0.debias(ft, base).provenance.transforms).toEqual(['debias:zscore(beta=0)']);
    await expect(debiasers.create('rank', { beta: 'one' })).rejects.toThrow(/option 'beta' must be a finite number/);
  });
});

describe('scores across the range of gradient scores', () => {
  // Inner products of finite float32 gradients lie between about 2^-298 (subnormal × subnormal)
  // and dim · 2^256: every debiaser and denoiser must keep them finite and rank them as at scale 1.
  const rng = new SeededRandom(4);
  const base = (s: number, cp: string): ScoreMatrix => mat(Array.from({ length: 3 }, () => [rng.normal() * s, rng.normal() * s]), cp);
  const ranks = (m: ScoreMatrix): number[][] => [0, 1].map((j) => [0, 1, 2].sort((a, b) => m.values[a * 2 + j]! - m.values[b * 2 + j]!));
  const infos: CheckpointInfo[] = [1, 2, 3].map((epoch) => ({ id: `epoch-${epoch}`, epoch, learningRate: 1e-3 / epoch }));

  it('every debiaser and denoiser gives finite scores, ranked as at scale 1, for scores near 2^280 and 2^-298 (gradient inner products) and beyond (2^600, 2^-700)', async () => {
    const ft = base(1, 'epoch-3');
    const b0 = base(1, 'base');
    const epochs = infos.map((c) => base(1, c.id));
    for (const scale of [2 ** 280, 2 ** -298, 2 ** 600, 2 ** -700]) {
      const at = (m: ScoreMatrix): ScoreMatrix => ({ ...m, values: m.values.map((x) => x * scale) });
      for (const id of debiasers.ids()) {
        const d = await debiasers.create(id, {});
        const got = d.debias(at(ft), at(b0));
        expect(got.values.every((x) => Number.isFinite(x)), `${id} × 2^${Math.log2(scale)}`).toBe(true);
        expect(ranks(got), `${id} × 2^${Math.log2(scale)}`).toEqual(ranks(d.debias(ft, b0)));
      }
      for (const id of denoisers.ids()) {
        const d = await denoisers.create(id, {});
        const got = d.denoise(epochs.map(at), infos);
        expect(got.values.every((x) => Number.isFinite(x)), `${id} × 2^${Math.log2(scale)}`).toBe(true);
        expect(ranks(got), `${id} × 2^${Math.log2(scale)}`).toEqual(ranks(d.denoise(epochs, infos)));
      }
    }
  });
});
