import { beforeAll, describe, expect, it } from 'vitest';
import { DecoderModel, startTfjsBackend } from '@dda/backend-tfjs';
import { OnnxGenerator, startOnnxRuntime, type OnnxRuntimeBackend } from '@dda/backend-onnxruntime';
import { FAMILIES, LORA, randomModel, samples, tok } from './fixtures.js';

/** The prompt ids DecoderModel.generate starts from (BOS prepended). */
const promptIds = (prompt: string): number[] => {
  const p = tok.encode(prompt);
  return tok.bosId === null || p[0] === tok.bosId ? p : [tok.bosId, ...p];
};

/**
 * Scales the linear maps (not the embedding or the norms) up 16×, so that greedy decoding from
 * random weights does not collapse to one repeated token; installs and returns the weights.
 */
function spread(model: DecoderModel): Map<string, { shape: readonly number[]; data: Float32Array }> {
  const factor = (n: string): number => (n.includes('norm') ? 1 : n.includes('embed') ? 1 : 16);
  const scaled = new Map([...model.baseWeights()].map(([n, t]) => [n, { shape: t.shape, data: t.data.map((x) => x * factor(n)) }]));
  model.setBaseWeights(scaled);
  return scaled;
}

describe('greedy generation with a key/value cache on onnxruntime', () => {
  let backend: OnnxRuntimeBackend;
  beforeAll(async () => {
    await startTfjsBackend(['tfjs-wasm']);
    backend = await startOnnxRuntime(['onnxruntime-cpu']);
  });

  for (const [family, config] of Object.entries(FAMILIES)) {
    it(`${family}: the tfjs engine's tokens, with and without the cache, with LoRA and without`, async () => {
      // Larger weights than the default init, so that greedy decoding does not collapse to one token.
      const model = randomModel(config, 21);
      const scaled = spread(model);
      for (const withLora of [true, false]) {
        const m = withLora ? model : new DecoderModel(config, tok, scaled);
        const gen = new OnnxGenerator(backend, config, config.maxSeqLen, scaled, withLora ? { config: LORA, weights: model.loraWeights() } : null);
        let distinct = 0;
        for (const s of samples) {
          const want = m.generate(s.prompt, 20);
          const got = await gen.generate(promptIds(s.prompt), { maxNewTokens: 20, eosId: tok.eosId });
          expect(tok.decode(got)).toBe(want);
          expect(await gen.generateWithoutCache(promptIds(s.prompt), { maxNewTokens: 20, eosId: tok.eosId })).toEqual(got);
          distinct += new Set(got).size;
        }
        expect(distinct).toBeGreaterThan(6); // the test would be weak if every generation were one repeated token
        await gen.release();
        if (!withLora) m.dispose();
      }
      model.dispose();
    });
  }

  it('stops at the context length, at maxNewTokens, at EOS and at the stop ids', async () => {
    const config = { ...FAMILIES['mistral-style (GQA, sliding window 3)']!, maxSeqLen: 12 };
    const model = randomModel(config, 4);
    const scaled = spread(model);
    const gen = new OnnxGenerator(backend, config, 12, scaled, { config: LORA, weights: model.loraWeights() });
    const prompt = 'the dog ran to the red'; // 7 ids with BOS: at most 5 new tokens fit
    const ids = promptIds(prompt);
    const full = await gen.generate(ids, { maxNewTokens: 50, eosId: -1 });
    expect(full).toHaveLength(12 - ids.length);
    // DecoderModel.generate keeps one position free for EOS (its outputs are encoded again later), so it
    // stops one token earlier; callers that want its outputs pass contextLength = maxSeqLen − 1.
    expect(tok.decode((await gen.generate(ids, { maxNewTokens: 50, eosId: tok.eosId })).slice(0, 12 - 1 - ids.length))).toBe(model.generate(prompt, 50));
    const gen11 = new OnnxGenerator(backend, config, 11, scaled, { config: LORA, weights: model.loraWeights() });
    expect(tok.decode(await gen11.generate(ids, { maxNewTokens: 50, eosId: tok.eosId }))).toBe(model.generate(prompt, 50));
    await gen11.release();
    expect(await gen.generate(ids, { maxNewTokens: 2, eosId: -1 })).toEqual(full.slice(0, 2));
    expect(await gen.generate(ids, { maxNewTokens: 0, eosId: -1 })).toEqual([]);
    // EOS = the third token: the first two come back, then decoding stops.
    expect(await gen.generate(ids, { maxNewTokens: 50, eosId: full[2]! })).toEqual(full.slice(0, full.indexOf(full[2]!)));
    // A stop id (a chat template's end of turn, e.g. Llama-3's <|eot_id|>) stops as EOS does, with and without the cache, and on tfjs.
    const stop = full[3]!;
    const upTo = full.slice(0, full.indexOf(stop));
    expect(await gen.generate(ids, { maxNewTokens: 50, eosId: -1, stopIds: [stop] })).toEqual(upTo);
    expect(await gen.generateWithoutCache(ids, { maxNewTokens: 50, eosId: -1, stopIds: [stop] })).toEqual(upTo);
    const endOfTurn = Object.assign(Object.create(tok) as typeof tok, { endOfTurn: { text: 'x', id: stop } });
    const m2 = new DecoderModel(config, endOfTurn, scaled);
    m2.setLora(LORA, model.loraWeights());
    expect(m2.generate(prompt, 50)).toBe(tok.decode(upTo));
    m2.dispose();
    expect(await gen.generate([...ids, ...full], { maxNewTokens: 5, eosId: -1 })).toEqual([]);
    await expect(gen.generate([], { maxNewTokens: 5, eosId: 3 })).rejects.toThrow(/prompt is empty/);
    await gen.release();
    model.dispose();
  });
});
