import { startOnnxRuntime, buildDecoderGraph, encodeOnnxModel } from '@dda/backend-onnxruntime';
import { initDecoderWeights } from '@dda/model';
const config = { vocabSize: 390, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 4, intermediateSize: 172, ropeTheta: 1e4, rmsNormEps: 1e-5, tieWordEmbeddings: false, attentionBias: false, slidingWindow: null };
const backend = await startOnnxRuntime(['onnxruntime-cpu']);
const init = initDecoderWeights({ ...config, maxSeqLen: 160 }, 0);
const { model } = buildDecoderGraph(config, null, 64, 768, { batch: 16, gradients: true, logits: false, parameters: 'all' });
const bytes = encodeOnnxModel(model);
const { Tensor } = backend.ort;
const feeds = { ids: new Tensor('int64', new BigInt64Array(1024).map((_, i) => BigInt(8 + i % 300)), [1024]), loss_positions: new Tensor('int64', new BigInt64Array(768).map((_, i) => BigInt(i)), [768]), targets: new Tensor('int64', new BigInt64Array(768).fill(9n), [768]), loss_weights: new Tensor('float32', new Float32Array(768).fill(1 / 768), [768, 1]) };
for (const [n, t] of init) feeds[n] = new Tensor('float32', t.data, [...t.shape]);
for (const level of ['disabled', 'basic', 'extended', 'all', 'all', 'basic']) {
  const t0 = performance.now();
  const s = await backend.ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, graphOptimizationLevel: level });
  const create = performance.now() - t0;
  for (let i = 0; i < 10; i++) await s.run(feeds);
  const t = performance.now(); for (let i = 0; i < 40; i++) await s.run(feeds);
  console.log(level, 'create ms', create.toFixed(0), 'run ms', ((performance.now() - t) / 40).toFixed(2));
  await s.release();
}
