import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  DdaError, debiasers, denoisers, isPathSpecifier, loadPlugins, loadedPlugins, parsePluginList, pluginCode, pluginCodeKey, registerAsPlugin, registeredEntries, scorers,
} from '@dda/core';

const FIXTURES = fileURLToPath(new URL('./fixtures/plugins/', import.meta.url));
const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'dda-plugins-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** The DdaError a promise rejects with. */
async function failure(p: Promise<unknown>): Promise<DdaError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(DdaError);
  return e as DdaError;
}

/** A plugin package folder outside node_modules that registers the scorer `id`. */
function writePluginPackage(root: string, name: string, id: string): string {
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name, version: '0.0.0', type: 'module', exports: { '.': './index.mjs' } }));
  writeFileSync(
    join(root, 'index.mjs'),
    `import { scorers } from '@dda/core';\nscorers.register({ id: ${JSON.stringify(id)}, description: 'fixture', priority: 1, create: () => { throw new Error('fixture'); } });\n`,
  );
  return root;
}

describe('loadPlugins', () => {
  it('loads a plugin file by a path relative to cwd, attributes its entries, and loads each module once', async () => {
    const [p] = await loadPlugins(['./fixture-dot.mjs'], { cwd: FIXTURES });
    expect(p?.name).toBe('./fixture-dot.mjs');
    expect(p?.entries.map((e) => `${e.kind}:${e.id}`).sort()).toEqual(['denoiser:fixture-last', 'scorer:fixture-dot']);
    expect(scorers.list().find((e) => e.id === 'fixture-dot')?.plugin).toBe(p?.name);
    expect(denoisers.list().find((e) => e.id === 'fixture-last')?.plugin).toBe(p?.name);
    // The same module again (by another spelling of its path): the first record, no duplicate-id error.
    const [again] = await loadPlugins([join(FIXTURES, 'fixture-dot.mjs')]);
    expect(again).toBe(p);
    expect((await loadedPlugins()).map((x) => x.name)).toContain(p?.name);
  });

  it('loads a plugin package folder by path, named after its package.json', async () => {
    const [p] = await loadPlugins([join(FIXTURES, 'pkg-plugin')]);
    expect(p?.name).toBe('dda-fixture-pkg-plugin');
    expect(debiasers.list().find((e) => e.id === 'fixture-keep')?.plugin).toBe('dda-fixture-pkg-plugin');
  });

  it('resolves a package name from cwd (a user package linked into node_modules)', async () => {
    const project = tmp();
    const pkg = writePluginPackage(join(project, 'packages', 'my-scorer'), 'my-dda-scorer', 'linked-scorer');
    mkdirSync(join(project, 'node_modules'));
    symlinkSync(pkg, join(project, 'node_modules', 'my-dda-scorer'), 'dir');
    const [p] = await loadPlugins(['my-dda-scorer'], { cwd: project });
    expect(p?.name).toBe('my-dda-scorer');
    expect(scorers.list().find((e) => e.id === 'linked-scorer')?.plugin).toBe('my-dda-scorer');
  });

  it('falls back to the installation for a name that cwd does not have, imported through its importer', async () => {
    const installation = tmp();
    const pkg = writePluginPackage(join(installation, 'src-of-plugin'), 'dda-installed-plugin', 'installed-scorer');
    mkdirSync(join(installation, 'node_modules'));
    symlinkSync(pkg, join(installation, 'node_modules', 'dda-installed-plugin'), 'dir');
    const importer = vi.fn((name: string) => import(/* @vite-ignore */ pathToFileURL(join(installation, 'node_modules', name, 'index.mjs')).href));
    const [p] = await loadPlugins(['dda-installed-plugin'], { cwd: tmp(), installation: { url: pathToFileURL(join(installation, 'x.js')).href, importer } });
    expect(importer).toHaveBeenCalledWith('dda-installed-plugin');
    expect(p?.entries).toEqual([{ kind: 'scorer', id: 'installed-scorer', plugin: 'dda-installed-plugin' }]);
    // A package of the installation whose entry is not built: said so when its import fails.
    const unbuilt = join(installation, 'node_modules', 'dda-unbuilt-installed');
    mkdirSync(unbuilt);
    writeFileSync(join(unbuilt, 'package.json'), JSON.stringify({ name: 'dda-unbuilt-installed', type: 'module', main: 'dist/index.js' }));
    const e1 = await failure(loadPlugins(['dda-unbuilt-installed'], { cwd: tmp(), installation: { url: pathToFileURL(join(installation, 'x.js')).href, importer } }));
    expect(e1.message).toContain(`plugin 'dda-unbuilt-installed': the package is installed (${unbuilt}) but its entry file does not exist (build the plugin first`);
    // With resolveFrom 'installation', cwd is not consulted.
    const e = await failure(loadPlugins(['dda-not-there'], { cwd: tmp(), resolveFrom: 'installation', installation: { url: pathToFileURL(join(installation, 'x.js')).href, importer } }));
    expect(e.message).not.toContain('its node_modules');
  });

  it('skips an optional package that is not installed, and still loads or refuses the others', async () => {
    const installation = tmp();
    const pkg = writePluginPackage(join(installation, 'src-of-plugin'), 'dda-optional-present', 'optional-present-scorer');
    mkdirSync(join(installation, 'node_modules'));
    symlinkSync(pkg, join(installation, 'node_modules', 'dda-optional-present'), 'dir');
    const inst = { url: pathToFileURL(join(installation, 'x.js')).href, importer: (name: string) => import(/* @vite-ignore */ pathToFileURL(join(installation, 'node_modules', name, 'index.mjs')).href) };
    const optional = ['dda-optional-absent', 'dda-optional-present'];
    const loaded = await loadPlugins(['dda-optional-absent', 'dda-optional-present'], { cwd: tmp(), resolveFrom: 'installation', installation: inst, optional });
    expect(loaded.map((p) => p.name)).toEqual(['dda-optional-present']);
    // Not optional: the same absence is an error naming the package.
    const e = await failure(loadPlugins(['dda-optional-absent'], { cwd: tmp(), resolveFrom: 'installation', installation: inst }));
    expect(e.message).toContain("cannot find the package 'dda-optional-absent'");
    // Optional but installed and broken (entry not built): still an error.
    const unbuilt = join(installation, 'node_modules', 'dda-optional-unbuilt');
    mkdirSync(unbuilt);
    writeFileSync(join(unbuilt, 'package.json'), JSON.stringify({ name: 'dda-optional-unbuilt', type: 'module', main: 'dist/index.js' }));
    const e2 = await failure(loadPlugins(['dda-optional-unbuilt'], { cwd: tmp(), resolveFrom: 'installation', installation: inst, optional: ['dda-optional-unbuilt'] }));
    expect(e2.message).toContain("plugin 'dda-optional-unbuilt'");
  });

  it('loads a path written without ./ when no package has that name', async () => {
    const [p] = await loadPlugins(['pkg-plugin'], { cwd: FIXTURES });
    expect(p?.name).toBe('dda-fixture-pkg-plugin');
    const [q] = await loadPlugins(['plugins/fixture-dot.mjs'], { cwd: join(FIXTURES, '..') });
    expect(q?.url).toBe(pathToFileURL(join(FIXTURES, 'fixture-dot.mjs')).href);
  });

  it('says where it looked for a package that is not found', async () => {
    const cwd = tmp();
    const e = await failure(loadPlugins(['dda-no-such-plugin'], { cwd, origin: '--plugin' }));
    expect(e.message).toContain("--plugin: plugin 'dda-no-such-plugin': cannot find the package 'dda-no-such-plugin'");
    expect(e.message).toContain(`looked from ${cwd}`);
    expect(e.message).toContain('the dda installation');
    expect(e.message).toContain('npm install dda-no-such-plugin');
  });

  it('names a path that does not exist, a folder without package.json, and an unbuilt package', async () => {
    expect((await failure(loadPlugins(['./nope.mjs'], { cwd: FIXTURES }))).message).toContain(`plugin './nope.mjs': no file or folder at ${join(FIXTURES, 'nope.mjs')}`);
    const bare = tmp();
    expect((await failure(loadPlugins([bare]))).message).toMatch(/has no package\.json/);
    const unbuilt = tmp();
    writeFileSync(join(unbuilt, 'package.json'), JSON.stringify({ name: 'dda-unbuilt', type: 'module', main: 'dist/index.js' }));
    const e = await failure(loadPlugins([unbuilt]));
    expect(e.message).toContain("plugin 'dda-unbuilt': its entry file");
    expect(e.message).toContain('build the plugin first');
  });

  it('reports a plugin that throws on import with its message, and removes what it registered before throwing', async () => {
    const e = await failure(loadPlugins(['./throws-on-import.mjs'], { cwd: FIXTURES }));
    expect(e.message).toContain("plugin './throws-on-import.mjs' failed to load: it threw on import: the plugin cannot find its model weights");
    expect(scorers.has('half-registered')).toBe(false);
  });

  it('reports a plugin that registers nothing', async () => {
    const e = await failure(loadPlugins(['./registers-nothing.mjs'], { cwd: FIXTURES }));
    expect(e.message).toMatch(/plugin '\.\/registers-nothing\.mjs' \(.*registers-nothing\.mjs\) registered nothing/);
    expect(e.message).toContain('scorers.register');
  });

  it('reports an id taken by another plugin, naming both plugins', async () => {
    await loadPlugins(['./fixture-dot.mjs'], { cwd: FIXTURES });
    const e = await failure(loadPlugins(['./duplicate-id.mjs'], { cwd: FIXTURES }));
    expect(e.message).toContain("plugin './duplicate-id.mjs' registers an id that is taken: scorer 'fixture-dot' of plugin './duplicate-id.mjs' is already registered by plugin './fixture-dot.mjs'");
    expect(scorers.list().find((x) => x.id === 'fixture-dot')?.plugin).toBe('./fixture-dot.mjs');
  });

  it('rejects an empty name', async () => {
    expect((await failure(loadPlugins(['  '], { origin: 'DDA_PLUGINS' }))).message).toContain('DDA_PLUGINS: an empty plugin name');
  });
});

describe('registry attribution', () => {
  it('attributes entries to the innermost registerAsPlugin and to none outside it', () => {
    const entry = (id: string) => ({ id, description: id, priority: 0, create: () => ({ id, description: id, debias: (m: never) => m }) });
    registerAsPlugin('outer-plugin', () => {
      debiasers.register(entry('attr-outer'));
      registerAsPlugin('inner-plugin', () => debiasers.register(entry('attr-inner')));
    });
    debiasers.register({ ...entry('attr-none'), plugin: 'claimed-by-the-entry' });
    const byId = new Map(registeredEntries().map((e) => [e.id, e.plugin]));
    expect(byId.get('attr-outer')).toBe('outer-plugin');
    expect(byId.get('attr-inner')).toBe('inner-plugin');
    expect(byId.get('attr-none')).toBeUndefined();
  });
});

describe('plugin lists', () => {
  it('records the code of a plugin loaded by path or package: a hash of its entry, the files it imports by relative path and its package.json', async () => {
    const root = tmp();
    // The same code in two folders (the scorer's id is its folder's name, so both can register), and a third whose helper differs.
    const write = (folder: string, helper: string): string => {
      mkdirSync(join(root, folder, 'lib'), { recursive: true });
      writeFileSync(join(root, folder, 'lib', 'helper.mjs'), helper);
      writeFileSync(join(root, folder, 'index.mjs'), "import { scorers } from '@dda/core';\nimport { SIGN } from './lib/helper.mjs';\n" +
        "const id = new URL('.', import.meta.url).pathname.split('/').filter(Boolean).pop();\n" +
        "scorers.register({ id, description: `sign ${SIGN}`, priority: 1, create: () => { throw new Error('fixture'); } });\n");
      return `./${folder}/index.mjs`;
    };
    const [one, two, three] = await loadPlugins([write('code-one', 'export const SIGN = 1;\n'), write('code-two', 'export const SIGN = 1;\n'), write('code-three', 'export const SIGN = -1;\n')], { cwd: root });
    expect(one?.code?.files).toEqual([join(root, 'code-one', 'index.mjs'), join(root, 'code-one', 'lib', 'helper.mjs')]);
    expect(one?.code?.hash).toMatch(/^[0-9a-f]{16}$/);
    expect(two?.code?.hash).toBe(one?.code?.hash);
    expect(three?.code?.hash).not.toBe(one?.code?.hash);
    expect(one?.code?.version).toBeUndefined();
    // Recorded by plugin name, for the cache keys of what the plugin computes.
    expect(pluginCode('./code-three/index.mjs')).toEqual(three?.code);
    expect(pluginCodeKey('./code-three/index.mjs')).toEqual({ pluginCode: three?.code?.hash });
    expect(pluginCodeKey(undefined)).toEqual({});
    expect(pluginCodeKey('@dda/scorer-not-loaded')).toEqual({});

    // A package: its package.json (with its version) is hashed first.
    const pkg = writePluginPackage(join(root, 'code-pkg'), 'dda-code-pkg', 'code-pkg-scorer');
    const [p] = await loadPlugins([pkg]);
    expect(p?.code?.files).toEqual([join(pkg, 'package.json'), join(pkg, 'index.mjs')]);
    expect(p?.code?.version).toBe('0.0.0');
    expect(pluginCode('dda-code-pkg')?.hash).toBe(p?.code?.hash);

    // Loaded from the installation only (as dda's built-in plugins are): no code, so their keys stay as they were.
    const installation = tmp();
    const inst = writePluginPackage(join(installation, 'src-of-plugin'), 'dda-code-builtin', 'code-builtin-scorer');
    mkdirSync(join(installation, 'node_modules'));
    symlinkSync(inst, join(installation, 'node_modules', 'dda-code-builtin'), 'dir');
    const importer = (name: string): Promise<unknown> => import(/* @vite-ignore */ pathToFileURL(join(installation, 'node_modules', name, 'index.mjs')).href);
    const [b] = await loadPlugins(['dda-code-builtin'], { resolveFrom: 'installation', installation: { url: pathToFileURL(join(installation, 'x.js')).href, importer } });
    expect(b?.entries).toHaveLength(1);
    expect(b?.code).toBeUndefined();
    expect(pluginCodeKey('dda-code-builtin')).toEqual({});
  });

  it('splits DDA_PLUGINS on commas, trimming and dropping empty entries', () => {
    expect(parsePluginList(' a ,@scope/b,, ./c.mjs ,C:\\x\\d.mjs')).toEqual(['a', '@scope/b', './c.mjs', 'C:\\x\\d.mjs']);
    expect(parsePluginList(undefined)).toEqual([]);
  });

  it('tells paths from package names', () => {
    for (const p of ['./a.mjs', '../a', '/abs/a.js', 'file:///a.mjs', '.hidden']) expect(isPathSpecifier(p), p).toBe(true);
    for (const n of ['my-plugin', '@scope/plugin', '@scope/plugin/sub', 'plugin/sub']) expect(isPathSpecifier(n), n).toBe(false);
  });
});
