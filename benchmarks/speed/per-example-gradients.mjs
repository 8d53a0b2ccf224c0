#!/usr/bin/env node
// Speed benchmark: per-example LoRA gradients on the project's engines (tfjs-wasm, onnxruntime-cpu)
// next to the PyTorch CPU reference (per-example-gradients.py, Debian's python3-torch) on the same
// shape, and the machine's GEMM peak (MatMul n = 2048, best of onnxruntime and torch.mm), in one
// run. Every engine runs in its own process, so its peak RSS is its own.
// onnxruntime runs in three configurations: one session with 1 intra-op thread, one with 2, and
// 2 worker threads (one session and 1 intra-op thread each); each takes --example-batch examples
// per run (per-example adapter copies in one batched graph), and once more one example per run
// with 1 thread (the engine before issue 18).
// The FLOPs an example needs are counted in bench-lib.mjs (neededFlops); "of limit" is examples/s divided by
// peak GFLOP/s / GFLOP per example. cpu_s is the CPU time of the timed part (every thread of the
// process): on a shared machine, examples per CPU-second say more about the code than wall time.
// Usage (after `npm run build`): node benchmarks/speed/per-example-gradients.mjs [--workload demo|w1] [--n 32]
//   [--engines tfjs-wasm,onnxruntime-cpu] [--example-batch 8] [--reps 3]
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { arg, matmulPeaks, median, neededFlops, run, uptime } from './bench-lib.mjs';

const WORKLOADS = {
  // the demo's model: vocabulary ~390, hidden 64, 2 layers, 4 heads, SwiGLU 172, ~90 tokens, LoRA rank 8
  demo: { vocab: 390, hidden: 64, layers: 2, heads: 4, ffn: 172, seq: 96, rank: 8 },
  // issue 6's W1
  w1: { vocab: 32000, hidden: 256, layers: 4, heads: 4, ffn: 688, seq: 128, rank: 8 },
};
const workload = arg('workload', 'demo');
const w = WORKLOADS[workload];
const n = Number(arg('n', '32'));
const exampleBatch = Number(arg('example-batch', '8'));
// The n examples are timed `reps` times; examples/s is from the fastest pass (the least disturbed by
// other jobs on a shared machine), examples_per_s_median from the median one.
const reps = Number(arg('reps', '3'));
// Whole chunks for every worker, so that the timed run needs no graph the warm-up did not build.
if (n % (2 * exampleBatch) !== 0) throw new Error(`--n ${n} must be a multiple of 2 × --example-batch (${2 * exampleBatch})`);
// Loss positions: t = seq/2 .. seq-2 (the second half's next tokens).
const lossRows = w.seq / 2 - 1;

async function child(engine) {
  const threads = arg('ort-threads');
  const { SPECIAL_TOKENS, WordTokenizer, initDecoderWeights, initLoraWeights, ALL_LORA_TARGETS } = await import('@dda/model');
  const { DecoderModel, startTfjsBackend } = await import('@dda/backend-tfjs');
  const config = {
    vocabSize: w.vocab, hiddenSize: w.hidden, numLayers: w.layers, numHeads: w.heads, numKvHeads: w.heads, intermediateSize: w.ffn,
    ropeTheta: 1e4, rmsNormEps: 1e-5, maxSeqLen: w.seq, tieWordEmbeddings: false, attentionBias: false, slidingWindow: null,
  };
  const lora = { rank: w.rank, alpha: 2 * w.rank, targets: ALL_LORA_TARGETS };
  const base = initDecoderWeights(config, 0);
  const loraWeights = initLoraWeights(config, lora, 1);
  const half = w.seq / 2;
  const enc = Array.from({ length: Math.max(n + 2, 64) }, (_, e) => {
    const tokens = Int32Array.from({ length: w.seq }, (_, t) => 8 + ((e * 7919 + t * 104729) % (w.vocab - 8)));
    const lossMask = Float32Array.from({ length: w.seq - 1 }, (_, t) => (t >= half ? 1 : 0));
    return { tokens, lossMask };
  });
  let t0;
  let c0;
  let cpu;
  const times = [];
  let dim;
  let firstCallS;
  let label = `dda ${engine}`;
  if (engine === 'onnxruntime-cpu') {
    const { OnnxDecoder, startOnnxRuntime } = await import('@dda/backend-onnxruntime');
    const workers = arg('ort-workers');
    const dec = new OnnxDecoder(await startOnnxRuntime(['onnxruntime-cpu']), config, lora, base, loraWeights, {
      exampleBatch, ...(threads ? { intraOpNumThreads: Number(threads) } : {}), ...(workers ? { workers: Number(workers) } : {}),
    });
    label = `dda onnxruntime-cpu, ${workers ? `${workers} workers × 1 thread` : `1 session × ${threads ?? 'default'} threads`}, ${exampleBatch} per run`;
    const ids = enc.map((_, i) => `x${i}`);
    const tf = performance.now();
    // Builds the graph and a session (on every worker) for chunks of exampleBatch examples of this length.
    await dec.perExampleGradients(ids.slice(0, 2 * exampleBatch), enc.slice(0, 2 * exampleBatch), 'warm-up');
    firstCallS = (performance.now() - tf) / 1000;
    c0 = process.cpuUsage();
    for (let r = 0; r < reps; r++) {
      t0 = performance.now();
      dim = (await dec.perExampleGradients(ids.slice(0, n), enc.slice(2, n + 2), 'bench')).dim;
      times.push((performance.now() - t0) / 1000);
    }
    cpu = process.cpuUsage(c0);
    await dec.release();
  } else {
    await startTfjsBackend([engine]);
    const vocab = [...SPECIAL_TOKENS, ...Array.from({ length: w.vocab - SPECIAL_TOKENS.length }, (_, i) => `w${i}`)];
    const model = new DecoderModel(config, new WordTokenizer(vocab), base);
    model.setLora(lora, loraWeights);
    model.perExampleGradientsEncoded(['a', 'b'], enc.slice(0, 2), 'lora', 'warm-up');
    c0 = process.cpuUsage();
    for (let r = 0; r < reps; r++) {
      t0 = performance.now();
      dim = model.perExampleGradientsEncoded(enc.slice(2, n + 2).map((_, i) => `x${i}`), enc.slice(2, n + 2), 'lora', 'bench').dim;
      times.push((performance.now() - t0) / 1000);
    }
    cpu = process.cpuUsage(c0);
    model.dispose();
  }
  console.log(JSON.stringify({
    engine: label, examples_per_s: n / Math.min(...times), examples_per_s_median: n / median(times), seconds: times,
    examples_per_cpu_s: (reps * n) / ((cpu.user + cpu.system) / 1e6), lora_dim: dim,
    ...(firstCallS === undefined ? {} : { first_call_s: firstCallS }), peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  }));
}

if (process.argv.includes('--child')) {
  if (arg('child') === 'peak') {
    const { measureMatMulPeak, startOnnxRuntime } = await import('@dda/backend-onnxruntime');
    const backend = await startOnnxRuntime(['onnxruntime-cpu']);
    const runs = [];
    for (let r = 0; r < 3; r++) runs.push((await measureMatMulPeak(backend, 2048, 5)).gflops);
    console.log(JSON.stringify({ engine: 'onnxruntime-cpu MatMul 2048', matmul2048_gflops: Math.max(...runs), runs }));
  } else {
    await child(arg('child'));
  }
} else {
  const self = fileURLToPath(import.meta.url);
  const start = uptime();
  const { peaks, peak } = matmulPeaks();
  const results = [];
  const common = ['--workload', workload, '--n', String(n), '--reps', String(reps)];
  for (const engine of arg('engines', 'tfjs-wasm,onnxruntime-cpu').split(',')) {
    if (engine.startsWith('onnxruntime')) {
      const batch = String(exampleBatch);
      for (const extra of [['--ort-threads', '1', '--example-batch', batch], ['--ort-threads', '2', '--example-batch', batch], ['--ort-workers', '2', '--example-batch', batch], ['--ort-threads', '1', '--example-batch', '1']]) {
        results.push(run(process.execPath, [self, '--child', engine, ...common, ...extra], `dda ${engine}`));
      }
    } else {
      results.push(run(process.execPath, [self, '--child', engine, ...common], `dda ${engine}`));
    }
  }
  const py = fileURLToPath(new URL('./per-example-gradients.py', import.meta.url));
  for (const [threads, rowsOnly] of [[1, 0], [2, 0], [1, 1], [2, 1]]) {
    const a = [w.vocab, w.hidden, w.layers, w.heads, w.ffn, w.seq, w.rank, n, threads, rowsOnly, reps].map(String);
    results.push(run('/usr/bin/python3', [py, ...a], `pytorch (${threads} threads${rowsOnly ? ', loss rows only' : ''})`));
  }
  const gflopPerExample = neededFlops(w, lossRows) / 1e9;
  const limit = peak / gflopPerExample;
  for (const r of results) {
    if (r.examples_per_s) Object.assign(r, { gflops: r.examples_per_s * gflopPerExample, of_limit: r.examples_per_s / limit });
  }
  console.log(JSON.stringify({
    workload, shape: w, n, machine: `${process.arch}, ${cpus().length} cpus (${cpus()[0]?.model}), node ${process.version}`,
    gflop_per_example: gflopPerExample, peak_gflops: peak, limit_examples_per_s: limit, peaks, uptime_start: start, uptime_end: uptime(), results,
  }, null, 2));
}
