// Property-based fuzzing of every parser of user input: each must either accept the input or throw
// a DdaError (a message that says what to change), never another exception, and never hang.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DdaError } from '@dda/core';
import { loadDocSummaryCsv, loadDocSummaryJsonl } from '@dda/dataset-hallucination';
import { parseAdapterConfig, parseHfConfig, readSafetensors, writeSafetensors } from '@dda/model';
import { parseBenchConfig } from '@dda/harness';

const RUNS = 300;

/** Runs `f`; returns 'ok' or 'dda-error', and rethrows anything else (which fails the property). */
async function outcome(f: () => unknown): Promise<'ok' | 'dda-error'> {
  try {
    await f();
    return 'ok';
  } catch (e) {
    if (e instanceof DdaError && e.message.length > 0) return 'dda-error';
    throw e;
  }
}

const jsonValue = fc.jsonValue({ maxDepth: 3 });
const row = fc.record({ id: fc.option(fc.oneof(fc.string(), fc.integer()), { nil: undefined }), document: fc.oneof(fc.string(), fc.constant(null)), summary: fc.string() }, { requiredKeys: [] });

describe('fuzzing the parsers (fast-check)', () => {
  it('JSON Lines data sets: arbitrary text and arbitrary records', async () => {
    await fc.assert(fc.asyncProperty(fc.string({ maxLength: 300 }), async (text) => {
      await outcome(() => loadDocSummaryJsonl(text, 'fuzz.jsonl'));
    }), { numRuns: RUNS });
    await fc.assert(fc.asyncProperty(fc.array(fc.oneof(row, jsonValue), { maxLength: 6 }), async (records) => {
      const text = records.map((r) => JSON.stringify(r) ?? 'undefined').join('\n');
      const r = await outcome(() => loadDocSummaryJsonl(text, 'fuzz.jsonl'));
      // Accepted only if every line is an object with non-empty string document and summary.
      const valid = records.length > 0 && records.every((x) => x !== null && typeof x === 'object' && !Array.isArray(x)
        && typeof (x as Record<string, unknown>).document === 'string' && typeof (x as Record<string, unknown>).summary === 'string');
      if (!valid) expect(r).toBe('dda-error');
    }), { numRuns: RUNS });
  });

  it('CSV data sets: arbitrary text', async () => {
    const csvish = fc.array(fc.constantFrom('id', 'document', 'summary', ',', '"', '\n', '\r\n', 'a', ' ', '""'), { maxLength: 40 }).map((a) => a.join(''));
    await fc.assert(fc.asyncProperty(fc.oneof(fc.string({ maxLength: 200 }), csvish), async (text) => {
      await outcome(() => loadDocSummaryCsv(text, 'fuzz.csv'));
    }), { numRuns: RUNS });
  });

  it('safetensors: arbitrary bytes, and valid files with corrupted headers or truncated data', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), async (bytes) => {
      await outcome(() => readSafetensors(bytes, 'fuzz.safetensors'));
    }), { numRuns: RUNS });
    const valid = writeSafetensors(new Map([['w', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }]]), { note: 'x' });
    await fc.assert(fc.asyncProperty(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 }), fc.nat(valid.length), async (at, byte, cut) => {
      const b = valid.slice(0, cut === 0 ? valid.length : cut);
      if (at < b.length) b[at] = byte;
      await outcome(() => readSafetensors(b, 'fuzz.safetensors'));
    }), { numRuns: RUNS });
    // A header that lies about the data: every mismatch is a DdaError.
    await fc.assert(fc.asyncProperty(jsonValue, async (header) => {
      const h = new TextEncoder().encode(JSON.stringify(header) ?? 'null');
      const buf = new Uint8Array(8 + h.length + 16);
      new DataView(buf.buffer).setBigUint64(0, BigInt(h.length), true);
      buf.set(h, 8);
      await outcome(() => readSafetensors(buf, 'fuzz.safetensors'));
    }), { numRuns: RUNS });
  });

  it('Hugging Face config.json and PEFT adapter_config.json: arbitrary JSON and mutated valid configs', async () => {
    const base = { architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 50, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2, intermediate_size: 24, rope_theta: 10000, rms_norm_eps: 1e-5, max_position_embeddings: 64, hidden_act: 'silu', tie_word_embeddings: false };
    expect(await outcome(() => parseHfConfig(base))).toBe('ok');
    await fc.assert(fc.asyncProperty(jsonValue, async (v) => {
      await outcome(() => parseHfConfig(v));
      await outcome(() => parseAdapterConfig(v));
    }), { numRuns: RUNS });
    await fc.assert(fc.asyncProperty(fc.constantFrom(...Object.keys(base)), jsonValue, async (key, v) => {
      await outcome(() => parseHfConfig({ ...base, [key]: v }));
    }), { numRuns: RUNS });
  });

  it('benchmark configurations: arbitrary JSON and mutated fields', async () => {
    await fc.assert(fc.asyncProperty(jsonValue, async (v) => {
      await outcome(() => parseBenchConfig(v, 'fuzz.json'));
    }), { numRuns: RUNS });
    const keys = ['name', 'families', 'scorers', 'seeds', 'data', 'training', 'k', 'dda', 'ablation'];
    await fc.assert(fc.asyncProperty(fc.constantFrom(...keys), jsonValue, async (key, v) => {
      await outcome(() => parseBenchConfig({ [key]: v }, 'fuzz.json'));
    }), { numRuns: RUNS });
  });
});
