import { describe, expect, it } from 'vitest';
import { openExperimentModel, type ExperimentModel } from '@dda/experiment';
import { DEFAULT_LORA, TINY_PRESETS, WordTokenizer, encodeSample, initDecoderWeights, initLoraWeights, type TensorMap } from '@dda/model';
import { DecoderModel, startTfjsBackend } from '@dda/backend-tfjs';

// The two training engines of an experiment, from the same weights and the same recipe: per-epoch
// losses, trained weights and greedy generations agree (float rounding only).
const texts = [
  'the cat sat on a mat .', 'the dog ran to the red house .', 'a tree near the house .', 'the red dog sat on the mat and the cat ran .',
  'a cat .', 'the house near a tree and a dog .', 'the dog sat .', 'a red cat ran to a tree .',
];
const tok = WordTokenizer.fromCorpus(texts);
// LLaMA-2-style: Qwen2's k_proj bias has a gradient of zero up to rounding (softmax ignores a shift
// shared by every key), which Adam's normalisation turns into noise; the plugin's parity tests
// cover the three families at the graph level.
const config = { ...TINY_PRESETS['llama2-tiny']!, vocabSize: tok.size, maxSeqLen: 24 };
const pretrain = texts.map((t, i) => ({ id: `p${i}`, prompt: '', response: t }));
const finetune = texts.map((t, i) => ({ id: `f${i}`, prompt: 'the cat', response: t }));
/** ‖a − b‖ / ‖b‖: Adam moves an element whose gradient is rounding noise by about ±lr on either engine, so the largest element's error says little. */
const relErr = (a: Float32Array, b: Float32Array): number => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / (den || 1));
};
const close = (got: TensorMap, want: TensorMap, tol: number): void => {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [n, t] of want) expect(relErr(got.get(n)!.data, t.data), n).toBeLessThan(tol);
};

describe('training engines of an experiment', () => {
  it('onnxruntime trains (pretraining, then LoRA) and generates as tfjs does', async () => {
    const init = initDecoderWeights(config, 3);
    const models: ExperimentModel[] = [];
    for (const engine of ['onnxruntime', 'tfjs'] as const) models.push(await openExperimentModel(config, tok, init, { engine }));
    const [onnx, tfjs] = models as [ExperimentModel, ExperimentModel];
    expect([onnx.engine, tfjs.engine]).toEqual(['onnxruntime', 'tfjs']);
    const epochsSeen: [number, number][] = [];
    const recipe = { epochs: 2, learningRate: 1e-2, batchSize: 3, seed: 5 } as const;
    const pre = await Promise.all(models.map((m) => m.train(pretrain, { ...recipe, parameters: 'all', onEpochEnd: (e) => void epochsSeen.push([e, m.baseWeights().size]) })));
    pre[0]!.forEach((l, e) => expect(Math.abs(l - pre[1]![e]!) / pre[1]![e]!).toBeLessThan(1e-5));
    expect(pre[1]![1]!).toBeLessThan(pre[1]![0]!);
    close(onnx.baseWeights(), tfjs.baseWeights(), 1e-4);
    expect(epochsSeen.filter(([e]) => e === 2)).toHaveLength(2);
    // Fine-tuning from one θ0 (the two pretrained bases differ by rounding, which Adam's first steps on B amplify).
    await tfjs.setBaseWeights(onnx.baseWeights());
    for (const m of models) await m.addLora({ ...DEFAULT_LORA, rank: 4, alpha: 8 }, 9);
    for (const [n, t] of tfjs.loraWeights()) expect(onnx.loraWeights().get(n)!.data, n).toEqual(t.data);
    const ft = await Promise.all(models.map((m) => m.train(finetune, { ...recipe, learningRate: 5e-3, parameters: 'lora' })));
    ft[0]!.forEach((l, e) => expect(Math.abs(l - ft[1]![e]!) / ft[1]![e]!).toBeLessThan(1e-5));
    close(onnx.loraWeights(), tfjs.loraWeights(), 1e-3);
    for (const prompt of ['the cat', 'a red dog', 'the house near']) expect(await onnx.generate(prompt, 10)).toBe(await tfjs.generate(prompt, 10));
    // Generation stops where the output and EOS would no longer fit the context (24), as tfjs.
    const long = Array.from({ length: 20 }, () => 'the').join(' ');
    expect(await onnx.generate(long, 50)).toBe(await tfjs.generate(long, 50));
    await expect(onnx.generate(Array.from({ length: 30 }, () => 'a').join(' '), 5)).rejects.toThrow(/no room for an output/);
    for (const m of models) await m.dispose();
  }, 120_000);

  it('responseNll is minus the summed log-likelihood of the response tokens, on both engines', async () => {
    const init = initDecoderWeights(config, 6);
    const lora = { ...DEFAULT_LORA, rank: 2, alpha: 4 };
    const adapter = initLoraWeights(config, lora, 8);
    for (const [k, t] of adapter) if (k.endsWith('lora_B.weight')) t.data.forEach((_, i) => (t.data[i] = 0.1 * Math.sin(i + 1)));
    const samples = [finetune[0]!, finetune[3]!, { id: 'short', prompt: 'a', response: 'cat .' }];
    // The reference: log-softmax of tfjs's logits per position, summed in float64 over the loss mask.
    await startTfjsBackend();
    const ref = new DecoderModel(config, tok, init);
    await ref.setLora(lora, adapter);
    const want = samples.map((s) => {
      const e = encodeSample(tok, s, config.maxSeqLen);
      const logits = ref.logits([...e.tokens]);
      const V = config.vocabSize;
      let nll = 0;
      e.lossMask.forEach((m, t) => {
        if (m === 0) return;
        const row = logits.subarray(t * V, (t + 1) * V);
        const max = Math.max(...row);
        const lse = max + Math.log(row.reduce((a, x) => a + Math.exp(x - max), 0));
        nll += m * (lse - row[e.tokens[t + 1]!]!);
      });
      return nll;
    });
    ref.dispose();
    expect(want[2]).toBeGreaterThan(0);
    for (const engine of ['onnxruntime', 'tfjs'] as const) {
      const m = await openExperimentModel(config, tok, init, { engine });
      await m.setLora(lora, adapter);
      const got = await m.responseNll(samples);
      got.forEach((g, i) => expect(Math.abs(g - want[i]!) / want[i]!, `${engine} ${samples[i]!.id}`).toBeLessThan(1e-5));
      expect(await m.responseNll([])).toEqual(new Float64Array());
      await m.dispose();
    }
  }, 60_000);

  it('onnxruntime training is deterministic under a seed', async () => {
    const init = initDecoderWeights(config, 4);
    const runs: TensorMap[] = [];
    for (let k = 0; k < 2; k++) {
      const m = await openExperimentModel(config, tok, init, { engine: 'onnxruntime' });
      await m.train(pretrain, { epochs: 1, learningRate: 1e-2, batchSize: 4, seed: 1, parameters: 'all' });
      runs.push(m.baseWeights());
      await m.dispose();
    }
    for (const [n, t] of runs[0]!) expect(t.data, n).toEqual(runs[1]!.get(n)!.data);
  }, 60_000);
});
