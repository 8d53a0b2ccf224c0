#!/usr/bin/env node
// Where the peak RSS of per-example gradients at real size goes (issue 27): one process loads a
// random-weight BF16 folder at a real configuration (writeRandomModelFolder, made on first use),
// with the base weights either widened to float32 in JavaScript (`float`, what W3 did) or kept as
// their stored BF16 bits and decoded inside the graph (`narrow`), then runs the per-example
// gradients of one example (rank-16 LoRA on every linear map, loss on the second half) three
// times, printing after each stage: RSS, the process's peak RSS, V8's ArrayBuffer bytes (the
// weights held in JavaScript) and the time. The engine's activation estimate is printed beside.
// Usage (after `npm run build`):
//   node benchmarks/memory/narrow-weights-probe.mjs [--model tinyllama-1.1b] [--layers 4] [--seq 512]
//     [--weights float|narrow] [--arena default|1|0] [--mem-pattern 1|0] [--runs 3] [--dir /tmp/dda-w3-4-BF16] [--recompute 0|1]
//     [--batch 1] [--max-run-bytes 2147483648] (examples per run: each run takes this many distinct examples in one
//     batched graph, if the engine's run estimate, gradientRunBytes, printed beside, fits --max-run-bytes)
// Above 3 GB of RSS run it under `flock /work/tmp/bigmem.lock` on the shared development machine.
import { existsSync, readFileSync } from 'node:fs';
import { arg } from '../speed/bench-lib.mjs';

const model = arg('model', 'tinyllama-1.1b');
const layers = Number(arg('layers', '4'));
const T = Number(arg('seq', '512'));
const mode = arg('weights', 'narrow');
// Default: the engine's (on with float32 weights, off with narrow ones).
const arenaArg = arg('arena', 'default');
const arena = arenaArg === 'default' ? undefined : arenaArg !== '0';
const runs = Number(arg('runs', '3'));
const recompute = arg('recompute', '0') === '1';
const memPattern = arg('mem-pattern', '1') !== '0';
const batch = Number(arg('batch', '1'));
const maxRunBytes = Number(arg('max-run-bytes', String(2 ** 31)));
const workload = { 'tinyllama-1.1b': 'w3', 'qwen2-0.5b': 'w4' }[model] ?? model;
const dir = arg('dir', `/tmp/dda-${workload}-${layers}-BF16`);
const { fillUniformStream, loraWeightSpecs, openModelFolder, realModelConfig, writeRandomModelFolder } = await import('@dda/model');
const { OnnxDecoder, activationBytesPerExample, startOnnxRuntime, storedBaseWeights } = await import('@dda/backend-onnxruntime');

if (!existsSync(`${dir}/config.json`) || JSON.parse(readFileSync(`${dir}/config.json`, 'utf8')).num_hidden_layers !== layers) {
  process.stderr.write(`writing ${model} (${layers} layers, BF16) into ${dir} ...\n`);
  writeRandomModelFolder(dir, { model, seed: 0, dtype: 'BF16', numLayers: layers, init: { normNoise: 0.1, biasNoise: 0.02 } });
}
const gb = (b) => (b / 1e9).toFixed(2);
const status = () => {
  const m = process.memoryUsage();
  return `rss ${gb(m.rss)} GB, peak ${gb(process.resourceUsage().maxRSS * 1024)} GB, JS array buffers ${gb(m.arrayBuffers)} GB`;
};
console.log(`start: ${status()}`);
const t0 = performance.now();
const folder = openModelFolder(dir);
const config = folder.config;
const base = mode === 'narrow' ? storedBaseWeights(folder.weights) : new Map(folder.weights.names.map((n) => [n, folder.weights.readFloat32(n)]));
const forms = {};
for (const t of base.values()) {
  const f = t.bits ? `${t.format}${t.scale !== undefined && t.scale !== 1 ? ' scaled' : ''}` : 'float32';
  forms[f] = (forms[f] ?? 0) + 1;
}
console.log(`${model}, ${layers} layers, BF16 stored ${gb(folder.weights.storedBytes)} GB; weights ${mode} (${Object.entries(forms).map(([f, n]) => `${n} ${f}`).join(', ')}) loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${status()}`);
const lora = { rank: 16, alpha: 32, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] };
const loraWeights = new Map(loraWeightSpecs(config, lora).map(({ name, shape }) => {
  const data = new Float32Array(shape[0] * shape[1]);
  fillUniformStream(7, name, 0, 0.05, 0, data);
  return [name, { shape, data }];
}));
console.log(`LoRA weights: ${status()}; activation estimate of one example ${gb(activationBytesPerExample(config, T, T / 2))} GB`);
const backend = await startOnnxRuntime(['onnxruntime-cpu']);
const dec = new OnnxDecoder(backend, config, lora, base, loraWeights, { intraOpNumThreads: 1, exampleBatch: batch, maxRunBytes, sessionOptions: { ...(arena === undefined ? {} : { enableCpuMemArena: arena }), enableMemPattern: memPattern }, ...(recompute ? { recompute: true } : {}) });
const half = T / 2;
const examples = Array.from({ length: batch }, (_, b) => ({ tokens: Int32Array.from({ length: T }, (_, k) => (k * k * 7919 + k * 104729 + 13 + b * 31) % config.vocabSize), lossMask: Float32Array.from({ length: T - 1 }, (_, t) => (t >= half ? 1 : 0)) }));
const e = examples[0];
console.log(`runs of ${dec.runPlan(examples).map((r) => r.length).join(', ')} examples; run estimate (gradientRunBytes) ${[1, 2].map((b) => `${b} per run ${gb(dec.runBytes(T, half, b))} GB`).join(', ')}`);
for (let r = 0; r < runs; r++) {
  const t = performance.now();
  const g = await dec.perExampleGradients(examples.map((_, b) => `e${b}`), examples, 'x');
  let norm = 0;
  for (const v of g.rows[0]) norm += v * v;
  console.log(`run ${r}: ${((performance.now() - t) / 1000).toFixed(1)} s, ‖g‖ ${Math.sqrt(norm).toPrecision(8)}: ${status()}`);
}
console.log(`loss ${await dec.loss(e)}: ${status()}`);
await dec.release();
console.log(JSON.stringify({ model, layers, T, weights: mode, arena: arena ?? 'default', memPattern, recompute, batch, peak_rss_gb: Number(gb(process.resourceUsage().maxRSS * 1024)) }));
