/**
 * Evaluation against labels of true sources (METHOD.md's protocol): for each labelled query or
 * group, every training sample's score is the mean over the group's query columns; ROC-AUC (%),
 * recall@k, average precision, Recall@50 and the reciprocal rank of the first true source
 * (fractions) over the whole training set.
 */
import { averageEvaluations, evaluateSources, type ScoreMatrix, type SourceEvaluation, type SourceSpec } from '@dda/core';
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

/** AUC, recall@k, average precision, Recall@50 and reciprocal rank of a matrix per labelled source, then their average (source `average`; its reciprocal rank is the MRR). */
export function evaluateMatrix(m: ScoreMatrix, sources: readonly SourceSpec[], k: number): SourceEvaluation[] {
  const evals = evaluateSources(m, sources, k);
  return [...evals, averageEvaluations(evals)];
}
