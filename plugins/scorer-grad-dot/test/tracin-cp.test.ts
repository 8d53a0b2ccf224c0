import { describe, expect, it } from 'vitest';
import { scoreForFineTuned, scorers, type CheckpointInfo, type GradientMatrix, type ScoringInput } from '@dda/core';
import '@dda/plugin-dda'; // registers the lr-weighted denoiser tracin-cp combines with
import { gradDotScorer, tracInCpScorer } from '@dda/scorer-grad-dot';

function grads(rows: number[][], prefix: string, checkpoint: string): GradientMatrix {
  return {
    ids: rows.map((_, i) => `${prefix}${i}`),
    dim: 2,
    rows: rows.map((r) => Float32Array.from(r)),
    parameterNames: ['lora.a'],
    parameterSizes: [2],
    checkpoint,
  };
}

function input(train: GradientMatrix, test: GradientMatrix): ScoringInput {
  return {
    checkpoint: train.checkpoint,
    train: train.ids.map((id) => ({ id, prompt: 'p', response: 'r' })),
    test: test.ids.map((id) => ({ id, prompt: 'p', response: 'r' })),
    trainGradients: async () => train,
    testGradients: async () => test,
  };
}

// Two epoch checkpoints with learning rates 0.1 and 0.3.
// epoch-1: g = [1,2], [0,1]; h = [1,1]  → terms 3, 1
// epoch-2: g = [2,0], [1,-1]; h = [0,1] → terms 0, -1
// TracIn-CP = Σ η_i term_i: z0 = 0.1·3 + 0.3·0 = 0.3, z1 = 0.1·1 + 0.3·(−1) = −0.2; Σ η = 0.4.
const inputs = [
  input(grads([[1, 2], [0, 1]], 'z', 'epoch-1'), grads([[1, 1]], 'e', 'epoch-1')),
  input(grads([[2, 0], [1, -1]], 'z', 'epoch-2'), grads([[0, 1]], 'e', 'epoch-2')),
];
const infos: CheckpointInfo[] = [
  { id: 'epoch-1', epoch: 1, learningRate: 0.1 },
  { id: 'epoch-2', epoch: 2, learningRate: 0.3 },
];

describe('tracin-cp', () => {
  it('is registered, declares its combination and gives the per-checkpoint terms', async () => {
    expect(scorers.has('tracin-cp')).toBe(true);
    const s = await scorers.create('tracin-cp', {});
    expect(s.combine).toEqual({ denoiser: 'lr-weighted' });
    expect(s.needs).toEqual(['gradients']);
    const m = await s.score(inputs[0]!);
    expect(Array.from(m.values)).toEqual([3, 1]);
    expect(m.provenance).toMatchObject({ method: 'tracin-cp', checkpoints: ['epoch-1'], transforms: [] });
  });

  it('combined over the epoch checkpoints equals the hand-computed TracIn-CP / Σ η', async () => {
    const s = tracInCpScorer();
    const perCheckpoint = await Promise.all(inputs.map((x) => s.score(x)));
    const m = await scoreForFineTuned(s, perCheckpoint, infos);
    expect(m.values[0]).toBeCloseTo(0.3 / 0.4, 14);
    expect(m.values[1]).toBeCloseTo(-0.2 / 0.4, 14);
    // Times Σ η: Pruthi et al.'s unnormalised sum.
    expect(m.values[0]! * 0.4).toBeCloseTo(0.3, 14);
    expect(m.values[1]! * 0.4).toBeCloseTo(-0.2, 14);
    expect(m.provenance.checkpoints).toEqual(['epoch-1', 'epoch-2']);
    expect(m.provenance.transforms).toEqual(['denoise:lr-weighted']);
    // Deterministic.
    const again = await scoreForFineTuned(s, await Promise.all(inputs.map((x) => s.score(x))), infos);
    expect(Array.from(again.values)).toEqual(Array.from(m.values));
  });

  it('a scorer without a combination answers with its final-checkpoint scores', async () => {
    const s = gradDotScorer();
    const perCheckpoint = await Promise.all(inputs.map((x) => s.score(x)));
    const m = await scoreForFineTuned(s, perCheckpoint, infos);
    expect(m).toBe(perCheckpoint[1]);
    expect(Array.from(m.values)).toEqual([0, -1]);
  });

  it('says what to change when the combination cannot be made', async () => {
    await expect(scoreForFineTuned({ id: 'x', combine: { denoiser: 'no-such' } }, [], infos)).rejects.toThrow(/no epoch checkpoint scores/);
    const m = await tracInCpScorer().score(inputs[0]!);
    await expect(scoreForFineTuned({ id: 'x', combine: { denoiser: 'no-such' } }, [m], infos.slice(0, 1))).rejects.toThrow(
      /denoiser 'no-such', which is not registered.*lr-weighted/,
    );
    // The denoiser checks that scores and checkpoint descriptions line up.
    await expect(scoreForFineTuned(tracInCpScorer(), [m], infos)).rejects.toThrow(/1 score matrices but 2 checkpoint descriptions/);
  });
});
