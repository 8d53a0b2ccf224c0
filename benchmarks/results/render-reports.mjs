#!/usr/bin/env node
// Re-renders the HTML reports of finished benchmarks from their committed files, without re-running
// them: <base>-summary.json (and <base>-curves.json when present) → <base>-report.html and the
// LaTeX tables of `--format latex` (<base>-summary.tex, for an ablation <base>-grid.tex). Then opens
// every report in headless Chromium, checks that each chart drew marks and that nothing was fetched,
// and with --screenshots DIR writes the README's PNGs.
//
//   npm run build
//   node benchmarks/results/render-reports.mjs [--screenshots docs/images] [folder ...]   (default: benchmarks/results/default)
//
// Results written before `dda bench` kept its curves have no <base>-curves.json: their ROC points are
// recovered once from the ROC panels of the previous report (inline SVG paths, 260 px per unit drawn
// to 0.01 px, so within 4e-5) and stored as <base>-curves.json; recall@k curves were never stored for
// them and are reported as missing, not invented.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkPageInBrowser } from '../../packages/report/dist/index.js';
import { ablationGridLatex, loadReportData, renderReportWithWarnings, summaryLatex } from '../../packages/harness/dist/index.js';

const args = process.argv.slice(2);
const shotsAt = args.indexOf('--screenshots');
const shotsDir = shotsAt >= 0 ? args[shotsAt + 1] : undefined;
const folders = args.filter((a, i) => a !== '--screenshots' && i !== shotsAt + 1);
if (folders.length === 0) folders.push('benchmarks/results/default');

/** ROC curves of a report written by the hand-drawn SVG renderer (before @dda/report), or undefined. */
function recoverRocCurves(htmlPath) {
  if (!existsSync(htmlPath)) return undefined;
  const html = readFileSync(htmlPath, 'utf8');
  const head = /<h2>ROC curves per source \(seed (\d+)\)<\/h2>/.exec(html);
  if (!head) return undefined;
  const seed = Number(head[1]);
  const section = html.slice(head.index, html.indexOf('<h2>', head.index + 4));
  const roc = [];
  // One <svg> per (family, source) panel: <title>family: source</title>, then one path per method.
  for (const panel of section.split('<svg ').slice(1)) {
    const title = /<title>([^<]*)<\/title>/.exec(panel)?.[1];
    if (!title) continue;
    const [family, source] = title.split(': ');
    for (const m of panel.matchAll(/<path d="(M[^"]+)"[^>]*><title>([^<]*)<\/title><\/path>/g)) {
      const pts = m[1].slice(1).split('L').map((xy) => xy.split(',').map(Number));
      // The old renderer drew x = 36 + 260·fpr, y = 36 + 260·(1 − tpr).
      roc.push({
        family, source, seed, method: m[2].replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&'),
        fpr: pts.map(([x]) => Number(((x - 36) / 260).toFixed(4))),
        tpr: pts.map(([, y]) => Number((1 - (y - 36) / 260).toFixed(4))),
      });
    }
  }
  return roc;
}

let failed = false;
for (const folder of folders) {
  for (const f of readdirSync(folder).filter((x) => x.endsWith('-summary.json')).sort()) {
    const base = join(folder, f.replace(/-summary\.json$/, ''));
    const notes = [];
    if (!existsSync(`${base}-curves.json`)) {
      const roc = recoverRocCurves(`${base}-report.html`);
      if (roc) {
        writeFileSync(`${base}-curves.json`, JSON.stringify({
          note: 'ROC points recovered from the inline SVG of the report first written by dda bench (x = 36 + 260·fpr, y = 36 + 260·(1 − tpr), 2 decimals of a pixel); recall@k curves were not stored by that version',
          roc, recall: [],
        }));
        console.log(`${base}-curves.json: ${roc.length} ROC curves recovered from the previous report`);
      }
    }
    const curvesNote = existsSync(`${base}-curves.json`) ? JSON.parse(readFileSync(`${base}-curves.json`, 'utf8')).note : undefined;
    if (curvesNote) {
      notes.push('Re-rendered from the committed summary JSON without re-running the benchmark. These results were written before recall@k curves and the compute time of reused score matrices were stored: '
        + 'the recall@k curves are missing (recall@k at the configured k is in the tables), the ROC points were recovered from the first report\'s drawing, '
        + 'and a method whose score matrices were reused from an earlier run reports the seconds it took to load them (often about 0.01 s), not to compute them.');
    }
    const { data, command, missing } = loadReportData(`${base}-summary.json`);
    const { html, warnings } = await renderReportWithWarnings(data, command, notes);
    writeFileSync(`${base}-report.html`, html);
    writeFileSync(`${base}-summary.tex`, summaryLatex(data, command));
    const grid = ablationGridLatex(data, command);
    if (grid !== undefined) writeFileSync(`${base}-grid.tex`, grid);
    const seen = await checkPageInBrowser(`${base}-report.html`);
    const empty = seen.charts.filter((c) => c.marks === 0);
    const ok = warnings.length === 0 && seen.requests.length === 0 && seen.consoleErrors.length === 0 && empty.length === 0 && seen.charts.length > 0;
    failed ||= !ok;
    console.log(`${base}-report.html: ${seen.charts.length} charts (${seen.charts.map((c) => `${c.id} ${c.marks}`).join(', ')}); requests ${seen.requests.length}, console errors ${seen.consoleErrors.length}, warnings ${warnings.length}${missing.length ? `; missing: ${missing.join('; ')}` : ''}${ok ? '' : '  FAILED'}`);
    for (const w of [...warnings, ...seen.requests, ...seen.consoleErrors]) console.log(`  ${w}`);
    if (shotsDir) {
      const name = f.replace(/-summary\.json$/, '');
      const shots = data.kind === 'bench'
        ? [{ path: join(shotsDir, `${name}-leaderboard.png`), selector: '#chart-leaderboard-all' }, { path: join(shotsDir, `${name}-roc.png`), selector: `#chart-roc-${data.config.families[0]}` }]
        : [{ path: join(shotsDir, `${name}-components.png`), selector: '#chart-ablation-components' }, { path: join(shotsDir, `${name}-grid.png`), selector: '#chart-ablation-grid' }];
      await checkPageInBrowser(`${base}-report.html`, { screenshot: shots });
      console.log(`  screenshots: ${shots.map((s) => s.path).join(', ')}`);
    }
  }
}
process.exit(failed ? 1 : 0);
