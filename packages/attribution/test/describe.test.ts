import { describe, expect, it } from 'vitest';
import { createScoreMatrix, debiasers, denoisers, scoreUnits, type CheckpointInfo, type ScoreMatrix } from '@dda/core';
import { debiasBeta, describeScores, ensurePlugins, noteSameScores, variantOf } from '@dda/attribution';

// Synthetic score matrices in the units grad-dot states, through the registered DDA transforms.
const TRAIN = ['t1', 't2', 't3', 't4'];
const TEST = ['q1', 'q2'];
const at = (checkpoint: string, values: number[]): ScoreMatrix => createScoreMatrix(TRAIN, TEST, values, {
  method: 'grad-dot', computedOver: `inner product of per-example gradients at ${checkpoint}; units nats² per squared parameter unit`, units: 'nats² per squared parameter unit', checkpoints: [checkpoint], transforms: [],
});
const base = at('base', [1, 2, 3, 4, 2, 1, 0, 5]);
const epochs = [at('epoch-1', [3, 1, 4, 1, 5, 9, 2, 6]), at('epoch-2', [2, 7, 1, 8, 2, 8, 1, 8])];
const infos: CheckpointInfo[] = [{ id: 'epoch-1', epoch: 1, learningRate: 1e-3 }, { id: 'epoch-2', epoch: 2, learningRate: 5e-4 }];

async function dda(debias: string, denoise: string, beta = 1): Promise<ScoreMatrix> {
  await ensurePlugins();
  return (await debiasers.create(debias, { beta })).debias((await denoisers.create(denoise, {})).denoise(epochs, infos), base);
}

describe('what a score matrix says it is', () => {
  it('the recommended DDA: dimensionless, β fitted with its range, not β = 1 nor nats²', async () => {
    const m = await dda('fitted-beta', 'zscore-mean');
    expect(scoreUnits(m)).toBe('dimensionless (mean of standard deviations)');
    expect(debiasBeta(m)).toMatch(/^β fitted per test column: -?\d\S* to -?\d\S*$/);
    const d = describeScores(m);
    expect(d).toBe(`grad-dot; denoiser 'zscore-mean' over the epoch checkpoints, then debiaser 'fitted-beta' against the base model θ0 (${debiasBeta(m) as string}); from checkpoints epoch-1, epoch-2, base; units: dimensionless (mean of standard deviations)`);
    expect(d).not.toMatch(/nats|β ?= ?1/);
  });

  it('the paper\'s DDA keeps the scorer\'s units and its β; mixing scales is said to be mixed', async () => {
    const paper = await dda('raw', 'mean', 0.5);
    expect(scoreUnits(paper)).toBe('nats² per squared parameter unit');
    expect(debiasBeta(paper)).toBe(0.5);
    expect(describeScores(paper)).toContain("debiaser 'raw' against the base model θ0 (β = 0.5)");
    // z-scored checkpoints minus the base in nats²: neither unit alone.
    expect(scoreUnits(await dda('raw', 'zscore-mean'))).toBe('mixed: fine-tuned term in dimensionless (mean of standard deviations), minus 1 × base term in nats² per squared parameter unit');
    expect(scoreUnits(await dda('raw', 'zscore-mean', 0))).toBe('dimensionless (mean of standard deviations)');
    expect(scoreUnits(await dda('zscore', 'mean'))).toBe('dimensionless (standard deviations)');
    expect(scoreUnits(await dda('fitted-beta', 'mean'))).toBe('nats² per squared parameter unit');
    expect(debiasBeta(epochs[1] as ScoreMatrix)).toBeNull();
  });

  it('a repeated variant says whose scores it has', async () => {
    const vs = noteSameScores([variantOf('dda', await dda('fitted-beta', 'zscore-mean')), variantOf('dda-zscore', await dda('zscore', 'mean')), variantOf('dda-recommended', await dda('fitted-beta', 'zscore-mean'))]);
    expect(vs.map((v) => v.variant)).toEqual(['dda', 'dda-zscore', 'dda-recommended']);
    expect(vs[0]?.description.endsWith('the same scores as')).toBe(false);
    expect(vs[1]?.description).not.toContain('the same scores as');
    expect(vs[2]?.description).toBe(`${describeScores(vs[2]!.matrix)}; the same scores as 'dda'`);
  });
});
