#!/usr/bin/env node
// Streamed training gradients against the gradient store (issue 27, first part): the same run with
// the default (streamed: each block of training gradients scored, or summarized for trak, and
// dropped) and with --store-gradients (every block written to <out>/artifacts/gradients/, the
// behaviour before). Reports wall time, peak RSS (/usr/bin/time -v), the bytes of the artifact
// folder and of its stored training gradients, and checks that both give the same scores.npy.
// 1. `dda demo` (pretraining, fine-tuning, generation, then grad-dot at θ0 and 2 checkpoints), each
//    mode in a fresh folder. 2. `dda attribute` on a random-weight llama2-tiny run with N training
//    samples (the recipe of sharding.mjs), grad-dot and trak, each mode in a fresh folder.
// Usage: node benchmarks/speed/streaming.mjs [--n 2000] [--demo 0] [--scorers grad-dot,trak]   (after npm run build)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeTinyRun } from './tiny-run.mjs';

const arg = (name, fallback) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? Number(process.argv[i + 1]) : fallback; };
const N = arg('n', 2000);
const DEMO = arg('demo', 1) !== 0;
const i = process.argv.indexOf('--scorers');
const SCORERS = i >= 0 ? process.argv[i + 1].split(',') : ['grad-dot', 'trak'];
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'packages/cli/bin/dda.js');
const dir = mkdtempSync(join(tmpdir(), 'dda-stream-bench-'));
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

/** Bytes of every file under `d`. */
function du(d) {
  if (!existsSync(d)) return 0;
  let bytes = 0;
  for (const e of readdirSync(d, { withFileTypes: true })) bytes += e.isDirectory() ? du(join(d, e.name)) : statSync(join(d, e.name)).size;
  return bytes;
}
/** Bytes of the stored training gradients (`gradients/<checkpoint>/train/`) under an artifact folder. */
const trainGradientBytes = (artifacts) => (existsSync(join(artifacts, 'gradients')) ? readdirSync(join(artifacts, 'gradients')).reduce((a, cp) => a + du(join(artifacts, 'gradients', cp, 'train')), 0) : 0);

/** Runs the CLI under /usr/bin/time -v: wall seconds and peak RSS (GB). */
function cli(args) {
  const t = Date.now();
  const r = TIME ? spawnSync(TIME, ['-v', process.execPath, BIN, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 }) : spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`dda ${args.join(' ')}: ${r.stderr.slice(-2000)}`);
  const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1] ?? NaN) / 1e6;
  return { wall: (Date.now() - t) / 1000, rss, stdout: r.stdout, stderr: r.stderr };
}
const mb = (b) => (b / 1e6).toFixed(b < 1e7 ? 2 : 1);
const load = () => loadavg()[0].toFixed(2);
const same = (a, b) => Buffer.compare(readFileSync(a), readFileSync(b)) === 0;

console.log(`machine: ${cpus().length} × ${cpus()[0]?.model}; load ${load()} at the start; ${new Date().toISOString()}`);
const rows = [];
// 1. The demo.
for (const mode of DEMO ? ['stored', 'streamed'] : []) {
  const out = join(dir, `demo-${mode}`);
  const r = cli(['demo', '--out', out, ...(mode === 'stored' ? ['--store-gradients'] : [])]);
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  rows.push({ run: 'dda demo (240 training samples, grad-dot)', mode, wall: r.wall, step: summary.seconds?.['gradients+scores'], rss: r.rss, disk: du(join(out, 'artifacts')), grads: trainGradientBytes(join(out, 'artifacts')), load: load() });
}
const demoSame = DEMO ? same(join(dir, 'demo-stored', 'results.csv'), join(dir, 'demo-streamed', 'results.csv')) : 'not run';

// 2. dda attribute on N training samples (sharding.mjs's recipe), grad-dot and trak.
const args = ['attribute', ...writeTinyRun(dir, N)];
const identical = {};
for (const scorer of SCORERS) {
  for (const mode of ['stored', 'streamed']) {
    const out = join(dir, `${scorer}-${mode}`);
    const r = cli([...args, '--scorer', scorer, '--out', out, ...(mode === 'stored' ? ['--store-gradients'] : [])]);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    const path = /training gradients (streamed|stored)[^\n]*/.exec(r.stderr + r.stdout)?.[0] ?? '';
    rows.push({ run: `dda attribute, ${N} training samples, 8 queries, ${scorer}`, mode, wall: r.wall, step: summary.seconds?.total, rss: r.rss, disk: du(join(out, 'artifacts')), grads: trainGradientBytes(join(out, 'artifacts')), load: load(), path });
  }
  identical[scorer] = same(join(dir, `${scorer}-stored`, 'scores.npy'), join(dir, `${scorer}-streamed`, 'scores.npy'));
}

console.log('\n| run | training gradients | wall s | attribution s | peak RSS GB | artifacts MB | of which training gradients MB | load |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.run} | ${r.mode} | ${r.wall.toFixed(1)} | ${r.step?.toFixed(1) ?? '-'} | ${r.rss.toFixed(2)} | ${mb(r.disk)} | ${mb(r.grads)} | ${r.load} |`);
console.log(`\ndemo results.csv identical between the two modes: ${demoSame}; scores.npy identical: ${Object.entries(identical).map(([s, v]) => `${s} ${v}`).join(', ')}`);
for (const r of rows.filter((x) => x.path)) console.log(`log (${r.run}, ${r.mode}): ${r.path}`);
rmSync(dir, { recursive: true, force: true });
