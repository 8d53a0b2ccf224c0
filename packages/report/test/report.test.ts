import { mkdtempSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chartFigure, checkPageInBrowser, escapeHtml, escapeLatex, htmlPage, htmlTable, latexTable, prefixIds, renderVegaLiteSvg, type ChartSpec } from '@dda/report';

const dir = mkdtempSync(join(tmpdir(), 'dda-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bars: ChartSpec = {
  data: { values: [{ m: 'a', v: 3 }, { m: 'b', v: 5 }] },
  mark: 'bar',
  encoding: { y: { field: 'm', type: 'nominal' }, x: { field: 'v', type: 'quantitative' } },
};

describe('LaTeX tables', () => {
  it('escapes every special character and the Greek and math symbols of our names', () => {
    expect(escapeLatex('a_b 5% R&D #1 $x$ {y} ~ ^ \\ β=0.5 θ0 2×3 −1 1–2'))
      .toBe('a\\_b 5\\% R\\&D \\#1 \\$x\\$ \\{y\\} \\textasciitilde{} \\textasciicircum{} \\textbackslash{} $\\beta$=0.5 $\\theta$0 2$\\times$3 $-$1 1--2');
  });

  it('writes a booktabs table with a caption, rules between groups and protected brackets', () => {
    const tex = latexTable({
      comment: 'made by: dda bench --name x',
      caption: 'Mean ROC-AUC (\\%)',
      label: 'tab:x',
      columns: [{ header: 'method', align: 'l' }, { header: 'AUC_all', align: 'r' }, { header: '95% CI', align: 'c' }],
      rows: [['grad_dot', { latex: '\\textbf{93.19}' }, '[80.3, 91.0]'], ['dda(grad_dot)', '45.87', '[43.2, 49.2]']],
      rulesBefore: [1],
    });
    expect(tex).toBe([
      '% made by: dda bench --name x',
      '\\begin{table}[t]',
      '\\centering',
      '\\caption{Mean ROC-AUC (\\%)}\\label{tab:x}',
      '\\begin{tabular}{lrc}',
      '\\toprule',
      'method & AUC\\_all & 95\\% CI \\\\',
      '\\midrule',
      'grad\\_dot & \\textbf{93.19} & {}[80.3, 91.0] \\\\',
      '\\midrule',
      'dda(grad\\_dot) & 45.87 & {}[43.2, 49.2] \\\\',
      '\\bottomrule',
      '\\end{tabular}',
      '\\end{table}',
      '',
    ].join('\n'));
  });

  it('leaves out the float without a caption, and rejects ragged rows', () => {
    expect(latexTable({ columns: [{ header: 'a', align: 'l' }], rows: [['x']] })).toBe('\\begin{tabular}{l}\n\\toprule\na \\\\\n\\midrule\nx \\\\\n\\bottomrule\n\\end{tabular}\n');
    expect(() => latexTable({ columns: [{ header: 'a', align: 'l' }], rows: [['x', 'y']] })).toThrow(/row 0 has 2 cells, the table has 1 columns/);
  });
});

describe('HTML pages', () => {
  it('escapes text and marks charts for the browser check', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    expect(htmlTable(['m', 'AUC'], [['<b>', '1.00']])).toBe('<table><thead><tr><th>m</th><th class="num">AUC</th></tr></thead><tbody><tr><td>&lt;b&gt;</td><td class="num">1.00</td></tr></tbody></table>');
    expect(chartFigure('x', '<svg/>', 'a & b')).toBe('<figure class="chart" id="chart-x" data-chart="x"><svg/><figcaption>a &amp; b</figcaption></figure>');
    const page = htmlPage({ title: 'T <1>', body: '<p>b</p>' });
    expect(page).toMatch(/^<!doctype html>/);
    expect(page).toContain('<title>T &lt;1&gt;</title>');
    expect(page).toContain("default-src 'none'");
    expect(page).not.toMatch(/<script|<link|https?:\/\//);
  });
});

describe('Vega-Lite to SVG, offline', () => {
  it('renders a bar chart with one path per bar and prefixed ids', async () => {
    const { svg, warnings } = await renderVegaLiteSvg(bars, 'c7');
    expect(warnings).toEqual([]);
    expect(svg).toMatch(/^<svg [^>]*width="\d+" height="\d+"/);
    const markGroup = /<g class="mark-rect role-mark[^>]*>(.*?)<\/g>/.exec(svg)?.[1] ?? '';
    expect(markGroup.match(/<path /g)).toHaveLength(2);
    expect(svg).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
    expect(prefixIds('<clipPath id="clip1"/><g clip-path="url(#clip1)"/><use href="#clip1"/>', 'p')).toBe('<clipPath id="p-clip1"/><g clip-path="url(#p-clip1)"/><use href="#p-clip1"/>');
  });

  it('refuses to load data from a URL, and names a spec that does not compile', async () => {
    await expect(renderVegaLiteSvg({ ...bars, data: { url: 'https://example.com/data.json' } } as ChartSpec)).rejects.toThrow(/asks to load 'https:\/\/example\.com\/data\.json'/);
    await expect(renderVegaLiteSvg(bars, 'bad id')).rejects.toThrow(/idPrefix 'bad id'/);
  });
});

describe('browser check (headless Chromium)', () => {
  it('counts the drawn marks of every chart and records blocked requests and console errors', async () => {
    const a = await renderVegaLiteSvg(bars, 'a');
    const b = await renderVegaLiteSvg({ ...bars, mark: 'point' }, 'b');
    const empty = await renderVegaLiteSvg({ ...bars, data: { values: [] } }, 'e');
    const good = join(dir, 'good.html');
    writeFileSync(good, htmlPage({ title: 'ok', body: chartFigure('bars', a.svg) + chartFigure('points', b.svg) + chartFigure('empty', empty.svg) }));
    const png = join(dir, 'shot.png');
    const r = await checkPageInBrowser(good, { screenshot: { path: png, selector: '#chart-bars' } });
    expect(r.requests).toEqual([]);
    expect(r.consoleErrors).toEqual([]);
    expect(r.charts).toEqual([{ id: 'bars', marks: 2 }, { id: 'points', marks: 2 }, { id: 'empty', marks: 0 }]);
    expect(r.text).toContain('ok');
    expect(existsSync(png)).toBe(true);
    expect([...readFileSync(png).subarray(1, 4)].map((c) => String.fromCharCode(c)).join('')).toBe('PNG');

    const leaky = join(dir, 'leaky.html');
    writeFileSync(leaky, htmlPage({ title: 'leaky', body: '<img src="https://example.com/x.png" alt="">' }));
    const l = await checkPageInBrowser(leaky);
    expect(l.requests).toEqual(['https://example.com/x.png']);
    expect(l.consoleErrors.join('\n')).toMatch(/Content Security Policy/);
  });

  it('reports what named parts of a page show: drawn, cut off, text and colours', async () => {
    const id = 'err-heldout-0000-england-to-china-a-long-identifier';
    const page = join(dir, 'parts.html');
    writeFileSync(page, htmlPage({
      title: 'parts',
      css: '.cut{width:80px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}.box{width:80px;height:1em;overflow:hidden}.wrap{width:80px;overflow-wrap:anywhere}.a{background:#ffe27a}.b{background:#f4a3a3}',
      body: `<div class="cut"><span class="id">${id}</span></div><div class="box"><span class="id">${id}</span></div><div class="wrap"><span class="id">${id}</span></div><p><mark class="a">x</mark><mark class="b">y</mark><mark class="a" style="display:none">z</mark></p>`,
    }));
    const top = join(dir, 'top.png');
    const r = await checkPageInBrowser(page, { elements: { ids: '.id', marks: 'mark', none: '.absent' }, screenshot: { path: top, selector: 'body', maxHeight: 40 } });
    expect(readFileSync(top).readUInt32BE(20)).toBe(40); // PNG height: the body cropped to its top 40 px
    expect(r.elements.ids).toMatchObject({ count: 3, visible: 3, clipped: 2 }); // the ellipsis and the fixed height cut it; the wrapping box does not
    expect(r.elements.ids!.texts).toEqual([id, id, id]);
    expect(r.elements.marks).toMatchObject({ count: 3, visible: 2, clipped: 0, backgrounds: ['rgb(255, 226, 122)', 'rgb(244, 163, 163)'] });
    expect(r.elements.none).toMatchObject({ count: 0, visible: 0, clipped: 0, texts: [], backgrounds: [] });
  });

  it('fails with the install command when Chromium is missing', async () => {
    await expect(checkPageInBrowser(join(dir, 'good.html'), { executablePath: join(dir, 'no-chromium') })).rejects.toThrow(/apt-get install chromium/);
  });
});
