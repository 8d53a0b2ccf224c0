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
 * LLaMA-style decoder with `qHidden` = query heads · head size (default `hidden`; larger or
 * smaller where the config gives its own head_dim, as Qwen3 and Gemma-3), `kvHidden` = key/value
 * heads · head size (grouped-query attention; default `qHidden`), dense attention (all seq × seq
 * scores, as every engine here computes them),
 * LoRA of rank `rank` on q, k, v, o, gate, up, down, the output projection on the `rows` loss
 * rows only:
 * forward: every linear map 2·seq·in·out, LoRA 2·seq·r·(in+out) per adapted map, attention
 * 2 · 2·seq²·qHidden per layer, output projection 2·rows·hidden·vocab;
 * backward: the input gradient of every linear map (not layer 0's q, k, v, whose input is the
 * embedding, which needs no gradient) and of the output projection, twice the LoRA forward
 * (adapter gradients and input gradients), twice the attention forward. Elementwise work
 * (norms, softmax, RoPE) is not counted.
 */
export function neededFlops({ vocab, hidden: d, qHidden, kvHidden, layers, ffn, seq, rank }, rows) {
  const qd = qHidden ?? d;
  const kv = kvHidden ?? qd;
  const maps = [[d, qd], [d, kv], [d, kv], [qd, d], [d, ffn], [d, ffn], [ffn, d]]; // q, k, v, o, gate, up, down as [in, out]
  const linear = maps.reduce((a, [i, o]) => a + 2 * seq * i * o, 0);
  const lora = maps.reduce((a, [i, o]) => a + 2 * seq * rank * (i + o), 0);
  const attention = 2 * 2 * seq * seq * qd;
  const head = 2 * rows * d * vocab;
  const forward = layers * (linear + lora + attention) + head;
  const firstQkv = 2 * seq * d * (qd + 2 * kv);
  const backward = layers * linear - firstQkv + head + layers * (2 * lora + 2 * attention);
  return forward + backward;
}

/**
 * The machine's float32 GEMM peak now: MatMul n = 2048 on onnxruntime (per-example-gradients.mjs
 * --child peak) and torch.mm with 1 and 2 threads (scoring.py peak), each in its own process;
 * `torchEnv(threads)` gives the PyTorch processes' added environment (e.g. {@link torchBlasEnv}).
 * Returns every measurement and the best GFLOP/s.
 */
export function matmulPeaks(torchEnv = () => ({})) {
  const dir = (f) => fileURLToPath(new URL(f, import.meta.url));
  const peaks = [
    run(process.execPath, [dir('./per-example-gradients.mjs'), '--child', 'peak'], 'onnxruntime peak'),
    ...[1, 2].map((t) => ({ ...run('/usr/bin/python3', [dir('./scoring.py'), 'peak', String(t)], `torch.mm peak, ${t} threads`, torchEnv(t)), ...torchEnv(t) })),
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

/**
 * Environment that makes Debian's python3-torch (built with BLAS_INFO=generic: it calls whatever
 * libblas.so.3 the loader finds) use the libblas.so.3 in `dir` with `threads` threads, e.g. the
 * OpenBLAS of Debian's libopenblas0-pthread unpacked with `apt-get download` and `dpkg-deb -x`:
 * a machine with only libblas3 (the reference BLAS) gives torch.mm about 4 GFLOP/s against 70 with
 * OpenBLAS (BENCHMARKS.md, issue 26). {} for no `dir`.
 */
export const torchBlasEnv = (dir, threads) => (dir ? { LD_LIBRARY_PATH: dir, OPENBLAS_NUM_THREADS: String(threads) } : {});

/**
 * A resumable benchmark step: `step(name, fn)` runs `fn` once and keeps its result as
 * `results[name]` (without its `out`, with `finished`), handing it to `keep(name, result)` to be
 * saved; a step already in `results` is not run again.
 */
export function stepRunner(results, keep, log) {
  return (name, fn) => {
    if (results[name]) return results[name];
    log(`${name} ...`);
    const r = { ...fn(), finished: new Date().toISOString() };
    delete r.out;
    results[name] = r;
    keep(name, r);
    log(`${name}: ${JSON.stringify(r)}`);
    return r;
  };
}
