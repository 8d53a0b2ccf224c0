import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AttributionRun, CheckpointModel, FD_LOSS_STEP, FD_MAX_RELATIVE_STEP, directionOf, finiteDifferenceStep, loadTask, tokenAttribution, tokenDirectionalDerivatives, tokenPieces, topK,
  type AttributionTask, type CheckpointScores,
} from '@dda/attribution';
import { WordTokenizer, SPECIAL_TOKENS, loadModelFolder, saveModelFolder } from '@dda/model';
import { DecoderModel, startTfjsBackend } from '@dda/backend-tfjs';
import type { GradientMatrix, TextSample } from '@dda/core';
import { makeUserRun } from './fixtures/user-run.js';

// Per-token attribution: directional derivatives of the per-token losses along a query gradient,
// by central difference on both engines, against exact per-token gradient dot products (tfjs
// autodiff with a one-token loss mask) and against the grad-dot score they must add up to.
const dir = mkdtempSync(join(tmpdir(), 'dda-tokens-'));
let task: AttributionTask;
let run: AttributionRun;
let scores: CheckpointScores;
let h: GradientMatrix;
let user: ReturnType<typeof makeUserRun>;
afterAll(async () => {
  await run?.dispose();
  rmSync(dir, { recursive: true, force: true });
});
beforeAll(async () => {
  await startTfjsBackend();
  const u = (user = makeUserRun(join(dir, 'user'), 12, 2));
  task = await loadTask({ base: u.base, checkpoints: [u.run], train: u.train, queries: u.queries });
  run = await AttributionRun.open(task, { artifactsDir: join(dir, 'artifacts'), gradientEngine: 'onnxruntime' });
  scores = await run.scoreCheckpoints('grad-dot');
  h = await run.queryGradients(task.checkpoints[1]!);
});

/** ∇ℓ_t · h for every response position t of `s`, by tfjs autodiff of the loss of token t alone. */
function exactTokenDots(s: TextSample, direction: Float32Array): { positions: number[]; dots: number[]; weights: number[] } {
  const cp = task.checkpoints[1]!;
  const model = new DecoderModel(task.base.config, task.base.tokenizer, task.base.weights);
  try {
    model.setLora(cp.lora!, cp.weights);
    const e = task.encode(s);
    const positions = [...e.lossMask.keys()].filter((p) => e.lossMask[p] !== 0);
    const oneHot = positions.map((p) => {
      const m = new Float32Array(e.lossMask.length);
      m[p] = 1;
      return { tokens: e.tokens, lossMask: m };
    });
    const g = model.perExampleGradientsEncoded(positions.map(String), oneHot, 'lora', cp.id);
    const mass = e.lossMask.reduce((a, b) => a + b, 0);
    return {
      positions,
      dots: g.rows.map((r) => r.reduce((a, v, d) => a + v * (direction[d] as number), 0)),
      weights: positions.map((p) => e.lossMask[p]! / mass),
    };
  } finally {
    model.dispose();
  }
}

describe('per-token attribution', () => {

  it('matches exact per-token gradient dot products on both engines, and sums to the grad-dot score', async () => {
    const cp = task.checkpoints[1]!;
    const samples = task.train.samples.slice(0, 3);
    const d = directionOf(h, 0);
    const final = scores.epochs[1]!;
    for (const engine of ['onnxruntime', 'tfjs'] as const) {
      const model = await CheckpointModel.open(task, { gradientEngine: engine });
      try {
        const before = await model.losses(cp, samples);
        const { derivatives, epsilon } = await tokenDirectionalDerivatives(model, cp, samples, d);
        expect(await model.losses(cp, samples), `${engine}: the adapter is restored`).toEqual(before);
        expect(epsilon).toBeGreaterThan(0);
        samples.forEach((s, i) => {
          const exact = exactTokenDots(s, d.vector);
          const fd = exact.positions.map((p) => derivatives[i]![p]!);
          const scale = Math.max(...exact.dots.map(Math.abs));
          for (const [k, v] of fd.entries()) expect(Math.abs(v - exact.dots[k]!), `${engine} sample ${i} token ${k}`).toBeLessThan(5e-4 * scale);
          // Σ_t w_t D_t = ∇ℓ·h = the grad-dot score of (sample i, query 0) at the final checkpoint.
          const sum = fd.reduce((a, v, k) => a + exact.weights[k]! * v, 0);
          const score = final.values[i * final.testIds.length]!;
          expect(Math.abs(sum - score), `${engine} sample ${i}: Σ ${sum} vs score ${score}`).toBeLessThan(5e-4 * scale + 1e-5 * Math.abs(score));
        });
      } finally {
        await model.dispose();
      }
    }
  });

  it('splits a full checkpoint\'s gradient dot product over tokens too (every parameter moved)', async () => {
    // A full model folder: the base weights, every one moved a little, as a full fine-tuning checkpoint.
    const full = join(dir, 'full');
    const m = loadModelFolder(user.base);
    const moved = new Map([...m.weights].map(([k, t]) => [k, { shape: t.shape, data: t.data.map((x, i) => x + 1e-3 * Math.sin(i + 1)) }]));
    saveModelFolder(full, { config: m.config, weights: moved, family: m.family, ...(m.tokenizer ? { tokenizer: m.tokenizer } : {}) });
    const t = await loadTask({ base: user.base, checkpoints: [full], train: user.train, queries: user.queries });
    const cp = t.checkpoints[0]!;
    expect(cp.kind).toBe('full');
    const train = t.train.samples.slice(0, 2);
    for (const engine of ['onnxruntime', 'tfjs'] as const) {
      const model = await CheckpointModel.open(t, { gradientEngine: engine });
      try {
        const q = await model.gradients(cp, [t.queries[0]!.sample]);
        const g = await model.gradients(cp, train);
        const { derivatives } = await tokenDirectionalDerivatives(model, cp, train, directionOf(q, 0));
        train.forEach((s, i) => {
          const e = t.encode(s);
          const mass = e.lossMask.reduce((a, b) => a + b, 0);
          const sum = derivatives[i]!.reduce((a, v, p) => a + (e.lossMask[p]! / mass) * v, 0);
          const dot = g.rows[i]!.reduce((a, v, k) => a + v * q.rows[0]![k]!, 0);
          expect(Math.abs(sum - dot), `${engine} sample ${i}: Σ ${sum} vs ∇ℓ·h ${dot}`).toBeLessThan(2e-3 * Math.abs(dot) + 1e-4);
        });
      } finally {
        await model.dispose();
      }
    }
  });

  it('takes a finite-difference step where both rounding and truncation errors are small', async () => {
    const cp = task.checkpoints[1]!;
    const s = task.train.samples[4]!;
    const d = directionOf(h, 1);
    const exact = exactTokenDots(s, d.vector);
    const scale = Math.max(...exact.dots.map(Math.abs));
    const model = await run.model();
    const error = async (delta: number): Promise<number> => {
      const { derivatives } = await tokenDirectionalDerivatives(model, cp, [s], d, delta, Infinity);
      return Math.max(...exact.positions.map((p, k) => Math.abs(derivatives[0]![p]! - exact.dots[k]!))) / scale;
    };
    const chosen = await error(FD_LOSS_STEP);
    const tooSmall = await error(1e-5); // rounding of the float32 losses dominates
    const tooLarge = await error(1e-1); // truncation (the loss curves) dominates
    expect(chosen).toBeLessThan(5e-4);
    expect(tooSmall).toBeGreaterThan(5 * chosen);
    expect(tooLarge).toBeGreaterThan(5 * chosen);
    // The cap keeps the step within 10⁻³ ‖θ‖ for a small query gradient.
    expect(finiteDifferenceStep(2, 10)).toBeCloseTo(FD_LOSS_STEP / 4, 12);
    expect(finiteDifferenceStep(1e-3, 10)).toBeCloseTo((FD_MAX_RELATIVE_STEP * 10) / 1e-3, 12);
    expect(finiteDifferenceStep(0, 10)).toBe(0);
  });

  it('gives each response token its text and its share of the score, on the page\'s top samples', async () => {
    const tops = topK(task, scores.epochs[1]!, 3);
    const t = await tokenAttribution(run, scores, tops);
    expect(t.kind).toBe('computed');
    if (t.kind !== 'computed') return;
    expect(t.checkpoint).toBe(task.checkpoints[1]!.id);
    for (const q of tops) {
      for (const e of q.top) {
        const ts = t.queries.get(q.queryId)!.get(e.trainId)!;
        expect(ts.pieces.join(' ').replace(/ +/g, ' ').trim()).toBe(`${e.response} ${task.base.tokenizer.eosText}`.replace(/ +/g, ' '));
        expect(ts.values).toHaveLength(ts.pieces.length);
        expect(ts.score).toBe(e.score); // plain grad-dot at the final checkpoint: the listed score itself
        expect(Math.abs(ts.sum - ts.score)).toBeLessThan(5e-4 * Math.max(...ts.values.map(Math.abs)) * ts.values.length + 1e-5 * Math.abs(ts.score));
      }
    }
  });

  it('says why there is no heat map for a scorer that is not a gradient dot product', async () => {
    const bm25 = await run.scoreCheckpoints('bm25');
    const t = await tokenAttribution(run, bm25, topK(task, bm25.epochs[1]!, 2));
    expect(t).toMatchObject({ kind: 'omitted' });
    if (t.kind === 'omitted') expect(t.reason).toMatch(/bm25.*no heat map/);
  });

  it('splits decoded text into per-token pieces', () => {
    const tok = new WordTokenizer([...SPECIAL_TOKENS, 'council', 'met', '.']);
    const ids = [...tok.encode('council met .'), tok.eosId];
    expect(tokenPieces(tok, ids).map((p) => p.trim())).toEqual(['council', 'met', '.', tok.eosText]);
  });
});
