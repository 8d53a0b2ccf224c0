import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  REAL_MODELS, SafetensorsReader, TINY_PRESETS, decoderWeightSpecs, fillUniformStream, findWeightFiles, float32ToBf16Bits, float32ToF16Bits, initDecoderWeights,
  loadModelFolder, openModelFolder, parseHfConfig, randomDecoderWeights, readSafetensors, readSafetensorsFolder, realModelConfig, saveModelFolder,
  writeRandomModelFolder, writeSafetensors, writeSafetensorsFolder, type DecoderConfig, type TensorMap, type WidenEvent,
} from '@dda/model';

const root = mkdtempSync(join(tmpdir(), 'dda-lazy-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => {
  const d = join(root, `d${n++}`);
  mkdirSync(d, { recursive: true });
  return d;
};
const small = (preset: string): DecoderConfig => ({ ...TINY_PRESETS[preset]!, vocabSize: 40, hiddenSize: 16, intermediateSize: 24 });
const f32 = (x: number): number => new Float32Array([x])[0]!;
const bits32 = (x: number): number => new Uint32Array(new Float32Array([x]).buffer)[0]!;
const fromBits32 = (u: number): number => new Float32Array(new Uint32Array([u]).buffer)[0]!;

describe('float32 → BF16 / F16 narrowing (round to nearest even)', () => {
  it('rounds BF16 halfway cases to even and keeps exact values', () => {
    expect(float32ToBf16Bits(1)).toBe(0x3f80);
    expect(float32ToBf16Bits(-2)).toBe(0xc000);
    expect(float32ToBf16Bits(fromBits32(0x3f808000))).toBe(0x3f80); // tie, 0x3f80 is even
    expect(float32ToBf16Bits(fromBits32(0x3f818000))).toBe(0x3f82); // tie, 0x3f81 is odd: up
    expect(float32ToBf16Bits(fromBits32(0x3f808001))).toBe(0x3f81); // just above the tie
    expect(float32ToBf16Bits(Infinity)).toBe(0x7f80);
    expect(float32ToBf16Bits(NaN) & 0x7fc0).toBe(0x7fc0);
  });

  it('rounds F16 to nearest even, with subnormals, overflow to infinity', () => {
    expect(float32ToF16Bits(1)).toBe(0x3c00);
    expect(float32ToF16Bits(-2)).toBe(0xc000);
    expect(float32ToF16Bits(65504)).toBe(0x7bff);
    expect(float32ToF16Bits(65520)).toBe(0x7c00); // halfway to the next power: rounds to infinity
    expect(float32ToF16Bits(2 ** -24)).toBe(0x0001);
    expect(float32ToF16Bits(2 ** -25)).toBe(0x0000); // tie between 0 and the smallest subnormal: even
    expect(float32ToF16Bits(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 (× 2^-24): even
    expect(float32ToF16Bits(f32(1 + 2 ** -11))).toBe(0x3c00); // tie at 1: even
    expect(float32ToF16Bits(f32(1 + 3 * 2 ** -11))).toBe(0x3c02);
    expect(float32ToF16Bits(-0)).toBe(0x8000);
  });
});

describe('SafetensorsReader: headers only, tensors on demand', () => {
  const c = small('qwen2-tiny');
  const w = initDecoderWeights(c, 3);

  it.each(['F32', 'F16', 'BF16'] as const)('a %s folder: dtype and shape from the header, raw bytes as stored, float32 widened exactly', (dtype) => {
    const dir = fresh();
    writeSafetensorsFolder(dir, w, { dtype, maxShardBytes: dtype === 'F32' ? 6000 : Infinity });
    const events: WidenEvent[] = [];
    const r = SafetensorsReader.openFolder(dir, { onWiden: (e) => events.push(e) });
    expect(r.names.sort()).toEqual([...w.keys()].sort());
    const name = 'model.layers.0.self_attn.q_proj.weight';
    const info = r.info(name);
    expect([info.dtype, info.shape, info.size]).toEqual([dtype, [16, 16], 256]);
    const raw = r.readRaw(name);
    expect(raw.bytes.length).toBe(256 * (dtype === 'F32' ? 4 : 2));
    const src = w.get(name)!.data;
    // Stored bits are the float32 values rounded by the narrowing functions.
    const dv = new DataView(raw.bytes.buffer, raw.bytes.byteOffset, raw.bytes.byteLength);
    for (let k = 0; k < 256; k += 37) {
      const stored = dtype === 'F32' ? bits32(dv.getFloat32(4 * k, true)) : dv.getUint16(2 * k, true);
      expect(stored).toBe(dtype === 'F32' ? bits32(src[k]!) : dtype === 'F16' ? float32ToF16Bits(src[k]!) : float32ToBf16Bits(src[k]!));
    }
    const t = r.readFloat32(name);
    for (let k = 0; k < 256; k++) {
      const want = dtype === 'F32' ? src[k]! : dtype === 'BF16' ? fromBits32(float32ToBf16Bits(src[k]!) << 16) : t.data[k]!;
      expect(t.data[k]).toBe(want);
      expect(Math.abs(t.data[k]! - src[k]!)).toBeLessThanOrEqual(Math.abs(src[k]!) * (dtype === 'F16' ? 2 ** -11 : 2 ** -8) + 1e-7);
    }
    expect(events).toEqual(dtype === 'F32' ? [] : [{ name, from: dtype, elements: 256, float32Bytes: 1024 }]);
    expect(r.storedBytes).toBe([...w.values()].reduce((s, x) => s + x.data.length, 0) * (dtype === 'F32' ? 4 : 2));
  });

  it('refuses a folder with both model.safetensors and an index with shards (transformers loads model.safetensors), naming both and what to remove', () => {
    const dir = fresh();
    saveModelFolder(dir, { config: c, weights: w, maxShardBytes: 6000 });
    const shards = readdirSync(dir).filter((f) => /^model-\d+-of-\d+\.safetensors$/.test(f));
    expect(shards.length).toBeGreaterThan(1);
    writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(w));
    const err = (() => { try { SafetensorsReader.openFolder(dir); } catch (e) { return e as Error & { hint?: string }; } return null; })();
    expect(err?.message).toContain(`${dir}: holds two weight sets, model.safetensors and model.safetensors.index.json and the ${shards.length} shards it names (${shards[0]}`);
    expect(err?.message).toContain("transformers' from_pretrained loads model.safetensors");
    expect(err?.message).toMatch(/remove model\.safetensors\.index\.json and its shards.*remove model\.safetensors/);
    expect(() => openModelFolder(dir)).toThrow('holds two weight sets');
  });

  it('reads a file without reading its data section: a header is enough to list the tensors', () => {
    const dir = fresh();
    writeSafetensorsFolder(dir, w);
    const f = join(dir, 'model.safetensors');
    const bytes = readFileSync(f);
    const headerEnd = 8 + Number(bytes.readBigUInt64LE(0));
    // Zero the data section: listing still works, and reads return the zeros now on disk.
    writeFileSync(f, Buffer.concat([bytes.subarray(0, headerEnd), Buffer.alloc(bytes.length - headerEnd)]));
    const r = SafetensorsReader.openFile(f);
    expect(r.names.length).toBe(w.size);
    expect(Array.from(r.readFloat32('model.norm.weight').data)).toEqual(new Array(16).fill(0));
  });

  it('names dtypes it cannot read, with what to do', () => {
    const dir = fresh();
    const header = JSON.stringify({ q: { dtype: 'I8', shape: [4], data_offsets: [0, 4] } });
    const buf = Buffer.alloc(8 + header.length + 4);
    buf.writeBigUInt64LE(BigInt(header.length), 0);
    buf.write(header, 8);
    writeFileSync(join(dir, 'model.safetensors'), buf);
    expect(() => SafetensorsReader.openFolder(dir)).toThrow(/model\.safetensors: tensor 'q' is stored as I8; this loader reads F32, F16 and BF16 only.*quantised/);
    const f64 = JSON.stringify({ q: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } });
    const b2 = Buffer.alloc(8 + f64.length + 8);
    b2.writeBigUInt64LE(BigInt(f64.length), 0);
    b2.write(f64, 8);
    writeFileSync(join(dir, 'model.safetensors'), b2);
    expect(() => SafetensorsReader.openFolder(dir)).toThrow(/stored as F64.*torch\.float32/);
  });

  it('the eager readers give the same tensors as the lazy reader, tensor by tensor', () => {
    const dir = fresh();
    writeSafetensorsFolder(dir, w, { maxShardBytes: 5000, dtype: 'BF16' });
    const eager = readSafetensorsFolder(dir);
    const r = SafetensorsReader.openFolder(dir);
    for (const [name, t] of eager) expect(Array.from(r.readFloat32(name).data)).toEqual(Array.from(t.data));
    // An in-memory buffer in BF16 reads the same.
    const mem = writeSafetensors(new Map([['x', { shape: [3], data: Float32Array.of(1.5, -3, 1 + 2 ** -9) }]]), {}, 'BF16');
    expect(mem.length % 2).toBe(0);
    expect(Array.from(readSafetensors(mem, 'mem').tensors.get('x')!.data)).toEqual([1.5, -3, 1]);
  });
});

describe('loadModelFolder / openModelFolder', () => {
  it('opens lazily: config, names in spec order, stored dtypes; toTensorMap equals the eager load', () => {
    const c = small('llama2-tiny');
    const w = initDecoderWeights(c, 7);
    const dir = fresh();
    saveModelFolder(dir, { config: c, weights: w, dtype: 'BF16', maxShardBytes: 4000 });
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).torch_dtype).toBe('bfloat16');
    const lazy = openModelFolder(dir);
    expect(lazy.config).toEqual(c);
    expect(lazy.weights.names).toEqual([...w.keys()]);
    expect(lazy.weights.dtypes).toEqual(['BF16']);
    expect(lazy.weights.storedBytes).toBe([...w.values()].reduce((s, t) => s + 2 * t.data.length, 0));
    expect(lazy.weights.readRaw('model.norm.weight').dtype).toBe('BF16');
    const viaOption = loadModelFolder(dir, { lazy: true });
    expect(viaOption.weights.names).toEqual(lazy.weights.names);
    const eager = loadModelFolder(dir);
    const all = lazy.weights.toTensorMap();
    expect([...all.keys()]).toEqual([...eager.weights.keys()]);
    for (const [k, t] of all) expect(Array.from(t.data)).toEqual(Array.from(eager.weights.get(k)!.data));
  });

  it('checks names and shapes from the headers alone, and drops a duplicate tied lm_head', () => {
    const c = small('qwen2-tiny');
    const w = initDecoderWeights(c, 2);
    const dir = fresh();
    saveModelFolder(dir, { config: c, weights: w });
    writeSafetensorsFolder(dir, new Map([...w, ['lm_head.weight', w.get('model.embed_tokens.weight')!]]));
    expect(openModelFolder(dir).weights.names).not.toContain('lm_head.weight');
    const other = new Map([...w, ['lm_head.weight', { shape: [40, 16], data: new Float32Array(640) }]]) as TensorMap;
    writeSafetensorsFolder(dir, other);
    expect(() => openModelFolder(dir)).toThrow("tensor not used by this config: 'lm_head.weight'");
    writeSafetensorsFolder(dir, new Map([...w].filter(([k]) => k !== 'model.norm.weight')));
    expect(() => openModelFolder(dir)).toThrow("missing tensor 'model.norm.weight'");
  });
});

describe('weights the loader cannot read: named, with how to convert them (issue 17)', () => {
  const c = small('llama2-tiny');
  /** A folder with config.json and the given files (contents: a few bytes, or text). */
  const folder = (files: Record<string, string>): string => {
    const dir = fresh();
    saveModelFolder(dir, { config: c, weights: initDecoderWeights(c, 1) });
    for (const f of readdirSync(dir)) if (f !== 'config.json') rmSync(join(dir, f));
    for (const [f, body] of Object.entries(files)) writeFileSync(join(dir, f), body);
    return dir;
  };
  const LFS = 'version https://git-lfs.github.com/spec/v1\noid sha256:0123456789abcdef\nsize 2200119864\n';

  it.each([
    [{ 'pytorch_model.bin': 'PK\u0003\u0004' }, /PyTorch pickle weights \(pytorch_model\.bin\)/, /from_pretrained\('.*', torch_dtype='auto'\)\.save_pretrained\('.*', safe_serialization=True\)/],
    [{ 'pytorch_model.bin.index.json': '{}', 'pytorch_model-00001-of-00002.bin': 'x', 'pytorch_model-00002-of-00002.bin': 'x' }, /a sharded PyTorch checkpoint index \(pytorch_model\.bin\.index\.json\)/, /safe_serialization=True/],
    [{ 'model.pt': 'x' }, /PyTorch pickle weights \(model\.pt\)/, /safetensors\.torch import save_file.*torch\.load\('.*model\.pt'/],
    [{ 'consolidated.00.pth': 'x', 'params.json': '{}' }, /PyTorch pickle weights \(consolidated\.00\.pth\)/, /convert_llama_weights_to_hf\.py/],
    [{ 'tinyllama-1.1b-chat.Q4_K_M.gguf': 'GGUF' }, /GGUF \(llama\.cpp\) weights \(tinyllama-1\.1b-chat\.Q4_K_M\.gguf\)/, /gguf_file='tinyllama-1\.1b-chat\.Q4_K_M\.gguf'/],
    [{ 'tf_model.h5': 'x' }, /TensorFlow \(Keras h5\) weights \(tf_model\.h5\)/, /from_tf=True/],
    [{ 'flax_model.msgpack': 'x' }, /Flax \(msgpack\) weights \(flax_model\.msgpack\)/, /from_flax=True/],
    [{ 'adapter_model.safetensors': 'x', 'adapter_config.json': '{}' }, /PEFT adapter weights/, /base_model_name_or_path/],
    [{ 'model-00001-of-00002.safetensors': 'x', 'model-00002-of-00002.safetensors': 'x' }, /safetensors files without the Hugging Face names/, /model\.safetensors\.index\.json is missing/],
    [{ 'pytorch_model.bin': LFS }, /pytorch_model\.bin: is a Git LFS pointer/, /git lfs pull/],
  ])('%o', (files, what, recipe) => {
    const dir = folder(files as Record<string, string>);
    for (const load of [() => loadModelFolder(dir), () => loadModelFolder(dir, { randomInit: true }), () => openModelFolder(dir)]) {
      expect(load).toThrow(what);
      expect(load).toThrow(recipe);
    }
    expect(() => findWeightFiles(dir)).toThrow(what);
  });

  it('a Git LFS pointer in place of model.safetensors, a shard or tokenizer.json says git lfs pull', () => {
    const single = folder({ 'model.safetensors': LFS });
    expect(() => loadModelFolder(single)).toThrow(/model\.safetensors: is a Git LFS pointer.*git lfs install && git lfs pull/);
    const sharded = fresh();
    saveModelFolder(sharded, { config: c, weights: initDecoderWeights(c, 1), maxShardBytes: 3000 });
    const shard = readdirSync(sharded).find((f) => f.startsWith('model-00002'))!;
    writeFileSync(join(sharded, shard), LFS);
    expect(() => openModelFolder(sharded)).toThrow(`${join(sharded, shard)}: is a Git LFS pointer`);
    const tok = fresh();
    saveModelFolder(tok, { config: c, weights: initDecoderWeights(c, 1) });
    writeFileSync(join(tok, 'tokenizer.json'), LFS);
    expect(() => loadModelFolder(tok)).toThrow(/tokenizer\.json: is a Git LFS pointer/);
  });

  it('a folder without weights is an error unless random initialisation is asked for; trainer files are not weights', () => {
    const dir = folder({ 'training_args.bin': 'x', 'optimizer.pt': 'x', 'rng_state.pth': 'x' });
    expect(findWeightFiles(dir)).toBe('none');
    expect(() => loadModelFolder(dir)).toThrow(/no weights \(no model\.safetensors and no model\.safetensors\.index\.json; found: .*training_args\.bin/);
    expect(() => loadModelFolder(dir)).toThrow(/randomInit: true/);
    expect(loadModelFolder(dir, { randomInit: true }).weights).toBeNull();
    expect(openModelFolder(dir, { randomInit: true }).weights).toBeNull();
    // Safetensors weights win over other files in the same folder.
    saveModelFolder(dir, { config: c, weights: initDecoderWeights(c, 1) });
    writeFileSync(join(dir, 'pytorch_model.bin'), 'x');
    expect(loadModelFolder(dir).weights.size).toBe(initDecoderWeights(c, 1).size);
  });
});

describe('real configurations', () => {
  it('parse from the published config.json files to the real sizes', () => {
    const shape = (name: keyof typeof REAL_MODELS): unknown => {
      const m = REAL_MODELS[name].config;
      return [m.hiddenSize, m.numLayers, m.numHeads, m.numKvHeads, m.intermediateSize, m.vocabSize, m.tieWordEmbeddings, m.attentionBias, m.slidingWindow, m.ropeTheta, m.maxSeqLen];
    };
    expect(shape('tinyllama-1.1b')).toEqual([2048, 22, 32, 4, 5632, 32000, false, false, null, 1e4, 2048]);
    expect(shape('qwen2-0.5b')).toEqual([896, 24, 14, 2, 4864, 151936, true, true, null, 1e6, 131072]);
    expect(shape('mistral-7b')).toEqual([4096, 32, 32, 8, 14336, 32000, false, false, 4096, 1e4, 32768]);
    expect([REAL_MODELS['tinyllama-1.1b'].family, REAL_MODELS['qwen2-0.5b'].family, REAL_MODELS['mistral-7b'].family]).toEqual(['llama', 'qwen2', 'mistral']);
    // Parameter counts of the real models (embeddings included; Qwen2's tied head counted once).
    const count = (c: DecoderConfig): number => {
      const kv = (c.hiddenSize / c.numHeads) * c.numKvHeads;
      const layer = 2 * c.hiddenSize * c.hiddenSize + 2 * kv * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize + 2 * c.hiddenSize + (c.attentionBias ? c.hiddenSize + 2 * kv : 0);
      return c.numLayers * layer + c.vocabSize * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2) + c.hiddenSize;
    };
    expect(count(REAL_MODELS['tinyllama-1.1b'].config)).toBe(1_100_048_384);
    expect(count(REAL_MODELS['qwen2-0.5b'].config)).toBe(494_032_768);
    expect(count(REAL_MODELS['mistral-7b'].config)).toBe(7_241_732_096);
    // Llama-3.2-1B: 1.24 B parameters with its tied head, Llama-3.2's llama3 RoPE scaling.
    expect(shape('llama3.2-1b')).toEqual([2048, 16, 32, 8, 8192, 128256, true, false, null, 5e5, 131072]);
    expect(count(REAL_MODELS['llama3.2-1b'].config)).toBe(1_235_814_400);
    expect(REAL_MODELS['llama3.2-1b'].config.ropeScaling).toEqual({ type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
    expect(realModelConfig('llama3.2-1b', { numLayers: 1 }).config).toEqual({ ...REAL_MODELS['llama3.2-1b'].config, numLayers: 1 });
    // Llama-3.1-8B: the model card's 8.03 B parameters (untied head), a 131,072-token context from the llama3 scaling with factor 8.
    expect(shape('llama3.1-8b')).toEqual([4096, 32, 32, 8, 14336, 128256, false, false, null, 5e5, 131072]);
    expect(count(REAL_MODELS['llama3.1-8b'].config)).toBe(8_030_261_248);
    expect(REAL_MODELS['llama3.1-8b'].config.ropeScaling).toEqual({ type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
    // Qwen3-0.6B: q/k norms, head_dim 128 (q_proj [2048, 1024], o_proj [1024, 2048]); the model card's 0.6 B, 0.44 B without the embeddings.
    const q3 = REAL_MODELS['qwen3-0.6b'];
    expect([q3.family, q3.config.headDim, q3.config.qkNorm, q3.config.numKvHeads, q3.config.tieWordEmbeddings, q3.config.maxSeqLen]).toEqual(['qwen3', 128, true, 8, true, 40960]);
    const sizes = new Map(decoderWeightSpecs(q3.config).map((s) => [s.name, s.shape.reduce((a, b) => a * b, 1)]));
    const total = [...sizes.values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(596_049_920);
    expect(total - sizes.get('model.embed_tokens.weight')!).toBe(440_467_456);
    expect(decoderWeightSpecs(q3.config).find((s) => s.name === 'model.layers.0.self_attn.o_proj.weight')!.shape).toEqual([1024, 2048]);
    // Gemma-3: four norms per layer and q/k norms (offsets from 1, initialised 0), GeGLU, head_dim 256 with 4 query heads on 1 key-value head.
    const total3 = (name: 'gemma-3-1b' | 'gemma-3-270m'): number => decoderWeightSpecs(REAL_MODELS[name].config).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
    const g1 = REAL_MODELS['gemma-3-1b'];
    expect(shape('gemma-3-1b')).toEqual([1152, 26, 4, 1, 6912, 262144, true, false, 512, 1e6, 32768]);
    expect([g1.family, g1.config.headDim, g1.config.ropeLocalTheta, g1.config.layerTypes!.filter((t) => t === 'full_attention').length]).toEqual(['gemma3_text', 256, 1e4, 4]);
    // keras-hub's gemma3_1b preset: 999,885,952 parameters.
    expect(total3('gemma-3-1b')).toBe(999_885_952);
    expect(total3('gemma-3-270m')).toBe(268_098_176);
    expect(decoderWeightSpecs(g1.config).filter((s) => s.name.startsWith('model.layers.0.') && s.name.includes('norm')).map((s) => [s.name.slice(15), s.init])).toEqual([
      ['input_layernorm.weight', 'normOffsets'], ['self_attn.q_norm.weight', 'normOffsets'], ['self_attn.k_norm.weight', 'normOffsets'],
      ['post_attention_layernorm.weight', 'normOffsets'], ['pre_feedforward_layernorm.weight', 'normOffsets'], ['post_feedforward_layernorm.weight', 'normOffsets'],
    ]);
    // Fewer layers keep the first entries of the published pattern.
    expect(realModelConfig('gemma-3-270m', { numLayers: 7 }).config.layerTypes).toEqual([...Array(5).fill('sliding_attention'), 'full_attention', 'sliding_attention']);
    expect(() => realModelConfig('gemma-3-1b', { slidingWindow: null })).toThrow('always has sliding-window layers');
  });

  it('override layers and window, and write a config.json that parses back to the same config', () => {
    const q = realModelConfig('qwen2-0.5b', { numLayers: 2 });
    expect(q.config).toEqual({ ...REAL_MODELS['qwen2-0.5b'].config, numLayers: 2 });
    expect(parseHfConfig(q.configJson).config).toEqual(q.config);
    expect(realModelConfig('mistral-7b', { slidingWindow: 32 }).config.slidingWindow).toBe(32);
    expect(realModelConfig('qwen2-0.5b', { slidingWindow: 64 }).config.slidingWindow).toBe(64);
    expect(() => realModelConfig('tinyllama-1.1b', { slidingWindow: 64 })).toThrow('has no sliding-window attention');
    expect(() => realModelConfig('llama-7b')).toThrow("unknown real model configuration 'llama-7b'");
  });

  it('accepts the fields real config.json files carry (re-saves, Qwen2.5, transformers.js, unsloth) and rejects use_mrope true', () => {
    const tiny = REAL_MODELS['tinyllama-1.1b'].configJson;
    const resaved = { ...tiny, _name_or_path: '/x', attention_dropout: 0.0, pad_token_id: 0, mlp_bias: false, head_dim: 64, _attn_implementation_autoset: true, unsloth_version: '2024.9', unsloth_fixed: true, 'transformers.js_config': { dtype: 'q4' } };
    expect(parseHfConfig(resaved).config).toEqual(REAL_MODELS['tinyllama-1.1b'].config);
    const qwen25 = { ...REAL_MODELS['qwen2-0.5b'].configJson, max_position_embeddings: 32768, sliding_window: 32768, use_mrope: false, transformers_version: '4.43.1' };
    expect(parseHfConfig(qwen25).config.maxSeqLen).toBe(32768);
    expect(() => parseHfConfig({ ...qwen25, use_mrope: true })).toThrow('use_mrope true is not supported');
  });
});

describe('writeRandomModelFolder / randomDecoderWeights', () => {
  const c = small('qwen2-tiny');

  it('the generator gives the same values whatever the chunking', () => {
    const all = new Float32Array(1000);
    fillUniformStream(5, 'a.weight', 0, 1, 0, all);
    const part = new Float32Array(300);
    fillUniformStream(5, 'a.weight', 0, 1, 417, part);
    expect(Array.from(part)).toEqual(Array.from(all.subarray(417, 717)));
    expect(Math.min(...all)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...all)).toBeLessThan(1);
    const mean = all.reduce((s, x) => s + x, 0) / all.length;
    expect(Math.abs(mean)).toBeLessThan(0.1);
    const other = new Float32Array(1000);
    fillUniformStream(6, 'a.weight', 0, 1, 0, other);
    expect(Array.from(other)).not.toEqual(Array.from(all));
  });

  it('writes a seeded folder (sharded, BF16) that loads back to the rounded random weights; the same seed gives the same bytes', () => {
    const a = fresh();
    const b = fresh();
    const init = { normNoise: 0.1, biasNoise: 0.02 };
    const res = writeRandomModelFolder(a, { model: { config: c }, seed: 9, dtype: 'BF16', maxShardBytes: 3000, init });
    writeRandomModelFolder(b, { model: { config: c }, seed: 9, dtype: 'BF16', maxShardBytes: 3000, init });
    expect(res.files).toContain('model.safetensors.index.json');
    expect(res.family).toBe('qwen2');
    for (const f of readdirSync(a)) expect(readFileSync(join(b, f)).equals(readFileSync(join(a, f))), f).toBe(true);
    const loaded = loadModelFolder(a);
    expect(loaded.config).toEqual(c);
    const want = randomDecoderWeights(c, 9, init);
    for (const [name, t] of want) {
      const got = loaded.weights.get(name)!;
      for (let k = 0; k < t.data.length; k++) expect(got.data[k]).toBe(fromBits32(float32ToBf16Bits(t.data[k]!) << 16));
    }
    expect(Array.from(want.get('model.layers.0.self_attn.q_proj.bias')!.data).some((x) => x !== 0)).toBe(true);
    expect(JSON.parse(readFileSync(join(a, 'config.json'), 'utf8')).torch_dtype).toBe('bfloat16');
  });
});
