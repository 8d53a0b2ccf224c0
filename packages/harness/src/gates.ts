/**
 * The regime gates of a hallucination-tracing run (METHOD.md, "The regime: when a benchmark can
 * test DDA"; docs/regime.md, section 3): whether plain influence fails there for the reasons it fails on
 * real LLMs. G1–G4 have thresholds and pass or fail; G5 is reported with every result.
 *
 * - G1: plain `grad-dot@loss` mean AUC minus `bm25` mean AUC, in AUC points: ≤ 2 (CEA saw gradient
 *   influence below BM25 on real XSum).
 * - G2: the hallucinated (canary) token's share of a source's gradient norm at the final
 *   checkpoint, ‖g_canary‖ / ‖g‖ (fraction): ≤ 0.30.
 * - G3: the fine-tuned model's mean response loss, nats/token: ≥ 1.5.
 * - G4: legitimate training summaries that mention the replacement entity per true source: ≥ 2.
 * - G5 (reported): mean |IS_θ0| / mean |IS_θ′|, the mean over test columns of the Pearson
 *   correlation of IS_θ′ with IS_θ0 over the training rows, the AUC of θ0's scores alone, and the
 *   AUC at each epoch checkpoint.
 *
 * Everything here is a pure computation over what a run measured; a gate whose inputs are not
 * given is left out of the result (never approximated).
 */
import { DdaError, assertSameShape, averageEvaluations, evaluateSources, labelMetricColumns, type ScoreMatrix, type SourceSpec } from '@dda/core';
import type { CheckpointScores } from '@dda/attribution';
import { pearson } from './counterfactual.js';

/** The thresholds of G1–G4 (docs/regime.md, section 3). */
export const GATE_THRESHOLDS = {
  /** G1: plain grad-dot@loss AUC − bm25 AUC, AUC points, at most. */
  g1: 2,
  /** G2: canary token's share of a source's gradient norm, fraction, at most. */
  g2: 0.3,
  /** G3: fine-tuned mean response loss, nats/token, at least. */
  g3: 1.5,
  /** G4: legitimate replacement summaries per true source, at least. */
  g4: 2,
} as const;

/** One gate's verdict: its value, its threshold, and whether the value is on the right side. */
export interface GateResult {
  readonly id: 'G1' | 'G2' | 'G3' | 'G4';
  /** What is measured, with its units. */
  readonly what: string;
  readonly value: number;
  readonly threshold: number;
  /** `max`: the gate passes when value ≤ threshold; `min`: when value ≥ threshold. */
  readonly bound: 'max' | 'min';
  readonly pass: boolean;
  /** The numbers the value is made of (e.g. per source or per canary), for the report. */
  readonly detail: Readonly<Record<string, number>>;
}

/** G5, reported beside every result (no threshold). */
export interface G5Report {
  /** mean over all entries of |IS_θ0| divided by the same mean of |IS_θ′| (dimensionless). */
  readonly meanAbsRatio: number;
  /** Mean over the test columns of the Pearson correlation of IS_θ′ with IS_θ0 over the training rows, in [−1, 1]. */
  readonly columnCorrelation: number;
  /** The correlation of every test column (NaN where either column is constant), in the order of the matrices' test ids. */
  readonly columnCorrelations: readonly number[];
  /** Test columns left out of the mean because a column was constant. */
  readonly constantColumns: number;
  /** ROC-AUC (%) of θ0's scores alone, averaged over the sources (above 50: raw subtraction removes signal). */
  readonly baseAuc: number;
  /** ROC-AUC (%) at each epoch checkpoint θ1..θN, as given. */
  readonly epochAucs: readonly number[];
}

/** What one run measured; each gate is computed only when its inputs are given. */
export interface GateInputs {
  /** G1: mean AUC (%) over sources of plain `grad-dot@loss` and of `bm25`, keyed by source id (the same sources in both). */
  readonly g1?: { readonly plainAuc: Readonly<Record<string, number>>; readonly bm25Auc: Readonly<Record<string, number>> };
  /**
   * G2: the canary token's share of each true source's gradient norm at the final checkpoint
   * (fractions, e.g. from {@link canaryGradientShare}), keyed by canary id.
   */
  readonly g2?: Readonly<Record<string, readonly number[]>>;
  /** G3: the fine-tuned model's mean response loss over the training responses, nats/token. */
  readonly g3?: number;
  /** G4: per canary, legitimate training summaries that mention its replacement entity, and its true sources. */
  readonly g4?: Readonly<Record<string, { readonly legitimate: number; readonly sources: number }>>;
  /** G5: IS_θ0 and IS_θ′ (same ids in the same order), the sources to evaluate θ0's scores on, and the per-epoch AUCs (%). */
  readonly g5?: { readonly base: ScoreMatrix; readonly finetuned: ScoreMatrix; readonly sources: readonly SourceSpec[]; readonly epochAucs: readonly number[] };
}

/** The gates of one run; a gate whose inputs were not given is absent. */
export interface RegimeGates {
  readonly g1?: GateResult;
  readonly g2?: GateResult;
  readonly g3?: GateResult;
  readonly g4?: GateResult;
  readonly g5?: G5Report;
}

function gate(id: GateResult['id'], what: string, value: number, threshold: number, bound: 'max' | 'min', detail: Record<string, number>): GateResult {
  return { id, what, value, threshold, bound, pass: bound === 'max' ? value <= threshold : value >= threshold, detail };
}

function finite(x: number, what: string): number {
  if (!Number.isFinite(x)) throw new DdaError(`regime gates: ${what} is not a finite number (${x})`, 'pass the measured value');
  return x;
}

/** The mean of the values (NaN when there are none, which the gates refuse as not finite). */
export function meanOf(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i] as number;
  return s / xs.length;
}

/**
 * The canary token's share of one training sample's gradient norm: ‖Σ_{t ∈ canary} g_t‖ / ‖Σ_t g_t‖,
 * where g_t is the gradient of response token t's share of the sample's loss (so Σ_t g_t is the
 * sample's gradient, as the scorers use it). Dimensionless; it can exceed 1 when the other tokens'
 * gradients partly cancel the canary's.
 *
 * The engines here compute per-example gradients, not per-token ones: the rows must come from
 * elsewhere (e.g. one gradient per response token, each weighted as in the sample's mean loss).
 *
 * @param tokenGradients - One gradient row per response token (all of the same length P).
 * @param canary - One flag per response token: true for the tokens of the hallucinated entity.
 * @returns The share as a fraction.
 * @throws DdaError if the counts or row lengths differ, no token is flagged, a value is not
 *   finite, or the sample's gradient is zero (the share is then undefined).
 */
export function canaryGradientShare(tokenGradients: readonly ArrayLike<number>[], canary: readonly boolean[]): number {
  if (tokenGradients.length !== canary.length) {
    throw new DdaError(`canaryGradientShare: ${tokenGradients.length} token gradient rows but ${canary.length} canary flags`, 'pass one flag per response token, in the order of the rows');
  }
  if (!canary.includes(true)) throw new DdaError('canaryGradientShare: no token is flagged as the canary', 'flag the tokens of the hallucinated entity');
  const p = tokenGradients[0]?.length ?? 0;
  const total = new Float64Array(p);
  const part = new Float64Array(p);
  tokenGradients.forEach((row, t) => {
    if (row.length !== p) throw new DdaError(`canaryGradientShare: token row ${t} has ${row.length} values, row 0 has ${p}`, 'pass gradients over the same parameters for every token');
    for (let k = 0; k < p; k++) {
      const x = finite(row[k] as number, `token ${t}'s gradient value ${k}`);
      total[k] = (total[k] as number) + x;
      if (canary[t]) part[k] = (part[k] as number) + x;
    }
  });
  const norm = (v: Float64Array): number => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
  const n = norm(total);
  if (n === 0) throw new DdaError("canaryGradientShare: the sample's gradient is zero, so the share is undefined", 'leave this sample out of G2');
  return norm(part) / n;
}

/** G5's numbers from IS_θ0, IS_θ′, the sources and the per-epoch AUCs (see {@link G5Report}). */
export function g5Report(base: ScoreMatrix, finetuned: ScoreMatrix, sources: readonly SourceSpec[], epochAucs: readonly number[]): G5Report {
  assertSameShape(finetuned, base, 'regime gate G5');
  let absBase = 0;
  let absFt = 0;
  for (let k = 0; k < base.values.length; k++) {
    absBase += Math.abs(base.values[k] as number);
    absFt += Math.abs(finetuned.values[k] as number);
  }
  if (absFt === 0) throw new DdaError("regime gate G5: the fine-tuned scores are all zero, so |IS_θ0| / |IS_θ'| is undefined", 'check the fine-tuned gradients');
  const nTrain = base.trainIds.length;
  const nTest = base.testIds.length;
  const columnCorrelations = Array.from({ length: nTest }, (_, j) => {
    const col = (m: ScoreMatrix): Float64Array => Float64Array.from({ length: nTrain }, (_, i) => m.values[i * nTest + j] as number);
    return pearson(col(finetuned), col(base));
  });
  const defined = columnCorrelations.filter(Number.isFinite);
  if (defined.length === 0) throw new DdaError('regime gate G5: every test column is constant in IS_θ0 or IS_θ′, so no correlation is defined', 'check the score matrices');
  return {
    meanAbsRatio: absBase / absFt,
    columnCorrelation: meanOf(defined),
    columnCorrelations,
    constantColumns: nTest - defined.length,
    baseAuc: averageEvaluations(evaluateSources(base, sources, 1)).auc,
    epochAucs: epochAucs.map((x, i) => finite(x, `the AUC of epoch ${i + 1}`)),
  };
}

/**
 * The regime gates of one run from what it measured; each gate only when its inputs are given.
 *
 * - G1 value: mean over the sources of (plain AUC − bm25 AUC), AUC points; detail: per source.
 * - G2 value: mean over every canary's sources of the canary token's gradient-norm share; detail:
 *   the mean and the largest share per canary.
 * - G3 value: the given mean response loss.
 * - G4 value: the smallest ratio legitimate / sources over the canaries (every canary must
 *   pass); detail: the ratio per canary.
 *
 * @throws DdaError when an input is empty, not finite, or inconsistent (G1 sources that differ
 *   between the two methods, a canary with no sources, G5 matrices that do not line up).
 */
export function regimeGates(inputs: GateInputs): RegimeGates {
  const out: { -readonly [K in keyof RegimeGates]: RegimeGates[K] } = {};
  if (inputs.g1) {
    const { plainAuc, bm25Auc } = inputs.g1;
    const ids = Object.keys(plainAuc).sort();
    const other = Object.keys(bm25Auc).sort();
    if (ids.length === 0 || ids.join('\u0000') !== other.join('\u0000')) {
      throw new DdaError(`regime gate G1: plain grad-dot@loss has AUCs for [${ids.join(', ')}], bm25 for [${other.join(', ')}]`, 'pass both methods on the same, non-empty set of sources');
    }
    const detail = Object.fromEntries(ids.map((s) => [s, finite(plainAuc[s] as number, `G1 plain AUC of ${s}`) - finite(bm25Auc[s] as number, `G1 bm25 AUC of ${s}`)]));
    out.g1 = gate('G1', "plain grad-dot@loss AUC − bm25 AUC (AUC points, mean over sources)", meanOf(Object.values(detail)), GATE_THRESHOLDS.g1, 'max', detail);
  }
  if (inputs.g2) {
    const entries = Object.entries(inputs.g2);
    if (entries.length === 0 || entries.some(([, s]) => s.length === 0)) throw new DdaError('regime gate G2: a canary has no gradient-norm shares', 'pass the share of every true source of every canary');
    const all = entries.flatMap(([c, shares]) => shares.map((x, i) => finite(x, `G2 share of source ${i} of ${c}`)));
    const detail: Record<string, number> = {};
    for (const [c, shares] of entries) {
      detail[`${c} mean`] = meanOf(shares);
      detail[`${c} max`] = Math.max(...shares);
    }
    out.g2 = gate('G2', "canary token's share of a source's gradient norm at the final checkpoint (fraction, mean over sources)", meanOf(all), GATE_THRESHOLDS.g2, 'max', detail);
  }
  if (inputs.g3 !== undefined) {
    out.g3 = gate('G3', 'fine-tuned mean response loss (nats/token)', finite(inputs.g3, 'G3 mean response loss'), GATE_THRESHOLDS.g3, 'min', {});
  }
  if (inputs.g4) {
    const entries = Object.entries(inputs.g4);
    if (entries.length === 0) throw new DdaError('regime gate G4: no canary given', 'pass the counts of every canary');
    const detail: Record<string, number> = {};
    for (const [c, { legitimate, sources }] of entries) {
      if (!(Number.isInteger(sources) && sources > 0) || !(Number.isInteger(legitimate) && legitimate >= 0)) {
        throw new DdaError(`regime gate G4: canary ${c} has ${legitimate} legitimate summaries and ${sources} sources`, 'pass whole counts, at least one source');
      }
      detail[c] = legitimate / sources;
    }
    out.g4 = gate('G4', 'legitimate summaries with the replacement entity per true source (smallest over canaries)', Math.min(...Object.values(detail)), GATE_THRESHOLDS.g4, 'min', detail);
  }
  if (inputs.g5) out.g5 = g5Report(inputs.g5.base, inputs.g5.finetuned, inputs.g5.sources, inputs.g5.epochAucs);
  return out;
}

/**
 * Whether a run (or the mean over runs, see {@link meanGates}) is in the regime: true when G1–G4
 * were all computed and all pass, false when one of them fails, undefined when one is missing and
 * none fails (the regime is then not established).
 */
export function inRegime(g: RegimeGates): boolean | undefined {
  const gates = [g.g1, g.g2, g.g3, g.g4];
  if (gates.some((x) => x !== undefined && !x.pass)) return false;
  return gates.every((x) => x !== undefined) ? true : undefined;
}

/**
 * G1–G4 averaged over runs (the benchmark passes "on average over its runs"): each gate's value is
 * the mean of the runs' values, judged against its threshold; detail holds each run's value
 * (`run <i>`). A gate is present when every run has it. G5 is per run and is not averaged.
 *
 * @throws DdaError when no run is given.
 */
export function meanGates(runs: readonly RegimeGates[]): RegimeGates {
  if (runs.length === 0) throw new DdaError('meanGates: no runs', 'pass the gates of at least one run');
  const out: { -readonly [K in keyof RegimeGates]: RegimeGates[K] } = {};
  for (const key of ['g1', 'g2', 'g3', 'g4'] as const) {
    const list = runs.map((r) => r[key]);
    if (list.some((x) => x === undefined)) continue;
    const first = list[0] as GateResult;
    const values = list.map((x) => (x as GateResult).value);
    out[key] = gate(first.id, `${first.what}, mean over ${runs.length} run(s)`, meanOf(values), first.threshold, first.bound, Object.fromEntries(values.map((v, i) => [`run ${i}`, v])));
  }
  return out;
}

/** The `metrics` registry id of the metric G1 is defined on (METHOD.md: plain grad-dot@loss AUC against bm25's, in AUC points). */
export const G1_METRIC = 'auc';

/**
 * The key of the metric with registry id `id` in a benchmark's rows (a {@link BenchMetric}'s `key`;
 * default list: the label metrics, whose keys are their columns).
 *
 * @throws DdaError when no metric of `list` has that id.
 */
export function metricKeyOf(id: string, list: readonly { readonly key: string; readonly metric: { readonly id: string } }[] = labelMetricColumns(1).map((c) => ({ key: c.column, metric: c.metric }))): string {
  const m = list.find((x) => x.metric.id === id);
  if (m === undefined) throw new DdaError(`no metric '${id}' among the benchmark's metrics (${list.map((x) => x.metric.id).join(', ')})`, `evaluate the registry metric '${id}'`);
  return m.key;
}

/** What G1 reads of a benchmark's result rows (bench.ts's `BenchRow` is one): the AUC (percent) under its metric's key ({@link metricKeyOf} {@link G1_METRIC}). */
export interface AucRow {
  readonly family: string;
  readonly seed: number;
  readonly method: string;
  readonly source: string;
  readonly metrics: Readonly<Record<string, number>>;
}

/** The per-source AUCs of one method in one (family, seed) cell of a benchmark, keyed by source (error-kind and `average` rows left out). */
function sourceAucs(rows: readonly AucRow[], family: string, seed: number, method: string, key: string): Record<string, number> {
  const sel = rows.filter((r) => r.family === family && r.seed === seed && r.method === method && r.source !== 'average' && !r.source.includes('['));
  return Object.fromEntries(sel.map((r) => [r.source, r.metrics[key] as number]));
}

/**
 * G1's inputs from a benchmark's rows for one (family, seed) cell: the per-source AUCs of the plain
 * method `plain` (e.g. `grad-dot@loss`, or `grad-dot` when the config has one measurement) and of
 * `bm25`, read under `aucKey`, the key of the registry metric {@link G1_METRIC} in the rows.
 *
 * @throws DdaError naming the method that has no rows in the cell.
 */
export function g1FromBenchRows(rows: readonly AucRow[], family: string, seed: number, plain = 'grad-dot@loss', bm25 = 'bm25', aucKey = metricKeyOf(G1_METRIC)): NonNullable<GateInputs['g1']> {
  const plainAuc = sourceAucs(rows, family, seed, plain, aucKey);
  const bm25Auc = sourceAucs(rows, family, seed, bm25, aucKey);
  for (const [m, v] of [[plain, plainAuc], [bm25, bm25Auc]] as const) {
    if (Object.keys(v).length === 0) throw new DdaError(`regime gate G1: no per-source rows of '${m}' for ${family}, seed ${seed}`, `run the benchmark with the scorer of '${m}' (and the loss measurement)`);
  }
  return { plainAuc, bm25Auc };
}

/** The gates a benchmark computes for one (family, seed) cell from what it scored. */
export interface CellGates {
  readonly family: string;
  readonly seed: number;
  /**
   * G1 (when the cell has plain `grad-dot` under `loss` and `bm25`), G2 (measured on the true
   * sources at the final checkpoint), G3 (the mean over the training samples of their mean
   * response-token loss at the final checkpoint, nats/token) and G4 (from the data).
   */
  readonly gates: RegimeGates;
  /**
   * Why the cell's gates are no evidence for the verdict on DDA, when they are not: its test errors
   * were injected (held-out summaries with the swap), not the model's own outputs as the protocol
   * has them. Such cells are left out of the mean gates. Absent when the cell counts.
   */
  readonly notEvidence?: string;
  /**
   * What the test errors are where they are not the model's greedy outputs but still its own
   * errors: `preferred`, swapped held-out summaries the fine-tuned model finds more likely than the
   * real ones (a forced choice). Such cells count; a verdict drawn from them says so. Absent for generated errors.
   */
  readonly testErrors?: string;
  /** G5 of the DDA scorer under each measurement, keyed by its label (e.g. `grad-dot@loss`). */
  readonly g5: Readonly<Record<string, G5Report>>;
}

/**
 * G5 from a scorer's per-checkpoint scores: IS_θ0 = the base matrix, IS_θ′ = the final epoch's, and
 * the average AUC (%) over the sources at each epoch checkpoint.
 *
 * @throws DdaError as {@link g5Report}, or when there is no epoch checkpoint.
 */
export function g5FromCheckpointScores(s: CheckpointScores, sources: readonly SourceSpec[]): G5Report {
  const final = s.epochs[s.epochs.length - 1];
  if (!final) throw new DdaError('regime gate G5: no epoch checkpoint scores', 'score at least one fine-tuning checkpoint');
  const epochAucs = s.epochs.map((m) => averageEvaluations(evaluateSources(m, sources, 1)).auc);
  return g5Report(s.base, final, sources, epochAucs);
}

/** One line per gate for a run's log, e.g. `G1 plain − bm25 = 3.10 AUC points (≤ 2: fail)`. */
export function describeGates(cell: CellGates): string[] {
  const lines = cell.notEvidence ? [`gates below are no evidence for the verdict: ${cell.notEvidence}`] : [];
  lines.push(...[cell.gates.g1, cell.gates.g2, cell.gates.g3, cell.gates.g4].flatMap((g) => (g ? [`${g.id} ${g.what} = ${g.value.toFixed(3)} (${g.bound === 'max' ? '≤' : '≥'} ${g.threshold}: ${g.pass ? 'pass' : 'fail'})`] : [])));
  for (const [label, r] of Object.entries(cell.g5)) {
    lines.push(`G5 ${label}: mean |IS_θ0| / |IS_θ′| = ${r.meanAbsRatio.toPrecision(3)}, column corr(IS_θ′, IS_θ0) = ${r.columnCorrelation.toFixed(3)}, θ0-only AUC ${r.baseAuc.toFixed(2)}, epoch AUCs [${r.epochAucs.map((x) => x.toFixed(2)).join(', ')}]`);
  }
  return lines;
}
