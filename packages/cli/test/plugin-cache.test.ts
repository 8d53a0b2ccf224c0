// A plugin's code is part of the cache keys of what it computes (a changed plugin file in the same
// --out is recomputed, an unchanged one reused and said so), and `dda attribute --scorer-option`
// sets a scorer's options (a key the scorer does not take refused), end to end in child processes:
// each run imports the plugin file afresh, as a user's successive commands do.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeExperiment, type Experiment } from '@dda/experiment';
import { run } from './run-cli.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CLI = join(ROOT, 'packages/cli/bin/dda.js');
// dda's own @dda/core (the plugin file lies outside the workspace, where the package name does not resolve).
const CORE = pathToFileURL(join(ROOT, 'packages/core/dist/index.js')).href;
const TINY = { seed: 1, nPretrain: 200, pretrainEpochs: 1, nTrain: 24, nHeldOut: 8, finetuneEpochs: 2 };

let dir: string;
let exp: Experiment;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dda-plugin-cache-'));
  exp = await makeExperiment({ ...TINY, artifactsDir: join(dir, 'exp') });
  mkdirSync(join(dir, 'plugins'));
}, 600_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A gradient scorer plugin: sign × the gradient inner product with unit-length training gradients (the newcomer's my-scorer), its helper in a second file. */
function writePlugin(sign: 1 | -1): void {
  writeFileSync(join(dir, 'plugins', 'sign.mjs'), `export const SIGN = ${sign};\n`);
  writeFileSync(join(dir, 'plugins', 'my-scorer.mjs'), `import { createScoreMatrix, scorers } from '${CORE}';
import { SIGN } from './sign.mjs';
const myScorer = {
  id: 'my-scorer',
  description: 'grad-dot with unit training gradients (higher = more responsible)',
  needs: ['gradients'],
  async score(input) {
    const train = await input.trainGradients();
    const test = await input.testGradients();
    const nTest = test.rows.length;
    const values = new Float64Array(train.rows.length * nTest);
    train.rows.forEach((a, i) => {
      let n = 0; for (let k = 0; k < a.length; k++) n += a[k] * a[k]; n = Math.sqrt(n);
      test.rows.forEach((b, j) => { let d = 0; for (let k = 0; k < a.length; k++) d += a[k] * b[k]; values[i * nTest + j] = n ? SIGN * d / n : 0; });
    });
    return createScoreMatrix(train.ids, test.ids, values, { method: 'my-scorer', computedOver: 'unit train grads', checkpoints: [input.checkpoint], transforms: [] });
  },
};
scorers.register({ id: myScorer.id, description: myScorer.description, priority: 0, create: () => myScorer });
`);
}

/** `dda attribute` in `dir` (the plugin path relative to it) into `out`; its exit status, stderr and scores.npy's values. */
function attribute(out: string, extra: readonly string[]): { status: number | null; err: string; scores: number[] } {
  const r = spawnSync(process.execPath, [CLI, 'attribute', '--base', exp.files.base, '--checkpoints', exp.files.run, '--train', exp.files.train, '--queries', exp.files.queries,
    '--debias', 'none', '--denoise', 'none', '--top-k', '3', '--progress', 'none', '--out', join(dir, out), ...extra], { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) return { status: r.status, err: r.stderr, scores: [] };
  const npy = readFileSync(join(dir, out, 'scores.npy'));
  const start = 10 + npy.readUInt16LE(8);
  const values = new Float64Array(npy.buffer.slice(npy.byteOffset + start, npy.byteOffset + npy.length));
  return { status: r.status, err: r.stderr, scores: [...values] };
}

describe('plugin code in the cache keys', () => {
  it('a plugin file changed between two runs in the same --out is recomputed (the new scores); unchanged, its stored scores are reused and the log says so', () => {
    const plugin = ['--plugin', './plugins/my-scorer.mjs', '--scorer', 'my-scorer'];
    const reusedLine = 'scores of my-scorer reused from an earlier run (plugin ./plugins/my-scorer.mjs, code unchanged)';
    writePlugin(1);
    const first = attribute('ap', plugin);
    expect(first.status, first.err).toBe(0);
    expect(first.scores.length).toBeGreaterThan(0);
    expect(first.scores.some((v) => v !== 0)).toBe(true);
    expect(first.err).not.toContain('reused from an earlier run');

    const again = attribute('ap', plugin);
    expect(again.status, again.err).toBe(0);
    expect(again.scores).toEqual(first.scores);
    expect(again.err).toContain(reusedLine);

    // Only the imported helper changes (the sign): the entry file is the same, the scores are recomputed.
    writePlugin(-1);
    const flipped = attribute('ap', plugin);
    expect(flipped.status, flipped.err).toBe(0);
    expect(flipped.err).not.toContain('reused from an earlier run');
    expect(flipped.scores).toEqual(first.scores.map((v) => -v));
    // A fresh --out gives the same as the changed plugin in the old one.
    const fresh = attribute('ap-fresh', plugin);
    expect(fresh.scores).toEqual(flipped.scores);

    // A built-in scorer's stored scores are reused without that line (its keys have no plugin code).
    expect(attribute('ap', ['--scorer', 'grad-dot']).status).toBe(0);
    const builtIn = attribute('ap', ['--scorer', 'grad-dot']);
    expect(builtIn.status, builtIn.err).toBe(0);
    expect(builtIn.err).not.toContain('reused from an earlier run');
  }, 600_000);
});

describe('dda attribute --scorer-option', () => {
  it('sets an option of --scorer (its scores change, and so does the cache key), refuses a key the scorer does not take, a bad value and a malformed entry', () => {
    const plain = attribute('bm25', ['--scorer', 'bm25']);
    expect(plain.status, plain.err).toBe(0);
    const k1 = attribute('bm25', ['--scorer', 'bm25', '--scorer-option', 'k1=0.2', '--scorer-option', 'documents=response']);
    expect(k1.status, k1.err).toBe(0);
    expect(k1.scores).toHaveLength(plain.scores.length);
    expect(k1.scores).not.toEqual(plain.scores);
    // The command recorded in summary.json carries the options.
    expect(readFileSync(join(dir, 'bm25', 'summary.json'), 'utf8')).toContain('--scorer-option k1=0.2 --scorer-option documents=response');

    const typo = attribute('bm25', ['--scorer', 'bm25', '--scorer-option', 'k2=0.2']);
    expect(typo.status).toBe(1);
    expect(typo.err).toContain("--scorer-option: scorer 'bm25' has no option 'k2' (did you mean 'k1'? the options of bm25 are k1, b, documents");
    const bad = attribute('bm25', ['--scorer', 'bm25', '--scorer-option', 'documents=everything']);
    expect(bad.status).toBe(1);
    expect(bad.err).toMatch(/--scorer-option: scorer 'bm25': .*documents/);
    const malformed = attribute('bm25', ['--scorer', 'bm25', '--scorer-option', 'k1']);
    expect(malformed.status).toBe(1);
    expect(malformed.err).toContain('--scorer-option k1: not key=value');
  }, 600_000);

  it('is carried to dda slurm\'s array tasks, and a typo is refused before anything is submitted', async () => {
    const out = join(dir, 'slurm');
    const args = ['slurm', '--base', 'b', '--checkpoints', 'c', '--train', 't.jsonl', '--queries', 'q.jsonl', '--scorer', 'datainf', '--shards', '2', '--dry-run'];
    const r = await run([...args, '--out', out, '--scorer-option', 'damping=0.01', '--scorer-option', 'dampingRatio=0.2']);
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(join(out, 'slurm', 'attribute.sbatch'), 'utf8')).toMatch(/attribute .*--scorer datainf .*--scorer-option damping=0\.01 dampingRatio=0\.2/);
    const typo = await run([...args, '--out', join(dir, 'slurm-typo'), '--scorer-option', 'dampnig=0.01']);
    expect(typo.code).toBe(1);
    expect(typo.err).toContain("--scorer-option: scorer 'datainf' has no option 'dampnig' (did you mean 'damping'?");
  });
});
