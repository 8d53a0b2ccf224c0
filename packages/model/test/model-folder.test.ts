import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  SPECIAL_TOKENS, TINY_PRESETS, WordTokenizer, checkBaseWeights, initDecoderWeights, loadModelFolder, readSafetensorsFolder,
  resolveModelSpec, saveModelFolder, writeSafetensors, writeSafetensorsFolder, type DecoderConfig, type TensorMap,
} from '@dda/model';

const root = mkdtempSync(join(tmpdir(), 'dda-model-folder-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(root, `m${n++}`);

const tok = new WordTokenizer([...SPECIAL_TOKENS, ...Array.from({ length: 24 }, (_, i) => `w${i}`)]);
const small = (preset: string): DecoderConfig => ({ ...TINY_PRESETS[preset]!, vocabSize: tok.size, hiddenSize: 16, intermediateSize: 24 });

/** Every tensor has the same name order, shape and bytes. */
function expectBitIdentical(a: TensorMap, b: TensorMap): void {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [k, t] of a) {
    const u = b.get(k)!;
    expect(u.shape, k).toEqual(t.shape);
    expect(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), k).toBe(true);
  }
}

describe('sharded and single-file safetensors folders', () => {
  const c = small('qwen2-tiny');
  const w = initDecoderWeights(c, 11);

  it('a single file loads back bit-identically', () => {
    const dir = fresh();
    expect(writeSafetensorsFolder(dir, w)).toEqual(['model.safetensors']);
    expectBitIdentical(w, readSafetensorsFolder(dir));
  });

  it('shards by size with an index (weight_map, total_size) and loads back bit-identically', () => {
    const dir = fresh();
    const files = writeSafetensorsFolder(dir, w, { maxShardBytes: 8000 });
    const total = [...w.values()].reduce((s, t) => s + 4 * t.data.length, 0);
    const shards = files.filter((f) => f.endsWith('.safetensors'));
    expect(shards.length).toBeGreaterThan(2);
    expect(shards).toEqual(shards.map((_, k) => `model-${String(k + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`));
    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
    expect(index.metadata).toEqual({ total_size: total });
    expect(Object.keys(index.weight_map).sort()).toEqual([...w.keys()].sort());
    // No shard holds more than the limit unless it is a single tensor larger than it.
    for (const f of shards) {
      const names = Object.keys(index.weight_map).filter((k) => index.weight_map[k] === f);
      const bytes = names.reduce((s, k) => s + 4 * w.get(k)!.data.length, 0);
      expect(bytes <= 8000 || names.length === 1, f).toBe(true);
    }
    expectBitIdentical(w, readSafetensorsFolder(dir));
    // Re-saving as one file replaces the shards and the index.
    writeSafetensorsFolder(dir, w);
    expect(readdirSync(dir).sort()).toEqual(['model.safetensors']);
  });

  it('explains missing shards and index/shard disagreements', () => {
    const dir = fresh();
    writeSafetensorsFolder(dir, w, { maxShardBytes: 8000 });
    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
    const first = index.weight_map['model.embed_tokens.weight'];
    rmSync(join(dir, first));
    expect(() => readSafetensorsFolder(dir)).toThrow(`${join(dir, first)}: shard named in model.safetensors.index.json is missing`);
    writeSafetensorsFolder(dir, w, { maxShardBytes: 8000 });
    index.weight_map['model.norm.weight'] = first;
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
    expect(() => readSafetensorsFolder(dir)).toThrow(`has no tensor 'model.norm.weight', which model.safetensors.index.json puts there`);
    const empty = fresh();
    expect(() => readSafetensorsFolder(empty)).toThrow(/no model\.safetensors and no model\.safetensors\.index\.json \(found: no such folder\)/);
  });

  it('a truncated shard is named in the error', () => {
    const dir = fresh();
    const second = writeSafetensorsFolder(dir, w, { maxShardBytes: 8000 })[1]!;
    const f = join(dir, second);
    const bytes = readFileSync(f);
    writeFileSync(f, bytes.subarray(0, bytes.length - 3));
    expect(() => readSafetensorsFolder(dir)).toThrow(new RegExp(`${second.replace(/\./g, '\\.')}: not a valid safetensors file: .*truncated`));
  });
});

describe('model folders (config.json + safetensors + tokenizer)', () => {
  it.each([['llama2-tiny', undefined], ['qwen2-tiny', 9000], ['mistral-tiny', 5000], ['llama3-tiny', 7000], ['qwen3-tiny', 7000], ['gemma3-tiny', 7000]] as const)(
    '%s saves and loads back bit-identically (shard limit %s); @dda/backend-tfjs checks the logits',
    (preset, maxShardBytes) => {
      const c = small(preset);
      const w = initDecoderWeights(c, 5);
      const dir = fresh();
      saveModelFolder(dir, { config: c, weights: w, tokenizer: tok, ...(maxShardBytes ? { maxShardBytes } : {}) });
      expect(existsSync(join(dir, 'model.safetensors.index.json'))).toBe(maxShardBytes !== undefined);
      const m = loadModelFolder(dir);
      expect(m.config).toEqual(c);
      expect(m.family).toBe({ 'llama2-tiny': 'llama', 'qwen2-tiny': 'qwen2', 'mistral-tiny': 'mistral', 'llama3-tiny': 'llama', 'qwen3-tiny': 'qwen3', 'gemma3-tiny': 'gemma3_text' }[preset]);
      expectBitIdentical(w, m.weights);
      expect(m.tokenizer).toBeInstanceOf(WordTokenizer);
      expect((m.tokenizer as WordTokenizer).vocab).toEqual(tok.vocab);
      // No temporary files are left behind by the atomic writes.
      expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    },
  );

  it('refuses weights that do not fit config.json, naming the tensor', () => {
    const llama = small('llama2-tiny');
    const w = initDecoderWeights(llama, 1);
    expect(() => checkBaseWeights(small('qwen2-tiny'), w, 'ckpt')).toThrow("ckpt: missing tensor 'model.layers.0.self_attn.q_proj.bias'");
    expect(() => checkBaseWeights({ ...llama, tieWordEmbeddings: true }, w, 'ckpt')).toThrow("ckpt: tensor not used by this config: 'lm_head.weight'");
    expect(() => checkBaseWeights({ ...llama, intermediateSize: 32 }, w, 'ckpt')).toThrow("ckpt: tensor 'model.layers.0.mlp.gate_proj.weight' has shape [24, 16], config.json needs [32, 16]");
    // Old LLaMA exports carry RoPE buffers: skipped.
    const withBuffer: TensorMap = new Map([...w, ['model.layers.0.self_attn.rotary_emb.inv_freq', { shape: [2], data: new Float32Array(2) }]]);
    expect(checkBaseWeights(llama, withBuffer).size).toBe(w.size);
  });

  it('refuses a tokenizer whose vocabulary does not match config.json', () => {
    const c = small('llama2-tiny');
    const dir = fresh();
    saveModelFolder(dir, { config: c, weights: initDecoderWeights(c, 1), tokenizer: tok });
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(new WordTokenizer([...SPECIAL_TOKENS, 'x']).toJSON()));
    expect(() => loadModelFolder(dir)).toThrow("tokenizer has 9 entries but the model's vocabSize is 32");
  });

  it('reads F16 weights of a folder as float32', () => {
    const dir = fresh();
    const c = small('llama2-tiny');
    saveModelFolder(dir, { config: c, weights: initDecoderWeights(c, 1) });
    // Rewrite one tensor as F16 by hand: 1.0 and -2.0.
    const header = JSON.stringify({ t: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } });
    const buf = new Uint8Array(8 + header.length + 4);
    new DataView(buf.buffer).setBigUint64(0, BigInt(header.length), true);
    buf.set(new TextEncoder().encode(header), 8);
    new DataView(buf.buffer).setUint16(8 + header.length, 0x3c00, true);
    new DataView(buf.buffer).setUint16(8 + header.length + 2, 0xc000, true);
    writeFileSync(join(dir, 'model.safetensors'), buf);
    expect(Array.from(readSafetensorsFolder(dir).get('t')!.data)).toEqual([1, -2]);
    expect(writeSafetensors(new Map()).length).toBe(16);
  });
});

describe('resolveModelSpec', () => {
  it('returns presets by name with their family', () => {
    for (const [name, family] of [['llama2-tiny', 'llama'], ['qwen2-tiny', 'qwen2'], ['mistral-tiny', 'mistral'], ['llama3-tiny', 'llama'], ['qwen3-tiny', 'qwen3'], ['gemma3-tiny', 'gemma3_text']] as const) {
      const s = resolveModelSpec(name);
      expect(s).toEqual({ kind: 'preset', name, family, config: TINY_PRESETS[name] });
    }
  });

  it('returns a folder with config, weights and tokenizer; a folder without weights only with randomInit', () => {
    const c = small('mistral-tiny');
    const w = initDecoderWeights(c, 3);
    const dir = fresh();
    saveModelFolder(dir, { config: c, weights: w, tokenizer: tok, maxShardBytes: 4000 });
    const s = resolveModelSpec(dir);
    if (s.kind !== 'folder') throw new Error('expected a folder');
    expect(s.family).toBe('mistral');
    expect(s.config).toEqual(c);
    expectBitIdentical(w, s.weights!);
    expect(s.tokenizer?.size).toBe(tok.size);
    for (const f of readdirSync(dir)) if (f !== 'config.json') rmSync(join(dir, f));
    expect(() => resolveModelSpec(dir)).toThrow(`${dir}: no weights (no model.safetensors and no model.safetensors.index.json; found: config.json)`);
    const bare = resolveModelSpec(dir, { randomInit: true });
    expect(bare).toMatchObject({ kind: 'folder', weights: null, tokenizer: null, config: c });
  });

  it('lists the presets when the name is neither a preset nor a folder', () => {
    expect(() => resolveModelSpec('phi3-tiny')).toThrow("'phi3-tiny' is neither a model preset nor a model folder");
    try {
      resolveModelSpec('phi3-tiny');
    } catch (e) {
      expect(String((e as { hint?: string }).hint)).toContain('llama2-tiny, qwen2-tiny, mistral-tiny, llama3-tiny');
    }
    const dir = fresh();
    writeFileSync(join(root, 'x.txt'), '');
    expect(() => resolveModelSpec(join(root, 'x.txt'))).toThrow(/neither a model preset nor a model folder/);
    rmSync(dir, { recursive: true, force: true });
  });
});
