import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ProgressUpdate } from '@dda/core';
import { parseBenchConfig, runBench, runAblation, type BenchConfig } from '@dda/harness';

// The benchmark with streamed training gradients (the default) against storeGradients: true, on a
// tiny cell with two measurements and scorers of every kind: row-separable (grad-dot, tracin-cp),
// with block summaries (trak), and one that stores them at this size (if-lissa: its streamed form,
// depth + 1 passes, is used only above 1 GiB of training gradients per checkpoint).
const dir = mkdtempSync(join(tmpdir(), 'dda-stream-bench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const config = (storeGradients: boolean, scorers: string[]): BenchConfig => parseBenchConfig({
  name: 'stream', families: ['llama2-tiny'], scorers, measurements: ['loss', 'contrastive'], seeds: [0], storeGradients,
  data: { nTrain: 120, nHeldOut: 16, nPretrain: 600 }, training: { pretrainEpochs: 2, finetuneEpochs: 2 }, k: 10,
  // A metric of the `metrics` registry by id and options: recall-at-k at the config's k must equal the fixed recall@k column.
  metrics: ['auc', 'recall', { id: 'recall-at-k', k: 10 }],
  ablation: { scorer: 'grad-dot', betas: [1], debiasers: ['raw'], denoisers: ['mean'] },
}, 'test');
/** The checkpoints whose training gradients are stored under an artifact folder. */
const storedTrainGradients = (out: string): string[] => {
  const g = join(out, 'artifacts', 'gradients');
  return existsSync(g) ? readdirSync(g).filter((cp) => existsSync(join(g, cp, 'train'))).sort() : [];
};
const withoutSeconds = (rows: readonly { seconds: number }[]): unknown[] => rows.map(({ seconds: _s, ...r }) => r);

describe('dda bench with streamed training gradients', () => {
  it('gives the rows of the stored path for every scorer and measurement; only a scorer that stores them at this size (if-lissa) stores gradients, and the log says which path each took', async () => {
    const scorers = ['grad-dot', 'tracin-cp', 'trak'];
    const log: string[] = [];
    const events: ProgressUpdate[] = [];
    const streamed = await runBench(config(false, scorers), join(dir, 'streamed'), (l) => log.push(l), (e) => events.push(e));
    const stored = await runBench(config(true, scorers), join(dir, 'stored'), () => {});
    expect(withoutSeconds(streamed.rows)).toEqual(withoutSeconds(stored.rows));
    expect(streamed.rows.length).toBeGreaterThan(0);
    // The registry's recall-at-10 asked for in the config equals the default list's recall@k at k = 10, computed the same way.
    for (const r of streamed.rows) expect(r.metrics['recall-at-10']).toBe(r.metrics['recall_at_k']);
    expect(streamed.summary.every((s) => s.metrics['recall-at-10']!.mean === s.metrics['recall_at_k']!.mean)).toBe(true);
    expect(storedTrainGradients(join(dir, 'streamed'))).toEqual([]);
    expect(storedTrainGradients(join(dir, 'stored'))).toEqual(['base', 'checkpoint-16', 'checkpoint-8']);
    for (const s of ['grad-dot', 'tracin-cp', 'trak']) expect(log.some((l) => l.includes(`${s}: training gradients streamed`)), s).toBe(true);
    // One pass per checkpoint: each training sample's gradient computed once (one progress tick) for
    // both measurements and all three scorers.
    const ticks = new Map<string, number>();
    for (const e of events) if (/^gradients of \d+ training samples/.test(e.label)) ticks.set(e.label, (ticks.get(e.label) ?? 0) + 1);
    expect(Object.fromEntries(ticks)).toEqual(Object.fromEntries(['base', 'checkpoint-8', 'checkpoint-16'].map((cp) => [`gradients of 120 training samples at ${cp} (for grad-dot, tracin-cp, trak)`, 120])));
    // A scorer that stores them at this size says so, and why.
    const more: string[] = [];
    await runBench(config(false, ['grad-dot', 'if-lissa']), join(dir, 'streamed'), (l) => more.push(l));
    expect(more.some((l) => /if-lissa: training gradients stored .* its streamed fit is refused here: if-lissa: its streamed form computes every training gradient 200 \+ 1 times per checkpoint .* far cheaper to store/.test(l))).toBe(true);
    expect(storedTrainGradients(join(dir, 'streamed'))).toEqual(['base', 'checkpoint-16', 'checkpoint-8']);
  }, 900_000);

  it('streams datainf in passes, fit then score (each gradient computed 3 times, the log says so), with the stored path\'s rows to float rounding', async () => {
    const log: string[] = [];
    const events: ProgressUpdate[] = [];
    const streamed = await runBench(config(false, ['datainf']), join(dir, 'fit-streamed'), (l) => log.push(l), (e) => events.push(e));
    const stored = await runBench(config(true, ['datainf']), join(dir, 'fit-stored'), () => {});
    expect(storedTrainGradients(join(dir, 'fit-streamed'))).toEqual([]);
    expect(log.some((l) => /datainf: training gradients streamed in 3 passes, fit then score .* computed three times per checkpoint/.test(l))).toBe(true);
    // 3 passes per checkpoint (2 fit passes, the score pass), each over the 120 training samples once for both measurements.
    const ticks = [...new Set(events.filter((e) => /^gradients of \d+ training samples at checkpoint-8/.test(e.label)).map((e) => e.label))];
    expect(ticks.sort()).toEqual([1, 2, 3].map((p) => `gradients of 120 training samples at checkpoint-8 (for datainf, gradient pass ${p} of up to 3)`).sort());
    const round = (rows: readonly { seconds: number }[]): string => JSON.stringify(withoutSeconds(rows), (_k, v: unknown) => (typeof v === 'number' ? Number(v.toPrecision(9)) : v));
    expect(round(streamed.rows)).toEqual(round(stored.rows));
    expect(streamed.rows.length).toBeGreaterThan(0);
  }, 900_000);

  it('the ablation\'s cross reading (θ0 training gradients × θ′ queries) is streamed too, with the stored path\'s rows', async () => {
    const streamed = await runAblation(config(false, ['grad-dot']), join(dir, 'ablation-streamed'), () => {});
    const stored = await runAblation(config(true, ['grad-dot']), join(dir, 'ablation-stored'), () => {});
    expect(streamed.rows.some((r) => r.variant.startsWith('cross:'))).toBe(true);
    expect(withoutSeconds(streamed.rows)).toEqual(withoutSeconds(stored.rows));
    expect(storedTrainGradients(join(dir, 'ablation-streamed'))).toEqual([]);
  }, 900_000);
});
