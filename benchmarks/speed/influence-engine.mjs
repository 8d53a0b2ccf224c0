#!/usr/bin/env node
// The influence scorers' float64 products (issue 27): the float64 JavaScript loops (engine js)
// against onnxruntime's double Gemm (engine onnxruntime, the default under auto), in the same
// process, alternating, on the same seeded gradients at the default benchmark's size: the
// llama2-tiny LoRA layout (rank 8 on q, k, v, o, gate, up, down of both layers: 28 tensors, 19,520
// entries a row), 240 training rows in two streamed blocks (128 + 112) and 30 test rows. Prints
// seconds per scoring of one checkpoint for each scorer and engine, their ratio and the largest
// difference relative to the largest score.
// Usage (after `npm run build`):
//   node benchmarks/speed/influence-engine.mjs [--train 240] [--test 30] [--reps 3]
import { cpus, loadavg } from 'node:os';
import { arg } from './bench-lib.mjs';

const nTrain = Number(arg('train', '240'));
const nTest = Number(arg('test', '30'));
const reps = Number(arg('reps', '3'));

const { resolveModelSpec, loraWeightSpecs } = await import('@dda/model');
const { SeededRandom, scoreByStreamedFit } = await import('@dda/core');
const { ifExactScoresOnEngine, ifLissaScoresOnEngine, dataInfStreamedFit, ifEkfacStreamedFit } = await import('@dda/scorer-influence');
await import('@dda/backend-onnxruntime'); // registers the onnxruntime dot-product kernel and its float64 GEMM

const spec = resolveModelSpec('llama2-tiny');
const specs = loraWeightSpecs({ ...spec.config, vocabSize: 400 }, { rank: 8, alpha: 16, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] });
const names = specs.map((s) => s.name);
const shapes = specs.map((s) => s.shape);
const sizes = shapes.map(([a, b]) => a * b);
const dim = sizes.reduce((a, b) => a + b, 0);
const rng = new SeededRandom(7);
const rows = (n) => Array.from({ length: n }, () => Float32Array.from({ length: dim }, () => rng.normal() * 1e-2 * 2 ** Math.round(rng.normal() * 2)));
const matrix = (r, prefix) => ({ ids: r.map((_, i) => `${prefix}${i}`), dim, rows: r, parameterNames: names, parameterSizes: sizes, parameterShapes: shapes, checkpoint: 'checkpoint-1' });
const train = matrix(rows(nTrain), 't');
const test = matrix(rows(nTest), 'q');
const blocks = [128, nTrain - 128].filter((n) => n > 0).map((n, b) => ({ ...train, ids: train.ids.slice(b * 128, b * 128 + n), rows: train.rows.slice(b * 128, b * 128 + n) }));

const scorers = {
  'if-exact (stored, dual)': (engine) => ifExactScoresOnEngine(train, test, { engine }),
  'if-lissa (stored, dual, depth 200)': (engine) => ifLissaScoresOnEngine(train, test, { engine }),
  'datainf (streamed, 2 fit passes + scores)': (engine) => scoreByStreamedFit(dataInfStreamedFit({ engine }), blocks, test, 'checkpoint-1'),
  'if-ekfac (streamed, 2 fit passes + scores)': (engine) => scoreByStreamedFit(ifEkfacStreamedFit({ engine }), blocks, test, 'checkpoint-1'),
};
const load0 = loadavg()[0];
console.log(`${cpus().length} cores (${cpus()[0]?.model}), 1-minute load ${load0.toFixed(1)}; ${nTrain} training and ${nTest} test rows of ${dim} entries (${names.length} tensors); best of ${reps}`);
console.log('| scorer | float64 loop (js), s | onnxruntime double Gemm, s | ratio | largest difference / largest score |');
console.log('|---|---:|---:|---:|---:|');
const results = [];
for (const [name, run] of Object.entries(scorers)) {
  await run('onnxruntime'); // the session is created once per process
  const best = { js: Infinity, onnxruntime: Infinity };
  let values = {};
  for (let r = 0; r < reps; r++) {
    for (const engine of ['js', 'onnxruntime']) {
      const t = performance.now();
      values[engine] = (await run(engine)).values;
      best[engine] = Math.min(best[engine], (performance.now() - t) / 1000);
    }
  }
  const scale = Math.max(...values.js.map(Math.abs));
  let diff = 0;
  for (let k = 0; k < values.js.length; k++) diff = Math.max(diff, Math.abs(values.js[k] - values.onnxruntime[k]));
  results.push({ name, ...best, diff: diff / scale });
  console.log(`| ${name} | ${best.js.toFixed(2)} | ${best.onnxruntime.toFixed(2)} | ${(best.js / best.onnxruntime).toFixed(1)}× | ${(diff / scale).toExponential(1)} |`);
}
console.log(`1-minute load at the end ${loadavg()[0].toFixed(1)}`);
