import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPageInBrowser, type BrowserCheck } from '@dda/report';
import { contentWords, highlight, renderAttributionPage, runAttribute, swappedWords, tokenHeatMap, type AttributeResult } from '@dda/attribution';
import { makeUserRun } from './fixtures/user-run.js';

// The HTML page of `dda attribute`, opened in headless Chromium (Debian's chromium, playwright-core):
// what a reader sees of each query (its full id and group, the output with the swapped entity
// marked), its most supporting and most opposing training samples with the evidence highlighted,
// and the token heat maps of the supporting ones.
const dir = mkdtempSync(join(tmpdir(), 'dda-page-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const K = 4;
/** Long ids, as real ones are (the page must never cut them). */
const queryId = (j: number): string => `err-heldout-000${j}-the-council-voted-against-the-new-plan-in-${j % 2 ? 'wales' : 'england'}-not-china`;
let r: AttributeResult;
let check: BrowserCheck;
beforeAll(async () => {
  const u = makeUserRun(join(dir, 'user'), 40, 3);
  // Queries whose output swaps one word of a training response for 'china', with the correction.
  const train = readFileSync(u.train, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { prompt: string; response: string });
  writeFileSync(u.queries, [0, 1, 2].map((j) => {
    const t = train[j * 3]!;
    const words = t.response.split(' ');
    const other = words.filter((w) => w !== 'england' && w !== 'china');
    const corrected = [...other.slice(0, 2), 'england', ...other.slice(3)].join(' ');
    return JSON.stringify({ id: queryId(j), group: j % 2 ? 'wales-to-china' : 'england-to-china', prompt: t.prompt, output: corrected.replace('england', 'china'), corrected });
  }).join('\n'));
  const labels = join(dir, 'labels.json');
  writeFileSync(labels, JSON.stringify({ 'england-to-china': ['t3', 't7'], 'wales-to-china': ['t0', 't6'] }));
  r = await runAttribute({ base: u.base, checkpoints: [u.run], train: u.train, queries: u.queries, labels, out: join(dir, 'out'), topK: K, method: { scorer: 'grad-cos', debias: 'fitted-beta', denoise: 'zscore-mean', beta: 1 } });
  check = await checkPageInBrowser(join(dir, 'out', 'report.html'), {
    width: 1280,
    screenshot: { path: join(dir, 'page.png'), fullPage: false },
    elements: {
      navIds: 'nav a', headings: 'section.query h2', supporting: '.support .hit', opposing: '.oppose .hit', trainIds: '.hit .tid',
      shared: '.hit mark:not(.swap):not(.fix)', swapOut: '.hit mark.swap, .out mark.swap', swapIn: '.out mark.fix', tokens: '.support .heat .tok', heatSums: '.heatsum', opposingHeat: '.oppose .heat',
    },
  });
}, 180_000);

describe('the attribution page', () => {
  it('highlights the words a training sample shares with the output, and the swapped entity distinctly, escaped', () => {
    expect([...contentWords('The council met in England; the <b>budget</b>.')].sort()).toEqual(['budget', 'council', 'england', 'met']);
    expect(highlight('a <council> met', new Set(['council']))).toBe('a &lt;<mark>council</mark>&gt; met');
    const swap = swappedWords('Storms closed roads in China.', 'Storms closed roads in England.');
    expect([...swap.output]).toEqual(['china']);
    expect([...swap.corrected]).toEqual(['england']);
    expect(highlight('roads in China, not England', new Set(['roads', 'china']), swap)).toBe('<mark>roads</mark> in <mark class="swap">China</mark>, not <mark class="fix">England</mark>');
  });

  it('highlights names in any script: accents in either Unicode form, Greek, Cyrillic, and CJK names written without spaces', () => {
    const words = contentWords('Storms in Zu\u0308rich, Αθήνα and Москва; 東京で会議.');
    for (const w of ['zürich', 'αθήνα', 'москва', '東', '京']) expect(words.has(w)).toBe(true);
    const swap = swappedWords('会議は東京で開かれた', '会議は大阪で開かれた');
    expect([...swap.output].sort()).toEqual(['京', '東'].sort());
    expect([...swap.corrected].sort()).toEqual(['大', '阪'].sort());
    expect(highlight('東京の会議 in Zürich', new Set(['会', 'zürich']), swap)).toBe('<mark class="swap">東</mark><mark class="swap">京</mark>の<mark>会</mark>議 in <mark>Zürich</mark>');
  });

  it('colours tokens by the sign and size of their value, each value in its tooltip', () => {
    const html = tokenHeatMap({ pieces: ['a', ' <b>', ' c'], values: [2, -1, 0], sum: 1, score: 1 });
    expect(html).toBe('<div class="heat"><span class="tok" style="background:rgba(214,39,40,0.850)" title="+2.000">a</span><span class="tok" style="background:rgba(31,119,180,0.425)" title="-1.000"> &lt;b&gt;</span><span class="tok" style="background:rgba(214,39,40,0.000)" title="0.000"> c</span></div>');
  });

  it('opens offline in Chromium: every query with its top samples, a score histogram each, the labels\' metrics', () => {
    expect(check.requests).toEqual([]);
    expect(check.consoleErrors).toEqual([]);
    expect(check.charts.map((c) => c.id)).toEqual(['q0-scores', 'q1-scores', 'q2-scores']);
    for (const c of check.charts) expect(c.marks, c.id).toBeGreaterThan(3); // histogram bars and the cut-off rule
    expect(check.text).toContain('Against the labels');
    expect(check.text).toMatch(/ROC-AUC/);
    expect(check.text).toMatch(/AP[\s\S]*recall@50[\s\S]*MRR/); // the metrics' descriptor labels
    const html = readFileSync(join(dir, 'out', 'report.html'), 'utf8');
    expect(html).not.toMatch(/<script/);
    expect(readFileSync(join(dir, 'page.png')).subarray(1, 4).toString()).toBe('PNG');
  });

  it('shows every query id and group in full, in the navigation and the headings', () => {
    const e = check.elements;
    expect(e.navIds).toMatchObject({ count: 3, visible: 3, clipped: 0 });
    expect(e.headings).toMatchObject({ count: 3, visible: 3, clipped: 0 });
    for (const [j, q] of r.tops.entries()) {
      expect(e.navIds!.texts[j]).toBe(`${q.queryId} (${q.group})`);
      expect(e.headings!.texts[j]).toBe(`${q.queryId} group ${q.group}`);
    }
    expect(e.trainIds).toMatchObject({ count: 2 * 3 * K, visible: 2 * 3 * K, clipped: 0 });
  });

  it('lists the most supporting samples (highest scores) beside the most opposing (lowest), with their prompt and response', () => {
    const e = check.elements;
    expect(e.supporting).toMatchObject({ count: 3 * K, visible: 3 * K, clipped: 0 });
    expect(e.opposing).toMatchObject({ count: 3 * K, visible: 3 * K, clipped: 0 });
    const m = r.method.matrix;
    const nTest = m.testIds.length;
    for (const [j, q] of r.tops.entries()) {
      const column = m.trainIds.map((id, i) => ({ id, s: m.values[i * nTest + j]! })).sort((a, b) => a.s - b.s);
      expect(q.bottom.map((t) => t.trainId)).toEqual(column.slice(0, K).map((c) => c.id));
      expect(q.top.map((t) => t.trainId)).toEqual(column.slice(-K).reverse().map((c) => c.id));
      for (const [k, t] of q.top.entries()) {
        const card = e.supporting!.texts[j * K + k]!;
        expect(card).toContain(t.trainId);
        expect(card).toContain(t.prompt);
        expect(card).toContain(t.response);
      }
      for (const [k, t] of q.bottom.entries()) {
        const card = e.opposing!.texts[j * K + k]!;
        expect(card).toContain(t.trainId);
        expect(card).toContain(t.response);
        expect(card).toContain(`#${m.trainIds.length - k}`);
      }
    }
  });

  it('marks the words shared with the output, and the swapped entity in other colours', () => {
    const e = check.elements;
    expect(e.shared!.visible).toBeGreaterThan(0);
    expect(e.swapOut!.visible).toBeGreaterThan(0);
    expect(e.swapIn!.visible).toBe(3); // 'england' in each correction
    expect(e.swapIn!.texts.every((t) => t === 'england')).toBe(true);
    const colours = [e.shared!.backgrounds, e.swapOut!.backgrounds, e.swapIn!.backgrounds];
    for (const c of colours) expect(c).toHaveLength(1);
    expect(new Set(colours.flat()).size).toBe(3);
  });

  it('draws a heat map over the response tokens of each supporting sample, whose values add up to its grad-cos score', () => {
    const t = r.tokens;
    expect(t.kind).toBe('computed');
    if (t.kind !== 'computed') return;
    const e = check.elements;
    let n = 0;
    for (const q of r.tops) for (const s of q.top) n += t.queries.get(q.queryId)!.get(s.trainId)!.pieces.length;
    expect(e.tokens).toMatchObject({ count: n, visible: n, clipped: 0 });
    expect(e.tokens!.backgrounds.length).toBeGreaterThan(3); // graded colours, not one
    expect(e.opposingHeat!.count).toBe(0);
    expect(e.heatSums!.count).toBe(3 * K);
    for (const q of r.tops) {
      for (const s of q.top) {
        const ts = t.queries.get(q.queryId)!.get(s.trainId)!;
        expect(Math.abs(ts.sum - ts.score), `${q.queryId} ${s.trainId}`).toBeLessThan(1e-3 * Math.abs(ts.score) + 1e-4);
      }
    }
    expect(e.heatSums!.texts[0]).toMatch(/^token values add up to [+-]?\d\.\d{3}.* \(grad-cos score at checkpoint-100: [+-]?\d\.\d{3}/);
    expect(check.text).toContain('Token heat maps');
    expect(check.text).toContain('central difference');
  });

  it('says why there is no heat map for a scorer whose score does not split over tokens', async () => {
    const html = await renderAttributionPage({
      title: 't', method: 'bm25 (plain)', units: 'u', matrix: r.method.matrix, tops: r.tops, metrics: null, command: 'dda attribute',
      tokens: { kind: 'omitted', reason: "'bm25' is not one of them, so there is no heat map." },
    });
    expect(html).toContain('&#39;bm25&#39; is not one of them, so there is no heat map.');
    expect(html).not.toContain('class="heat"');
    expect(html).toContain('Most opposing (lowest scores)');
  });
});
