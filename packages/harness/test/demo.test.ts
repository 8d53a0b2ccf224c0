import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeToBuffer } from 'fast-csv';
import { metrics, type Metric } from '@dda/core';
import { RESULT_COLUMNS, runDda, writeResultsCsv, type DdaRunOptions, type DdaRunResult } from '@dda/harness';

type ResultRow = DdaRunResult['rows'][number];

// A very small configuration of the demo (about 25 s on one core).
const SMALL: Partial<DdaRunOptions> = {
  seed: 0, nPretrain: 600, pretrainEpochs: 2, nTrain: 120, nHeldOut: 16, finetuneEpochs: 2, k: 10,
};

describe('the demo end to end (small configuration): experiment files attributed like dda attribute', () => {
  const dirs: string[] = [];
  const tmp = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'dda-test-'));
    dirs.push(d);
    return d;
  };
  let first: DdaRunResult;
  let firstDir: string;
  beforeAll(async () => {
    firstDir = tmp();
    first = await runDda({ ...SMALL, outDir: firstDir });
  });
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('reports every variant for every evaluated source and the average, all finite', async () => {
    const variants = [...new Set(first.rows.map((r) => r.variant))];
    expect(variants).toEqual(['plain', 'debias', 'denoise', 'dda', 'debias-zscore', 'dda-zscore', 'dda-recommended']);
    for (const v of variants) expect(first.rows.filter((r) => r.variant === v && r.source === 'average')).toHaveLength(1);
    for (const r of first.rows) {
      expect(Number.isFinite(r.auc) && r.auc >= 0 && r.auc <= 100).toBe(true);
      expect(Number.isFinite(r.recallAtK) && r.recallAtK >= 0 && r.recallAtK <= 1).toBe(true);
    }
    expect(first.errors.length).toBeGreaterThan(0);
    for (const e of first.errors) expect(e.output).not.toEqual(e.corrected);
    for (const m of first.scores.values()) expect(m.values.every(Number.isFinite)).toBe(true);

    const csv = join(firstDir, 'results.csv');
    await writeResultsCsv(csv, first.rows, first.metrics);
    const lines = readFileSync(csv, 'utf8').trim().split('\n');
    expect(lines[0]).toBe(RESULT_COLUMNS.join(','));
    expect(lines).toHaveLength(first.rows.length + 1);
  });

  it('results.csv: the label metrics byte for byte as the fixed-field writer wrote them, and a metric registered as a plugin does (--metrics) one more column', async () => {
    // The writer with fixed fields before results.csv's columns came from the metrics registry: the golden.
    const r4 = (x: number): number => Number(x.toFixed(4));
    const golden = async (rows: readonly ResultRow[]): Promise<string> => (await writeToBuffer(rows.map((r) => ({
      variant: r.variant, scorer: r.scorer, source: r.source, auc: r4(r.auc), recall_at_k: r4(r.recallAtK), k: r.k, average_precision: r4(r.averagePrecision),
      recall_at_50: r4(r.recallAt50), mrr: r4(r.mrr), n_positives: r.nPositives, n_train: r.nTrain, n_tests: r.nTests, description: r.description,
    })), { headers: ['variant', 'scorer', 'source', 'auc', 'recall_at_k', 'k', 'average_precision', 'recall_at_50', 'mrr', 'n_positives', 'n_train', 'n_tests', 'description'] })).toString();
    const csv = join(firstDir, 'results-golden.csv');
    await writeResultsCsv(csv, first.rows, first.metrics);
    expect(readFileSync(csv, 'utf8')).toBe(await golden(first.rows));
    // A metric as a plugin registers it (the scaffolded metric's shape); the harness names it nowhere.
    const top1: Metric = {
      id: 'demo-top-1-hit', description: '1 when the top-scoring training sample is a true source (fraction; higher = better)', label: 'top-1 hit', units: 'fraction', range: [0, 1],
      compute: (scores, labels) => labels[Array.from(scores).indexOf(Math.max(...Array.from(scores)))] as number,
    };
    if (!metrics.has(top1.id)) metrics.register({ id: top1.id, description: top1.description, priority: 1, create: () => top1 });
    const r = await runDda({ ...SMALL, outDir: firstDir, metrics: [top1.id] }); // every step reused
    expect(r.metrics.map((m) => m.column)).toEqual(['auc', 'recall_at_k', 'average_precision', 'recall_at_50', 'mrr', top1.id]);
    await writeResultsCsv(csv, r.rows, r.metrics);
    const [head, ...lines] = readFileSync(csv, 'utf8').trim().split('\n');
    const [goldHead, ...goldLines] = (await golden(r.rows)).trim().split('\n');
    expect(head).toBe(`${goldHead},${top1.id}`);
    lines.forEach((l, i) => expect(l).toBe(`${goldLines[i]},${r4(r.rows[i]!.metrics![top1.id]!)}`));
    expect(r.rows.every((x) => x.metrics![top1.id] === 0 || x.metrics![top1.id] === 1 || x.source === 'average')).toBe(true);
    await expect(runDda({ ...SMALL, outDir: firstDir, metrics: ['mrr'] })).rejects.toThrow(/--metrics mrr: every evaluation has this metric already, in column 'mrr'/);
    await expect(runDda({ ...SMALL, outDir: firstDir, metrics: ['average-precision'] })).rejects.toThrow(/--metrics average-precision: every evaluation has this metric already, in column 'average_precision'/);
  });

  it('β = 0 and a single checkpoint reduce DDA to plain influence', async () => {
    const r = await runDda({ ...SMALL, outDir: firstDir, beta: 0, finetuneEpochs: 1 });
    const plain = r.scores.get('plain')!;
    const dda = r.scores.get('dda')!;
    expect(Array.from(dda.values)).toEqual(Array.from(plain.values));
    expect(r.rows.filter((x) => x.variant === 'dda').map((x) => x.auc)).toEqual(r.rows.filter((x) => x.variant === 'plain').map((x) => x.auc));
  });

  it('the same seed gives the same scores in a fresh folder', async () => {
    const again = await runDda({ ...SMALL, outDir: tmp() });
    expect(again.reused).toEqual([]);
    for (const [variant, m] of first.scores) expect(Array.from(again.scores.get(variant)!.values), variant).toEqual(Array.from(m.values));
  });

  it('loads the pretrained θ0 it wrote as a Hugging Face model folder, and fine-tunes it to the same results', async () => {
    const baseDir = join(firstDir, 'artifacts', 'checkpoints', 'base');
    const folder = join(baseDir, readdirSync(baseDir)[0]!);
    expect(JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')).architectures).toEqual(['LlamaForCausalLM']);
    const again = await runDda({ ...SMALL, outDir: tmp(), preset: folder });
    expect(again.reused).toEqual([]);
    expect(again.rows).toEqual(first.rows);
  });

  it('full fine-tuning: checkpoints hold every weight, gradients span every parameter, results finite', async () => {
    const r = await runDda({ ...SMALL, outDir: firstDir, finetune: 'full' });
    expect(r.reused).toContain('checkpoints/base');
    for (const x of r.rows) expect(Number.isFinite(x.auc) && Number.isFinite(x.recallAtK)).toBe(true);
    const dim = (m: DdaRunResult): number => Number(/over (\d+) parameters/.exec(m.scores.get('plain')!.provenance.computedOver)?.[1]);
    expect(dim(r)).toBeGreaterThan(5 * dim(first)); // every weight vs the LoRA adapters
  });

  it('per-example gradients on tfjs (the reference) give the scores of the default onnxruntime engine to 1e-4', async () => {
    const r = await runDda({ ...SMALL, outDir: firstDir, gradientEngine: 'tfjs' });
    expect(r.reused).toEqual(expect.arrayContaining(['checkpoints/base', 'runs/finetune']));
    expect(r.reused.some((x) => x.startsWith('gradients/'))).toBe(false);
    for (const [variant, m] of first.scores) {
      const o = r.scores.get(variant)!.values;
      const scale = Math.max(...Array.from(m.values, Math.abs));
      m.values.forEach((x, k) => expect(Math.abs(o[k]! - x), variant).toBeLessThan(1e-4 * scale));
    }
  });

  it('training gradients are streamed, not stored: the contrastive measurement computes them again; stored (storeGradients), a later measurement reuses them', async () => {
    const trainGradients = (names: readonly string[]): string[] => names.filter((x) => x.startsWith('gradients/') && x.includes('/train/'));
    const r = await runDda({ ...SMALL, outDir: firstDir, measurement: 'contrastive' });
    expect(trainGradients(r.reused)).toEqual([]);
    expect(trainGradients(r.computed).length).toBeGreaterThan(0);
    expect(r.reused.some((x) => x.includes('/queries'))).toBe(false);
    for (const x of r.rows) expect(Number.isFinite(x.auc)).toBe(true);
    expect(Array.from(r.scores.get('plain')!.values)).not.toEqual(Array.from(first.scores.get('plain')!.values));
    const stored = await runDda({ ...SMALL, outDir: firstDir, measurement: 'entity-margin', storeGradients: true });
    expect(trainGradients(stored.computed)).toEqual(trainGradients(r.computed));
    const reusing = await runDda({ ...SMALL, outDir: firstDir, measurement: 'entity-margin', scorer: 'grad-cos' });
    expect(trainGradients(reusing.computed)).toEqual([]);
    expect(trainGradients(reusing.reused).sort()).toEqual(trainGradients(r.computed).sort());
  });

  it('a re-run in the same folder reuses finished artifacts and gives the same results', async () => {
    const again = await runDda({ ...SMALL, outDir: firstDir });
    expect(again.reused).toEqual(expect.arrayContaining(['checkpoints/base', 'runs/finetune', 'runs/test-errors', 'scores/grad-dot/base/block-0', 'scores/grad-dot/checkpoint-16/block-0']));
    expect(again.rows).toEqual(first.rows);
  });
});
