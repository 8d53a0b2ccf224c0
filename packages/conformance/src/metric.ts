/**
 * The metric checks: the contract every `Metric` of @dda/core's `metrics` registry must honour
 * (issue 25), on seeded cases of 1,000 training rows with 20 true sources. A metric that declares
 * `needs` gets them from a synthetic world in which a true source, and only a true source, causes
 * its source's errors (see {@link worldInputs}).
 */
import { DdaError, SeededRandom, createScoreMatrix, metrics, type Metric, type MetricInputs, type PluginOptions } from '@dda/core';
import { fail, notApplicable, pass, runChecks, validateOptOuts, type CheckOptions, type ConformanceReport, type Subject } from './report.js';

/**
 * The metric checks, in the order they run:
 * - `shape-and-ids`: a kebab-case id that starts with the registry id (a factory such as
 *   `recall-at-k` makes `recall-at-50`), and a description that says what the number is;
 * - `finite`: a finite number on random scores, on scores with many ties, and on constant scores,
 *   inside the metric's declared `range` (to float rounding);
 * - `row-order`: the same value when the training rows (scores with their labels) are shuffled,
 *   with and without ties (1e-12 relative);
 * - `score-scale`: the same value when every score is multiplied by a positive number and shifted
 *   (scores of different scorers and DDA variants have different units; 1e-12 relative);
 * - `ranking`: true sources ranked first score better than true sources ranked last (a higher
 *   value, or a lower one for a metric whose descriptor says `higherIsBetter: false`, or whose
 *   options say `lowerIsBetter: true`);
 * - `determinism`: the same inputs give the same number;
 * - `options`: a registered metric's entry declares the options its factory reads (`options: ['k']`,
 *   `[]` for none; @dda/core's `RegistryEntry.options`), and takes the options given here, so that
 *   `--metrics id:option=value` refuses a misspelt option instead of using the default (not
 *   applicable to a subject given as `{ id, create }`, which is not a registry entry).
 */
export const METRIC_CHECKS = ['shape-and-ids', 'finite', 'row-order', 'score-scale', 'ranking', 'determinism', 'options'] as const;
/** A metric check's name. */
export type MetricCheck = (typeof METRIC_CHECKS)[number];

/** Options of {@link checkMetric}: the factory's options (e.g. `{ k: 50 }`) and whether lower values are better (default: the metric's `higherIsBetter`). */
export interface MetricCheckOptions extends CheckOptions<MetricCheck> {
  readonly lowerIsBetter?: boolean;
}

/** Subsets of the synthetic world's retraining (`retrainedLosses`): 32 random halves. */
const WORLD_SUBSETS = 32;

/**
 * The inputs a metric declares, from a synthetic world where training on a true source lowers its
 * source's test measurement f by 1 and nothing else changes it: `retrainedLosses` gives
 * f(S_j) = −(true sources in S_j) for 32 seeded random halves S_j of the training rows, and
 * `retraining` fixes the fraction of the true sources removed. `order` is the permutation the
 * rows were shuffled by (row t holds original row order[t]), so that the subsets move with their
 * rows and the world does not depend on the order of the training set.
 */
export function worldInputs(scores: ArrayLike<number>, labels: ArrayLike<number>, order?: readonly number[]): MetricInputs {
  const n = scores.length;
  const at = new Array<number>(n);
  (order ?? Array.from({ length: n }, (_, i) => i)).forEach((from, to) => (at[from] = to));
  const rng = new SeededRandom(11);
  const subsets = Array.from({ length: WORLD_SUBSETS }, (_, j) => rng.fork(j + 1).shuffle(Array.from({ length: n }, (_, i) => i)).slice(0, Math.floor(n / 2)).map((i) => at[i] as number).sort((a, b) => a - b));
  const trueSources = Array.from(labels).filter((y) => y === 1).length;
  return {
    method: 'conformance', source: 'conformance-source', columns: [0],
    matrix: createScoreMatrix(Array.from({ length: n }, (_, i) => `train-${i}`), ['test-0'], Float64Array.from(scores), { method: 'conformance', computedOver: 'the conformance suite\'s seeded scores', checkpoints: [], transforms: [] }),
    retrainedLosses: { subsets, losses: subsets.map((s) => Float64Array.of(-s.filter((i) => labels[i] === 1).length)) },
    retraining: { fractionFixed: async (remove) => remove.filter((i) => labels[i] === 1).length / Math.max(trueSources, 1) },
  };
}

const N = 1000;
const POSITIVES = 20;

/** Seeded scores (uniform, or rounded to a few values for ties) and labels with POSITIVES ones. */
function seededCase(seed: number, ties: boolean): { scores: Float64Array; labels: Uint8Array } {
  const rng = new SeededRandom(seed);
  const scores = Float64Array.from({ length: N }, () => (ties ? Math.round(rng.next() * 8) : rng.next()));
  const labels = new Uint8Array(N);
  for (const i of rng.shuffle(Array.from({ length: N }, (_, k) => k)).slice(0, POSITIVES)) labels[i] = 1;
  return { scores, labels };
}

function permuted<T extends Float64Array | Uint8Array>(x: T, order: readonly number[]): T {
  const out = new (x.constructor as new (n: number) => T)(x.length);
  order.forEach((from, to) => (out[to] = x[from] as number));
  return out;
}

const close = (a: number, b: number): boolean => a === b || Math.abs(a - b) <= 1e-12 * Math.max(Math.abs(a), Math.abs(b));

/**
 * Runs every metric check on a registered metric id (load its plugin first) or `{ id, plugin,
 * create }`; see {@link METRIC_CHECKS}.
 *
 * @returns one finding per check; it throws only for bad opt-outs or an unknown id.
 */
export async function checkMetric(subject: string | Subject<Metric>, options: MetricCheckOptions = {}): Promise<ConformanceReport> {
  const s: Subject<Metric> = typeof subject === 'string'
    ? { id: subject, plugin: metrics.entry(subject).plugin, create: (o: PluginOptions) => metrics.entry(subject).create(o) }
    : subject;
  validateOptOuts('metric', s.id, METRIC_CHECKS, options.optOut);
  const m = await s.create(options.options ?? {});
  const needs = m.needs ?? [];
  const lowerIsBetter = options.lowerIsBetter ?? m.higherIsBetter === false;
  const value = async (scores: ArrayLike<number>, labels: ArrayLike<number>, order?: readonly number[]): Promise<number> => {
    const v = await (needs.length > 0 ? m.compute(scores, labels, worldInputs(scores, labels, order)) : m.compute(scores, labels));
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new DdaError(`compute returned ${String(v)}`);
    const [lo, hi] = m.range ?? [-Infinity, Infinity];
    // Float rounding aside (average precision sums to 1 + 2e-16 when every true source is first).
    const slack = (b: number): number => 1e-9 * Math.max(1, Math.abs(b));
    if (v < lo - slack(lo) || v > hi + slack(hi)) throw new DdaError(`compute returned ${v}, outside the declared range [${lo}, ${hi}]`);
    return v;
  };
  const findings = await runChecks(METRIC_CHECKS, async (check) => {
    switch (check) {
      case 'shape-and-ids': {
        if (!/^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(m.id)) return fail(`id '${m.id}' is not kebab-case`);
        const stem = s.id.replace(/-k$/, '-');
        if (!(m.id === s.id || m.id.startsWith(stem))) return fail(`the metric registered as '${s.id}' says its id is '${m.id}'`);
        if (typeof m.description !== 'string' || m.description.trim().length < 10) return fail('the description is empty; say what the number is, its unit and which way is better');
        return pass(`id '${m.id}'`);
      }
      case 'finite': {
        const a = seededCase(1, false);
        const b = seededCase(2, true);
        const constant = new Float64Array(N).fill(0.5);
        const values = [await value(a.scores, a.labels), await value(b.scores, b.labels), await value(constant, a.labels)];
        return pass(`values ${values.map((v) => v.toPrecision(4)).join(', ')} on random, tied and constant scores${m.range ? `, inside [${m.range.join(', ')}]` : ''}${needs.length > 0 ? ` (inputs ${needs.join(', ')} from the synthetic world)` : ''}`);
      }
      case 'row-order': {
        for (const ties of [false, true]) {
          const c = seededCase(3, ties);
          const order = new SeededRandom(4).shuffle(Array.from({ length: N }, (_, k) => k));
          const [a, b] = [await value(c.scores, c.labels), await value(permuted(c.scores, order), permuted(c.labels, order), order)];
          if (!close(a, b)) return fail(`shuffling the rows ${ties ? 'of scores with ties ' : ''}changes the value from ${a} to ${b}; a metric must not depend on the order of the training set`);
        }
        return pass('the same value after shuffling the rows, with and without ties');
      }
      case 'score-scale': {
        const c = seededCase(5, false);
        const [a, b] = [await value(c.scores, c.labels), await value(c.scores.map((x) => 37.5 * x - 4), c.labels)];
        return close(a, b) ? pass('the same value for 37.5 × scores − 4') : fail(`37.5 × scores − 4 changes the value from ${a} to ${b}; scorers and DDA variants have different units, so a metric must be invariant to a positive affine change of the scores (or opt out, saying why)`);
      }
      case 'ranking': {
        const c = seededCase(6, false);
        const best = Float64Array.from(c.labels, (l, i) => (l === 1 ? 2 + i / N : i / N));
        const worst = Float64Array.from(c.labels, (l, i) => (l === 1 ? -2 - i / N : i / N));
        const [b, w] = [await value(best, c.labels), await value(worst, c.labels)];
        const better = lowerIsBetter ? b < w : b > w;
        return better ? pass(`${b} with the true sources first, ${w} with them last`) : fail(`true sources ranked first give ${b}, ranked last ${w}: not ${lowerIsBetter ? 'lower' : 'higher'} (say higherIsBetter: false in the metric if lower is better)`);
      }
      case 'determinism': {
        const c = seededCase(7, true);
        const [a, b] = [await value(c.scores, c.labels), await value(c.scores, c.labels)];
        return a === b ? pass('the same value twice') : fail(`two calls give ${a} and ${b}`);
      }
      case 'options': {
        if (typeof subject !== 'string') return notApplicable('the subject is not a registry entry');
        const declared = metrics.entry(subject).options;
        if (declared === undefined) return fail(`the registry entry of '${subject}' does not declare its options: say which keys create reads (options: ['k'], or options: [] for none), so that a misspelt option is refused instead of ignored`);
        const given = Object.keys(options.options ?? {});
        const unknown = given.filter((k) => !declared.includes(k));
        if (unknown.length > 0) return fail(`the checks were given option(s) ${unknown.join(', ')}, which the entry does not declare (${declared.join(', ') || 'none'})`);
        return pass(declared.length === 0 ? 'declares that it takes no options' : `declares its options ${declared.join(', ')}`);
      }
    }
  }, options.optOut);
  return { kind: 'metric', id: s.id, plugin: s.plugin, findings };
}
