import { OnnxTrainer, startOnnxRuntime, buildDecoderGraph } from '@dda/backend-onnxruntime';
import { initDecoderWeights } from '@dda/model';
const config = { vocabSize: 390, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 4, intermediateSize: 172, ropeTheta: 1e4, rmsNormEps: 1e-5, tieWordEmbeddings: false, attentionBias: false, slidingWindow: null };
const backend = await startOnnxRuntime(['onnxruntime-cpu']);
const init = initDecoderWeights({ ...config, maxSeqLen: 160 }, 0);
let seed = 1;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const ex = Array.from({ length: 320 }, () => { const n = 30 + Math.floor(rnd() * 25); const tokens = Int32Array.from({ length: n }, () => 8 + Math.floor(rnd() * 380)); return { tokens, lossMask: new Float32Array(n - 1).fill(1) }; });
const t0 = performance.now();
const { model } = buildDecoderGraph(config, null, 64, 768, { batch: 16, gradients: true, logits: false, parameters: 'all' });
console.log('graph build ms', performance.now() - t0, 'nodes', model.graph.nodes.length);
const t1 = performance.now();
const s = await backend.createSession(model); console.log('session ms', performance.now() - t1);
await s.release();
for (const [label, o] of [['1 thread', { intraOpNumThreads: 1 }], ['2 threads', { intraOpNumThreads: 2 }], ['2 workers', { workers: 2 }]]) {
  const tr = new OnnxTrainer(backend, config, 'all', init, null, o);
  await tr.train(ex.slice(0, 160), { epochs: 1, learningRate: 3e-3, batchSize: 16, seed: 0 }); // warm: sessions
  const t = performance.now();
  await tr.train(ex, { epochs: 1, learningRate: 3e-3, batchSize: 16, seed: 1 });
  const sec = (performance.now() - t) / 1000;
  console.log(label, 'steps/s', (20 / sec).toFixed(1), 'tokens/s', (ex.reduce((a, e) => a + e.tokens.length, 0) / sec).toFixed(0));
  await tr.release();
}
