import { startOnnxRuntime } from '@dda/backend-onnxruntime';
const backend = await startOnnxRuntime(['onnxruntime-cpu']);
const { Tensor } = backend.ort;
const D = 156160, NT = 100;
const threads = Number(process.argv[2]);
const rowsList = JSON.parse(process.argv[3]);
const test = new Float32Array(NT * D).map((_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
for (const rows of rowsList) {
  const block = new Float32Array(rows * D).map((_, i) => ((i * 104729) % 1000) / 1000 - 0.5);
  const variants = {
    packedTest: { graph: { name: 'a', nodes: [{ opType: 'Gemm', inputs: ['blk', 'test'], outputs: ['y'], attributes: { transB: { kind: 'int', value: 1 } } }], inputs: [{ name: 'blk', elemType: 1, shape: ['r', D] }], outputs: [{ name: 'y', elemType: 1, shape: ['r', NT] }], initializers: [{ name: 'test', elemType: 1, dims: [NT, D], data: test }] } },
    packedBlockEachCall: { graph: { name: 'b', nodes: [{ opType: 'Gemm', inputs: ['test', 'blk'], outputs: ['y'], attributes: { transB: { kind: 'int', value: 1 } } }], inputs: [{ name: 'test', elemType: 1, shape: [NT, D] }, { name: 'blk', elemType: 1, shape: ['r', D] }], outputs: [{ name: 'y', elemType: 1, shape: [NT, 'r'] }] } },
  };
  for (const [name, model] of Object.entries(variants)) {
    const s = await backend.createSession(model, { intraOpNumThreads: threads });
    const feeds = name === 'packedTest' ? { blk: new Tensor('float32', block, [rows, D]) } : { test: new Tensor('float32', test, [NT, D]), blk: new Tensor('float32', block, [rows, D]) };
    await s.run(feeds);
    const reps = 6;
    const c0 = process.cpuUsage(); const t = performance.now();
    for (let i = 0; i < reps; i++) await s.run(feeds);
    const wall = (performance.now() - t) / 1000 / reps; const c = process.cpuUsage(c0); const cpu = (c.user + c.system) / 1e6 / reps;
    const gf = 2 * rows * NT * D / 1e9;
    console.log(`${name} rows=${rows} threads=${threads}: wall ${(gf / wall).toFixed(0)} GFLOP/s, per cpu-second ${(gf / cpu).toFixed(0)} GFLOP`);
    await s.release();
  }
}
