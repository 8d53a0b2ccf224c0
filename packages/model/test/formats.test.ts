import { describe, expect, it } from 'vitest';
import {
  TINY_PRESETS, WordTokenizer, encodeExample, initDecoderWeights, readSafetensors, writeSafetensors, applyChatTemplate, type DecoderConfig,
} from '@dda/model';

const config: DecoderConfig = { ...TINY_PRESETS['llama2-tiny']!, vocabSize: 40, hiddenSize: 16, intermediateSize: 24, numHeads: 2, numKvHeads: 2 };

describe('safetensors', () => {
  it('round-trips weights bit-identically, with metadata', () => {
    const w = initDecoderWeights(config, 7);
    const bytes = writeSafetensors(w, { format: 'pt' });
    const back = readSafetensors(bytes, 'model.safetensors');
    expect(back.metadata).toEqual({ format: 'pt' });
    expect([...back.tensors.keys()]).toEqual([...w.keys()]);
    for (const [k, t] of w) {
      expect(back.tensors.get(k)!.shape).toEqual(t.shape);
      expect(Buffer.from(back.tensors.get(k)!.data.buffer).equals(Buffer.from(t.data.buffer))).toBe(true);
    }
  });

  it('explains truncated and malformed files', () => {
    const bytes = writeSafetensors(initDecoderWeights(config, 7));
    expect(() => readSafetensors(bytes.subarray(0, bytes.length - 10), 'x.safetensors')).toThrow(/x\.safetensors: not a valid safetensors file: tensor '.*' ends at byte \d+ .*truncated/);
    expect(() => readSafetensors(bytes.subarray(0, 5), 'x.safetensors')).toThrow(/shorter than the 8-byte header length/);
    const bad = Uint8Array.from(bytes);
    bad[8] = 0x5b; // '[' makes the header a JSON array or invalid JSON
    expect(() => readSafetensors(bad, 'x.safetensors')).toThrow(/header is not (JSON|a JSON object)/);
    const huge = Uint8Array.from(bytes);
    new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
    expect(() => readSafetensors(huge, 'x.safetensors')).toThrow(/header length \d+ does not fit/);
  });

  it('reads F16 and BF16 tensors', () => {
    const header = JSON.stringify({ a: { dtype: 'F16', shape: [2], data_offsets: [0, 4] }, b: { dtype: 'BF16', shape: [1], data_offsets: [4, 6] } });
    const pad = header + ' '.repeat((8 - ((8 + header.length) % 8)) % 8);
    const buf = new Uint8Array(8 + pad.length + 6);
    const dv = new DataView(buf.buffer);
    dv.setBigUint64(0, BigInt(pad.length), true);
    buf.set(new TextEncoder().encode(pad), 8);
    const o = 8 + pad.length;
    dv.setUint16(o, 0x3c00, true); // 1.0 in F16
    dv.setUint16(o + 2, 0xc000, true); // -2.0 in F16
    dv.setUint16(o + 4, 0x4049, true); // 3.140625 in BF16
    const t = readSafetensors(buf, 'h.safetensors').tensors;
    expect(Array.from(t.get('a')!.data)).toEqual([1, -2]);
    expect(t.get('b')!.data[0]).toBeCloseTo(3.140625, 6);
  });
});

describe('word tokenizer and instruction encoding', () => {
  const tok = WordTokenizer.fromCorpus(['the cat sat .', 'the dog sat on the mat .']);

  it('builds a deterministic vocabulary (frequency, then alphabetical) after the special tokens', () => {
    expect(tok.vocab.slice(8)).toEqual(['the', '.', 'sat', 'cat', 'dog', 'mat', 'on']);
    expect(WordTokenizer.fromJSON(JSON.parse(JSON.stringify(tok.toJSON()))).vocab).toEqual(tok.vocab);
  });

  it('takes the loss over the response and EOS only', () => {
    const e = encodeExample(tok, 'the cat', 'sat .', 16, 's1');
    expect(Array.from(e.tokens)).toEqual([2, 8, 11, 10, 9, 3]);
    expect(Array.from(e.lossMask)).toEqual([0, 0, 1, 1, 1]);
  });

  it('rejects over-long and empty responses with the sample id', () => {
    expect(() => encodeExample(tok, 'the cat sat on the mat', 'the dog', 5, 's2')).toThrow(/sample 's2': 10 tokens, longer than the model's context of 5 tokens/);
    expect(() => encodeExample(tok, 'the', '', 16, 's3')).toThrow(/sample 's3': empty response/);
  });

  it('maps unknown words to <unk> and reports them', () => {
    expect(tok.encode('the zebra')).toEqual([8, 1]);
    expect(tok.unknownWords('the zebra sat')).toEqual(['zebra']);
  });

  it('applies the chat template with newlines as tokens', () => {
    const p = applyChatTemplate('sys .', 'Document: a\n\nSummary:');
    expect(p).toBe('<|system|> sys . <|user|> Document: a\n\nSummary: <|assistant|>');
  });
});
