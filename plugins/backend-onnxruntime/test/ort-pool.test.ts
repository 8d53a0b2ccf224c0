import { afterAll, describe, expect, it } from 'vitest';
import { ONNX_TYPE, OrtWorkerPool, encodeOnnxModel, type OnnxModel } from '@dda/backend-onnxruntime';

/** y = x + c, with the constant c baked into the model: each key's model gives its own answer. */
const addModel = (c: number): OnnxModel => ({
  graph: {
    name: `add-${c}`,
    nodes: [{ opType: 'Add', inputs: ['x', 'c'], outputs: ['y'] }],
    inputs: [{ name: 'x', elemType: ONNX_TYPE.float, shape: [2] }],
    outputs: [{ name: 'y', elemType: ONNX_TYPE.float, shape: [2] }],
    initializers: [{ name: 'c', elemType: ONNX_TYPE.float, dims: [2], data: Float32Array.of(c, c) }],
  },
});

const pools: OrtWorkerPool[] = [];
afterAll(async () => {
  for (const p of pools) await p.terminate();
});

describe('OrtWorkerPool sessions per worker', () => {
  it('keeps at most maxSessionsPerWorker sessions: the least recently run one is released and its model sent again when it is run again', async () => {
    const sent: number[] = [];
    const run = async (pool: OrtWorkerPool, c: number): Promise<number[]> => {
      const out = await pool.run(0, `add-${c}`, () => {
        sent.push(c);
        return encodeOnnxModel(addModel(c));
      }, { x: { type: 'float32', data: Float32Array.of(1, 2), dims: [2] } }, ['y']);
      return [...(out.y as Float32Array)];
    };
    const pool = await OrtWorkerPool.create(1, { maxSessionsPerWorker: 2 });
    pools.push(pool);
    expect(await run(pool, 10)).toEqual([11, 12]);
    expect(await run(pool, 20)).toEqual([21, 22]);
    expect(await run(pool, 10)).toEqual([11, 12]); // 10 is now the most recently run
    expect(await run(pool, 30)).toEqual([31, 32]); // releases 20, the least recently run
    expect(await run(pool, 10)).toEqual([11, 12]); // still held
    expect(await run(pool, 20)).toEqual([21, 22]); // sent again
    expect(sent).toEqual([10, 20, 30, 20]);
    await expect(OrtWorkerPool.create(1, { maxSessionsPerWorker: 0 })).rejects.toThrow(/maxSessionsPerWorker must be a positive integer/);
  });
});
