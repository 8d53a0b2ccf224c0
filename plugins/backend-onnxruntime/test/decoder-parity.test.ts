import { beforeAll, describe, expect, it } from 'vitest';
import { SeededRandom } from '@dda/core';
import {
  ALL_LORA_TARGETS, DecoderModel, WordTokenizer, initDecoderWeights, initLoraWeights, startTfjsBackend, type DecoderConfig, type LoraConfig,
} from '@dda/model';
import { OnnxDecoder, startOnnxRuntime, type OnnxRuntimeBackend } from '@dda/backend-onnxruntime';

const tok = WordTokenizer.fromCorpus(['the cat sat on a mat and the dog ran to the red house near a tree .']);
const samples = [
  { id: 's1', prompt: 'the cat sat on', response: 'a mat .' },
  { id: 's2', prompt: 'the dog ran to the red', response: 'house near a tree and the cat sat .' },
  { id: 's3', prompt: 'a', response: 'dog .' },
];
const common = { vocabSize: tok.size, hiddenSize: 16, numLayers: 2, numHeads: 4, intermediateSize: 24, rmsNormEps: 1e-5, maxSeqLen: 64 };
const FAMILIES: Record<string, DecoderConfig> = {
  'llama2-style': { ...common, numKvHeads: 4, ropeTheta: 1e4, tieWordEmbeddings: false, attentionBias: false, slidingWindow: null },
  'qwen2-style (GQA, q/k/v biases, tied embeddings)': { ...common, numKvHeads: 2, ropeTheta: 1e6, tieWordEmbeddings: true, attentionBias: true, slidingWindow: null },
  'mistral-style (GQA, sliding window 3)': { ...common, numKvHeads: 2, ropeTheta: 1e4, tieWordEmbeddings: false, attentionBias: false, slidingWindow: 3 },
};
const LORA: LoraConfig = { rank: 4, alpha: 8, targets: ALL_LORA_TARGETS };

const relErr = (got: ArrayLike<number>, want: ArrayLike<number>): number => {
  let num = 0;
  let den = 0;
  for (let k = 0; k < want.length; k++) {
    num += (got[k]! - want[k]!) ** 2;
    den += want[k]! ** 2;
  }
  return Math.sqrt(num / den);
};

/** A model with random base weights, non-zero biases (so that they are exercised) and non-zero LoRA B (B = 0 would zero every A gradient). */
function randomModel(config: DecoderConfig, seed: number): DecoderModel {
  const rng = new SeededRandom(seed + 100);
  const base = initDecoderWeights(config, seed);
  for (const [name, t] of base) if (name.endsWith('.bias')) t.data.forEach((_, k) => (t.data[k] = rng.normal() * 0.1));
  const lora = initLoraWeights(config, LORA, seed + 1);
  for (const [name, t] of lora) if (name.includes('lora_B')) t.data.forEach((_, k) => (t.data[k] = rng.normal() * 0.1));
  const model = new DecoderModel(config, tok, base);
  model.setLora(LORA, lora);
  return model;
}

describe('ONNX decoder agrees with the tfjs engine', () => {
  let backend: OnnxRuntimeBackend;
  beforeAll(async () => {
    await startTfjsBackend(['tfjs-wasm']);
    backend = await startOnnxRuntime(['onnxruntime-cpu']);
  });

  for (const [family, config] of Object.entries(FAMILIES)) {
    it(`${family}: losses, logits, hidden states and per-example LoRA gradients to 1e-4 relative`, async () => {
      const model = randomModel(config, 1);
      const encoded = samples.map((s) => model.encode(s));
      const ref = model.perExampleGradientsEncoded(samples.map((s) => s.id), encoded, 'lora', 'x');
      const refLosses = model.lossesEncoded(encoded);
      const onnx = new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights());
      for (const [k, e] of encoded.entries()) {
        const { loss, gradient, names, sizes } = await onnx.lossAndGradient(e);
        expect(names).toEqual(ref.parameterNames);
        expect(sizes).toEqual(ref.parameterSizes);
        expect(Math.abs(loss - refLosses[k]!) / refLosses[k]!).toBeLessThan(1e-5);
        expect(await onnx.loss(e)).toBeCloseTo(loss, 5);
        const g = ref.rows[k]!;
        expect(g.some((x) => x !== 0)).toBe(true);
        expect(relErr(gradient, g)).toBeLessThan(1e-4);
        // Per tensor too, so that a small tensor's error is not hidden by a large one.
        let off = 0;
        for (const size of ref.parameterSizes) {
          expect(relErr(gradient.subarray(off, off + size), g.subarray(off, off + size))).toBeLessThan(1e-4);
          off += size;
        }
        const logits = await onnx.logits(e.tokens);
        expect(relErr(logits, model.logits(Array.from(e.tokens)))).toBeLessThan(1e-5);
        // Hidden states: their mean over the loss positions is the tfjs engine's response representation.
        const hidden = await onnx.hiddenStates(e.tokens);
        const d = config.hiddenSize;
        const mean = new Float64Array(d);
        let count = 0;
        e.lossMask.forEach((m, t) => {
          count += m;
          for (let j = 0; j < d; j++) mean[j]! += m * hidden[t * d + j]!;
        });
        expect(relErr(mean.map((x) => x / count), model.responseRepresentations([samples[k]!])[0]!)).toBeLessThan(1e-5);
      }
      const matrix = await onnx.perExampleGradients(ref.ids, encoded, 'x');
      expect(matrix).toMatchObject({ ids: ref.ids, dim: ref.dim, parameterNames: ref.parameterNames, parameterSizes: ref.parameterSizes, checkpoint: 'x' });
      matrix.rows.forEach((r, k) => expect(relErr(r, ref.rows[k]!)).toBeLessThan(1e-4));
      await onnx.release();
      model.dispose();
    });
  }

  for (const family of ['llama2-style', 'qwen2-style (GQA, q/k/v biases, tied embeddings)']) {
    it(`${family}: per-example gradients over every base tensor (parameters 'all') to 1e-4 relative`, async () => {
      const config = FAMILIES[family]!;
      const model = randomModel(config, 5);
      const encoded = samples.map((s) => model.encode(s));
      const ref = model.perExampleGradientsEncoded(samples.map((s) => s.id), encoded, 'all', 'x');
      const onnx = new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { parameters: 'all' });
      const got = await onnx.perExampleGradients(ref.ids, encoded, 'x');
      expect(got.parameterNames).toEqual(ref.parameterNames);
      expect(got.parameterSizes).toEqual(ref.parameterSizes);
      for (const [k, row] of got.rows.entries()) {
        let off = 0;
        for (const [l, size] of ref.parameterSizes.entries()) {
          const want = ref.rows[k]!.subarray(off, off + size);
          expect(want.some((x) => x !== 0), ref.parameterNames[l]).toBe(true);
          expect(relErr(row.subarray(off, off + size), want), ref.parameterNames[l]).toBeLessThan(1e-4);
          off += size;
        }
      }
      await onnx.release();
      model.dispose();
    });
  }

  it('padding does not change the result', async () => {
    const config = FAMILIES['llama2-style']!;
    const model = new DecoderModel(config, tok, initDecoderWeights(config, 3));
    model.setLora(LORA, new Map([...initLoraWeights(config, LORA, 4)].map(([n, t]) => [n, { shape: t.shape, data: t.data.map((x, k) => (n.includes('lora_B') ? Math.sin(k) * 0.1 : x)) }])));
    const e = model.encode(samples[1]!);
    const a = new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { padMultiple: 1 });
    const b = new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { padMultiple: 64, intraOpNumThreads: 1 });
    const ga = await a.lossAndGradient(e);
    const gb = await b.lossAndGradient(e);
    expect(relErr(gb.gradient, ga.gradient)).toBeLessThan(1e-5);
    expect(gb.loss).toBeCloseTo(ga.loss, 5);
    await a.release();
    await b.release();
    model.dispose();
  });
});
