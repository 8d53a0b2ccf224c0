#!/usr/bin/env node
// Speed benchmark: per-example LoRA gradients on the project's tfjs engine, next to the PyTorch
// CPU reference (per-example-gradients.py, Debian's python3-torch) on the same shape, in one run.
// Usage (after `npm run build`): node benchmarks/speed/per-example-gradients.mjs [--workload demo|w1] [--n 20]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DecoderModel, SPECIAL_TOKENS, WordTokenizer, initDecoderWeights, startTfjsBackend, ALL_LORA_TARGETS } from '@dda/model';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const WORKLOADS = {
  // the demo's model: vocabulary ~390, hidden 64, 2 layers, 4 heads, SwiGLU 172, ~90 tokens, LoRA rank 8
  demo: { vocab: 390, hidden: 64, layers: 2, heads: 4, ffn: 172, seq: 96, rank: 8 },
  // issue 6's W1
  w1: { vocab: 32000, hidden: 256, layers: 4, heads: 4, ffn: 688, seq: 128, rank: 8 },
};
const w = WORKLOADS[arg('workload', 'demo')];
const n = Number(arg('n', '20'));
const results = [];

for (const backend of ['tfjs-wasm']) {
  await startTfjsBackend([backend]);
  const vocab = [...SPECIAL_TOKENS, ...Array.from({ length: w.vocab - SPECIAL_TOKENS.length }, (_, i) => `w${i}`)];
  const config = {
    vocabSize: w.vocab, hiddenSize: w.hidden, numLayers: w.layers, numHeads: w.heads, numKvHeads: w.heads, intermediateSize: w.ffn,
    ropeTheta: 1e4, rmsNormEps: 1e-5, maxSeqLen: w.seq, tieWordEmbeddings: false, attentionBias: false, slidingWindow: null,
  };
  const model = new DecoderModel(config, new WordTokenizer(vocab), initDecoderWeights(config, 0));
  model.addLora({ rank: w.rank, alpha: 2 * w.rank, targets: ALL_LORA_TARGETS }, 1);
  const half = w.seq / 2;
  const enc = Array.from({ length: n + 2 }, (_, e) => {
    const tokens = Int32Array.from({ length: w.seq }, (_, t) => 8 + ((e * 7919 + t * 104729) % (w.vocab - 8)));
    const lossMask = Float32Array.from({ length: w.seq - 1 }, (_, t) => (t >= half ? 1 : 0));
    return { tokens, lossMask };
  });
  model.perExampleGradientsEncoded(['a', 'b'], enc.slice(0, 2), 'lora', 'warm-up');
  const t0 = performance.now();
  const g = model.perExampleGradientsEncoded(enc.slice(2).map((_, i) => `x${i}`), enc.slice(2), 'lora', 'bench');
  const sec = (performance.now() - t0) / 1000;
  results.push({ engine: `dda ${backend}`, examples_per_s: n / sec, seconds: sec, lora_dim: g.dim, rss_mb: Math.round(process.memoryUsage().rss / 2 ** 20) });
  model.dispose();
}

const py = fileURLToPath(new URL('./per-example-gradients.py', import.meta.url));
for (const threads of [1, 2]) {
  const r = spawnSync('/usr/bin/python3', [py, w.vocab, w.hidden, w.layers, w.heads, w.ffn, w.seq, w.rank, n, threads].map(String), { encoding: 'utf8' });
  if (r.status === 0) results.push(JSON.parse(r.stdout.trim().split('\n').pop()));
  else results.push({ engine: `pytorch (${threads} threads)`, error: (r.stderr || r.error?.message || '').trim().split('\n').pop() });
}
console.log(JSON.stringify({ workload: arg('workload', 'demo'), shape: w, n, results }, null, 2));
