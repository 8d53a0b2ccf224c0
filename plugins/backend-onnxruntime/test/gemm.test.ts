import { describe, expect, it } from 'vitest';
import { DdaError, SeededRandom, backends } from '@dda/core';
import {
  DEFAULT_BLOCK_BYTES, OnnxBlockedDot, cudaUnavailableReason, nvidiaGpuPresent, defaultBlockRows, measureMatMulPeak, rowArraySource, startOnnxRuntime, tryStartOnnxRuntime,
  type RowBlockSource,
} from '@dda/backend-onnxruntime';

function randomRows(rng: SeededRandom, n: number, dim: number): Float32Array[] {
  return Array.from({ length: n }, () => Float32Array.from({ length: dim }, () => rng.normal()));
}

/** Float64 reference and the Cauchy–Schwarz scale ‖a‖‖b‖ of every pair. */
function reference(train: Float32Array[], test: Float32Array[]): { exact: Float64Array; scale: Float64Array } {
  const norm = (r: Float32Array): number => Math.sqrt(r.reduce((s, x) => s + x * x, 0));
  const exact = new Float64Array(train.length * test.length);
  const scale = new Float64Array(train.length * test.length);
  train.forEach((a, i) => test.forEach((b, j) => {
    let s = 0;
    for (let d = 0; d < a.length; d++) s += a[d]! * b[d]!;
    exact[i * test.length + j] = s;
    scale[i * test.length + j] = norm(a) * norm(b);
  }));
  return { exact, scale };
}

const flat = (rows: Float32Array[], dim: number): Float32Array => {
  const f = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => f.set(r, i * dim));
  return f;
};

describe('onnxruntime backends', () => {
  it('registers onnxruntime-cuda and onnxruntime-cpu in the core registry', () => {
    expect(backends.has('onnxruntime-cuda')).toBe(true);
    expect(backends.has('onnxruntime-cpu')).toBe(true);
    expect(backends.entry('onnxruntime-cuda').priority).toBeGreaterThan(backends.entry('onnxruntime-cpu').priority);
  });

  it('falls back from CUDA to the CPU where CUDA cannot run, with the reason logged where there is an NVIDIA GPU', async () => {
    const lines: string[] = [];
    const b = await startOnnxRuntime(undefined, (l) => lines.push(l));
    const ort = b.ort;
    const why = cudaUnavailableReason(ort);
    if (why === undefined) {
      // A machine with the CUDA provider installed and a driver: the CUDA backend must be the one that started.
      expect(b.id).toBe('onnxruntime-cuda');
    } else {
      expect(b.id).toBe('onnxruntime-cpu');
      expect(lines).toEqual(nvidiaGpuPresent() ? [`backend onnxruntime-cuda unavailable: ${why}; using onnxruntime-cpu`] : []);
      await expect(backends.resolve({}, ['onnxruntime-cuda'])).rejects.toThrow(/onnxruntime-cuda: /);
    }
  });
});

describe('OnnxBlockedDot', () => {
  for (const packing of ['test', 'block'] as const) {
    it(`matches the float64 inner products for every block size, with and without a sink (${packing} packed)`, async () => {
      const backend = await startOnnxRuntime(['onnxruntime-cpu']);
      const g = await OnnxBlockedDot.create(backend, { packing });
      const rng = new SeededRandom(11);
      const dim = 3001;
      const train = randomRows(rng, 53, dim);
      const test = randomRows(rng, 7, dim);
      const { exact, scale } = reference(train, test);
      for (const blockRows of [1, 8, 53, 1000, undefined]) {
        const got = await g.scores(rowArraySource(train, dim), flat(test, dim), 7, blockRows === undefined ? {} : { blockRows });
        expect(got.length).toBe(53 * 7);
        for (let k = 0; k < got.length; k++) expect(Math.abs(got[k]! - exact[k]!)).toBeLessThan(1e-5 * scale[k]!);
        const sunk = new Float64Array(53 * 7);
        const starts: number[] = [];
        const none = await g.scores(rowArraySource(train, dim), flat(test, dim), 7, {
          ...(blockRows === undefined ? {} : { blockRows }),
          sink: (start, count, values) => {
            starts.push(start);
            expect(values.length).toBe(count * 7);
            values.forEach((v, k) => (sunk[start * 7 + k] = v));
          },
        });
        expect(none.length).toBe(0);
        expect(Array.from(sunk)).toEqual(Array.from(got));
        const b = blockRows ?? defaultBlockRows(dim);
        expect(starts).toEqual(Array.from({ length: Math.ceil(53 / b) }, (_, i) => i * b));
      }
      await g.release();
    });
  }

  it('stays finite and exact to float32 rounding across the whole float32 range (rows near 3e38, near 1e-38, subnormal, mixed, zero)', async () => {
    const backend = await startOnnxRuntime(['onnxruntime-cpu']);
    const rng = new SeededRandom(5);
    const dim = 301;
    // Row r: standard-normal entries times 2^shift, the shift chosen per row (or per entry for 'mixed').
    const shifts = [124, -128, 0, 60, -70, 'mixed', 'zero', -140] as const;
    const rowAt = (shift: (typeof shifts)[number]): Float32Array => Float32Array.from({ length: dim }, (_, d) => {
      if (shift === 'zero') return 0;
      const x = rng.normal();
      const s = shift === 'mixed' ? (d % 2 === 0 ? 124 : -126) : shift;
      return x * 2 ** s;
    });
    const train = Array.from({ length: 24 }, (_, i) => rowAt(shifts[i % shifts.length]!));
    const test = [124, -128, 0, 'mixed', -140].map((s) => rowAt(s as (typeof shifts)[number]));
    expect(train.every((r) => r.every((x) => Number.isFinite(x)))).toBe(true);
    const { exact, scale } = reference(train, test);
    expect(exact.every((x) => Number.isFinite(x))).toBe(true);
    for (const packing of ['test', 'block'] as const) {
      const g = await OnnxBlockedDot.create(backend, { packing });
      for (const blockRows of [1, 5, 24]) {
        const got = await g.scores(rowArraySource(train, dim), flat(test, dim), test.length, { blockRows });
        for (let k = 0; k < got.length; k++) {
          expect(Number.isFinite(got[k]!), `${packing} ${blockRows} ${k}`).toBe(true);
          expect(Math.abs(got[k]! - exact[k]!), `${packing} ${blockRows} ${k}: ${got[k]} vs ${exact[k]}`).toBeLessThanOrEqual(1e-5 * scale[k]!);
        }
        const sunk = new Float64Array(got.length);
        await g.scores(rowArraySource(train, dim), flat(test, dim), test.length, { blockRows, sink: (start, count, values) => sunk.set(values, start * test.length) });
        expect(Array.from(sunk)).toEqual(Array.from(got));
      }
      await g.release();
    }
  });

  it('reads contiguous rows without a copy and copies scattered ones', async () => {
    const dim = 4;
    const buffer = Float32Array.from({ length: 3 * dim }, (_, i) => i);
    const views = [0, 1, 2].map((i) => buffer.subarray(i * dim, (i + 1) * dim));
    const scratch = new Float32Array(3 * dim);
    const contiguous = await rowArraySource(views, dim).read(0, 3, scratch);
    expect(contiguous.buffer).toBe(buffer.buffer);
    const scattered = await rowArraySource([views[2]!, views[0]!], dim).read(0, 2, scratch);
    expect(scattered.buffer).toBe(scratch.buffer);
    expect(Array.from(scattered)).toEqual([8, 9, 10, 11, 0, 1, 2, 3]);
    expect(() => rowArraySource([Float32Array.of(1, 2)], 3)).toThrow(/row 0 has 2 entries, expected 3/);
  });

  it('streams a generated source block by block (rows never all in memory)', async () => {
    const backend = await startOnnxRuntime(['onnxruntime-cpu']);
    const g = await OnnxBlockedDot.create(backend);
    const dim = 257;
    const row = (i: number, d: number): number => Math.sin(i * 0.37 + d * 0.011);
    const reads: number[] = [];
    const source: RowBlockSource = {
      rows: 40,
      dim,
      read(start, count, scratch) {
        reads.push(count);
        for (let k = 0; k < count; k++) for (let d = 0; d < dim; d++) scratch[k * dim + d] = row(start + k, d);
        return scratch.subarray(0, count * dim);
      },
    };
    const test = Float32Array.from({ length: 2 * dim }, (_, k) => (k < dim ? 1 : (k % 3) - 1));
    const got = await g.scores(source, test, 2, { blockRows: 16 });
    expect(reads).toEqual([16, 16, 8]);
    const rows = Array.from({ length: 40 }, (_, i) => Float32Array.from({ length: dim }, (_, d) => row(i, d)));
    const { exact, scale } = reference(rows, [test.subarray(0, dim), test.subarray(dim)]);
    for (let k = 0; k < got.length; k++) expect(Math.abs(got[k]! - exact[k]!)).toBeLessThan(1e-5 * scale[k]!);
    await g.release();
  });

  it('rejects mismatched test matrices and bad block sizes', async () => {
    const g = await OnnxBlockedDot.create(await startOnnxRuntime(['onnxruntime-cpu']));
    const src = rowArraySource([Float32Array.of(1, 2, 3)], 3);
    await expect(g.scores(src, Float32Array.of(1, 2), 1)).rejects.toThrow(/expected 1 rows × 3/);
    await expect(g.scores(src, Float32Array.of(1, 2, 3), 1, { blockRows: 0 })).rejects.toThrow(DdaError);
    expect(Array.from(await g.scores(rowArraySource([], 3), Float32Array.of(1, 2, 3), 1))).toEqual([]);
    expect(defaultBlockRows(156_160)).toBe(Math.floor(DEFAULT_BLOCK_BYTES / (4 * 156_160)));
    expect(defaultBlockRows(1e9)).toBe(1);
    await g.release();
  });

  it('times a square MatMul for the GEMM peak', async () => {
    const peak = await measureMatMulPeak(await startOnnxRuntime(['onnxruntime-cpu']), 128, 2);
    expect(peak.n).toBe(128);
    expect(peak.gflops).toBeCloseTo((2 * 128 ** 3) / peak.seconds / 1e9, 6);
  });
});

describe('tryStartOnnxRuntime', () => {
  it('returns the CPU backend here, and the reason instead of throwing when nothing starts', async () => {
    const ok = await tryStartOnnxRuntime(() => {}, ['onnxruntime-cpu']);
    expect(ok.backend?.id).toBe('onnxruntime-cpu');
    const why = cudaUnavailableReason(ok.backend!.ort);
    if (why !== undefined) {
      const no = await tryStartOnnxRuntime(() => {}, ['onnxruntime-cuda']);
      expect(no).toEqual({ backend: null, reason: `onnxruntime-cuda: ${why}` });
    }
  });
});
