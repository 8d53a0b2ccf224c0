#!/usr/bin/env node
// Sharded attribution against one process (issue 16): the same `dda attribute` run as one process
// and as 4 shards submitted to SLURM (dda slurm: a job array and an afterany merge), on a random-weight
// tiny LLaMA model with N training samples (packages/attribution/test/fixtures/user-run.ts's recipe).
// Reports wall times, each shard's start-up (process start to its first unit: Node, tfjs, model and
// task loading), its compute time, and the merge's time; checks that the outputs are identical.
// Needs a SLURM cluster (bash scripts/start-slurm.sh as root) and a build (npm run build).
// Usage: node benchmarks/speed/sharding.mjs [--n 2000] [--shards 4]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { loadavg, tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeTinyRun } from './tiny-run.mjs';

const arg = (name, fallback) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? Number(process.argv[i + 1]) : fallback; };
const N = arg('n', 2000);
const SHARDS = arg('shards', 4);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'packages/cli/bin/dda.js');
const dir = mkdtempSync(join(tmpdir(), 'dda-shard-bench-'));

// The run: a base folder, two LoRA checkpoints, N training samples, 8 queries.
const args = [...writeTinyRun(dir, N), '--progress', 'log'];

const load = () => loadavg()[0].toFixed(2);
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model}; load ${load()} at the start`);
// 1. One process.
let t = Date.now();
const one = spawnSync(process.execPath, [BIN, 'attribute', ...args, '--out', join(dir, 'single')], { encoding: 'utf8' });
if (one.status !== 0) throw new Error(one.stderr);
const single = (Date.now() - t) / 1000;
// 2. dda slurm: the array and the merge.
t = Date.now();
const sub = execFileSync(process.execPath, [BIN, 'slurm', ...args, '--out', join(dir, 'sharded'), '--shards', String(SHARDS), '--cpus-per-task', '1', '--mem', '2G'], { encoding: 'utf8' });
const [, , merge] = /array job (\d+).*merge job (\d+)/.exec(sub) ?? [];
while (execFileSync('squeue', ['-h', '-j', merge, '-o', '%i'], { encoding: 'utf8' }).trim() !== '') await new Promise((r) => setTimeout(r, 250));
const sharded = (Date.now() - t) / 1000;
const logs = join(dir, 'sharded', 'slurm');
const seconds = (line) => Number(/^\[\s*([\d.]+)s\]/.exec(line)?.[1] ?? NaN);
const shardRows = readdirSync(logs).filter((f) => f.startsWith('attribute-')).sort().map((f) => {
  const lines = readFileSync(join(logs, f), 'utf8').split('\n');
  const first = lines.find((l) => /units$/.test(l));
  const done = lines.find((l) => /done: \d+ artifacts/.test(l));
  const manifest = JSON.parse(readFileSync(join(dir, 'sharded', 'shards', `shard-${/_(\d+)\.log$/.exec(f)[1]}-of-${SHARDS}.json`), 'utf8'));
  return { shard: manifest.index, startup: seconds(first), total: manifest.seconds, units: manifest.units };
});
const mergeLog = readFileSync(join(logs, readdirSync(logs).find((f) => f.startsWith('merge-'))), 'utf8').split('\n');
const mergeSeconds = seconds(mergeLog.filter((l) => /^\[/.test(l)).pop() ?? '');
const same = ['scores.npy', 'topk.csv'].every((f) => readFileSync(join(dir, 'single', f)).equals(readFileSync(join(dir, 'sharded', f))));
console.log(`\n${N} training samples × 8 queries, 3 checkpoints (θ0 and 2 LoRA), blocks of 128; load ${load()} at the end`);
console.log(`| run | wall s |\n|---|---:|\n| one process | ${single.toFixed(1)} |\n| ${SHARDS} shards on SLURM + merge (submission to merge end) | ${sharded.toFixed(1)} |`);
console.log(`\n| shard | units | start-up s (to its first unit) | shard total s |\n|---:|---:|---:|---:|`);
for (const r of shardRows) console.log(`| ${r.shard} | ${r.units} | ${r.startup.toFixed(1)} | ${r.total.toFixed(1)} |`);
console.log(`\nmerge: ${mergeSeconds.toFixed(1)} s (checks the manifests, loads the task, reads every stored block, writes the outputs)`);
console.log(`outputs identical to the one-process run: ${same}`);
rmSync(dir, { recursive: true, force: true });
