/**
 * @dda/report: offline reports. Vega-Lite charts rendered to inline SVG in Node
 * ({@link renderVegaLiteSvg}), self-contained HTML pages ({@link htmlPage}), booktabs LaTeX tables
 * ({@link latexTable}), and a headless-Chromium check of a page ({@link checkPageInBrowser}).
 * Knows nothing about benchmarks: the harness and the attribution commands decide what to draw.
 *
 * The public entry point, listed name by name (issue 25): what the harness, the attribution page,
 * the tests and the scripts use. The chart theme, the page and cell shapes and the browser's
 * settings stay inside the package.
 */
// Vega-Lite charts rendered offline to inline SVG
export { prefixIds, renderVegaLiteSvg, type ChartSpec } from './vega-svg.js';
// self-contained HTML pages, tables and chart figures
export { chartFigure, escapeHtml, htmlPage, htmlTable } from './html.js';
// booktabs LaTeX tables
export { escapeLatex, latexTable, type LatexCell } from './latex.js';
// a page opened in headless Chromium: what a reader would see
export { checkPageInBrowser, type BrowserCheck } from './browser-check.js';
