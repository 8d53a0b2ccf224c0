/**
 * Evaluation against labels of true sources (METHOD.md's protocol): for each labelled query or
 * group, every training sample's score is the mean over the group's query columns; ROC-AUC (%),
 * recall@k, average precision, Recall@50 and the reciprocal rank of the first true source
 * (fractions) over the whole training set. Beside it, the mean of the per-query AUCs.
 */
import { averageEvaluations, evaluateSources, rocAuc, type Metric, type ScoreMatrix, type SourceEvaluation, type SourceSpec } from '@dda/core';
import type { LabelSet } from '@dda/data';
import type { AttributionTask } from './task.js';

/** The sources to evaluate: one per label entry (a query, or the queries of a group). */
export function sourcesOf(task: AttributionTask, labels: readonly LabelSet[]): SourceSpec[] {
  const trainIndex = new Map(task.train.samples.map((s, i) => [s.id, i]));
  return labels.map((l) => {
    const y = new Uint8Array(task.train.samples.length);
    for (const id of l.sources) y[trainIndex.get(id) as number] = 1;
    const testIds = l.kind === 'query' ? [l.key] : task.queries.filter((q) => q.record.group === l.key).map((q) => q.record.id);
    return { id: l.key, testIds, labels: y };
  });
}

/** How `auc` of an {@link AttributionEvaluation} is computed, as the outputs say it. */
export const AUC_ON = "ROC-AUC (%) of each labelled group's mean scores: a training sample's score is its mean over the group's queries, then one AUC per group";
/** How `aucPerQueryMean` is computed, as the outputs say it. */
export const AUC_PER_QUERY_MEAN = "mean over the group's queries of the ROC-AUC (%) of each query's own scores";

/** One labelled source's evaluation (or `average`), with the mean of its per-query AUCs beside the AUC of its mean scores. */
export interface AttributionEvaluation extends SourceEvaluation {
  /**
   * {@link AUC_PER_QUERY_MEAN}: each query column's ROC-AUC (%) against the group's labels, averaged
   * over the group (`average`: over the groups, each weighted equally, as `auc`). Differs from
   * `auc` ({@link AUC_ON}) when the queries of a group rank the sources differently.
   */
  readonly aucPerQueryMean: number;
}

/**
 * AUC, recall@k, average precision, Recall@50 and reciprocal rank of a matrix per labelled source,
 * and of each `extra` metric (in `metrics[id]`), then their average (source `average`; its reciprocal rank is the MRR):
 * `auc` on each source's mean scores ({@link AUC_ON}) and `aucPerQueryMean` ({@link AUC_PER_QUERY_MEAN}).
 */
export function evaluateMatrix(m: ScoreMatrix, sources: readonly SourceSpec[], k: number, extra: readonly Metric[] = []): AttributionEvaluation[] {
  const evals = evaluateSources(m, sources, k, extra);
  const nTest = m.testIds.length;
  const col = new Map(m.testIds.map((id, j) => [id, j]));
  const perQuery = sources.map((s) => {
    const aucs = s.testIds.map((id) => {
      const j = col.get(id) as number; // evaluateSources checked every id
      return 100 * rocAuc(Float64Array.from({ length: m.trainIds.length }, (_, i) => m.values[i * nTest + j] as number), s.labels);
    });
    return aucs.reduce((a, b) => a + b, 0) / aucs.length;
  });
  const avg = perQuery.reduce((a, b) => a + b, 0) / perQuery.length;
  return [...evals.map((e, i) => ({ ...e, aucPerQueryMean: perQuery[i] as number })), { ...averageEvaluations(evals), aucPerQueryMean: avg }];
}
