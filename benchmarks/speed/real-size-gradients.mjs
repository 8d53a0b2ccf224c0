#!/usr/bin/env node
// W3 and W4 (issue 13), W5 to W7 (issue 26: the Llama-3, Qwen3 and Gemma-3 families): per-example
// LoRA gradients (rank 16 on q, k, v, o, gate, up, down) of a
// real-size model folder, sequence 512 with the loss on the second half, on the onnxruntime engine
// and on PyTorch (real-size-gradients.py, Debian's python3-torch) over the same folder, the same
// adapters and the same token ids, in one run, each engine in its own process (peak RSS its own).
// The folder is made first with writeRandomModelFolder (seeded random weights at the published
// configuration, all layers; BF16 as the published checkpoints unless --dtype F32) and reused when
// it is already there. FLOPs per example are counted in bench-lib.mjs (neededFlops, with GQA);
// "of peak" divides the achieved GFLOP/s by the best MatMul n = 2048 measured in the same run.
// Usage (after `npm run build`):
//   node benchmarks/speed/real-size-gradients.mjs [--workload w3|w4|w5|w6|w7|<a REAL_MODELS name>] [--n 4] [--seq 512] [--rank 16]
//     [--layers all] [--dtype BF16] [--dir /tmp/dda-w3] [--engines onnxruntime,pytorch] [--ort-threads 1,2]
//     [--torch-threads 1,2] [--reps 1] [--glibc-keep 0,1] [--ort-backend onnxruntime-cpu|onnxruntime-cuda|onnxruntime-webgpu] [--torch-device cpu|cuda]
//     [--torch-blas DIR] [--recompute auto|on|off[,...]] [--example-batch 8] [--weights float|narrow]
// --weights narrow: the engine keeps the BF16/F16 base weights as their stored bits (storedBaseWeights of
// @dda/backend-onnxruntime, half the bytes of float32) and decodes them inside the graph, exactly; float (the
// default) widens them to float32 in JavaScript first.
// --recompute: the engine's per-layer recomputation in the gradient graph (OnnxDecoder's recompute: auto, the
// default, by size; on; off), a list to run the engine once per setting; the result names the setting and what ran.
// --example-batch: the engine's most examples per run (OnnxDecoder's exampleBatch, default 8; fewer when maxRunBytes,
// 2 GiB of estimated activations, allows fewer). The warm-up runs use the timed runs' examples per run (the same graph).
// --torch-blas DIR: the PyTorch processes load the libblas.so.3 in DIR (torchBlasEnv in bench-lib.mjs), e.g. OpenBLAS
// where the machine has only the reference BLAS (`apt-get download libopenblas0-pthread && dpkg-deb -x libopenblas0-pthread_*.deb o`,
// then DIR = o/usr/lib/x86_64-linux-gnu/openblas-pthread); the PyTorch result names the BLAS it ran.
// On a GPU machine: benchmarks/gpu/w3-gpu.sh.
// --glibc-keep 0,1 runs every configuration twice: as is, and with glibc keeping freed memory in the
// process (GLIBC_KEEP_FREED in bench-lib.mjs), which spares the page faults of re-touching fresh
// memory at every run.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GLIBC_KEEP_FREED, arg, matmulPeaks, neededFlops, run, torchBlasEnv, uptime } from './bench-lib.mjs';

const WORKLOADS = { w3: 'tinyllama-1.1b', w4: 'qwen2-0.5b', w5: 'llama3.2-1b', w6: 'qwen3-0.6b', w7: 'gemma-3-1b' };
const workload = arg('workload', 'w3');
const modelName = WORKLOADS[workload] ?? workload;
const n = Number(arg('n', '4'));
const seq = Number(arg('seq', '512'));
const rank = Number(arg('rank', '16'));
const reps = Number(arg('reps', '1'));
const layersArg = arg('layers', 'all');
const dtype = arg('dtype', 'BF16');
const dir = arg('dir', `/tmp/dda-${workload}-${layersArg}-${dtype}`);
const TARGETS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'];

/** Token k of example e (the same formula as real-size-gradients.py). */
const tokensOf = (e, vocab) => Int32Array.from({ length: seq }, (_, k) => (k * k * 7919 + k * 104729 + 13 + e * 31337) % vocab);

async function child() {
  const t0 = performance.now();
  const { openModelFolder, fillUniformStream, loraWeightSpecs } = await import('@dda/model');
  const { OnnxDecoder, recomputeLayers, startOnnxRuntime, storedBaseWeights } = await import('@dda/backend-onnxruntime');
  const folder = openModelFolder(dir);
  const config = folder.config;
  // Float32 base weights, widened tensor by tensor from the stored dtype (onnxruntime-node cannot take BF16 tensors),
  // or with --weights narrow the stored bits (BF16 as scaled half where exact), decoded inside the graph.
  const narrow = arg('weights', 'float') === 'narrow';
  const base = narrow ? storedBaseWeights(folder.weights) : new Map(folder.weights.names.map((name) => [name, folder.weights.readFloat32(name)]));
  const loadS = (performance.now() - t0) / 1000;
  const lora = { rank, alpha: 2 * rank, targets: TARGETS };
  const loraWeights = new Map(loraWeightSpecs(config, lora).map(({ name, shape }) => {
    const data = new Float32Array(shape[0] * shape[1]);
    fillUniformStream(7, name, 0, 0.05, 0, data);
    return [name, { shape, data }];
  }));
  const threads = Number(arg('ort-threads', '1'));
  const backendId = arg('ort-backend', 'onnxruntime-cpu');
  const backend = await startOnnxRuntime([backendId]);
  const recomputeArg = arg('recompute', 'auto');
  const recompute = recomputeArg === 'on' ? true : recomputeArg === 'off' ? false : 'auto';
  const dec = new OnnxDecoder(backend, config, lora, base, loraWeights, { ...(backendId === 'onnxruntime-cpu' ? { intraOpNumThreads: threads } : {}), recompute, exampleBatch: Number(arg('example-batch', '8')) });
  const half = seq / 2;
  const enc = Array.from({ length: n + 1 }, (_, e) => ({ tokens: tokensOf(e, config.vocabSize), lossMask: Float32Array.from({ length: seq - 1 }, (_, t) => (t >= half ? 1 : 0)) }));
  const tw = performance.now();
  // Two runs of the timed runs' shape (examples per run): the first builds the gradient graph and its session, the second lets onnxruntime's memory arena reach its size.
  const perRun = dec.runPlan(enc.slice(1))[0]?.length ?? 1;
  const warm = Array.from({ length: perRun }, (_, k) => ({ tokens: tokensOf(n + 1 + k, config.vocabSize), lossMask: enc[0].lossMask }));
  for (let w = 0; w < 2; w++) await dec.perExampleGradients(warm.map((_, k) => `warm-up ${k}`), warm, 'warm-up');
  const warmS = (performance.now() - tw) / 1000;
  const times = [];
  const c0 = process.cpuUsage();
  let dim;
  for (let r = 0; r < reps; r++) {
    const ts = performance.now();
    dim = (await dec.perExampleGradients(enc.slice(1).map((_, i) => `x${i}`), enc.slice(1), 'bench')).dim;
    times.push((performance.now() - ts) / 1000);
  }
  const cpu = process.cpuUsage(c0);
  const plan = dec.runPlan(enc.slice(1));
  // Peak RSS of the gradient work alone; then the loss of example 0 (checked against PyTorch's), which builds a second session.
  const peakGradients = Math.round(process.resourceUsage().maxRSS / 1024);
  const loss0 = await dec.loss(enc[0]);
  await dec.release();
  console.log(JSON.stringify({
    engine: `dda ${backendId}${backendId === 'onnxruntime-cpu' ? `, 1 session × ${threads} threads` : ''}, base weights ${dec.basePlacement}${narrow ? ' (stored bits, decoded in the graph)' : ' (float32)'}, ${plan[0]?.length} per run, recompute ${recomputeArg} (${recomputeLayers(config, seq, recompute) ? 'layers recomputed' : 'activations kept'})`, device: backend.device,
    recompute: recomputeArg, per_run: plan[0]?.length,
    examples_per_s: n / Math.min(...times), seconds: times, examples_per_cpu_s: (reps * n) / ((cpu.user + cpu.system) / 1e6),
    load_s: loadS, warm_up_s: warmS, loss0, lora_dim: dim, peak_rss_mb: peakGradients, peak_rss_with_loss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  }));
}

if (process.argv.includes('--child')) {
  await child();
} else {
  const start = uptime();
  const { headDim, openModelFolder, realModelConfig, writeRandomModelFolder } = await import('@dda/model');
  const layers = layersArg === 'all' ? undefined : Number(layersArg);
  const { config } = realModelConfig(modelName, layers === undefined ? {} : { numLayers: layers });
  const stamp = join(dir, 'config.json');
  let writeS = 0;
  if (!existsSync(stamp) || JSON.parse(readFileSync(stamp, 'utf8')).num_hidden_layers !== config.numLayers) {
    rmSync(dir, { recursive: true, force: true });
    const t = performance.now();
    process.stderr.write(`writing ${modelName} (${config.numLayers} layers, ${dtype}) into ${dir} ...\n`);
    writeRandomModelFolder(dir, { model: modelName, seed: 0, dtype, ...(layers === undefined ? {} : { numLayers: layers }), init: { normNoise: 0.1, biasNoise: 0.02 } });
    writeS = (performance.now() - t) / 1000;
  }
  const stored = openModelFolder(dir).weights.storedBytes;
  const torchBlas = arg('torch-blas', undefined);
  const { peaks, peak } = matmulPeaks((t) => torchBlasEnv(torchBlas, t));
  const self = fileURLToPath(import.meta.url);
  const common = ['--workload', workload, '--n', String(n), '--seq', String(seq), '--rank', String(rank), '--reps', String(reps), '--dir', dir, '--example-batch', arg('example-batch', '8'), '--weights', arg('weights', 'float')];
  const results = [];
  const engines = arg('engines', 'onnxruntime,pytorch').split(',');
  const ortBackend = arg('ort-backend', 'onnxruntime-cpu');
  const keeps = arg('glibc-keep', '0').split(',').map(Number);
  const tagged = (r, keep) => (keep ? { ...r, engine: `${r.engine}, glibc keeps freed memory`, glibc_tunables: GLIBC_KEEP_FREED.GLIBC_TUNABLES } : r);
  if (engines.includes('onnxruntime')) {
    for (const t of arg('ort-threads', '1,2').split(',')) {
      for (const rc of arg('recompute', 'auto').split(',')) {
        for (const keep of keeps) results.push(tagged(run(process.execPath, [self, '--child', ...common, '--ort-threads', t, '--ort-backend', ortBackend, '--recompute', rc], `dda ${ortBackend}, ${t} threads, recompute ${rc}`, keep ? GLIBC_KEEP_FREED : {}), keep));
      }
    }
  }
  if (engines.includes('pytorch')) {
    const py = fileURLToPath(new URL('./real-size-gradients.py', import.meta.url));
    for (const t of arg('torch-threads', '1,2').split(',')) {
      const device = arg('torch-device', 'cpu');
      for (const keep of keeps) {
        const env = { ...torchBlasEnv(torchBlas, t), ...(keep ? GLIBC_KEEP_FREED : {}) };
        results.push(tagged(run(arg('python', '/usr/bin/python3'), [py, dir, '--n', String(n), '--seq', String(seq), '--rank', String(rank), '--threads', t, '--rows-only', '1', '--reps', String(reps), '--device', device], `pytorch ${device} ${t} threads`, env), keep));
      }
    }
  }
  const shape = { vocab: config.vocabSize, hidden: config.hiddenSize, qHidden: headDim(config) * config.numHeads, kvHidden: headDim(config) * config.numKvHeads, layers: config.numLayers, ffn: config.intermediateSize, seq, rank };
  const gflopPerExample = neededFlops(shape, seq / 2 - 1) / 1e9;
  for (const r of results) {
    if (r.examples_per_s) Object.assign(r, { gflops: r.examples_per_s * gflopPerExample, of_peak: (r.examples_per_s * gflopPerExample) / peak, rss_of_stored: (r.peak_rss_mb * 2 ** 20) / stored });
  }
  console.log(JSON.stringify({
    workload, model: modelName, layers: config.numLayers, dtype, stored_gb: stored / 1e9, float32_gb: (stored / (dtype === 'F32' ? 1 : 0.5)) / 1e9, write_s: writeS,
    n, seq, rank, machine: `${process.arch}, ${cpus().length} cpus (${cpus()[0]?.model}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}`,
    gflop_per_example: gflopPerExample, peak_gflops: peak, peaks, uptime_start: start, uptime_end: uptime(), results,
  }, null, 2));
}
