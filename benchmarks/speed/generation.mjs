#!/usr/bin/env node
// Speed benchmark: greedy generation on onnxruntime with the key/value cache (OnnxGenerator.generate)
// against the same engine re-running the whole prefix for every token (generateWithoutCache) and
// against tfjs-wasm (DecoderModel.generate, which re-runs the prefix), on the same model, prompts
// and token budget, in one run; each engine in its own process. Checks that the three produce the
// same tokens (generations_differing_from_kv_cache).
// Usage (after `npm run build`): node benchmarks/speed/generation.mjs [--workload demo|w1] [--prompts 20] [--max-new 24]
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { arg, median, run, uptime } from './bench-lib.mjs';

const WORKLOADS = {
  // The demo: its model with LoRA rank 8, prompts of about 50 tokens (chat template and a document), 24 new tokens, context 160.
  demo: { vocab: 390, hidden: 64, layers: 2, heads: 4, ffn: 172, rank: 8, prompt: 50, context: 160 },
  // W1's shape: 32k vocabulary, hidden 256, 4 layers, prompts of 64 tokens, context 128.
  w1: { vocab: 32000, hidden: 256, layers: 4, heads: 4, ffn: 688, rank: 8, prompt: 64, context: 128 },
};
const workload = arg('workload', 'demo');
const w = WORKLOADS[workload];
const nPrompts = Number(arg('prompts', '20'));
const maxNew = Number(arg('max-new', '24'));

async function child(engine) {
  const { SPECIAL_TOKENS, WordTokenizer, initDecoderWeights, initLoraWeights, ALL_LORA_TARGETS } = await import('@dda/model');
  const { DecoderModel, startTfjsBackend } = await import('@dda/backend-tfjs');
  const config = {
    vocabSize: w.vocab, hiddenSize: w.hidden, numLayers: w.layers, numHeads: w.heads, numKvHeads: w.heads, intermediateSize: w.ffn,
    ropeTheta: 1e4, rmsNormEps: 1e-5, maxSeqLen: w.context, tieWordEmbeddings: false, attentionBias: false, slidingWindow: null,
  };
  const lora = { rank: w.rank, alpha: 2 * w.rank, targets: ALL_LORA_TARGETS };
  // Weights scaled up 16× (not the embedding and norms) so that greedy decoding does not repeat one token.
  const base = new Map([...initDecoderWeights(config, 0)].map(([n, t]) => [n, { shape: t.shape, data: n.includes('norm') || n.includes('embed') ? t.data : t.data.map((x) => x * 16) }]));
  const loraWeights = new Map([...initLoraWeights(config, lora, 1)].map(([n, t]) => [n, { shape: t.shape, data: n.includes('lora_B') ? t.data.map((_, k) => Math.sin(k) * 0.05) : t.data }]));
  const tok = new WordTokenizer([...SPECIAL_TOKENS, ...Array.from({ length: w.vocab - SPECIAL_TOKENS.length }, (_, i) => `w${i}`)]);
  const prompts = Array.from({ length: nPrompts + 1 }, (_, p) => Array.from({ length: w.prompt - 1 }, (_, t) => `w${((p * 7919 + t * 104729) % (w.vocab - SPECIAL_TOKENS.length))}`).join(' '));
  const outputs = []; // decoded texts, compared across engines
  const times = [];
  let newTokens = 0;
  let t0;
  let c0;
  if (engine === 'tfjs-wasm') {
    await startTfjsBackend([engine]);
    const model = new DecoderModel(config, tok, base);
    model.setLora(lora, loraWeights);
    model.generate(prompts[0], maxNew); // warm-up
    t0 = performance.now();
    c0 = process.cpuUsage();
    for (const p of prompts.slice(1)) {
      const s = performance.now();
      outputs.push(model.generate(p, maxNew));
      times.push(performance.now() - s);
    }
    model.dispose();
  } else {
    const { OnnxGenerator, startOnnxRuntime } = await import('@dda/backend-onnxruntime');
    const gen = new OnnxGenerator(await startOnnxRuntime(['onnxruntime-cpu']), config, w.context, base, { config: lora, weights: loraWeights });
    const ids = (p) => [tok.bosId, ...tok.encode(p)];
    const o = { maxNewTokens: maxNew, eosId: tok.eosId };
    const run = engine === 'onnxruntime-kv-cache' ? (p) => gen.generate(ids(p), o) : (p) => gen.generateWithoutCache(ids(p), o);
    await run(prompts[0]); // warm-up: builds the sessions
    t0 = performance.now();
    c0 = process.cpuUsage();
    for (const p of prompts.slice(1)) {
      const s = performance.now();
      const ids = await run(p);
      newTokens += ids.length;
      outputs.push(tok.decode(ids));
      times.push(performance.now() - s);
    }
    await gen.release();
  }
  const sec = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  // tfjs returns text: its token count is that of the re-encoded text (special tokens do not survive decoding).
  const tokens = engine === 'tfjs-wasm' ? outputs.reduce((a, o) => a + tok.encode(o).length, 0) : newTokens;
  console.log(JSON.stringify({
    engine, prompts: nPrompts, new_tokens: tokens, seconds: sec, cpu_s: (cpu.user + cpu.system) / 1e6, tokens_per_s: tokens / sec, ms_per_generation: (1000 * sec) / nPrompts, ms_per_generation_median: median(times),
    outputs, peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  }));
}

if (process.argv.includes('--child')) {
  await child(arg('child'));
} else {
  const self = fileURLToPath(import.meta.url);
  const start = uptime();
  const results = [];
  for (const engine of ['onnxruntime-kv-cache', 'onnxruntime-no-cache', 'tfjs-wasm']) {
    results.push(run(process.execPath, [self, '--child', engine, '--workload', workload, '--prompts', String(nPrompts), '--max-new', String(maxNew)], engine));
  }
  // How many generations differ from the key/value-cache engine's (greedy decoding flips where two logits nearly tie).
  const ref = results[0]?.outputs ?? [];
  for (const r of results) {
    if (r.outputs) r.generations_differing_from_kv_cache = r.outputs.filter((o, k) => o !== ref[k]).length;
    delete r.outputs;
  }
  console.log(JSON.stringify({ workload, shape: w, max_new_tokens: maxNew, machine: `${process.arch}, ${cpus().length} cpus, node ${process.version}`, uptime_start: start, uptime_end: uptime(), results }, null, 2));
}
