import { beforeAll, describe, expect, it } from 'vitest';
import { DdaError, scorers, type ModelStepOptions, type ProgressUpdate, type ScoringInput, type ScoringModel, type TextSample } from '@dda/core';
import { DEFAULT_LORA, TINY_PRESETS, WordTokenizer, initDecoderWeights, type DecoderConfig } from '@dda/model';
import { DecoderModel, startTfjsBackend } from '@dda/backend-tfjs';
import { ceaScorer, ceaScores, registerCeaScorer } from '@dda/scorer-cea';

const tok = WordTokenizer.fromCorpus(['the match was in england wales china scotland today .']);
const config: DecoderConfig = { ...TINY_PRESETS['llama2-tiny']!, vocabSize: tok.size, hiddenSize: 16, intermediateSize: 24, numHeads: 2, numKvHeads: 2 };

// One test error ("... in china") with its correction ("... in england"). The training set holds a
// sample identical to the error, one identical to the correction, and an unrelated one.
const prompt = 'the match today';
const error: TextSample = { id: 'err-0', prompt, response: 'the match was in china .' };
const correction: TextSample = { id: 'err-0', prompt, response: 'the match was in england .' };
const train: TextSample[] = [
  { id: 't-error', prompt, response: error.response },
  { id: 't-correction', prompt, response: correction.response },
  { id: 't-other', prompt: 'wales', response: 'scotland today .' },
];

function tinyModel(): DecoderModel {
  const m = new DecoderModel(config, tok, initDecoderWeights(config, 7));
  m.addLora(DEFAULT_LORA, 3);
  return m;
}

function input(m: DecoderModel | undefined, corrections: readonly TextSample[] | undefined, log?: ModelStepOptions[]): ScoringInput {
  const model: ScoringModel | undefined = m && {
    lossesAfterSteps: async (u, e, o) => {
      log?.push(o);
      return m.lossesAfterLoraSteps(u, e, o);
    },
  };
  const noGradients = async (): Promise<never> => {
    throw new Error('cea must not ask for gradients');
  };
  return {
    checkpoint: 'epoch-1', train, test: [error],
    trainGradients: noGradients, testGradients: noGradients,
    ...(corrections ? { testCorrections: corrections } : {}),
    ...(model ? { model } : {}),
  };
}

describe('cea', () => {
  beforeAll(async () => {
    await startTfjsBackend(['tfjs-wasm']);
  });

  it('ranks the training sample identical to the error above the one identical to its correction', async () => {
    const m = tinyModel();
    const before = m.losses(train);
    const log: ModelStepOptions[] = [];
    const updates: ProgressUpdate[] = [];
    const s = await ceaScores({ ...input(m, [correction], log), progress: (u) => updates.push(u) }, { steps: 2, learningRate: 1e-3 });
    // One progress update per query, labelled with the scorer and the checkpoint.
    expect(updates.map((u) => [u.done, u.total])).toEqual([[1, 1]]);
    expect(updates[0]?.label).toBe('cea at epoch-1: 2 steps on each of 1 queries and its correction, then 3 training losses each');
    expect(s.trainIds).toEqual(['t-error', 't-correction', 't-other']);
    expect(s.testIds).toEqual(['err-0']);
    const [onError, onCorrection] = [s.values[0]!, s.values[1]!];
    expect(onError).toBeGreaterThan(0); // steps on the error lowered its twin's loss more than steps on the correction
    expect(onCorrection).toBeLessThan(0);
    expect(onError).toBeGreaterThan(onCorrection);
    expect(log).toEqual([
      { steps: 2, learningRate: 1e-3, optimizer: 'adam' },
      { steps: 2, learningRate: 1e-3, optimizer: 'adam' },
    ]);
    expect(s.provenance).toMatchObject({ method: 'cea', checkpoints: ['epoch-1'], transforms: [] });
    expect(s.provenance.computedOver).toMatch(/2 adam step\(s\).*nats\/token; higher = more responsible/);
    // It equals the loss difference computed by hand, and leaves the model as it was.
    const afterCorrection = await m.lossesAfterLoraSteps([correction], train, { steps: 2, learningRate: 1e-3, optimizer: 'adam' });
    const afterError = await m.lossesAfterLoraSteps([error], train, { steps: 2, learningRate: 1e-3, optimizer: 'adam' });
    train.forEach((_, i) => expect(s.values[i]).toBe(afterCorrection[i]! - afterError[i]!));
    expect(Array.from(m.losses(train))).toEqual(Array.from(before));
    // The same sign with SGD.
    const sgd = await ceaScores(input(m, [correction]), { steps: 3, learningRate: 0.05, optimizer: 'sgd' });
    expect(sgd.values[0]!).toBeGreaterThan(0);
    expect(sgd.values[1]!).toBeLessThan(0);
    m.dispose();
  });

  it('one small SGD step agrees with its first-order expansion η·∇ℓ(z_t)·(∇ℓ(error) − ∇ℓ(correction))', async () => {
    const m = tinyModel();
    const lr = 0.02;
    const s = await ceaScores(input(m, [correction]), { steps: 1, learningRate: lr, optimizer: 'sgd' });
    const g = m.perExampleGradients(train, 'lora', 'x').rows;
    const [ge, gc] = m.perExampleGradients([error, { ...correction, id: 'c' }], 'lora', 'x').rows as [Float32Array, Float32Array];
    train.forEach((_, i) => {
      let want = 0;
      for (let k = 0; k < ge.length; k++) want += lr * g[i]![k]! * (ge[k]! - gc[k]!);
      expect(Math.abs(s.values[i]! - want)).toBeLessThan(0.1 * Math.abs(want) + 1e-5);
    });
    m.dispose();
  });

  it('is deterministic: a fresh model gives bit-identical scores; registered with defaults', async () => {
    registerCeaScorer(); // idempotent
    expect(scorers.has('cea')).toBe(true);
    const scorer = await scorers.create('cea', {});
    expect(scorer.needs).toEqual(['model', 'corrections']);
    const runs: number[][] = [];
    for (let k = 0; k < 2; k++) {
      const m = tinyModel();
      const log: ModelStepOptions[] = [];
      runs.push(Array.from((await scorer.score(input(m, [correction], log))).values));
      expect(log[0]).toEqual({ steps: 3, learningRate: 3e-3, optimizer: 'adam' });
      m.dispose();
    }
    expect(runs[1]).toEqual(runs[0]);
  });

  it('says what to change when corrections or model access are missing, or options are wrong', async () => {
    const m = tinyModel();
    await expect(ceaScores(input(m, undefined))).rejects.toThrow(/needs the corrected version of every test output/);
    await expect(ceaScores(input(undefined, [correction]))).rejects.toThrow(/needs to take optimizer steps on the model.*no model access/);
    await expect(ceaScores(input(m, [{ ...correction, id: 'other' }]))).rejects.toThrow(/corrections do not match the 1 test outputs/);
    await expect(ceaScores(input(m, []))).rejects.toThrow(DdaError);
    expect(() => ceaScorer({ steps: 0 })).toThrow(/'steps' must be a positive integer/);
    expect(() => ceaScorer({ learningRate: 0 })).toThrow(/'learningRate' must be a positive/);
    await expect(scorers.create('cea', { optimizer: 'rmsprop' })).rejects.toThrow(/'adam' or 'sgd'/);
    m.dispose();
  });
});
