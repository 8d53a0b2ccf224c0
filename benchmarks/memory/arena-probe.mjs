#!/usr/bin/env node
// RSS and time of three consecutive per-example-gradient runs of the onnxruntime engine at real
// widths (random weights, rank-16 LoRA on every linear map, one example, loss on the second half),
// with or without onnxruntime's CPU memory arena (issue 13: why the arena stays on).
// Usage (after `npm run build`): node benchmarks/memory/arena-probe.mjs [LAYERS 4] [TOKENS 512] [arena|noarena] [MODEL tinyllama-1.1b]
//   e.g. node benchmarks/memory/arena-probe.mjs 6 512 noarena qwen2-0.5b
// Prefix GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295
// to keep freed memory in the process.
import { fillUniformStream, loraWeightSpecs, randomDecoderWeights, realModelConfig } from '@dda/model';
import { OnnxDecoder, startOnnxRuntime } from '@dda/backend-onnxruntime';

const [layers, T] = [Number(process.argv[2] ?? 4), Number(process.argv[3] ?? 512)];
const arena = process.argv[4] !== 'noarena';
const { config } = realModelConfig(process.argv[5] ?? 'tinyllama-1.1b', { numLayers: layers });
const base = randomDecoderWeights(config, 0);
const lora = { rank: 16, alpha: 32, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] };
const loraWeights = new Map(loraWeightSpecs(config, lora).map(({ name, shape }) => {
  const data = new Float32Array(shape[0] * shape[1]);
  fillUniformStream(7, name, 0, 0.05, 0, data);
  return [name, { shape, data }];
}));
const gb = () => (process.memoryUsage().rss / 1e9).toFixed(2);
const peak = () => (process.resourceUsage().maxRSS / 1e6).toFixed(2);
console.log(`weights: rss ${gb()} GB`);
const dec = new OnnxDecoder(await startOnnxRuntime(['onnxruntime-cpu']), config, lora, base, loraWeights, { intraOpNumThreads: 1, sessionOptions: { enableCpuMemArena: arena } });
const e = { tokens: Int32Array.from({ length: T }, (_, k) => (k * k * 7919 + k * 104729 + 13) % config.vocabSize), lossMask: Float32Array.from({ length: T - 1 }, (_, t) => (t >= T / 2 ? 1 : 0)) };
const cpu0 = process.cpuUsage();
for (let r = 0; r < 3; r++) {
  const t = performance.now();
  await dec.perExampleGradients(['a'], [e], 'x');
  console.log(`run ${r}: rss ${gb()} GB, peak ${peak()} GB, ${((performance.now() - t) / 1000).toFixed(1)} s`);
}
const c = process.cpuUsage(cpu0);
console.log(`cpu: user ${(c.user / 1e6).toFixed(1)} s, system ${(c.system / 1e6).toFixed(1)} s (arena ${arena ? 'on' : 'off'}, ${process.env.GLIBC_TUNABLES ? 'GLIBC_TUNABLES set' : 'glibc defaults'})`);
await dec.release();
