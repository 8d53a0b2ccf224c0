#!/usr/bin/env node
// The gradient index at scale (issue 27): `dda index build` in shards over N training rows of the
// demo's tiny model (its θ0 pretrained and LoRA fine-tuned by `dda demo`, llama2-shaped, 64 wide,
// 2 layers, rank-8 LoRA on every linear map: 19,520 gradient entries per sample), projected to the
// default k = 8,192, at several row counts; then `dda index query` with 1 and with 100 queries
// (top-100; cold: the index file evicted from the page cache first, warm: again at once), and numpy
// reading the index in the documented line. Every step runs in its own process under
// /usr/bin/time -v (wall, peak RSS) at nice 10; a process expected above 3 GB runs under
// flock /work/tmp/bigmem.lock when that lock's folder exists.
//
// Training rows: the demo's synthetic generator (datasets/hallucination), one data set of --rows
// distinct news documents with their summaries (seed 0; the generator refuses a repeated
// document), ids s0000000.. ; the smaller sizes are its first rows. Queries: 100 held-out documents
// of the generator (seed 1) with their reference summaries as outputs.
//
// Resumable: the working folder (default dda-bench/index-scale, git-ignored) keeps results.json,
// one entry per finished step (the demo, the data, each shard of each size, each merge, each
// query, numpy); a step killed half-way runs again (a shard resumes at its first unfinished block,
// as `dda index build` does). Run the same command again to go on; it prints the tables at the end.
//
// Usage: node benchmarks/speed/index-scale.mjs [--rows 250000] [--sizes 10000,100000]
//        [--shard-rows 50000] [--dir dda-bench/index-scale] [--checkpoint checkpoint-45] [--steps build,query,numpy]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, stepRunner, uptime } from './bench-lib.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'packages/cli/bin/dda.js');
const ROWS = Number(arg('rows', '250000'));
const SIZES = [...new Set([...String(arg('sizes', '10000,100000')).split(',').map(Number).filter((x) => x > 0 && x < ROWS), ROWS])].sort((a, b) => a - b);
const SHARD_ROWS = Number(arg('shard-rows', '50000'));
const DIR = resolve(ROOT, arg('dir', 'dda-bench/index-scale'));
const CHECKPOINT = arg('checkpoint', 'checkpoint-45');
const STEPS = new Set(String(arg('steps', 'build,query,numpy')).split(','));
// --shard-list 3,4: build only these shards (of every size), e.g. in a second process beside one that builds the others; the merge waits for all.
const SHARD_LIST = arg('shard-list') === undefined ? null : new Set(String(arg('shard-list')).split(',').map(Number));
const TOP_K = 100;
const BIGMEM = '/work/tmp/bigmem.lock';

mkdirSync(DIR, { recursive: true });
// --results: this process's results file (default results.json); the steps finished in every
// results*.json of the folder count as done, so two processes may build different sizes at once.
const resultsPath = join(DIR, arg('results', 'results.json'));
const readResults = () => Object.assign({}, ...readdirSync(DIR).filter((f) => /^results.*\.json$/.test(f)).sort().map((f) => JSON.parse(readFileSync(join(DIR, f), 'utf8'))));
const results = readResults();
const mine = existsSync(resultsPath) ? JSON.parse(readFileSync(resultsPath, 'utf8')) : {};
const save = () => {
  writeFileSync(`${resultsPath}.${process.pid}.tmp`, `${JSON.stringify(mine, null, 1)}\n`);
  renameSync(`${resultsPath}.${process.pid}.tmp`, resultsPath);
};
const log = (line) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);

/**
 * Runs `cmd args` under /usr/bin/time -v at nice 10 (and the big-memory lock when `bigmem`), stdout
 * and stderr to `logFile`; returns wall seconds, peak RSS (GB), the load before and after.
 */
function timed(cmd, args, logFile, { bigmem = false, cwd = DIR } = {}) {
  const timeFile = `${logFile}.time`;
  const inner = ['/usr/bin/time', '-v', '-o', timeFile, 'nice', '-n', '10', cmd, ...args];
  const full = bigmem && existsSync('/work/tmp') ? ['flock', BIGMEM, ...inner] : inner;
  const loadBefore = loadavg()[0];
  const t0 = Date.now();
  const r = spawnSync(full[0], full.slice(1), { encoding: 'utf8', maxBuffer: 1 << 28, cwd });
  const wall = (Date.now() - t0) / 1000;
  writeFileSync(logFile, `${r.stdout ?? ''}${r.stderr ?? ''}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}); see ${logFile}:\n${(r.stderr ?? '').split('\n').slice(-8).join('\n')}`);
  const time = readFileSync(timeFile, 'utf8');
  const cpuS = ['User', 'System'].reduce((a, w) => a + Number(new RegExp(`${w} time \\(seconds\\): ([\\d.]+)`).exec(time)?.[1] ?? NaN), 0);
  const rssKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(time)?.[1]);
  const timeWall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)/.exec(time)?.[1] ?? '';
  const secs = timeWall.split(':').reduce((a, x) => a * 60 + Number(x), 0);
  return { wall_s: Number(secs.toFixed(2)), cpu_s: Number(cpuS.toFixed(2)), wall_incl_lock_s: Number(wall.toFixed(2)), peak_rss_gb: Number((rssKb / 1e6).toFixed(3)), load_before: Number(loadBefore.toFixed(2)), load_after: Number(loadavg()[0].toFixed(2)), out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** Runs `fn` once as the step `name` (its result kept in results.json), unless it has finished before. */
const step = stepRunner(results, (name, r) => {
  mine[name] = r;
  save();
}, log);

const node = process.execPath;
const dda = (...a) => [BIN, ...a];
results.machine ??= { cpus: `${cpus().length} × ${cpus()[0]?.model}`, memory_gb: Number((totalmem() / 1e9).toFixed(1)) };
mine.runs = [...(mine.runs ?? []), { started: new Date().toISOString(), uptime_at_start: uptime(), args: process.argv.slice(2).join(' ') }];
mine.machine = results.machine;
save();

// 1. The demo's experiment: θ0, LoRA checkpoints, the model whose gradients are indexed.
const exp = join(DIR, 'demo', 'experiment');
step('demo', () => {
  rmSync(join(DIR, 'demo'), { recursive: true, force: true });
  return timed(node, dda('demo', '--out', join(DIR, 'demo')), join(DIR, 'demo.log'));
});

// 2. Training rows and queries from the synthetic generator.
const trainFile = (n) => join(DIR, `train-${n}.jsonl`);
const genScript = join(DIR, 'generate.mjs');
writeFileSync(genScript, `// written by benchmarks/speed/index-scale.mjs
import { writeFileSync, renameSync } from 'node:fs';
import { buildHallucinationDataset } from ${JSON.stringify(join(ROOT, 'datasets/hallucination/dist/index.js'))};
const [n, sizes, dir] = [Number(process.argv[2]), process.argv[3].split(',').map(Number), process.argv[4]];
const t0 = Date.now();
const d = buildHallucinationDataset({ seed: 0, nTrain: n, nPretrain: 0, nHeldOut: 0, heldOutReserve: 0 });
const lines = d.train.map((r, i) => JSON.stringify({ id: 's' + String(i).padStart(7, '0'), document: r.document, summary: r.summary }));
const distinct = new Set(d.train.map((r) => r.document + '\\u0000' + r.summary)).size;
for (const m of sizes) { writeFileSync(dir + '/train-' + m + '.jsonl.tmp', lines.slice(0, m).join('\\n') + '\\n'); renameSync(dir + '/train-' + m + '.jsonl.tmp', dir + '/train-' + m + '.jsonl'); }
const q = buildHallucinationDataset({ seed: 1, nTrain: 1, nPretrain: 0, nHeldOut: 100, heldOutReserve: 0 }).heldOut;
const qs = q.map((r, i) => JSON.stringify({ id: 'q' + String(i).padStart(3, '0'), document: r.document, output: r.summary }));
writeFileSync(dir + '/queries-1.jsonl', qs[0] + '\\n');
writeFileSync(dir + '/queries-100.jsonl', qs.join('\\n') + '\\n');
const tokens = d.train.reduce((a, r) => a + r.document.split(' ').length + r.summary.split(' ').length, 0);
console.log(JSON.stringify({ rows: n, distinct_pairs: distinct, distinct_documents: new Set(d.train.map((r) => r.document)).size, mean_words: Number((tokens / n).toFixed(1)), generate_s: (Date.now() - t0) / 1000 }));
`);
const data = step('data', () => {
  const r = timed(node, [genScript, String(ROWS), SIZES.join(','), DIR], join(DIR, 'data.log'));
  return { ...r, ...JSON.parse(r.out.trim().split('\n').pop()) };
});

const indexDir = (n) => join(DIR, `idx-${n}`);
const shardsOf = (n) => Math.max(2, Math.ceil(n / SHARD_ROWS));
const rowsOf = (logText) => Number(/(\d+) rows × \d+ float16/.exec(logText)?.[1] ?? NaN);

// 3. Builds, in shards, then the merge.
if (STEPS.has('build')) {
  for (const n of SIZES) {
    const shards = shardsOf(n);
    const common = ['index', 'build', '--base', join(exp, 'base'), '--checkpoints', join(exp, 'run'), '--checkpoint', CHECKPOINT, '--train', trainFile(n), '--out', indexDir(n), '--progress', 'log'];
    for (let i = 0; i < shards; i++) {
      if (SHARD_LIST && !SHARD_LIST.has(i)) continue;
      step(`build-${n}-shard-${i}-of-${shards}`, () => {
        const r = timed(node, dda(...common, '--shard', `${i}/${shards}`), join(DIR, `build-${n}-shard-${i}.log`));
        const resumedAt = Number(/resuming at row (\d+)/.exec(r.out)?.[1] ?? NaN);
        const manifest = JSON.parse(readFileSync(join(indexDir(n), 'shards', `shard-${i}-of-${shards}.json`), 'utf8'));
        const rows = manifest.rows.end - (Number.isNaN(resumedAt) ? manifest.rows.start : resumedAt);
        // Seconds of the log's timestamps: from the shard's start line (model loaded next) to its done line.
        const at = (re) => Number(new RegExp(`^\\[\\s*([\\d.]+)s\\] ${re}`, 'm').exec(r.out)?.[1] ?? NaN);
        const computeS = at('index: .*done: \\d+ rows') - at('index: .*: rows \\d+ to \\d+ of \\d+ into');
        return { ...r, rows_total: manifest.rows.end - manifest.rows.start, rows_this_run: rows, resumed_at: Number.isNaN(resumedAt) ? null : resumedAt, examples_per_s: Number((rows / r.wall_s).toFixed(1)), compute_s: Number(computeS.toFixed(1)), examples_per_s_compute: Number((rows / computeS).toFixed(1)) };
      });
    }
    Object.assign(results, readResults(), mine); // shards another process finished meanwhile
    const waiting = Array.from({ length: shards }, (_, i) => i).filter((i) => !results[`build-${n}-shard-${i}-of-${shards}`]);
    if (waiting.length > 0) {
      log(`merge-${n}: waiting for shard${waiting.length > 1 ? 's' : ''} ${waiting.join(', ')} (another process, or run this command again)`);
      continue;
    }
    step(`merge-${n}`, () => {
      const r = timed(node, dda('index', 'merge', '--index', indexDir(n)), join(DIR, `merge-${n}.log`));
      const h = JSON.parse(readFileSync(join(indexDir(n), 'index.json'), 'utf8'));
      const bytes = statSync(join(indexDir(n), 'gradients.f16')).size;
      return { ...r, count: h.count, dim: h.dim, gradient_entries: h.modules.reduce((a, m) => a + m.size, 0), bytes, bytes_per_row: bytes / h.count, index_json_bytes: statSync(join(indexDir(n), 'index.json')).size };
    });
  }
}

// 4. Queries: 1 and 100, top-100, cold (file evicted from the page cache) and warm.
const evict = (file) => spawnSync('/usr/bin/python3', ['-c', `import os\nfd = os.open(${JSON.stringify(file)}, os.O_RDONLY)\nos.fsync(fd)\nos.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)\nos.close(fd)`], { stdio: 'inherit' });
if (STEPS.has('query')) {
  for (const n of SIZES) {
    if (!existsSync(join(indexDir(n), 'index.json'))) continue;
    for (const nq of [1, 100]) {
      for (const temp of ['cold', 'warm']) {
        step(`query-${n}-${nq}-${temp}`, () => {
          if (temp === 'cold') evict(join(indexDir(n), 'gradients.f16'));
          const out = join(DIR, `query-${n}-${nq}-${temp}`);
          rmSync(out, { recursive: true, force: true });
          const r = timed(node, dda('index', 'query', '--index', indexDir(n), '--queries', join(DIR, `queries-${nq}.jsonl`), '--top-k', String(TOP_K), '--out', out, '--progress', 'log'), `${out}.log`);
          const scan = /index: scored (\d+) rows × (\d+) quer\S+ in ([\d.]+) s, ([\d.]+) s of CPU/.exec(r.out);
          const firstLog = Number(/^\[\s*([\d.]+)s\]/m.exec(r.out)?.[1] ?? NaN);
          return { ...r, scan_s: scan ? Number(scan[3]) : null, scan_cpu_s: scan ? Number(scan[4]) : null, scan_line: /index: scored .*/.exec(r.out)?.[0] ?? null, first_log_s: firstLog };
        });
      }
    }
  }
}

// 5. numpy reads each index in the documented line; rows distinct; the smaller indexes are the larger's first rows.
if (STEPS.has('numpy')) {
  for (const n of SIZES) {
    if (!existsSync(join(indexDir(n), 'index.json'))) continue;
    step(`numpy-${n}`, () => {
      const h = JSON.parse(readFileSync(join(indexDir(n), 'index.json'), 'utf8'));
      // every smaller index in the folder (this run's sizes or another run's)
      const smaller = readdirSync(DIR).map((f) => Number(/^idx-(\d+)$/.exec(f)?.[1] ?? NaN)).filter((m) => m < n && existsSync(join(indexDir(m), 'index.json'))).sort((a, b) => a - b);
      const py = [
        'import json, time, numpy as np',
        't = time.time()',
        // The line this version documents (an index built by an earlier version records np.fromfile's, which reads it all into memory).
        `g = np.memmap("gradients.f16", dtype=np.float16, mode="r", shape=(${h.count}, ${h.dim}))`,
        'read_s = time.time() - t',
        'import resource; rss_read = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6',
        'n, k = g.shape',
        'finite = all(bool(np.isfinite(g[i:i + 4096]).all()) for i in range(0, n, 4096))',
        // Rows are distinct: a float64 sketch of each row (4 seeded ±1 combinations) has n distinct values.
        'rng = np.random.default_rng(0); s = rng.choice([-1.0, 1.0], size=(k, 4))',
        't2 = time.time(); sk = np.concatenate([g[i:i + 4096].astype(np.float64) @ s for i in range(0, n, 4096)]); pass_s = time.time() - t2',
        'distinct = len(np.unique(sk, axis=0))',
        // The smaller index's whole blocks of 128 rows are this index's first rows bit for bit; its last,
        // partial block was projected as a smaller batch (the kernel's float32 product depends on the
        // batch's rows), so it may differ in the last float16 bit: counted, with the largest difference.
        'def cmp(m):',
        `    a = np.memmap("${DIR}/idx-%d/gradients.f16" % m, dtype=np.float16, mode="r", shape=(m, k)); w = m // 128 * 128`,
        '    same = (a.view(np.uint16) == g[:m].view(np.uint16)).all(axis=1)',
        '    return {"whole_block_rows": w, "whole_blocks_equal": bool(same[:w].all()), "partial_block_rows_differing": int((~same[w:]).sum()), "largest_difference": float(np.abs(a[w:].astype(np.float64) - g[w:m].astype(np.float64)).max(initial=0))}',
        `prefix = {m: cmp(m) for m in ${JSON.stringify(smaller)}}`,
        'print(json.dumps({"shape": [n, k], "dtype": str(g.dtype), "nbytes": int(g.nbytes), "read_s": round(read_s, 2), "peak_rss_after_read_gb": round(rss_read, 3), "sketch_pass_s": round(pass_s, 2), "peak_rss_gb_end": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 3), "all_finite": finite, "distinct_rows": distinct, "equal_to_smaller_index_prefix": prefix}))',
      ].join('\n');
      const r = timed('/usr/bin/python3', ['-c', py], join(DIR, `numpy-${n}.log`), { bigmem: n * h.dim * 2 > 2.5e9, cwd: indexDir(n) }); // the documented line reads gradients.f16 in the index folder
      return { ...r, ...JSON.parse(r.out.trim().split('\n').pop()) };
    });
  }
}

(mine.runs.at(-1)).finished = new Date().toISOString();
mine.runs.at(-1).uptime_at_end = uptime();
save();
Object.assign(results, readResults(), mine);

// 6. Tables.
const cpuOf = (logFile) => {
  try {
    const t = readFileSync(`${logFile}.time`, 'utf8');
    return ['User', 'System'].reduce((a, w) => a + Number(new RegExp(`${w} time \\(seconds\\): ([\\d.]+)`).exec(t)?.[1] ?? NaN), 0);
  } catch {
    return null;
  }
};
const f = (x, d = 1) => (x === null || x === undefined || Number.isNaN(x) ? '–' : Number(x).toFixed(d));
console.log(`machine: ${results.machine.cpus}, ${results.machine.memory_gb} GB; data: ${JSON.stringify(data && { rows: data.rows, distinct_pairs: data.distinct_pairs, mean_words: data.mean_words })}`);
console.log('\n| rows | shard | rows in shard | wall s | CPU s | examples/s | peak RSS GB | load |\n|---:|---:|---:|---:|---:|---:|---:|---|');
for (const n of SIZES) {
  for (let i = 0; i < shardsOf(n); i++) {
    const r = results[`build-${n}-shard-${i}-of-${shardsOf(n)}`];
    if (r) console.log(`| ${n} | ${i}/${shardsOf(n)} | ${r.rows_this_run}${r.resumed_at !== null ? ` (resumed at ${r.resumed_at})` : ''} | ${f(r.wall_s)} | ${f(r.cpu_s ?? cpuOf(join(DIR, `build-${n}-shard-${i}.log`)))} | ${f(r.examples_per_s)} | ${f(r.peak_rss_gb, 2)} | ${r.load_before} → ${r.load_after} |`);
  }
  const m = results[`merge-${n}`];
  if (m) console.log(`| ${n} | merge | ${m.count} | ${f(m.wall_s)} | ${f(m.cpu_s ?? cpuOf(join(DIR, `merge-${n}.log`)))} | – | ${f(m.peak_rss_gb, 2)} | ${m.load_before} → ${m.load_after} |`);
}
console.log('\n| rows | bytes per row | gradients.f16 | queries | cold/warm | wall s | CPU s | scan s | scan CPU s | peak RSS GB | load |\n|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|');
for (const n of SIZES) {
  const m = results[`merge-${n}`];
  for (const nq of [1, 100]) for (const temp of ['cold', 'warm']) {
    const r = results[`query-${n}-${nq}-${temp}`];
    if (r) console.log(`| ${n} | ${m?.bytes_per_row ?? '–'} | ${m ? `${(m.bytes / 1e9).toFixed(2)} GB` : '–'} | ${nq} | ${temp} | ${f(r.wall_s, 2)} | ${f(r.cpu_s, 2)} | ${f(r.scan_s, 2)} | ${f(r.scan_cpu_s, 2)} | ${f(r.peak_rss_gb, 2)} | ${r.load_before} → ${r.load_after} |`);
  }
}
console.log('\n| rows | numpy shape | read s | peak RSS after the read GB | peak RSS GB | finite | distinct rows | equal to the smaller indexes\' rows |\n|---:|---|---:|---:|---:|---|---:|---|');
for (const n of SIZES) {
  const r = results[`numpy-${n}`];
  if (r) console.log(`| ${n} | ${r.shape.join(' × ')} ${r.dtype} | ${f(r.read_s, 2)} | ${f(r.peak_rss_after_read_gb, 2)} | ${f(r.peak_rss_gb, 2)} | ${r.all_finite} | ${r.distinct_rows} | ${JSON.stringify(r.equal_to_smaller_index_prefix)} |`);
}
