import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createMetrics, createScoreMatrix } from '@dda/core';
import { METRIC_COLUMNS, evaluateMatrix, writeMetrics } from '@dda/attribution';

const dir = mkdtempSync(join(tmpdir(), 'dda-metrics-csv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('metrics.csv', () => {
  it('holds average precision, Recall@50 and the reciprocal rank of the first true source beside AUC and recall@k (hand-computed)', async () => {
    // one query column; scores r0..r4 = [3, 2, 2, 1, 0]; true sources r2 and r4
    const m = createScoreMatrix(['r0', 'r1', 'r2', 'r3', 'r4'], ['q0'], [3, 2, 2, 1, 0], { method: 'test', computedOver: 'hand-written', checkpoints: ['epoch-1'], transforms: [] });
    const rows = evaluateMatrix(m, [{ id: 'q0', testIds: ['q0'], labels: [0, 0, 1, 0, 1] }], 2);
    const path = join(dir, 'metrics.csv');
    await writeMetrics(path, rows.map((r) => ({ ...r, variant: 'plain', description: 'test' })));
    const [head, ...lines] = readFileSync(path, 'utf8').trim().split('\n');
    expect(head).toBe(METRIC_COLUMNS.join(','));
    const cols = (head as string).split(',');
    const cell = (line: string, c: string): number => Number(line.split(',')[cols.indexOf(c)]);
    expect(lines).toHaveLength(2); // q0 and average
    for (const line of lines) {
      // AP: the tie {r1, r2} enters at once (R 1/2, P 1/3), then r4 (R 1, P 2/5): 1/6 + 1/5
      expect(cell(line, 'average_precision')).toBe(Number((1 / 6 + 1 / 5).toFixed(4)));
      // the first true source is rank 2 or 3 with probability 1/2 each
      expect(cell(line, 'mrr')).toBe(Number((5 / 12).toFixed(4)));
      expect(cell(line, 'recall_at_50')).toBe(1); // k = 50 clamped to the 5 training rows
      expect(cell(line, 'recall_at_k')).toBe(0.25); // k = 2: one of the two tied slots
    }
  });

  it('adds one column per registry metric asked for (dda attribute --metrics), named by its id, after the fixed columns', async () => {
    const m = createScoreMatrix(['r0', 'r1', 'r2', 'r3', 'r4'], ['q0'], [3, 2, 2, 1, 0], { method: 'test', computedOver: 'hand-written', checkpoints: ['epoch-1'], transforms: [] });
    const extra = await createMetrics([{ id: 'recall-at-k', k: 3 }, 'average-precision']);
    const rows = evaluateMatrix(m, [{ id: 'q0', testIds: ['q0'], labels: [0, 0, 1, 0, 1] }], 2, extra);
    const path = join(dir, 'metrics-extra.csv');
    await writeMetrics(path, rows.map((r) => ({ ...r, variant: 'plain', description: 'test', chosen: true })));
    const [head, ...lines] = readFileSync(path, 'utf8').trim().split('\n');
    expect(head).toBe([...METRIC_COLUMNS, 'recall-at-3', 'average-precision'].join(','));
    for (const line of lines) {
      const cells = line.split(',');
      // Top 3: r0, then the tie {r1, r2} fills both slots: one of the two true sources.
      expect(Number(cells[METRIC_COLUMNS.length])).toBe(0.5);
      expect(Number(cells[METRIC_COLUMNS.length + 1])).toBe(Number((1 / 6 + 1 / 5).toFixed(4))); // as the fixed average_precision column
    }
  });
});
