// Plugins made by the generator outside the workspace (a scorer, a metric, a data set and an
// engine), built against the workspace's packages (no network: node_modules links stand in for
// `npm install`), loaded by the built CLI with --plugin, benchmarked on a tiny configuration (the
// scorer's and metric's benchmark computes its gradients on the engine plugin), and found in the
// CSV. Runs the built CLI (`npm test` builds first).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPlugins } from '@dda/core';
import { DATASET_CHECKS, ENGINE_CHECKS, METRIC_CHECKS, SCORER_CHECKS, assertConformance, checkEngine, checkMetric, checkScorer, decoderFixtureReferences, formatReport } from '@dda/conformance';
import { ensurePlugins } from '@dda/attribution';
import { BENCH_COLUMNS } from '@dda/harness';
import { generatePluginInto } from '@dda/nx-plugin';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = join(ROOT, 'packages/cli/dist/main.js');
/**
 * Smaller than benchmarks/configs/tiny.json (60 training samples, 300 pretraining texts: about half
 * its CPU time) and still with test errors for seed 0, so the CSV has rows. The gradients, losses
 * and representations come from the engine plugin (training stays on the default engine, so the
 * model and its test errors are those of the default).
 */
const CONFIG = {
  name: 'ext', families: ['llama2-tiny'], scorers: ['ext-scorer'], seeds: [0], metrics: ['auc', 'recall', 'ext-metric'], gradientEngine: 'ext-engine',
  data: { nTrain: 60, nHeldOut: 16, nPretrain: 300 }, training: { pretrainEpochs: 2, finetuneEpochs: 2 }, k: 10,
};

function run(args: string[], cwd: string): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out, err })));
}

/** What `npm install` would put in node_modules, as links into this workspace (an engine's also @dda/model and the built-in engines it can delegate to). */
function linkDependencies(pkg: string, engine = false): void {
  for (const [name, target] of [
    ['@dda/core', 'packages/core'],
    ['@dda/conformance', 'packages/conformance'],
    ['@types/node', 'node_modules/@types/node'],
    ['vitest', 'node_modules/vitest'],
    ...(engine ? [['@dda/model', 'packages/model'], ['@dda/backend-onnxruntime', 'plugins/backend-onnxruntime'], ['@dda/backend-tfjs', 'plugins/backend-tfjs']] as const : []),
  ] as const) {
    mkdirSync(join(pkg, 'node_modules', scopeOf(name)), { recursive: true });
    symlinkSync(join(ROOT, target), join(pkg, 'node_modules', name), 'dir');
  }
}
const scopeOf = (name: string): string => (name.includes('/') ? (name.split('/')[0] as string) : '.');

describe('a plugin generated outside the workspace', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'dda-external-plugin-'));
  let pkg: string;
  let metricPkg: string;
  let datasetPkg: string;
  let enginePkg: string;
  let dataBench: { code: number | null; out: string; err: string };
  let bench: { code: number | null; out: string; err: string };
  beforeAll(async () => {
    expect(relative(ROOT, tmp).startsWith('..')).toBe(true);
    pkg = generatePluginInto(tmp, 'scorer', { name: 'ext-scorer' }).path;
    metricPkg = generatePluginInto(tmp, 'metric', { name: 'ext-metric' }).path;
    datasetPkg = generatePluginInto(tmp, 'dataset', { name: 'ext-data' }).path;
    enginePkg = generatePluginInto(tmp, 'engine', { name: 'ext-engine' }).path;
    for (const p of [pkg, metricPkg, datasetPkg, enginePkg]) {
      linkDependencies(p, p === enginePkg);
      const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: p, encoding: 'utf8' });
      expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0);
    }
    // From the user's folder: the plugin by a path relative to it, a tiny benchmark with one seed.
    writeFileSync(join(tmp, 'ext.json'), JSON.stringify(CONFIG));
    bench = await run([MAIN, 'bench', '--config', 'ext.json', '--plugin', './dda-scorer-ext-scorer', '--plugin', './dda-metric-ext-metric', '--plugin', './dda-engine-ext-engine', '--out', 'out', '--format', 'latex'], tmp);
    // The data set plugin named in a config (plugins: and data.generator), with injected test errors (the template's data are too easy to hallucinate on).
    writeFileSync(join(tmp, 'ext-data.json'), JSON.stringify({
      name: 'extdata', families: ['llama2-tiny'], scorers: ['grad-dot', 'bm25'], seeds: [0], plugins: ['./dda-dataset-ext-data'], testErrors: 'injected', minErrorsPerSource: 2,
      data: { generator: 'ext-data', nTrain: 64, nHeldOut: 8, nPretrain: 200 }, training: { pretrainEpochs: 2, finetuneEpochs: 2 }, k: 10,
    }));
    dataBench = await run([MAIN, 'bench', '--config', 'ext-data.json', '--out', 'data-out'], tmp);
  }, 300_000);
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('builds, and its own test (conformance suite and exact case) passes', () => {
    // One test per conformance check and the template's own tests: its registered description and an
    // exact case (an engine: its description and priority, and two checks of its delegate).
    for (const [p, checks, own] of [[pkg, SCORER_CHECKS, 2], [metricPkg, METRIC_CHECKS, 2], [datasetPkg, DATASET_CHECKS, 2], [enginePkg, ENGINE_CHECKS, 3]] as const) {
      const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run'], { cwd: p, encoding: 'utf8' });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      const n = checks.length + own;
      expect(r.stdout.replace(/\u001b\[[0-9;]*m/g, '')).toMatch(new RegExp(`Tests\\s+${n} passed \\(${n}\\)`));
    }
  }, 120_000);

  it('passes the conformance suite when loaded with loadPlugins', async () => {
    const [p] = await loadPlugins([pkg]);
    expect(p?.name).toBe('dda-scorer-ext-scorer');
    const report = await checkScorer('ext-scorer');
    expect(report.plugin).toBe('dda-scorer-ext-scorer');
    expect(() => assertConformance(report), formatReport(report)).not.toThrow();
    await loadPlugins([metricPkg]);
    const metric = await checkMetric('ext-metric');
    expect(metric.plugin).toBe('dda-metric-ext-metric');
    expect(() => assertConformance(metric), formatReport(metric)).not.toThrow();
    await ensurePlugins(); // the built-in engines, which dda loads before any plugin: the engine's delegates
    await loadPlugins([enginePkg]);
    const engine = await checkEngine('ext-engine', { presets: ['llama2-tiny'], start: { backends: ['onnxruntime-cpu'] }, references: decoderFixtureReferences() });
    expect(engine.plugin).toBe('dda-engine-ext-engine');
    expect(() => assertConformance(engine), formatReport(engine)).not.toThrow();
  });

  it('runs in dda bench with --plugin: its rows are in the CSV, its gradients from the engine plugin', () => {
    expect(bench.code, bench.err).toBe(0);
    expect(bench.out + bench.err).toMatch(/ext-engine: delegates to the engine 'onnxruntime' \(onnxruntime-cpu/);
    const lines = readFileSync(join(tmp, 'out', 'ext.csv'), 'utf8').trim().split('\n');
    // The metric plugin's column follows the harness's own, which names no metric plugin.
    expect(lines[0]).toBe([...BENCH_COLUMNS, 'ext-metric'].join(','));
    const col = (name: (typeof BENCH_COLUMNS)[number] | 'ext-metric'): number => [...BENCH_COLUMNS, 'ext-metric'].indexOf(name);
    const rows = lines.slice(1).map((l) => l.split(','));
    expect(new Set(rows.map((r) => r[col('method')]))).toEqual(new Set(['ext-scorer', 'dda(ext-scorer)', 'dda-zscore(ext-scorer)', 'dda-recommended(ext-scorer)']));
    const plain = rows.filter((r) => r[col('method')] === 'ext-scorer');
    expect(plain.map((r) => r[col('source')])).toContain('average');
    for (const r of plain) {
      expect(r[col('scorer')]).toBe('ext-scorer');
      expect(Number(r[col('n_train')])).toBe(60);
      const auc = Number(r[col('auc')]);
      expect(auc >= 0 && auc <= 100, r.join(',')).toBe(true);
      const p10 = Number(r[col('ext-metric')]);
      expect(p10 >= 0 && p10 <= 1 && r[col('ext-metric')] !== '', r.join(',')).toBe(true);
    }
    expect(readFileSync(join(tmp, 'out', 'ext-summary.csv'), 'utf8').split('\n')[0]).toMatch(/,ext-metric_mean,ext-metric_low,ext-metric_high$/);
    // The report: a column of the LaTeX summary under the metric's label (its id, the template sets none) and a chart of its own.
    expect(readFileSync(join(tmp, 'out', 'ext-summary.tex'), 'utf8')).toMatch(/^method & .* & recall@\d+ \(all\) & ext-metric \(all\) \\\\$/m);
    expect(readFileSync(join(tmp, 'out', 'ext-report.html'), 'utf8')).toContain('id="chart-metric-ext-metric"');
  });

  it('benchmarks on the generated data set named in a config: its rows are in the CSV', () => {
    expect(dataBench.code, dataBench.err).toBe(0);
    const lines = readFileSync(join(tmp, 'data-out', 'extdata.csv'), 'utf8').trim().split('\n');
    const sources = new Set(lines.slice(1).map((l) => l.split(',')[BENCH_COLUMNS.indexOf('source')]));
    expect(sources).toContain('paris-to-rome');
    expect(dataBench.out + dataBench.err).toMatch(/data: 64 training samples, 8 held-out documents, 200 pretraining texts; true sources \{"paris-to-rome":\d+\}/);
  });

  it('is listed by dda methods with its plugin', async () => {
    const r = await run([MAIN, 'methods', '--plugin', pkg, '--plugin', metricPkg, '--plugin', datasetPkg, '--plugin', enginePkg], tmp);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/ext-scorer\s+\[dda-scorer-ext-scorer\]\s+gradient inner product with unit-length training gradients/);
    expect(r.out).toMatch(/ext-metric\s+\[dda-metric-ext-metric\]\s+precision at 10/);
    expect(r.out).toMatch(/ext-data\s+\[dda-dataset-ext-data\]\s+weather reports about towns/);
    expect(r.out).toMatch(/engines:\n(?:  .*\n)*  ext-engine\s+\[dda-engine-ext-engine\]\s+a delegate \(for now\)/);
  });
});
