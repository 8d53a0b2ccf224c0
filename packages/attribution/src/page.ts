/**
 * The HTML page of an attribution: one self-contained file (inline CSS and SVG, no script or
 * resource from the network) to browse each query with its most supporting and most opposing
 * training samples (their prompt and response, the words they share with the query's output
 * highlighted, the swapped entity marked), a heat map of the tokens that carry each top sample's
 * score, and the distribution of its scores.
 */
import { UNSPACED_SCRIPT_CLASS, WORD_PATTERN, metricHeader, wordTokens, type MetricColumn, type ScoreMatrix, type SourceEvaluation } from '@dda/core';
import { chartFigure, escapeHtml, htmlPage, renderVegaLiteSvg, type ChartSpec } from '@dda/report';
import { GROUP_AUC, type QueryTop, type TopEntry } from './outputs.js';
import type { TokenAttribution, TokenScores } from './token-attribution.js';

const esc = escapeHtml;

/** Queries drawn with a histogram and token heat maps on the page (the rest are listed without them; all are in topk.csv). */
export const PAGE_CHART_LIMIT = 200;

/** One unspaced-script character (with its marks): a word of its own, whatever its length. */
const UNSPACED_CHAR = new RegExp(`^${UNSPACED_SCRIPT_CLASS}\\p{M}*$`, 'v');
/** Lower-case words of length ≥ 3 (letters and digits), or single characters of unspaced scripts (CJK), stop words left out, for highlighting shared words. */
export function contentWords(text: string): Set<string> {
  return new Set(wordTokens(text).filter((w) => (w.length >= 3 || UNSPACED_CHAR.test(w)) && !STOP.has(w)));
}
const STOP = new Set(['the', 'and', 'for', 'that', 'with', 'this', 'from', 'are', 'was', 'were', 'has', 'have', 'had', 'its', 'not', 'but', 'you', 'your', 'our', 'their', 'his', 'her', 'they', 'them', 'will', 'can', 'all', 'any']);

/** The words where a query's output and its corrected output differ (lower case): the swapped entity on each side. */
export interface SwappedWords {
  /** Words of the output that the corrected output does not have (e.g. the hallucinated entity). */
  readonly output: ReadonlySet<string>;
  /** Words of the corrected output that the output does not have (e.g. the true entity). */
  readonly corrected: ReadonlySet<string>;
}

/** The words (letters and digits, lower case, stop words left out) where `output` and `corrected` differ. */
export function swappedWords(output: string, corrected: string): SwappedWords {
  const words = (t: string): Set<string> => new Set(wordTokens(t).filter((w) => !STOP.has(w)));
  const a = words(output);
  const b = words(corrected);
  return { output: new Set([...a].filter((w) => !b.has(w))), corrected: new Set([...b].filter((w) => !a.has(w))) };
}

/**
 * `text` escaped, with the words in `words` wrapped in `<mark>`, and, when `swapped` is given, the
 * output's side of the swap in `<mark class="swap">` and the corrected side in `<mark class="fix">`.
 */
export function highlight(text: string, words: ReadonlySet<string>, swapped?: SwappedWords): string {
  return text.normalize('NFC').split(new RegExp(`(${WORD_PATTERN})`, 'v')).map((part, i) => {
    if (i % 2 === 0) return esc(part);
    const w = part.toLowerCase();
    if (swapped?.output.has(w)) return `<mark class="swap">${esc(part)}</mark>`;
    if (swapped?.corrected.has(w)) return `<mark class="fix">${esc(part)}</mark>`;
    return words.has(w) ? `<mark>${esc(part)}</mark>` : esc(part);
  }).join('');
}

/** A number with its sign, 4 significant digits. */
function signed(x: number): string {
  return `${x > 0 ? '+' : ''}${x.toPrecision(4)}`;
}

/**
 * The response tokens of one sample coloured by their share of its score: red (supports the
 * output) or blue (opposes it), opacity |value| / the sample's largest |value|; each token's value
 * in its tooltip.
 */
export function tokenHeatMap(t: TokenScores): string {
  const max = Math.max(0, ...t.values.map(Math.abs));
  const spans = t.pieces.map((piece, k) => {
    const v = t.values[k] as number;
    const a = max > 0 ? Math.abs(v) / max : 0;
    const rgb = v >= 0 ? '214,39,40' : '31,119,180';
    return `<span class="tok" style="background:rgba(${rgb},${(0.85 * a).toFixed(3)})" title="${esc(signed(v))}">${esc(piece)}</span>`;
  }).join('');
  return `<div class="heat">${spans}</div>`;
}

/**
 * The distribution of one query's scores over the training set: a Vega-Lite histogram (30 bins),
 * rendered offline to SVG, with a rule at the top-k cut-off.
 */
export async function scoreHistogramSvg(values: readonly number[], threshold: number | null, idPrefix: string): Promise<string> {
  const spec: ChartSpec = {
    width: 380, height: 90,
    layer: [
      {
        data: { values: values.map((score) => ({ score })) },
        mark: { type: 'bar', color: '#4c72b0' },
        encoding: {
          x: { field: 'score', bin: { maxbins: 30 }, type: 'quantitative', title: 'score (higher = more responsible)' },
          y: { aggregate: 'count', type: 'quantitative', title: 'training samples' },
        },
      },
      ...(threshold !== null ? [{
        data: { values: [{ cut: threshold }] },
        mark: { type: 'rule' as const, color: '#c44e52', strokeWidth: 1.5 },
        encoding: { x: { field: 'cut', type: 'quantitative' as const } },
      }] : []),
    ],
  };
  return (await renderVegaLiteSvg(spec, idPrefix)).svg;
}

/** What the page shows. */
export interface PageInput {
  readonly title: string;
  readonly method: string;
  /** Sign and units of the scores. */
  readonly units: string;
  readonly matrix: ScoreMatrix;
  readonly tops: readonly QueryTop[];
  /**
   * Metrics of the method against labels, if any: its rows (per labelled source, with the `average`
   * row; `aucPerQueryMean` where computed) and the metrics' columns ({@link labelMetricColumns}:
   * each shown under its descriptor's label, with its digits).
   */
  readonly metrics: { readonly rows: readonly (SourceEvaluation & { readonly aucPerQueryMean?: number })[]; readonly columns: readonly MetricColumn[] } | null;
  /** The command that made it. */
  readonly command: string;
  /** Per-token attribution of the top samples, or why there is none (no section when absent). */
  readonly tokens?: TokenAttribution;
}

const CSS = `body{max-width:1500px}
.layout{display:grid;grid-template-columns:260px minmax(0,1fr);gap:24px}
nav{position:sticky;top:0;max-height:100vh;overflow:auto;border-right:1px solid #ddd;padding-right:10px;font-size:.85em}
nav a{display:block;padding:2px 4px;color:#224;text-decoration:none;border-radius:3px;overflow-wrap:anywhere}nav a:hover{background:#e6e9f5}
h2.qid{overflow-wrap:anywhere}
.meta{color:#555}.out{background:#fff8e6;border:1px solid #f0d9a0;padding:6px 8px;border-radius:4px;white-space:pre-wrap}
.prompt{color:#555;white-space:pre-wrap;font-size:12px;margin:2px 0 4px}
.lists{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:16px}.lists h3{margin-top:.6em}
.hit{border:1px solid #ddd;border-radius:4px;padding:6px 8px;margin:6px 0}.support .hit{border-left:4px solid #d62728}.oppose .hit{border-left:4px solid #1f77b4}
.hit .head{display:flex;gap:10px;align-items:baseline;flex-wrap:wrap}.tid{font-weight:600;overflow-wrap:anywhere}.score{font-variant-numeric:tabular-nums}
.resp{white-space:pre-wrap}.where{color:#888;font-size:11px;overflow-wrap:anywhere}
mark{background:#ffe27a;padding:0 1px}mark.swap{background:#f4a3a3;outline:1px solid #c44e52}mark.fix{background:#a8e0b0;outline:1px solid #2e8b57}
.heat{white-space:pre-wrap;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;line-height:1.7;margin-top:4px}.tok{border-radius:2px}
.heatsum{color:#555;font-size:11px}.src{color:#0a7d28;font-weight:600}`;

/** One training sample of a list: rank, score, full id, where, prompt and response highlighted, then `extra` (HTML). */
function hitCard(t: TopEntry, words: ReadonlySet<string>, swapped: SwappedWords | undefined, extra = ''): string {
  return `<div class="hit" data-train-id="${esc(t.trainId)}"><div class="head"><span class="meta">#${t.rank}</span><span class="score">${esc(signed(t.score))}</span><span class="tid">${esc(t.trainId)}</span>${t.trueSource ? '<span class="src" title="labelled true source">✓ source</span>' : ''}</div>`
    + `<div class="where">${esc(t.where)}</div><div class="prompt">${highlight(t.prompt, words, swapped)}</div><div class="resp">${highlight(t.response, words, swapped)}</div>${extra}</div>`;
}

/** A top sample's heat map and the sum its token values add up to, beside the scorer's own score. */
function tokenSection(ts: TokenScores, scorer: string, checkpoint: string): string {
  return `${tokenHeatMap(ts)}<div class="heatsum">token values add up to ${esc(signed(ts.sum))} (${esc(scorer)} score at ${esc(checkpoint)}: ${esc(signed(ts.score))})</div>`;
}

/**
 * The page's table of the method's metrics against the labels: per labelled source (and the
 * average) every metric of `columns` under its descriptor's label, with its digits; the AUC of the
 * group's mean scores with the mean of its per-query AUCs beside it.
 */
function metricsTable(method: string, rows: readonly (SourceEvaluation & { readonly aucPerQueryMean?: number })[], columns: readonly MetricColumn[]): string {
  const num = (x: string): string => `<td class="num">${x}</td>`;
  const fixed = (x: number | undefined, digits: number): string => (x !== undefined && Number.isFinite(x) ? x.toFixed(digits) : '–');
  // The AUC (the `auc` column) is on each group's mean scores; the mean of its per-query values goes beside it.
  const perQuery = (c: MetricColumn): boolean => c.column === GROUP_AUC.column;
  const head = columns.flatMap((c) => (perQuery(c) ? [`${metricHeader(c.metric)} of mean scores`, `mean per-query ${metricHeader(c.metric)}`] : [metricHeader(c.metric)]));
  const cells = (m: (typeof rows)[number]): string[] => columns.flatMap((c) => {
    const d = c.metric.digits ?? 3;
    return perQuery(c) ? [fixed(m.values[c.column], d), fixed(m.aucPerQueryMean, d)] : [fixed(m.values[c.column], d)];
  });
  return `<h2>Against the labels</h2><p class="meta">For this run's method: ${esc(method)} (every variant of it, plain, debias, denoise and dda, is in metrics.csv). ROC-AUC of the group's mean scores: each training sample's score is averaged over the group's queries, then one AUC per group. Beside it, the mean over the group's queries of each query's own AUC.</p>`
    + `<table class="metrics"><thead><tr><th>source</th>${head.map((h) => `<th class="num">${esc(h)}</th>`).join('')}<th class="num">true sources</th><th class="num">queries</th></tr></thead>`
    + `<tbody>${rows.map((m) => `<tr><td>${esc(m.source)}</td>${cells(m).map(num).join('')}${num(String(m.nPositives))}${num(String(m.nTests))}</tr>`).join('')}</tbody></table>`;
}

/** The whole page as one self-contained HTML string (no script, no network). */
export async function renderAttributionPage(p: PageInput): Promise<string> {
  const nTrain = p.matrix.trainIds.length;
  const nTest = p.matrix.testIds.length;
  const nav = p.tops.map((q, j) => `<a href="#q${j}">${esc(q.queryId)}${q.group ? ` <span class="meta">(${esc(q.group)})</span>` : ''}</a>`).join('');
  const metrics = p.metrics && p.metrics.rows.length > 0 ? metricsTable(p.method, p.metrics.rows, p.metrics.columns) : '';
  const tokens = p.tokens;
  const sections: string[] = [];
  for (const [j, q] of p.tops.entries()) {
    const words = contentWords(q.output);
    const swapped = q.corrected !== null ? swappedWords(q.output, q.corrected) : undefined;
    const threshold = q.top.length > 0 ? (q.top[q.top.length - 1] as TopEntry).score : null;
    const chart = j < PAGE_CHART_LIMIT
      ? `<p class="meta">Scores of all ${nTrain} training samples for this output (red: the ${q.top.length}th highest, the cut-off of the list below):</p>${chartFigure(`q${j}-scores`, await scoreHistogramSvg(Array.from({ length: nTrain }, (_, i) => p.matrix.values[i * nTest + j] as number), threshold, `q${j}`))}`
      : '';
    const heat = (t: TopEntry): string => {
      const ts = tokens?.kind === 'computed' ? tokens.queries.get(q.queryId)?.get(t.trainId) : undefined;
      return ts && tokens?.kind === 'computed' ? tokenSection(ts, tokens.scorer, tokens.checkpoint) : '';
    };
    sections.push(`<section id="q${j}" class="query"><h2 class="qid">${esc(q.queryId)}${q.group ? ` <span class="meta">group ${esc(q.group)}</span>` : ''}</h2>
<div class="prompt">${esc(q.prompt)}</div><p><b>Output</b></p><div class="out">${highlight(q.output, new Set(), swapped)}</div>${q.corrected !== null ? `<p><b>Corrected</b></p><div class="out">${highlight(q.corrected, new Set(), swapped)}</div>` : ''}
${chart}
<div class="lists"><div class="support"><h3>Most supporting (highest scores)</h3>${q.top.map((t) => hitCard(t, words, swapped, heat(t))).join('')}</div>
<div class="oppose"><h3>Most opposing (lowest scores)</h3>${q.bottom.map((t) => hitCard(t, words, swapped)).join('')}</div></div></section>`);
  }
  const legend = `<p class="meta">In the training samples, <mark>words</mark> they share with the query's output are highlighted${p.tops.some((q) => q.corrected !== null) ? '; where a query has a corrected output, the words where output and correction differ are marked: <mark class="swap">the output\'s</mark> and <mark class="fix">the correction\'s</mark>' : ''}.</p>`;
  const tokenNote = tokens === undefined ? '' : tokens.kind === 'computed'
    ? `<p class="meta"><b>Token heat maps</b> (under each supporting sample${tokens.queries.size < nTest ? ` of the first ${tokens.queries.size} queries` : ''}): which tokens of its response carry its score. ${esc(tokens.how)}</p>`
    : `<p class="meta">${esc(tokens.reason)}</p>`;
  return htmlPage({
    title: p.title,
    css: CSS,
    intro: `<p class="meta">Method: <b>${esc(p.method)}</b>; ${nTrain} training samples × ${nTest} queries; higher score = more responsible.</p><details class="meta"><summary>Units, provenance and the command</summary><p>${esc(p.units)}</p><p>Made by: <code>${esc(p.command)}</code></p></details>${tokenNote}${legend}`,
    body: `<div class="layout"><nav><b>${nTest} queries</b>${nav}</nav><main>${metrics}${sections.join('\n')}</main></div>`,
  });
}
