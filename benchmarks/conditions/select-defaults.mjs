#!/usr/bin/env node
// Chooses DDA's default variant on the validation seeds and reports it on the test seeds.
// Reads dda-bench/conditions/{val,test}/<condition>/<condition>-ablation-summary.json (written by
// `dda ablate`), writes benchmarks/results/conditions.md and conditions.csv.
//   node benchmarks/conditions/select-defaults.mjs baseline strong-bias no-bias underfit overfit
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const conds = process.argv.slice(2);
if (conds.length === 0) {
  console.error('usage: select-defaults.mjs <condition> ...');
  process.exit(2);
}
const load = (split, c) => {
  const p = `dda-bench/conditions/${split}/${c}/${c}-ablation-summary.json`;
  if (!existsSync(p)) throw new Error(`${p} is missing: run benchmarks/conditions/run.sh ${c}`);
  return JSON.parse(readFileSync(p, 'utf8'));
};
const all = (s) => new Map(s.summary.filter((r) => r.family === 'all').map((r) => [r.method, r]));
const val = new Map(conds.map((c) => [c, all(load('val', c))]));
const test = new Map(conds.map((c) => [c, all(load('test', c))]));

// Candidates: every variant that was run in every condition, except the ablation's own
// "without" rows (they are not DDA). Score = mean over conditions of the validation mean AUC.
const excluded = new Set(['no-debias', 'no-denoise', 'neither']);
const candidates = [...(val.get(conds[0])?.keys() ?? [])].filter((m) => !excluded.has(m) && conds.every((c) => val.get(c).has(m)));
const valScore = (m) => conds.reduce((a, c) => a + val.get(c).get(m).aucMean, 0) / conds.length;
const ranked = candidates.map((m) => ({ method: m, val: valScore(m) })).sort((a, b) => b.val - a.val);
const chosen = ranked[0].method;

const f = (r) => (r ? `${r.aucMean.toFixed(2)} [${r.aucLow.toFixed(2)}, ${r.aucHigh.toFixed(2)}]` : 'n/a');
const rec = (r) => (r ? r.recallMean.toFixed(3) : 'n/a');
const rows = [...new Set(['neither', 'no-denoise', 'no-debias', 'full', chosen])];
const lines = [
  `# Fitting-error conditions: DDA ablation (test seeds 0-2; default chosen on validation seeds 100-102)`,
  '',
  `Chosen on validation (mean of the conditions' validation mean AUC): **${chosen}** (${ranked[0].val.toFixed(2)}); runners-up: ${ranked.slice(1, 4).map((r) => `${r.method} (${r.val.toFixed(2)})`).join(', ')}.`,
  '',
  'Test-seed mean ROC-AUC (%) with 95% bootstrap interval over seeds, and recall@20. `neither` = plain influence at the final checkpoint; `no-denoise` = the paper\'s debias only; `no-debias` = the paper\'s denoise only; `full` = the paper\'s DDA (raw, β=1, mean).',
  '',
  `| condition | ${rows.map((r) => (r === chosen ? `${r} (chosen)` : r)).join(' | ')} |`,
  `|---|${rows.map(() => '---:').join('|')}|`,
  ...conds.map((c) => `| ${c} | ${rows.map((m) => `${f(test.get(c).get(m))}, R ${rec(test.get(c).get(m))}`).join(' | ')} |`),
  '',
  'Validation-seed mean AUC of every candidate (the selection data):',
  '',
  `| variant | ${conds.join(' | ')} | mean |`,
  `|---|${conds.map(() => '---:').join('|')}|---:|`,
  ...ranked.map((r) => `| ${r.method} | ${conds.map((c) => val.get(c).get(r.method).aucMean.toFixed(2)).join(' | ')} | ${r.val.toFixed(2)} |`),
  '',
];
mkdirSync('benchmarks/results', { recursive: true });
writeFileSync('benchmarks/results/conditions.md', lines.join('\n'));
const csv = ['split,condition,method,n,auc_mean,auc_low,auc_high,recall_mean'];
for (const [split, m] of [['val', val], ['test', test]]) {
  for (const c of conds) for (const r of m.get(c).values()) csv.push([split, c, r.method, r.n, r.aucMean.toFixed(4), r.aucLow.toFixed(4), r.aucHigh.toFixed(4), r.recallMean.toFixed(4)].join(','));
}
writeFileSync('benchmarks/results/conditions.csv', `${csv.join('\n')}\n`);
console.log(lines.join('\n'));
