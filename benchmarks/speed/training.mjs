#!/usr/bin/env node
// Speed benchmark: training throughput (tokens/s) of pretraining (every parameter) and LoRA
// fine-tuning (rank 8 on q, k, v, o, gate, up, down), Adam, on the project's engines
// (onnxruntime-cpu: one session with 1 or 2 intra-op threads, or 2 worker threads each running half
// of every batch; tfjs-wasm: DecoderModel.train) next to PyTorch on the CPU (training.py, Debian's
// python3-torch, 1 and 2 threads) doing the same steps on the same model shape, in one run.
// Every engine runs in its own process (peak RSS is its own); each is warmed up for 2 steps first.
// Usage (after `npm run build`): node benchmarks/speed/training.mjs [--workload demo|w1|qwen2-mini] [--mode pretrain|lora|both]
//   [--steps 30] [--tfjs-steps 30] [--engines onnxruntime-cpu,tfjs-wasm,pytorch]
// Tokens/s counts every token of every sequence of every step (batch × seq × steps / seconds);
// cpu_s is the CPU time of the timed steps (every thread of the process); tokens_per_s_median_step
// is from the median step's wall time (on a shared machine, the least disturbed figure).
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { arg, median, run, uptime } from './bench-lib.mjs';

// seq: tokens per sequence; response: loss positions of a fine-tuning sequence (the last ones).
const WORKLOADS = {
  // The demo's model and data shape: pretraining texts of about 45 tokens; fine-tuning samples of
  // about 60 tokens with a summary of about 10; batches of 16; learning rate 3e-3.
  demo: { vocab: 390, hidden: 64, layers: 2, heads: 4, ffn: 172, rank: 8, batch: 16, lr: 3e-3, pretrain: { seq: 48 }, lora: { seq: 64, response: 12 } },
  // Issue 6's W1 shape (LLaMA-style, 32k vocabulary), batches of 8 sequences of 128 tokens,
  // fine-tuning loss on the second half.
  // The real-text benchmark's qwen2-mini (Qwen2's 151,936-token vocabulary, 128 wide, 4 layers):
  // θ0's pretraining batches of 16, here of 208 tokens each (the mean of its texts; the benchmark's
  // batches are padded to their longest text, up to 512).
  'qwen2-mini': { vocab: 151936, hidden: 128, layers: 4, heads: 4, ffn: 344, rank: 8, batch: 16, lr: 3e-3, pretrain: { seq: 208 }, lora: { seq: 208, response: 40 } },
  w1: { vocab: 32000, hidden: 256, layers: 4, heads: 4, ffn: 688, rank: 8, batch: 8, lr: 1e-3, pretrain: { seq: 128 }, lora: { seq: 128, response: 64 } },
};
const workload = arg('workload', 'demo');
const w = WORKLOADS[workload];
if (!w) throw new Error(`unknown workload '${workload}': use ${Object.keys(WORKLOADS).join(', ')}`);

/** seq tokens per example: BOS, words, EOS; loss on the last `response` positions (all with pretraining). */
function examples(mode, count, offset) {
  const { seq } = w[mode];
  const response = mode === 'pretrain' ? seq - 1 : w.lora.response;
  return Array.from({ length: count }, (_, e) => {
    const words = Array.from({ length: seq - 2 }, (_, t) => 8 + (((e + offset) * 7919 + t * 104729) % (w.vocab - 8)));
    return { words, promptWords: seq - 1 - response };
  });
}

async function child(engine, mode, steps) {
  const { SPECIAL_TOKENS, WordTokenizer, initDecoderWeights, initLoraWeights, encodeExample, ALL_LORA_TARGETS } = await import('@dda/model');
  const config = {
    vocabSize: w.vocab, hiddenSize: w.hidden, numLayers: w.layers, numHeads: w.heads, numKvHeads: w.heads, intermediateSize: w.ffn,
    ropeTheta: 1e4, rmsNormEps: 1e-5, maxSeqLen: w[mode].seq, tieWordEmbeddings: false, attentionBias: false, slidingWindow: null,
  };
  const lora = { rank: w.rank, alpha: 2 * w.rank, targets: ALL_LORA_TARGETS };
  const base = initDecoderWeights(config, 0);
  const loraWeights = initLoraWeights(config, lora, 1);
  const tok = new WordTokenizer([...SPECIAL_TOKENS, ...Array.from({ length: w.vocab - SPECIAL_TOKENS.length }, (_, i) => `w${i}`)]);
  const word = (id) => `w${id - SPECIAL_TOKENS.length}`;
  const toSample = (x, i) => ({ id: `x${i}`, prompt: x.words.slice(0, x.promptWords).map(word).join(' '), response: x.words.slice(x.promptWords).map(word).join(' ') });
  const warm = examples(mode, 2 * w.batch, 0).map(toSample);
  const timed = examples(mode, steps * w.batch, 1000).map(toSample);
  const enc = (s) => encodeExample(tok, s.prompt, s.response, config.maxSeqLen, s.id);
  if (enc(timed[0]).tokens.length !== w[mode].seq) throw new Error(`examples of ${enc(timed[0]).tokens.length} tokens, expected ${w[mode].seq}`);
  // Each step's wall time (onStep), for the median step: the least disturbed measure on a shared machine.
  const stepTimes = [];
  let last = 0;
  const onStep = () => {
    const now = performance.now();
    stepTimes.push(now - last);
    last = now;
  };
  const opts = { epochs: 1, learningRate: w.lr, batchSize: w.batch, seed: 0 };
  let t0;
  let c0;
  let cpu;
  let losses;
  let label = `dda ${engine}`;
  if (engine === 'onnxruntime-cpu') {
    const { OnnxTrainer, startOnnxRuntime } = await import('@dda/backend-onnxruntime');
    const threads = arg('ort-threads');
    const workers = arg('ort-workers');
    const o = { ...(threads ? { intraOpNumThreads: Number(threads) } : {}), ...(workers ? { workers: Number(workers) } : {}) };
    label += workers ? `, ${workers} workers × 1 thread` : `, 1 session × ${threads ?? 'default'} threads`;
    const trainer = new OnnxTrainer(await startOnnxRuntime(['onnxruntime-cpu']), config, mode === 'pretrain' ? 'all' : 'lora', base, mode === 'pretrain' ? null : { config: lora, weights: loraWeights }, o);
    await trainer.train(warm.map(enc), opts); // builds the graphs and sessions
    t0 = last = performance.now();
    c0 = process.cpuUsage();
    losses = await trainer.train(timed.map(enc), { ...opts, onStep });
    cpu = process.cpuUsage(c0);
    await trainer.release();
  } else {
    const { DecoderModel, startTfjsBackend } = await import('@dda/backend-tfjs');
    await startTfjsBackend([engine]);
    const model = new DecoderModel(config, tok, base);
    if (mode === 'lora') model.setLora(lora, loraWeights);
    const o = { ...opts, parameters: mode === 'pretrain' ? 'all' : 'lora' };
    await model.train(warm, o);
    t0 = last = performance.now();
    c0 = process.cpuUsage();
    losses = await model.train(timed, { ...o, onStep });
    cpu = process.cpuUsage(c0);
    model.dispose();
  }
  const sec = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({
    engine: label, mode, steps, batch: w.batch, seq: w[mode].seq, seconds: sec, cpu_s: (cpu.user + cpu.system) / 1e6, steps_per_s: steps / sec, tokens_per_s: (steps * w.batch * w[mode].seq) / sec,
    tokens_per_s_median_step: (w.batch * w[mode].seq) / (median(stepTimes) / 1000),
    loss: losses[0], peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  }));
}

if (process.argv.includes('--child')) {
  await child(arg('child'), arg('mode'), Number(arg('steps')));
} else {
  const self = fileURLToPath(import.meta.url);
  const py = fileURLToPath(new URL('./training.py', import.meta.url));
  const steps = arg('steps', '30');
  const tfjsSteps = arg('tfjs-steps', steps);
  const engines = arg('engines', 'onnxruntime-cpu,tfjs-wasm,pytorch').split(',');
  const modes = arg('mode', 'both') === 'both' ? ['pretrain', 'lora'] : [arg('mode')];
  const results = [];
  const start = uptime();
  for (const mode of modes) {
    for (const engine of engines) {
      const base = ['--child', engine, '--mode', mode, '--workload', workload];
      if (engine === 'onnxruntime-cpu') {
        for (const extra of [['--ort-threads', '1'], ['--ort-threads', '2'], ['--ort-workers', '2']]) results.push(run(process.execPath, [self, ...base, '--steps', steps, ...extra], 'dda onnxruntime-cpu'));
      } else if (engine === 'pytorch') {
        const { seq } = w[mode];
        const lossFrom = mode === 'pretrain' ? 0 : seq - 1 - w.lora.response;
        for (const threads of [1, 2]) {
          const a = [w.vocab, w.hidden, w.layers, w.heads, w.ffn, seq, w.rank, w.batch, steps, threads, mode, lossFrom, w.lr].map(String);
          results.push(run('/usr/bin/python3', [py, ...a], `pytorch (${threads} threads)`));
        }
      } else {
        results.push(run(process.execPath, [self, ...base, '--steps', tfjsSteps], `dda ${engine}`));
      }
    }
  }
  console.log(JSON.stringify({ workload, shape: w, machine: `${process.arch}, ${cpus().length} cpus (${cpus()[0]?.model}), node ${process.version}`, uptime_start: start, uptime_end: uptime(), results }, null, 2));
}
