/**
 * The charts of the benchmark reports as Vega-Lite specs (rendered offline to SVG by @dda/report):
 * the leaderboard grouped by scorer with its DDA variants beside it, the ablation (components, β
 * sweep, N sweep, debiaser × denoiser heatmaps), ROC and recall@k curves per source, and scoring
 * seconds per method. Every chart takes plain rows, so a report can be rebuilt from the committed
 * summary JSON without re-running the benchmark.
 */
import type { ChartSpec } from '@dda/report';
import { parseMethod, type RecallSet, type RocSet, type MetricSummary, type SummaryRow } from './bench.js';
import { RECOMMENDED_ROW } from './bench-config.js';
import type { MetricDescriptor } from './bench-metrics.js';

/** A summary row's mean and interval of the metric with key `key` (NaN when the row has none); the charts draw the default list's \`auc\`, \`recall_at_k\` and \`lds\`. */
const at = (r: SummaryRow, key: string): MetricSummary => r.metrics[key] ?? { mean: Number.NaN, low: Number.NaN, high: Number.NaN };

/** Colours of the variant kinds: plain first, then one per DDA variant (Tableau 10). */
const VARIANT_COLOURS = ['#4c78a8', '#f58518', '#e45756', '#54a24b', '#b279a2', '#eeca3b', '#72b7b2', '#9d755d', '#bab0ac', '#ff9da6'];
/** Colours of model families; the `all` pseudo-family is drawn in black. */
const FAMILY_COLOURS = ['#4c78a8', '#f58518', '#54a24b', '#e45756', '#b279a2', '#72b7b2', '#eeca3b', '#9d755d'];

const unique = <T>(xs: readonly T[]): T[] => [...new Set(xs)];
const r4 = (x: number): number => Number(x.toFixed(4));

/** Families in display order with `all` last, and their colours (`all` black). */
function familyScale(families: readonly string[]): { domain: string[]; range: string[] } {
  const domain = [...families.filter((f) => f !== 'all'), ...(families.includes('all') ? ['all'] : [])];
  return { domain, range: domain.map((f, i) => (f === 'all' ? '#222222' : (FAMILY_COLOURS[i % FAMILY_COLOURS.length] as string))) };
}

/**
 * The leaderboard of one family (or `all`): one band per scorer, its plain row and every DDA
 * variant over it side by side (colour = variant, with a legend), bars at the mean with 95%
 * Student-t intervals as error bars; mean ROC-AUC (%) with a dashed chance line at 50 on the left,
 * mean recall@k on the right, each with its own axis.
 *
 * @param rows - Summary rows of one family; method names `scorer` or `variant(scorer)`.
 * @param variantOrder - Variant names in legend order (`plain` first); others are appended.
 */
export function leaderboardChart(rows: readonly SummaryRow[], k: number, title: string, variantOrder: readonly string[] = ['plain']): ChartSpec {
  const values = rows.map((r) => ({ ...parseMethod(r.method), method: r.method, n: r.n, auc: r4(at(r, 'auc').mean), aucLow: r4(at(r, 'auc').low), aucHigh: r4(at(r, 'auc').high), recall: r4(at(r, 'recall_at_k').mean), recallLow: r4(at(r, 'recall_at_k').low), recallHigh: r4(at(r, 'recall_at_k').high) }));
  const scorers = unique(values.map((v) => v.scorer));
  const variants = unique([...variantOrder.filter((v) => values.some((x) => x.variant === v)), ...values.map((v) => v.variant)]);
  const y = { field: 'scorer', type: 'nominal', sort: scorers, title: 'scorer', axis: { labelFontWeight: 'bold' } } as const;
  const yOffset = { field: 'variant', type: 'nominal', sort: variants } as const;
  const color = { field: 'variant', type: 'nominal', title: 'variant', scale: { domain: variants, range: variants.map((_, i) => VARIANT_COLOURS[i % VARIANT_COLOURS.length] as string) }, legend: { orient: 'top', direction: 'horizontal' } } as const;
  const tooltip = [{ field: 'method' }, { field: 'n', title: 'units' }, { field: 'auc', title: 'AUC (%)' }, { field: 'aucLow' }, { field: 'aucHigh' }, { field: 'recall', title: `recall@${k}` }];
  const panel = (measure: string, low: string, high: string, axisTitle: string, domain: [number, number], chance: number | null, showY: boolean) => ({
    width: showY ? 440 : 300,
    height: { step: 11, for: 'offset' as const },
    layer: [
      { mark: { type: 'bar' as const }, encoding: { y: showY ? y : { ...y, axis: null }, yOffset, x: { field: measure, type: 'quantitative' as const, scale: { domain }, title: axisTitle }, color, tooltip } },
      { mark: { type: 'rule' as const, color: '#222', strokeWidth: 1.2 }, encoding: { y: showY ? y : { ...y, axis: null }, yOffset, x: { field: low, type: 'quantitative' as const }, x2: { field: high } } },
      // One datum of its own, else the rule would be drawn once per row.
      ...(chance === null ? [] : [{ data: { values: [{}] }, mark: { type: 'rule' as const, color: '#888', strokeDash: [4, 3] }, encoding: { x: { datum: chance } } }]),
    ],
  });
  return {
    title: { text: title, subtitle: 'bars: mean over n units; black lines: 95% interval of the mean (none for n = 1); dashed: chance (AUC 50)' },
    data: { values },
    hconcat: [
      panel('auc', 'aucLow', 'aucHigh', 'ROC-AUC (%)', [0, 100], 50, true),
      panel('recall', 'recallLow', 'recallHigh', `recall@${k}`, [0, 1], null, false),
    ],
    resolve: { scale: { y: 'shared', color: 'shared' } },
  } as ChartSpec;
}

/**
 * One metric of the summary rows given (one family, or `all`) as bars, one per method, best first
 * by the descriptor's `higherIsBetter`, with its 95% interval as a rule where the summary has one:
 * the chart of a registry metric a configuration adds. Axis: the descriptor's label and units,
 * cut to its `range`; values with its `digits`. Methods without a value are left out.
 *
 * @param m - The metric's key in the rows, and its descriptor.
 */
export function metricChart(rows: readonly SummaryRow[], m: { readonly key: string; readonly metric: MetricDescriptor }, title: string): ChartSpec {
  const d = m.metric.digits ?? 3;
  const round = (x: number): number => Number(x.toFixed(Math.max(d, 4)));
  const lowerBetter = m.metric.higherIsBetter === false;
  const values = rows.filter((r) => Number.isFinite(at(r, m.key).mean))
    .map((r) => ({ ...parseMethod(r.method), method: r.method, n: r.n, value: round(at(r, m.key).mean), low: round(at(r, m.key).low), high: round(at(r, m.key).high), shown: at(r, m.key).mean.toFixed(d) }))
    .sort((a, b) => (lowerBetter ? a.value - b.value : b.value - a.value));
  const label = `${m.metric.label ?? m.metric.id}${m.metric.units ? ` (${m.metric.units})` : ''}`;
  const y = { field: 'method', type: 'nominal', sort: values.map((v) => v.method), title: 'method' } as const;
  const x = { field: 'value', type: 'quantitative', title: label, ...(m.metric.range ? { scale: { domain: [...m.metric.range] } } : {}) } as const;
  return {
    title: { text: title, subtitle: `bars: mean over n units, ${lowerBetter ? 'lowest' : 'highest'} (best) first; black lines: 95% interval of the mean (none for n = 1)` },
    data: { values },
    width: 440,
    height: { step: 14 },
    layer: [
      { mark: { type: 'bar' }, encoding: { y, x, color: { field: 'variant', type: 'nominal', title: 'variant', legend: { orient: 'top', direction: 'horizontal' } }, tooltip: [{ field: 'method' }, { field: 'n', title: 'units' }, { field: 'shown', title: label }, { field: 'low' }, { field: 'high' }] } },
      { mark: { type: 'rule', color: '#222', strokeWidth: 1.2 }, encoding: { y, x: { field: 'low', type: 'quantitative' }, x2: { field: 'high' } } },
    ],
  } as ChartSpec;
}

/** LDS (with its 95% interval) against mean ROC-AUC, one point per method of the summary rows given (methods without LDS left out). */
export function ldsAucChart(rows: readonly SummaryRow[], title: string): ChartSpec {
  const values = rows.filter((r) => Number.isFinite(at(r, 'lds').mean)).map((r) => ({ ...parseMethod(r.method), method: r.method, auc: Number(at(r, 'auc').mean.toFixed(2)), lds: Number(at(r, 'lds').mean.toFixed(4)), low: Number(at(r, 'lds').low.toFixed(4)), high: Number(at(r, 'lds').high.toFixed(4)) }));
  const x = { field: 'auc', type: 'quantitative', title: 'ROC-AUC (%)', scale: { zero: false } };
  return {
    title: { text: title, subtitle: 'LDS: 1 = predicts retraining exactly, 0 = chance; error bars: 95% intervals of the mean' },
    data: { values },
    width: 520, height: 320,
    layer: [
      { mark: { type: 'rule' }, encoding: { x, y: { field: 'low', type: 'quantitative', title: 'LDS' }, y2: { field: 'high' }, color: { field: 'scorer', type: 'nominal' } } },
      { mark: { type: 'point', filled: true, size: 60 }, encoding: { x, y: { field: 'lds', type: 'quantitative' }, color: { field: 'scorer', type: 'nominal', title: 'scorer' }, shape: { field: 'variant', type: 'nominal', title: 'variant' }, tooltip: [{ field: 'method' }, { field: 'auc' }, { field: 'lds' }] } },
      { data: { values: [{ zero: 0 }] }, mark: { type: 'rule', strokeDash: [4, 4], color: '#999' }, encoding: { y: { field: 'zero', type: 'quantitative' } } },
    ],
  } as ChartSpec;
}

/**
 * Mean scoring seconds per method (summary rows of one family), grouped by scorer like the
 * leaderboard, on a symmetric-log axis (seconds span milliseconds to minutes).
 */
export function secondsChart(rows: readonly SummaryRow[], title: string, variantOrder: readonly string[] = ['plain']): ChartSpec {
  const values = rows.map((r) => ({ ...parseMethod(r.method), method: r.method, seconds: Number(r.secondsMean.toPrecision(4)) }));
  const scorers = unique(values.map((v) => v.scorer));
  const variants = unique([...variantOrder.filter((v) => values.some((x) => x.variant === v)), ...values.map((v) => v.variant)]);
  const max = Math.max(0, ...values.map((v) => v.seconds));
  const ticks = [0, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000].filter((t) => t <= Math.max(0.01, max * 1.5));
  return {
    title: { text: title, subtitle: 'mean over units: the compute time of the score matrices a method combines plus its debias / denoise transforms' },
    data: { values },
    width: 520,
    height: { step: 11, for: 'offset' },
    mark: { type: 'bar' },
    encoding: {
      y: { field: 'scorer', type: 'nominal', sort: scorers, title: 'scorer', axis: { labelFontWeight: 'bold' } },
      yOffset: { field: 'variant', type: 'nominal', sort: variants },
      x: { field: 'seconds', type: 'quantitative', scale: { type: 'symlog', constant: 0.01 }, axis: { values: ticks, format: '~g' }, title: 'scoring seconds (symmetric log axis)' },
      color: { field: 'variant', type: 'nominal', title: 'variant', scale: { domain: variants, range: variants.map((_, i) => VARIANT_COLOURS[i % VARIANT_COLOURS.length] as string) }, legend: { orient: 'top', direction: 'horizontal' } },
      tooltip: [{ field: 'method' }, { field: 'seconds' }],
    },
  } as ChartSpec;
}

/**
 * The DDA components of the ablation (`full`, `no-debias`, `no-denoise`, `neither`, the
 * recommended DDA `dda-recommended`, and `cross:no-denoise` when present) per family and over all units: mean ROC-AUC (%) with 95% intervals.
 */
export function ablationComponentsChart(rows: readonly SummaryRow[], title: string): ChartSpec {
  const order = ['full', 'no-debias', 'no-denoise', 'neither', RECOMMENDED_ROW, 'cross:no-denoise'];
  const values = rows.filter((r) => order.includes(r.method)).map((r) => ({ row: r.method, family: r.family, auc: r4(at(r, 'auc').mean), aucLow: r4(at(r, 'auc').low), aucHigh: r4(at(r, 'auc').high), n: r.n }));
  const fam = familyScale(unique(values.map((v) => v.family)));
  const y = { field: 'row', type: 'nominal', sort: order, title: 'ablation row', axis: { labelFontWeight: 'bold' } } as const;
  const yOffset = { field: 'family', type: 'nominal', sort: fam.domain } as const;
  return {
    title: { text: title, subtitle: 'mean ROC-AUC over seeds (all: over family × seed), 95% interval of the mean (none for n = 1); dashed: chance' },
    data: { values },
    width: 520,
    height: { step: 11, for: 'offset' },
    layer: [
      { mark: { type: 'bar' }, encoding: { y, yOffset, x: { field: 'auc', type: 'quantitative', scale: { domain: [0, 100] }, title: 'ROC-AUC (%)' }, color: { field: 'family', type: 'nominal', scale: fam, title: 'family', legend: { orient: 'right' } }, tooltip: [{ field: 'row' }, { field: 'family' }, { field: 'auc' }, { field: 'aucLow' }, { field: 'aucHigh' }, { field: 'n' }] } },
      { mark: { type: 'rule', color: '#222', strokeWidth: 1.2 }, encoding: { y, yOffset, x: { field: 'aucLow', type: 'quantitative' }, x2: { field: 'aucHigh' } } },
      { data: { values: [{}] }, mark: { type: 'rule', color: '#888', strokeDash: [4, 3] }, encoding: { x: { datum: 50 } } },
    ],
  } as ChartSpec;
}

/**
 * A sweep of the ablation (`beta=<β>` or `N=<n>` rows): mean ROC-AUC (%) against the swept value,
 * one line per family (and `all`), with the 95% interval as a band.
 *
 * @param prefix - `beta=` or `N=`; rows whose method starts with it are drawn, the rest parsed as a number.
 */
export function sweepChart(rows: readonly SummaryRow[], prefix: 'beta=' | 'N=', title: string, axisTitle: string): ChartSpec {
  const values = rows.filter((r) => r.method.startsWith(prefix)).map((r) => ({ x: Number(r.method.slice(prefix.length)), family: r.family, auc: r4(at(r, 'auc').mean), aucLow: r4(at(r, 'auc').low), aucHigh: r4(at(r, 'auc').high) }));
  const fam = familyScale(unique(values.map((v) => v.family)));
  const x = { field: 'x', type: 'quantitative', title: axisTitle, axis: prefix === 'N=' ? { tickMinStep: 1, format: 'd' } : {} } as const;
  const color = { field: 'family', type: 'nominal', scale: fam, title: 'family' } as const;
  return {
    title: { text: title, subtitle: 'mean ROC-AUC (%), band: 95% interval of the mean (none for n = 1)' },
    data: { values },
    width: 360,
    height: 220,
    layer: [
      { mark: { type: 'area', opacity: 0.12 }, encoding: { x, y: { field: 'aucLow', type: 'quantitative' }, y2: { field: 'aucHigh' }, color: { ...color, legend: null } } },
      { mark: { type: 'line', point: true, strokeWidth: 1.8 }, encoding: { x, y: { field: 'auc', type: 'quantitative', scale: { zero: false }, title: 'ROC-AUC (%)' }, color, tooltip: [{ field: 'family' }, { field: 'x', title: axisTitle }, { field: 'auc' }, { field: 'aucLow' }, { field: 'aucHigh' }] } },
    ],
  } as ChartSpec;
}

/** `dda[db+dn]` → {db, dn, cross: false}; `cross:dda[db+dn]` → cross: true; else undefined. */
export function parseGridRow(method: string): { debiaser: string; denoiser: string; cross: boolean } | undefined {
  const m = /^(cross:)?dda\[([^+\]]+)\+([^\]]+)\]$/.exec(method);
  return m ? { cross: m[1] !== undefined, debiaser: m[2] as string, denoiser: m[3] as string } : undefined;
}

/**
 * The debiaser × denoiser grid of the ablation as heatmaps, one per family (columns, `all` last):
 * colour = mean ROC-AUC on a diverging scale centred on chance (50), the value written in each cell.
 *
 * @param cross - Draw the `cross:dda[...]` rows (base term ⟨train at θ0, test at θ'⟩) instead of `dda[...]`.
 */
export function gridHeatmap(rows: readonly SummaryRow[], title: string, cross = false, order: { debiasers?: readonly string[]; denoisers?: readonly string[] } = {}): ChartSpec {
  const values = rows.flatMap((r) => {
    const g = parseGridRow(r.method);
    return g && g.cross === cross ? [{ family: r.family, debiaser: g.debiaser, denoiser: g.denoiser, auc: r4(at(r, 'auc').mean), label: at(r, 'auc').mean.toFixed(1), aucLow: r4(at(r, 'auc').low), aucHigh: r4(at(r, 'auc').high) }] : [];
  });
  const fam = familyScale(unique(values.map((v) => v.family)));
  const debiasers = unique([...(order.debiasers ?? []).filter((d) => values.some((v) => v.debiaser === d)), ...values.map((v) => v.debiaser)]);
  const denoisers = unique([...(order.denoisers ?? []).filter((d) => values.some((v) => v.denoiser === d)), ...values.map((v) => v.denoiser)]);
  const x = { field: 'denoiser', type: 'nominal', sort: denoisers, title: 'denoiser', axis: { labelAngle: -30 } } as const;
  const y = { field: 'debiaser', type: 'nominal', sort: debiasers, title: 'debiaser' } as const;
  return {
    title: { text: title, subtitle: 'mean ROC-AUC (%) per family and over all units; red below chance (50), blue above' },
    data: { values },
    facet: { column: { field: 'family', type: 'nominal', title: null, sort: fam.domain, header: { labelFontWeight: 'bold' } } },
    spec: {
      width: { step: 40 },
      height: { step: 22 },
      layer: [
        { mark: { type: 'rect' }, encoding: { x, y, color: { field: 'auc', type: 'quantitative', title: 'AUC (%)', scale: { scheme: 'redblue', domain: [0, 100], domainMid: 50 } }, tooltip: [{ field: 'family' }, { field: 'debiaser' }, { field: 'denoiser' }, { field: 'auc' }, { field: 'aucLow' }, { field: 'aucHigh' }] } },
        { mark: { type: 'text', fontSize: 10 }, encoding: { x, y, text: { field: 'label' }, color: { condition: { test: 'abs(datum.auc - 50) > 30', value: 'white' }, value: 'black' } } },
      ],
    },
    resolve: { scale: { color: 'shared' } },
  } as ChartSpec;
}

/** Line style of a method in the curve charts: `plain` (solid) or `DDA variant` (dashed). */
export type CurveKind = (method: string) => 'plain' | 'DDA variant';
/** Leaderboard methods: `variant(scorer)` is a DDA variant. */
export const leaderboardKind: CurveKind = (m) => (parseMethod(m).variant === 'plain' ? 'plain' : 'DDA variant');
/** Ablation rows: `neither` is plain influence, every other row a DDA variant. */
export const ablationKind: CurveKind = (m) => (m === 'neither' ? 'plain' : 'DDA variant');

/**
 * ROC curves per source (facets) of one family: one line per method (dashed for DDA variants),
 * with the chance diagonal.
 */
export function rocChart(curves: readonly RocSet[], title: string, kindOf: CurveKind = leaderboardKind): ChartSpec {
  const values = curves.flatMap((c) => c.points.map((p, i) => ({ source: c.source, method: c.method, kind: kindOf(c.method), i, fpr: r4(p.fpr), tpr: r4(p.tpr) })));
  const sources = unique(curves.map((c) => c.source));
  const chance = sources.flatMap((source) => [0, 1].map((v, i) => ({ source, i, fpr: v, tpr: v })));
  return curvePanels(values, sources, unique(curves.map((c) => c.method)), title, { x: 'fpr', y: 'tpr', xTitle: 'false-positive rate', yTitle: 'true-positive rate', chance });
}

/**
 * Recall@k curves per source (facets) of one family for k = 1..K: the fraction of the source's
 * true sources among the k top-scoring training samples, one line per method, and chance
 * (a random ranking's expected recall@k, k / nTrain).
 */
export function recallChart(curves: readonly RecallSet[], title: string, kindOf: CurveKind = leaderboardKind): ChartSpec {
  const values = curves.flatMap((c) => c.recall.map((r, i) => ({ source: c.source, method: c.method, kind: kindOf(c.method), i, k: i + 1, recall: r4(r) })));
  const chance = unique(curves.map((c) => c.source)).flatMap((source) => {
    const c = curves.find((x) => x.source === source) as RecallSet;
    return [1, c.recall.length].map((k, i) => ({ source, i, k, recall: r4(k / c.nTrain) }));
  });
  return curvePanels(values, unique(curves.map((c) => c.source)), unique(curves.map((c) => c.method)), title, { x: 'k', y: 'recall', xTitle: 'k (top-k training samples)', yTitle: 'recall@k', chance });
}

/** Faceted line charts of curves, one facet per source; `chance` rows (per source) are drawn as a dotted grey line. */
function curvePanels(
  values: readonly Record<string, string | number>[],
  sources: readonly string[],
  methods: readonly string[],
  title: string,
  a: { x: string; y: string; xTitle: string; yTitle: string; chance: readonly Record<string, string | number>[] },
): ChartSpec {
  const chance = 'chance';
  // Chance is one more line per source, so it sits in every facet and in the legend.
  const all = [...values, ...a.chance.map((c) => ({ ...c, method: chance, kind: chance }))];
  const domain = [...methods, chance];
  // Distinct hues, no grey (grey is chance).
  const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#393b79', '#ad494a', '#637939', '#7b4173', '#e7ba52', '#3182bd', '#31a354'];
  return {
    title: { text: title },
    data: { values: all },
    facet: { field: 'source', type: 'nominal', title: null, sort: [...sources] },
    columns: Math.min(4, sources.length),
    spec: {
      width: 190,
      height: 190,
      mark: { type: 'line', strokeWidth: 1.5, clip: true },
      encoding: {
        x: { field: a.x, type: 'quantitative', title: a.xTitle, ...(a.x === 'k' ? { axis: { tickMinStep: 1, format: 'd' } } : { scale: { domain: [0, 1] } }) },
        y: { field: a.y, type: 'quantitative', title: a.yTitle, scale: { domain: [0, 1] } },
        color: { field: 'method', type: 'nominal', title: 'method', scale: { domain, range: domain.map((m, i) => (m === chance ? '#aaaaaa' : (palette[i % palette.length] as string))) } },
        strokeDash: { field: 'kind', type: 'nominal', title: 'line', scale: { domain: ['plain', 'DDA variant', 'chance'], range: [[1, 0], [5, 3], [2, 2]] } },
        order: { field: 'i', type: 'quantitative' },
        detail: { field: 'method' },
      },
    },
  } as ChartSpec;
}
