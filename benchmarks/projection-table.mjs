#!/usr/bin/env node
// The table of the projection study (benchmarks/projection-study.sh): for each method of interest,
// AUC (%), Recall@50 and LDS of family `all` at every projected dimension k and with the full
// gradients, read from <out>/<name>-{full,k<k>}-summary.csv (name: projection by default). Methods
// under several measurements (the real-text benchmark's `grad-dot@contrastive`, ...) get a row each.
// Prints Markdown.
//   node benchmarks/projection-table.mjs dda-bench/projection [name]
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const out = process.argv[2] ?? 'dda-bench/projection';
const name = process.argv[3] ?? 'projection';
const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const runs = readdirSync(out)
  .map((f) => new RegExp(`^${escaped}-(full|k(\\d+))-summary\\.csv$`).exec(f))
  .filter((m) => m !== null)
  .map((m) => ({ label: m[1] === 'full' ? 'full' : `k = ${m[2]}`, k: m[2] ? Number(m[2]) : Infinity, file: join(out, m[0]) }))
  .sort((a, b) => a.k - b.k);
if (runs.length === 0) throw new Error(`no ${name}-*-summary.csv in ${out}`);

/** Rows of a CSV whose fields hold no commas (the summary's numeric columns and method names). */
function records(path) {
  const [head, ...lines] = readFileSync(path, 'utf8').trim().split('\n');
  const cols = head.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])));
}

const methods = ['grad-dot', 'grad-cos', 'datainf', 'dda(grad-dot)', 'dda-recommended(grad-dot)', 'dda-recommended(grad-cos)', 'dda-recommended(datainf)', 'bm25'];
const fmt = (v, d) => (v === undefined || v === '' || !Number.isFinite(Number(v)) ? '–' : Number(v).toFixed(d));
// A method's rows: its own name, or its name under a measurement (`grad-dot@contrastive`, `dda(grad-dot@loss)`).
const base = (method) => method.replace(/@[a-z0-9-]+/g, '');
const tables = runs.map((r) => ({ ...r, rows: records(r.file).filter((x) => x.family === 'all') }));
// Cells per row (the first plain row: grad-dot, or grad-dot under its first measurement).
const n = tables[0].rows.find((x) => base(x.method) === 'grad-dot')?.n ?? '?';
console.log(`AUC (%) / Recall@50 / LDS, mean over ${n} family × seed cells (${out})\n`);
console.log(`| method | ${tables.map((t) => t.label).join(' | ')} |`);
console.log(`|---|${tables.map(() => '---:').join('|')}|`);
const rowsOf = (m) => [...new Set(tables.flatMap((t) => t.rows.filter((x) => base(x.method) === m).map((x) => x.method)))].sort();
for (const m of methods.flatMap(rowsOf)) {
  const cells = tables.map((t) => {
    const r = t.rows.find((x) => x.method === m);
    return r ? `${fmt(r.auc_mean, 1)} / ${fmt(r.recall50_mean, 3)} / ${fmt(r.lds_mean, 3)}` : '–';
  });
  if (cells.every((c) => c === '–')) continue;
  console.log(`| ${m} | ${cells.join(' | ')} |`);
}
if (!existsSync(join(out, `${name}-full-summary.csv`))) console.log('\n(no run with the full gradients yet)');
