import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SeededRandom } from '@dda/core';
import { BENCH_COLUMNS, SUMMARY_COLUMNS } from '@dda/harness';

// These tests run the built CLI (`npm test` builds first) as a child process, so that it can be killed.
const MAIN = 'packages/cli/dist/main.js';
const ARGS = ['bench', '--config', 'benchmarks/configs/tiny.json', '--seeds', '0'];

function start(out: string, extra: readonly string[] = []): { done: Promise<{ code: number | null; signal: string | null; err: string }>; kill: (s: NodeJS.Signals) => void } {
  const child = spawn(process.execPath, [MAIN, ...ARGS, '--out', out, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
  child.stdout.on('data', () => {});
  const done = new Promise<{ code: number | null; signal: string | null; err: string }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, err })));
  return { done, kill: (s) => child.kill(s) };
}

/** Every finished artifact (manifest path → its createdAt). */
function manifests(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    if (!existsSync(d)) return;
    let entries: string[];
    try {
      entries = readdirSync(d);
    } catch {
      return; // a temporary folder renamed away meanwhile
    }
    for (const e of entries) {
      const p = join(d, e);
      // A temporary file can be renamed away between readdir and stat (an artifact being written).
      const st = statSync(p, { throwIfNoEntry: false });
      if (st?.isDirectory()) walk(p);
      else if (e === 'manifest.json') out.set(relative(root, p), (JSON.parse(readFileSync(p, 'utf8')) as { createdAt: string }).createdAt);
    }
  };
  walk(root);
  return out;
}

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** CSV rows without the timing column (times differ between runs; everything else must not). */
function withoutSeconds(csv: string): string[] {
  const [head, ...rows] = csv.trim().split('\n');
  const i = (head ?? '').split(',').indexOf('seconds');
  return [head ?? '', ...rows].map((r) => r.split(',').filter((_, c) => c !== i).join(','));
}

describe('dda bench (tiny configuration, as a process)', () => {
  const dirs: string[] = [];
  const tmp = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'dda-bench-'));
    dirs.push(d);
    return d;
  };
  let reference: string;
  let referenceErr = '';
  beforeAll(async () => {
    reference = tmp();
    // The reference run also checks the JSON progress events that tools driving the CLI read.
    const r = await start(reference, ['--progress', 'json', '--format', 'latex']).done;
    expect(r.code, r.err).toBe(0);
    referenceErr = r.err;
  });
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('writes the CSV columns, finite numbers, a summary and a self-contained report', () => {
    const lines = readFileSync(join(reference, 'tiny.csv'), 'utf8').trim().split('\n');
    expect(lines[0]).toBe(BENCH_COLUMNS.join(','));
    const rows = lines.slice(1).map((l) => l.split(','));
    const methods = new Set(rows.map((r) => r[1]));
    expect([...methods].sort()).toEqual(['bm25', 'cea', 'dda(grad-dot)', 'dda-recommended(grad-dot)', 'dda-zscore(grad-dot)', 'grad-dot']);
    for (const r of rows) {
      for (const c of ['auc', 'recall_at_k', 'seconds', 'seed', 'k', 'n_positives', 'n_train', 'n_tests']) {
        const v = Number(r[BENCH_COLUMNS.indexOf(c as (typeof BENCH_COLUMNS)[number])]);
        expect(Number.isFinite(v), `${c} in ${r.join(',')}`).toBe(true);
      }
    }
    expect(rows.filter((r) => r[4] === 'average')).toHaveLength(methods.size);
    const summary = readFileSync(join(reference, 'tiny-summary.csv'), 'utf8').trim().split('\n');
    expect(summary[0]).toBe(SUMMARY_COLUMNS.join(','));
    for (const l of summary.slice(1)) for (const v of l.split(',').slice(2)) expect(Number.isFinite(Number(v)), l).toBe(true);
    const html = readFileSync(join(reference, 'tiny-report.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).not.toContain('<script');
  });

  it('with --progress json writes only JSON events on stderr: progress of every step up to its end, and the log', () => {
    const events = referenceErr.trim().split('\n').map((l) => JSON.parse(l) as { event: string; label?: string; done?: number; total?: number; elapsedSeconds?: number; etaSeconds?: number | null; message?: string });
    const progress = events.filter((e) => e.event === 'progress');
    expect(events.filter((e) => e.event !== 'progress' && e.event !== 'log')).toEqual([]);
    expect(events.some((e) => e.event === 'log' && e.message?.startsWith('bench: llama2-tiny, seed 0'))).toBe(true);
    for (const e of progress) {
      expect(Object.keys(e).sort()).toEqual(['done', 'elapsedSeconds', 'etaSeconds', 'event', 'label', 'total']);
      expect(e.done).toBeLessThanOrEqual(e.total as number);
    }
    const labels = new Set(progress.map((e) => e.label));
    expect([...labels]).toEqual(expect.arrayContaining(['bench: family × seed cells', 'gradients of 120 training samples at checkpoint-16 (for grad-dot)']));
    for (const label of labels) {
      const last = progress.filter((e) => e.label === label).pop();
      expect(last?.done, label).toBe(last?.total);
    }
    expect(readFileSync(join(reference, 'tiny-summary.tex'), 'utf8')).toMatch(/^% Attribution leaderboard: tiny\. Made by: dda bench[\s\S]*\\bottomrule/);
  });

  it('a re-run that reuses every score matrix reports the seconds they took to compute, not to load', async () => {
    const seconds = (csv: string): Map<string, number> => {
      const [head, ...rows] = csv.trim().split('\n').map((l) => l.split(','));
      const col = (name: string): number => (head ?? []).indexOf(name);
      return new Map(rows.filter((r) => r[col('source')] === 'average').map((r) => [r[col('method')] as string, Number(r[col('seconds')])]));
    };
    const first = seconds(readFileSync(join(reference, 'tiny.csv'), 'utf8'));
    const again = await start(reference).done;
    expect(again.code, again.err).toBe(0);
    const second = seconds(readFileSync(join(reference, 'tiny.csv'), 'utf8'));
    // cea's matrix took seconds to compute and milliseconds to load: the re-run must report the former.
    // A row's seconds are its matrices' stored compute seconds (identical in both runs) plus the
    // debias/denoise transforms, which every run recomputes and times live: milliseconds here, but a
    // tenth of a second more under load, so cheap rows cannot be compared to the hundredth. cea's
    // row is almost all stored compute: the re-run must report it, neither the milliseconds of
    // loading it nor a second copy of it; no row may count cea-sized work twice.
    const cea = first.get('cea') as number;
    expect(cea).toBeGreaterThan(0.5);
    expect(second.get('cea')).toBeGreaterThan(cea * 0.75);
    expect(second.get('cea')).toBeLessThan(cea * 1.25);
    for (const [method, s] of first) expect(second.get(method), method).toBeLessThan(s + cea / 2);
  });

  // --jobs is at most the cores: on a 1-core machine there is no second worker to try.
  it.skipIf(availableParallelism() < 2)('--jobs 2: two worker processes compute the cells, the command collects them: the rows of --jobs 1', async () => {
    const out = tmp();
    const child = spawn(process.execPath, [MAIN, 'bench', '--config', 'benchmarks/configs/tiny.json', '--seeds', '0', '1', '--jobs', '2', '--out', out, '--progress', 'log'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    child.stdout.on('data', () => {});
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code, err).toBe(0);
    expect(err).toContain('bench: 2 worker processes compute the cells');
    expect(err).toMatch(/\[worker 1\]/);
    expect(err).toMatch(/\[worker 2\]/);
    // Each cell computed once, by one worker, and taken by the collecting run.
    expect(err.match(/\[worker \d\] bench: llama2-tiny, seed 0$/gm)?.length).toBe(1);
    expect(err.match(/\[worker \d\] bench: llama2-tiny, seed 1$/gm)?.length).toBe(1);
    expect(err.match(/bench: llama2-tiny, seed \d: computed by a worker/g)?.length).toBe(2);
    // Seed 0's rows are those of the one-process reference run (everything but the seconds).
    const seed0 = (csv: string): string[] => {
      const [head, ...rows] = withoutSeconds(csv);
      const i = (head ?? '').split(',').indexOf('seed');
      return rows.filter((r) => r.split(',')[i] === '0');
    };
    const rows = seed0(readFileSync(join(out, 'tiny.csv'), 'utf8'));
    expect(rows.length).toBeGreaterThan(0);
    expect(rows).toEqual(seed0(readFileSync(join(reference, 'tiny.csv'), 'utf8')));
    // The claims and the workers' results of the run are removed once collected.
    for (const d of readdirSync(join(out, 'cells'))) expect(readdirSync(join(out, 'cells', d)).filter((f) => f.startsWith('.claim-') || f.startsWith('bench-result-'))).toEqual([]);
  }, 300_000);

  it('resumes after SIGTERM and SIGKILL at random points: same results, finished artifacts not recomputed', async () => {
    const out = tmp();
    const rng = new SeededRandom(2026);
    // 1. SIGTERM once the first artifact (the pretrained θ0) is finished: a clean exit code and message.
    const a = start(out);
    await waitFor(() => manifests(out).size >= 1, 120_000);
    a.kill('SIGTERM');
    const ra = await a.done;
    expect(ra.code).toBe(143);
    expect(ra.err).toContain('interrupted (SIGTERM)');
    // 2. SIGKILL (no chance to clean up) after a random number of further artifacts.
    const target = manifests(out).size + 1 + rng.int(4);
    const b = start(out);
    await waitFor(() => manifests(out).size >= target, 120_000);
    b.kill('SIGKILL');
    await b.done;
    const before = manifests(out);
    expect(before.size).toBeGreaterThanOrEqual(target);
    // 3. Resume to the end, keeping the training gradients it still computes (--store-gradients
    //    overrides the config's storeGradients; the scores are the same either way).
    const rc = await start(out, ['--store-gradients']).done;
    expect(rc.code, rc.err).toBe(0);
    const after = manifests(out);
    expect([...after.keys()].some((m) => m.includes(join('gradients', '')) && m.includes(join('', 'train', ''))), 'no stored training gradients').toBe(true);
    for (const [m, createdAt] of before) expect(after.get(m), `${m} was recomputed`).toBe(createdAt);
    expect(withoutSeconds(readFileSync(join(out, 'tiny.csv'), 'utf8'))).toEqual(withoutSeconds(readFileSync(join(reference, 'tiny.csv'), 'utf8')));
  }, 300_000); // three bench processes, one of them to the end: 140 s were measured on the shared 2 cores at load 6-8
});
