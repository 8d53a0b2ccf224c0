#!/usr/bin/env node
// The whole demo (pretraining θ0, LoRA fine-tuning, generation of the test errors, per-example
// gradients at four checkpoints, scores, debias/denoise, metrics) on each engine, each run in a
// fresh output folder and its own process (issue 18: `npm run demo` at most 30 s after the build).
// Reports wall seconds, the demo's own step seconds (summary.json), peak RSS and the load average.
// Needs a build (npm run build).
//   node benchmarks/speed/end-to-end.mjs [--seed 0] [--engines onnxruntime,tfjs]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, uptime } from './bench-lib.mjs';

const seed = arg('seed', '0');
const engines = arg('engines', 'onnxruntime,tfjs').split(',');
const BIN = join(fileURLToPath(new URL('../..', import.meta.url)), 'packages/cli/bin/dda.js');
console.log(`# end-to-end demo, seed ${seed}; ${cpus().length} × ${cpus()[0]?.model}; ${uptime()}`);
console.log('| engine (training, generation, gradients) | wall s | pretrain s | fine-tune s | generate s | attribution s | peak RSS | test errors | load before → after |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---|');
for (const engine of engines) {
  const out = mkdtempSync(join(tmpdir(), `dda-e2e-${engine}-`));
  const load = loadavg()[0];
  const t0 = Date.now();
  // GNU time's %M: the child's peak RSS in KiB.
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, BIN, 'demo', '--seed', seed, '--out', out, '--engine', engine, '--gradient-engine', engine, '--quiet'], { encoding: 'utf8' });
  const wall = (Date.now() - t0) / 1000;
  if (r.status !== 0) {
    console.log(`| ${engine} | failed: ${r.stderr.trim().split('\n').slice(-2).join(' ')} |`);
    continue;
  }
  const rssGb = Number(r.stderr.trim().split('\n').pop()) / 1024 ** 2;
  const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  const sec = s.seconds ?? {};
  const attribution = Object.entries(sec).filter(([k]) => !['dataset', 'pretrain', 'finetune', 'generate', 'files', 'total'].includes(k)).reduce((a, [, v]) => a + v, 0);
  const f = (x) => (x === undefined ? '–' : x.toFixed(1));
  console.log(`| ${engine} (${s.backend}) | ${wall.toFixed(1)} | ${f(sec.pretrain)} | ${f(sec.finetune)} | ${f(sec.generate)} | ${f(attribution)} | ${rssGb.toFixed(2)} GB | ${s.errors.length} | ${load.toFixed(1)} → ${loadavg()[0].toFixed(1)} |`);
  rmSync(out, { recursive: true, force: true });
}
