/**
 * The verdict on DDA by the criteria the README pre-registered before the real-text run
 * (issue 28; README, "The real-text benchmark"), computed from a benchmark's and its ablation's
 * per-run AUCs so that no one reads it off a table by hand.
 *
 * The unit is a run (family × seed cell): a method's AUC in a run is its mean over the run's
 * sources (the `average` rows of the CSVs). A comparison of method A with reference B is the mean
 * over the runs both have of AUC_A − AUC_B (AUC points) with its 95 % Student-t interval
 * ({@link meanInterval}); A "beats B by m" when the mean difference is ≥ m and the interval's low
 * end is above 0.
 *
 * The outcomes, checked in this order (the first that holds is the verdict):
 * 1. `inconclusive`: a gate of G1–G4 fails on average over the runs (the benchmark is not in the
 *    paper's regime), or is missing.
 * 2. `too-few-runs`: fewer than `minRuns` (5) runs with every method the criteria need.
 * 3. `reproduces-paper`: DDA as written (`dda(<scorer>@contrastive)`: raw debias, β = 1, mean over
 *    the epochs) beats plain `<scorer>@loss` and `tracin-cp@loss` by ≥ 10 and `bm25` by ≥ 5, and in
 *    the ablation over the same scorer and measurement `no-debias` is clearly below `full` (full −
 *    no-debias > 0 beyond noise) and `no-denoise` not above it (mean full − no-denoise ≥ 0).
 * 4. `reproduces-idea`: not 3, but a scale-corrected debias (`dda-fitted`, `dda-zscore`, `dda-unit`
 *    over the scorer, any measurement; the ablation's cross reading `cross:dda[raw+mean]`) or a
 *    common-direction one (`grad-dot-pc`, `trackstar`, any measurement) beats the same three
 *    references by the same margins.
 * 5. `refutes`: no debias variant (every method of 4, and DDA as written under each measurement)
 *    beats the plain scorer under its own measurement beyond noise (difference's interval low end
 *    ≤ 0), or all of the gain over `bm25` is the contrastive measurement's: DDA as written beats
 *    `bm25` beyond noise, is not beyond noise above plain `<scorer>@contrastive`, and is beyond
 *    noise above DDA over `<scorer>@loss`.
 * 6. `none`: none of the pre-registered outcomes holds (e.g. a debias variant beats plain beyond
 *    noise but by less than the margins); the comparisons say where it stands.
 */
import { DdaError } from '@dda/core';
import { meanInterval } from './stats.js';

/** One method's AUC (percent, mean over the run's sources) in one run. */
export interface RunAuc {
  readonly family: string;
  readonly seed: number;
  readonly method: string;
  readonly auc: number;
}

/** A gate's mean over the runs, as the summary JSON's `gates.mean.g1` … holds it. */
export interface MeanGate {
  readonly id: string;
  readonly value: number;
  readonly pass: boolean;
}

/** One paired comparison: `method` − `reference` over the runs both have, AUC points. */
export interface VerdictComparison {
  readonly method: string;
  readonly reference: string;
  /** Runs in the comparison. */
  readonly n: number;
  readonly meanDifference: number;
  /** 95 % Student-t interval of the mean difference (NaN below 2 runs). */
  readonly low: number;
  readonly high: number;
  /** The margin the criterion asks for (AUC points; 0: "beyond noise" only). */
  readonly margin: number;
  /** meanDifference ≥ margin and low > 0. */
  readonly beats: boolean;
}

/** The pre-registered outcomes (see the module doc). */
export type VerdictOutcome = 'inconclusive' | 'too-few-runs' | 'reproduces-paper' | 'reproduces-idea' | 'refutes' | 'none';

/** The verdict and everything it was drawn from. */
export interface Verdict {
  readonly outcome: VerdictOutcome;
  /** One sentence: why this outcome. */
  readonly reason: string;
  /** Runs (family × seed) in which every method the paper's criterion needs has an AUC. */
  readonly runs: number;
  readonly gates: readonly MeanGate[];
  /** DDA as written (or the best variant of criterion 4) against the three references, and the ablation's two. */
  readonly paper: readonly VerdictComparison[];
  /** Each scale-corrected or common-direction variant against the three references. */
  readonly idea: readonly VerdictComparison[];
  /** Each debias variant against the plain scorer under its own measurement (beyond noise). */
  readonly debiasOverPlain: readonly VerdictComparison[];
  /** The contrastive-measurement check of outcome 5. */
  readonly measurement: readonly VerdictComparison[];
}

/** Options of {@link preRegisteredVerdict}. */
export interface VerdictOptions {
  /** The scorer DDA runs over (default `grad-dot`). */
  readonly scorer?: string;
  /** Fewest runs for a verdict (default 5, as pre-registered). */
  readonly minRuns?: number;
}

/** Runs keyed `family/seed` → method → AUC; duplicate rows are refused. */
function byRun(rows: readonly RunAuc[], what: string): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const r of rows) {
    if (!Number.isFinite(r.auc)) throw new DdaError(`verdict: ${what}: AUC of ${r.method} in ${r.family} seed ${r.seed} is not a finite number`);
    const key = `${r.family}/${r.seed}`;
    let m = out.get(key);
    if (!m) out.set(key, (m = new Map()));
    if (m.has(r.method)) throw new DdaError(`verdict: ${what}: two AUCs of ${r.method} in ${r.family} seed ${r.seed}`, 'give one row per method and run (the `average` source rows)');
    m.set(r.method, r.auc);
  }
  return out;
}

/** The measurement of a method named `<scorer>@<measurement>` or `<variant>(<scorer>@<measurement>)`; undefined for a model-free one. */
const measurementOf = (method: string): string | undefined => /@([^)]+)\)?$/.exec(method)?.[1];

/** `method` − `reference` over the runs that have both (`runs` of one table, or each from its own table). */
function compare(a: Map<string, Map<string, number>>, method: string, b: Map<string, Map<string, number>>, reference: string, margin: number): VerdictComparison | undefined {
  const diffs: number[] = [];
  for (const [run, m] of a) {
    const x = m.get(method);
    const y = b.get(run)?.get(reference);
    if (x !== undefined && y !== undefined) diffs.push(x - y);
  }
  if (diffs.length === 0) return undefined;
  const i = meanInterval(diffs);
  return { method, reference, n: diffs.length, meanDifference: i.mean, low: i.low, high: i.high, margin, beats: i.mean >= margin && i.low > 0 };
}

/**
 * The pre-registered verdict (module doc) from the benchmark's per-run AUCs (`bench`: methods as
 * `dda bench` names them), its ablation's (`ablation`: `full`, `no-debias`, `no-denoise`,
 * `cross:dda[raw+mean]` … over the scorer with the contrastive measurement, as `dda ablate` names
 * them; may be empty, then criterion 3 cannot hold) and the gates' means over the runs.
 *
 * @throws DdaError on a non-finite AUC or two AUCs of one method in one run.
 */
export function preRegisteredVerdict(bench: readonly RunAuc[], ablation: readonly RunAuc[], gates: readonly MeanGate[], o: VerdictOptions = {}): Verdict {
  const scorer = o.scorer ?? 'grad-dot';
  const minRuns = o.minRuns ?? 5;
  const b = byRun(bench, 'benchmark');
  const ab = byRun(ablation, 'ablation');
  const dda = `dda(${scorer}@contrastive)`;
  const references: [string, number][] = [[`${scorer}@loss`, 10], ['tracin-cp@loss', 10], ['bm25', 5]];
  const needed = [dda, ...references.map(([r]) => r)];
  const runs = [...b.values()].filter((m) => needed.every((x) => m.has(x))).length;
  const against = (method: string, table = b): VerdictComparison[] =>
    references.map(([r, margin]) => compare(table, method, b, r, margin)).filter((c): c is VerdictComparison => c !== undefined);
  const allBeat = (cs: readonly VerdictComparison[]): boolean => cs.length === references.length && cs.every((c) => c.beats);

  const ablationChecks = [compare(ab, 'full', ab, 'no-debias', 0), compare(ab, 'full', ab, 'no-denoise', 0)].filter((c): c is VerdictComparison => c !== undefined);
  const paper = [...against(dda), ...ablationChecks];

  const methods = new Set([...b.values()].flatMap((m) => [...m.keys()]));
  const measurements = [...new Set([...methods].map(measurementOf).filter((x): x is string => x !== undefined))].sort();
  const scaleCorrected = measurements.flatMap((m) => ['dda-fitted', 'dda-zscore', 'dda-unit'].map((v) => `${v}(${scorer}@${m})`));
  const commonDirection = measurements.flatMap((m) => [`grad-dot-pc@${m}`, `trackstar@${m}`]);
  const ideaMethods = [...scaleCorrected, ...commonDirection].filter((m) => methods.has(m));
  const idea = [...ideaMethods.flatMap((m) => against(m)), ...(ab.size ? against('cross:dda[raw+mean]', ab) : [])];
  const ideaWinners = [...ideaMethods, 'cross:dda[raw+mean]'].filter((m) => allBeat(idea.filter((c) => c.method === m)));

  const debiasOverPlain = [...measurements.map((m) => `dda(${scorer}@${m})`).filter((m) => methods.has(m)), ...ideaMethods]
    .map((m) => compare(b, m, b, `${scorer}@${measurementOf(m) as string}`, 0))
    .filter((c): c is VerdictComparison => c !== undefined);
  const measurement = [compare(b, dda, b, 'bm25', 0), compare(b, dda, b, `${scorer}@contrastive`, 0), compare(b, dda, b, `dda(${scorer}@loss)`, 0)].filter((c): c is VerdictComparison => c !== undefined);
  const base = { runs, gates, paper, idea, debiasOverPlain, measurement };

  const failing = ['G1', 'G2', 'G3', 'G4'].filter((id) => !gates.find((g) => g.id === id)?.pass);
  if (failing.length) return { ...base, outcome: 'inconclusive', reason: `gate${failing.length > 1 ? 's' : ''} ${failing.join(', ')} ${failing.length > 1 ? 'fail or are' : 'fails or is'} missing on average over the runs, so the benchmark is not in the paper's regime` };
  if (runs < minRuns) return { ...base, outcome: 'too-few-runs', reason: `${runs} run(s) have ${needed.join(', ')}; the criteria need at least ${minRuns}` };
  const ablationOk = ablationChecks.length === 2 && (ablationChecks[0] as VerdictComparison).beats && (ablationChecks[1] as VerdictComparison).meanDifference >= 0;
  if (allBeat(against(dda)) && ablationOk) return { ...base, outcome: 'reproduces-paper', reason: `${dda} beats ${scorer}@loss and tracin-cp@loss by ≥ 10 and bm25 by ≥ 5 beyond noise, and the ablation has no-debias clearly below full and no-denoise not above it` };
  if (ideaWinners.length) return { ...base, outcome: 'reproduces-idea', reason: `${allBeat(against(dda)) ? `${dda} beats the references but its ablation does not show the debias's part; ` : `${dda} does not beat the references by the margins; `}${ideaWinners.join(', ')} ${ideaWinners.length > 1 ? 'do' : 'does'}` };
  const noVariantBeats = debiasOverPlain.length > 0 && debiasOverPlain.every((c) => !(c.low > 0));
  const [overBm25, overPlainContrastive, overDdaLoss] = measurement;
  const gainIsMeasurement = measurement.length === 3 && !!overBm25?.beats && !overPlainContrastive?.beats && !!overDdaLoss?.beats;
  if (noVariantBeats) return { ...base, outcome: 'refutes', reason: `no debias variant (${debiasOverPlain.length} compared) beats the plain ${scorer} under its own measurement beyond seed noise` };
  if (gainIsMeasurement) return { ...base, outcome: 'refutes', reason: `all of ${dda}'s gain over bm25 comes from the contrastive measurement: it is not beyond noise above plain ${scorer}@contrastive, and beyond noise above dda(${scorer}@loss)` };
  const winners = debiasOverPlain.filter((c) => c.low > 0).map((c) => c.method);
  return { ...base, outcome: 'none', reason: `${winners.join(', ')} beat${winners.length === 1 ? 's' : ''} the plain scorer beyond noise, but neither DDA as written nor a scale-corrected or common-direction variant beats ${scorer}@loss, tracin-cp@loss and bm25 by the pre-registered margins` };
}
