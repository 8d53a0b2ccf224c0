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
      onState: (p) => { calls.push(`state ${p.epoch}.${p.step}`); },
      onEpochEnd: (epoch, mean) => { calls.push(`end ${epoch} ${mean}`); },
    }, async (batch) => {
      batches.push([...batch]);
      return batch.length; // loss = batch size: the epoch mean is Σ size² / n
    });
    const rng = new SeededRandom(7);
    const orders = [0, 1].map(() => rng.shuffle([0, 1, 2, 3, 4]).map((i) => examples[i]));
    expect(batches).toEqual(orders.flatMap((o) => [o.slice(0, 2), o.slice(2, 4), o.slice(4)]));
    expect(losses).toEqual([9 / 5, 9 / 5]);
    expect(calls).toEqual(['step 1/6 2', 'step 2/6 2', 'step 3/6 1', 'state 1.0', 'end 1 1.8', 'step 4/6 2', 'step 5/6 2', 'step 6/6 1', 'state 2.0', 'end 2 1.8']);
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

  it('with stateEverySeconds 0, reports its position after every step but an epoch\'s last; resumed there, runs the batches and epoch means of an uninterrupted run', async () => {
    const loss = (b: readonly string[]): number => b.join('').charCodeAt(0) / 100;
    const all: string[][] = [];
    const positions: { epoch: number; step: number; lossSum: number }[] = [];
    const whole = await trainingLoop(examples, { epochs: 3, batchSize: 2, seed: 4, stateEverySeconds: 0, onState: (p) => { positions.push(p); } }, async (b) => (all.push([...b]), loss(b)));
    expect(positions.map((p) => `${p.epoch}.${p.step}`)).toEqual(['0.1', '0.2', '1.0', '1.1', '1.2', '2.0', '2.1', '2.2', '3.0']);
    const mid = positions[4] as { epoch: number; step: number; lossSum: number };
    expect(mid.lossSum).toBe(2 * loss(all[3] as string[]) + 2 * loss(all[4] as string[]));
    const later: string[][] = [];
    const steps: number[] = [];
    const losses = await trainingLoop(examples, { epochs: 3, batchSize: 2, seed: 4, from: mid, onStep: (s) => steps.push(s) }, async (b) => (later.push([...b]), loss(b)));
    expect(later).toEqual(all.slice(5));
    expect(steps).toEqual([6, 7, 8, 9]);
    expect(losses).toEqual(whole.slice(1));
    // Without stateEverySeconds: after epochs only.
    const epochsOnly: string[] = [];
    await trainingLoop(examples, { epochs: 2, batchSize: 2, seed: 4, onState: (p) => { epochsOnly.push(`${p.epoch}.${p.step}`); } }, async (b) => loss(b));
    expect(epochsOnly).toEqual(['1.0', '2.0']);
  });

  it('refuses what it cannot train and stops at a non-finite loss, naming the epoch', async () => {
    const one = async (): Promise<number> => 1;
    await expect(trainingLoop([], { epochs: 1, batchSize: 1, seed: 0 }, one)).rejects.toThrow(/empty data set/);
    await expect(trainingLoop(examples, { epochs: 1.5, batchSize: 1, seed: 0 }, one)).rejects.toThrow(/epochs must be a non-negative integer/);
    await expect(trainingLoop(examples, { epochs: 1, batchSize: 0, seed: 0 }, one)).rejects.toThrow(/batchSize must be a positive integer/);
    await expect(trainingLoop(examples, { epochs: 1, batchSize: 1, seed: 0, from: 2 }, one)).rejects.toThrow(/resume: epoch 2 of 1/);
    await expect(trainingLoop(examples, { epochs: 2, batchSize: 2, seed: 0, from: { epoch: 0, step: 3, lossSum: 1 } }, one)).rejects.toThrow(/resume: step 3 of epoch 1 .*an epoch has 3 steps/);
    await expect(trainingLoop(examples, { epochs: 2, batchSize: 2, seed: 0, from: { epoch: 2, step: 1, lossSum: 1 } }, one)).rejects.toThrow(/resume: step 1 of epoch 3/);
    await expect(trainingLoop(examples, { epochs: 2, batchSize: 2, seed: 0, from: { epoch: 0, step: 1, lossSum: Number.NaN } }, one)).rejects.toThrow(/loss sum NaN/);
    let n = 0;
    await expect(trainingLoop(examples, { epochs: 3, batchSize: 5, seed: 0 }, async () => (++n === 2 ? Number.NaN : 1))).rejects.toThrow(/training diverged at epoch 2 \(loss NaN\)/);
    expect(await trainingLoop(examples, { epochs: 0, batchSize: 2, seed: 0 }, one)).toEqual([]);
  });
});
