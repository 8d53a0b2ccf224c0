#!/usr/bin/env node
// Memory benchmark: peak RSS of writing and of opening a real-size (random-weight) TinyLlama-1.1B
// folder (LLaMA-2 architecture, 22 layers, 1.1 B parameters) with the lazy loader, tensor by tensor,
// next to the eager loaders. Every measurement runs in its own process, so each peak RSS
// (process.resourceUsage().maxRSS) is its own.
// Usage (after `npm run build`): node benchmarks/memory/load-real-size.mjs [--dir /tmp/dda-tinyllama-random]
//   [--dtype BF16|F16|F32] [--shard-gb 1] [--model tinyllama-1.1b] [--modes open,lazy-raw,lazy-f32,eager-f32,eager-whole-file]
// Modes: open = config, tokenizer and headers only; lazy-raw / lazy-f32 = every tensor read one at a
// time as stored bytes / widened to float32, each dropped before the next; eager-f32 = loadModelFolder
// (all float32 tensors held); eager-whole-file = each file read whole then decoded (the loader before
// the lazy reader).
// The folder is written once (about 2.2 GB in BF16, 4.4 GB in F32) and reused if its config.json exists.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const model = arg('model', 'tinyllama-1.1b');
const dtype = arg('dtype', 'BF16');
const shardGb = Number(arg('shard-gb', '1'));
const dir = arg('dir', `/tmp/dda-${model}-random-${dtype.toLowerCase()}-${shardGb}g`);
const modes = arg('modes', 'open,lazy-raw,lazy-f32,eager-f32,eager-whole-file').split(',');
const GB = 1e9;
const peakGb = () => (process.resourceUsage().maxRSS * 1024) / GB;

async function child(mode) {
  const m = await import('@dda/model');
  const t0 = performance.now();
  let bytes = 0;
  let tensors = 0;
  let widened = 0;
  if (mode === 'write') {
    const { config, files } = m.writeRandomModelFolder(dir, { model, seed: 0, dtype, maxShardBytes: shardGb * GB });
    bytes = files.filter((f) => f.endsWith('.safetensors')).reduce((s, f) => s + statSync(join(dir, f)).size, 0);
    tensors = m.decoderWeightSpecs(config).length;
  } else if (mode === 'open') {
    const f = m.openModelFolder(dir);
    tensors = f.weights.names.length;
  } else if (mode === 'lazy-raw' || mode === 'lazy-f32') {
    const f = m.openModelFolder(dir, { onWiden: (e) => { widened += e.float32Bytes; } });
    for (const name of f.weights.names) {
      const t = mode === 'lazy-raw' ? f.weights.readRaw(name).bytes : f.weights.readFloat32(name).data;
      bytes += t.byteLength;
      tensors++;
    }
  } else if (mode === 'eager-f32') {
    const f = m.loadModelFolder(dir);
    for (const t of f.weights.values()) bytes += t.data.byteLength;
    tensors = f.weights.size;
  } else if (mode === 'eager-whole-file') {
    // What readSafetensorsFolder did before the lazy reader: each file read whole, then decoded to float32.
    const files = readdirSync(dir).filter((f) => f.endsWith('.safetensors'));
    const all = new Map();
    for (const f of files) {
      const buf = readFileSync(join(dir, f));
      for (const [k, t] of m.readSafetensors(buf, f).tensors) all.set(k, t);
    }
    for (const t of all.values()) bytes += t.data.byteLength;
    tensors = all.size;
  }
  const s = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ mode, tensors, gb: bytes / GB, widenedGb: widened / GB, s, peakRssGb: peakGb() }));
}

function main() {
  const self = fileURLToPath(import.meta.url);
  const run = (mode) => {
    const load = loadavg()[0];
    const r = spawnSync(process.execPath, [self, '--child', mode, ...process.argv.slice(2)], { encoding: 'utf8', maxBuffer: 1 << 24 });
    const line = r.stdout.trim().split('\n').pop();
    if (r.status !== 0 || !line?.startsWith('{')) return { mode, error: (r.stderr.trim().split('\n').find((l) => /Error/.test(l)) ?? `exit ${r.status}`).slice(0, 160), load };
    return { ...JSON.parse(line), load };
  };
  const rows = [];
  if (!existsSync(join(dir, 'config.json'))) rows.push(run('write'));
  const stored = readdirSync(dir).filter((f) => f.endsWith('.safetensors')).map((f) => statSync(join(dir, f)).size);
  console.log(`${model} random folder ${dir}: ${dtype}, ${stored.length} file(s), ${(stored.reduce((a, b) => a + b, 0) / GB).toFixed(2)} GB, largest ${(Math.max(...stored) / GB).toFixed(2)} GB`);
  for (const mode of modes) rows.push(run(mode));
  console.log('| mode | tensors | data read (GB) | widened (GB) | seconds | peak RSS (GB) | load |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    if (r.error) console.log(`| ${r.mode} | – | – | – | – | fails: ${r.error} | ${r.load.toFixed(1)} |`);
    else console.log(`| ${r.mode} | ${r.tensors} | ${r.gb.toFixed(2)} | ${r.widenedGb.toFixed(2)} | ${r.s.toFixed(1)} | ${r.peakRssGb.toFixed(2)} | ${r.load.toFixed(1)} |`);
  }
}

if (process.argv.includes('--child')) await child(process.argv[process.argv.indexOf('--child') + 1]);
else main();
