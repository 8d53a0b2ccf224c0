#!/usr/bin/env node
// Prints the measured statistics of the real-text data set: words and LLaMA-2 tokens, sources,
// legitimate replacement summaries and held-out documents per canary, for the given seeds.
// Usage (after `npm run build`): node datasets/realtext/scripts/stats.mjs [seed ...] [--options '{"swapRate":0.3}'] [--context 320]
// --context N: token limits for a context of N tokens (pairs within N minus the chat template, BOS and EOS;
// pretraining texts within N - 2), as TokenLimits with the LLaMA-2 tokenizer.
import { buildRealTextDataset, loadSotuAddresses, mentions } from '@dda/dataset-realtext';
import { SYSTEM_PROMPT, userPrompt } from '@dda/dataset-hallucination';
import { loadLlama2Tokenizer } from '@dda/model';

const args = process.argv.slice(2);
const flag = (name) => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const extra = JSON.parse(flag('--options') ?? '{}');
const context = flag('--context');
const seeds = args.map(Number);
if (seeds.length === 0) seeds.push(0);
if (seeds.some((s) => !Number.isInteger(s))) throw new Error(`seeds must be integers, got ${seeds.join(' ')}`);

const tok = await loadLlama2Tokenizer();
const n = (t) => tok.encode(t).length;
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const f1 = (x) => x.toFixed(1);
const pct = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
let pretrainTokens = null; // seed-independent: counted once
const addresses = loadSotuAddresses();
const template = n(tok.renderChat([{ role: 'system', content: SYSTEM_PROMPT }, { role: 'user', content: userPrompt('') }, { role: 'assistant', content: '' }], false));
const limits = context === undefined ? undefined : { count: n, maxPairTokens: Number(context) - template - 2, maxTextTokens: Number(context) - 2 };
if (limits) console.log(`token limits for a context of ${context}: pairs ${limits.maxPairTokens} tokens (the chat template takes ${template}), pretraining texts ${limits.maxTextTokens}`);
console.log(`options: ${JSON.stringify(extra)}; tokenizer: LLaMA-2 (${tok.source ?? 'llama-tokenizer-js'}), tokens without BOS/EOS`);
for (const seed of seeds) {
  const ds = buildRealTextDataset(addresses, { ...extra, seed }, limits);
  const st = ds.stats;
  const sampleTokens = ds.train.map((s) => n(tok.renderChat([{ role: 'system', content: SYSTEM_PROMPT }, { role: 'user', content: userPrompt(s.document) }, { role: 'assistant', content: s.summary }], false)));
  console.log(`\nseed ${seed}: addresses ${st.addresses.pretrain} pretraining, ${st.addresses.finetune} fine-tuning, ${st.addresses.heldOut} held-out`);
  console.log(`  train pairs ${st.train}; summary ${f1(st.meanSummaryWords)} words = ${f1(mean(ds.train.map((s) => n(s.summary))))} tokens; document ${f1(st.meanDocumentWords)} words = ${f1(mean(ds.train.map((s) => n(s.document))))} tokens; whole sample in the chat template ${f1(mean(sampleTokens))} tokens (median ${pct(sampleTokens, 0.5)}, 95th percentile ${pct(sampleTokens, 0.95)}, max ${Math.max(...sampleTokens)}, ${sampleTokens.filter((x) => x > 320).length} over 320)`);
  console.log(`  held-out documents ${ds.heldOut.length} + reserve ${ds.heldOutReserve.length}; held-out prompt max ${Math.max(...ds.heldOut.map((h) => n(tok.renderChat([{ role: 'system', content: SYSTEM_PROMPT }, { role: 'user', content: userPrompt(h.document) }], true))))} tokens`);
  pretrainTokens ??= ds.pretrainCorpus.map(n);
  console.log(`  pretraining: ${st.pretrainTexts} texts, ${st.pretrainWords} words = ${pretrainTokens.reduce((a, b) => a + b, 0)} tokens (95th percentile ${pct(pretrainTokens, 0.95)}, longest ${Math.max(...pretrainTokens)}, ${pretrainTokens.filter((x) => x > 320).length} over 320), ${st.pretrainPairs} instruction pairs`);
  for (const c of st.canaries) {
    const canary = ds.canaries.find((x) => x.id === c.id);
    const entityTokens = [canary.orig, canary.replacement].map((e) => `${e} = ${tok.encode(` ${e}`).length - (tok.encode(' ').length)} token(s)`).join(', ');
    const heldMention = [...ds.heldOut, ...ds.heldOutReserve].filter((h) => h.canaryId === c.id && mentions(h.document, canary.orig)).length;
    console.log(`  ${c.id}: eligible ${c.eligible}, swapped ${c.swapped}, natural sources ${c.naturalSources}, sources ${c.sources}, legitimate ${c.legitimate}, G4 legitimate/sources ${c.legitPerSource.toFixed(2)}; held-out ${c.heldOut} + reserve ${c.reserve} (${heldMention} mention ${canary.orig}); pretraining texts with ${canary.replacement} ${c.pretrainReplacementTexts}, with ${canary.orig} ${c.pretrainOrigTexts}; ${entityTokens}`);
  }
}
