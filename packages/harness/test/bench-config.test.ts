import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadBenchConfig, parseBenchConfig, runBench, runOptionsFor } from '@dda/harness';

const dir = mkdtempSync(join(tmpdir(), 'dda-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('benchmark configuration', () => {
  it('fills every default', () => {
    const c = parseBenchConfig({}, 'defaults');
    expect(c.families).toEqual(['llama2-tiny']);
    expect(c.seeds).toEqual([0, 1, 2]);
    expect(c.training.finetuneEpochs).toBe(3);
    expect(c.dda[0]).toEqual({ name: 'dda', debiaser: 'raw', denoiser: 'mean', beta: 1 });
    expect(c.ablation.betas).toEqual([0, 0.25, 0.5, 1, 2]);
  });
  it('reads the same configuration from YAML and JSON, and resolves data files against the config folder', () => {
    const y = loadBenchConfig(file('a.yaml', 'name: mini\nfamilies: [llama2-tiny]\nseeds: [4, 5]\ndata:\n  nTrain: 50\n  dataFile: data/x.jsonl\n  canaries:\n    - { orig: England, replacement: China }\n'));
    const j = loadBenchConfig(file('a.json', JSON.stringify({ name: 'mini', families: ['llama2-tiny'], seeds: [4, 5], data: { nTrain: 50, dataFile: 'data/x.jsonl', canaries: [{ orig: 'England', replacement: 'China' }] } })));
    expect(y).toEqual(j);
    expect(y.data.dataFile).toBe(join(dir, 'data/x.jsonl'));
    expect(y.seeds).toEqual([4, 5]);
  });
  it('resolves plugin paths against the config folder and leaves package names alone; a plugin that cannot load stops the run before training', async () => {
    const c = loadBenchConfig(file('p.yaml', 'plugins: [./my-plugin.mjs, ../elsewhere/p, my-dda-plugin, "@me/dda-plugin", /abs/p.mjs]\n'));
    expect(c.plugins).toEqual([join(dir, 'my-plugin.mjs'), join(dir, '../elsewhere/p'), 'my-dda-plugin', '@me/dda-plugin', '/abs/p.mjs']);
    expect(parseBenchConfig({}, 'defaults').plugins).toEqual([]);
    const t0 = Date.now();
    await expect(runBench(c, join(dir, 'out'))).rejects.toThrow(`plugins: of the benchmark configuration: plugin '${join(dir, 'my-plugin.mjs')}': no file or folder at ${join(dir, 'my-plugin.mjs')}`);
    expect(Date.now() - t0).toBeLessThan(30_000);
  });
  it('names the file and the field of every mistake', () => {
    expect(() => loadBenchConfig(file('b.json', '{"seeds": [0, "one"]}'))).toThrow(/b\.json: invalid benchmark configuration:\nfield 'seeds\.1'/);
    expect(() => loadBenchConfig(file('c.yaml', 'training:\n  finetuneEpochs: -2\n'))).toThrow(/field 'training\.finetuneEpochs'/);
    expect(() => loadBenchConfig(file('d.json', '{"famlies": ["llama2-tiny"]}'))).toThrow(/famlies/);
    expect(() => loadBenchConfig(file('e.json', '{"seeds": [0,'))).toThrow(/e\.json: not valid JSON/);
    expect(() => loadBenchConfig(file('f.yaml', 'seeds: [0, 1\n'))).toThrow(/f\.yaml: not valid YAML/);
    expect(() => loadBenchConfig(join(dir, 'missing.yaml'))).toThrow(/cannot read config file/);
    expect(() => parseBenchConfig({ data: { dataFile: 'x.jsonl' } }, 'g')).toThrow(/data\.dataFile needs data\.canaries/);
    expect(() => parseBenchConfig({ training: { finetuneEpochs: 2 }, ablation: { checkpoints: [3] } }, 'h')).toThrow(/N=3, but fine-tuning has 2 epochs/);
  });
  it('chooses the data generator: news by default, registry with its own options', () => {
    expect(parseBenchConfig({}, 'defaults').data.generator).toBe('news');
    const c = loadBenchConfig(file('r.yaml', 'data:\n  generator: registry\n  registry:\n    distractorRate: 0.1\n    handoverRate: 0.5\n'));
    expect(c.data.generator).toBe('registry');
    expect(c.data.registry).toEqual({ distractorRate: 0.1, handoverRate: 0.5 });
    expect(() => parseBenchConfig({ data: { generator: 'pets' } }, 'i')).toThrow(/field 'data\.generator'/);
    expect(() => parseBenchConfig({ data: { registry: { distractorRate: 0.1 } } }, 'j')).toThrow(/j: data\.registry holds options of the registry generator, but data\.generator is 'news'/);
    expect(() => parseBenchConfig({ data: { generator: 'registry', registry: { distractors: 3 } } }, 'k')).toThrow(/distractors/);
    expect(() => parseBenchConfig({ data: { generator: 'registry', dataFile: 'x.jsonl', canaries: [{ orig: 'a', replacement: 'b' }] } }, 'l')).toThrow(/l: data\.dataFile and data\.generator 'registry' are both given/);
  });
  it('takes data.summaryPadding for the synthetic generators only', () => {
    const padded = parseBenchConfig({ data: { summaryPadding: 2 } }, 'm');
    expect(padded.data.summaryPadding).toBe(2);
    expect(runOptionsFor(padded, 'llama2-tiny', 0, '/tmp/a').summaryPadding).toBe(2);
    expect('summaryPadding' in runOptionsFor(parseBenchConfig({}, 'defaults'), 'llama2-tiny', 0, '/tmp/a')).toBe(false);
    expect(parseBenchConfig({}, 'defaults').data.summaryPadding).toBeUndefined();
    expect(() => parseBenchConfig({ data: { summaryPadding: -1 } }, 'n')).toThrow(/field 'data\.summaryPadding'/);
    expect(() => parseBenchConfig({ data: { summaryPadding: 1, dataFile: 'x.jsonl', canaries: [{ orig: 'a', replacement: 'b' }] } }, 'o')).toThrow(/o: data\.summaryPadding pads the synthetic summaries, but data\.dataFile gives the data/);
  });
  it('reads the committed registry benchmark: three families, three seeds, the contrastive measurement first', () => {
    const c = loadBenchConfig(fileURLToPath(new URL('../../../benchmarks/configs/registry.yaml', import.meta.url)));
    expect(c.families).toEqual(['llama2-tiny', 'qwen2-tiny', 'mistral-tiny']);
    expect(c.seeds).toEqual([0, 1, 2]);
    expect(c.data.generator).toBe('registry');
    expect(c.measurements[0]).toBe('contrastive');
  });
});
