#!/usr/bin/env node
// Speed benchmark: per-example LoRA gradients on the project's engines (tfjs-wasm, onnxruntime-cpu)
// next to the PyTorch CPU reference (per-example-gradients.py, Debian's python3-torch) on the same
// shape, in one run. Every engine runs in its own process, so its peak RSS is its own.
// Usage (after `npm run build`): node benchmarks/speed/per-example-gradients.mjs [--workload demo|w1] [--n 20]
//   [--engines tfjs-wasm,onnxruntime-cpu] [--ort-threads-list 1,2] (onnxruntime runs once per thread count)
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

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
const workload = arg('workload', 'demo');
const w = WORKLOADS[workload];
const n = Number(arg('n', '20'));

async function child(engine) {
  const threads = arg('ort-threads');
  const { DecoderModel, SPECIAL_TOKENS, WordTokenizer, initDecoderWeights, initLoraWeights, startTfjsBackend, ALL_LORA_TARGETS } = await import('@dda/model');
  const config = {
    vocabSize: w.vocab, hiddenSize: w.hidden, numLayers: w.layers, numHeads: w.heads, numKvHeads: w.heads, intermediateSize: w.ffn,
    ropeTheta: 1e4, rmsNormEps: 1e-5, maxSeqLen: w.seq, tieWordEmbeddings: false, attentionBias: false, slidingWindow: null,
  };
  const lora = { rank: w.rank, alpha: 2 * w.rank, targets: ALL_LORA_TARGETS };
  const base = initDecoderWeights(config, 0);
  const loraWeights = initLoraWeights(config, lora, 1);
  const half = w.seq / 2;
  const enc = Array.from({ length: n + 2 }, (_, e) => {
    const tokens = Int32Array.from({ length: w.seq }, (_, t) => 8 + ((e * 7919 + t * 104729) % (w.vocab - 8)));
    const lossMask = Float32Array.from({ length: w.seq - 1 }, (_, t) => (t >= half ? 1 : 0));
    return { tokens, lossMask };
  });
  let t0;
  let dim;
  let firstCallS;
  if (engine === 'onnxruntime-cpu') {
    const { OnnxDecoder, startOnnxRuntime } = await import('@dda/backend-onnxruntime');
    const dec = new OnnxDecoder(await startOnnxRuntime(['onnxruntime-cpu']), config, lora, base, loraWeights, threads ? { intraOpNumThreads: Number(threads) } : {});
    const tf = performance.now();
    await dec.lossAndGradient(enc[0]); // builds the graph and the session for this length
    firstCallS = (performance.now() - tf) / 1000;
    await dec.lossAndGradient(enc[1]);
    t0 = performance.now();
    for (const e of enc.slice(2)) dim = (await dec.lossAndGradient(e)).gradient.length;
  } else {
    await startTfjsBackend([engine]);
    const vocab = [...SPECIAL_TOKENS, ...Array.from({ length: w.vocab - SPECIAL_TOKENS.length }, (_, i) => `w${i}`)];
    const model = new DecoderModel(config, new WordTokenizer(vocab), base);
    model.setLora(lora, loraWeights);
    model.perExampleGradientsEncoded(['a', 'b'], enc.slice(0, 2), 'lora', 'warm-up');
    t0 = performance.now();
    dim = model.perExampleGradientsEncoded(enc.slice(2).map((_, i) => `x${i}`), enc.slice(2), 'lora', 'bench').dim;
  }
  const sec = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({
    engine: `dda ${engine}${engine.startsWith('onnxruntime') ? `, ${threads ?? 'default'} threads` : ''}`, examples_per_s: n / sec, seconds: sec, lora_dim: dim,
    ...(firstCallS === undefined ? {} : { first_call_s: firstCallS }), peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  }));
}

function run(cmd, args, label) {
  const load = loadavg()[0];
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status === 0) return { ...JSON.parse(r.stdout.trim().split('\n').pop()), load_before: load };
  return { engine: label, error: (r.stderr || r.error?.message || '').trim().split('\n').slice(-2).join(' | '), load_before: load };
}

if (process.argv.includes('--child')) {
  await child(arg('child'));
} else {
  const self = fileURLToPath(import.meta.url);
  const results = [];
  for (const engine of arg('engines', 'tfjs-wasm,onnxruntime-cpu').split(',')) {
    const threadCounts = engine.startsWith('onnxruntime') ? arg('ort-threads-list', '1,2').split(',') : [undefined];
    for (const t of threadCounts) {
      const extra = t === undefined ? [] : ['--ort-threads', t];
      results.push(run(process.execPath, [self, '--child', engine, '--workload', workload, '--n', String(n), ...extra], `dda ${engine}`));
    }
  }
  const py = fileURLToPath(new URL('./per-example-gradients.py', import.meta.url));
  for (const [threads, rowsOnly] of [[1, 0], [2, 0], [1, 1], [2, 1]]) {
    const a = [w.vocab, w.hidden, w.layers, w.heads, w.ffn, w.seq, w.rank, n, threads, rowsOnly].map(String);
    results.push(run('/usr/bin/python3', [py, ...a], `pytorch (${threads} threads${rowsOnly ? ', loss rows only' : ''})`));
  }
  console.log(JSON.stringify({ workload, shape: w, n, load_end: loadavg(), results }, null, 2));
}
