#!/usr/bin/env node
// Screenshot of an HTML page (e.g. the report.html of `dda attribute`) in headless Chromium, for the
// README: node scripts/screenshot-page.mjs <page.html> <out.png> [width] [CSS selector of the part to shoot] [its top height in px]
// Needs Debian's chromium and a build (npm run build).
import { checkPageInBrowser } from '../packages/report/dist/index.js';

const [page, out, width = '1200', selector, maxHeight] = process.argv.slice(2);
if (!page || !out) {
  console.error('usage: node scripts/screenshot-page.mjs <page.html> <out.png> [width] [selector] [max height]');
  process.exit(2);
}
const r = await checkPageInBrowser(page, { width: Number(width), screenshot: { path: out, ...(selector ? { selector, ...(maxHeight ? { maxHeight: Number(maxHeight) } : {}) } : { fullPage: false }) } });
console.log(`${out}: ${r.charts.length} charts (${r.charts.reduce((a, c) => a + c.marks, 0)} marks), ${r.requests.length} requests, ${r.consoleErrors.length} console errors`);
