import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScoreMatrix, scorers, type Scorer, type ScoringInput } from '@dda/core';
import { runDda, type DdaRunOptions, type DdaRunResult } from '@dda/harness';

// The small configuration of demo.test.ts; every run below shares its checkpoints and gradients.
const SMALL: Partial<DdaRunOptions> = {
  seed: 0, nPretrain: 600, pretrainEpochs: 2, nTrain: 120, nHeldOut: 16, finetuneEpochs: 2, k: 10,
};

/** What the probe scorer saw at each checkpoint. */
const seen: { checkpoint: string; corrections: number; sameIds: boolean; samePrompts: boolean; differ: boolean; restored: boolean }[] = [];

/**
 * A scorer that needs model access and corrections: records what the harness offers, and scores
 * every training sample by its loss after one optimizer step on the first test output's correction.
 */
const probe: Scorer = {
  id: 'test-model-probe',
  description: 'test probe of ScoringInput.model and testCorrections',
  needs: ['model', 'corrections'],
  async score(input: ScoringInput) {
    const c = input.testCorrections ?? [];
    const opts = { steps: 1, learningRate: 3e-3, optimizer: 'adam' as const };
    const first = await input.model!.lossesAfterSteps(c.slice(0, 1), input.train.slice(0, 4), opts);
    const again = await input.model!.lossesAfterSteps(c.slice(0, 1), input.train.slice(0, 4), opts);
    seen.push({
      checkpoint: input.checkpoint,
      corrections: c.length,
      sameIds: c.length === input.test.length && c.every((s, j) => s.id === input.test[j]!.id),
      samePrompts: c.every((s, j) => s.prompt === input.test[j]!.prompt),
      differ: c.every((s, j) => s.response !== input.test[j]!.response),
      restored: Array.from(first).join() === Array.from(again).join(), // the adapter was restored after the first call
    });
    const values = new Float64Array(input.train.length * input.test.length);
    const all = await input.model!.lossesAfterSteps(c.slice(0, 1), input.train, opts);
    for (let i = 0; i < input.train.length; i++) for (let j = 0; j < input.test.length; j++) values[i * input.test.length + j] = -all[i]!;
    return createScoreMatrix(input.train.map((s) => s.id), input.test.map((s) => s.id), values, {
      method: probe.id, computedOver: 'test probe', checkpoints: [input.checkpoint], transforms: [],
    });
  },
};

describe('the harness honours the scorer extensions (combine, model access, corrections)', () => {
  let dir: string;
  let gradDot: DdaRunResult;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dda-ext-'));
    gradDot = await runDda({ ...SMALL, outDir: dir });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("tracin-cp's plain row is its lr-weighted combination over the epoch checkpoints", async () => {
    const r = await runDda({ ...SMALL, outDir: dir, scorer: 'tracin-cp' });
    const plain = r.scores.get('plain')!;
    expect(plain.provenance).toMatchObject({ method: 'tracin-cp', checkpoints: ['checkpoint-8', 'checkpoint-16'], transforms: ['denoise:lr-weighted'] });
    expect(r.rows.find((x) => x.variant === 'plain')!.description).toMatch(/tracin-cp; denoiser 'lr-weighted' over the epoch checkpoints; from checkpoints checkpoint-8, checkpoint-16/);
    // Equal learning rates: the lr-weighted mean of the per-checkpoint terms (= grad-dot) is grad-dot's mean over the
    // epochs (up to float32 rounding: grad-dot may run on onnxruntime's float32 GEMM, tracin-cp sums in float64).
    const want = gradDot.scores.get('denoise')!.values;
    expect(plain.values.length).toBe(want.length);
    plain.values.forEach((v, k) => expect(Math.abs(v - want[k]!)).toBeLessThan(1e-5 * (1 + Math.abs(want[k]!))));
    // grad-dot's plain row is still the final checkpoint.
    expect(gradDot.scores.get('plain')!.provenance.checkpoints).toEqual(['checkpoint-16']);
  });

  it('offers model access (restored after each call) and the corrected test outputs to a scorer that needs them', async () => {
    if (!scorers.has(probe.id)) scorers.register({ id: probe.id, description: probe.description, priority: -1, create: () => probe });
    const r = await runDda({ ...SMALL, outDir: dir, scorer: probe.id });
    expect(seen.map((s) => s.checkpoint)).toEqual(['base', 'checkpoint-8', 'checkpoint-16']);
    for (const s of seen) expect(s).toMatchObject({ corrections: r.errors.length, sameIds: true, samePrompts: true, differ: true, restored: true });
    // A scorer that uses the model gets every variant, not only the plain row.
    expect([...r.scores.keys()]).toEqual(['plain', 'debias', 'denoise', 'dda', 'debias-zscore', 'dda-zscore', 'dda-recommended']);
    // Different checkpoints give different losses: the model was set to each checkpoint's adapter.
    expect(Array.from(r.scores.get('plain')!.values)).not.toEqual(Array.from(r.scores.get('debias')!.values));
  });
});
