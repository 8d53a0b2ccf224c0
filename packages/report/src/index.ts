/**
 * @dda/report: offline reports. Vega-Lite charts rendered to inline SVG in Node
 * ({@link renderVegaLiteSvg}), self-contained HTML pages ({@link htmlPage}), booktabs LaTeX tables
 * ({@link latexTable}), and a headless-Chromium check of a page ({@link checkPageInBrowser}).
 * Knows nothing about benchmarks: the harness and the attribution commands decide what to draw.
 */
export * from './vega-svg.js';
export * from './html.js';
export * from './latex.js';
export * from './browser-check.js';
