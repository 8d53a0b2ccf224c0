// Helpers shared by the speed benchmarks: command-line options, running one engine in a child
// process (so that its peak RSS is its own) with the load average before and after, `uptime`.
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

/** The value after `--name` on the command line, or `dflt`. */
export const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};

/** The median of a non-empty list of numbers. */
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The machine's `uptime` line (time and load averages). */
export const uptime = () => spawnSync('uptime', { encoding: 'utf8' }).stdout.trim();

/**
 * Runs `cmd args` (with `env` added to this process's environment) and returns the JSON of its last stdout line with the 1-minute load average
 * before and after, or `{ engine: label, error }` with the last lines of its stderr. Each result
 * is also written to stderr as progress.
 */
export function run(cmd, args, label, env = {}) {
  const load = loadavg()[0];
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, ...env } });
  const out = r.status === 0
    ? { ...JSON.parse(r.stdout.trim().split('\n').pop()), load_before: load, load_after: loadavg()[0] }
    : { engine: label, error: (r.stderr || r.error?.message || '').trim().split('\n').slice(-2).join(' | '), load_before: load };
  process.stderr.write(`${JSON.stringify(out)}\n`);
  return out;
}

/**
 * Floating-point operations one example's LoRA gradient needs (multiply-adds count 2), for a
 * LLaMA-style decoder with `kvHidden` = key/value heads · head size (grouped-query attention;
 * default `hidden`), dense attention (all seq × seq scores, as every engine here computes them),
 * LoRA of rank `rank` on q, k, v, o, gate, up, down, the output projection on the `rows` loss
 * rows only:
 * forward: every linear map 2·seq·in·out, LoRA 2·seq·r·(in+out) per adapted map, attention
 * 2 · 2·seq²·hidden per layer, output projection 2·rows·hidden·vocab;
 * backward: the input gradient of every linear map (not layer 0's q, k, v, whose input is the
 * embedding, which needs no gradient) and of the output projection, twice the LoRA forward
 * (adapter gradients and input gradients), twice the attention forward. Elementwise work
 * (norms, softmax, RoPE) is not counted.
 */
export function neededFlops({ vocab, hidden: d, kvHidden, layers, ffn, seq, rank }, rows) {
  const kv = kvHidden ?? d;
  const maps = [[d, d], [d, kv], [d, kv], [d, d], [d, ffn], [d, ffn], [ffn, d]]; // q, k, v, o, gate, up, down as [in, out]
  const linear = maps.reduce((a, [i, o]) => a + 2 * seq * i * o, 0);
  const lora = maps.reduce((a, [i, o]) => a + 2 * seq * rank * (i + o), 0);
  const attention = 2 * 2 * seq * seq * d;
  const head = 2 * rows * d * vocab;
  const forward = layers * (linear + lora + attention) + head;
  const firstQkv = 2 * seq * d * (d + 2 * kv);
  const backward = layers * linear - firstQkv + head + layers * (2 * lora + 2 * attention);
  return forward + backward;
}

/**
 * The machine's float32 GEMM peak now: MatMul n = 2048 on onnxruntime (per-example-gradients.mjs
 * --child peak) and torch.mm with 1 and 2 threads (scoring.py peak), each in its own process.
 * Returns every measurement and the best GFLOP/s.
 */
export function matmulPeaks() {
  const dir = (f) => fileURLToPath(new URL(f, import.meta.url));
  const peaks = [
    run(process.execPath, [dir('./per-example-gradients.mjs'), '--child', 'peak'], 'onnxruntime peak'),
    ...[1, 2].map((t) => run('/usr/bin/python3', [dir('./scoring.py'), 'peak', String(t)], `torch.mm peak, ${t} threads`)),
  ];
  return { peaks, peak: Math.max(...peaks.map((p) => p.matmul2048_gflops ?? 0)) };
}

/**
 * glibc malloc settings that keep freed memory in the process (no mmap for large blocks, no trim),
 * so that a run's buffers are reused by the next run instead of being returned to the system and
 * faulted in again: fresh memory is slow to touch on the development machine (BENCHMARKS.md).
 * Read by the dynamic loader at process start: pass it in the environment of a new process.
 */
export const GLIBC_KEEP_FREED = { GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295' };
