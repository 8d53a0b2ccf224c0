import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeToBuffer } from 'fast-csv';
import { createMetrics, createScoreMatrix, labelMetricColumns, metrics, type Metric } from '@dda/core';
import { METRIC_COLUMNS, evaluateMatrix, renderAttributionPage, writeMetrics, type AttributionEvaluation } from '@dda/attribution';

const dir = mkdtempSync(join(tmpdir(), 'dda-metrics-csv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('metrics.csv', () => {
  it('holds average precision, Recall@50 and the reciprocal rank of the first true source beside AUC and recall@k (hand-computed)', async () => {
    // one query column; scores r0..r4 = [3, 2, 2, 1, 0]; true sources r2 and r4
    const m = createScoreMatrix(['r0', 'r1', 'r2', 'r3', 'r4'], ['q0'], [3, 2, 2, 1, 0], { method: 'test', computedOver: 'hand-written', checkpoints: ['epoch-1'], transforms: [] });
    const rows = evaluateMatrix(m, [{ id: 'q0', testIds: ['q0'], labels: [0, 0, 1, 0, 1] }], 2);
    const path = join(dir, 'metrics.csv');
    await writeMetrics(path, rows.map((r) => ({ ...r, variant: 'plain', description: 'test', chosen: false })), labelMetricColumns(2));
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
    await writeMetrics(path, rows.map((r) => ({ ...r, variant: 'plain', description: 'test', chosen: true })), labelMetricColumns(2, extra));
    const [head, ...lines] = readFileSync(path, 'utf8').trim().split('\n');
    expect(head).toBe([...METRIC_COLUMNS, 'recall-at-3', 'average-precision'].join(','));
    for (const line of lines) {
      const cells = line.split(',');
      // Top 3: r0, then the tie {r1, r2} fills both slots: one of the two true sources.
      expect(Number(cells[METRIC_COLUMNS.length])).toBe(0.5);
      expect(Number(cells[METRIC_COLUMNS.length + 1])).toBe(Number((1 / 6 + 1 / 5).toFixed(4))); // as the fixed average_precision column
    }
  });

  // A metric registered as a plugin registers it (the scaffolded metric's shape): no host code names it.
  const top1: Metric = {
    id: 'top-1-hit', description: '1 when the top-scoring training sample is a true source, else 0 (fraction; higher = better)',
    label: 'top-1 hit', units: 'fraction', range: [0, 1], digits: 2,
    compute: (scores, labels) => {
      let best = 0;
      for (let i = 1; i < scores.length; i++) if ((scores[i] as number) > (scores[best] as number)) best = i;
      return labels[best] as number;
    },
  };
  if (!metrics.has('top-1-hit')) metrics.register({ id: 'top-1-hit', description: top1.description, priority: 1, create: () => top1 });

  /** metrics.csv as the writer with fixed fields wrote it before its columns came from the registry (the golden). */
  async function fixedFieldCsv(rows: readonly (AttributionEvaluation & { variant: string; description: string; chosen: boolean })[]): Promise<string> {
    const r4 = (x: number): number => Number(x.toFixed(4));
    const head = ['variant', 'chosen', 'source', 'auc_of_group_mean_scores', 'auc_per_query_mean', 'recall_at_k', 'k', 'average_precision', 'recall_at_50', 'mrr', 'n_positives', 'n_train', 'n_queries', 'description'];
    const out = rows.map((r) => ({
      variant: r.variant, chosen: r.chosen ? 1 : 0, source: r.source, auc_of_group_mean_scores: r4(r.auc), auc_per_query_mean: r4(r.aucPerQueryMean), recall_at_k: r4(r.recallAtK),
      k: r.k, average_precision: r4(r.averagePrecision), recall_at_50: r4(r.recallAt50), mrr: r4(r.mrr), n_positives: r.nPositives, n_train: r.nTrain, n_queries: r.nTests, description: r.description,
    }));
    return (await writeToBuffer(out, { headers: head })).toString();
  }

  it('takes its columns from the registry: the label metrics byte for byte as the fixed-field writer, a registered metric as one more column, its label and digits on the page', async () => {
    // two sources over 6 rows and 3 query columns, scores with ties
    const m = createScoreMatrix(['r0', 'r1', 'r2', 'r3', 'r4', 'r5'], ['q0', 'q1', 'q2'], [0.3, 1, -2, 2.5, 0.1, 0, 2.5, 0.7, 1, -1, 3, 0.2, 0, 0, 4, 1.25, -0.5, 0.5], { method: 'test', computedOver: 'hand-written', checkpoints: ['epoch-1'], transforms: [] });
    const sources = [{ id: 'a', testIds: ['q0', 'q1'], labels: [0, 1, 1, 0, 0, 0] }, { id: 'b', testIds: ['q2'], labels: [1, 0, 0, 0, 1, 0] }];
    const rows = evaluateMatrix(m, sources, 3).map((r) => ({ ...r, variant: 'plain', description: 'a, "quoted" description', chosen: true }));
    await writeMetrics(join(dir, 'golden.csv'), rows, labelMetricColumns(3));
    expect(readFileSync(join(dir, 'golden.csv'), 'utf8')).toBe(await fixedFieldCsv(rows));

    const asked = await createMetrics(['top-1-hit']);
    const withTop1 = evaluateMatrix(m, sources, 3, asked).map((r) => ({ ...r, variant: 'plain', description: 'a, "quoted" description', chosen: true }));
    const list = labelMetricColumns(3, asked);
    await writeMetrics(join(dir, 'plugin.csv'), withTop1, list);
    const [head, ...lines] = readFileSync(join(dir, 'plugin.csv'), 'utf8').trim().split('\n');
    const [goldHead, ...goldLines] = (await fixedFieldCsv(rows)).trim().split('\n');
    expect(head).toBe(`${goldHead},top-1-hit`);
    // The new column holds the metric's values; every other cell is the golden's.
    expect(lines.map((l) => l.slice(l.lastIndexOf(',') + 1))).toEqual(withTop1.map((r) => String(r.metrics!['top-1-hit'])));
    lines.forEach((l, i) => expect(l.slice(0, l.lastIndexOf(','))).toBe(goldLines[i]));

    const html = await renderAttributionPage({
      title: 't', method: 'plain', units: 'u', matrix: m, command: 'dda attribute', metrics: { rows: withTop1, columns: list },
      tops: [],
    });
    const table = html.slice(html.indexOf('<table class="metrics">'), html.indexOf('</table>'));
    expect([...table.matchAll(/<th class="num">([^<]*)<\/th>/g)].map((x) => x[1])).toEqual([
      'AUC (%) of mean scores', 'mean per-query AUC (%)', 'recall@3', 'AP', 'recall@50', 'MRR', 'top-1 hit', 'true sources', 'queries',
    ]);
    // Each value with its metric's digits: AUC 2, recall 3, the plugin's 2.
    const first = table.slice(table.indexOf('<tbody>'));
    const cells = [...first.slice(0, first.indexOf('</tr>')).matchAll(/<td class="num">([^<]*)<\/td>/g)].map((x) => x[1]);
    const a = withTop1[0]!;
    expect(cells).toEqual([a.auc.toFixed(2), a.aucPerQueryMean.toFixed(2), a.recallAtK.toFixed(3), a.averagePrecision.toFixed(3), a.recallAt50.toFixed(3), a.mrr.toFixed(3), a.metrics!['top-1-hit']!.toFixed(2), String(a.nPositives), String(a.nTests)]);
  });
});
