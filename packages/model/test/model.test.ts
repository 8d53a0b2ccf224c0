import { beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_LORA, DecoderModel, TINY_PRESETS, WordTokenizer, initDecoderWeights, initLoraWeights, startTfjsBackend, type DecoderConfig,
} from '@dda/model';

const tok = WordTokenizer.fromCorpus(['a b c d e f g h .']);
const config: DecoderConfig = { ...TINY_PRESETS['llama2-tiny']!, vocabSize: tok.size, hiddenSize: 16, intermediateSize: 24, numHeads: 2, numKvHeads: 2 };
const samples = [
  { id: 's1', prompt: 'a b', response: 'c d .' },
  { id: 's2', prompt: 'e f', response: 'g h .' },
  { id: 's3', prompt: 'a c', response: 'e g .' },
];

describe('DecoderModel', () => {
  beforeAll(async () => {
    await startTfjsBackend(['tfjs-wasm']);
  });

  it('refuses a tokenizer that does not match the model', () => {
    const other = WordTokenizer.fromCorpus(['x y']);
    expect(() => new DecoderModel(config, other, initDecoderWeights(config, 1))).toThrow(/tokenizer has \d+ entries but the model's vocabSize is \d+/);
  });

  it('refuses a LoRA adapter that does not fit the model', () => {
    const m = new DecoderModel(config, tok, initDecoderWeights(config, 1));
    const wrong = initLoraWeights({ ...config, hiddenSize: 32, intermediateSize: 24 }, DEFAULT_LORA, 0);
    expect(() => m.setLora(DEFAULT_LORA, wrong)).toThrow(/has shape \[8, 32\], this model needs \[8, 16\]/);
    m.dispose();
  });

  it('a fresh LoRA adapter leaves the outputs unchanged (B = 0)', () => {
    const m = new DecoderModel(config, tok, initDecoderWeights(config, 1));
    const before = m.losses(samples);
    m.addLora(DEFAULT_LORA, 3);
    expect(Array.from(m.losses(samples))).toEqual(Array.from(before));
    m.dispose();
  });

  it('LoRA training lowers the loss, is deterministic under a seed, and leaves the base weights alone', async () => {
    const run = async (): Promise<{ losses: number[]; grads: Float32Array; base: Float32Array }> => {
      const m = new DecoderModel(config, tok, initDecoderWeights(config, 1));
      m.addLora(DEFAULT_LORA, 3);
      const losses = await m.train(samples, { epochs: 5, learningRate: 1e-2, batchSize: 2, seed: 4, parameters: 'lora' });
      const grads = m.perExampleGradients(samples, 'lora', 'epoch-5').rows[0]!;
      const base = m.baseWeights().get('model.layers.0.self_attn.q_proj.weight')!.data;
      m.dispose();
      return { losses, grads, base };
    };
    const a = await run();
    const b = await run();
    expect(a.losses[4]!).toBeLessThan(a.losses[0]!);
    expect(a.losses).toEqual(b.losses);
    expect(Array.from(a.grads)).toEqual(Array.from(b.grads));
    expect(Array.from(a.base)).toEqual(Array.from(initDecoderWeights(config, 1).get('model.layers.0.self_attn.q_proj.weight')!.data));
  });

  it('per-example gradients of a batch equal those computed one sample at a time', () => {
    const m = new DecoderModel(config, tok, initDecoderWeights(config, 1));
    m.addLora(DEFAULT_LORA, 3);
    const all = m.perExampleGradients(samples, 'lora', 'x');
    const one = m.perExampleGradients([samples[1]!], 'lora', 'x');
    expect(Array.from(all.rows[1]!)).toEqual(Array.from(one.rows[0]!));
    expect(all.dim).toBe(all.parameterSizes.reduce((s, x) => s + x, 0));
    m.dispose();
  });
});
