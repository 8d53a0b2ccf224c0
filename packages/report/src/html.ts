/**
 * Self-contained HTML pages: inline CSS, inline SVG charts, no scripts and no external resources.
 * A Content-Security-Policy in the page forbids every fetch, so a page that opens correctly from
 * disk also opens without a network.
 */

/** Escapes `&`, `<`, `>`, `"` and `'` for HTML text and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A cell of {@link htmlTable}: text (escaped), with `numeric` cells right-aligned. */
export type HtmlCell = string | { readonly text: string; readonly numeric?: boolean; readonly title?: string };

/**
 * A table; every header and cell is escaped. Columns are right-aligned when `numericColumns` says
 * so (default: every column but the first).
 */
export function htmlTable(head: readonly string[], rows: readonly (readonly HtmlCell[])[], numericColumns?: readonly boolean[]): string {
  const numeric = (c: number): boolean => numericColumns?.[c] ?? c > 0;
  const cell = (tag: 'td' | 'th', x: HtmlCell, c: number): string => {
    const text = typeof x === 'string' ? x : x.text;
    const num = typeof x === 'string' ? numeric(c) : x.numeric ?? numeric(c);
    const title = typeof x !== 'string' && x.title ? ` title="${escapeHtml(x.title)}"` : '';
    return `<${tag}${num ? ' class="num"' : ''}${title}>${escapeHtml(text)}</${tag}>`;
  };
  return `<table><thead><tr>${head.map((h, c) => cell('th', h, c)).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((x, c) => cell('td', x, c)).join('')}</tr>`).join('')}</tbody></table>`;
}

/**
 * A chart in a `<figure>` marked `data-chart="<id>"` (what {@link checkPageInBrowser} counts marks
 * in), with an optional caption (escaped). `svg` is inserted as is.
 */
export function chartFigure(id: string, svg: string, caption?: string): string {
  return `<figure class="chart" id="chart-${escapeHtml(id)}" data-chart="${escapeHtml(id)}">${svg}${caption ? `<figcaption>${escapeHtml(caption)}</figcaption>` : ''}</figure>`;
}

/** What {@link htmlPage} assembles. `intro` and `body` are HTML (escape text with {@link escapeHtml}). */
export interface HtmlPageParts {
  readonly title: string;
  readonly intro?: string;
  readonly body: string;
  /** Extra CSS appended to the built-in style sheet. */
  readonly css?: string;
}

const PAGE_CSS = `
:root{color-scheme:light}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:2em auto;max-width:1240px;padding:0 1.5em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.3em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}h3{font-size:1.05em;margin-top:1.5em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}td,th{border:1px solid #d4d4d4;padding:3px 8px;text-align:left}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
thead th{background:#f3f3f3}tbody tr:nth-child(even){background:#fafafa}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:.85em}code{background:#f3f3f3;padding:0 .25em}
figure.chart{margin:1em 0;overflow-x:auto}figure.chart svg{max-width:none;display:block}figcaption{font-size:.85em;color:#555;margin-top:.3em}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em 1em}
`;

/**
 * One HTML document with everything inline. Its Content-Security-Policy allows inline styles and
 * `data:` images only, so a page that needs the network shows errors instead of fetching.
 */
export function htmlPage(p: HtmlPageParts): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(p.title)}</title>
<style>${PAGE_CSS}${p.css ?? ''}</style></head>
<body><h1>${escapeHtml(p.title)}</h1>
${p.intro ?? ''}
${p.body}
</body></html>
`;
}
