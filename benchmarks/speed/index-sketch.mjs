#!/usr/bin/env node
// The approximate index query (`dda index sketch`, then `dda index query --candidates C`) on an index
// that benchmarks/speed/index-scale.mjs built and queried exactly (default its 1,000,000 rows): per
// sketch dimension s, the sketch is made (timed), then 1 and 100 queries (top-100) run with each C,
// each twice (the second, warm, is recorded), and compared with the exact query's top-100 of the
// same queries (index-scale.mjs's query-<rows>-<nq>-warm/topk.jsonl): recall@100 (mean and worst
// query), the scores of the rows both found (must be equal: the approximate query scores its rows
// exactly), and its check (the queries whose sketch halves disagree: flagged) against the rows it
// really missed.
// Resumable: each step's result is kept in <dir>/results-sketch.json; a step that finished is skipped.
//
// Usage (after `npm run build` and index-scale.mjs):
//   node benchmarks/speed/index-sketch.mjs [--dir dda-bench/index-scale-1m] [--rows 1000000] [--dims 256,512] [--candidates 1000,5000,20000] [--many-candidates 1000]
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, stepRunner, uptime } from './bench-lib.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'packages/cli/bin/dda.js');
const DIR = resolve(ROOT, arg('dir', 'dda-bench/index-scale-1m'));
const ROWS = Number(arg('rows', '1000000'));
const DIMS = String(arg('dims', '256,512')).split(',').map(Number);
const CANDIDATES = String(arg('candidates', '1000,5000,20000')).split(',').map(Number);
// The candidates of the 100-query runs (each query reads 2–4 × C rows: at C = 5,000 and 100 queries
// that is most of the index, slower than the exact scan, which is the mode for many queries).
const MANY = new Set(String(arg('many-candidates', '1000')).split(',').map(Number));
const TOP_K = 100;
const INDEX = join(DIR, `idx-${ROWS}`);
const resultsPath = join(DIR, 'results-sketch.json');
const results = existsSync(resultsPath) ? JSON.parse(readFileSync(resultsPath, 'utf8')) : {};
const save = () => {
  writeFileSync(`${resultsPath}.tmp`, `${JSON.stringify(results, null, 1)}\n`);
  renameSync(`${resultsPath}.tmp`, resultsPath);
};
const log = (line) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
results.runs = [...(results.runs ?? []), { started: new Date().toISOString(), uptime_at_start: uptime(), args: process.argv.slice(2).join(' ') }];
save();

/** `dda args` under /usr/bin/time -v at nice 10, output to `logFile`: wall, CPU, peak RSS, load, output. */
function timed(args, logFile) {
  const timeFile = `${logFile}.time`;
  const load = loadavg()[0];
  const r = spawnSync('/usr/bin/time', ['-v', '-o', timeFile, 'nice', '-n', '10', process.execPath, BIN, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  writeFileSync(logFile, out);
  if (r.status !== 0) throw new Error(`dda ${args.join(' ')} failed (${r.status}); see ${logFile}:\n${out.split('\n').slice(-8).join('\n')}`);
  const t = readFileSync(timeFile, 'utf8');
  const cpu = ['User', 'System'].reduce((a, w) => a + Number(new RegExp(`${w} time \\(seconds\\): ([\\d.]+)`).exec(t)?.[1] ?? NaN), 0);
  const wall = (/Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)/.exec(t)?.[1] ?? '').split(':').reduce((a, x) => a * 60 + Number(x), 0);
  const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(t)?.[1]) / 1e6;
  return { wall_s: Number(wall.toFixed(2)), cpu_s: Number(cpu.toFixed(2)), peak_rss_gb: Number(rss.toFixed(3)), load_before: Number(load.toFixed(2)), load_after: Number(loadavg()[0].toFixed(2)), out };
}

const step = stepRunner(results, () => save(), log);

/** query id → [[train id, score], ...] of a topk.jsonl. */
const tops = (file) => new Map(readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).map((q) => [q.query_id, q.top.map((t) => [t.train_id, t.score])]));

for (const s of DIMS) {
  step(`sketch-${ROWS}-${s}`, () => {
    const r = timed(['index', 'sketch', '--index', INDEX, '--dim', String(s), '--progress', 'log'], join(DIR, `sketch-${ROWS}-${s}.log`));
    return { ...r, how: /sketch: \d+ rows × \d+ float16 in \S+ \((.*)\)/.exec(r.out)?.[1] ?? null };
  });
  for (const c of CANDIDATES) {
    for (const nq of [1, 100].filter((x) => x === 1 || MANY.has(c))) {
      step(`approx-${ROWS}-${s}-${c}-${nq}`, () => {
        const exact = tops(join(DIR, `query-${ROWS}-${nq}-warm`, 'topk.jsonl'));
        const out = join(DIR, `approx-${ROWS}-${s}-${c}-${nq}`);
        let r;
        for (let pass = 0; pass < 2; pass++) { // the second run is warm
          rmSync(out, { recursive: true, force: true });
          r = timed(['index', 'query', '--index', INDEX, '--queries', join(DIR, `queries-${nq}.jsonl`), '--top-k', String(TOP_K), '--candidates', String(c), '--out', out, '--progress', 'log'], `${out}.log`);
        }
        const line = /approximate search: the sketch of \d+ rows scanned in ([\d.]+) s, then (\d+) rows read and scored exactly in ([\d.]+) s \(([\d.]+) s of CPU/.exec(r.out);
        const got = tops(join(out, 'topk.jsonl'));
        const checks = JSON.parse(readFileSync(join(out, 'query.json'), 'utf8')).search.checks;
        const per = [...exact].map(([id, e]) => {
          const a = new Map(got.get(id));
          const both = e.filter(([t]) => a.has(t));
          const scoreDiff = Math.max(0, ...both.map(([t, sc]) => Math.abs(sc - a.get(t))));
          const ch = checks[id];
          return { id, recall: both.length / e.length, missed: e.length - both.length, scored: ch.scored, disagree: ch.missedByFirst + ch.missedBySecond, scoreDiff };
        });
        const recalls = per.map((p) => p.recall);
        return {
          ...r, sketch_s: line ? Number(line[1]) : null, rows_read: line ? Number(line[2]) : null, exact_s: line ? Number(line[3]) : null, search_cpu_s: line ? Number(line[4]) : null,
          recall_mean: Number((recalls.reduce((a, b) => a + b, 0) / recalls.length).toFixed(4)), recall_worst: Math.min(...recalls),
          missed_total: per.reduce((a, p) => a + p.missed, 0),
          queries_missing_any: per.filter((p) => p.missed > 0).length, queries_flagged: per.filter((p) => p.disagree > 0).length,
          missing_and_flagged: per.filter((p) => p.missed > 0 && p.disagree > 0).length, missed_unflagged: per.filter((p) => p.disagree === 0).reduce((a, p) => a + p.missed, 0),
          largest_score_difference: Math.max(...per.map((p) => p.scoreDiff)),
          per_query: per.map((p) => [p.id, p.missed, p.scored, p.disagree]),
        };
      });
    }
  }
}
results.runs.at(-1).finished = new Date().toISOString();
results.runs.at(-1).uptime_at_end = uptime();
save();

console.log('\n| s | candidates C | queries | recall@100 mean | worst | rows missed (all queries) | queries missing any | of them flagged | flagged, all | rows missed unflagged | rows read | sketch scan s | exact s | search CPU s | command wall s | peak RSS GB | load |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
for (const s of DIMS) {
  for (const c of CANDIDATES) {
    for (const nq of [1, 100]) {
      const r = results[`approx-${ROWS}-${s}-${c}-${nq}`];
      if (r) console.log(`| ${s} | ${c} | ${nq} | ${r.recall_mean} | ${r.recall_worst} | ${r.missed_total} | ${r.queries_missing_any} | ${r.missing_and_flagged} | ${r.queries_flagged} | ${r.missed_unflagged} | ${r.rows_read} | ${r.sketch_s} | ${r.exact_s} | ${r.search_cpu_s} | ${r.wall_s} | ${r.peak_rss_gb} | ${r.load_before}–${r.load_after} |`);
    }
  }
  const m = results[`sketch-${ROWS}-${s}`];
  if (m) console.log(`sketch s = ${s}: ${m.wall_s} s wall, ${m.cpu_s} s CPU, ${m.peak_rss_gb} GB peak, load ${m.load_before}–${m.load_after} (${m.how})`);
}
