import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BENCH_COLUMNS } from '@dda/harness';
import { run } from './run-cli.js';

// `dda ablate` runs over one scorer (ablation.scorer): `--scorers grad-cos` used to be accepted and
// silently ablate grad-dot, with every row labelled grad-dot.
describe('dda ablate: which scorer it runs over', () => {
  const dirs: string[] = [];
  const tmp = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'dda-ablate-'));
    dirs.push(d);
    return d;
  };
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('refuses --scorers, naming the flag that sets the ablated scorer', async () => {
    const out = tmp();
    const r = await run(['ablate', '--config', 'benchmarks/configs/tiny.json', '--seeds', '0', '--scorers', 'grad-cos', '--out', out]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--scorers grad-cos sets the leaderboard's scorers/);
    expect(r.err).toMatch(/pass --scorer grad-cos/);
  });

  it('ablates the scorer given with --scorer, and every row says so', async () => {
    const out = tmp();
    const r = await run(['ablate', '--config', 'benchmarks/configs/tiny.json', '--seeds', '0', '--scorer', 'grad-cos', '--out', out, '--quiet']);
    expect(r.code, r.err).toBe(0);
    const [head, ...lines] = readFileSync(join(out, 'tiny-ablation.csv'), 'utf8').trim().split('\n');
    const col = (head ?? '').split(',').indexOf('scorer');
    expect(col).toBe(BENCH_COLUMNS.indexOf('scorer'));
    expect(lines.length).toBeGreaterThan(0);
    expect(new Set(lines.map((l) => l.split(',')[col]))).toEqual(new Set(['grad-cos']));
    const summary = JSON.parse(readFileSync(join(out, 'tiny-ablation-summary.json'), 'utf8')) as { config: { ablation: { scorer: string } }; paired: { reference: string; n: number; minPValue: number; unit: string }[] };
    expect(summary.config.ablation.scorer).toBe('grad-cos');
    // The recommended DDA is a row of every ablation, and the paired tests are against it and plain (`neither`), over 1 cell here.
    expect(lines.some((l) => l.split(',')[BENCH_COLUMNS.indexOf('method')] === 'dda-recommended')).toBe(true);
    expect(new Set(summary.paired.map((p) => p.reference))).toEqual(new Set(['dda-recommended', 'neither']));
    expect(summary.paired.every((p) => p.n === 1 && p.minPValue === 1 && /family × seed cell/.test(p.unit))).toBe(true);
    expect(r.out).toContain('too few runs for an interval (n = 1)');
  }, 180_000);
});
