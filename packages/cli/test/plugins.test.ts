import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { run } from './run-cli.js';

const FIXTURES = fileURLToPath(new URL('../../core/test/fixtures/plugins/', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'dda-cli-plugins-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => {
  delete process.env.DDA_PLUGINS;
});

describe('dda --plugin and DDA_PLUGINS', () => {
  it('dda methods names the plugin of every method, built-in ones included', async () => {
    const r = await run(['methods']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/grad-dot\s+\[@dda\/scorer-grad-dot\]/);
    expect(r.out).toMatch(/if-ekfac\s+\[@dda\/scorer-influence\]/);
    expect(r.out).toMatch(/trak\s+\[@dda\/scorer-trak\]/);
    expect(r.out).toMatch(/fitted-beta\s+\[@dda\/plugin-dda\]/);
    expect(r.out).toMatch(/tfjs-wasm\s+\[@dda\/backend-tfjs\]/);
    expect(r.out).toMatch(/onnxruntime-cpu\s+\[@dda\/backend-onnxruntime\]/);
    expect(r.out).toMatch(/tfjs-node\s+\[@dda\/backend-tfjs-node\]/);
    expect(r.out).toMatch(/datasets:\n\s+news\s+\[@dda\/experiment\]\s+synthetic news about places.*\n\s+realtext\s+\[@dda\/experiment\].*\n\s+registry\s+\[@dda\/experiment\]/);
  });

  it('loads plugins from --plugin (repeatable) and DDA_PLUGINS (comma-separated), on any command', async () => {
    process.env.DDA_PLUGINS = join(FIXTURES, 'pkg-plugin');
    const r = await run(['methods', '--plugin', join(FIXTURES, 'fixture-dot.mjs')]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/fixture-dot\s+\[.*fixture-dot\.mjs\]\s+test fixture: gradient inner product/);
    expect(r.out).toMatch(/fixture-last\s+\[.*fixture-dot\.mjs\]/);
    expect(r.out).toMatch(/fixture-keep\s+\[dda-fixture-pkg-plugin\]/);
    // A plugin's scorer is a valid --scorer of demo (the id is checked before any training).
    const d = await run(['demo', '--plugin', join(FIXTURES, 'fixture-dot.mjs'), '--scorer', 'fixture-dot', '--debias', 'nope', '--out', join(tmp, 'demo')]);
    expect(d.code).toBe(1);
    expect(d.err).toMatch(/unknown debiaser 'nope'/);
  });

  it('fails with the plugin and the reason: throws on import, registers nothing, not found', async () => {
    const throws = await run(['methods', '--plugin', join(FIXTURES, 'throws-on-import.mjs')]);
    expect(throws.code).toBe(1);
    expect(throws.err).toMatch(/^dda: --plugin: plugin '.*throws-on-import\.mjs' failed to load: it threw on import: the plugin cannot find its model weights/);
    process.env.DDA_PLUGINS = ` ${join(FIXTURES, 'registers-nothing.mjs')} ,`;
    const nothing = await run(['methods']);
    expect(nothing.code).toBe(1);
    expect(nothing.err).toMatch(/^dda: DDA_PLUGINS: plugin '.*registers-nothing\.mjs' \(.*\) registered nothing/);
    delete process.env.DDA_PLUGINS;
    const missing = await run(['bench', '--plugin', 'dda-plugin-that-is-not-installed']);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain("plugin 'dda-plugin-that-is-not-installed': cannot find the package");
    expect((await run(['methods', '--plugin'])).code).toBe(2);
  });

  it('fails a plugin that takes a built-in id, naming both plugins', async () => {
    const dup = join(tmp, 'takes-grad-dot.mjs');
    writeFileSync(dup, "import { scorers } from '@dda/core';\nscorers.register({ id: 'grad-dot', description: 'mine', priority: 1, create: () => { throw new Error('x'); } });\n");
    const r = await run(['methods', '--plugin', dup]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`plugin '${dup}' registers an id that is taken: scorer 'grad-dot' of plugin '${dup}' is already registered by plugin '@dda/scorer-grad-dot'`);
  });

  it('dda slurm passes --plugin on to the array tasks and the merge job', async () => {
    const out = join(tmp, 'slurm');
    const plugin = join(FIXTURES, 'fixture-dot.mjs');
    const r = await run(['slurm', '--plugin', plugin, '--base', 'b', '--checkpoints', 'c', '--train', 't.jsonl', '--queries', 'q.jsonl', '--scorer', 'fixture-dot', '--out', out, '--shards', '2', '--dry-run']);
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(join(out, 'slurm', 'attribute.sbatch'), 'utf8')).toMatch(new RegExp(`attribute .*--scorer fixture-dot .*--plugin ${plugin}\n`));
    expect(readFileSync(join(out, 'slurm', 'merge.sbatch'), 'utf8')).toContain(`merge --out ${out} --plugin ${plugin}\n`);
  });
});
