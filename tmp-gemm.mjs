import { startOnnxRuntime } from '@dda/backend-onnxruntime';
const backend = await startOnnxRuntime(['onnxruntime-cpu']);
const { Tensor } = backend.ort;
const threads = Number(process.argv[2] ?? 1);
for (const [M, K, N] of [[64, 256, 32000], [256, 256, 32000], [128, 256, 256], [512, 256, 256], [128, 256, 688], [2048, 2048, 2048]]) {
  const w = new Float32Array(N * K).map((_, i) => Math.sin(i) * 0.02);
  const s = await backend.createSession({ graph: { name: 'g', nodes: [{ opType: 'Gemm', inputs: ['x', 'w'], outputs: ['y'], attributes: { transB: { kind: 'int', value: 1 } } }],
    inputs: [{ name: 'x', elemType: 1, shape: [M, K] }], outputs: [{ name: 'y', elemType: 1, shape: [M, N] }], initializers: [{ name: 'w', elemType: 1, dims: [N, K], data: w }] } }, { intraOpNumThreads: threads });
  const x = new Tensor('float32', new Float32Array(M * K).fill(0.5), [M, K]);
  for (let i = 0; i < 3; i++) await s.run({ x });
  let best = Infinity;
  for (let r = 0; r < 5; r++) { const t = performance.now(); const reps = Math.max(1, Math.round(2e9 / (2 * M * K * N))); for (let i = 0; i < reps; i++) await s.run({ x }); best = Math.min(best, (performance.now() - t) / reps); }
  console.log(`M=${M} K=${K} N=${N} threads=${threads}: ${(2 * M * K * N / best / 1e6).toFixed(0)} GFLOP/s`);
  await s.release();
}
