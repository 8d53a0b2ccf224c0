/**
 * The HTML page of an attribution: one self-contained file (inline CSS and SVG, no script or
 * resource from the network) to browse each query with its top training samples, the words they
 * share with the query's output highlighted, and the distribution of its scores.
 */
import type { ScoreMatrix, SourceEvaluation } from '@dda/core';
import type { QueryTop } from './outputs.js';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Lower-case word tokens of length ≥ 3 (letters and digits), for highlighting shared words. */
export function contentWords(text: string): Set<string> {
  return new Set((text.toLowerCase().match(/[\p{L}\p{N}]{3,}/gu) ?? []).filter((w) => !STOP.has(w)));
}
const STOP = new Set(['the', 'and', 'for', 'that', 'with', 'this', 'from', 'are', 'was', 'were', 'has', 'have', 'had', 'its', 'not', 'but', 'you', 'your', 'our', 'their', 'his', 'her', 'they', 'them', 'will', 'can', 'all', 'any']);

/** `text` escaped, with the words in `words` wrapped in <mark>. */
export function highlight(text: string, words: ReadonlySet<string>): string {
  return text.split(/([\p{L}\p{N}]+)/u).map((part, i) => (i % 2 === 1 && words.has(part.toLowerCase()) ? `<mark>${esc(part)}</mark>` : esc(part))).join('');
}

/** An inline SVG histogram of one query's scores over the training set (20 bins), the top-k threshold marked. */
export function histogramSvg(values: readonly number[], threshold: number | null, width = 360, height = 90): string {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const bins = 20;
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) counts[hi > lo ? Math.min(bins - 1, Math.floor(((v - lo) / (hi - lo)) * bins)) : 0]! += 1;
  const max = Math.max(...counts, 1);
  const bw = width / bins;
  const bars = counts.map((c, b) => {
    const h = (c / max) * (height - 20);
    return `<rect class="bar" x="${(b * bw + 1).toFixed(1)}" y="${(height - 14 - h).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${h.toFixed(1)}"><title>${c} training samples</title></rect>`;
  }).join('');
  const tx = threshold !== null && hi > lo ? ((threshold - lo) / (hi - lo)) * width : null;
  const mark = tx !== null ? `<line class="threshold" x1="${tx.toFixed(1)}" x2="${tx.toFixed(1)}" y1="0" y2="${height - 14}"><title>top-k cut-off</title></line>` : '';
  const fmt = (x: number): string => (Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(2) : x.toPrecision(3));
  return `<svg class="chart" role="img" aria-label="distribution of scores" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${bars}${mark}` +
    `<text x="0" y="${height - 2}" class="axis">${esc(fmt(lo))}</text><text x="${width}" y="${height - 2}" text-anchor="end" class="axis">${esc(fmt(hi))}</text></svg>`;
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

const CSS = `body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#222;display:flex}
nav{width:240px;flex:none;height:100vh;overflow:auto;border-right:1px solid #ddd;padding:12px;box-sizing:border-box;position:sticky;top:0;background:#fafafa}
nav a{display:block;padding:2px 4px;color:#224;text-decoration:none;border-radius:3px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}nav a:hover{background:#e6e9f5}
main{flex:1;padding:16px 24px;max-width:1100px}h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-top:1px solid #ddd;padding-top:14px}
.meta{color:#555}.out{background:#fff8e6;border:1px solid #f0d9a0;padding:6px 8px;border-radius:4px;white-space:pre-wrap}
.prompt{color:#555;white-space:pre-wrap;max-height:6em;overflow:auto;font-size:12px}
table{border-collapse:collapse;width:100%;margin-top:8px}td,th{border-bottom:1px solid #eee;padding:4px 6px;vertical-align:top;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.resp{white-space:pre-wrap}.where{color:#888;font-size:11px}
mark{background:#ffe27a;padding:0 1px}.src{color:#0a7d28;font-weight:600}.bar{fill:#4c72b0}.threshold{stroke:#c44e52;stroke-width:1.5}.axis{font-size:10px;fill:#555}`;

/** The whole page as one HTML string. */
export function renderAttributionPage(p: PageInput): string {
  const nTrain = p.matrix.trainIds.length;
  const nTest = p.matrix.testIds.length;
  const nav = p.tops.map((q, j) => `<a href="#q${j}" title="${esc(q.queryId)}">${esc(q.queryId)}${q.group ? ` <span class="meta">(${esc(q.group)})</span>` : ''}</a>`).join('');
  const metrics = p.metrics && p.metrics.length > 0
    ? `<h2>Against the labels</h2><table class="metrics"><tr><th>source</th><th>ROC-AUC (%)</th><th>recall@${p.metrics[0]?.k}</th><th>true sources</th><th>queries</th></tr>${p.metrics.map((m) => `<tr><td>${esc(m.source)}</td><td class="num">${m.auc.toFixed(2)}</td><td class="num">${m.recallAtK.toFixed(3)}</td><td class="num">${m.nPositives}</td><td class="num">${m.nTests}</td></tr>`).join('')}</table>`
    : '';
  const sections = p.tops.map((q, j) => {
    const words = contentWords(q.output);
    const col = Array.from({ length: nTrain }, (_, i) => p.matrix.values[i * nTest + j] as number);
    const threshold = q.top.length > 0 ? (q.top[q.top.length - 1] as QueryTop['top'][number]).score : null;
    const rows = q.top.map((t) => `<tr class="hit"><td class="num">${t.rank}</td><td class="num">${t.score.toPrecision(4)}</td><td>${esc(t.trainId)}${t.trueSource ? ' <span class="src" title="labelled true source">✓ source</span>' : ''}<div class="where">${esc(t.where)}</div></td><td class="resp">${highlight(t.response, words)}<details><summary>prompt</summary><div class="prompt">${highlight(t.prompt, words)}</div></details></td></tr>`).join('');
    return `<section id="q${j}" class="query"><h2>${esc(q.queryId)}${q.group ? ` <span class="meta">group ${esc(q.group)}</span>` : ''}</h2>
<div class="prompt">${esc(q.prompt)}</div><p><b>Output</b></p><div class="out">${esc(q.output)}</div>${q.corrected !== null ? `<p><b>Corrected</b></p><div class="out">${esc(q.corrected)}</div>` : ''}
<p class="meta">Scores of all ${nTrain} training samples for this output (the red line: the ${q.top.length}th highest):</p>${histogramSvg(col, threshold)}
<table><tr><th>rank</th><th>score</th><th>training sample</th><th>response (words shared with the output highlighted)</th></tr>${rows}</table></section>`;
  }).join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(p.title)}</title><style>${CSS}</style></head>
<body><nav><b>${nTest} queries</b>${nav}</nav><main><h1>${esc(p.title)}</h1>
<p class="meta">Method: <b>${esc(p.method)}</b>. ${esc(p.units)}. ${nTrain} training samples × ${nTest} queries.</p>
<p class="meta">Made by: <code>${esc(p.command)}</code></p>${metrics}
${sections}</main></body></html>
`;
}
