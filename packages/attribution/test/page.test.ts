import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPageInBrowser } from '@dda/report';
import { contentWords, highlight, runAttribute, type AttributeResult } from '@dda/attribution';
import { makeUserRun } from './fixtures/user-run.js';

// The HTML page of `dda attribute`, opened in headless Chromium (Debian's chromium, playwright-core).
const dir = mkdtempSync(join(tmpdir(), 'dda-page-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let r: AttributeResult;
beforeAll(async () => {
  const u = makeUserRun(join(dir, 'user'), 40, 3);
  const labels = join(dir, 'labels.json');
  writeFileSync(labels, JSON.stringify({ a: ['t3'], b: ['t0', 't6'] }));
  r = await runAttribute({ base: u.base, checkpoints: [u.run], train: u.train, queries: u.queries, labels, out: join(dir, 'out'), topK: 5, method: { scorer: 'grad-cos', debias: 'fitted-beta', denoise: 'zscore-mean', beta: 1 } });
});

describe('the attribution page', () => {
  it('highlights the words a training sample shares with the output, escaped', () => {
    expect([...contentWords('The council met in England; the <b>budget</b>.')].sort()).toEqual(['budget', 'council', 'england', 'met']);
    expect(highlight('a <council> met', new Set(['council']))).toBe('a &lt;<mark>council</mark>&gt; met');
  });

  it('opens offline in Chromium: every query with its top samples, a score histogram each, the labels\' metrics', async () => {
    const page = join(dir, 'out', 'report.html');
    const check = await checkPageInBrowser(page, { screenshot: { path: join(dir, 'page.png'), fullPage: false } });
    expect(check.requests).toEqual([]);
    expect(check.consoleErrors).toEqual([]);
    expect(check.charts.map((c) => c.id)).toEqual(['q0-scores', 'q1-scores', 'q2-scores']);
    for (const c of check.charts) expect(c.marks, c.id).toBeGreaterThan(3); // histogram bars and the cut-off rule
    for (const q of r.tops) {
      expect(check.text).toContain(q.queryId);
      expect(check.text).toContain(q.top[0]!.trainId);
    }
    expect(check.text).toContain('Against the labels');
    expect(check.text).toMatch(/ROC-AUC/);
    expect(check.text).toMatch(/AP[\s\S]*Recall@50[\s\S]*RR \(MRR\)/);
    const html = readFileSync(page, 'utf8');
    expect(html).not.toMatch(/<script/);
    expect(html).toContain('<mark>'); // the queries copy training samples: shared words are highlighted
    expect(readFileSync(join(dir, 'page.png')).subarray(1, 4).toString()).toBe('PNG');
  });
});
