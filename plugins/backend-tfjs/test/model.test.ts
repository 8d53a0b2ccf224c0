import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LORA, TINY_PRESETS, WordTokenizer, initDecoderWeights, initLoraWeights, type DecoderConfig } from '@dda/model';
import { DecoderModel, startTfjsBackend } from '@dda/backend-tfjs';

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

  it('generation never produces a sample the gradient step cannot take (issue 17, fault 3)', () => {
    // A model whose output never stops (EOS suppressed), prompts a few tokens short of the context.
    const short: DecoderConfig = { ...config, maxSeqLen: 8 };
    const w = initDecoderWeights(short, 4);
    const head = w.get('lm_head.weight')!;
    // EOS (and the other tokens decoding drops) never win.
    for (const id of [tok.eosId, tok.padId, tok.bosId!]) for (let j = 0; j < short.hiddenSize; j++) head.data[id * short.hiddenSize + j] = 0;
    const norm = w.get('model.norm.weight')!;
    norm.data.fill(1);
    const m = new DecoderModel(short, tok, w);
    for (const [prompt, room] of [['a b c', 3], ['a b c d e', 1]] as const) {
      const out = m.generate(prompt, 50);
      expect(tok.encode(out)).toHaveLength(room); // ran to the limit: BOS + prompt + output + EOS = the context
      expect(m.encode({ id: 'gen', prompt, response: out }).tokens.length).toBe(8);
    }
    expect(() => m.generate('a b c d e f', 50)).toThrow(/the prompt has 7 tokens, which leaves no room for an output within the context of 8 tokens/);
    m.dispose();
  });

  it('refuses a tokenizer that does not match the model', () => {
    const other = WordTokenizer.fromCorpus(['x y']);
    expect(() => new DecoderModel(config, other, initDecoderWeights(config, 1))).toThrow(/tokenizer has \d+ entries but the model's vocabSize is \d+/);
  });

  it('refuses NaN or Inf in base weights and adapters, naming the tensor', () => {
    const w = initDecoderWeights(config, 1);
    const t = w.get('model.layers.1.mlp.up_proj.weight')!;
    t.data[5] = Number.NaN;
    expect(() => new DecoderModel(config, tok, w)).toThrow(/base weights: tensor 'model\.layers\.1\.mlp\.up_proj\.weight' holds NaN at flat index 5/);
    const m = new DecoderModel(config, tok, initDecoderWeights(config, 1));
    expect(() => m.setBaseWeights(w)).toThrow(/holds NaN/);
    const adapter = initLoraWeights(config, DEFAULT_LORA, 0);
    const [name, a] = [...adapter][0]!;
    a.data[0] = Number.POSITIVE_INFINITY;
    expect(() => m.setLora(DEFAULT_LORA, adapter)).toThrow(new RegExp(`tensor '${name.replace(/\./g, '\\.')}' holds Infinity at flat index 0`));
    m.dispose();
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

function loraModel(): DecoderModel {
  const m = new DecoderModel(config, tok, initDecoderWeights(config, 1));
  m.addLora(DEFAULT_LORA, 3);
  return m;
}

describe('DecoderModel.lossesAfterLoraSteps (for cea)', () => {
  beforeAll(async () => {
    await startTfjsBackend(['tfjs-wasm']);
  });

  it('per-example gradients record the shape of every parameter tensor', () => {
    const m = loraModel();
    const g = m.perExampleGradients(samples.slice(0, 1), 'lora', 'x');
    const weights = m.loraWeights();
    expect(g.parameterShapes).toEqual(g.parameterNames.map((n) => weights.get(n)!.shape));
    expect(g.parameterShapes!.map((s) => s.reduce((a, b) => a * b, 1))).toEqual(g.parameterSizes);
    m.dispose();
  });

  it('lowers the loss of what it stepped on, restores the adapter bit for bit, and is deterministic', async () => {
    const m = loraModel();
    const before = m.losses(samples);
    const adapter = m.loraWeights();
    for (const optimizer of ['adam', 'sgd'] as const) {
      const after = await m.lossesAfterLoraSteps([samples[0]!], samples, { steps: 3, learningRate: 1e-2, optimizer });
      expect(after[0]!).toBeLessThan(before[0]!);
      const again = await m.lossesAfterLoraSteps([samples[0]!], samples, { steps: 3, learningRate: 1e-2, optimizer });
      expect(Array.from(again)).toEqual(Array.from(after));
      // A fresh model gives the same answer.
      const other = loraModel();
      expect(Array.from(await other.lossesAfterLoraSteps([samples[0]!], samples, { steps: 3, learningRate: 1e-2, optimizer }))).toEqual(Array.from(after));
      other.dispose();
    }
    expect(Array.from(m.losses(samples))).toEqual(Array.from(before));
    for (const [name, t] of m.loraWeights()) expect(Array.from(t.data), name).toEqual(Array.from(adapter.get(name)!.data));
    m.dispose();
  });

  it('restores the adapter when it throws, and says what to change', async () => {
    const m = loraModel();
    const before = m.losses(samples);
    await expect(m.lossesAfterLoraSteps([], samples, { steps: 1, learningRate: 1e-2, optimizer: 'adam' })).rejects.toThrow(/no samples to take optimizer steps on/);
    await expect(m.lossesAfterLoraSteps(samples, samples, { steps: 0, learningRate: 1e-2, optimizer: 'adam' })).rejects.toThrow(/steps must be a positive integer/);
    await expect(m.lossesAfterLoraSteps(samples, samples, { steps: 1, learningRate: -1, optimizer: 'sgd' })).rejects.toThrow(/learningRate must be a positive/);
    // Diverges: an enormous SGD step gives a non-finite loss at the second step.
    await expect(m.lossesAfterLoraSteps(samples, samples, { steps: 3, learningRate: 1e30, optimizer: 'sgd' })).rejects.toThrow(/diverged/);
    expect(Array.from(m.losses(samples))).toEqual(Array.from(before));
    m.dispose();
    const bare = new DecoderModel(config, tok, initDecoderWeights(config, 1));
    await expect(bare.lossesAfterLoraSteps(samples, samples, { steps: 1, learningRate: 1e-2, optimizer: 'adam' })).rejects.toThrow(/no LoRA adapters/);
    bare.dispose();
  });
});
