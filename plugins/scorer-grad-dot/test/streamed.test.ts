import { describe, expect, it } from 'vitest';
import { SeededRandom, scorers, type GradientMatrix, type ScoringInput } from '@dda/core';
import { registerGradDotScorers } from '@dda/scorer-grad-dot';

registerGradDotScorers();

function randomGrads(rng: SeededRandom, n: number, dim: number, prefix: string): GradientMatrix {
  return {
    ids: Array.from({ length: n }, (_, i) => `${prefix}${i}`), dim, checkpoint: 'epoch-1',
    rows: Array.from({ length: n }, () => Float32Array.from({ length: dim }, () => rng.normal())),
    parameterNames: ['w'], parameterSizes: [dim],
  };
}

/** An input whose training gradients are also offered in blocks of `rows` (reads are counted). */
function blockedInput(train: GradientMatrix, test: GradientMatrix, rows: number): { input: ScoringInput; fullReads: () => number } {
  let full = 0;
  const input: ScoringInput = {
    checkpoint: 'epoch-1',
    train: train.ids.map((id) => ({ id, prompt: 'p', response: 'r' })),
    test: test.ids.map((id) => ({ id, prompt: 'p', response: 'r' })),
    trainGradients: async () => { full++; return train; },
    testGradients: async () => test,
    trainGradientBlocks: async () => ({
      ids: train.ids, dim: train.dim, checkpoint: train.checkpoint, blockCount: Math.ceil(train.rows.length / rows),
      readBlock: async (b) => ({ ...train, ids: train.ids.slice(b * rows, (b + 1) * rows), rows: train.rows.slice(b * rows, (b + 1) * rows) }),
    }),
  };
  return { input, fullReads: () => full };
}

describe('row-separable gradient scorers stream the training gradients in blocks', () => {
  const rng = new SeededRandom(11);
  const train = randomGrads(rng, 23, 7, 't');
  const test = randomGrads(rng, 4, 7, 'e');
  for (const id of ['grad-dot', 'grad-cos', 'tracin-cp']) {
    it(`${id}: the same scores as from the whole matrix, without reading it`, async () => {
      const s = await scorers.create(id, { engine: 'js' });
      const whole = await s.score({ ...blockedInput(train, test, 5).input, trainGradientBlocks: undefined as never });
      const { input, fullReads } = blockedInput(train, test, 5);
      const streamed = await s.score(input);
      expect(fullReads()).toBe(0);
      expect(Array.from(streamed.values)).toEqual(Array.from(whole.values));
      expect(streamed.trainIds).toEqual(train.ids);
      expect(streamed.provenance.computedOver).toMatch(/streamed in 5 blocks/);
    });
  }
  it('refuses blocks whose ids do not match the training samples', async () => {
    const s = await scorers.create('grad-dot', { engine: 'js' });
    const { input } = blockedInput(train, test, 5);
    await expect(s.score({ ...input, train: input.train.slice(1) })).rejects.toThrow(/do not match the 22 training samples/);
  });
});
