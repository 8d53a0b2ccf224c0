import { describe, expect, it } from 'vitest';
import { DdaError } from '@dda/core';
import { ONNX_IR_VERSION, ONNX_TYPE, attr, encodeOnnxModel, startOnnxRuntime, type OnnxModel, type OnnxRuntimeBackend } from '@dda/backend-onnxruntime';

/** An independent protobuf reader for the test: field number → list of raw values (number or bytes). */
function decode(buf: Uint8Array): Map<number, (number | Uint8Array)[]> {
  const out = new Map<number, (number | Uint8Array)[]>();
  let p = 0;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const b = buf[p++]!;
      v += (b & 0x7f) * mul;
      mul *= 128;
      if (b < 0x80) return v;
    }
  };
  while (p < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    let value: number | Uint8Array;
    if (wire === 0) value = varint();
    else if (wire === 5) {
      value = new DataView(buf.buffer, buf.byteOffset + p, 4).getFloat32(0, true);
      p += 4;
    } else if (wire === 2) {
      const n = varint();
      value = buf.subarray(p, p + n);
      p += n;
    } else throw new Error(`unexpected wire type ${wire}`);
    out.set(field, [...(out.get(field) ?? []), value]);
  }
  return out;
}
const str = (v: number | Uint8Array | undefined): string => new TextDecoder().decode(v as Uint8Array);
const msg = (v: number | Uint8Array | undefined): Map<number, (number | Uint8Array)[]> => decode(v as Uint8Array);

const ADD: OnnxModel = {
  graph: {
    name: 'g',
    nodes: [{ opType: 'Add', inputs: ['x', 'w'], outputs: ['y'] }],
    inputs: [{ name: 'x', elemType: ONNX_TYPE.float, shape: ['n', 2] }],
    outputs: [{ name: 'y', elemType: ONNX_TYPE.float, shape: ['n', 2] }],
    initializers: [{ name: 'w', elemType: ONNX_TYPE.float, dims: [2], data: Float32Array.of(0.5, -1) }],
  },
  opset: 13,
};

describe('encodeOnnxModel', () => {
  it('writes the ModelProto fields of onnx.proto', () => {
    const withNote = { ...ADD, graph: { ...ADD.graph, nodes: [{ ...ADD.graph.nodes[0]!, attributes: { note: attr.string('hi') } }] } };
    const model = decode(encodeOnnxModel(withNote));
    expect(model.get(1)).toEqual([ONNX_IR_VERSION]);
    expect(str(model.get(2)?.[0])).toBe('dda');
    const opset = msg(model.get(8)?.[0]);
    expect(str(opset.get(1)?.[0])).toBe('');
    expect(opset.get(2)).toEqual([13]);
    const graph = msg(model.get(7)?.[0]);
    expect(str(graph.get(2)?.[0])).toBe('g');
    const node = msg(graph.get(1)?.[0]);
    expect([str(node.get(1)?.[0]), str(node.get(1)?.[1]), str(node.get(2)?.[0]), str(node.get(4)?.[0])]).toEqual(['x', 'w', 'y', 'Add']);
    const attribute = msg(node.get(5)?.[0]);
    expect([str(attribute.get(1)?.[0]), str(attribute.get(4)?.[0]), attribute.get(20)?.[0]]).toEqual(['note', 'hi', 3]);
    const init = msg(graph.get(5)?.[0]);
    expect(init.get(1)).toEqual([2]);
    expect(init.get(2)).toEqual([ONNX_TYPE.float]);
    expect(str(init.get(8)?.[0])).toBe('w');
    expect(Array.from(new Float32Array((init.get(9)?.[0] as Uint8Array).slice().buffer))).toEqual([0.5, -1]);
    const input = msg(graph.get(11)?.[0]);
    expect(str(input.get(1)?.[0])).toBe('x');
    const tensorType = msg(msg(input.get(2)?.[0]).get(1)?.[0]);
    expect(tensorType.get(1)).toEqual([ONNX_TYPE.float]);
    const dims = msg(tensorType.get(2)?.[0]).get(1)!.map((d) => msg(d));
    expect(str(dims[0]!.get(2)?.[0])).toBe('n');
    expect(dims[1]!.get(1)).toEqual([2]);
  });

  it('rejects graphs that read undefined values, outputs never computed and mis-sized tensors', () => {
    const g = ADD.graph;
    expect(() => encodeOnnxModel({ graph: { ...g, nodes: [{ opType: 'Add', inputs: ['x', 'nope'], outputs: ['y'] }] } })).toThrow(/reads 'nope'/);
    expect(() => encodeOnnxModel({ graph: { ...g, outputs: [{ name: 'z', elemType: 1, shape: [1] }] } })).toThrow(/'z' is never computed/);
    expect(() => encodeOnnxModel({ graph: { ...g, initializers: [{ name: 'w', elemType: 1, dims: [3], data: Float32Array.of(1, 2) }] } })).toThrow(DdaError);
    expect(() => encodeOnnxModel({ graph: { ...g, initializers: [{ name: 'w', elemType: ONNX_TYPE.double, dims: [2], data: Float32Array.of(1, 2) }] } })).toThrow(/does not match/);
  });
});

describe('encoded models run in onnxruntime', () => {
  let backend: OnnxRuntimeBackend;
  it('starts the CPU backend', async () => {
    backend = await startOnnxRuntime(['onnxruntime-cpu']);
    expect(backend).toMatchObject({ id: 'onnxruntime-cpu', engine: 'onnxruntime', executionProviders: ['cpu'] });
  });

  it('computes Add with an initializer, symbolic dims', async () => {
    const s = await backend.createSession(ADD);
    const y = (await s.run({ x: new backend.ort.Tensor('float32', Float32Array.of(1, 2, 3, 4, 5, 6), [3, 2]) })).y!;
    expect(y.dims).toEqual([3, 2]);
    expect(Array.from(y.data as Float32Array)).toEqual([1.5, 1, 3.5, 3, 5.5, 5]);
    await s.release();
  });

  it('honours float, int, ints and tensor attributes and int64 initializers', async () => {
    // y = Transpose(alpha · x · Wᵀ + c), c a Constant node, then Reshape by an int64 shape.
    const model: OnnxModel = {
      graph: {
        name: 'attrs',
        nodes: [
          { opType: 'Constant', inputs: [], outputs: ['c'], attributes: { value: attr.tensor({ name: 'c', elemType: ONNX_TYPE.float, dims: [1, 3], data: Float32Array.of(10, 20, 30) }) } },
          { opType: 'Gemm', inputs: ['x', 'w', 'c'], outputs: ['g'], attributes: { alpha: attr.float(0.5), transB: attr.int(1) } },
          { opType: 'Transpose', inputs: ['g'], outputs: ['t'], attributes: { perm: attr.ints([1, 0]) } },
          { opType: 'Reshape', inputs: ['t', 'shape'], outputs: ['y'] },
        ],
        inputs: [{ name: 'x', elemType: ONNX_TYPE.float, shape: [2, 2] }],
        outputs: [{ name: 'y', elemType: ONNX_TYPE.float, shape: [6] }],
        initializers: [
          { name: 'w', elemType: ONNX_TYPE.float, dims: [3, 2], data: Float32Array.of(1, 0, 0, 1, 1, 1) },
          { name: 'shape', elemType: ONNX_TYPE.int64, dims: [1], data: BigInt64Array.of(-1n) },
        ],
      },
    };
    const s = await backend.createSession(model);
    const y = (await s.run({ x: new backend.ort.Tensor('float32', Float32Array.of(2, 4, 6, 8), [2, 2]) })).y!;
    // x·Wᵀ = [[2, 4, 6], [6, 8, 14]]; ·0.5 + c = [[11, 22, 33], [13, 24, 37]]; transposed and flattened:
    expect(Array.from(y.data as Float32Array)).toEqual([11, 13, 22, 24, 33, 37]);
    await s.release();
  });
});
