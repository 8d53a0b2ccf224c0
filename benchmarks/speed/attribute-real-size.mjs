#!/usr/bin/env node
// `dda attribute` end to end on a TinyLlama-1.1B-shaped (issue 13) or Qwen2-0.5B-shaped (issue 27,
// --model qwen2-0.5b) model: makes a random base folder at the published configuration
// (writeRandomModelFolder, BF16, with the family's real tokenizer: LLaMA-2's or Qwen2's), two PEFT LoRA checkpoints (adapter_config.json + adapter_model.safetensors, random
// A and B), a training file and a query file, then runs
//   node packages/cli/bin/dda.js attribute --base ... --checkpoints c1 c2 --train ... --queries ...
//     --gradient-engine onnxruntime --out ...
// under /usr/bin/time -v, and prints the wall time, the peak RSS, the disk the output folder
// (scores, progress and artifacts) took at its largest (sampled every 2 s) and at the end, and the load.
// The issues' size is 1,000 training samples × 10 queries at 2 checkpoints, all layers
// (--train 1000 --queries 10); --layers, --train, --queries and --words make it smaller.
// --shards N: the same attribution as N shards (`dda attribute ... --shard i/N`, what each task of
// `dda slurm`'s job array runs), one after the other, then `dda merge`; each step measured on its
// own (wall, peak RSS, disk of the shared output folder), and the merged top scores printed.
// --resume: a long run (the issues' 1,000 samples take hours here) goes on after an interruption:
// the output folder is kept (each `dda attribute` or shard resumes at its first unfinished block),
// and `<dir>/results.json` keeps each finished step, which is not run again (a step killed half-way
// is measured again from its resume: its wall and peak are of that last attempt).
// Usage (after `npm run build`):
//   node benchmarks/speed/attribute-real-size.mjs [--model tinyllama-1.1b|qwen2-0.5b] [--layers all]
//     [--train 1000] [--queries 10] [--words 40] [--rank 8] [--targets q_proj,v_proj]
//     [--dir /tmp/dda-attribute-real-size-<model>-<layers>] [--keep-out] [--extra "<more dda attribute flags>"]
//     [--shards 4] [--resume]
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, uptime } from './bench-lib.mjs';

const model = arg('model', 'tinyllama-1.1b');
const { fillUniformStream, loadLlama2Tokenizer, loadPresetTokenizer, loraWeightSpecs, parseAdapterConfig, realModelConfig, writePeftAdapter, writeRandomModelFolder } = await import('@dda/model');
const layers = Number(arg('layers', String(realModelConfig(model).config.numLayers)));
const nTrain = Number(arg('train', '1000'));
const nQueries = Number(arg('queries', '10'));
const words = Number(arg('words', '40'));
const rank = Number(arg('rank', '8'));
const targetModules = arg('targets', 'q_proj,v_proj').split(',');
const dir = arg('dir', `/tmp/dda-attribute-real-size-${model}-${layers}`);
const extra = arg('extra', '').split(' ').filter((x) => x !== '');
const root = fileURLToPath(new URL('../..', import.meta.url));

const start = uptime();
const base = join(dir, 'base');
const { config, family } = realModelConfig(model, { numLayers: layers });
let writeS = 0;
if (!existsSync(join(base, 'config.json')) || JSON.parse(readFileSync(join(base, 'config.json'), 'utf8')).num_hidden_layers !== layers) {
  rmSync(base, { recursive: true, force: true });
  const t = performance.now();
  const tokenizer = family === 'qwen2' ? await loadPresetTokenizer('qwen2') : await loadLlama2Tokenizer();
  writeRandomModelFolder(base, { model, numLayers: layers, seed: 0, tokenizer });
  writeS = (performance.now() - t) / 1000;
}
// Two checkpoints of one LoRA run: the same A, B growing from the first to the second.
const { config: lora } = parseAdapterConfig({ peft_type: 'LORA', r: rank, lora_alpha: 2 * rank, target_modules: targetModules });
const checkpoints = [1, 2].map((step) => {
  const cp = join(dir, 'run', `checkpoint-${step}`);
  const weights = new Map(loraWeightSpecs(config, lora).map(({ name, shape }) => {
    const data = new Float32Array(shape[0] * shape[1]);
    fillUniformStream(5, name, 0, name.includes('lora_B') ? 0.01 * step : 0.05, 0, data);
    return [name, { shape, data }];
  }));
  writePeftAdapter(cp, lora, weights);
  return cp;
});
// Text from a fixed word list: prompts and responses of about `words` words each.
const VOCAB = 'the a river city council report water bridge school market museum train station road park summer winter north south old new said found opened built during after before with from near over people year month week'.split(' ');
const text = (seed, n) => Array.from({ length: n }, (_, k) => VOCAB[(seed * 7919 + k * 104729 + k * k * 31) % VOCAB.length]).join(' ');
const jsonl = (rows) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
writeFileSync(join(dir, 'train.jsonl'), jsonl(Array.from({ length: nTrain }, (_, i) => ({ id: `t${i}`, prompt: text(i, words), response: text(i + 100003, words) }))));
writeFileSync(join(dir, 'queries.jsonl'), jsonl(Array.from({ length: nQueries }, (_, i) => ({ id: `q${i}`, prompt: text(i + 7, words), output: text(i + 200003, words) }))));
const shards = Number(arg('shards', '0'));
const resume = process.argv.includes('--resume');
const out = join(dir, shards > 0 ? `out-${shards}-shards` : 'out');
const resultsPath = join(dir, shards > 0 ? `results-${shards}-shards.json` : 'results.json');
if (!resume) {
  rmSync(out, { recursive: true, force: true });
  rmSync(resultsPath, { force: true });
}
mkdirSync(dir, { recursive: true });
const results = existsSync(resultsPath) ? JSON.parse(readFileSync(resultsPath, 'utf8')) : {};
// A resumed run must be the same run: its arguments are kept beside its steps.
const runArgs = { model, layers, train: nTrain, queries: nQueries, words, rank, targets: targetModules, extra, shards };
if (Object.keys(results).length > 0 && JSON.stringify(results.args) !== JSON.stringify(runArgs)) {
  throw new Error(`${resultsPath} holds a run with other arguments (${JSON.stringify(results.args)}; now ${JSON.stringify(runArgs)}): give the same arguments, another --dir, or drop --resume to start again`);
}
results.args = runArgs;
const cli = join(root, 'packages/cli/bin/dda.js');
const attributeArgs = ['attribute', '--base', base, '--checkpoints', ...checkpoints, '--train', join(dir, 'train.jsonl'),
  '--queries', join(dir, 'queries.jsonl'), '--out', out, '--gradient-engine', 'onnxruntime', '--progress', 'log', ...extra];
/** Bytes under a folder (du -sb), 0 while it does not exist. */
const du = (d) => (existsSync(d) ? Number(execFileSync('du', ['-sb', d], { encoding: 'utf8' }).split('\t')[0]) : 0);

/** Runs `dda <ddaArgs>` under /usr/bin/time -v as step `name` (skipped when results.json has it), sampling the output folder's size every 2 s. */
async function step(name, ddaArgs) {
  if (results[name]) return results[name];
  const t0 = performance.now();
  let peakDisk = 0;
  const sampler = setInterval(() => { try { peakDisk = Math.max(peakDisk, du(out)); } catch { /* a file renamed away while du ran */ } }, 2000);
  const loadStart = uptime();
  const r = await new Promise((resolve) => {
    const child = spawn('/usr/bin/time', ['-v', process.execPath, cli, ...ddaArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => { stdout += b; });
    child.stderr.on('data', (b) => { stderr += b; process.stderr.write(b); });
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
  clearInterval(sampler);
  const finalDisk = du(out);
  const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1] ?? NaN) * 1024;
  const cpuS = ['User', 'System'].reduce((a, w) => a + Number(new RegExp(`${w} time \\(seconds\\): ([\\d.]+)`).exec(r.stderr)?.[1] ?? NaN), 0);
  // dda's own count of the artifacts (score blocks, gradients) this process computed and found done.
  const artifacts = /artifacts: (\d+) computed, (\d+) reused/.exec(r.stderr);
  const res = {
    status: r.status, wall_s: (performance.now() - t0) / 1000, cpu_s: cpuS, peak_rss_gb: rss / 1e9, out_disk_peak_gb: Math.max(peakDisk, finalDisk) / 1e9, out_disk_final_gb: finalDisk / 1e9,
    uptime_start: loadStart, uptime_end: uptime(), artifacts: artifacts ? { computed: Number(artifacts[1]), reused: Number(artifacts[2]) } : null,
    stdout_tail: r.stdout.trim().split('\n').slice(-12), stderr_tail: r.stderr.trim().split('\n').filter((l) => !l.startsWith('\t')).slice(-15),
  };
  if (r.status !== 0) {
    console.log(JSON.stringify({ step: name, ...res }, null, 2));
    throw new Error(`step ${name} failed (status ${r.status}); run again with --resume to go on`);
  }
  results[name] = res;
  writeFileSync(resultsPath, `${JSON.stringify(results, null, 1)}\n`);
  return res;
}

const t0 = performance.now();
const steps = {};
writeFileSync(resultsPath, `${JSON.stringify(results, null, 1)}\n`);
if (shards > 0) {
  for (let i = 0; i < shards; i++) steps[`shard-${i}-of-${shards}`] = await step(`shard-${i}-of-${shards}`, [...attributeArgs, '--shard', `${i}/${shards}`]);
  steps.merge = await step('merge', ['merge', '--out', out]);
} else {
  steps.attribute = await step('attribute', attributeArgs);
}
const finalDisk = du(out);
const all = Object.values(steps);
console.log(JSON.stringify({
  model, layers, train: nTrain, queries: nQueries, words, lora: { rank, targets: targetModules }, checkpoints: 2, extra, shards, write_base_s: writeS,
  base_bytes: du(base), status: 0, wall_s: all.reduce((a, x) => a + x.wall_s, 0), wall_this_call_s: (performance.now() - t0) / 1000,
  peak_rss_gb: Math.max(...all.map((x) => x.peak_rss_gb)), out_disk_peak_gb: Math.max(...all.map((x) => x.out_disk_peak_gb)), out_disk_final_gb: finalDisk / 1e9,
  machine: `${cpus().length} cpus (${cpus()[0]?.model}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
  uptime_start: start, uptime_end: uptime(), steps,
  stdout_tail: all[all.length - 1].stdout_tail, stderr_tail: all[all.length - 1].stderr_tail,
}, null, 2));
if (!process.argv.includes('--keep-out') && !resume) rmSync(out, { recursive: true, force: true });
