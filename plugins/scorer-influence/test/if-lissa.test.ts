import { describe, expect, it } from 'vitest';
import { DdaError, SeededRandom, scoreByStreamedFit, scorers, type GradientMatrix } from '@dda/core';
import { ifExactScores, ifLissaScores, ifLissaStreamedFit } from '@dda/scorer-influence';
import { grads, input, randomRows, relativeDifference, split } from './helpers.js';

const rng = new SeededRandom(7);
const trRows = randomRows(rng, 6, 5);
const teRows = randomRows(rng, 3, 5);
const train = grads(trRows, 'z');
const test = grads(teRows, 'e');

describe('if-lissa', () => {
  it('one step from x0 = v gives the hand-computed value', () => {
    // H = diag(1, 2.5) as in the if-exact test (λ = 0.5), s = 5: x1 = v + (1 − 0.1) v − (1/5) F v,
    // F v = [0.5, 2] for v = [1, 1], so x1 = [1.8, 1.5], H⁻¹ v ≈ x1 / 5 = [0.36, 0.3].
    const m = ifLissaScores(grads([[1, 0], [0, 2]], 'z'), grads([[1, 1]], 'e'), { damping: 0.5, scale: 5, depth: 1 });
    expect(m.values[0]).toBeCloseTo(0.36, 14);
    expect(m.values[1]).toBeCloseTo(0.6, 14);
  });

  it('runs the same recursion in the span of the training gradients (dual) as in parameter space (primal)', () => {
    for (const o of [{ damping: 0.3, depth: 50 }, { damping: 0.3, depth: 40, batch: 2, repeats: 3, seed: 5 }]) {
      const primal = ifLissaScores(train, test, { ...o, solver: 'primal' }).values;
      const dual = ifLissaScores(train, test, { ...o, solver: 'dual' }).values;
      primal.forEach((x, k) => expect(dual[k]).toBeCloseTo(x, 10));
    }
  });

  it('converges to if-exact with the full batch', () => {
    const exact = ifExactScores(train, test, { damping: 0.3 }).values;
    const lissa = ifLissaScores(train, test, { damping: 0.3, depth: 3000 });
    exact.forEach((x, k) => expect(lissa.values[k]).toBeCloseTo(x, 6));
    expect(lissa.provenance.computedOver).toMatch(/LiSSA \(depth 3000.*full batch/);
    // Too shallow is visibly not converged (the test above can fail).
    const shallow = ifLissaScores(train, test, { damping: 0.3, depth: 2 }).values;
    expect(Math.max(...exact.map((x, k) => Math.abs(x - shallow[k]!)))).toBeGreaterThan(1e-3);
  });

  it('with minibatches: deterministic under a seed, different across seeds, close to if-exact', () => {
    const exact = ifExactScores(train, test, { damping: 1 }).values;
    const o = { damping: 1, depth: 300, batch: 2, repeats: 200 };
    const a = ifLissaScores(train, test, { ...o, seed: 5 }).values;
    const b = ifLissaScores(train, test, { ...o, seed: 5, testBlock: 1 }).values;
    const c = ifLissaScores(train, test, { ...o, seed: 6 }).values;
    expect(Array.from(b)).toEqual(Array.from(a)); // same draws whatever the test blocking
    expect(Array.from(c)).not.toEqual(Array.from(a));
    const scale = Math.max(...exact.map(Math.abs));
    const err = Math.max(...exact.map((x, k) => Math.abs(a[k]! - x)));
    expect(err).toBeLessThan(0.1 * scale);
  });

  it('is registered, reads its options, and reports divergence and bad options clearly', async () => {
    const s = await scorers.create('if-lissa', { damping: 0.3, depth: 3000 });
    expect(s.needs).toEqual(['gradients']);
    const m = await s.score(input(train, test));
    const exact = ifExactScores(train, test, { damping: 0.3 }).values;
    exact.forEach((x, k) => expect(m.values[k]).toBeCloseTo(x, 6));
    expect(() => ifLissaScores(train, test, { scale: 1e-3, depth: 500 })).toThrow(/diverged.*increase the option scale/);
    expect(() => ifLissaScores(train, test, { depth: 0 })).toThrow(/'depth' must be a positive integer/);
    expect(() => ifLissaScores(train, test, { batch: -1 })).toThrow(DdaError);
    expect(() => ifLissaScores(train, test, { seed: 0.5 })).toThrow(/'seed' must be an integer/);
    expect(() => ifLissaScores(train, grads([[1, 2]], 'e'))).toThrow(/5 entries per row but test gradients 2/);
    await expect(scorers.create('if-lissa', { depth: 'deep' })).rejects.toThrow(/finite number/);
  });
});

describe('if-lissa over streamed training gradients (one fit pass per LiSSA step)', () => {
  it('gives the stored path\'s scores to float rounding: scale-aware or absolute damping, default or given scale, primal or dual, repeats', async () => {
    for (const o of [{ depth: 30 }, { damping: 0.3, depth: 50 }, { dampingRatio: 0.5, scale: 40, depth: 7, repeats: 3 }, { damping: 0.2, scale: 30, depth: 1 }, { depth: 25, batch: 6 }]) {
      const sf = ifLissaStreamedFit({ ...o, streamAboveBytes: 0 });
      expect(sf.fitPasses).toBe(o.depth);
      expect(sf.iterative).toBe(true);
      expect(sf.refuse?.(5, 6, 3)).toBeUndefined();
      const streamed = await scoreByStreamedFit(sf, split(train, [2, 1, 3]), test, 'epoch-1');
      expect(streamed.trainIds).toEqual(train.ids);
      for (const solver of ['primal', 'dual'] as const) {
        const stored = ifLissaScores(train, test, { ...o, solver });
        // The same recursion: the primal's numbers but for the order of the sums over blocks, the dual's up to its Gram form's rounding.
        expect(relativeDifference(stored.values, streamed.values), `${JSON.stringify(o)} against ${solver}`).toBeLessThan(solver === 'primal' ? 1e-13 : 1e-10);
      }
      expect(streamed.provenance.computedOver).toMatch(new RegExp(`LiSSA \\(depth ${o.depth}, .*full batch.*streamed: H⁻¹ g_test iterated over the training gradients in ${o.depth} passes`));
    }
  });

  it('converges to if-exact when deep enough, and a shallow one is visibly not converged', async () => {
    const exact = ifExactScores(train, test, { damping: 0.3 }).values;
    const deep = await scoreByStreamedFit(ifLissaStreamedFit({ damping: 0.3, depth: 3000 }), split(train, [3, 3]), test, 'epoch-1');
    exact.forEach((x, k) => expect(deep.values[k]).toBeCloseTo(x, 6));
    const shallow = await scoreByStreamedFit(ifLissaStreamedFit({ damping: 0.3, depth: 2 }), split(train, [3, 3]), test, 'epoch-1');
    expect(relativeDifference(exact, shallow.values)).toBeGreaterThan(1e-3);
  });

  it('refuses minibatches and the dual solver (the harness then stores the gradients), and keeps the stored path\'s divergence and option errors', async () => {
    const always = { streamAboveBytes: 0 };
    expect(ifLissaStreamedFit({ ...always, batch: 2 }).refuse?.(5, 6, 3)).toMatch(/batch = 2 draws a seeded minibatch of 2 of the 6 training gradients .* the stored path runs it .* leave batch out \(0: the full Fisher, streamed in 200 \+ 1 passes\)/);
    // A batch of at least every training gradient is the full batch.
    expect(ifLissaStreamedFit({ ...always, batch: 6 }).refuse?.(5, 6, 3)).toBeUndefined();
    expect(ifLissaStreamedFit({ ...always, solver: 'dual' }).refuse?.(5, 6, 3)).toMatch(/solver = 'dual' iterates on the n × n Gram matrix .* pass primal/);
    expect(ifLissaStreamedFit({ ...always, solver: 'primal' }).refuse?.(5, 6, 3)).toBeUndefined();
    // Small training gradients are stored (one pass) rather than computed depth + 1 times: up to 1 GiB by default.
    expect(ifLissaStreamedFit({ depth: 20 }).refuse?.(5, 6, 3)).toMatch(/computes every training gradient 20 \+ 1 times per checkpoint .* the 6 training gradients of a checkpoint take 0\.0 MiB \(at most streamAboveBytes = 1073741824\), far cheaper to store .* streamAboveBytes = 0 to stream/);
    expect(ifLissaStreamedFit().refuse?.(2 ** 20, 256, 3)).toMatch(/take 1024\.0 MiB/);
    expect(ifLissaStreamedFit().refuse?.(2 ** 20, 257, 3)).toBeUndefined();
    expect(ifLissaStreamedFit({ streamAboveBytes: 100 }).refuse?.(5, 6, 3)).toBeUndefined();
    expect(() => ifLissaStreamedFit({ streamAboveBytes: -1 })).toThrow(/'streamAboveBytes' must be an integer ≥ 0/);
    const streamed = (o: object, tr: GradientMatrix = train): Promise<unknown> => scoreByStreamedFit(ifLissaStreamedFit(o), split(tr, [4, 2]), test, 'epoch-1');
    await expect(streamed({ scale: 1e-3, depth: 500 })).rejects.toThrow(/diverged at step \d+ of 500.*increase the option scale/);
    expect(() => ifLissaScores(train, test, { scale: 1e-3, depth: 500 })).toThrow(/diverged/);
    expect(() => ifLissaStreamedFit({ depth: 0 })).toThrow(/'depth' must be a positive integer/);
    expect(() => ifLissaStreamedFit({ scale: -1 })).toThrow(/'scale' must be a positive finite number/);
    expect(() => ifLissaStreamedFit({ seed: 0.5 })).toThrow(/'seed' must be an integer/);
    expect(() => ifLissaStreamedFit({ dampingRatio: 0 })).toThrow(/'dampingRatio' must be a positive finite number/);
    await expect(scoreByStreamedFit(ifLissaStreamedFit(), [], test, 'epoch-1')).rejects.toThrow(/no training gradients/);
    await expect(streamed({}, grads(trRows.map((r) => r.map(() => 0)), 'z'))).rejects.toThrow(/every training gradient is zero at checkpoint 'epoch-1'/);
    const sf = ifLissaStreamedFit({ damping: 1, depth: 1 });
    const fit = await sf.finalize(await sf.fold(train, test, 0, null), 6, test, 0, null);
    await expect(sf.scoreBlock(fit, train, grads(randomRows(rng, 2, 5), 'e'), 'epoch-1')).rejects.toThrow(/the fit has \d+ entries, expected/);
    await expect(sf.fold(train, test, 1, null)).rejects.toThrow(/needs the fit of pass 1/);
  });

  it('is the registered scorer\'s streamed form', async () => {
    const s = await scorers.create('if-lissa', { depth: 12, damping: 0.3, streamAboveBytes: 0 });
    expect(s.streamedFit?.fitPasses).toBe(12);
    expect(s.streamedFit?.refuse?.(5, 6, 3)).toBeUndefined();
    const whole = await s.score(input(train, test));
    const streamed = await scoreByStreamedFit(s.streamedFit!, split(train, [1, 5]), test, 'epoch-1');
    expect(relativeDifference(whole.values, streamed.values)).toBeLessThan(1e-10);
  });
});
