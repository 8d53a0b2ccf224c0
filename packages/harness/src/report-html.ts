/**
 * A self-contained HTML report of a benchmark or ablation: tables, a bar chart of mean AUC with 95%
 * intervals, paired tests, and ROC curves per source, all as inline SVG (opens without a network).
 */
import type { BenchResult, RocSet, SummaryRow } from './bench.js';

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const colour = (i: number): string => PALETTE[i % PALETTE.length] as string;

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
const f2 = (x: number): string => x.toFixed(2);

/** Horizontal bars of mean AUC (0–100) with interval whiskers and a chance line at 50. */
export function barChartSvg(rows: readonly SummaryRow[], title: string): string {
  const barH = 18;
  const left = 230;
  const width = 460;
  const top = 28;
  const h = top + rows.length * (barH + 6) + 30;
  const x = (auc: number): number => left + (Math.max(0, Math.min(100, auc)) / 100) * width;
  const bars = rows.map((r, i) => {
    const y = top + i * (barH + 6);
    return [
      `<text x="${left - 6}" y="${y + barH - 5}" text-anchor="end" font-size="12">${escapeHtml(r.method)}</text>`,
      `<rect x="${left}" y="${y}" width="${f2(x(r.aucMean) - left)}" height="${barH}" fill="${colour(i)}" opacity="0.8"><title>${escapeHtml(r.method)}: ${f2(r.aucMean)} [${f2(r.aucLow)}, ${f2(r.aucHigh)}]</title></rect>`,
      `<line x1="${f2(x(r.aucLow))}" x2="${f2(x(r.aucHigh))}" y1="${y + barH / 2}" y2="${y + barH / 2}" stroke="#000" stroke-width="1.5"/>`,
      `<text x="${f2(x(r.aucHigh) + 4)}" y="${y + barH - 5}" font-size="11">${f2(r.aucMean)}</text>`,
    ].join('');
  });
  const ticks = [0, 25, 50, 75, 100].map((t) => `<line x1="${x(t)}" x2="${x(t)}" y1="${top - 4}" y2="${h - 26}" stroke="${t === 50 ? '#999' : '#eee'}" stroke-dasharray="${t === 50 ? '4 3' : ''}"/><text x="${x(t)}" y="${h - 12}" text-anchor="middle" font-size="11">${t}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 60}" height="${h}" role="img"><title>${escapeHtml(title)}</title><text x="${left}" y="16" font-size="13" font-weight="bold">${escapeHtml(title)}</text>${ticks.join('')}${bars.join('')}</svg>`;
}

/** ROC curves of several methods on one source, with the diagonal and a legend. */
export function rocChartSvg(curves: readonly RocSet[], methods: readonly string[], title: string): string {
  const size = 260;
  const pad = 36;
  const px = (v: number): string => f2(pad + v * size);
  const py = (v: number): string => f2(pad + (1 - v) * size);
  const lines = curves.map((c) => {
    const i = methods.indexOf(c.method);
    const d = c.points.map((p, k) => `${k === 0 ? 'M' : 'L'}${px(p.fpr)},${py(p.tpr)}`).join('');
    return `<path d="${d}" fill="none" stroke="${colour(i)}" stroke-width="1.6"><title>${escapeHtml(c.method)}</title></path>`;
  });
  const legend = methods.map((m, i) => `<rect x="${pad + size + 12}" y="${pad + i * 16}" width="10" height="10" fill="${colour(i)}"/><text x="${pad + size + 26}" y="${pad + i * 16 + 9}" font-size="11">${escapeHtml(m)}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${pad + size + 200}" height="${size + 2 * pad + 10}" role="img"><title>${escapeHtml(title)}</title>`
    + `<text x="${pad}" y="20" font-size="13" font-weight="bold">${escapeHtml(title)}</text>`
    + `<rect x="${pad}" y="${pad}" width="${size}" height="${size}" fill="none" stroke="#333"/>`
    + `<line x1="${px(0)}" y1="${py(0)}" x2="${px(1)}" y2="${py(1)}" stroke="#bbb" stroke-dasharray="4 3"/>`
    + `<text x="${pad + size / 2}" y="${size + pad + 24}" text-anchor="middle" font-size="11">false-positive rate</text>`
    + `<text x="12" y="${pad + size / 2}" font-size="11" transform="rotate(-90 12 ${pad + size / 2})" text-anchor="middle">true-positive rate</text>`
    + `${lines.join('')}${legend.join('')}</svg>`;
}

function table(head: readonly string[], body: readonly (readonly string[])[]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${body.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

/** The whole report as one HTML document. `command` is the command line that produced it. */
export function renderReport(r: BenchResult, command: string): string {
  const title = r.kind === 'bench' ? `Attribution leaderboard: ${r.config.name}` : `DDA ablation: ${r.config.name}`;
  const families = [...new Set(r.summary.map((s) => s.family))];
  const sections: string[] = [];
  for (const family of families) {
    const rows = r.summary.filter((s) => s.family === family);
    sections.push(`<h2>${family === 'all' ? 'All families' : escapeHtml(family)}</h2>`);
    sections.push(barChartSvg(rows, `mean ROC-AUC (%) over ${family === 'all' ? 'family × seed' : 'seeds'}, 95% bootstrap interval`));
    sections.push(table(['method', 'n', 'AUC mean', 'AUC 95% CI', `recall@${r.config.k}`, 'recall 95% CI', 'scoring s'], rows.map((s) => [
      s.method, String(s.n), f2(s.aucMean), `[${f2(s.aucLow)}, ${f2(s.aucHigh)}]`, s.recallMean.toFixed(3), `[${s.recallLow.toFixed(3)}, ${s.recallHigh.toFixed(3)}]`, s.secondsMean.toFixed(1),
    ])));
  }
  if (r.paired.length > 0) {
    sections.push(`<h2>Paired tests against ${escapeHtml(r.paired[0]?.reference ?? '')}</h2><p>Sign-flip permutation test over matched (family, seed, source) units; difference = reference − method, AUC points.</p>`);
    sections.push(table(['method', 'units', 'mean difference', 'p (two-sided)', 'exact'], r.paired.map((p) => [p.method, String(p.n), f2(p.meanDifference), p.pValue.toPrecision(3), p.exact ? 'yes' : 'Monte Carlo'])));
  }
  // ROC panels: in a leaderboard, every plain method and the reference DDA (the other DDA variants are in the tables).
  const reference = r.paired[0]?.reference;
  const curves = r.kind === 'bench' ? r.curves.filter((c) => !c.method.includes('(') || c.method === reference) : r.curves;
  const panels = [...new Set(curves.map((c) => `${c.family}\u0000${c.source}`))];
  if (panels.length > 0) {
    sections.push(`<h2>ROC curves per source (seed ${curves[0]?.seed})</h2>`);
    for (const key of panels) {
      const [family, source] = key.split('\u0000') as [string, string];
      const cs = curves.filter((c) => c.family === family && c.source === source);
      sections.push(rocChartSvg(cs, [...new Set(cs.map((c) => c.method))], `${family}: ${source}`));
    }
  }
  if (r.skipped.length > 0) {
    sections.push('<h2>Skipped cells</h2>');
    sections.push(table(['family', 'seed', 'reason'], r.skipped.map((x) => [x.family, String(x.seed), x.reason])));
  }
  sections.push(`<h2>Timings (s)</h2>`);
  sections.push(table(['family', 'seed', 'train + generate', 'gradients', 'total', 'artifacts reused'], r.timings.map((t) => [t.family, String(t.seed), t.train.toFixed(1), t.gradients.toFixed(1), t.total.toFixed(1), String(t.reused)])));
  sections.push(`<h2>Configuration</h2><pre>${escapeHtml(JSON.stringify(r.config, null, 2))}</pre>`);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}pre{background:#f6f6f6;padding:1em;overflow:auto}svg{display:inline-block;margin:0.5em}
</style></head><body><h1>${escapeHtml(title)}</h1>
<p>Scores: higher = training sample more responsible for the erroneous output. AUC in percent (50 = chance), recall@k as a fraction. Command: <code>${escapeHtml(command)}</code></p>
${sections.join('\n')}</body></html>
`;
}
