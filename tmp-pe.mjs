import { OnnxDecoder, startOnnxRuntime } from '@dda/backend-onnxruntime';
import { initDecoderWeights, initLoraWeights, ALL_LORA_TARGETS } from '@dda/model';
const W = { demo: { vocab: 390, hidden: 64, layers: 2, heads: 4, ffn: 172, seq: 96, rank: 8 }, w1: { vocab: 32000, hidden: 256, layers: 4, heads: 4, ffn: 688, seq: 128, rank: 8 } }[process.argv[2]];
const n = Number(process.argv[3]);
const config = { vocabSize: W.vocab, hiddenSize: W.hidden, numLayers: W.layers, numHeads: W.heads, numKvHeads: W.heads, intermediateSize: W.ffn, ropeTheta: 1e4, rmsNormEps: 1e-5, maxSeqLen: W.seq, tieWordEmbeddings: false, attentionBias: false, slidingWindow: null };
const lora = { rank: W.rank, alpha: 2 * W.rank, targets: ALL_LORA_TARGETS };
const base = initDecoderWeights(config, 0); const lw = initLoraWeights(config, lora, 1);
const half = W.seq / 2;
const enc = Array.from({ length: n }, (_, e) => ({ tokens: Int32Array.from({ length: W.seq }, (_, t) => 8 + ((e * 7919 + t * 104729) % (W.vocab - 8))), lossMask: Float32Array.from({ length: W.seq - 1 }, (_, t) => (t >= half ? 1 : 0)) }));
const backend = await startOnnxRuntime(['onnxruntime-cpu']);
for (const cfg of JSON.parse(process.argv[4])) {
  const dec = new OnnxDecoder(backend, config, lora, base, lw, cfg);
  const ids = enc.map((_, i) => `x${i}`);
  await dec.perExampleGradients(ids.slice(0, 16), enc.slice(0, 16), 'w');
  const t = performance.now(); const c0 = process.cpuUsage();
  await dec.perExampleGradients(ids, enc, 'w');
  const c = process.cpuUsage(c0); console.log(JSON.stringify(cfg), 'ex/s', (n / ((performance.now() - t) / 1000)).toFixed(1), 'cpu-ms/ex', ((c.user + c.system) / 1000 / n).toFixed(1));
  await dec.release();
}
