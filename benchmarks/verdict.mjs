#!/usr/bin/env node
// The verdict on DDA by the README's pre-registered criteria (issue 28), computed by
// `preRegisteredVerdict` (@dda/harness, packages/harness/src/verdict.ts) from result files:
//   node benchmarks/verdict.mjs --summary <bench-summary.json>... --bench <bench.csv>... [--ablation <ablation.csv>...] [--json <out.json>]
// --bench: one or more `dda bench` CSVs of the same runs (e.g. scorers run in several commands);
// their `average` source rows are the per-run AUCs. --ablation: one or more `dda ablate` CSVs over
// DDA's scorer with the contrastive measurement (e.g. one per family). --summary: one or more bench
// summary JSONs (e.g. one per family); G1–G4 are averaged over every run of their `gates.cells`
// that counts as evidence, as `dda bench` averages one summary's (gatesJson). Prints Markdown;
// --json also writes the verdict with every comparison.
// Run `npm run build` first (it imports the built @dda/harness).
import { readFileSync, writeFileSync } from 'node:fs';
import { parseCsv } from '@dda/data';
import { gatesJson, preRegisteredVerdict } from '@dda/harness';

const args = process.argv.slice(2);
const files = { bench: [], ablation: [], summary: [], json: [] };
for (let i = 0, key = null; i < args.length; i++) {
  if (args[i].startsWith('--')) key = args[i].slice(2);
  else if (key && key in files) files[key].push(args[i]);
  else throw new Error(`verdict.mjs: unexpected argument ${args[i]} (usage in the file's header)`);
}
if (!files.bench.length || !files.summary.length) throw new Error('verdict.mjs: give at least one --summary <bench-summary.json> and one --bench <bench.csv>');

/** The `average` rows of a results CSV as RunAuc (family, seed, method, auc). */
async function runAucs(path) {
  const rows = (await parseCsv(readFileSync(path, 'utf8'), path)).map((r) => r.value);
  return rows.filter((r) => r.source === 'average').map((r) => ({ family: r.family, seed: Number(r.seed), method: r.method, auc: Number(r.auc) }));
}

/** Per-run AUCs of several files, each (family, seed, method) once: a method in two files (bm25, or one family's runs given twice) is the same scores. */
async function runAucsOf(paths) {
  const seen = new Set();
  const out = [];
  for (const f of paths) {
    for (const r of await runAucs(f)) {
      const key = `${r.family}/${r.seed}/${r.method}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(r);
    }
  }
  return out;
}

const bench = await runAucsOf(files.bench);
const ablation = await runAucsOf(files.ablation);
const seenCells = new Map();
const cells = files.summary.flatMap((path) => {
  const g = JSON.parse(readFileSync(path, 'utf8')).gates;
  if (!Array.isArray(g?.cells)) throw new Error(`verdict.mjs: ${path} has no gates (gates.cells): its benchmark computed none, or it is not a dda bench summary JSON`);
  for (const c of g.cells) {
    const key = `${c.family}/${c.seed}`;
    if (seenCells.has(key)) throw new Error(`verdict.mjs: the run ${key} is in ${seenCells.get(key)} and in ${path}: give each run's summary once`);
    seenCells.set(key, path);
  }
  return g.cells;
});
const gates = Object.values(gatesJson(cells).mean).map((g) => ({ id: g.id, value: g.value, pass: g.pass }));
const v = preRegisteredVerdict(bench, ablation, gates);

const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '–');
const table = (title, cs) => {
  if (!cs.length) return;
  console.log(`\n${title}\n\n| method | reference | runs | mean difference (AUC points) [95% CI] | margin | beats |\n|---|---|---:|---:|---:|:---:|`);
  for (const c of cs) console.log(`| \`${c.method}\` | \`${c.reference}\` | ${c.n} | ${f(c.meanDifference)} [${f(c.low, 1)}, ${f(c.high, 1)}] | ${c.margin} | ${c.beats ? 'yes' : 'no'} |`);
};
console.log(`**Verdict: ${v.outcome}** (${v.runs} runs). ${v.reason}.`);
console.log(`\nGates (mean over the runs): ${v.gates.map((g) => `${g.id} ${f(g.value, 3)} ${g.pass ? 'pass' : 'FAIL'}`).join(', ')}.`);
/** One row per method, one column per reference: mean difference [95% CI], ✓ where it beats the reference by the margin beyond noise. */
const wide = (title, cs) => {
  if (!cs.length) return;
  const refs = [...new Set(cs.map((c) => c.reference))];
  console.log(`\n${title}\n\n| method | runs | ${refs.map((r) => `− \`${r}\` (margin ${cs.find((c) => c.reference === r).margin})`).join(' | ')} |\n|---|---:|${refs.map(() => '---:').join('|')}|`);
  for (const m of [...new Set(cs.map((c) => c.method))]) {
    const row = refs.map((r) => cs.find((c) => c.method === m && c.reference === r)).map((c) => (c ? `${f(c.meanDifference)} [${f(c.low, 1)}, ${f(c.high, 1)}]${c.beats ? ' ✓' : ''}` : '–'));
    console.log(`| \`${m}\` | ${cs.find((c) => c.method === m).n} | ${row.join(' | ')} |`);
  }
};
wide('DDA as written against the references (AUC points; ✓: beats it by the margin beyond noise):', v.paper.filter((c) => c.method !== 'full'));
table('Its ablation over the same scorer and measurement (full − no-debias: clearly above 0; full − no-denoise: not below 0):', v.paper.filter((c) => c.method === 'full'));
wide('Scale-corrected and common-direction variants against the references:', v.idea);
table('Each debias variant against the plain scorer under its own measurement (margin 0: beyond noise):', v.debiasOverPlain);
table('Where the gain comes from (DDA as written against bm25, plain@contrastive and DDA@loss):', v.measurement);
if (files.json[0]) writeFileSync(files.json[0], `${JSON.stringify({ command: `node benchmarks/verdict.mjs ${args.join(' ')}`, ...v }, null, 2)}\n`);
