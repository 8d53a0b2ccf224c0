#!/usr/bin/env node
// The gradient projection of the index and of projected runs (issue 27) at a real model's LoRA
// layout: the float64 JavaScript loop (`GradientProjector.project`, one row) against one float32
// GEMM per tensor on the onnxruntime dot-product kernel (`projectRows`, a batch of rows), in the
// same process, on the same seeded random rows, with the largest relative difference between the two.
// Usage (after `npm run build`):
//   node benchmarks/speed/projection.mjs [--model qwen2-0.5b] [--rank 16] [--dim 8192] [--rows 8] [--loop-rows 1]
// LoRA on every linear map (q, k, v, o, gate, up, down) of every layer, as issue 27's sizing.
import { cpus, loadavg, totalmem } from 'node:os';
import { arg } from './bench-lib.mjs';

const model = arg('model', 'qwen2-0.5b');
const rank = Number(arg('rank', '16'));
const dim = Number(arg('dim', '8192'));
const nRows = Number(arg('rows', '8'));
const loopRows = Number(arg('loop-rows', '1'));

const { loraWeightSpecs, realModelConfig } = await import('@dda/model');
const { GradientProjector } = await import('@dda/attribution');
await import('@dda/backend-onnxruntime'); // registers the onnxruntime dot-product kernel
const { config } = realModelConfig(model);
const specs = loraWeightSpecs(config, { rank, alpha: 2 * rank, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] });
const layout = { names: specs.map((s) => s.name), sizes: specs.map((s) => s.shape[0] * s.shape[1]) };
const d = layout.sizes.reduce((a, b) => a + b, 0);
// Seeded rows with entries of gradient-like spread.
let x = 12345;
const rand = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32) - 0.5;
const rows = Array.from({ length: nRows }, () => Float32Array.from({ length: d }, () => rand() * 1e-3));
const load0 = loadavg()[0];
const p = new GradientProjector({ kind: 'rademacher', seed: 0, dim }, layout);
let t = performance.now();
for (let m = 0; m < p.modules.length; m++) p.matrix(m);
const generateS = (performance.now() - t) / 1000;
t = performance.now();
const exact = rows.slice(0, loopRows).map((r) => p.project(r));
const loopS = (performance.now() - t) / 1000 / loopRows;
await p.projectRows(rows.slice(0, 1)); // start the kernel's session
t = performance.now();
const batch = await p.projectRows(rows);
const kernelS = (performance.now() - t) / 1000 / nRows;
let worst = 0;
exact.forEach((e, i) => {
  const scale = e.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  e.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - batch.rows[i][j]) / scale)));
});
console.log(JSON.stringify({
  model, rank, tensors: layout.names.length, entries_per_row: d, dim, rows: nRows, generate_s: generateS,
  float64_loop_s_per_row: loopS, kernel_s_per_row: kernelS, speedup: loopS / kernelS, kernel: batch.how, max_relative_difference: worst,
  machine: `${cpus().length} cpus (${cpus()[0]?.model}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB`, load: [load0, loadavg()[0]],
}, null, 2));
