/**
 * A graph builder with reverse-mode differentiation for the ONNX ops the decoder uses. Every
 * forward op emits its ONNX node and, when an input depends on a differentiated input, records a
 * hand-written vector-Jacobian product (VJP) that emits the backward nodes. Shapes are static
 * (numbers), so broadcasting is resolved when the graph is built.
 */
import { DdaError } from '@dda/core';
import { ONNX_TYPE, attr, type OnnxAttributeValue, type OnnxElemType, type OnnxModel, type OnnxTensor, type OnnxValueInfo } from './onnx-model.js';
import type { OnnxNode } from './onnx-model.js';
import { DECODE_ALIAS, bf16Table, type NarrowFormat } from './narrow-weights.js';

type Shape = readonly number[];
/** A VJP: given the output's gradient, the gradient contributions of the inputs that need one. */
type Vjp = (dy: string, needs: (input: string) => boolean) => [input: string, grad: string][];
/**
 * One entry of the tape: an op's VJP, or a segment recorded by {@link GraphBuilder.recomputed}
 * (its input `x` and the function `f` that builds it, run again in the backward pass).
 */
type TapeEntry = { readonly out: string; readonly vjp: Vjp } | { readonly out: string; readonly segment: { readonly x: string; readonly f: (x: string) => string; readonly inner: readonly string[] } };

function broadcastShapes(a: Shape, b: Shape, what: string): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new DdaError(`${what}: shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`, 'fix the graph construction');
    out.push(Math.max(x, y));
  }
  return out;
}

/**
 * Float32 bytes of a decoded narrow matrix above which {@link GraphBuilder.linear} decodes it in
 * parts (64 MiB): Qwen2-0.5B's tied 151,936 × 896 head (0.54 GB as float32, 1.09 GB decoded
 * and scaled in the backward pass) in 9 parts, TinyLlama-1.1B's 32,000 × 2,048 head in 4; no
 * layer matrix of the supported families at their published sizes reaches it.
 */
export const DECODE_PART_BYTES = 64 * 2 ** 20;

/**
 * The parts [start, end) of `n` lines of `other` entries each, so that a part's float32 decode
 * (lines × other × 4 bytes) stays within `partBytes` (default {@link DECODE_PART_BYTES}):
 * ⌈n·other·4 / partBytes⌉ parts of ⌈n / parts⌉ lines (the last smaller; at most n parts); one
 * part [0, n) when the whole fits.
 */
export function decodeParts(n: number, other: number, partBytes = DECODE_PART_BYTES): [number, number][] {
  const count = Math.min(n, Math.ceil((n * other * 4) / partBytes));
  if (count <= 1) return [[0, n]];
  const size = Math.ceil(n / count);
  const parts: [number, number][] = [];
  for (let a = 0; a < n; a += size) parts.push([a, Math.min(n, a + size)]);
  return parts;
}

/** Builds one ONNX graph; see the module doc. */
export class GraphBuilder {
  private readonly nodes: OnnxNode[] = [];
  private readonly initializers: OnnxTensor[] = [];
  private readonly inputs: OnnxValueInfo[] = [];
  private readonly shapes = new Map<string, number[]>();
  private readonly dependsOnWrt = new Set<string>();
  private tape: TapeEntry[] = [];
  private readonly scalars = new Map<number, string>();
  /** Narrow weight inputs ({@link narrowInput}): format, shape, decodes emitted so far, and the one decode of a 1-D weight. */
  private readonly narrow = new Map<string, { readonly format: NarrowFormat; readonly scale: number; readonly shape: number[]; decodes: number; once?: string }>();
  private bf16TableValue: string | undefined;
  /** Set while a decode emits the nodes that may read a narrow input. */
  private decoding = false;
  /**
   * The decodes' nodes, placed before every other node of the model (they read only graph inputs,
   * the table and each other, so the order stays topological). onnxruntime's default execution
   * order is a depth-first walk from the outputs that visits a node's inputs in decreasing node
   * index and runs each node once its inputs have run: a decode with a lower index than the other
   * input of its reader (the activation) therefore runs just before the reader, after the whole
   * computation of the activation, instead of before it (measured: with the decodes in place, the
   * decoded matrices of later layers were computed early and all held at once).
   */
  private readonly decodeNodes: OnnxNode[] = [];
  private negativeZero: string | undefined;
  private recording = true;
  private counter = 0;
  private recomputeDepth = 0;

  /**
   * @param o.decodePartBytes - Float32 bytes above which a narrow matrix read by {@link linear} is
   *   decoded in parts (default {@link DECODE_PART_BYTES}; tests set it low to split small matrices).
   */
  constructor(readonly name: string, private readonly o: { readonly decodePartBytes?: number } = {}) {}

  private fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  /** Static shape of a value. */
  shape(v: string): number[] {
    const s = this.shapes.get(v);
    if (s === undefined) throw new DdaError(`graph '${this.name}': unknown value '${v}'`, 'define it first');
    return s;
  }

  /** A graph input; `differentiable` inputs are what {@link backward} differentiates against. */
  input(name: string, shape: Shape, elemType: OnnxElemType = ONNX_TYPE.float, differentiable = false): string {
    this.inputs.push({ name, elemType, shape });
    this.shapes.set(name, [...shape]);
    if (differentiable) this.dependsOnWrt.add(name);
    return name;
  }

  /**
   * A frozen weight fed as its stored 16-bit patterns (@dda/model's BF16 bits as UINT16, F16 as
   * FLOAT16; see narrow-weights.ts): half the bytes of float32. It is not a float32 value: ops
   * read it through {@link decode} ({@link linear} and {@link gather} do so themselves), and
   * any other op reading it is refused. Not differentiable. An f16 weight's values are multiplied
   * by `scale` (a power of two: exact) after the Cast when it is not 1 (narrow-weights.ts's bf16AsScaledF16).
   */
  narrowInput(name: string, shape: Shape, format: NarrowFormat, scale = 1): string {
    if (format === 'bf16' && scale !== 1) throw new DdaError(`graph '${this.name}': a bf16 weight has no scale`, 'scale f16 weights only');
    this.input(name, shape, format === 'bf16' ? ONNX_TYPE.uint16 : ONNX_TYPE.float16);
    this.narrow.set(name, { format, scale, shape: [...shape], decodes: 0 });
    return name;
  }

  /** Whether `v` is a {@link narrowInput}. */
  isNarrow(v: string): boolean {
    return this.narrow.has(v);
  }

  /**
   * The float32 values of weight `w`: `w` itself unless it is a {@link narrowInput}, else a
   * decode of it, exact (bf16: Cast to int32, then Gather from the 65,536-entry table of
   * narrow-weights.ts's bf16Table; f16: Cast to float32). Every call on a weight of rank ≥ 2
   * emits a fresh decode reading its own graph input (the first call `w`, then
   * `w@decode1`, `w@decode2`, ..., which the caller feeds the same tensor as `w`): two decodes
   * of one weight never share an input, so onnxruntime's common-subexpression elimination cannot
   * merge them into one float32 tensor kept alive from the forward pass to the backward pass, and
   * each decoded matrix lives only from its decode to its last reader (at most a layer's at once,
   * where the readers are one layer's ops). A 1-D weight (norms, biases: a few KB) is decoded
   * once per graph and reused.
   */
  decode(w: string): string {
    const n = this.narrow.get(w);
    if (n === undefined) return w;
    if (n.shape.length < 2 && n.once !== undefined) return n.once;
    const out = this.decodeBits(this.decodeSource(w), n.format, n.shape, n.scale);
    if (n.shape.length < 2) n.once = out;
    return out;
  }

  /** The input a new decode of narrow weight `w` reads: `w` the first time, then its next alias `w@decode<k>` (see {@link decode}). */
  private decodeSource(w: string): string {
    const n = this.narrow.get(w) as NonNullable<ReturnType<typeof this.narrow.get>>;
    const src = n.decodes === 0 ? w : this.input(`${w}${DECODE_ALIAS}${n.decodes}`, n.shape, n.format === 'bf16' ? ONNX_TYPE.uint16 : ONNX_TYPE.float16);
    n.decodes++;
    return src;
  }

  /**
   * A matrix operand for Gemm: `[values, alpha]` with Gemm(…, values, …, alpha) = Gemm of
   * {@link decode}(w). For a scaled f16 weight (scale ≠ 1) the values are the Cast's output alone
   * and the power-of-two scale becomes the Gemm's alpha, so the decode holds one float32 copy of
   * the matrix instead of two (the Cast's output and the Mul's: onnxruntime does not multiply in
   * place), in forward Gemms only (see {@link linear}; a matrix above {@link DECODE_PART_BYTES},
   * such as Qwen2-0.5B's tied 151,936 × 896 head, is decoded in parts there, each part's Cast
   * taking the scale as its Gemm's alpha the same way). The same bits: MLAS accumulates the products of the unscaled values and multiplies the sums by
   * alpha, and scaling by a power of two commutes with float32 rounding (only a product or sum in
   * float32's subnormal range could round otherwise, not a value these weights and activations
   * reach; the narrow-weight tests compare the rows bit for bit). Other weights: [decode(w), 1].
   */
  gemmOperand(w: string): [string, number] {
    const n = this.narrow.get(w);
    if (n === undefined || n.shape.length < 2) return [this.decode(w), 1];
    return this.gemmValues(this.decodeSource(w), n.format, n.shape, n.scale);
  }

  /** {@link gemmOperand} of narrow bits `bits` (a narrow input, its alias, or a part of one) of the given format, shape and scale. */
  private gemmValues(bits: string, format: NarrowFormat, shape: Shape, scale: number): [string, number] {
    if (format !== 'f16' || scale === 1) return [this.decodeBits(bits, format, shape, scale), 1];
    return [this.whileDecoding(() => this.emit('Cast', [bits], shape, { to: attr.int(ONNX_TYPE.float) })), scale];
  }

  /** float32 values of narrow bits `bits` (a narrow input, or rows gathered from one) of the given format and shape. */
  private decodeBits(bits: string, format: NarrowFormat, shape: Shape, scale: number): string {
    return this.whileDecoding(() => {
      if (format === 'f16') {
        const wide = this.emit('Cast', [bits], shape, { to: attr.int(ONNX_TYPE.float) });
        return scale === 1 ? wide : this.emit('Mul', [wide, this.scalar(scale)], shape);
      }
      this.bf16TableValue ??= this.constant('bf16_table', bf16Table(), [65536]);
      const index = this.emit('Cast', [bits], shape, { to: attr.int(ONNX_TYPE.int32) });
      return this.emit('Gather', [this.bf16TableValue, index], shape, { axis: attr.int(0) });
    });
  }

  /** Runs `emit` calls that read narrow weights as stored: their nodes go to the decode nodes (placed first in the model), and the raw-read check is off. */
  private whileDecoding<T>(fn: () => T): T {
    this.decoding = true;
    try {
      return fn();
    } finally {
      this.decoding = false;
    }
  }

  /** A constant (initializer). */
  constant(prefix: string, data: Float32Array | BigInt64Array, dims: Shape): string {
    const name = this.fresh(prefix);
    this.initializers.push({ name, elemType: data instanceof Float32Array ? ONNX_TYPE.float : ONNX_TYPE.int64, dims: [...dims], data });
    this.shapes.set(name, [...dims]);
    return name;
  }

  /** A named float32 initializer (e.g. a frozen weight, which onnxruntime may then pre-pack). */
  initializer(name: string, data: Float32Array, dims: Shape): string {
    this.initializers.push({ name, elemType: ONNX_TYPE.float, dims: [...dims], data });
    this.shapes.set(name, [...dims]);
    return name;
  }

  /** A float32 scalar constant (shape []), shared per value. */
  scalar(value: number): string {
    let s = this.scalars.get(value);
    if (s === undefined) {
      s = this.constant('c', Float32Array.of(value), []);
      this.scalars.set(value, s);
    }
    return s;
  }

  private ints(values: readonly number[]): string {
    return this.constant('i', BigInt64Array.from(values.map((v) => BigInt(v))), [values.length]);
  }

  /** Emits one node; records `vjp` when recording and an input depends on a differentiated input. */
  private emit(opType: string, inputs: readonly string[], shape: Shape, attributes?: Record<string, OnnxAttributeValue>, vjp?: Vjp): string {
    if (!this.decoding && this.narrow.size > 0) {
      const raw = inputs.find((i) => this.narrow.has(i));
      if (raw !== undefined) throw new DdaError(`graph '${this.name}': ${opType} reads the narrow weight '${raw}' as it is stored`, 'read it through decode(), linear() or gather()');
    }
    const out = this.fresh(opType.toLowerCase());
    (this.decoding ? this.decodeNodes : this.nodes).push({ opType, inputs, outputs: [out], ...(attributes ? { attributes } : {}) });
    this.shapes.set(out, [...shape]);
    if (this.recording && inputs.some((i) => this.dependsOnWrt.has(i))) {
      this.dependsOnWrt.add(out);
      // Without a VJP of its own: rsqrt's inner Sqrt (the Reciprocal's VJP covers both) and the part Gemms of linear() over a matrix decoded in parts (their Concat's VJP covers them).
      if (vjp) this.tape.push({ out, vjp });
    }
    return out;
  }

  /**
   * Any ONNX operator whose output is not differentiated (index arithmetic, cache updates,
   * inference-only graphs), with its static output shape.
   *
   * @throws DdaError if an input depends on a differentiated input (it would have no VJP).
   */
  op(opType: string, inputs: readonly string[], shape: Shape, attributes?: Record<string, OnnxAttributeValue>): string {
    if (this.recording && inputs.some((i) => this.dependsOnWrt.has(i))) {
      throw new DdaError(`graph '${this.name}': ${opType} has no VJP but reads a differentiated value`, 'use a differentiable builder method');
    }
    return this.emit(opType, inputs, shape, attributes);
  }

  /** An int64 constant vector (shapes, axes, indices). */
  int64s(values: readonly number[]): string {
    return this.ints(values);
  }

  /**
   * `batch` copies of `x` stacked on a new leading axis ([batch, ...shape of x]), as a new value
   * that {@link backward} can differentiate against: when copy b feeds only example b's loss and
   * the loss is the sum over examples, its gradient is example b's gradient (per-example
   * gradients from one batched run). Nothing flows back to `x` itself.
   */
  perExampleCopies(x: string, batch: number): string {
    const s = this.shape(x);
    const out = this.emit('Expand', [this.emit('Reshape', [x, this.ints([1, ...s])], [1, ...s]), this.ints([batch, ...s])], [batch, ...s]);
    this.dependsOnWrt.add(out);
    return out;
  }

  /** Sums `dy` over the axes along which a value of shape `target` was broadcast to dy's shape. */
  private unbroadcast(dy: string, target: Shape): string {
    const s = this.shape(dy);
    if (s.length === target.length && s.every((x, i) => x === target[i])) return dy;
    const lead = s.length - target.length;
    const axes: number[] = [];
    s.forEach((x, i) => {
      if (i < lead || (target[i - lead] === 1 && x !== 1)) axes.push(i);
    });
    const kept = s.map((x, i) => (axes.includes(i) ? 1 : x));
    const summed = axes.length ? this.emit('ReduceSum', [dy, this.ints(axes)], kept, { keepdims: attr.int(1) }) : dy;
    return this.reshape(summed, target);
  }

  /** a + b (broadcasting). */
  add(a: string, b: string): string {
    const sa = this.shape(a);
    const sb = this.shape(b);
    return this.emit('Add', [a, b], broadcastShapes(sa, sb, 'Add'), undefined, (dy, needs) => [
      ...(needs(a) ? [[a, this.unbroadcast(dy, sa)] as [string, string]] : []),
      ...(needs(b) ? [[b, this.unbroadcast(dy, sb)] as [string, string]] : []),
    ]);
  }

  /** a − b (broadcasting). */
  sub(a: string, b: string): string {
    const sa = this.shape(a);
    const sb = this.shape(b);
    return this.emit('Sub', [a, b], broadcastShapes(sa, sb, 'Sub'), undefined, (dy, needs) => [
      ...(needs(a) ? [[a, this.unbroadcast(dy, sa)] as [string, string]] : []),
      ...(needs(b) ? [[b, this.unbroadcast(this.emit('Neg', [dy], this.shape(dy)), sb)] as [string, string]] : []),
    ]);
  }

  /** a · b elementwise (broadcasting). */
  mul(a: string, b: string): string {
    const sa = this.shape(a);
    const sb = this.shape(b);
    return this.emit('Mul', [a, b], broadcastShapes(sa, sb, 'Mul'), undefined, (dy, needs) => [
      ...(needs(a) ? [[a, this.unbroadcast(this.mul(dy, b), sa)] as [string, string]] : []),
      ...(needs(b) ? [[b, this.unbroadcast(this.mul(dy, a), sb)] as [string, string]] : []),
    ]);
  }

  /** Batched matrix product a [..., m, k] · b [..., k, n], equal leading dimensions. */
  matmul(a: string, b: string): string {
    const sa = this.shape(a);
    const sb = this.shape(b);
    const r = sa.length;
    if (sb.length !== r || r < 2 || sa[r - 1] !== sb[r - 2] || sa.slice(0, r - 2).some((x, i) => x !== sb[i])) {
      throw new DdaError(`MatMul: shapes [${sa.join(', ')}] and [${sb.join(', ')}] do not multiply`, 'fix the graph construction');
    }
    const out = [...sa.slice(0, r - 1), sb[r - 1] as number];
    return this.emit('MatMul', [a, b], out, undefined, (dy, needs) => [
      ...(needs(a) ? [[a, this.matmul(dy, this.swapLast(b))] as [string, string]] : []),
      ...(needs(b) ? [[b, this.matmul(this.swapLast(a), dy)] as [string, string]] : []),
    ]);
  }

  /** x [n, in] · wᵀ for w [out, in] (a linear map in Hugging Face layout), as Gemm with transB. */
  linear(x: string, w: string): string {
    const sx = this.shape(x);
    const sw = this.shape(w);
    if (sx.length !== 2 || sw.length !== 2 || sx[1] !== sw[1]) throw new DdaError(`linear: [${sx.join(', ')}] · [${sw.join(', ')}]ᵀ`, 'fix the graph construction');
    // A narrow weight is decoded here, and decoded again by the VJP that reads it (see decode); in
    // this forward Gemm a scaled f16 one's scale is the Gemm's alpha (gemmOperand). Not in the VJP's
    // dy · w: a Gemm with alpha there changed the input gradients' bits at TinyLlama-1.1B's widths
    // (the forward's did not), presumably since onnxruntime fuses a MatMul and the Add after it
    // (the float32 graph's form) and not a Gemm with alpha.
    const n = this.narrow.get(w);
    const rowParts = n ? decodeParts(sw[0] as number, sw[1] as number, this.o.decodePartBytes) : [];
    if (n && rowParts.length > 1) {
      // A large narrow matrix (a real vocabulary's head) is decoded and multiplied in parts of its
      // rows, each part's decode freed before the next (see DECODE_PART_BYTES); each output column
      // is the same dot product as in one Gemm. Its VJP reads the matrix in parts of its columns.
      const src = this.decodeSource(w);
      const outs = rowParts.map(([a, b]) => {
        const shape = [b - a, sw[1] as number];
        const [wv, alpha] = this.gemmValues(this.sliceNarrow(src, 0, a, b, shape), n.format, shape, n.scale);
        // No VJP of its own: the Concat's below gives x its gradient.
        return this.emit('Gemm', [x, wv], [sx[0] as number, b - a], { transB: attr.int(1), ...(alpha === 1 ? {} : { alpha: attr.float(alpha) }) });
      });
      return this.emit('Concat', outs, [sx[0] as number, sw[0] as number], { axis: attr.int(1) }, (dy, needs) => (needs(x) ? [[x, this.linearInputGradient(dy, w, sx)]] : []));
    }
    const [wv, alpha] = this.gemmOperand(w);
    return this.emit('Gemm', [x, wv], [sx[0] as number, sw[0] as number], { transB: attr.int(1), ...(alpha === 1 ? {} : { alpha: attr.float(alpha) }) }, (dy, needs) => [
      // d x = dy · w ; d w = dyᵀ · x
      ...(needs(x) ? [[x, this.linearInputGradient(dy, w, sx)] as [string, string]] : []),
      ...(needs(w) ? [[w, this.emit('Gemm', [dy, x], sw, { transA: attr.int(1) })] as [string, string]] : []),
    ]);
  }

  /**
   * dy · w, the gradient of {@link linear}'s input: one MatMul over the decoded matrix, or for a
   * narrow matrix above {@link DECODE_PART_BYTES} one MatMul per part of its columns (each decoded
   * and freed in turn), concatenated: every entry of dy · w sums over all of w's rows in one
   * product, as the whole MatMul does.
   */
  private linearInputGradient(dy: string, w: string, sx: Shape): string {
    const n = this.narrow.get(w);
    const sw = this.shape(w);
    const colParts = n ? decodeParts(sw[1] as number, sw[0] as number, this.o.decodePartBytes) : [];
    if (!n || colParts.length <= 1) return this.emit('MatMul', [dy, this.decode(w)], sx);
    const src = this.decodeSource(w);
    const outs = colParts.map(([a, b]) => {
      const part = this.decodeBits(this.sliceNarrow(src, 1, a, b, [sw[0] as number, b - a]), n.format, [sw[0] as number, b - a], n.scale);
      return this.emit('MatMul', [dy, part], [sx[0] as number, b - a]);
    });
    return this.emit('Concat', outs, sx, { axis: attr.int(1) });
  }

  /** Entries [a, b) along `axis` of narrow bits `src` (a narrow input or its alias), as stored. */
  private sliceNarrow(src: string, axis: number, a: number, b: number, shape: Shape): string {
    return this.whileDecoding(() => this.emit('Slice', [src, this.ints([a]), this.ints([b]), this.ints([axis])], shape));
  }

  /** Transposes the last two axes. */
  swapLast(a: string): string {
    const r = this.shape(a).length;
    return this.transpose(a, [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2]);
  }

  transpose(a: string, perm: readonly number[]): string {
    const s = this.shape(a);
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return this.emit('Transpose', [a], perm.map((p) => s[p] as number), { perm: attr.ints(perm) }, (dy) => [[a, this.transpose(dy, inverse)]]);
  }

  reshape(a: string, shape: Shape): string {
    const s = this.shape(a);
    if (s.reduce((x, y) => x * y, 1) !== shape.reduce((x, y) => x * y, 1)) throw new DdaError(`Reshape [${s.join(', ')}] → [${shape.join(', ')}]`, 'fix the graph construction');
    return this.emit('Reshape', [a, this.ints(shape)], shape, undefined, (dy) => [[a, this.reshape(dy, s)]]);
  }

  /** Broadcasts a to `shape` (ONNX Expand). */
  expand(a: string, shape: Shape): string {
    const s = this.shape(a);
    return this.emit('Expand', [a, this.ints(shape)], broadcastShapes(s, shape, 'Expand'), undefined, (dy) => [[a, this.unbroadcast(dy, s)]]);
  }

  sigmoid(a: string): string {
    const out = this.emit('Sigmoid', [a], this.shape(a), undefined, (dy) => [[a, this.mul(dy, this.mul(out, this.sub(this.scalar(1), out)))]]);
    return out;
  }

  /** tanh(a): d a = dy · (1 − out²). */
  tanh(a: string): string {
    const out = this.emit('Tanh', [a], this.shape(a), undefined, (dy) => [[a, this.mul(dy, this.sub(this.scalar(1), this.mul(out, out)))]]);
    return out;
  }

  /** 1/√a, one tape entry: d a = −½ · dy · out³. */
  rsqrt(a: string): string {
    const s = this.shape(a);
    const sq = this.emit('Sqrt', [a], s);
    const out = this.emit('Reciprocal', [sq], s, undefined, (dy) => [[a, this.mul(this.mul(dy, this.scalar(-0.5)), this.mul(out, this.mul(out, out)))]]);
    // The Sqrt node carries no tape entry; the Reciprocal's VJP goes straight to `a`.
    return out;
  }

  /** Mean over the last axis, kept. */
  meanLast(a: string): string {
    const s = this.shape(a);
    const n = s[s.length - 1] as number;
    const out = [...s.slice(0, -1), 1];
    return this.emit('ReduceMean', [a], out, { axes: attr.ints([s.length - 1]), keepdims: attr.int(1) }, (dy) => [[a, this.expand(this.mul(dy, this.scalar(1 / n)), s)]]);
  }

  /** Sum over `axes` (keepdims as given). */
  sum(a: string, axes: readonly number[], keepdims: boolean): string {
    const s = this.shape(a);
    const kept = s.map((x, i) => (axes.includes(i) ? 1 : x));
    const out = keepdims ? kept : s.filter((_, i) => !axes.includes(i));
    return this.emit('ReduceSum', [a, this.ints(axes)], out, { keepdims: attr.int(keepdims ? 1 : 0) }, (dy) => [
      [a, this.expand(keepdims ? dy : this.reshape(dy, kept), s)],
    ]);
  }

  /** Softmax over the last axis: d a = s ⊙ (dy − Σ dy ⊙ s). */
  softmax(a: string): string {
    const s = this.shape(a);
    const out = this.emit('Softmax', [a], s, { axis: attr.int(-1) }, (dy) => [[a, this.mul(out, this.sub(dy, this.sum(this.mul(dy, out), [s.length - 1], true)))]]);
    return out;
  }

  /** Log-softmax over the last axis: d a = dy − exp(out) ⊙ Σ dy. */
  logSoftmax(a: string): string {
    const s = this.shape(a);
    const out = this.emit('LogSoftmax', [a], s, { axis: attr.int(-1) }, (dy) => [
      [a, this.sub(dy, this.mul(this.emit('Exp', [out], s), this.sum(dy, [s.length - 1], true)))],
    ]);
    return out;
  }

  /** Rows of a constant table [V, d] for int64 ids [n] → [n, d] (not differentiated); a narrow table's rows are gathered as stored, then decoded. */
  gather(table: string, ids: string): string {
    if (this.dependsOnWrt.has(table)) throw new DdaError('gather: gradients of the gathered table are not supported', 'differentiate LoRA parameters only');
    const n = this.narrow.get(table);
    if (n !== undefined) {
      const shape = [...this.shape(ids), ...n.shape.slice(1)];
      const rows = this.whileDecoding(() => this.emit('Gather', [table, ids], shape, { axis: attr.int(0) }));
      return this.decodeBits(rows, n.format, shape, n.scale);
    }
    return this.emit('Gather', [table, ids], [...this.shape(ids), ...this.shape(table).slice(1)], { axis: attr.int(0) });
  }

  /**
   * Rows `idx` (int64 [P]) of x [T, d] → [P, d]; the VJP scatter-adds the rows' gradients back
   * (ScatterND with reduction add: whole rows at a time), so repeated indices accumulate.
   */
  gatherRows(x: string, idx: string): string {
    const [T, d] = this.shape(x) as [number, number];
    const [P] = this.shape(idx) as [number];
    return this.emit('Gather', [x, idx], [P, d], { axis: attr.int(0) }, (dy) => {
      // ConstantOfShape (value 0.0 by default) rather than a [T, d] initializer: for an embedding table that is the size of the table.
      const zeros = this.emit('ConstantOfShape', [this.ints([T, d])], [T, d]);
      const index = this.emit('Reshape', [idx, this.ints([P, 1])], [P, 1]);
      return [[x, this.emit('ScatterND', [zeros, index, dy], [T, d], { reduction: attr.string('add') })]];
    });
  }

  /**
   * Weighted cross-entropy −Σ_p w_p · log softmax(logits_p)[target_p] (scalar) of logits [P, V],
   * int64 targets [P] and weights [P, 1]. One tape entry whose VJP is the closed form
   * d logits = dy · w ⊙ (softmax(logits) − onehot(target)), written with one ScatterElements
   * (no [P, V] one-hot is ever built).
   */
  crossEntropy(logits: string, targets: string, weights: string): string {
    const [P, V] = this.shape(logits) as [number, number];
    const logp = this.emit('LogSoftmax', [logits], [P, V], { axis: attr.int(-1) });
    const idx = this.emit('Reshape', [targets, this.ints([P, 1])], [P, 1]);
    const picked = this.emit('GatherElements', [logp, idx], [P, 1], { axis: attr.int(1) });
    const total = this.emit('ReduceSum', [this.emit('Mul', [picked, weights], [P, 1]), this.ints([0, 1])], [], { keepdims: attr.int(0) });
    return this.emit('Neg', [total], [], undefined, (dy) => {
      const wd = this.mul(weights, dy); // [P, 1]
      // softmax(logits) by MLAS's vectorised Softmax: an elementwise Exp of log p is several times slower on [P, V].
      const pw = this.mul(this.emit('Softmax', [logits], [P, V], { axis: attr.int(-1) }), wd);
      const atTarget = this.mul(this.sub(this.emit('Exp', [picked], [P, 1]), this.scalar(1)), wd);
      return [[logits, this.emit('ScatterElements', [pw, idx, atTarget], [P, V], { axis: attr.int(1) })]];
    });
  }

  /**
   * `f(x)`, the values inside it recomputed in the backward pass instead of kept (gradient
   * checkpointing): the forward pass emits f's nodes as usual, but the tape keeps one entry for
   * the whole segment instead of f's VJPs, so no backward node reads f's intermediates and
   * onnxruntime frees them as soon as the forward pass is past them; only `x` stays alive until
   * the backward pass reaches the segment. There {@link backward} builds f again from
   * x' = x + (−0)·|s| (s [..., 1]: the first entry of each row of the incoming gradient of the
   * result, sliced along the last axis) and runs f's VJPs on the rebuilt values, in the order
   * they would have run without recomputation. The data dependency on the gradient does two
   * things: onnxruntime's common-subexpression elimination cannot merge the rebuilt nodes with
   * the forward ones (their inputs differ), and its executor cannot schedule the rebuild before
   * the backward pass reaches the segment (so at most one segment's intermediates are alive).
   *
   * Exactness: for a finite s, (−0)·|s| is −0, and x + (−0) is x bit for bit (−0 included), so
   * the rebuilt values, the gradients and the outputs are bit-identical to the same graph without
   * recomputation, provided f emits the same ops for the same inputs every time it is called (f is
   * called twice; outputs it adds to the graph must be added once: see {@link recomputing}). Where
   * s is NaN or ±∞ (a non-finite gradient entry), that row of x' is NaN: the gradients of the rows
   * it reaches are NaN instead of merely non-finite. Rows are independent: a row's s only touches
   * that row (the decoder's rows of one example never reach another example's).
   *
   * Costs one more forward pass of f and a [..., 1] slice, an Abs, a Mul and an Add of x's size.
   * When not recording (inside a backward pass, or when nothing is differentiated) this is f(x).
   *
   * @param x - The segment's input that the rebuild replaces by x' (other values f reads are
   *   read as they are: graph inputs, initializers, values made before); its last axis is sliced for s.
   *   Values made inside f must not be differentiated outside it (a DdaError in {@link backward}).
   * @param f - Builds the segment; called once now and once in {@link backward}.
   * @returns f(x), with the gradient's shape: the result's shape (rank ≥ 1).
   */
  recomputed(x: string, f: (x: string) => string): string {
    if (!this.recording) return f(x);
    const start = this.tape.length;
    const y = f(x);
    if (!this.dependsOnWrt.has(y)) return y;
    const sx = this.shape(x);
    const sy = this.shape(y);
    if (sy.length === 0 || sx.length !== sy.length || sx.slice(0, -1).some((v, i) => v !== sy[i])) {
      throw new DdaError(`graph '${this.name}': a recomputed segment maps [${sx.join(', ')}] to [${sy.join(', ')}]; its input and result must have the same shape but for the last axis`, 'recompute a segment over rows, such as a decoder layer');
    }
    const inner = this.tape.slice(start).map((e) => e.out).filter((v) => v !== y);
    this.tape.length = start;
    this.tape.push({ out: y, segment: { x, f, inner } });
    return y;
  }

  /** True while {@link backward} rebuilds a {@link recomputed} segment: a segment that adds graph outputs adds them only when this is false. */
  get recomputing(): boolean {
    return this.recomputeDepth > 0;
  }

  /** The float32 scalar −0 (the scalar cache cannot hold it: its keys do not tell −0 from +0). */
  private minusZero(): string {
    this.negativeZero ??= this.constant('c', Float32Array.of(-0), []);
    return this.negativeZero;
  }

  /** Runs `tape` backwards into `grads` (see {@link backward}); segments are rebuilt and run in place. */
  private runTape(tape: readonly TapeEntry[], grads: Map<string, string>, needs: (v: string) => boolean): void {
    for (let k = tape.length - 1; k >= 0; k--) {
      const entry = tape[k] as TapeEntry;
      const dy = grads.get(entry.out);
      if (dy === undefined) continue;
      if ('segment' in entry) {
        const { x, f, inner: kept } = entry.segment;
        const leaked = kept.find((v) => grads.has(v));
        if (leaked !== undefined) throw new DdaError(`graph '${this.name}': '${leaked}', made inside a recomputed segment, is differentiated outside it`, 'return it from the segment, or do not recompute that segment');
        const sy = this.shape(dy);
        const r = sy.length;
        const sxShape = [...sy.slice(0, -1), 1];
        const s = this.emit('Slice', [dy, this.ints([0]), this.ints([1]), this.ints([r - 1])], sxShape);
        const zero = this.emit('Mul', [this.emit('Abs', [s], sxShape), this.minusZero()], sxShape);
        const xr = this.emit('Add', [x, zero], broadcastShapes(this.shape(x), sxShape, 'recomputed'));
        if (needs(x)) this.dependsOnWrt.add(xr);
        const outer = this.tape;
        this.tape = [];
        this.recording = true;
        this.recomputeDepth++;
        let yr: string;
        try {
          yr = f(xr);
        } finally {
          this.recomputeDepth--;
          this.recording = false;
        }
        const inner = this.tape;
        this.tape = outer;
        const ry = this.shape(yr);
        if (ry.length !== sy.length || ry.some((v, i) => v !== sy[i])) throw new DdaError(`graph '${this.name}': a recomputed segment gave shape [${ry.join(', ')}], first [${sy.join(', ')}]`, 'build the same segment every time');
        grads.set(yr, dy);
        this.runTape(inner, grads, needs);
        const gx = grads.get(xr);
        if (gx !== undefined && needs(x)) {
          // x' = x + (−0)·|s| passes its gradient to x unchanged (nothing flows into s).
          const g = this.unbroadcast(gx, this.shape(x));
          const prev = grads.get(x);
          grads.set(x, prev === undefined ? g : this.add(prev, g));
        }
        continue;
      }
      for (const [input, g] of entry.vjp(dy, needs)) {
        if (!needs(input)) continue;
        const prev = grads.get(input);
        grads.set(input, prev === undefined ? g : this.add(prev, g));
      }
    }
  }

  /**
   * Emits the backward pass of scalar `loss` and returns the gradient value of each of `wrt`
   * (a zero constant for an input the loss does not depend on). Segments recorded by
   * {@link recomputed} are rebuilt here, each just before its VJPs run.
   */
  backward(loss: string, wrt: readonly string[]): Map<string, string> {
    if (this.shape(loss).length !== 0) throw new DdaError(`backward: the loss must be a scalar, got shape [${this.shape(loss).join(', ')}]`, 'reduce it first');
    this.recording = false;
    const grads = new Map<string, string>([[loss, this.scalar(1)]]);
    const needs = (v: string): boolean => this.dependsOnWrt.has(v);
    this.runTape(this.tape, grads, needs);
    this.recording = true;
    return new Map(wrt.map((w) => [w, grads.get(w) ?? this.constant('zero', new Float32Array(this.shape(w).reduce((a, b) => a * b, 1)), this.shape(w))]));
  }

  /** Renames `value` to the graph output `name` (an Identity node) with its shape. */
  output(name: string, value: string): OnnxValueInfo {
    this.nodes.push({ opType: 'Identity', inputs: [value], outputs: [name] });
    this.shapes.set(name, this.shape(value));
    return { name, elemType: ONNX_TYPE.float, shape: this.shape(value) };
  }

  /** The model with `outputs` (from {@link output}). */
  model(outputs: readonly OnnxValueInfo[]): OnnxModel {
    return { graph: { name: this.name, nodes: [...this.decodeNodes, ...this.nodes], inputs: [...this.inputs], outputs: [...outputs], initializers: [...this.initializers] }, opset: 17 };
  }
}
