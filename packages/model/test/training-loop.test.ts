import { describe, expect, it } from 'vitest';
import { SeededRandom } from '@dda/core';
import { trainingLoop } from '@dda/model';

// The training loop every engine runs around its own optimizer step (tfjs's DecoderModel.trainEncoded,
// onnxruntime's OnnxTrainer.train): the order, the batches, the callbacks, resume and divergence.
describe('trainingLoop', () => {
  const examples = ['a', 'b', 'c', 'd', 'e'];

  it('runs one seeded shuffle per epoch in batches of batchSize, weights each batch loss by its size, and calls back in order', async () => {
    const batches: string[][] = [];
    const calls: string[] = [];
    const losses = await trainingLoop(examples, {
      epochs: 2, batchSize: 2, seed: 7,
      onStep: (step, total, loss) => calls.push(`step ${step}/${total} ${loss}`),
      onEpochState: (epoch) => { calls.push(`state ${epoch}`); },
      onEpochEnd: (epoch, mean) => { calls.push(`end ${epoch} ${mean}`); },
    }, async (batch) => {
      batches.push([...batch]);
      return batch.length; // loss = batch size: the epoch mean is Σ size² / n
    });
    const rng = new SeededRandom(7);
    const orders = [0, 1].map(() => rng.shuffle([0, 1, 2, 3, 4]).map((i) => examples[i]));
    expect(batches).toEqual(orders.flatMap((o) => [o.slice(0, 2), o.slice(2, 4), o.slice(4)]));
    expect(losses).toEqual([9 / 5, 9 / 5]);
    expect(calls).toEqual(['step 1/6 2', 'step 2/6 2', 'step 3/6 1', 'state 1', 'end 1 1.8', 'step 4/6 2', 'step 5/6 2', 'step 6/6 1', 'state 2', 'end 2 1.8']);
  });

  it('resumed after an epoch, runs the later epochs on the batches of an uninterrupted run, counting steps on', async () => {
    const all: string[][] = [];
    await trainingLoop(examples, { epochs: 3, batchSize: 2, seed: 1 }, async (b) => (all.push([...b]), 1));
    const later: string[][] = [];
    const steps: number[] = [];
    const losses = await trainingLoop(examples, { epochs: 3, batchSize: 2, seed: 1, from: 1, onStep: (s) => steps.push(s) }, async (b) => (later.push([...b]), 1));
    expect(later).toEqual(all.slice(3));
    expect(losses).toHaveLength(2);
    expect(steps).toEqual([4, 5, 6, 7, 8, 9]);
  });

  it('refuses what it cannot train and stops at a non-finite loss, naming the epoch', async () => {
    const one = async (): Promise<number> => 1;
    await expect(trainingLoop([], { epochs: 1, batchSize: 1, seed: 0 }, one)).rejects.toThrow(/empty data set/);
    await expect(trainingLoop(examples, { epochs: 1.5, batchSize: 1, seed: 0 }, one)).rejects.toThrow(/epochs must be a non-negative integer/);
    await expect(trainingLoop(examples, { epochs: 1, batchSize: 0, seed: 0 }, one)).rejects.toThrow(/batchSize must be a positive integer/);
    await expect(trainingLoop(examples, { epochs: 1, batchSize: 1, seed: 0, from: 2 }, one)).rejects.toThrow(/resume: epoch 2 of 1/);
    let n = 0;
    await expect(trainingLoop(examples, { epochs: 3, batchSize: 5, seed: 0 }, async () => (++n === 2 ? Number.NaN : 1))).rejects.toThrow(/training diverged at epoch 2 \(loss NaN\)/);
    expect(await trainingLoop(examples, { epochs: 0, batchSize: 2, seed: 0 }, one)).toEqual([]);
  });
});
