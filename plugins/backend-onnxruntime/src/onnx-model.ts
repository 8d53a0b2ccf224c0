/**
 * An ONNX model builder: plain objects for graphs, nodes, tensors and value infos, encoded to the
 * ModelProto wire format (onnx/onnx.proto, IR version 8) with {@link ProtoWriter}. Only the fields
 * this project emits are supported; field numbers are those of onnx.proto.
 */
import { DdaError } from '@dda/core';
import { ProtoWriter } from './protobuf.js';

/** TensorProto.DataType values used here. */
export const ONNX_TYPE = { float: 1, uint16: 4, int32: 6, int64: 7, float16: 10, double: 11 } as const;
/** An element type of {@link ONNX_TYPE}. */
export type OnnxElemType = (typeof ONNX_TYPE)[keyof typeof ONNX_TYPE];

/** A tensor shape: fixed sizes, or names for dimensions fixed only at run time (e.g. `'rows'`). */
export type OnnxShape = readonly (number | string)[];

/** A graph input or output: name, element type and shape. */
export interface OnnxValueInfo {
  readonly name: string;
  readonly elemType: OnnxElemType;
  readonly shape: OnnxShape;
}

/** A constant tensor (an initializer, or the value of a `Constant` node). Data is little-endian raw bytes. */
export interface OnnxTensor {
  readonly name: string;
  readonly elemType: OnnxElemType;
  readonly dims: readonly number[];
  readonly data: Float32Array | Float64Array | Int32Array | BigInt64Array;
}

/** An attribute value: integer, float, string, integer list, float list or tensor. */
export type OnnxAttributeValue =
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'floats'; readonly value: readonly number[] }
  | { readonly kind: 'tensor'; readonly value: OnnxTensor };

/** One operator application. */
export interface OnnxNode {
  readonly opType: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly name?: string;
  readonly domain?: string;
  readonly attributes?: Readonly<Record<string, OnnxAttributeValue>>;
}

/** A graph: nodes in topological order, its inputs, outputs and initializers. */
export interface OnnxGraph {
  readonly name: string;
  readonly nodes: readonly OnnxNode[];
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
  readonly initializers?: readonly OnnxTensor[];
}

/** A model: one graph and the default-domain opset it targets. */
export interface OnnxModel {
  readonly graph: OnnxGraph;
  /** Default-domain ("ai.onnx") opset version (default 17). */
  readonly opset?: number;
  readonly producerName?: string;
}

/** IR version written into every model (ONNX 1.13+, read by onnxruntime ≥ 1.14). */
export const ONNX_IR_VERSION = 8;
const DEFAULT_OPSET = 17;

/** Attribute helpers: `attr.int(1)`, `attr.ints([0, 2, 1])`, ... */
export const attr = {
  int: (value: number): OnnxAttributeValue => ({ kind: 'int', value }),
  float: (value: number): OnnxAttributeValue => ({ kind: 'float', value }),
  string: (value: string): OnnxAttributeValue => ({ kind: 'string', value }),
  ints: (value: readonly number[]): OnnxAttributeValue => ({ kind: 'ints', value }),
  floats: (value: readonly number[]): OnnxAttributeValue => ({ kind: 'floats', value }),
  tensor: (value: OnnxTensor): OnnxAttributeValue => ({ kind: 'tensor', value }),
};

const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function writeTensor(w: ProtoWriter, t: OnnxTensor): void {
  if (t.data.length !== elementCount(t.dims)) {
    throw new DdaError(
      `ONNX tensor '${t.name}': ${t.data.length} values for dims [${t.dims.join(', ')}]`,
      'pass exactly one value per element, row-major',
    );
  }
  const expected =
    t.data instanceof Float32Array ? ONNX_TYPE.float
    : t.data instanceof Float64Array ? ONNX_TYPE.double
    : t.data instanceof Int32Array ? ONNX_TYPE.int32
    : ONNX_TYPE.int64;
  if (expected !== t.elemType) {
    throw new DdaError(`ONNX tensor '${t.name}': element type ${t.elemType} does not match its ${t.data.constructor.name}`, 'use the typed array of the element type');
  }
  for (const d of t.dims) w.intField(1, d); // dims
  w.intField(2, t.elemType); // data_type
  w.stringField(8, t.name); // name
  // raw_data: little-endian bytes (every platform Node runs on here is little-endian).
  w.bytesField(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
}

function writeValueInfo(w: ProtoWriter, v: OnnxValueInfo): void {
  w.stringField(1, v.name);
  w.messageField(2, (type) => // TypeProto
    type.messageField(1, (tensor) => { // TypeProto.Tensor
      tensor.intField(1, v.elemType);
      tensor.messageField(2, (shape) => { // TensorShapeProto
        for (const d of v.shape) {
          shape.messageField(1, (dim) => (typeof d === 'number' ? dim.intField(1, d) : dim.stringField(2, d)));
        }
      });
    }));
}

function writeAttribute(w: ProtoWriter, name: string, a: OnnxAttributeValue): void {
  w.stringField(1, name);
  switch (a.kind) {
    case 'float': w.floatField(2, a.value); break;
    case 'int': w.intField(3, a.value); break;
    case 'string': w.stringField(4, a.value); break;
    case 'tensor': w.messageField(5, (t) => writeTensor(t, a.value)); break;
    case 'floats': for (const f of a.value) w.floatField(7, f); break;
    case 'ints': for (const i of a.value) w.intField(8, i); break;
  }
  w.intField(20, ATTR_TYPE[a.kind]);
}

function writeNode(w: ProtoWriter, n: OnnxNode): void {
  for (const i of n.inputs) w.stringField(1, i);
  for (const o of n.outputs) w.stringField(2, o);
  if (n.name !== undefined) w.stringField(3, n.name);
  w.stringField(4, n.opType);
  for (const [name, a] of Object.entries(n.attributes ?? {})) w.messageField(5, (x) => writeAttribute(x, name, a));
  if (n.domain !== undefined) w.stringField(7, n.domain);
}

function checkGraph(g: OnnxGraph): void {
  const defined = new Set<string>([...g.inputs.map((v) => v.name), ...(g.initializers ?? []).map((t) => t.name), '']);
  for (const n of g.nodes) {
    for (const i of n.inputs) {
      if (!defined.has(i)) {
        throw new DdaError(`ONNX graph '${g.name}': node ${n.opType} reads '${i}' before anything defines it`, 'add the input or initializer, or order the nodes topologically');
      }
    }
    for (const o of n.outputs) defined.add(o);
  }
  for (const o of g.outputs) {
    if (!defined.has(o.name)) throw new DdaError(`ONNX graph '${g.name}': output '${o.name}' is never computed`, 'add a node that writes it');
  }
}

/**
 * Encodes a model as ONNX ModelProto bytes, ready for `InferenceSession.create(bytes)`.
 *
 * @throws DdaError if a node reads a value nothing defines before it, an output is never
 *   computed, or a tensor's data does not match its dims or element type.
 */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  checkGraph(model.graph);
  // Room for every initializer's bytes plus the rest (about 1 KB per node or value), so that large weights are copied once.
  const g = model.graph;
  const w = new ProtoWriter((g.initializers ?? []).reduce((a, t) => a + t.data.byteLength + 256, 0) + 1024 * (g.nodes.length + g.inputs.length + g.outputs.length) + 4096);
  w.intField(1, ONNX_IR_VERSION); // ir_version
  w.stringField(2, model.producerName ?? 'dda'); // producer_name
  w.messageField(7, (g) => { // graph
    for (const n of model.graph.nodes) g.messageField(1, (x) => writeNode(x, n));
    g.stringField(2, model.graph.name);
    for (const t of model.graph.initializers ?? []) g.messageField(5, (x) => writeTensor(x, t));
    for (const v of model.graph.inputs) g.messageField(11, (x) => writeValueInfo(x, v));
    for (const v of model.graph.outputs) g.messageField(12, (x) => writeValueInfo(x, v));
  });
  w.messageField(8, (o) => o.stringField(1, '').intField(2, model.opset ?? DEFAULT_OPSET)); // opset_import
  return w.finish();
}
