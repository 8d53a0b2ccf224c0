/**
 * A graph builder with reverse-mode differentiation for the ONNX ops the decoder uses. Every
 * forward op emits its ONNX node and, when an input depends on a differentiated input, records a
 * hand-written vector-Jacobian product (VJP) that emits the backward nodes. Shapes are static
 * (numbers), so broadcasting is resolved when the graph is built.
 */
import { DdaError } from '@dda/core';
import { ONNX_TYPE, attr, type OnnxAttributeValue, type OnnxElemType, type OnnxModel, type OnnxTensor, type OnnxValueInfo } from './onnx-model.js';
import type { OnnxNode } from './onnx-model.js';

type Shape = readonly number[];
/** A VJP: given the output's gradient, the gradient contributions of the inputs that need one. */
type Vjp = (dy: string, needs: (input: string) => boolean) => [input: string, grad: string][];

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

/** Builds one ONNX graph; see the module doc. */
export class GraphBuilder {
  private readonly nodes: OnnxNode[] = [];
  private readonly initializers: OnnxTensor[] = [];
  private readonly inputs: OnnxValueInfo[] = [];
  private readonly shapes = new Map<string, number[]>();
  private readonly dependsOnWrt = new Set<string>();
  private readonly tape: { out: string; vjp: Vjp }[] = [];
  private readonly scalars = new Map<number, string>();
  private recording = true;
  private counter = 0;

  constructor(readonly name: string) {}

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
    const out = this.fresh(opType.toLowerCase());
    this.nodes.push({ opType, inputs, outputs: [out], ...(attributes ? { attributes } : {}) });
    this.shapes.set(out, [...shape]);
    if (this.recording && inputs.some((i) => this.dependsOnWrt.has(i))) {
      this.dependsOnWrt.add(out);
      // Only rsqrt's inner Sqrt has no VJP of its own (the Reciprocal's VJP covers both).
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
    return this.emit('Gemm', [x, w], [sx[0] as number, sw[0] as number], { transB: attr.int(1) }, (dy, needs) => [
      // d x = dy · w ; d w = dyᵀ · x
      ...(needs(x) ? [[x, this.emit('MatMul', [dy, w], sx)] as [string, string]] : []),
      ...(needs(w) ? [[w, this.emit('Gemm', [dy, x], sw, { transA: attr.int(1) })] as [string, string]] : []),
    ]);
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

  /** Rows of a constant table [V, d] for int64 ids [n] → [n, d] (not differentiated). */
  gather(table: string, ids: string): string {
    if (this.dependsOnWrt.has(table)) throw new DdaError('gather: gradients of the gathered table are not supported', 'differentiate LoRA parameters only');
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
   * Emits the backward pass of scalar `loss` and returns the gradient value of each of `wrt`
   * (a zero constant for an input the loss does not depend on).
   */
  backward(loss: string, wrt: readonly string[]): Map<string, string> {
    if (this.shape(loss).length !== 0) throw new DdaError(`backward: the loss must be a scalar, got shape [${this.shape(loss).join(', ')}]`, 'reduce it first');
    this.recording = false;
    const grads = new Map<string, string>([[loss, this.scalar(1)]]);
    const needs = (v: string): boolean => this.dependsOnWrt.has(v);
    for (let k = this.tape.length - 1; k >= 0; k--) {
      const { out, vjp } = this.tape[k] as { out: string; vjp: Vjp };
      const dy = grads.get(out);
      if (dy === undefined) continue;
      for (const [input, g] of vjp(dy, needs)) {
        if (!needs(input)) continue;
        const prev = grads.get(input);
        grads.set(input, prev === undefined ? g : this.add(prev, g));
      }
    }
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
    return { graph: { name: this.name, nodes: [...this.nodes], inputs: [...this.inputs], outputs: [...outputs], initializers: [...this.initializers] }, opset: 17 };
  }
}
