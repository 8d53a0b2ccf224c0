import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run as cli } from './run-cli.js';
import { makeUserRun, type UserRun } from '../../attribution/test/fixtures/user-run.js';

// dda attribute --projection-dim on the tiny user run (12 training samples, 3 queries).
const dir = mkdtempSync(join(tmpdir(), 'dda-projection-attribute-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let u: UserRun;
beforeAll(() => {
  u = makeUserRun(join(dir, 'user'), 12, 3);
});
const args = (): string[] => ['attribute', '--base', u.base, '--checkpoints', u.run, '--train', u.train, '--queries', u.queries, '--scorer', 'trackstar', '--quiet'];

describe('dda attribute --projection-dim', () => {
  it('scores on projected gradient rows, says so in summary.json, and differs from the unprojected run; another seed gives other scores', async () => {
    const full = await cli([...args(), '--out', join(dir, 'full')]);
    expect(full.code, full.err).toBe(0);
    const p = await cli([...args(), '--projection-dim', '128', '--out', join(dir, 'p')]);
    expect(p.code, p.err).toBe(0);
    const s = JSON.parse(readFileSync(join(dir, 'p', 'summary.json'), 'utf8'));
    expect(s.projection).toMatchObject({ kind: 'rademacher', dim: 128, seed: 0 });
    expect(JSON.parse(readFileSync(join(dir, 'full', 'summary.json'), 'utf8')).projection).toBeNull();
    const scores = (d: string): string => readFileSync(join(dir, d, 'topk.csv'), 'utf8');
    expect(scores('p')).not.toBe(scores('full'));
    const other = await cli([...args(), '--projection-dim', '128', '--projection-seed', '5', '--out', join(dir, 'p5')]);
    expect(other.code, other.err).toBe(0);
    expect(scores('p5')).not.toBe(scores('p'));
    const bad = await cli([...args(), '--projection-dim', '0', '--out', join(dir, 'bad')]);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('--projection-dim must be a positive integer, got 0');
  }, 300_000);

  it('with grad-dot (whose heat maps split the full gradients\' product) writes every output and says why there is no heat map', async () => {
    const g = await cli([...args().filter((a) => a !== 'trackstar' && a !== '--scorer' && a !== '--quiet'), '--projection-dim', '128', '--progress', 'log', '--out', join(dir, 'g')]);
    expect(g.code, g.err).toBe(0);
    expect(g.err).toContain('token heat maps: none (the scores are over gradients projected to 128 dimensions)');
    expect(readFileSync(join(dir, 'g', 'report.html'), 'utf8')).toContain('projected to 128 dimensions (--projection-dim)');
  }, 300_000);

  it('--index reads the training gradients from gradient indexes (one per checkpoint), takes their projection, and refuses another --projection-dim', async () => {
    for (const cp of ['base', 'checkpoint-50', 'checkpoint-100']) {
      const b = await cli(['index', 'build', '--base', u.base, '--checkpoints', u.run, '--checkpoint', cp, '--train', u.train, '--out', join(dir, `idx-${cp}`), '--dim', '256', '--seed', '2', '--quiet']);
      expect(b.code, b.err).toBe(0);
    }
    const indexes = ['base', 'checkpoint-50', 'checkpoint-100'].flatMap((cp) => ['--index', join(dir, `idx-${cp}`)]);
    const base = args().filter((a) => a !== 'trackstar' && a !== '--scorer' && a !== '--quiet');
    const r = await cli([...base, ...indexes, '--progress', 'log', '--out', join(dir, 'i')]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/training gradients read from 3 gradient indexes, not computed: base ← .*idx-base/);
    const s = JSON.parse(readFileSync(join(dir, 'i', 'summary.json'), 'utf8'));
    expect(s.projection).toMatchObject({ kind: 'rademacher', dim: 256, seed: 2 });
    expect(s.indexes.used).toHaveLength(3);
    expect(s.gradients.readFromIndexes).toBe(3);
    expect(readFileSync(join(dir, 'i', 'report.html'), 'utf8')).toContain('projected to 256 dimensions (--index)');
    const bad = await cli([...base, ...indexes, '--projection-dim', '128', '--out', join(dir, 'ibad')]);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain("--projection-dim / --projection-seed ask for another projection than the indexes' (seed: asked 0, the indexes 2; dim: asked 128, the indexes 256)");
    const seedOnly = await cli([...base, ...indexes, '--projection-seed', '2', '--out', join(dir, 'ibad2')]);
    expect(seedOnly.code).not.toBe(0);
    expect(seedOnly.err).toContain("--projection-seed 2 has no effect without --projection-dim (drop it: with --index the run takes the indexes' projection");
  }, 300_000);
});
