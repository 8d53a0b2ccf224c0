import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { createTree } from '@nx/devkit/testing';
import { readJson, type Tree } from '@nx/devkit';
import { describe, expect, it } from 'vitest';
import { datasetGenerator, debiaserGenerator, denoiserGenerator, engineGenerator, metricGenerator, nextSteps, pluginGenerator, scorerGenerator } from '@dda/nx-plugin';

/** An in-memory tree shaped like the dda workspace (what the generator looks for). */
function workspaceTree(): Tree {
  const tree = createTree();
  tree.write('tsconfig.base.json', '{ "compilerOptions": { "strict": true } }');
  tree.write('packages/core/package.json', JSON.stringify({ name: '@dda/core', version: '0.3.1' }));
  tree.write('tsconfig.build.json', JSON.stringify({ files: [], references: [{ path: 'packages/core' }, { path: 'packages/harness' }, { path: 'packages/cli' }] }));
  return tree;
}

const text = (tree: Tree, path: string): string => tree.read(path, 'utf-8') ?? '';

/** Runs an nx generator entry point for `name` on a workspace tree: the tree, the package's folder and its src/index.ts. */
function generated(generator: (tree: Tree, schema: { name: string }) => unknown, kind: string, name: string): { tree: Tree; dir: string; src: string } {
  const tree = workspaceTree();
  expect(typeof generator(tree, { name })).toBe('function');
  const dir = `plugins/${kind}-${name}`;
  expect(tree.children(dir).sort()).toEqual(['README.md', 'package.json', 'src', 'test', 'tsconfig.json']);
  const src = text(tree, `${dir}/src/index.ts`);
  expect(src).not.toMatch(/<%|%>/);
  return { tree, dir, src };
}

describe('the scorer generator', () => {
  it('in the dda workspace: plugins/scorer-<name>, project references, and a place in tsconfig.build.json', () => {
    const tree = workspaceTree();
    const made = pluginGenerator(tree, 'scorer', { name: 'my-scorer' });
    expect(made).toEqual({ kind: 'scorer', id: 'my-scorer', directory: 'plugins/scorer-my-scorer', packageName: '@dda/scorer-my-scorer', inWorkspace: true });
    const dir = 'plugins/scorer-my-scorer';
    expect(tree.children(dir).sort()).toEqual(['README.md', 'package.json', 'src', 'test', 'tsconfig.json']);
    const pkg = readJson(tree, `${dir}/package.json`);
    expect(pkg).toMatchObject({
      name: '@dda/scorer-my-scorer', type: 'module', main: 'dist/index.js',
      exports: { '.': { types: './dist/index.d.ts', default: './dist/index.js' } },
      dependencies: { '@dda/core': '0.3.1' }, devDependencies: { '@dda/conformance': '0.3.1' }, scripts: { build: 'tsc -b' },
    });
    expect(readJson(tree, `${dir}/tsconfig.json`)).toEqual({
      extends: '../../tsconfig.base.json',
      compilerOptions: { rootDir: 'src', outDir: 'dist', tsBuildInfoFile: 'dist/.tsbuildinfo' },
      include: ['src'],
      references: [{ path: '../../packages/core' }, { path: '../../packages/conformance' }],
    });
    expect(readJson<{ references: { path: string }[] }>(tree, 'tsconfig.build.json').references.map((r) => r.path)).toEqual(['packages/core', dir, 'packages/harness', 'packages/cli']);
    const src = text(tree, `${dir}/src/index.ts`);
    expect(src).toContain("export const MY_SCORER_ID = 'my-scorer';");
    expect(src).toContain('export function myScorerScores(train: GradientMatrix, test: GradientMatrix): Float64Array');
    expect(src).toContain('scorers.register({ id: MY_SCORER_ID');
    expect(src).toMatch(/Sign: higher = training sample more responsible/);
    expect(src).not.toMatch(/<%|%>/);
    const test = text(tree, `${dir}/test/my-scorer.test.ts`);
    expect(test).toContain("import { scorerConformance } from '@dda/conformance/vitest';");
    expect(test).toContain("scorerConformance('my-scorer');");
    expect(text(tree, `${dir}/README.md`)).toContain('dda bench --plugin ./plugins/scorer-my-scorer --scorers my-scorer');
  });

  it('is what docs/plugins.md shows as the full example, file for file', () => {
    const tree = workspaceTree();
    tree.write('packages/core/package.json', JSON.stringify({ name: '@dda/core', version: '0.1.0' }));
    pluginGenerator(tree, 'scorer', { name: 'my-scorer' });
    const doc = readFileSync(fileURLToPath(new URL('../../../docs/plugins.md', import.meta.url)), 'utf8');
    for (const f of ['package.json', 'tsconfig.json', 'src/index.ts', 'test/my-scorer.test.ts', 'README.md']) {
      expect(doc.includes(text(tree, `plugins/scorer-my-scorer/${f}`).replace(/\n+$/, '')), `docs/plugins.md shows another ${f}; paste the generator's`).toBe(true);
    }
  });

  it('anywhere else: a standalone package with npm dependencies and its own compiler options', () => {
    const tree = createTree();
    const made = pluginGenerator(tree, 'scorer', { name: 'rel-dot', packageName: '@me/rel-dot', directory: 'methods/rel-dot/', description: 'my method' });
    expect(made).toMatchObject({ directory: 'methods/rel-dot', packageName: '@me/rel-dot', inWorkspace: false });
    const pkg = readJson(tree, 'methods/rel-dot/package.json');
    expect(pkg).toMatchObject({ name: '@me/rel-dot', description: 'my method', dependencies: { '@dda/core': '^0.1.0' }, scripts: { build: 'tsc -p tsconfig.json', test: 'vitest run' } });
    expect(Object.keys(pkg.devDependencies).sort()).toEqual(['@dda/conformance', '@types/node', 'typescript', 'vitest']);
    const ts = readJson(tree, 'methods/rel-dot/tsconfig.json');
    expect(ts.extends).toBeUndefined();
    expect(ts.compilerOptions).toMatchObject({ strict: true, noUncheckedIndexedAccess: true, module: 'NodeNext', rootDir: 'src', outDir: 'dist' });
    expect(tree.exists('tsconfig.build.json')).toBe(false);
    expect(nextSteps(made)).toBe('next: cd methods/rel-dot && npm install && npm run build && npm test, then from here: dda bench --plugin ./methods/rel-dot --scorers rel-dot grad-dot --seeds 0 --out bench   # its rows in bench/bench.csv');
  });

  it('refuses an id that is not kebab-case and a folder that is not empty', () => {
    expect(() => pluginGenerator(createTree(), 'scorer', { name: 'My_Scorer' })).toThrow(/'My_Scorer' is not kebab-case/);
    const tree = createTree();
    tree.write('dda-scorer-taken/index.js', '');
    expect(() => pluginGenerator(tree, 'scorer', { name: 'taken' })).toThrow(/dda-scorer-taken already exists and is not empty/);
  });
});

describe('--description', () => {
  /** The value of the first `<name> = '...'` or `toBe('...')` string literal in `src`, as TypeScript reads it. */
  const literal = (src: string, before: string): string => {
    const at = src.indexOf(before);
    expect(at, `${before} in the generated file`).toBeGreaterThanOrEqual(0);
    const out = ts.transpileModule(`export const v = ${/^('(?:[^'\\]|\\.)*')/.exec(src.slice(at + before.length))?.[1] ?? 'undefined'};`, { compilerOptions: { module: ts.ModuleKind.CommonJS } }).outputText;
    const m = { exports: {} as { v?: string } };
    new Function('module', 'exports', out)(m, m.exports);
    return m.exports.v as string;
  };
  const given = 'Shapley-style scores: it\'s "exact" on */ small sets \\ and ∑ sums';

  for (const [kind, registry, register] of [['scorer', 'scorers', 'const DESCRIPTION = '], ['debiaser', 'debiasers', 'description: '], ['denoiser', 'denoisers', 'description: ']] as const) {
    it(`reaches the ${kind}'s registered description, its TSDoc and its test, as valid TypeScript`, () => {
      const tree = workspaceTree();
      pluginGenerator(tree, kind, { name: 'shap', description: given });
      const src = text(tree, `plugins/${kind}-shap/src/index.ts`);
      const test = text(tree, `plugins/${kind}-shap/test/shap.test.ts`);
      // Registered: the registration's string literal reads back as the text given.
      const registration = kind === 'scorer' ? src : src.slice(src.lastIndexOf(`${registry}.register(`));
      expect(literal(registration, register)).toBe(given);
      // The TSDoc says it (its lines joined), without ending the comment early.
      expect(src.replace(/\n \* /g, ' ')).toContain(` * What it is (the description it registers, shown by \`dda methods\`): Shapley-style scores: it's "exact" on *\\/ small sets \\ and ∑ sums\n`);
      // The test checks the registry for it.
      expect(test).toContain(`expect(${registry}.entry('shap').description).toBe(`);
      expect(literal(test, `expect(${registry}.entry('shap').description).toBe(`)).toBe(given);
      for (const file of [src, test]) {
        const r = ts.transpileModule(file, { reportDiagnostics: true, compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
        expect(r.diagnostics?.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))).toEqual([]);
      }
      expect(readJson(tree, `plugins/${kind}-shap/package.json`).description).toBe(given);
    });
  }

  it('without it, the template method\'s description is registered and tested', () => {
    const tree = workspaceTree();
    pluginGenerator(tree, 'denoiser', { name: 'late' });
    const expected = 'epoch-weighted mean over the epoch checkpoints, later epochs weigh more (w_i ∝ epoch_i)';
    const src = text(tree, 'plugins/denoiser-late/src/index.ts');
    expect(literal(src.slice(src.lastIndexOf('denoisers.register(')), 'description: ')).toBe(expected);
    expect(literal(text(tree, 'plugins/denoiser-late/test/late.test.ts'), "expect(denoisers.entry('late').description).toBe(")).toBe(expected);
  });
});

describe('the debiaser and denoiser generators', () => {
  it('register the method in its registry and run its conformance suite; the nx entry points return the next steps', () => {
    const tree = workspaceTree();
    const after = [scorerGenerator(tree, { name: 'a-scorer' }), debiaserGenerator(tree, { name: 'scaled' }), denoiserGenerator(tree, { name: 'late' })];
    expect(after.every((f) => typeof f === 'function')).toBe(true);
    const deb = text(tree, 'plugins/debiaser-scaled/src/index.ts');
    expect(deb).toContain('debiasers.register({');
    expect(deb).toContain("create: (options) => createScaled(numberOption(options, 'beta', 1)),");
    expect(text(tree, 'plugins/debiaser-scaled/test/scaled.test.ts')).toContain("debiaserConformance('scaled');");
    const den = text(tree, 'plugins/denoiser-late/src/index.ts');
    expect(den).toContain('denoisers.register({');
    expect(text(tree, 'plugins/denoiser-late/test/late.test.ts')).toContain("denoiserConformance('late');");
    expect(text(tree, 'plugins/denoiser-late/README.md')).toContain('dda demo --plugin ./plugins/denoiser-late --denoise late');
  });
});

describe('the metric generator', () => {
  it('registers a documented metric in the metrics registry, runs its conformance suite, and says where a benchmark names it', () => {
    const { tree, dir, src } = generated(metricGenerator, 'metric', 'p-at-10');
    expect(src).toContain("export const P_AT10_ID = 'p-at-10';");
    expect(src).toContain('metrics.register({ id: P_AT10_ID');
    expect(src).toContain('options: [], create: () => METRIC'); // declared, so a misspelt --metrics option is refused
    expect(src).toMatch(/higher = better/);
    expect(text(tree, `${dir}/test/p-at-10.test.ts`)).toContain("metricConformance('p-at-10');");
    const readme = text(tree, `${dir}/README.md`);
    expect(readme).toContain('dda bench --plugin ./plugins/metric-p-at-10 --metrics auc recall p-at-10');
    expect(readme).toContain('`metrics: [auc, recall, p-at-10]`');
    expect(readme).not.toMatch(/its sign \(higher = training sample/);
  });
});

describe('the dataset generator', () => {
  it('registers a documented data set in the datasets registry, runs its conformance suite, and says how a benchmark names it', () => {
    const { tree, dir, src } = generated(datasetGenerator, 'dataset', 'towns');
    expect(src).toContain("export const TOWNS_ID = 'towns';");
    expect(src).toContain('registerDataset(DATASET);');
    expect(src).toMatch(/CEA's rule/);
    expect(text(tree, `${dir}/test/towns.test.ts`)).toContain("datasetConformance('towns');");
    expect(text(tree, `${dir}/README.md`)).toContain('`data: { generator: towns }`');
  });
});

describe('the engine generator', () => {
  it('registers a delegating engine in the engines registry of @dda/model, each method of the contract written out, and runs the engine suite against the PyTorch references', () => {
    const { tree, dir, src } = generated(engineGenerator, 'engine', 'my-engine');
    expect(readJson(tree, `${dir}/package.json`)).toMatchObject({
      name: '@dda/engine-my-engine',
      dependencies: { '@dda/core': '0.3.1', '@dda/model': '0.3.1' },
      devDependencies: { '@dda/conformance': '0.3.1', '@dda/backend-onnxruntime': '0.3.1', '@dda/backend-tfjs': '0.3.1' },
    });
    expect(readJson(tree, `${dir}/tsconfig.json`).references).toEqual([{ path: '../../packages/core' }, { path: '../../packages/model' }, { path: '../../packages/conformance' }]);
    expect(src).toContain("export const MY_ENGINE_ID = 'my-engine';");
    expect(src).toContain('export const DELEGATE: string | null = null;');
    expect(src).toContain('engines.register({ id: MY_ENGINE_ID, description: DESCRIPTION, priority: PRIORITY, create: (o) => startMyEngine(o) });');
    expect(src).toMatch(/IT STARTS AS A DELEGATE/);
    // Every method of the contract, written out with its TSDoc, forwarding to the delegate.
    for (const m of ['weights', 'setWeights', 'loss', 'logits', 'hiddenStates', 'gradientLayout', 'forEachGradientRow', 'generate', 'train', 'release']) {
      expect(src, m).toMatch(new RegExp(`\\*/\\n  ${m}\\([^)]*\\)[^{]*\\{\\n    return this\\.inner\\.${m}\\(`));
    }
    const test = text(tree, `${dir}/test/my-engine.test.ts`);
    expect(test).toContain("engineConformance('my-engine', { start: { backends: BACKENDS }, references: decoderFixtureReferences() });");
    const readme = text(tree, `${dir}/README.md`);
    expect(readme).toContain('**It starts as a delegate**');
    expect(readme).toContain('`gradientEngine: my-engine`');
    expect(readme).toContain('`--engine my-engine`');
    for (const file of [src, test]) {
      const r = ts.transpileModule(file, { reportDiagnostics: true, compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
      expect(r.diagnostics?.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))).toEqual([]);
    }
  });

  it('--delegate names the engine it delegates to by default; refused for itself, a non-kebab id, or another kind', () => {
    const tree = workspaceTree();
    pluginGenerator(tree, 'engine', { name: 'via-tfjs', delegate: 'tfjs' });
    expect(text(tree, 'plugins/engine-via-tfjs/src/index.ts')).toContain("export const DELEGATE: string | null = 'tfjs';");
    expect(text(tree, 'plugins/engine-via-tfjs/README.md')).toContain('forwards to an engine already registered (`tfjs`)');
    expect(() => pluginGenerator(workspaceTree(), 'engine', { name: 'loop', delegate: 'loop' })).toThrow(/'loop' cannot delegate to itself/);
    expect(() => pluginGenerator(workspaceTree(), 'engine', { name: 'e', delegate: 'Onnx' })).toThrow(/'Onnx' \(--delegate\) is not kebab-case/);
    expect(() => pluginGenerator(workspaceTree(), 'scorer', { name: 's', delegate: 'tfjs' })).toThrow(/--delegate is an option of the engine generator/);
  });
});

describe('nx g @dda/nx-plugin:<kind> (the real nx command line, dry run)', () => {
  it.each([['scorer', 'probe-scorer', []], ['engine', 'probe-engine', ['--delegate', 'tfjs']]] as const)('finds the %s generator through generators.json and lists the files it would write', (kind, name, extra) => {
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const r = spawnSync(process.execPath, [createRequire(import.meta.url).resolve('nx/bin/nx.js'), 'g', `@dda/nx-plugin:${kind}`, name, ...extra, '--dry-run', '--no-interactive'], {
      cwd: root, encoding: 'utf8', env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false' },
    });
    const out = (r.stdout + r.stderr).replace(/\u001b\[[0-9;]*m/g, '');
    expect(r.status, out).toBe(0);
    for (const f of ['README.md', 'package.json', 'tsconfig.json', 'src/index.ts', `test/${name}.test.ts`]) expect(out).toContain(`CREATE plugins/${kind}-${name}/${f}`);
    expect(out).toContain('UPDATE tsconfig.build.json');
    expect(out).toContain('no changes were made');
  }, 120_000);
});
