import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildGradientIndex, queryGradientIndexesDda, runAttribute, type IndexBuildOptions,
} from '@dda/attribution';
import { indexScoreMatrix } from './fixtures/index-scores.js';
import { makeUserRun, type UserRun } from './fixtures/user-run.js';

// DDA over gradient indexes on the tiny user run (10 training samples, 3 queries; checkpoints
// checkpoint-50 and checkpoint-100): one index at θ0 and one per checkpoint.
let dir: string;
let run: UserRun;
const idx = (cp: string): string => join(dir, `idx-${cp}`);
const build = (cp: string, o: Partial<IndexBuildOptions> = {}): ReturnType<typeof buildGradientIndex> =>
  buildGradientIndex({ base: run.base, checkpoints: [run.run], train: run.train, checkpoint: cp, out: idx(cp), dim: 1024, seed: 3, blockRows: 4, ...o });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dda-index-dda-'));
  run = makeUserRun(join(dir, 'user'), 10, 3);
  for (const cp of ['base', 'checkpoint-50', 'checkpoint-100']) await build(cp);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The full score matrix [train × query] of one index from its rows and the queries' projected rows (as queryGradientIndex returns them). */
const scoresOf = (cp: string): Promise<Float64Array> => indexScoreMatrix(idx(cp), run.queries);

describe('DDA over gradient indexes', () => {
  it('is the mean over the checkpoints\' index scores minus the θ0 index scores (raw, mean, β = 1), whatever the order of the indexes', async () => {
    const [b, c50, c100] = [await scoresOf('base'), await scoresOf('checkpoint-50'), await scoresOf('checkpoint-100')];
    const want = b.map((x, k) => ((c50[k] as number) + (c100[k] as number)) / 2 - x);
    const r = await queryGradientIndexesDda({ indexes: [idx('checkpoint-100'), idx('base'), idx('checkpoint-50')], queries: run.queries, debias: 'raw', denoise: 'mean', beta: 1, topK: 3, out: join(dir, 'q') });
    expect(r.checkpoints).toEqual(['checkpoint-50', 'checkpoint-100']);
    expect(r.matrix.testIds).toEqual(['q0', 'q1', 'q2']);
    const scale = Math.max(...want.map(Math.abs));
    r.matrix.values.forEach((v, k) => expect(Math.abs(v - (want[k] as number)) / scale, `entry ${k}`).toBeLessThan(1e-9));
    expect(r.description).toMatch(/^grad-dot; .*debias.*raw/);
    // The top of each query is the highest DDA score, ties to the earlier row.
    for (const [j, q] of r.tops.entries()) {
      const col = Array.from({ length: 10 }, (_, i) => r.matrix.values[i * 3 + j] as number);
      expect(q.top[0]?.score).toBe(Math.max(...col));
      expect(q.top.map((t) => t.rank)).toEqual([1, 2, 3]);
    }
    expect(r.files.map((f) => f.split('/').pop())).toEqual(['topk.csv', 'topk.jsonl', 'query.json']);
  }, 300_000);

  it('defaults to the recommended DDA; denoise none takes the last checkpoint', async () => {
    const rec = await queryGradientIndexesDda({ indexes: [idx('base'), idx('checkpoint-50'), idx('checkpoint-100')], queries: run.queries });
    expect(rec.description).toMatch(/zscore-mean/);
    expect(rec.description).toMatch(/fitted-beta/);
    const last = await queryGradientIndexesDda({ indexes: [idx('base'), idx('checkpoint-50'), idx('checkpoint-100')], queries: run.queries, debias: null, denoise: null });
    const c100 = await scoresOf('checkpoint-100');
    last.matrix.values.forEach((v, k) => expect(v).toBeCloseTo(c100[k] as number, 9));
  }, 300_000);

  it('refuses one index, no θ0 index, two at one checkpoint, and indexes built otherwise, naming what differs', async () => {
    const q = { queries: run.queries };
    await expect(queryGradientIndexesDda({ ...q, indexes: [idx('base')] })).rejects.toThrow(/needs the index at θ0 \(base\) and at least one checkpoint's; 1 given/);
    await expect(queryGradientIndexesDda({ ...q, indexes: [idx('checkpoint-50'), idx('checkpoint-100')] })).rejects.toThrow(/no index is at θ0 \(the checkpoints are checkpoint-50, checkpoint-100\)/);
    await expect(queryGradientIndexesDda({ ...q, indexes: [idx('base'), idx('checkpoint-50'), idx('checkpoint-50')] })).rejects.toThrow(/two indexes are at checkpoint checkpoint-50/);
    await build('checkpoint-50', { out: join(dir, 'other-seed'), seed: 4 });
    await expect(queryGradientIndexesDda({ ...q, indexes: [idx('base'), join(dir, 'other-seed')] })).rejects.toThrow(/were not built from the same model, data, projection and measurement \(projection\.seed: index 3, given 4/);
  }, 300_000);

  it('estimates each DDA score\'s projection error (within a factor of the error against exact DDA) and warns when it is a large part of the scores: at a small --dim, not at a large one', async () => {
    // Exact DDA (raw, mean, β = 1) from dda attribute at the same checkpoints: grad-dot on the full gradients.
    const exact = await runAttribute({ base: run.base, checkpoints: [run.run], train: run.train, queries: run.queries, out: join(dir, 'exact'), method: { scorer: 'grad-dot', debias: 'raw', denoise: 'mean', beta: 1 }, topK: 3 });
    const want = exact.method.matrix;
    const dda = async (dim: number, seed: number, method: { debias?: string; denoise?: string } = { debias: 'raw', denoise: 'mean' }): Promise<{ r: Awaited<ReturnType<typeof queryGradientIndexesDda>>; lines: string[] }> => {
      const at = (cp: string): string => join(dir, `e-${dim}-${seed}-${cp}`);
      for (const cp of ['base', 'checkpoint-50', 'checkpoint-100']) await build(cp, { out: at(cp), dim, seed });
      const lines: string[] = [];
      const r = await queryGradientIndexesDda({ indexes: ['base', 'checkpoint-50', 'checkpoint-100'].map(at), queries: run.queries, ...method, topK: 3, out: join(dir, `e-${dim}-${seed}-${method.debias ?? 'dda'}-q`), log: (l) => lines.push(l) });
      expect(r.matrix.trainIds).toEqual(want.trainIds);
      expect(r.matrix.testIds).toEqual(want.testIds);
      return { r, lines };
    };
    // The estimate against the observed error, pooled over 3 seeds: the mean of (error / sd)² near 1.
    let z2 = 0;
    let count = 0;
    for (const seed of [1, 2, 3]) {
      const { r } = await dda(64, seed);
      r.matrix.values.forEach((v, k) => {
        const i = Math.floor(k / 3);
        const sd = r.projectionSd(i, k % 3);
        expect(sd).toBeGreaterThan(0);
        z2 += ((v - (want.values[k] as number)) / sd) ** 2;
        count++;
      });
    }
    const rmsZ = Math.sqrt(z2 / count);
    expect(rmsZ).toBeGreaterThan(1 / 3);
    expect(rmsZ).toBeLessThan(3);
    // A small --dim: warned and recorded; a large one: recorded, not warned.
    const small = await dda(64, 1);
    expect(small.r.projectionError.warning).not.toBeNull();
    expect(small.lines.join('\n')).toMatch(/warning: the projection's error is a large part of the DDA scores: estimated standard deviation \S+ \(median\) against a spread of \S+ .*build the indexes with a larger --dim .*or debias with fitted-beta or zscore/);
    const recorded = JSON.parse(readFileSync(join(dir, 'e-64-1-raw-q', 'query.json'), 'utf8')).projectionError;
    expect(recorded).toMatchObject({ propagated: true, sampledRows: 10, topK: 3, thresholds: { ratio: 0.25, top1Ratio: 0.5 } });
    expect(recorded.ratio).toBeCloseTo(recorded.medianSd / recorded.columnSd, 12);
    expect(recorded.ratio).toBeGreaterThan(0.25);
    const large = await dda(16384, 1);
    expect(large.r.projectionError.warning).toBeNull();
    expect(large.lines.join('\n')).not.toMatch(/projection's error/);
    expect(large.r.projectionError.medianSd).toBeLessThan(small.r.projectionError.medianSd / 4); // 1/√dim: 16 times smaller in expectation
  }, 600_000);
});

