import { beforeAll, describe, expect, it } from 'vitest';
import { SeededRandom } from '@dda/core';
import { float32ToBf16Bits, float32ToF16Bits, widenToFloat32 } from '@dda/model';
import { GraphBuilder, ONNX_TYPE, startOnnxRuntime, type OnnxRuntimeBackend, type OrtTensor } from '@dda/backend-onnxruntime';

/**
 * Builds f(x, y) with `body`, runs the loss and its gradients in onnxruntime, and compares the
 * gradients with central finite differences of the loss computed in float64 by `reference`.
 */
async function checkGradients(
  backend: OnnxRuntimeBackend,
  shapes: { x: number[]; y: number[] },
  body: (g: GraphBuilder, x: string, y: string) => string,
  reference: (x: Float64Array, y: Float64Array) => number,
): Promise<void> {
  const g = new GraphBuilder('t');
  const x = g.input('x', shapes.x, ONNX_TYPE.float, true);
  const y = g.input('y', shapes.y, ONNX_TYPE.float, true);
  const loss = body(g, x, y);
  const grads = g.backward(loss, [x, y]);
  const model = g.model([g.output('loss', loss), g.output('dx', grads.get(x)!), g.output('dy', grads.get(y)!)]);
  const session = await backend.createSession(model);
  const rng = new SeededRandom(1);
  const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);
  const xs = Float32Array.from({ length: size(shapes.x) }, () => rng.normal());
  const ys = Float32Array.from({ length: size(shapes.y) }, () => rng.normal());
  const out: Record<string, OrtTensor> = await session.run({
    x: new backend.ort.Tensor('float32', xs, shapes.x),
    y: new backend.ort.Tensor('float32', ys, shapes.y),
  });
  expect((out.loss!.data as Float32Array)[0]).toBeCloseTo(reference(Float64Array.from(xs), Float64Array.from(ys)), 4);
  for (const [which, values, grad] of [['x', xs, out.dx!], ['y', ys, out.dy!]] as const) {
    expect(grad.dims).toEqual(which === 'x' ? shapes.x : shapes.y);
    for (let k = 0; k < values.length; k++) {
      const h = 1e-4;
      const at = (delta: number): number => {
        const a = Float64Array.from(xs);
        const b = Float64Array.from(ys);
        (which === 'x' ? a : b)[k]! += delta;
        return reference(a, b);
      };
      const fd = (at(h) - at(-h)) / (2 * h);
      expect(Math.abs((grad.data as Float32Array)[k]! - fd)).toBeLessThan(1e-3 * (1 + Math.abs(fd)));
    }
  }
  await session.release();
}

describe('GraphBuilder VJPs agree with finite differences', () => {
  let backend: OnnxRuntimeBackend;
  beforeAll(async () => {
    backend = await startOnnxRuntime(['onnxruntime-cpu']);
  });

  it('broadcasting add, sub, mul and a full sum', async () => {
    // loss = Σ (x + y) · (x − y) · y, x [2, 3], y [3] broadcast over rows.
    await checkGradients(
      backend,
      { x: [2, 3], y: [3] },
      (g, x, y) => g.sum(g.mul(g.mul(g.add(x, y), g.sub(x, y)), y), [0, 1], false),
      (x, y) => {
        let s = 0;
        for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) s += (x[i * 3 + j]! + y[j]!) * (x[i * 3 + j]! - y[j]!) * y[j]!;
        return s;
      },
    );
  });

  it('matmul, linear, transpose, reshape, expand, softmax, sigmoid, rsqrt and a kept mean', async () => {
    // lin = x·yᵀ; loss = Σ softmax rows of (linᵀ·x) · Σ sigmoid(linᵀ·lin) · rsqrt(mean(lin²) + 1).
    await checkGradients(
      backend,
      { x: [2, 3], y: [4, 3] },
      (g, x, y) => {
        const lin = g.linear(x, y); // x·yᵀ [2, 4]
        const m = g.matmul(g.transpose(lin, [1, 0]), x); // [4, 3]
        const s = g.reshape(g.softmax(g.reshape(m, [3, 4])), [2, 6]);
        const r = g.rsqrt(g.add(g.meanLast(g.mul(lin, lin)), g.scalar(1))); // [2, 1]
        const gram = g.matmul(g.transpose(lin, [1, 0]), lin); // [4, 4]
        const sg = g.sum(g.sigmoid(g.reshape(gram, [2, 8])), [1], true); // [2, 1]
        return g.sum(g.mul(g.mul(s, g.expand(sg, [2, 6])), g.expand(r, [2, 6])), [0, 1], false);
      },
      (x, y) => {
        const lin = [0, 1].map((i) => [0, 1, 2, 3].map((o) => [0, 1, 2].reduce((s, k) => s + x[i * 3 + k]! * y[o * 3 + k]!, 0)));
        const m = [0, 1, 2, 3].map((o) => [0, 1, 2].map((j) => [0, 1].reduce((s, i) => s + lin[i]![o]! * x[i * 3 + j]!, 0))).flat();
        const s: number[] = [];
        for (let r = 0; r < 3; r++) {
          const row = m.slice(r * 4, r * 4 + 4);
          const mx = Math.max(...row);
          const e = row.map((v) => Math.exp(v - mx));
          const z = e.reduce((a, b) => a + b, 0);
          s.push(...e.map((v) => v / z));
        }
        const gram = [0, 1, 2, 3].map((a) => [0, 1, 2, 3].map((b) => lin[0]![a]! * lin[0]![b]! + lin[1]![a]! * lin[1]![b]!)).flat();
        const sig = gram.map((v) => 1 / (1 + Math.exp(-v)));
        let total = 0;
        for (let i = 0; i < 2; i++) {
          const r = 1 / Math.sqrt(lin[i]!.reduce((a, v) => a + v * v, 0) / 4 + 1);
          const sigSum = sig.slice(i * 8, i * 8 + 8).reduce((a, b) => a + b, 0);
          for (let j = 0; j < 6; j++) total += s[i * 6 + j]! * sigSum * r;
        }
        return total;
      },
    );
  });

  it('gatherRows (repeated rows accumulate) and the weighted cross-entropy', async () => {
    const g = new GraphBuilder('ce');
    const x = g.input('x', [3, 4], ONNX_TYPE.float, true);
    const idx = g.input('idx', [4], ONNX_TYPE.int64);
    const targets = g.input('targets', [4], ONNX_TYPE.int64);
    const w = g.input('w', [4, 1]);
    const loss = g.crossEntropy(g.gatherRows(x, idx), targets, w);
    const dx = g.backward(loss, [x]).get(x)!;
    const session = await backend.createSession(g.model([g.output('loss', loss), g.output('dx', dx)]));
    const xs = Float32Array.from({ length: 12 }, (_, k) => Math.sin(k + 1));
    const rows = [2, 0, 2, 1];
    const tg = [1, 3, 0, 2];
    const ws = [0.5, 0.25, 0.25, 0];
    const ref = (xv: Float64Array): number => {
      let s = 0;
      rows.forEach((r, p) => {
        const row = [0, 1, 2, 3].map((v) => xv[r * 4 + v]!);
        const lse = Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
        s -= ws[p]! * (row[tg[p]!]! - lse);
      });
      return s;
    };
    const out = await session.run({
      x: new backend.ort.Tensor('float32', xs, [3, 4]),
      idx: new backend.ort.Tensor('int64', BigInt64Array.from(rows.map(BigInt)), [4]),
      targets: new backend.ort.Tensor('int64', BigInt64Array.from(tg.map(BigInt)), [4]),
      w: new backend.ort.Tensor('float32', Float32Array.from(ws), [4, 1]),
    });
    expect((out.loss!.data as Float32Array)[0]).toBeCloseTo(ref(Float64Array.from(xs)), 5);
    for (let k = 0; k < 12; k++) {
      const a = Float64Array.from(xs);
      const b = Float64Array.from(xs);
      a[k]! += 1e-5;
      b[k]! -= 1e-5;
      expect((out.dx!.data as Float32Array)[k]).toBeCloseTo((ref(a) - ref(b)) / 2e-5, 4);
    }
    await session.release();
  });

  it('backward needs a scalar loss', () => {
    const g = new GraphBuilder('bad');
    const x = g.input('x', [2], ONNX_TYPE.float, true);
    expect(() => g.backward(g.mul(x, x), [x])).toThrow(/must be a scalar/);
  });
});

// A large narrow matrix (a real vocabulary's head) is read by linear() in parts: forward by rows,
// backward by columns (GraphBuilder's decodePartBytes, set low here to split a 50 × 12 matrix).
describe('linear over a narrow matrix decoded in parts', () => {
  let backend: OnnxRuntimeBackend;
  beforeAll(async () => {
    backend = await startOnnxRuntime(['onnxruntime-cpu']);
  });

  it('gives the whole decode\'s outputs and input gradients bit for bit (scaled f16 and the bf16 table), and the float64 values', async () => {
    const rng = new SeededRandom(3);
    const [V, H, N] = [50, 12, 3];
    const xs = Float32Array.from({ length: N * H }, () => rng.normal());
    const values = Float32Array.from({ length: V * H }, () => rng.normal() * 0.05);
    for (const format of ['f16', 'bf16'] as const) {
      const scale = format === 'f16' ? 2 ** -4 : 1;
      const bits = Uint16Array.from(values, (v) => (format === 'f16' ? float32ToF16Bits(v / scale) : float32ToBf16Bits(v)));
      const stored = Float64Array.from(widenToFloat32(new Uint8Array(bits.buffer), format === 'f16' ? 'F16' : 'BF16'), (v) => v * scale);
      const run = async (partBytes?: number): Promise<{ y: Float32Array; dx: Float32Array; slices: number }> => {
        const g = new GraphBuilder('t', partBytes === undefined ? {} : { decodePartBytes: partBytes });
        const x = g.input('x', [N, H], ONNX_TYPE.float, true);
        const w = g.narrowInput('w', [V, H], format, scale);
        const y = g.linear(x, w);
        const loss = g.sum(g.mul(y, y), [0, 1], false);
        const dx = g.backward(loss, [x]).get(x) as string;
        const model = g.model([g.output('y', y), g.output('dx', dx)]);
        const session = await backend.createSession(model);
        const feeds: Record<string, OrtTensor> = { x: new backend.ort.Tensor('float32', xs, [N, H]) };
        for (const i of model.graph.inputs) if (i.name !== 'x') feeds[i.name] = new backend.ort.Tensor(format === 'f16' ? 'float16' : 'uint16', bits, [V, H]);
        const out = await session.run(feeds);
        await session.release();
        return { y: out.y!.data as Float32Array, dx: out.dx!.data as Float32Array, slices: model.graph.nodes.filter((n) => n.opType === 'Slice').length };
      };
      const whole = await run();
      const parts = await run(400); // 2,400 bytes as float32: 6 parts of 9 rows (the last 5), 6 of 2 columns
      expect(whole.slices).toBe(0);
      expect(parts.slices).toBe(12);
      expect(Buffer.from(parts.y.buffer).equals(Buffer.from(whole.y.buffer))).toBe(true);
      expect(Buffer.from(parts.dx.buffer).equals(Buffer.from(whole.dx.buffer))).toBe(true);
      // y = x wᵀ, d(Σ y²)/dx = 2 y w, in float64 from the stored values.
      for (let i = 0; i < N; i++) {
        for (let v = 0; v < V; v++) {
          let s = 0;
          for (let h = 0; h < H; h++) s += xs[i * H + h]! * stored[v * H + h]!;
          expect(Math.abs(parts.y[i * V + v]! - s)).toBeLessThan(1e-5);
        }
        for (let h = 0; h < H; h++) {
          let s = 0;
          for (let v = 0; v < V; v++) s += 2 * parts.y[i * V + v]! * stored[v * H + h]!;
          expect(Math.abs(parts.dx[i * H + h]! - s)).toBeLessThan(1e-4);
        }
      }
    }
  });
});
