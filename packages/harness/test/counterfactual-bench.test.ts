import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseBenchConfig, runBench } from '@dda/harness';

// LDS and leave-out retraining in a real (tiny) benchmark cell.
const dir = mkdtempSync(join(tmpdir(), 'dda-lds-bench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const config = parseBenchConfig({
  name: 'lds', families: ['llama2-tiny'], scorers: ['grad-dot', 'bm25'], seeds: [0],
  data: { nTrain: 120, nHeldOut: 16, nPretrain: 600 }, training: { pretrainEpochs: 2, finetuneEpochs: 2 }, k: 10,
  metrics: ['auc', 'recall', 'lds', 'leave-out'], lds: { subsets: 5, alpha: 0.5 }, leaveOut: { k: 10, methods: ['grad-dot'] },
}, 'test');

describe('counterfactual metrics in dda bench', () => {
  it('reports LDS for every method, leave-out for the listed ones against random removal, and paired LDS tests; a re-run retrains nothing', async () => {
    const r = await runBench(config, dir);
    const avg = r.rows.filter((x) => x.source === 'average');
    expect(avg.map((x) => x.method)).toEqual(['grad-dot', 'dda(grad-dot)', 'dda-zscore(grad-dot)', 'bm25']);
    for (const x of avg) {
      expect(x.lds, x.method).toBeGreaterThanOrEqual(-1);
      expect(x.lds, x.method).toBeLessThanOrEqual(1);
      expect(x.leaveOutRandom).toBeGreaterThanOrEqual(0);
    }
    const grad = avg.find((x) => x.method === 'grad-dot')!;
    expect(grad.leaveOut).toBeGreaterThanOrEqual(0);
    expect(grad.leaveOut).toBeLessThanOrEqual(1);
    expect(Number.isNaN(avg.find((x) => x.method === 'dda(grad-dot)')!.leaveOut)).toBe(true);
    // The per-kind rows (errors introduced by fine-tuning vs made by θ0) carry no LDS.
    for (const x of r.rows.filter((y) => y.source.includes('['))) expect(Number.isNaN(x.lds)).toBe(true);
    expect(r.summary.find((s) => s.family === 'all' && s.method === 'grad-dot')!.ldsMean).toBeCloseTo(grad.lds, 12);
    expect(r.paired.filter((p) => p.metric === 'lds').map((p) => p.method).sort()).toEqual(['bm25', 'dda-zscore(grad-dot)', 'grad-dot']);
    const retrained = readdirSync(join(dir, 'artifacts', 'runs', 'retrain'));
    // 5 LDS subsets, and per source one random removal and one removal of grad-dot's top 10.
    const sources = new Set(r.rows.filter((x) => x.source !== 'average' && !x.source.includes('[')).map((x) => x.source)).size;
    expect(retrained).toHaveLength(5 + 2 * sources);
    const again = await runBench(config, dir);
    expect(again.rows.map((x) => [x.method, x.source, x.auc, x.lds, x.leaveOut, x.leaveOutRandom])).toEqual(r.rows.map((x) => [x.method, x.source, x.auc, x.lds, x.leaveOut, x.leaveOutRandom]));
    expect(readdirSync(join(dir, 'artifacts', 'runs', 'retrain'))).toEqual(retrained);
  }, 900_000);
});
