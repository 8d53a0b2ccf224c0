import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseBenchConfig, runBench } from '@dda/harness';
import { runCli } from '@dda/cli';
import { readSafetensors, writeSafetensors } from '@dda/model';

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
    expect(avg.map((x) => x.method)).toEqual(['grad-dot', 'dda(grad-dot)', 'dda-zscore(grad-dot)', 'dda-recommended(grad-dot)', 'bm25']);
    for (const x of avg) {
      expect(x.metrics['lds'], x.method).toBeGreaterThanOrEqual(-1);
      expect(x.metrics['lds'], x.method).toBeLessThanOrEqual(1);
      expect(x.metrics['leave_out_random']).toBeGreaterThanOrEqual(0);
    }
    const grad = avg.find((x) => x.method === 'grad-dot')!;
    expect(grad.metrics['leave_out']).toBeGreaterThanOrEqual(0);
    expect(grad.metrics['leave_out']).toBeLessThanOrEqual(1);
    expect(Number.isNaN(avg.find((x) => x.method === 'dda(grad-dot)')!.metrics['leave_out'])).toBe(true);
    // The per-kind rows (errors introduced by fine-tuning vs made by θ0) carry no LDS.
    for (const x of r.rows.filter((y) => y.source.includes('['))) expect(Number.isNaN(x.metrics['lds'])).toBe(true);
    expect(r.summary.find((s) => s.family === 'all' && s.method === 'grad-dot')!.metrics['lds']!.mean).toBeCloseTo(grad.metrics['lds'], 12);
    // Against the recommended DDA and against plain grad-dot, over the one family × seed cell.
    expect(r.paired.filter((p) => p.metric === 'lds' && p.reference === 'dda-recommended(grad-dot)').map((p) => p.method).sort()).toEqual(['bm25', 'dda(grad-dot)', 'dda-zscore(grad-dot)', 'grad-dot']);
    expect(r.paired.filter((p) => p.metric === 'lds' && p.reference === 'grad-dot').map((p) => p.method).sort()).toEqual(['bm25', 'dda(grad-dot)', 'dda-recommended(grad-dot)', 'dda-zscore(grad-dot)']);
    expect(r.paired.every((p) => p.n === 1 && p.minPValue === 1)).toBe(true);
    const retrained = readdirSync(join(dir, 'artifacts', 'runs', 'retrain'));
    // 5 LDS subsets, and per source one random removal and one removal of grad-dot's top 10.
    const sources = new Set(r.rows.filter((x) => x.source !== 'average' && !x.source.includes('[')).map((x) => x.source)).size;
    expect(retrained).toHaveLength(5 + 2 * sources);
    const again = await runBench(config, dir);
    expect(again.rows.map((x) => [x.method, x.source, x.metrics['auc'], x.metrics['lds'], x.metrics['leave_out'], x.metrics['leave_out_random']])).toEqual(r.rows.map((x) => [x.method, x.source, x.metrics['auc'], x.metrics['lds'], x.metrics['leave_out'], x.metrics['leave_out_random']]));
    expect(readdirSync(join(dir, 'artifacts', 'runs', 'retrain'))).toEqual(retrained);
  }, 900_000);
});

describe('a failing cell loses no other cell\'s results (issue 17, fault 4)', () => {
  it('writes every output of the cells that finished, names the failed cell and its reason, and exits 1', async () => {
    // A second family whose θ0 holds a NaN: its cell fails, the first one (cached above) is reported.
    const pretrained = join(dir, 'artifacts', 'checkpoints', 'base');
    const bad = join(dir, 'nan-model');
    cpSync(join(pretrained, readdirSync(pretrained)[0]!), bad, { recursive: true });
    const path = join(bad, 'model.safetensors');
    const st = readSafetensors(readFileSync(path), path);
    st.tensors.get('model.norm.weight')!.data[3] = Number.NaN;
    writeFileSync(path, writeSafetensors(st.tensors, st.metadata));
    const cfg = join(dir, 'two-families.json');
    writeFileSync(cfg, JSON.stringify({ ...JSON.parse(JSON.stringify(config)), metrics: ['auc', 'recall'], families: ['llama2-tiny', bad], name: 'two' }));
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(['bench', '--config', cfg, '--out', dir, '--quiet'], { out: (l) => out.push(l), err: (l) => err.push(l) });
    expect(code).toBe(1);
    expect(err.join('\n')).toMatch(/1 of 2 cells failed \(.*nan-model seed 0: .*'model\.norm\.weight' holds NaN at flat index 3.*the results of the other cells are written/);
    const csv = readFileSync(join(dir, 'two.csv'), 'utf8');
    expect(csv).toMatch(/^llama2-tiny,grad-dot,/m);
    expect(csv).not.toMatch(/nan-model/);
    const summary = JSON.parse(readFileSync(join(dir, 'two-summary.json'), 'utf8')) as { skipped: { family: string; failed?: boolean }[] };
    expect(summary.skipped).toEqual([expect.objectContaining({ family: bad, failed: true })]);
  }, 600_000);
});
