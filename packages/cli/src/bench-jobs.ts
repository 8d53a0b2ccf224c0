/**
 * `dda bench --jobs N` / `dda ablate --jobs N`: the family × seed cells computed by N worker
 * processes at once, each claiming the next unclaimed cell (so a slow cell does not hold the
 * others back), with onnxruntime limited to ⌊cores / N⌋ threads per session in each (the
 * `DDA_ORT_THREADS` environment variable) so the workers do not oversubscribe the cores. The
 * workers save each finished cell's result beside its files under the run's id; the command then
 * collects them in one ordinary run, which computes any cell a worker did not finish (a worker that
 * failed or was killed), so the outputs are those of `--jobs 1` with the same cells.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import { DdaError, ORT_THREADS_ENV } from '@dda/core';
import { releaseClaims } from '@dda/harness';

/** The flags a worker must not inherit (it gets its own `--claim` and `--progress log`), with whether each takes a value. */
const DROPPED: Record<string, boolean> = { '--jobs': true, '--progress': true, '--quiet': false, '--claim': true };

/** `argv` without the flags of {@link DROPPED} (as `--flag value` or `--flag=value`). */
export function workerArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const name = a.split('=')[0] as string;
    if (Object.hasOwn(DROPPED, name)) {
      if (DROPPED[name] && !a.includes('=')) i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

/**
 * @throws DdaError unless `jobs` is an integer from 1 to the machine's cores (each worker runs at
 *   least one onnxruntime thread and holds its own models: more workers than cores only add memory).
 */
export function checkJobs(jobs: number): void {
  const cores = availableParallelism();
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > cores) {
    throw new DdaError(`--jobs must be an integer from 1 to the ${cores} cores of this machine, got ${jobs}`, `pass e.g. --jobs ${cores} (each worker process holds its own models, about 1 GB for the tiny families)`);
  }
}

/**
 * Runs `asked` worker processes (at most `cellCount`) of this command (`argv`, as typed after `dda`) and waits for them;
 * their log lines go to `log`, prefixed `[worker k]`. Resolves, when all have exited whatever their
 * exit codes (the collecting run computes what they left), to the run's id, which the collecting
 * run passes as `collect`.
 *
 * @throws DdaError as {@link checkJobs}.
 */
export async function runBenchWorkers(argv: readonly string[], asked: number, cellCount: number, outDir: string, kind: 'bench' | 'ablation', log: (line: string) => void): Promise<string> {
  checkJobs(asked);
  // More workers than cells would wait for nothing.
  const jobs = Math.min(asked, Math.max(1, cellCount));
  if (jobs < asked) log(`${kind}: --jobs ${asked}, but there are ${cellCount} cell(s): ${jobs} worker process(es)`);
  const claim = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const threads = Math.max(1, Math.floor(availableParallelism() / jobs));
  const main = process.argv[1] as string;
  log(`${kind}: ${jobs} worker processes compute the cells (onnxruntime at ${threads} thread${threads === 1 ? '' : 's'} per session each), then this process collects them`);
  const children: ReturnType<typeof spawn>[] = [];
  // A worker outlives nothing: when this process ends (an error, SIGINT, SIGTERM), so do they, and the claims go.
  const stop = (): void => {
    children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGTERM'));
    releaseClaims(outDir, kind, claim);
  };
  process.on('exit', stop);
  const ends = await Promise.all(Array.from({ length: jobs }, (_, k) => new Promise<string | null>((done) => {
    const child = spawn(process.execPath, [main, ...workerArgv(argv), '--claim', claim, '--progress', 'log'], {
      env: { ...process.env, [ORT_THREADS_ENV]: String(threads) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(child);
    createInterface({ input: child.stderr }).on('line', (line) => log(`[worker ${k + 1}] ${line.replace(/^\[\s*[\d.]+s\]\s*/, '')}`));
    child.on('error', (e) => done(`could not start (${e.message})`));
    child.on('close', (code, signal) => done(code === 0 ? null : signal !== null ? `was stopped by ${signal}` : `exited with code ${code}`));
  })));
  process.off('exit', stop);
  ends.forEach((end, k) => {
    if (end !== null) log(`${kind}: worker ${k + 1} ${end}; the cells it did not finish are computed now`);
  });
  releaseClaims(outDir, kind, claim); // the claims of this run are spent
  return claim;
}

