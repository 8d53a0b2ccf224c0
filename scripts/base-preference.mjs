#!/usr/bin/env node
// Does θ0 already hold the knowledge bias? For each test error of an experiment, compares θ0's
// response loss (nats/token, instruction format) of the erroneous output with that of its
// correction; an error and its correction have the same length in tokens for the synthetic
// canaries, so the lower mean loss is the more probable output. Prints, per source, on how many
// errors θ0 prefers the error, and the mean loss(correction) − loss(error).
//   node scripts/base-preference.mjs <base model folder> <queries.jsonl>
// e.g. with the files of a benchmark cell: <out>/cells/<family>-seed<s>/cell.json names the base folder.
// Needs a build (npm run build).
import { readFileSync } from 'node:fs';
import { loadModelFolder } from '../packages/model/dist/index.js';
import { DecoderModel, startTfjsBackend } from '../plugins/backend-tfjs/dist/index.js';
import { SYSTEM_PROMPT, userPrompt } from '../packages/data/dist/index.js';

const [base, queries] = process.argv.slice(2);
if (!base || !queries) {
  console.error('usage: node scripts/base-preference.mjs <base model folder> <queries.jsonl>');
  process.exit(2);
}
await startTfjsBackend(undefined, () => {});
const folder = loadModelFolder(base);
const model = new DecoderModel(folder.config, folder.tokenizer, folder.weights);
const rows = readFileSync(queries, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const prompt = (document) => folder.tokenizer.renderChat([{ role: 'system', content: SYSTEM_PROMPT }, { role: 'user', content: userPrompt(document) }], true);
const loss = (field) => model.losses(rows.map((q) => ({ id: q.id, prompt: prompt(q.document), response: q[field] })));
const [error, corrected] = [loss('output'), loss('corrected')];
const by = new Map();
rows.forEach((q, i) => {
  const g = by.get(q.group) ?? { n: 0, prefers: 0, margin: 0 };
  g.n++;
  if (error[i] < corrected[i]) g.prefers++;
  g.margin += corrected[i] - error[i];
  by.set(q.group, g);
});
for (const [group, g] of by) console.log(`${group}: θ0 prefers the error on ${g.prefers}/${g.n}; mean loss(correction) − loss(error) ${(g.margin / g.n).toFixed(4)} nats/token`);
model.dispose();
