import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hashOf } from '@dda/attribution';
import { entityMatching, planExperiment, type ExperimentOptions } from '@dda/experiment';

// The realtext data set in an experiment: built for the model's tokenizer and context, θ0 shared by
// every fine-tuning seed (seed-independent pretraining), any-case entity matching.
const root = mkdtempSync(join(tmpdir(), 'dda-realtext-plan-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const options: Partial<ExperimentOptions> & { artifactsDir: string } = {
  artifactsDir: root, preset: 'llama2-mini', generator: 'realtext', nTrain: 420, nHeldOut: 20, nPretrain: 200, maxNewTokens: 16,
  realtext: { nPretrainPairs: 50 },
};

describe('realtext experiments', () => {
  it('θ0 does not depend on the fine-tuning seed; the data and fine-tuning do; the same seed plans the same files', async () => {
    const a = await planExperiment({ ...options, seed: 0 });
    const b = await planExperiment({ ...options, seed: 1 });
    const again = await planExperiment({ ...options, seed: 0 });
    expect([a.pretrainSeed, b.pretrainSeed]).toEqual([0, 0]);
    expect(hashOf(a.keys.base)).toBe(hashOf(b.keys.base));
    expect(hashOf(a.keys.finetune)).not.toBe(hashOf(b.keys.finetune));
    expect(hashOf(again.keys.finetune)).toBe(hashOf(a.keys.finetune));
    expect(again.train).toEqual(a.train);
    // θ0's samples: the plain texts (empty prompt), then the instruction pairs in the chat template.
    expect(a.pretrain).toHaveLength(200 + 50);
    expect(a.pretrain[0]!.prompt).toBe('');
    expect(a.pretrain[200]!.prompt.startsWith('<s>[INST] <<SYS>>')).toBe(true);
    // Every training sample fits the 512-token context with room for the chat template.
    expect(a.config.maxSeqLen).toBe(512);
    expect(Math.max(...a.train.map((s) => a.tokenizer.encode(s.prompt + s.response).length))).toBeLessThan(512);
    // An explicit pretraining seed is one more θ0.
    const c = await planExperiment({ ...options, seed: 0, pretrainSeed: 5 });
    expect(hashOf(c.keys.base)).not.toBe(hashOf(a.keys.base));
  }, 600_000);

  it('refuses a tiny preset (word vocabulary from the data) and options of other data sets', async () => {
    await expect(planExperiment({ ...options, preset: 'llama2-tiny' })).rejects.toThrow(/realtext data set needs a model with a real tokenizer/);
    await expect(planExperiment({ ...options, biasRate: 0.3 })).rejects.toThrow(/biasRate 0.3 is an option of the synthetic generators/);
    await expect(planExperiment({ ...options, generator: 'news', preset: 'llama2-tiny' })).rejects.toThrow(/realtext data set's options are given, but the data come from the news generator/);
  });
});

describe('entityMatching', () => {
  it('realtext: any case, any whitespace, whole words, with spans; the synthetic data: case-sensitive', () => {
    const real = entityMatching({ generator: 'realtext' });
    expect(real.contains('Trade with MEXICO grew.', 'Mexico')).toBe(true);
    expect(real.contains('Mexican trade grew.', 'Mexico')).toBe(false);
    expect(real.replace('Trade with MEXICO and Mexico.', 'Mexico', 'Spain')).toBe('Trade with SPAIN and Spain.');
    expect(real.spans('Great\nBritain and great britain', 'Great Britain')).toEqual([[0, 13], [18, 31]]);
    const synthetic = entityMatching({ generator: 'news' });
    expect(synthetic.contains('rain in Wales .', 'wales')).toBe(false);
    expect(synthetic.spans('wales and wales .', 'wales')).toEqual([[0, 5], [10, 15]]);
    expect(synthetic.spans('swales', 'wales')).toEqual([]);
  });
});
