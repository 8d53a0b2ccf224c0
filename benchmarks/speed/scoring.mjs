#!/usr/bin/env node
// Speed benchmark for issue 6's W2 and its scaling: score matrices train [nTrain × D] · test [nTest × D]ᵀ
// on onnxruntime's GEMM (blocked, train rows streamed), next to PyTorch CPU (scoring.py, torch.mm,
// Debian's python3-torch) on the same shapes, and the machine's GEMM peak (MatMul n = 2048), in one run.
// Usage (after `npm run build`): node benchmarks/speed/scoring.mjs [--sizes 1000,10000,100000] [--n-test 100] [--w2 10000] [--torch-threads 1,2]
//   [--packing test,block] (which GEMM operand onnxruntime packs: the test matrix once per call, or every streamed block)
// The GEMM peak is the best MatMul n = 2048 of either engine; GFLOP/s count 2·nTrain·nTest·D per GEMM second.
// Every (engine, size) runs in its own process so its peak RSS is its own.
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};

/**
 * LoRA parameter count of a LLaMA-style decoder (no GQA): per layer, rank r adapters A [r × in] and
 * B [out × r] on q, k, v, o (hidden → hidden) and gate, up (hidden → ffn), down (ffn → hidden).
 */
export function loraDim({ hidden, layers, ffn, rank }) {
  const adapter = (inDim, outDim) => rank * inDim + outDim * rank;
  return layers * (4 * adapter(hidden, hidden) + 2 * adapter(hidden, ffn) + adapter(ffn, hidden));
}
// Issue 6's W1 shape (vocab 32000, 4 heads; neither changes the LoRA size).
const W1 = { vocab: 32000, hidden: 256, layers: 4, heads: 4, ffn: 688, seq: 128, rank: 8 };

/** Seeded xorshift32 rows in [-1, 1): row i depends only on (seed, i), so any block is generated on its own. */
function fillRows(out, start, count, dim, seed) {
  for (let k = 0; k < count; k++) {
    let x = (Math.imul(start + k + 1, 0x9e3779b1) ^ seed) | 0 || 1;
    const base = k * dim;
    for (let d = 0; d < dim; d++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[base + d] = x * 4.656612873077393e-10;
    }
  }
}

async function child() {
  const { startOnnxRuntime, OnnxBlockedDot, measureMatMulPeak } = await import('@dda/backend-onnxruntime');
  const backend = await startOnnxRuntime(undefined, (l) => process.stderr.write(`${l}\n`));
  const what = arg('child');
  if (what === 'peak') {
    const runs = [];
    for (let r = 0; r < 3; r++) runs.push((await measureMatMulPeak(backend, 2048, 5)).gflops);
    console.log(JSON.stringify({ engine: backend.id, device: backend.device, matmul2048_gflops: Math.max(...runs), runs }));
    return;
  }
  const nTrain = Number(arg('n-train'));
  const nTest = Number(arg('n-test'));
  const dim = Number(arg('dim'));
  const test = new Float32Array(nTest * dim);
  fillRows(test, 1_000_000_000, nTest, dim, 0x5eed);
  const packing = arg('packing', 'block');
  const gemm = await OnnxBlockedDot.create(backend, { packing });
  let genSec = 0;
  let sinkSec = 0;
  const checksum = new Float64Array(nTest); // column sums: every score is used
  const source = {
    rows: nTrain,
    dim,
    read(start, count, scratch) {
      const t = performance.now();
      fillRows(scratch, start, count, dim, 0x7a11);
      genSec += (performance.now() - t) / 1000;
      return scratch.subarray(0, count * dim);
    },
  };
  const sink = (_start, count, values) => {
    const t = performance.now();
    for (let k = 0; k < count; k++) for (let j = 0; j < nTest; j++) checksum[j] += values[k * nTest + j];
    sinkSec += (performance.now() - t) / 1000;
  };
  // Warm-up on one block (with the test matrix packed, each call packs it again: the timed call counts that).
  await gemm.scores({ ...source, rows: Math.min(nTrain, 64) }, test, nTest, { sink: () => {} });
  genSec = 0;
  const t0 = performance.now();
  await gemm.scores(source, test, nTest, { sink });
  const wall = (performance.now() - t0) / 1000;
  const gemmSec = wall - genSec - sinkSec;
  const flop = 2 * nTrain * nTest * dim;
  console.log(JSON.stringify({
    engine: `dda ${backend.id}, ${packing} packed`, n_train: nTrain, n_test: nTest, dim,
    gemm_s: gemmSec, generate_s: genSec, wall_s: wall, pairs_per_s: (nTrain * nTest) / gemmSec, gflops: flop / gemmSec / 1e9,
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024), checksum0: checksum[0],
  }));
}

function runChild(cmd, args) {
  const load = loadavg()[0];
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  const out = r.status !== 0
    ? { cmd: [cmd, ...args].join(' '), error: (r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' | '), load_before: load }
    : { ...JSON.parse(r.stdout.trim().split('\n').pop()), load_before: load, load_after: loadavg()[0] };
  process.stderr.write(`${JSON.stringify(out)}\n`); // progress
  return out;
}

async function main() {
  const sizes = arg('sizes', '1000,10000,100000').split(',').map(Number);
  const w2 = Number(arg('w2', '10000'));
  const nTest = Number(arg('n-test', '100'));
  const dim = Number(arg('dim', String(loraDim(W1))));
  const self = fileURLToPath(import.meta.url);
  const py = fileURLToPath(new URL('./scoring.py', import.meta.url));
  const out = { machine: `${process.arch}, ${(await import('node:os')).cpus().length} cpus, node ${process.version}`, w1_shape: W1, dim, n_test: nTest, load_start: loadavg() };
  out.peak_onnx = runChild(process.execPath, [self, '--child', 'peak']);
  const torchThreads = arg('torch-threads', '1,2').split(',');
  out.peak_torch = torchThreads.map((t) => runChild('/usr/bin/python3', [py, 'peak', t]));
  out.runs = [];
  for (const n of [...new Set([w2, ...sizes])].sort((a, b) => a - b)) {
    for (const packing of arg('packing', 'test,block').split(',')) {
      out.runs.push(runChild(process.execPath, [self, '--child', 'scores', '--n-train', String(n), '--n-test', String(nTest), '--dim', String(dim), '--packing', packing]));
    }
    for (const t of torchThreads) out.runs.push(runChild('/usr/bin/python3', [py, 'scores', String(n), String(nTest), String(dim), t]));
  }
  out.load_end = loadavg();
  const peak = Math.max(out.peak_onnx.matmul2048_gflops ?? 0, ...out.peak_torch.map((p) => p.matmul2048_gflops ?? 0));
  out.peak_gflops = peak;
  for (const r of out.runs) if (r.gflops) r.fraction_of_peak = r.gflops / peak;
  console.log(JSON.stringify(out, null, 2));
}

if (process.argv.includes('--child')) await child();
else await main();
