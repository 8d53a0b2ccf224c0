import { describe, expect, it } from 'vitest';
import { DdaError, SeededRandom, scorers, type ScoringInput } from '@dda/core';
import { fnv1a, randomScores, registerRandomScorer } from '@dda/scorer-random';

function input(checkpoint: string, nTrain = 4, nTest = 3): ScoringInput {
  const fail = async (): Promise<never> => {
    throw new Error('random must not ask for gradients');
  };
  return {
    checkpoint,
    train: Array.from({ length: nTrain }, (_, i) => ({ id: `z${i}`, prompt: 'p', response: 'r' })),
    test: Array.from({ length: nTest }, (_, j) => ({ id: `e${j}`, prompt: 'p', response: 'r' })),
    trainGradients: fail,
    testGradients: fail,
  };
}

describe('random', () => {
  it('draws SeededRandom(seed).next() in row-major order', () => {
    const r = new SeededRandom(7);
    const want = Array.from({ length: 6 }, () => r.next());
    const m = randomScores(['z0', 'z1', 'z2'], ['e0', 'e1'], { seed: 7 });
    expect(Array.from(m.values)).toEqual(want);
    expect(m.trainIds).toEqual(['z0', 'z1', 'z2']);
    m.values.forEach((x) => expect(x >= 0 && x < 1).toBe(true));
    expect(Array.from(randomScores(['a'], ['b']).values)).toEqual([new SeededRandom(0).next()]); // default seed 0
  });

  it('is deterministic under a seed, different across seeds, and by default the same at every checkpoint', async () => {
    registerRandomScorer(); // idempotent
    const s = await scorers.create('random', { seed: 3 });
    expect(s.needs).toEqual([]);
    const a = await s.score(input('base'));
    const b = await (await scorers.create('random', { seed: 3 })).score(input('epoch-2'));
    const c = await (await scorers.create('random', { seed: 4 })).score(input('base'));
    expect(Array.from(b.values)).toEqual(Array.from(a.values));
    expect(Array.from(c.values)).not.toEqual(Array.from(a.values));
    expect(a.provenance).toMatchObject({ method: 'random', checkpoints: ['base'] });
  });

  it('with perCheckpoint mixes the checkpoint id into the seed, reproducibly', async () => {
    expect(fnv1a('')).toBe(0x811c9dc5);
    expect(fnv1a('a')).toBe(0xe40c292c); // FNV-1a test vector
    const s = await scorers.create('random', { seed: 3, perCheckpoint: true });
    const base = await s.score(input('base'));
    const base2 = await s.score(input('base'));
    const ep1 = await s.score(input('epoch-1'));
    expect(Array.from(base2.values)).toEqual(Array.from(base.values));
    expect(Array.from(ep1.values)).not.toEqual(Array.from(base.values));
    const r = new SeededRandom((3 ^ fnv1a('epoch-1')) >>> 0);
    expect(ep1.values[0]).toBe(r.next());
  });

  it('rejects a seed that is not an integer and a non-boolean perCheckpoint', async () => {
    expect(() => randomScores(['a'], ['b'], { seed: 1.5 })).toThrow(DdaError);
    expect(() => randomScores(['a'], ['b'], { seed: 1.5 })).toThrow(/'seed' must be an integer/);
    await expect(scorers.create('random', { seed: 0.1 })).rejects.toThrow(/'seed' must be an integer/);
    await expect(scorers.create('random', { perCheckpoint: 'yes' })).rejects.toThrow(/'perCheckpoint' must be true or false/);
  });
});
