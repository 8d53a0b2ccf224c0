import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { datasetPlugin } from '@dda/core';
import { benchRunOptions, checkIds, loadBenchConfig, parseBenchConfig, runBench, runOptionsFor } from '@dda/harness';

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
  it('takes scorerOptions by scorer id: passed to the runs (in their cache keys), a typo or a scorer not run refused', async () => {
    const c = loadBenchConfig(file('so.yaml', 'scorers: [grad-dot, datainf, trak]\nscorerOptions:\n  datainf: { damping: 0.01 }\n  trak: { projectionDim: 512, solver: dual }\n'));
    expect(c.scorerOptions).toEqual({ datainf: { damping: 0.01 }, trak: { projectionDim: 512, solver: 'dual' } });
    await checkIds(c, 'bench');
    expect(benchRunOptions(c, join(dir, 'artifacts'), 'loss')).toMatchObject({ measurement: 'loss', scorerOptions: { datainf: { damping: 0.01 }, trak: { projectionDim: 512, solver: 'dual' } } });
    // Absent: the runs' options (and so every cache key) as before the key existed.
    expect(parseBenchConfig({}, 'defaults').scorerOptions).toBeUndefined();
    expect(benchRunOptions(parseBenchConfig({}, 'defaults'), 'a', 'loss')).not.toHaveProperty('scorerOptions');
    await expect(checkIds(parseBenchConfig({ scorers: ['datainf'], scorerOptions: { datainf: { dampnig: 0.01 } } }, 'so2'), 'bench')).rejects.toThrow(/scorerOptions: scorer 'datainf' has no option 'dampnig' \(did you mean 'damping'\?/);
    await expect(checkIds(parseBenchConfig({ scorers: ['trak'], scorerOptions: { trak: { solver: 'lu' } } }, 'so3'), 'bench')).rejects.toThrow(/scorerOptions: scorer 'trak': trak: option 'solver' must be/);
    expect(() => parseBenchConfig({ scorers: ['grad-dot'], scorerOptions: { datainf: { damping: 0.01 } } }, 'so4')).toThrow("so4: scorerOptions has options of scorer 'datainf', which the configuration does not run");
    expect(() => parseBenchConfig({ scorerOptions: { 'grad-dot': { blockRows: [1] } } }, 'so5')).toThrow(/field 'scorerOptions\.grad-dot\.blockRows'/);
    // The ablation's scorer takes its options too.
    await checkIds(parseBenchConfig({ ablation: { scorer: 'datainf' }, scorerOptions: { datainf: { damping: 0.01 } } }, 'so6'), 'ablation');
  });
  it('extends another configuration: objects merged key by key, lists and values replaced, paths resolved against the file that gives them; cycles refused', () => {
    const sub = join(dir, 'parents');
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, 'parent.yaml'), 'name: parent\nseeds: [0, 1, 2]\nplugins: [./p.mjs]\ntraining:\n  finetuneEpochs: 4\n  batchSize: 8\ndata:\n  nTrain: 50\n  dataFile: data/x.jsonl\n  canaries:\n    - { orig: England, replacement: China }\n');
    const c = loadBenchConfig(file('child.yaml', 'extends: parents/parent.yaml\nname: child\nseeds: [3]\ntraining:\n  finetuneEpochs: 2\nlds: { subsets: 8 }\n'));
    expect([c.name, c.seeds, c.training.finetuneEpochs, c.training.batchSize, c.data.nTrain, c.lds.subsets]).toEqual(['child', [3], 2, 8, 50, 8]);
    expect(c.data.dataFile).toBe(join(sub, 'data/x.jsonl'));
    expect(c.plugins).toEqual([join(sub, 'p.mjs')]);
    // Two levels: the grandchild changes what the child kept.
    expect(loadBenchConfig(file('grandchild.yaml', 'extends: child.yaml\ndata: { nTrain: 20 }\n')).data).toMatchObject({ nTrain: 20, dataFile: join(sub, 'data/x.jsonl') });
    // The repository's own: the real-text configuration extended changes only what it names.
    const configs = fileURLToPath(new URL('../../../benchmarks/configs/', import.meta.url));
    const base = loadBenchConfig(join(configs, 'realtext.yaml'));
    const ext = loadBenchConfig(file('rt.yaml', `extends: ${join(configs, 'realtext.yaml')}\nmetrics: [auc, recall, lds]\n`));
    expect({ ...ext, metrics: base.metrics }).toEqual(base);
    writeFileSync(join(dir, 'loop-a.yaml'), 'extends: loop-b.yaml\n');
    writeFileSync(join(dir, 'loop-b.yaml'), 'extends: loop-a.yaml\n');
    expect(() => loadBenchConfig(join(dir, 'loop-a.yaml'))).toThrow(/loop-b\.yaml: extends '.*loop-a\.yaml', which extends it back \(.*loop-a\.yaml → .*loop-b\.yaml → .*loop-a\.yaml\)/);
    expect(() => loadBenchConfig(file('bad-ext.yaml', 'extends: [a.yaml]\n'))).toThrow(/bad-ext\.yaml: field 'extends' must be the path of another configuration/);
    expect(() => loadBenchConfig(file('no-parent.yaml', 'extends: missing.yaml\n'))).toThrow(/cannot read config file '.*missing\.yaml' \(extended by .*no-parent\.yaml\)/);
    // A parent that is not a configuration, an error in a parent, and null removing an inherited key.
    writeFileSync(join(dir, 'list.json'), '[1, 2]');
    expect(() => loadBenchConfig(file('ext-list.yaml', 'extends: list.json\n'))).toThrow(/ext-list\.yaml: extends '.*list\.json', which holds a list, not a configuration/);
    writeFileSync(join(dir, 'empty.yaml'), '');
    expect(() => loadBenchConfig(file('ext-empty.yaml', 'extends: empty.yaml\n'))).toThrow(/which holds nothing, not a configuration/);
    writeFileSync(join(dir, 'typo-parent.json'), '{"scorrers": ["grad-dot"]}');
    expect(() => loadBenchConfig(file('typo-child.json', '{"extends": "typo-parent.json"}'))).toThrow(/typo-child\.json \(with what it extends: .*typo-parent\.json\): invalid benchmark configuration:.*\n.*scorrers/);
    const registry = join(configs, 'registry.yaml');
    expect(() => loadBenchConfig(file('news-from-registry.yaml', `extends: ${registry}\ndata: { generator: news }\n`))).toThrow(/data\.registry holds options of the registry generator/);
    const news = loadBenchConfig(file('news-from-registry2.yaml', `extends: ${registry}\ndata: { generator: news, registry: null }\nplainOnly: null\n`));
    expect([news.data.generator, news.data.registry, news.plainOnly]).toEqual(['news', undefined, parseBenchConfig({}, 'defaults').plainOnly]);
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
  it('chooses the data generator: news by default, registry with its own options', async () => {
    expect(parseBenchConfig({}, 'defaults').data.generator).toBe('news');
    const c = loadBenchConfig(file('r.yaml', 'data:\n  generator: registry\n  registry:\n    distractorRate: 0.1\n    handoverRate: 0.5\n'));
    expect(c.data.generator).toBe('registry');
    expect(c.data.registry).toEqual({ distractorRate: 0.1, handoverRate: 0.5 });
    // Any kebab-case id parses (a plugin may register it); the check after the plugins load refuses an unknown one.
    expect(() => parseBenchConfig({ data: { generator: 'Pets!' } }, 'i')).toThrow(/field 'data\.generator'/);
    const pets = parseBenchConfig({ data: { generator: 'pets' } }, 'i');
    await expect(checkIds(pets, 'bench')).rejects.toThrow(/unknown data generator 'pets'/);
    await expect(checkIds(pets, 'bench')).rejects.toMatchObject({ hint: expect.stringMatching(/choose one of: news, realtext, registry/) });
    await expect(runBench(pets, join(dir, 'out-pets'))).rejects.toThrow(/unknown data generator 'pets'/);
    expect(() => parseBenchConfig({ data: { registry: { distractorRate: 0.1 } } }, 'j')).toThrow(/j: data\.registry holds options of the registry generator, but data\.generator is 'news'/);
    expect(() => parseBenchConfig({ data: { generator: 'registry', registry: { distractors: 3 } } }, 'k')).toThrow(/distractors/);
    // data.options: the same options, checked by the data set's plugin; passed on as datasetOptions.
    const generic = parseBenchConfig({ data: { generator: 'registry', options: { distractorRate: 0.1, handoverRate: 0.5 } } }, 'k2');
    await checkIds(generic, 'bench');
    expect(runOptionsFor(generic, 'llama2-tiny', 0, '/tmp/a').datasetOptions).toEqual({ distractorRate: 0.1, handoverRate: 0.5 });
    await expect(checkIds(parseBenchConfig({ data: { generator: 'registry', options: { distractors: 3 } } }, 'k3'), 'bench')).rejects.toThrow(/data\.options of data set 'registry': unknown option 'distractors'/);
    await expect(checkIds(parseBenchConfig({ data: { generator: 'registry', options: { distractorRate: 2 } } }, 'k4'), 'bench')).rejects.toThrow(/option 'distractorRate' must be a number from 0 to 1, got 2/);
    await expect(checkIds(parseBenchConfig({ data: { options: { distractorRate: 0.1 } } }, 'k5'), 'bench')).rejects.toThrow(/data set 'news': unknown option 'distractorRate'/);
    expect(() => parseBenchConfig({ data: { generator: 'registry', options: {}, registry: { distractorRate: 0.1 } } }, 'k6')).toThrow(/k6: data\.options and data\.registry \(its alias\) are both given/);
    expect(() => parseBenchConfig({ data: { options: {}, dataFile: 'x.jsonl', canaries: [{ orig: 'a', replacement: 'b' }] } }, 'k7')).toThrow(/k7: data\.options holds options of the data set 'news', but data\.dataFile gives the data/);
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
  it('every committed configuration passes the check after its plugins load, its data set options as before (data.registry / data.realtext)', async () => {
    const root = fileURLToPath(new URL('../../../benchmarks/configs/', import.meta.url));
    const files = [...readdirSync(root).filter((f) => /\.(ya?ml|json)$/.test(f)), ...readdirSync(join(root, 'conditions')).map((f) => join('conditions', f))];
    expect(files.length).toBeGreaterThanOrEqual(10);
    for (const f of files) {
      const c = loadBenchConfig(join(root, f));
      await checkIds(c, 'bench');
      const o = runOptionsFor(c, c.families[0] as string, 0, '/tmp/a');
      expect(o.datasetOptions).toBeUndefined();
      // The alias reaches the experiment as before, and its plugin reads every value unchanged.
      const alias = c.data.registry ?? c.data.realtext;
      expect(o.registry ?? o.realtext).toEqual(alias);
      expect(datasetPlugin(c.data.generator).parseOptions(alias ?? {}, f)).toEqual(alias ?? {});
    }
  });
  it('reads the committed registry benchmark: three families, three seeds, the contrastive measurement first', () => {
    const c = loadBenchConfig(fileURLToPath(new URL('../../../benchmarks/configs/registry.yaml', import.meta.url)));
    expect(c.families).toEqual(['llama2-tiny', 'qwen2-tiny', 'mistral-tiny']);
    expect(c.seeds).toEqual([0, 1, 2]);
    expect(c.data.generator).toBe('registry');
    expect(c.measurements[0]).toBe('contrastive');
  });
});
