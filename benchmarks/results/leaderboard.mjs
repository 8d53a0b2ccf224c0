#!/usr/bin/env node
// Prints a Markdown leaderboard of one family (default: `all`, else the only one) from a summary CSV
// written by `dda bench`: mean AUC (%), average precision, Recall@50, MRR and LDS over the runs,
// each with its 95% Student-t interval, for the README.
//   node benchmarks/results/leaderboard.mjs <summary.csv> [method-regex] [family]
import { readFileSync } from 'node:fs';
import { parseCsv } from '@dda/data';

const [file, filter, familyArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: leaderboard.mjs <summary.csv> [method-regex] [family]');
  process.exit(2);
}
const rows = (await parseCsv(readFileSync(file, 'utf8'), file)).map((r) => r.value);
const families = [...new Set(rows.map((r) => r.family))];
const family = familyArg ?? (families.includes('all') ? 'all' : families[0]);
const re = filter ? new RegExp(filter) : null;
const num = (x) => (x === '' || x === undefined ? NaN : Number(x));
/** `mean [low, high]`, `mean` alone when there is no interval, `–` when there is no mean. */
const cell = (r, key, d) => {
  const m = num(r[`${key}_mean`]);
  if (!Number.isFinite(m)) return '–';
  const lo = num(r[`${key}_low`]);
  const hi = num(r[`${key}_high`]);
  return Number.isFinite(lo) && Number.isFinite(hi) ? `${m.toFixed(d)} [${lo.toFixed(d - 1)}, ${hi.toFixed(d - 1)}]` : m.toFixed(d);
};
const selected = rows.filter((r) => r.family === family && (!re || re.test(r.method)));
console.log(`| method (${family}, n runs) | AUC [95% CI] | AP | Recall@50 | MRR | LDS |`);
console.log('|---|---:|---:|---:|---:|---:|');
for (const r of selected) console.log(`| \`${r.method}\` (${r.n}) | ${cell(r, 'auc', 2)} | ${cell(r, 'ap', 3)} | ${cell(r, 'recall50', 3)} | ${cell(r, 'mrr', 3)} | ${cell(r, 'lds', 3)} |`);
