/**
 * The HTML page of an attribution: one self-contained file (inline CSS and SVG, no script or
 * resource from the network) to browse each query with its top training samples, the words they
 * share with the query's output highlighted, and the distribution of its scores.
 */
import type { ScoreMatrix, SourceEvaluation } from '@dda/core';
import { chartFigure, escapeHtml, htmlPage, renderVegaLiteSvg, type ChartSpec } from '@dda/report';
import type { QueryTop } from './outputs.js';

const esc = escapeHtml;

/** Queries drawn with a histogram on the page (the rest are listed without one; all are in topk.csv). */
export const PAGE_CHART_LIMIT = 200;

/** Lower-case word tokens of length ≥ 3 (letters and digits), for highlighting shared words. */
export function contentWords(text: string): Set<string> {
  return new Set((text.toLowerCase().match(/[\p{L}\p{N}]{3,}/gu) ?? []).filter((w) => !STOP.has(w)));
}
const STOP = new Set(['the', 'and', 'for', 'that', 'with', 'this', 'from', 'are', 'was', 'were', 'has', 'have', 'had', 'its', 'not', 'but', 'you', 'your', 'our', 'their', 'his', 'her', 'they', 'them', 'will', 'can', 'all', 'any']);

/** `text` escaped, with the words in `words` wrapped in <mark>. */
export function highlight(text: string, words: ReadonlySet<string>): string {
  return text.split(/([\p{L}\p{N}]+)/u).map((part, i) => (i % 2 === 1 && words.has(part.toLowerCase()) ? `<mark>${esc(part)}</mark>` : esc(part))).join('');
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
  /** Metrics of the method against labels (with the `average` row), if any. */
  readonly metrics: readonly SourceEvaluation[] | null;
  /** The command that made it. */
  readonly command: string;
}

const CSS = `body{max-width:1500px}
.layout{display:grid;grid-template-columns:230px 1fr;gap:24px}
nav{position:sticky;top:0;max-height:100vh;overflow:auto;border-right:1px solid #ddd;padding-right:10px;font-size:.9em}
nav a{display:block;padding:2px 4px;color:#224;text-decoration:none;border-radius:3px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}nav a:hover{background:#e6e9f5}
.meta{color:#555}.out{background:#fff8e6;border:1px solid #f0d9a0;padding:6px 8px;border-radius:4px;white-space:pre-wrap}
.prompt{color:#555;white-space:pre-wrap;max-height:6em;overflow:auto;font-size:12px}
table.hits{width:100%}table.hits td{vertical-align:top}.resp{white-space:pre-wrap}.where{color:#888;font-size:11px}
mark{background:#ffe27a;padding:0 1px}.src{color:#0a7d28;font-weight:600}`;

/** The whole page as one self-contained HTML string (no script, no network). */
export async function renderAttributionPage(p: PageInput): Promise<string> {
  const nTrain = p.matrix.trainIds.length;
  const nTest = p.matrix.testIds.length;
  const nav = p.tops.map((q, j) => `<a href="#q${j}" title="${esc(q.queryId)}">${esc(q.queryId)}${q.group ? ` <span class="meta">(${esc(q.group)})</span>` : ''}</a>`).join('');
  const metrics = p.metrics && p.metrics.length > 0
    ? `<h2>Against the labels</h2><table class="metrics"><thead><tr><th>source</th><th class="num">ROC-AUC (%)</th><th class="num">recall@${p.metrics[0]?.k}</th><th class="num">AP</th><th class="num">Recall@50</th><th class="num">RR (MRR)</th><th class="num">true sources</th><th class="num">queries</th></tr></thead><tbody>${p.metrics.map((m) => `<tr><td>${esc(m.source)}</td><td class="num">${m.auc.toFixed(2)}</td><td class="num">${m.recallAtK.toFixed(3)}</td><td class="num">${m.averagePrecision.toFixed(3)}</td><td class="num">${m.recallAt50.toFixed(3)}</td><td class="num">${m.mrr.toFixed(3)}</td><td class="num">${m.nPositives}</td><td class="num">${m.nTests}</td></tr>`).join('')}</tbody></table>`
    : '';
  const sections: string[] = [];
  for (const [j, q] of p.tops.entries()) {
    const words = contentWords(q.output);
    const threshold = q.top.length > 0 ? (q.top[q.top.length - 1] as QueryTop['top'][number]).score : null;
    const chart = j < PAGE_CHART_LIMIT
      ? `<p class="meta">Scores of all ${nTrain} training samples for this output (red: the ${q.top.length}th highest, the cut-off of the list below):</p>${chartFigure(`q${j}-scores`, await scoreHistogramSvg(Array.from({ length: nTrain }, (_, i) => p.matrix.values[i * nTest + j] as number), threshold, `q${j}`))}`
      : '';
    const rows = q.top.map((t) => `<tr class="hit"><td class="num">${t.rank}</td><td class="num">${t.score.toPrecision(4)}</td><td>${esc(t.trainId)}${t.trueSource ? ' <span class="src" title="labelled true source">✓ source</span>' : ''}<div class="where">${esc(t.where)}</div></td><td class="resp">${highlight(t.response, words)}<details><summary>prompt</summary><div class="prompt">${highlight(t.prompt, words)}</div></details></td></tr>`).join('');
    sections.push(`<section id="q${j}" class="query"><h2>${esc(q.queryId)}${q.group ? ` <span class="meta">group ${esc(q.group)}</span>` : ''}</h2>
<div class="prompt">${esc(q.prompt)}</div><p><b>Output</b></p><div class="out">${esc(q.output)}</div>${q.corrected !== null ? `<p><b>Corrected</b></p><div class="out">${esc(q.corrected)}</div>` : ''}
${chart}
<table class="hits"><thead><tr><th class="num">rank</th><th class="num">score</th><th>training sample</th><th>response (words shared with the output highlighted)</th></tr></thead><tbody>${rows}</tbody></table></section>`);
  }
  return htmlPage({
    title: p.title,
    css: CSS,
    intro: `<p class="meta">Method: <b>${esc(p.method)}</b>; ${nTrain} training samples × ${nTest} queries; higher score = more responsible.</p><details class="meta"><summary>Units, provenance and the command</summary><p>${esc(p.units)}</p><p>Made by: <code>${esc(p.command)}</code></p></details>`,
    body: `<div class="layout"><nav><b>${nTest} queries</b>${nav}</nav><main>${metrics}${sections.join('\n')}</main></div>`,
  });
}
