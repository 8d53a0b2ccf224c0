import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DdaError, createScoreMatrix, loadPlugins, type Debiaser, type Denoiser, type ScoreMatrix, type Scorer, type ScoringInput } from '@dda/core';
import {
  CORRECTIONS, SCORER_CHECKS, TEST, TRAIN, UnigramModel, assertConformance, checkDebiaser, checkDenoiser, checkScorer, formatReport, gradientsOf,
  type ConformanceReport, type Subject,
} from '@dda/conformance';

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

/** The status of every check, by name. */
const statuses = (r: ConformanceReport): Record<string, string> => Object.fromEntries(r.findings.map((f) => [f.check, f.status]));
const message = (r: ConformanceReport, check: string): string => r.findings.find((f) => f.check === check)?.message ?? '';

/** A gradient scorer whose per-pair score is `f(train row, test row)`, with room to break the contract elsewhere. */
function gradientScorer(id: string, f: (a: Float32Array, b: Float32Array) => number, extra: Partial<Scorer> = {}): Subject<Scorer> {
  const scorer: Scorer = {
    id,
    description: `${id}: a test scorer`,
    needs: ['gradients'],
    async score(input: ScoringInput): Promise<ScoreMatrix> {
      const [tr, te] = await Promise.all([input.trainGradients(), input.testGradients()]);
      const v = new Float64Array(tr.rows.length * te.rows.length);
      tr.rows.forEach((a, i) => te.rows.forEach((b, j) => (v[i * te.rows.length + j] = f(a, b))));
      return createScoreMatrix(tr.ids, te.ids, v, { method: id, computedOver: 'test', checkpoints: [input.checkpoint], transforms: [] });
    },
    ...extra,
  };
  return { id, plugin: 'test-plugin', create: () => scorer };
}
const dot = (a: Float32Array, b: Float32Array): number => a.reduce((s, x, k) => s + x * (b[k] as number), 0);

describe('checkScorer', () => {
  it('passes a correct gradient scorer on every check (missing-need does not apply to it)', async () => {
    const r = await checkScorer(gradientScorer('good-dot', dot, { rowSeparable: true }));
    expect(statuses(r)).toEqual({ ...Object.fromEntries(SCORER_CHECKS.map((c) => [c, 'pass'])), 'missing-need': 'not-applicable', 'block-summaries': 'not-applicable', 'streamed-fit': 'not-applicable' });
    expect(() => assertConformance(r)).not.toThrow();
    expect(statuses(await checkScorer(gradientScorer('plain-dot', dot)))['row-separable']).toBe('not-applicable');
  });

  it('catches a scorer that declares rowSeparable but scores depend on the whole training set', async () => {
    // Each dot product divided by the number of training rows: blocks scored apart scale differently.
    const whole: Subject<Scorer> = {
      id: 'whole-set', create: async () => {
        const inner = await gradientScorer('whole-set', dot).create({});
        return { ...inner, rowSeparable: true, score: async (input) => { const m = await inner.score(input); return { ...m, values: m.values.map((x) => x / m.trainIds.length) }; } };
      },
    };
    const r = await checkScorer(whole);
    expect(statuses(r)['row-separable']).toBe('fail');
    expect(message(r, 'row-separable')).toContain('it declares rowSeparable, but scoring blocks of the training set on their own gives other scores');
  });

  it('block-summaries: passes a scorer whose summaries combine to its scores, catches one whose summary depends on its block, and one that combines a short list', async () => {
    // score[i][j] = g_i·h_j − mean_k g_k·h_j: needs every row; summary = the block's dot products.
    const centred = (a: Float32Array, b: Float32Array): number => dot(a, b);
    const centre = (v: Float64Array, n: number, m: number): Float64Array => {
      const out = Float64Array.from(v);
      for (let j = 0; j < m; j++) {
        let mean = 0;
        for (let i = 0; i < n; i++) mean += (v[i * m + j] as number) / n;
        for (let i = 0; i < n; i++) out[i * m + j] = (v[i * m + j] as number) - mean;
      }
      return out;
    };
    const summed = (perBlockCentring: boolean, checkLength: boolean): Subject<Scorer> => ({
      id: 'centred-dot', create: async () => {
        const inner = await gradientScorer('centred-dot', centred).create({});
        const dots = (tr: { rows: readonly Float32Array[] }, te: { rows: readonly Float32Array[] }): Float64Array => Float64Array.from(tr.rows.flatMap((a) => te.rows.map((b) => dot(a, b))));
        return {
          ...inner,
          score: async (input) => { const m = await inner.score(input); return { ...m, values: centre(m.values, m.trainIds.length, m.testIds.length) }; },
          blockSummaries: {
            description: 'the dot products of each row',
            summarize: async (block, test) => (perBlockCentring ? centre(dots(block, test), block.rows.length, test.rows.length) : dots(block, test)),
            combine: async (summaries, trainIds, test, checkpoint) => {
              const given = summaries.flatMap((x) => [...x]);
              if (checkLength && given.length !== trainIds.length * test.rows.length) throw new DdaError(`${given.length} summary values for ${trainIds.length} rows`);
              const all = new Float64Array(trainIds.length * test.rows.length); // rows without a summary silently 0 when not checked
              all.set(given.slice(0, all.length));
              return createScoreMatrix(trainIds, test.ids, centre(all, trainIds.length, test.rows.length), { method: 'centred-dot', computedOver: 'test', checkpoints: [checkpoint], transforms: [] });
            },
          },
        };
      },
    });
    expect(statuses(await checkScorer(summed(false, true)))['block-summaries']).toBe('pass');
    const perBlock = await checkScorer(summed(true, true));
    expect(statuses(perBlock)['block-summaries']).toBe('fail');
    expect(message(perBlock, 'block-summaries')).toContain('combining the summaries of 3 training blocks gives other scores than scoring the whole set');
    const short = await checkScorer(summed(false, false));
    expect(statuses(short)['block-summaries']).toBe('fail');
    expect(message(short, 'block-summaries')).toMatch(/combining the summaries of 2 of the 3 blocks for all \d+ training samples/);
  });

  it('streamed-fit: passes a scorer whose fit passes and score pass give its scores, catches one whose partial depends on its block', async () => {
    // score[i][j] = (g_i − mean_k g_k)·h_j: the fit is the mean training gradient (a sum over rows).
    const mean = (rows: readonly Float32Array[], dim: number): Float64Array => {
      const out = new Float64Array(dim);
      for (const r of rows) for (let p = 0; p < dim; p++) out[p] = (out[p] as number) + (r[p] as number) / rows.length;
      return out;
    };
    const centredScores = (rows: readonly Float32Array[], test: { rows: readonly Float32Array[] }, mu: Float64Array): Float64Array =>
      Float64Array.from(rows.flatMap((g) => test.rows.map((h) => g.reduce((a, x, p) => a + (x - (mu[p] as number)) * (h[p] as number), 0))));
    const fitted = (perBlockMean: boolean): Subject<Scorer> => ({
      id: 'centred-fit', create: async () => {
        const inner = await gradientScorer('centred-fit', dot).create({});
        return {
          ...inner,
          score: async (input) => {
            const [tr, te] = [await input.trainGradients(), await input.testGradients()];
            return createScoreMatrix(tr.ids, te.ids, centredScores(tr.rows, te, mean(tr.rows, tr.dim)), { method: 'centred-fit', computedOver: 'test', checkpoints: [input.checkpoint], transforms: [] });
          },
          streamedFit: {
            description: 'the mean training gradient (dim floats)',
            fitPasses: 1,
            // The right partial is the block's sum; the wrong one its mean (a split-dependent weighting).
            fold: async (block) => { const m = mean(block.rows, block.dim); return perBlockMean ? m : m.map((x) => x * block.rows.length); },
            finalize: async (sum, nTrain) => (perBlockMean ? sum : sum.map((x) => x / nTrain)),
            scoreBlock: async (fit, block, test, checkpoint) => createScoreMatrix(block.ids, test.ids, centredScores(block.rows, test, fit), { method: 'centred-fit', computedOver: 'test', checkpoints: [checkpoint], transforms: [] }),
          },
        };
      },
    });
    const good = await checkScorer(fitted(false));
    expect(statuses(good)['streamed-fit']).toBe('pass');
    const bad = await checkScorer(fitted(true));
    expect(statuses(bad)['streamed-fit']).toBe('fail');
    expect(message(bad, 'streamed-fit')).toContain('fit pass and scoring them against the fit gives other scores than scoring the whole set');
  });

  it('fails a plugin whose scorer violates the sign convention, naming the plugin and the check', async () => {
    const [plugin] = await loadPlugins(['./sign-flipped.mjs'], { cwd: FIXTURES });
    const r = await checkScorer('flipped-dot');
    expect(r.plugin).toBe(plugin?.name);
    expect(statuses(r)['sign-convention']).toBe('fail');
    expect(message(r, 'sign-convention')).toMatch(/for test 'e0' its verbatim copy 't1' \(score -?[\d.e+-]+\) ranks 10 of 10/);
    expect(() => assertConformance(r)).toThrow(DdaError);
    expect(() => assertConformance(r)).toThrow(/plugin '\.\/sign-flipped\.mjs', scorer 'flipped-dot' fails the conformance check 'sign-convention'/);
    // Everything else about it is fine.
    expect(r.findings.filter((f) => f.status === 'fail').map((f) => f.check)).toEqual(['sign-convention']);
  });

  it('catches scores that stay in place when the training or test set is reordered', async () => {
    // Scores by position: row i gets i + j/10 whatever the sample.
    const positional: Subject<Scorer> = {
      id: 'by-position', plugin: 'test-plugin',
      create: () => ({
        id: 'by-position', description: 'scores by position', needs: ['text'],
        score: async (input) => createScoreMatrix(input.train.map((s) => s.id), input.test.map((s) => s.id), Float64Array.from({ length: input.train.length * input.test.length }, (_, k) => k), { method: 'by-position', computedOver: '', checkpoints: [], transforms: [] }),
      }),
    };
    const r = await checkScorer(positional);
    expect(statuses(r)).toMatchObject({ 'shape-and-ids': 'pass', 'training-order': 'fail', 'test-order': 'fail', 'sign-convention': 'fail' });
    expect(message(r, 'training-order')).toContain('do not move with their training samples');
  });

  it('catches a scorer that is not deterministic', async () => {
    let calls = 0;
    const r = await checkScorer(gradientScorer('drifting', (a, b) => dot(a, b) + 1e-3 * (calls++ % 7)));
    expect(statuses(r).determinism).toBe('fail');
  });

  it('catches a scorer that uses a need it does not declare, and rows in the wrong order', async () => {
    const undeclared = gradientScorer('sneaky', dot, { needs: ['text'] });
    const r = await checkScorer(undeclared);
    expect(statuses(r)['shape-and-ids']).toBe('fail');
    expect(message(r, 'shape-and-ids')).toContain("asked for training gradients but does not declare the need 'gradients'");
    const reversed: Subject<Scorer> = {
      id: 'reversed', create: async () => {
        const inner = await gradientScorer('reversed', dot).create({});
        return { ...inner, score: async (input) => { const m = await inner.score(input); return { ...m, trainIds: [...m.trainIds].reverse() }; } };
      },
    };
    expect(message(await checkScorer(reversed), 'shape-and-ids')).toMatch(/trainIds .* are not the 10 training ids of the input in their order/);
  });

  it('catches non-finite scores, wrong ids, and unclear errors for a missing need', async () => {
    const nan: Subject<Scorer> = {
      id: 'nan-scorer', create: () => ({
        id: 'nan-scorer', description: 'NaN', needs: ['representations'],
        score: async (input) => {
          const rep = await input.trainRepresentations!(); // a TypeError when representations are missing
          return { trainIds: rep.ids, testIds: input.test.map((s) => s.id), values: new Float64Array(rep.ids.length * input.test.length).fill(Number.NaN), provenance: { method: 'nan-scorer', computedOver: '', checkpoints: [], transforms: [] } };
        },
      }),
    };
    const r = await checkScorer(nan);
    expect(statuses(r)).toMatchObject({ finite: 'fail', 'missing-need': 'fail' });
    expect(message(r, 'finite')).toContain("NaN for train 't0' × test 'e0'");
    expect(message(r, 'missing-need')).toContain("without 'representations' it threw TypeError");
    expect((await checkScorer(gradientScorer('other-id', dot, { id: 'not-this' }))).findings[0]?.message).toContain("says its id is 'not-this'");
  });

  it('reports opt-outs with their reason and what the check found anyway; rejects unknown or unexplained opt-outs', async () => {
    await loadPlugins(['./sign-flipped.mjs'], { cwd: FIXTURES });
    const r = await checkScorer('flipped-dot', { optOut: { 'sign-convention': 'this test scorer is flipped on purpose' } });
    const f = r.findings.find((x) => x.check === 'sign-convention');
    expect(f?.status).toBe('opted-out');
    expect(f?.message).toMatch(/^this test scorer is flipped on purpose \(run anyway: fail: a training sample identical/);
    expect(() => assertConformance(r)).not.toThrow();
    expect(formatReport(r)).toContain('opted-out      sign-convention: this test scorer is flipped on purpose');
    await expect(checkScorer('flipped-dot', { optOut: { 'no-such-check': 'a reason that is long enough' } as never })).rejects.toThrow(/opt-out of unknown check 'no-such-check'/);
    await expect(checkScorer('flipped-dot', { optOut: { finite: '' } })).rejects.toThrow(/needs a reason/);
    await expect(checkScorer('no-such-scorer')).rejects.toThrow(/unknown scorer 'no-such-scorer'/);
  });
});

describe('checkDebiaser and checkDenoiser', () => {
  const debiaser = (id: string, debias: Debiaser['debias']): Subject<Debiaser> => ({ id, plugin: 'test-plugin', create: () => ({ id, description: id, debias }) });
  const denoiser = (id: string, denoise: Denoiser['denoise']): Subject<Denoiser> => ({ id, plugin: 'test-plugin', create: () => ({ id, description: id, denoise }) });
  const sameIds = (a: ScoreMatrix, b: ScoreMatrix): void => {
    if (a.trainIds.join() !== b.trainIds.join() || a.testIds.join() !== b.testIds.join()) throw new DdaError('ids do not line up');
  };
  const withValues = (m: ScoreMatrix, values: Float64Array): ScoreMatrix => ({ ...m, values });

  it('passes a correct raw debias and mean denoiser', async () => {
    let beta = 1;
    const raw: Subject<Debiaser> = {
      id: 'test-raw', create: (o) => {
        beta = o.beta as number;
        const b = beta;
        return { id: 'test-raw', description: 'raw', debias: (ft, base) => (sameIds(ft, base), withValues(ft, ft.values.map((x, k) => x - b * (base.values[k] as number)))) };
      },
    };
    expect(statuses(await checkDebiaser(raw))).toEqual({ 'shape-and-ids': 'pass', 'beta-zero': 'pass', 'constant-columns': 'pass', 'mismatched-inputs': 'pass', determinism: 'pass' });
    const mean = denoiser('test-mean', (ms) => {
      ms.forEach((m) => sameIds(ms[0] as ScoreMatrix, m));
      return withValues(ms[0] as ScoreMatrix, (ms[0] as ScoreMatrix).values.map((_, k) => ms.reduce((s, m) => s + (m.values[k] as number), 0) / ms.length));
    });
    expect(statuses(await checkDenoiser(mean))).toEqual({ 'shape-and-ids': 'pass', 'single-checkpoint': 'pass', 'constant-columns': 'pass', 'mismatched-inputs': 'pass', determinism: 'pass' });
  });

  it('catches NaN from a constant column, a debiaser that ignores β = 0, one that edits its input, and one that does not check ids', async () => {
    // z-score without a guard: a constant column divides 0 by 0.
    const z = (m: ScoreMatrix): Float64Array => {
      const n = m.testIds.length;
      const out = new Float64Array(m.values.length);
      for (let j = 0; j < n; j++) {
        const col = m.trainIds.map((_, i) => m.values[i * n + j] as number);
        const mu = col.reduce((a, b) => a + b, 0) / col.length;
        const sd = Math.sqrt(col.reduce((a, b) => a + (b - mu) ** 2, 0) / col.length);
        col.forEach((x, i) => (out[i * n + j] = (x - mu) / sd));
      }
      return out;
    };
    const unguarded = await checkDebiaser(debiaser('unguarded', (ft, base) => (sameIds(ft, base), withValues(ft, z(ft).map((x, k) => x - (z(base)[k] as number))))));
    expect(statuses(unguarded)['constant-columns']).toBe('fail');
    expect(message(unguarded, 'constant-columns')).toContain('NaN');
    const ignoresBeta = await checkDebiaser(debiaser('ignores-beta', (ft, base) => (sameIds(ft, base), withValues(ft, ft.values.map((x, k) => x - (base.values[k] as number))))));
    expect(statuses(ignoresBeta)['beta-zero']).toBe('fail');
    const inPlace = await checkDebiaser(debiaser('in-place', (ft, base) => {
      sameIds(ft, base);
      ft.values.forEach((x, k) => (ft.values[k] = x - (base.values[k] as number)));
      return ft;
    }));
    expect(message(inPlace, 'shape-and-ids')).toContain('modified its input');
    const unchecked = await checkDebiaser(debiaser('unchecked', (ft, base) => withValues(ft, ft.values.map((x, k) => x - 0 * (base.values[k] as number)))));
    expect(message(unchecked, 'mismatched-inputs')).toContain('returned a result instead of refusing');
  });

  it('catches a denoiser that does not reduce to the plain scores at N = 1', async () => {
    const negated = await checkDenoiser(denoiser('negated', (ms) => withValues(ms[0] as ScoreMatrix, (ms[0] as ScoreMatrix).values.map((x) => -x))));
    expect(statuses(negated)['single-checkpoint']).toBe('fail');
    expect(() => assertConformance(negated)).toThrow(/plugin 'test-plugin', denoiser 'negated' fails the conformance checks 'single-checkpoint', 'mismatched-inputs'/);
  });
});

describe('the task', () => {
  it('has each test output verbatim among the training samples, and corrections that change only the place', () => {
    for (const [j, e] of TEST.entries()) {
      const copy = TRAIN.find((t) => t.prompt === e.prompt && t.response === e.response);
      expect(copy, e.id).toBeDefined();
      expect(CORRECTIONS[j]?.response).not.toBe(e.response);
      expect(CORRECTIONS[j]?.id).toBe(e.id);
    }
    const g = gradientsOf([...TRAIN, ...TEST]);
    expect(g.rows[1]).toEqual(g.rows[10]); // t1 and e0 have the same text, so the same gradient
    expect(g.rows[0]).not.toEqual(g.rows[1]);
  });

  it('unigram model: log V nats/token at the start, the exact gradient step, and θ restored after every call', async () => {
    const model = new UnigramModel(TRAIN);
    const words = new Set(TRAIN.flatMap((s) => s.response.toLowerCase().match(/[a-z0-9]+/g) ?? []));
    const V = words.size + 1; // + <unk>
    // One SGD step of size η on one sample s from θ = 0: θ = η (f_s − 1/V), so for the same sample
    // loss = lse(θ) − f_s·θ = log Σ_w exp(η (f_s(w) − 1/V)) − η (Σ_w f_s(w)² − 1/V).
    const s = TRAIN[0]!;
    const toks = s.response.toLowerCase().match(/[a-z0-9]+/g) ?? [];
    const f = new Map<string, number>();
    for (const t of toks) f.set(t, (f.get(t) ?? 0) + 1 / toks.length);
    const eta = 0.5;
    let lse = 0;
    for (const w of [...words, '<unk>']) lse += Math.exp(eta * ((f.get(w) ?? 0) - 1 / V));
    const sumSq = [...f.values()].reduce((a, b) => a + b * b, 0);
    const expected = Math.log(lse) - eta * (sumSq - 1 / V);
    const got = await model.lossesAfterSteps([s], [s, TRAIN[1]!], { steps: 1, learningRate: eta, optimizer: 'sgd' });
    expect(got[0]).toBeCloseTo(expected, 12);
    expect(got[1]).toBeGreaterThan(Math.log(V)); // another topic's loss goes up
    // θ was restored: a call that changes nothing measurable still starts from uniform.
    const again = await model.lossesAfterSteps([s], [s], { steps: 1, learningRate: 1e-12, optimizer: 'adam' });
    expect(again[0]).toBeCloseTo(Math.log(V), 9);
  });
});
