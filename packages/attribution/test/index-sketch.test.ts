import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { float32ToF16Bits, widenToFloat32 } from '@dda/model';
import { INDEX_FILES, SKETCH_FILES, buildGradientIndex, buildIndexSketch, queryGradientIndex, queryGradientIndexesDda, readIndexHeader, type IndexBuildOptions } from '@dda/attribution';
import { SeededRandom } from '@dda/core';
import { approximateIndexTop, sketchMatrix, sketchOf, type SketchHeader } from '../src/index-sketch.js';
import type { IndexHeader } from '../src/gradient-index.js';
import { makeUserRun, type UserRun } from './fixtures/user-run.js';

// The sketch of an index and the approximate query on it (index-sketch.ts), on the tiny user run:
// 40 training samples, 4 queries (training samples t0, t3, t6, t9's prompt and response), an index
// of k = 512 at checkpoint-100, sketches of s = 32.
let dir: string;
let run: UserRun;
let idx: string;
const K = 512;
const S = 32;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dda-sketch-'));
  run = makeUserRun(join(dir, 'user'), 40, 4);
  idx = join(dir, 'idx');
  await build(idx);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const build = (out: string, o: Partial<IndexBuildOptions> = {}): ReturnType<typeof buildGradientIndex> =>
  buildGradientIndex({ base: run.base, checkpoints: [run.run], train: run.train, checkpoint: 'checkpoint-100', out, dim: K, seed: 1, blockRows: 8, ...o });

/** sketch.f16 of `d`: its float16 bits and values, [count][s]. */
const sketchRows = (d: string, s: number): { bits: Uint16Array; values: Float32Array }[] => {
  const b = new Uint8Array(readFileSync(join(d, SKETCH_FILES.rows)));
  const bits = new Uint16Array(b.buffer, b.byteOffset, b.length / 2);
  const values = widenToFloat32(b, 'F16');
  return Array.from({ length: bits.length / s }, (_, i) => ({ bits: bits.slice(i * s, (i + 1) * s), values: values.slice(i * s, (i + 1) * s) }));
};

describe('dda index sketch', () => {
  it('holds T·row/√s of every index row in float16: on the kernel within float16 rounding of the float64 loop, the loop itself (rounded to float16) under engine js; the same command again does nothing, another seed replaces it', async () => {
    const lines: string[] = [];
    const sh = await buildIndexSketch({ index: idx, dim: S, seed: 2, log: (l) => lines.push(l) });
    expect(sh).toMatchObject({ dim: S, seed: 2, count: 40, indexDim: K, indexRowsSha256: readIndexHeader(idx).rowsSha256 });
    expect(sh.how).toMatch(/^float32 GEMM on onnxruntime/);
    const h = readIndexHeader(idx);
    const rows = widenToFloat32(new Uint8Array(readFileSync(join(idx, INDEX_FILES.rows))), 'F16');
    const t = sketchMatrix(S, K, 2);
    const got = sketchRows(idx, S);
    expect(got).toHaveLength(h.count);
    got.forEach((g, i) => {
      const e = sketchOf(t, S, rows.subarray(i * K, (i + 1) * K));
      const scale = Math.sqrt(e.reduce((a, x) => a + x * x, 0));
      expect(scale).toBeGreaterThan(0);
      // float32 accumulation (1e-6 of the norm) then float16 rounding (half a step: 2⁻¹¹ relative)
      e.forEach((x, a) => expect(Math.abs((g.values[a] as number) - x), `row ${i} entry ${a}`).toBeLessThanOrEqual(Math.abs(x) * 2 ** -11 + 1e-6 * scale));
    });
    // Again: found, not rewritten.
    const bytes = readFileSync(join(idx, SKETCH_FILES.rows));
    await buildIndexSketch({ index: idx, dim: S, seed: 2, log: (l) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/has this sketch already \(32 dimensions, seed 2, of these rows\)/);
    expect(readFileSync(join(idx, SKETCH_FILES.rows)).equals(bytes)).toBe(true);
    // The float64 loop, in a copy of the index.
    const js = join(dir, 'idx-js');
    cpSync(idx, js, { recursive: true });
    for (const f of Object.values(SKETCH_FILES)) rmSync(join(js, f), { force: true }); // (else the copied sketch is found, of the same rows)
    await buildIndexSketch({ index: js, dim: S, seed: 2, engine: 'js' });
    sketchRows(js, S).forEach((g, i) => {
      const e = sketchOf(t, S, rows.subarray(i * K, (i + 1) * K));
      e.forEach((x, a) => expect(g.bits[a]).toBe(float32ToF16Bits(x)));
    });
    // Another seed: another sketch, and its header says so.
    const other = await buildIndexSketch({ index: js, dim: S, seed: 3 });
    expect(other.seed).toBe(3);
    expect(readFileSync(join(js, SKETCH_FILES.rows)).equals(bytes)).toBe(false);
    await expect(buildIndexSketch({ index: js, dim: 0 })).rejects.toThrow(/--dim must be a positive integer, got 0/);
    await expect(buildIndexSketch({ index: js, dim: 33 })).rejects.toThrow(/--dim must be even, got 33/);
  }, 300_000);
});

describe('dda index query --candidates (approximate)', () => {
  it('with every row a candidate gives the exact query\'s top k and scores, bit for bit, for inner product and cosine; with fewer, each score is its row\'s exact score, in exact order, and query.json says it is approximate', async () => {
    await buildIndexSketch({ index: idx, dim: S, seed: 2 });
    for (const normalize of [false, true]) {
      const exact = await queryGradientIndex({ index: idx, queries: run.queries, topK: 40, normalize });
      const exact5 = await queryGradientIndex({ index: idx, queries: run.queries, topK: 5, normalize, out: join(dir, `exact-${normalize}`) });
      const all = await queryGradientIndex({ index: idx, queries: run.queries, topK: 5, normalize, candidates: 40, out: join(dir, `all-${normalize}`) });
      for (const x of Object.values(JSON.parse(readFileSync(join(dir, `all-${normalize}`, 'query.json'), 'utf8')).search.checks)) expect(x).toEqual({ scored: 40, missedByFirst: 0, missedBySecond: 0, flagged: false });
      expect(all.tops.map((q) => q.top.map((t) => [t.trainId, t.score]))).toEqual(exact5.tops.map((q) => q.top.map((t) => [t.trainId, t.score])));
      const lines: string[] = [];
      const few = await queryGradientIndex({ index: idx, queries: run.queries, topK: 5, normalize, candidates: 8, out: join(dir, `few-${normalize}`), log: (l) => lines.push(l) });
      expect(lines.join('\n')).toMatch(/approximate search: the sketch of 40 rows scanned in [\d.]+ s, then \d+ rows read and scored exactly/);
      expect(lines.join('\n')).toMatch(/index: the sketch's two halves (agree on every query's top 5|disagree on \d of 4 queries)/);
      // The float64 loop over the sketch picks the same candidates here, so the same answer.
      const fewJs = await queryGradientIndex({ index: idx, queries: run.queries, topK: 5, normalize, candidates: 8, scanEngine: 'js' });
      expect(fewJs.tops.map((q) => q.top.map((t) => [t.trainId, t.score]))).toEqual(few.tops.map((q) => q.top.map((t) => [t.trainId, t.score])));
      few.tops.forEach((q, j) => {
        const scoreOf = new Map((exact.tops[j]?.top ?? []).map((t) => [t.trainId, t.score]));
        expect(q.top).toHaveLength(5);
        for (const t of q.top) expect(t.score).toBe(scoreOf.get(t.trainId));
        const scores = q.top.map((t) => t.score);
        expect(scores).toEqual([...scores].sort((a, b) => b - a));
        // Each query is a training sample's own text: its row is the best by far, and the sketch finds it.
        expect(q.top[0]?.trainId).toBe(exact.tops[j]?.top[0]?.trainId);
      });
      const summary = JSON.parse(readFileSync(join(dir, `few-${normalize}`, 'query.json'), 'utf8'));
      expect(summary.search).toMatchObject({ exact: false, candidates: 8, sketch: { dim: S, seed: 2 } });
      expect(Object.keys(summary.search.checks)).toEqual(['q0', 'q1', 'q2', 'q3']);
      for (const x of Object.values(summary.search.checks) as { scored: number; missedByFirst: number; missedBySecond: number; flagged: boolean }[]) {
        expect(x.scored).toBeGreaterThanOrEqual(8);
        expect(x.scored).toBeLessThanOrEqual(24);
        expect(x.flagged).toBe(x.missedByFirst + x.missedBySecond > 0);
      }
      expect(summary.search.note).toMatch(/approximate: .* a row none of the three ranks among its 8 best is missed/);
      expect(JSON.parse(readFileSync(join(dir, `exact-${normalize}`, 'query.json'), 'utf8')).search).toMatchObject({ exact: true });
    }
  }, 300_000);

  it('compares its two halves: a half that ranks the rows backwards finds none of the top k, the other (with the whole sketch) finds them all, and the query says so; both backwards miss them; the rows returned are always scored exactly', async () => {
    // A synthetic index of 64 rows × 32 and its sketch (s = 8: halves of 4), written by hand; q is one query.
    const d = join(dir, 'synthetic');
    mkdirSync(d, { recursive: true });
    const [n, k, s] = [64, 32, 8];
    const rng = new SeededRandom(9);
    const q = Float64Array.from({ length: k }, () => rng.normal());
    const rows = Array.from({ length: n }, () => Float64Array.from({ length: k }, () => rng.normal()));
    // Rows 5 and 17 lie along q: the top 2 by far, which any half that is not backwards ranks first.
    rows[5] = Float64Array.from(q, (x) => 2 * x);
    rows[17] = Float64Array.from(q, (x) => 1.8 * x + 0.1);
    const widened = rows.map((r) => Float64Array.from(r, (x) => widenToFloat32(new Uint8Array(new Uint16Array([float32ToF16Bits(x)]).buffer), 'F16')[0] as number));
    writeFileSync(join(d, INDEX_FILES.rows), new Uint16Array(rows.flatMap((r) => Array.from(r, float32ToF16Bits))));
    const exact = widened.map((r, i) => ({ i, s: r.reduce((a, x, c) => a + x * (q[c] as number), 0) })).sort((a, b) => b.s - a.s);
    const t = sketchMatrix(s, k, 0);
    const header = { count: n, dim: k, trainIds: rows.map((_, i) => `r${i}`) } as unknown as IndexHeader;
    const sketch = { format: 'dda-index-sketch-v1', dim: s, seed: 0, kind: 'rademacher', count: n, indexDim: k } as unknown as SketchHeader;
    /** The query with each half's sketch multiplied by its sign (−1: that half ranks the rows backwards). */
    const run = async (signs: [number, number]): Promise<Awaited<ReturnType<typeof approximateIndexTop>>> => {
      writeFileSync(join(d, SKETCH_FILES.rows), new Uint16Array(widened.flatMap((r) => Array.from(sketchOf(t, s, r), (x, a) => float32ToF16Bits(signs[a < s / 2 ? 0 : 1] * x)))));
      return approximateIndexTop({ index: d, header, sketch, candidates: 4, queryRows: [q], normalize: false, topK: 2, chunkRows: 16, label: 'synthetic', refuse: () => { throw new Error('non-finite'); } });
    };
    const top2 = exact.slice(0, 2).map((e) => e.i);
    expect(top2).toEqual([5, 17]);
    const firstBackwards = await run([-1, 1]);
    expect(firstBackwards.best[0]?.map((b) => b.i)).toEqual(top2);
    expect(firstBackwards.checks[0]).toMatchObject({ missedByFirst: 2, missedBySecond: 0 });
    const bothBackwards = await run([-1, -1]);
    // Both halves (and so the whole sketch) wrong alike: the true top 2 are missed.
    for (const b of bothBackwards.best[0] ?? []) expect(b.s).toBe(exact.find((e) => e.i === b.i)?.s);
    expect(bothBackwards.best[0]?.some((b) => top2.includes(b.i))).toBe(false);
    const forwards = await run([1, 1]);
    expect(forwards.best[0]?.map((b) => b.i)).toEqual(top2);
    expect(forwards.checks[0]).toMatchObject({ missedByFirst: 0, missedBySecond: 0 });
  }, 60_000);

  it('is refused without a sketch (naming the command), with fewer candidates than --top-k, over several indexes, with a sketch of other rows (the index built again), and with a sketch file changed since', async () => {
    const bare = join(dir, 'bare');
    cpSync(idx, bare, { recursive: true });
    for (const f of Object.values(SKETCH_FILES)) rmSync(join(bare, f), { force: true });
    await expect(queryGradientIndex({ index: bare, queries: run.queries, candidates: 20 })).rejects.toThrow(/no sketch \(sketch\.json\); an approximate query \(--candidates\) scans the sketch.*dda index sketch --index /s);
    await buildIndexSketch({ index: idx, dim: S, seed: 2 });
    await expect(queryGradientIndex({ index: idx, queries: run.queries, topK: 10, candidates: 5 })).rejects.toThrow(/--candidates must be an integer of at least --top-k \(10\), got 5/);
    await expect(queryGradientIndexesDda({ indexes: [idx, bare], queries: run.queries, candidates: 20 })).rejects.toThrow(/--candidates \(the approximate search\) takes one --index/);
    // Another index (another projection seed) with this one's sketch copied in.
    const rebuilt = join(dir, 'rebuilt');
    await build(rebuilt, { seed: 4 });
    for (const f of [SKETCH_FILES.rows, SKETCH_FILES.header]) cpSync(join(idx, f), join(rebuilt, f));
    await expect(queryGradientIndex({ index: rebuilt, queries: run.queries, candidates: 20 })).rejects.toThrow(/sketch\.json was made from other index rows than .*gradients\.f16 now holds .*the index was built again since/);
    // The sketch file changed after it was made (its marker no longer matches: hashed again).
    const changed = join(dir, 'changed');
    cpSync(idx, changed, { recursive: true });
    const b = readFileSync(join(changed, SKETCH_FILES.rows));
    b[100] = (b[100] as number) ^ 1;
    writeFileSync(join(changed, SKETCH_FILES.rows), b);
    await expect(queryGradientIndex({ index: changed, queries: run.queries, candidates: 20 })).rejects.toThrow(/sketch\.f16 is not the file its sketch was made with: SHA-256 [0-9a-f]{16}…, sketch\.json records/);
  }, 300_000);
});
