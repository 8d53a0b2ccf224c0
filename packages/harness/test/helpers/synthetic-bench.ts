/**
 * A tiny synthetic BenchResult (no training): rows with seeded AUCs for two families × two seeds ×
 * two sources, summarised and paired by the real summarize / pairedAgainst, and ROC / recall@k
 * curves computed from seeded scores, for tests of the reports.
 */
import { SeededRandom, recallCurve, rocCurve } from '@dda/core';
import { defaultBenchMetrics, pairedAgainst, pairedReferences, parseBenchConfig, summarize, type BenchResult, type BenchRow, type RecallSet, type RocSet } from '@dda/harness';

const FAMILIES = ['llama2-tiny', 'qwen2-tiny'];
const SEEDS = [0, 1];
const SOURCES = ['england-to-china', 'wales-to-scotland'];
const N_TRAIN = 40;

/** Methods of the leaderboard (`variant(scorer)`) or the ablation's rows, with the AUC level they are drawn around. */
function methods(kind: BenchResult['kind']): { method: string; scorer: string; variant: string; level: number }[] {
  if (kind === 'bench') {
    return [
      { method: 'grad-dot', scorer: 'grad-dot', variant: 'plain', level: 90 },
      { method: 'dda(grad-dot)', scorer: 'grad-dot', variant: 'dda', level: 45 },
      { method: 'dda-zscore(grad-dot)', scorer: 'grad-dot', variant: 'dda-zscore', level: 75 },
      { method: 'dda-recommended(grad-dot)', scorer: 'grad-dot', variant: 'dda-recommended', level: 92 },
      { method: 'grad-cos', scorer: 'grad-cos', variant: 'plain', level: 85 },
      { method: 'dda(grad-cos)', scorer: 'grad-cos', variant: 'dda', level: 95 },
      { method: 'dda-zscore(grad-cos)', scorer: 'grad-cos', variant: 'dda-zscore', level: 80 },
      { method: 'dda-recommended(grad-cos)', scorer: 'grad-cos', variant: 'dda-recommended', level: 93 },
      { method: 'bm25', scorer: 'bm25', variant: 'plain', level: 82 },
    ];
  }
  const rows = ['full', 'no-debias', 'no-denoise', 'neither', 'dda-recommended', 'beta=0', 'beta=0.5', 'beta=1', 'N=1', 'N=2',
    ...['raw', 'zscore'].flatMap((db) => ['mean', 'median'].map((dn) => `dda[${db}+${dn}]`)),
    'cross:no-denoise', ...['raw', 'zscore'].flatMap((db) => ['mean', 'median'].map((dn) => `cross:dda[${db}+${dn}]`))];
  return rows.map((method, i) => ({ method, scorer: 'grad-dot', variant: method, level: 40 + ((i * 37) % 60) }));
}

export function syntheticBench(kind: BenchResult['kind']): BenchResult {
  const config = parseBenchConfig({
    name: 'synthetic', families: FAMILIES, seeds: SEEDS, scorers: ['grad-dot', 'grad-cos', 'bm25'], k: 5,
    // The leaderboard measured LDS and leave-out (its rows have them), the ablation did not.
    ...(kind === 'bench' ? { metrics: ['auc', 'recall', 'lds', 'leave-out'] } : {}),
    training: { finetuneEpochs: 2 },
    dda: [{ name: 'dda', debiaser: 'raw', denoiser: 'mean', beta: 1 }, { name: 'dda-zscore', debiaser: 'zscore', denoiser: 'mean', beta: 1 }],
    ablation: { betas: [0, 0.5, 1], debiasers: ['raw', 'zscore'], denoisers: ['mean', 'median'] },
  }, 'synthetic');
  const rng = new SeededRandom(kind === 'bench' ? 5 : 6);
  const rows: BenchRow[] = [];
  const curves: RocSet[] = [];
  const recallCurves: RecallSet[] = [];
  const labels = Uint8Array.from({ length: N_TRAIN }, (_, i) => (i % 5 === 0 ? 1 : 0));
  for (const family of FAMILIES) {
    for (const seed of SEEDS) {
      for (const m of methods(kind)) {
        // LDS and leave-out only in the leaderboard (as when its config asks for them), for the plain methods' leave-out.
        const counterfactual = kind === 'bench';
        const per = SOURCES.map((source) => ({
          source, metrics: {
            auc: Math.min(100, Math.max(0, m.level + 8 * (rng.next() - 0.5))), recall_at_k: rng.next(),
            average_precision: rng.next(), recall_at_50: rng.next(), mrr: rng.next(),
            lds: counterfactual ? (m.level - 60) / 100 + 0.1 * (rng.next() - 0.5) : Number.NaN,
            leave_out: counterfactual && m.variant === 'plain' ? rng.next() : Number.NaN, leave_out_random: counterfactual ? 0.1 : Number.NaN,
          } as Record<string, number>,
        }));
        const avg = { source: 'average', metrics: Object.fromEntries(Object.keys((per[0] as (typeof per)[number]).metrics).map((key) => [key, per.reduce((a, x) => a + (x.metrics[key] as number), 0) / per.length])) };
        for (const e of [...per, avg]) {
          rows.push({ family, method: m.method, scorer: m.scorer, variant: m.variant, measurement: 'loss', seed, seconds: m.variant === 'plain' ? 0.02 : 1.5, k: 5, nPositives: 8, nTrain: N_TRAIN, nTests: 3, ...e });
        }
        const drawn = kind === 'bench' || ['full', 'no-debias', 'no-denoise', 'neither', 'dda-recommended'].includes(m.method);
        if (seed !== SEEDS[0] || !drawn) continue;
        for (const source of SOURCES) {
          // Scores whose separation grows with the method's level: a visible spread of curves.
          const scores = Float64Array.from(labels, (y) => rng.next() + (y ? (m.level - 50) / 60 : 0));
          curves.push({ family, source, seed, method: m.method, points: rocCurve(scores, labels) });
          recallCurves.push({ family, source, seed, method: m.method, recall: [...recallCurve(scores, labels, config.k)], nTrain: N_TRAIN });
        }
      }
    }
  }
  // The default metric list (its descriptors are the registry's metrics); LDS and leave-out as the configuration asks.
  const metrics = defaultBenchMetrics(config, { kind, retrainedMethods: [] });
  return {
    kind, config, metrics, rows, summary: summarize(rows, metrics), paired: pairedReferences(kind, config).flatMap((ref) => pairedAgainst(rows, ref, metrics)), curves, recallCurves,
    timings: FAMILIES.flatMap((family) => SEEDS.map((seed) => ({ family, seed, train: 12.5, gradients: 3.25, total: 20, reused: 0 }))),
    skipped: [{ family: 'mistral-tiny', seed: 0, reason: 'the fine-tuned model produced no test errors' }],
  };
}
