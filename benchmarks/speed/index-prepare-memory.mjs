#!/usr/bin/env node
// What an index shard holds after reading its training file (issue 27): prepareIndexBuild (the
// built @dda/attribution) for shard --shard i/n of a folder made by index-scale.mjs (its demo and
// train-<rows>.jsonl), with the memory after it, after a full GC (the live heap: what it keeps),
// and the seconds. Run it under /usr/bin/time -v for the peak RSS.
//
// Usage: node --expose-gc benchmarks/speed/index-prepare-memory.mjs --dir dda-bench/index-scale-5k-after-1m --rows 1000000 --shard 0/200
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, uptime } from './bench-lib.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const { prepareIndexBuild } = await import(resolve(ROOT, 'packages/attribution/dist/gradient-index.js'));
const { indexShardRows } = await import(resolve(ROOT, 'packages/attribution/dist/gradient-index-shards.js'));
const dir = resolve(ROOT, arg('dir', 'dda-bench/index-scale'));
const rows = arg('rows', '250000');
const [index, count] = String(arg('shard', '0/2')).split('/').map(Number);
const mb = (x) => Number((x / 1e6).toFixed(1));
const memory = () => {
  const m = process.memoryUsage();
  return { rss_mb: mb(m.rss), heap_used_mb: mb(m.heapUsed), external_mb: mb(m.external) };
};
const out = { uptime_at_start: uptime(), start: memory() };
const t0 = process.hrtime.bigint();
const c0 = process.cpuUsage();
const p = await prepareIndexBuild(
  { base: `${dir}/demo/experiment/base`, checkpoints: [`${dir}/demo/experiment/run`], checkpoint: 'checkpoint-45', train: `${dir}/train-${rows}.jsonl`, out: `${dir}/prepare-memory-out` },
  (total, blockRows) => indexShardRows(total, blockRows, { index, count }),
);
const cpu = process.cpuUsage(c0);
Object.assign(out, {
  prepare_s: Number((Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)), prepare_cpu_s: Number(((cpu.user + cpu.system) / 1e6).toFixed(1)),
  total: p.total, rows: p.rows, samples_kept: p.samples.length, loss_samples: p.lossSamples.length, prepared: memory(),
});
if (global.gc) {
  global.gc();
  out.after_gc = memory();
}
out.uptime_at_end = uptime();
console.log(JSON.stringify(out));
