import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseBenchConfig, runBench, writeBenchOutputs } from '@dda/harness';

// The regime gates in a real (tiny) benchmark cell: G1 from the rows, G5 of the DDA scorer.
const dir = mkdtempSync(join(tmpdir(), 'dda-gates-bench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const config = parseBenchConfig({
  name: 'gates', families: ['llama2-tiny'], scorers: ['grad-dot', 'bm25'], seeds: [0],
  data: { nTrain: 120, nHeldOut: 16, nPretrain: 600 }, training: { pretrainEpochs: 2, finetuneEpochs: 2 }, k: 10,
}, 'test');

describe('regime gates in dda bench', () => {
  it('computes G1 from the plain rows, G3 at the final checkpoint and G5 of grad-dot, logs them and stores them in the summary JSON', async () => {
    const log: string[] = [];
    const r = await runBench(config, dir, (l) => log.push(l));
    expect(r.gates).toHaveLength(1);
    const cell = r.gates![0]!;
    const perSource = (method: string) => r.rows.filter((x) => x.method === method && x.source !== 'average' && !x.source.includes('['));
    const plain = perSource('grad-dot');
    const bm25 = perSource('bm25');
    const expected = plain.reduce((a, x) => a + x.auc - bm25.find((y) => y.source === x.source)!.auc, 0) / plain.length;
    expect(cell.gates.g1!.value).toBeCloseTo(expected, 10);
    expect(cell.gates.g1!.pass).toBe(expected <= 2);
    // G3: the fine-tuned mean response loss over the training samples, nats/token
    expect(cell.gates.g3!.value).toBeGreaterThan(0);
    expect(cell.gates.g3!.pass).toBe(cell.gates.g3!.value >= 1.5);
    expect(log.some((l) => l.includes('gate G3 fine-tuned mean response loss'))).toBe(true);
    // G5: one AUC per epoch; the last is the plain score's (grad-dot's answer is the final checkpoint)
    const g5 = cell.g5['grad-dot']!;
    expect(g5.epochAucs).toHaveLength(2);
    expect(g5.epochAucs[1]).toBeCloseTo(r.rows.find((x) => x.method === 'grad-dot' && x.source === 'average')!.auc, 10);
    expect(g5.meanAbsRatio).toBeGreaterThan(0);
    expect(Math.abs(g5.columnCorrelation)).toBeLessThanOrEqual(1);
    expect(log.some((l) => l.includes('gate G1 ') && l.includes(expected.toFixed(3)))).toBe(true);
    expect(log.some((l) => l.includes('gate G5 grad-dot: mean |IS_θ0| / |IS_θ′|'))).toBe(true);
    await writeBenchOutputs(r, dir, 'dda bench --name gates');
    const json = JSON.parse(readFileSync(join(dir, 'gates-summary.json'), 'utf8')) as { gates: { cells: { gates: { g1: { value: number } } }[]; mean: { g1: { value: number } } } };
    expect(json.gates.cells[0]!.gates.g1.value).toBeCloseTo(expected, 10);
    expect(json.gates.mean.g1.value).toBeCloseTo(expected, 10);
  }, 600_000);
});
