import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SeededRandom, dotKernels } from '@dda/core';
import { float32ToF16Bits } from '@dda/model';
import { ensurePlugins } from '@dda/attribution';
import { scanIndexTop, type IndexScanOptions } from '../src/index-scan.js';

// The top-k scan of `dda index query` on a half-float kernel (onnxruntime's Cast + Gemm, float32
// accumulation, the rows that can reach the top k scored again in float64) against the float64
// loop over every row: the same rows, scores (bit for bit) and order of ties, on rows made to be
// hard for float32: exact duplicates (ties), rows one float16 step apart, a zero row, large and
// tiny rows, in chunks that do not divide the row count.
const DIM = 96;
let dir: string;
let path: string;
let rows: Uint16Array;
let n: number;
let queries: Float64Array[];

beforeAll(async () => {
  await ensurePlugins();
  dir = mkdtempSync(join(tmpdir(), 'dda-index-scan-'));
  const rng = new SeededRandom(5);
  const list: number[][] = [];
  // (entries 0 and 1 are zero but in the rows with large entries below)
  const random = (scale: number): number[] => Array.from({ length: DIM }, (_, x) => (x < 2 ? 0 : rng.normal() * scale));
  for (let i = 0; i < 150; i++) list.push(random(0.05));
  for (let i = 0; i < 10; i++) list.push([...(list[i * 7] as number[])]); // exact duplicates of earlier rows: ties
  for (let i = 0; i < 10; i++) {
    // one float16 step away from an earlier row in one entry: scores that float32 may order wrongly
    const r = [...(list[i * 11 + 3] as number[])];
    r[i] = (r[i] as number) * (1 + 2 ** -10);
    list.push(r);
  }
  list.push(new Array<number>(DIM).fill(0)); // a zero row
  list.push(random(300)); // a large row
  list.push(random(1e-6)); // a tiny row (float16 subnormals)
  // Rows with two large entries that cancel for the last query (q₀ ≈ q₁ but q₀ is not a float32):
  // rounding q₀ to float32 shifts these rows' float32 scores by about 60000·3e-8 against the
  // float64 loop's, as much as the spread of their other entries' scores, so float32 alone orders
  // them wrongly against the rows without large entries.
  for (let i = 0; i < 40; i++) list.push([60000, -60000, ...Array.from({ length: DIM - 2 }, () => rng.normal() * 0.05)]);
  n = list.length;
  rows = new Uint16Array(n * DIM);
  list.forEach((r, i) => r.forEach((v, x) => (rows[i * DIM + x] = float32ToF16Bits(v))));
  path = join(dir, 'gradients.f16');
  writeFileSync(path, rows);
  queries = [0, 11 * 3 + 3, 42].map((i) => Float64Array.from({ length: DIM }, (_, x) => (list[i] as number[])[x] as number + rng.normal() * 0.01));
  queries.push(Float64Array.from({ length: DIM }, () => rng.normal() * 1e-3));
  queries.push(new Float64Array(DIM)); // a zero query: every cosine 0, every inner product 0
  queries.push(Float64Array.from({ length: DIM }, (_, x) => (x === 0 ? 1 + 3e-8 : x === 1 ? 1 : rng.normal() * 0.01)));
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Row i's entry x as a number (its float16 widened). */
function rowValue(i: number, x: number): number {
  const h = rows[i * DIM + x] as number;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  const v = e === 0 ? 2 ** -14 * (f / 1024) : 2 ** (e - 15) * (1 + f / 1024);
  return h & 0x8000 ? -v : v;
}

const refuse: IndexScanOptions['refuse'] = (i, _row, score) => {
  throw new Error(`row ${i}: non-finite score ${score}`);
};
const scan = (o: Partial<IndexScanOptions>): ReturnType<typeof scanIndexTop> =>
  scanIndexTop({ rowsPath: path, count: n, dim: DIM, queryRows: queries, normalize: false, topK: 10, chunkRows: 17, label: 'scan', refuse, ...o });

describe('the index scan on a half-float kernel', () => {
  it('finds the top k of the float64 loop: the same rows, scores bit for bit and ties (inner product and cosine, several k and chunk sizes)', async () => {
    expect(dotKernels.ids()).toContain('onnxruntime');
    for (const normalize of [false, true]) {
      for (const topK of [1, 10, 37, n]) {
        for (const chunkRows of [17, 64, 1000]) {
          const js = await scan({ normalize, topK, chunkRows, engine: 'js' });
          const auto = await scan({ normalize, topK, chunkRows, engine: 'auto' });
          expect(auto.how).toMatch(/GEMM .*float16 rows/);
          expect(js.how).toMatch(/float64 JavaScript loop/);
          expect(auto.best).toEqual(js.best); // toEqual compares numbers with Object.is: bit for bit
          expect(js.rescored).toBe(n * queries.length);
          if (topK < n / 4) expect(auto.rescored).toBeLessThan(js.rescored);
        }
      }
    }
    // Float32 alone would not do: the last query's top 10 by the kernel's float32 scores differs from the float64 loop's.
    const last = queries.at(-1) as Float64Array;
    const f32 = Float32Array.from(last);
    const score32 = (i: number): number => {
      let s = Math.fround(0);
      for (let x = 0; x < DIM; x++) s = Math.fround(s + Math.fround((rowValue(i, x)) * (f32[x] as number)));
      return s;
    };
    const order32 = Array.from({ length: n }, (_, i) => i).sort((a, b) => score32(b) - score32(a) || a - b).slice(0, 10);
    const exact = (await scan({ topK: 10, engine: 'js', queryRows: [last] })).best[0]?.map((e) => e.i);
    expect(order32).not.toEqual(exact);
    // The ties are real: a duplicate row scores exactly as its original, and the earlier row comes first.
    const all = await scan({ topK: n, engine: 'js' });
    const first = all.best[0] ?? [];
    const at = (i: number): number => first.findIndex((e) => e.i === i);
    expect(first[at(150)]?.s).toBe(first[at(0)]?.s);
    expect(at(0)).toBeLessThan(at(150));
  }, 120_000);

  it('refuses a row with an infinity on either path', async () => {
    const bad = rows.slice();
    bad[40 * DIM + 5] = 0x7c00; // +inf in row 40
    const badPath = join(dir, 'bad.f16');
    writeFileSync(badPath, bad);
    for (const engine of ['js', 'auto'] as const) {
      await expect(scanIndexTop({ rowsPath: badPath, count: n, dim: DIM, queryRows: queries.slice(0, 2), normalize: false, topK: 3, chunkRows: 32, label: 'scan', refuse, engine })).rejects.toThrow(/row 40: non-finite/);
    }
  });
});
