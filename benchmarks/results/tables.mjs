#!/usr/bin/env node
// Prints a Markdown table (methods × families, mean AUC with 95% interval) from a summary CSV
// written by `dda bench` or `dda ablate`, for the README.
//   node benchmarks/results/tables.mjs benchmarks/results/default/default-summary.csv [method-regex]
import { readFileSync } from 'node:fs';

const [file, filter] = process.argv.slice(2);
if (!file) {
  console.error('usage: tables.mjs <summary.csv> [method-regex]');
  process.exit(2);
}
const [head, ...lines] = readFileSync(file, 'utf8').trim().split('\n');
const cols = head.split(',');
const rows = lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])));
const families = [...new Set(rows.map((r) => r.family))];
const re = filter ? new RegExp(filter) : null;
const methods = [...new Set(rows.map((r) => r.method))].filter((m) => !re || re.test(m));
const cell = (r) => (r ? `${Number(r.auc_mean).toFixed(2)} [${Number(r.auc_low).toFixed(1)}, ${Number(r.auc_high).toFixed(1)}]` : '–');
console.log(`| method | ${families.join(' | ')} | recall@k (all) |`);
console.log(`|---|${families.map(() => '---:').join('|')}|---:|`);
for (const m of methods) {
  const all = rows.find((r) => r.method === m && r.family === 'all');
  console.log(`| ${m} | ${families.map((f) => cell(rows.find((r) => r.method === m && r.family === f))).join(' | ')} | ${all ? Number(all.recall_mean).toFixed(3) : '–'} |`);
}
