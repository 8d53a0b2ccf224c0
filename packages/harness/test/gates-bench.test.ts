import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canaryGradientShare, experimentTask, measureCanaryShares, parseBenchConfig, runBench, runOptionsFor, writeBenchOutputs } from '@dda/harness';
import { AttributionRun } from '@dda/attribution';
import { entityMatching, makeExperiment } from '@dda/experiment';

// The regime gates in a real (tiny) benchmark cell: G1 from the rows, G2 measured, G3, G4 from the data, G5 of the DDA scorer.
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
    const expected = plain.reduce((a, x) => a + x.metrics['auc']! - bm25.find((y) => y.source === x.source)!.metrics['auc']!, 0) / plain.length;
    expect(cell.gates.g1!.value).toBeCloseTo(expected, 10);
    expect(cell.gates.g1!.pass).toBe(expected <= 2);
    // G3: the fine-tuned mean response loss over the training samples, nats/token
    expect(cell.gates.g3!.value).toBeGreaterThan(0);
    expect(cell.gates.g3!.pass).toBe(cell.gates.g3!.value >= 1.5);
    expect(log.some((l) => l.includes('gate G3 fine-tuned mean response loss'))).toBe(true);
    // G4: the smallest legitimate / sources ratio over the evaluated canaries, counted from the cell's own files
    const train = readFileSync(join(dir, 'cells', 'llama2-tiny-seed0', 'train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; summary: string });
    const labels = JSON.parse(readFileSync(join(dir, 'cells', 'llama2-tiny-seed0', 'labels.json'), 'utf8')) as Record<string, string[]>;
    // Canary ids are <orig>-to-<replacement>; the synthetic summaries are words separated by single spaces.
    const ratios = Object.entries(labels).map(([c, srcs]) => train.filter((t) => !srcs.includes(t.id) && ` ${t.summary} `.includes(` ${c.split('-to-')[1]} `)).length / srcs.length);
    expect(cell.gates.g4!.value).toBeCloseTo(Math.min(...ratios), 12);
    // G2: a share per measured source, each in (0, 1.5)
    expect(cell.gates.g2!.value).toBeGreaterThan(0);
    expect(Object.keys(cell.gates.g2!.detail).sort()).toEqual(Object.keys(labels).flatMap((c) => [`${c} max`, `${c} mean`]).sort());
    // G5: one AUC per epoch; the last is the plain score's (grad-dot's answer is the final checkpoint)
    const g5 = cell.g5['grad-dot']!;
    expect(g5.epochAucs).toHaveLength(2);
    expect(g5.epochAucs[1]).toBeCloseTo(r.rows.find((x) => x.method === 'grad-dot' && x.source === 'average')!.metrics['auc']!, 10);
    expect(g5.meanAbsRatio).toBeGreaterThan(0);
    expect(Math.abs(g5.columnCorrelation)).toBeLessThanOrEqual(1);
    expect(log.some((l) => l.includes('gate G1 ') && l.includes(expected.toFixed(3)))).toBe(true);
    expect(log.some((l) => l.includes('gate G5 grad-dot: mean |IS_θ0| / |IS_θ′|'))).toBe(true);
    await writeBenchOutputs(r, dir, 'dda bench --name gates');
    const json = JSON.parse(readFileSync(join(dir, 'gates-summary.json'), 'utf8')) as { gates: { cells: { gates: { g1: { value: number } } }[]; mean: { g1: { value: number } } } };
    expect(json.gates.cells[0]!.gates.g1.value).toBeCloseTo(expected, 10);
    expect(json.gates.mean.g1.value).toBeCloseTo(expected, 10);
  }, 600_000);

  it("G2's share (entity part of the loss scaled by n_c/T) equals the share from one gradient per response token", async () => {
    // The same cell, reused from the artifacts of the test above.
    const exp = await makeExperiment(runOptionsFor(config, 'llama2-tiny', 0, join(dir, 'artifacts')));
    const task = await experimentTask(exp);
    const run = await AttributionRun.open(task, { artifactsDir: join(dir, 'artifacts'), measurement: 'loss' });
    try {
      const model = await run.model();
      const cp = task.checkpoints[task.checkpoints.length - 1]!;
      const canary = exp.canaries.find((c) => exp.sources.includes(c.id))!;
      const source = task.labels!.find((l) => l.key === canary.id)!.sources[0]!;
      const match = entityMatching(exp.options);
      const measured = await measureCanaryShares(model, task, cp, [{ id: canary.id, spans: (t) => match.spans(t, canary.replacement), sources: [source] }]);
      // Independently: the word-level tokens under the loss one by one (loss on one token each),
      // each gradient weighted 1/T as in the sample's mean loss.
      const s = task.train.samples.find((x) => x.id === source)!;
      const segments = s.segments ?? [{ text: s.prompt, loss: false }, { text: s.response, loss: true }];
      const pieces = segments.flatMap((seg, i) => (seg.loss ? seg.text.split(/(?= )/).map((text) => ({ seg: i, text })) : []));
      const perToken = pieces.map((_, k) => ({
        id: `${source} token ${k}`, prompt: s.prompt, response: s.response,
        segments: segments.flatMap((seg, i) => (seg.loss ? pieces.flatMap((p, j) => (p.seg === i ? [{ text: p.text, loss: j === k }] : [])) : [{ text: seg.text, loss: false }])),
      }));
      const words = pieces.map((p) => p.text.trim());
      const g = await model.gradients(cp, perToken);
      const rows = g.rows.map((r) => r.map((x) => x / words.length));
      const expected = canaryGradientShare(rows, words.map((w) => w === canary.replacement));
      expect(measured.shares[canary.id]).toHaveLength(1);
      expect(measured.shares[canary.id]![0]).toBeCloseTo(expected, 4);
    } finally {
      await run.dispose();
    }
  }, 300_000);
});
