/**
 * The debiaser and denoiser checks: the contracts of DDA's two strategies over score matrices
 * (`Debiaser`, `Denoiser` of @dda/core), on small seeded matrices.
 */
import { SeededRandom, createScoreMatrix, debiasers, denoisers, type CheckpointInfo, type Debiaser, type Denoiser, type ScoreMatrix } from '@dda/core';
import { identical, nonFinite, orderProblem, shapeProblem } from './matrix.js';
import {
  errorText, fail, pass, runChecks, toSubject, validateOptOuts, type CheckOptions, type ConformanceReport, type Subject,
} from './report.js';

/**
 * The debiaser checks:
 * - `shape-and-ids`: id and description; the output has the inputs' ids in order, finite Float64
 *   values and a provenance; the inputs are not modified;
 * - `beta-zero`: with β = 0 the output orders every test column as the fine-tuned scores do
 *   (the plain scores, up to a per-column increasing transform such as a z-score);
 * - `constant-columns`: a constant and an all-zero test column, in either matrix, give no NaN or ±∞;
 * - `mismatched-inputs`: matrices whose training ids differ are refused with an error (not a TypeError);
 * - `determinism`: the same inputs give bit-identical outputs.
 */
export const DEBIASER_CHECKS = ['shape-and-ids', 'beta-zero', 'constant-columns', 'mismatched-inputs', 'determinism'] as const;
/** A debiaser check's name. */
export type DebiaserCheck = (typeof DEBIASER_CHECKS)[number];

/**
 * The denoiser checks:
 * - `shape-and-ids`: as for debiasers, over three checkpoints;
 * - `single-checkpoint`: with N = 1 checkpoint the output orders every test column as that
 *   checkpoint's scores do (the plain scores, up to a per-column increasing transform);
 * - `constant-columns`, `mismatched-inputs`, `determinism`: as for debiasers.
 */
export const DENOISER_CHECKS = ['shape-and-ids', 'single-checkpoint', 'constant-columns', 'mismatched-inputs', 'determinism'] as const;
/** A denoiser check's name. */
export type DenoiserCheck = (typeof DENOISER_CHECKS)[number];

const TRAIN_IDS = ['t0', 't1', 't2', 't3', 't4', 't5', 't6', 't7'];
const TEST_IDS = ['e0', 'e1', 'e2'];

/**
 * A seeded matrix of normal scores (scaled) computed at `checkpoint`, optionally with column 0
 * constant and column 1 all zero.
 */
function matrix(checkpoint: string, seed: number, scale: number, constantColumns = false, trainIds = TRAIN_IDS): ScoreMatrix {
  const rng = new SeededRandom(seed);
  const n = TEST_IDS.length;
  const values = Float64Array.from({ length: trainIds.length * n }, (_, k) => {
    if (constantColumns && k % n === 0) return 2.5 * scale;
    if (constantColumns && k % n === 1) return 0;
    return scale * rng.normal();
  });
  return createScoreMatrix(trainIds, TEST_IDS, values, { method: 'conformance', computedOver: `seeded normal scores × ${scale}`, checkpoints: [checkpoint], transforms: [] });
}

/** The epoch checkpoints of the denoiser inputs: learning rate decaying linearly. */
function checkpoints(n: number): CheckpointInfo[] {
  return Array.from({ length: n }, (_, i) => ({ id: `epoch-${i + 1}`, epoch: i + 1, learningRate: 3e-3 * (1 - i / (n + 1)) }));
}

/** A deep copy, to tell whether a method modified its inputs. */
const copy = (m: ScoreMatrix): ScoreMatrix => ({ ...m, trainIds: [...m.trainIds], testIds: [...m.testIds], values: Float64Array.from(m.values) });

/** Text of what is wrong with an output (shape, finiteness), or undefined. */
function outputProblem(out: ScoreMatrix): string | undefined {
  return shapeProblem(out, TRAIN_IDS, TEST_IDS) ?? (nonFinite(out) ? `a non-finite value: ${nonFinite(out)}` : undefined);
}

/** An expected refusal: undefined when `call` threw a clear error, else what happened. */
function refusalProblem(call: () => unknown): string | undefined {
  try {
    call();
    return 'it returned a result instead of refusing';
  } catch (e) {
    return e instanceof Error && e.name !== 'TypeError' ? undefined : `it ${errorText(e)} (say which ids do not line up instead)`;
  }
}

/**
 * Runs every debiaser check on `subject` (a registered debiaser id, or `{ id, plugin, create }`);
 * the factory gets `{ ...options.options, beta }` (β = 1, and β = 0 for `beta-zero`).
 *
 * @throws DdaError for an unknown id, or an opt-out of an unknown check or without a reason.
 */
export async function checkDebiaser(subject: string | Subject<Debiaser>, options: CheckOptions<DebiaserCheck> = {}): Promise<ConformanceReport> {
  const s = toSubject(subject, debiasers);
  validateOptOuts('debiaser', s.id, DEBIASER_CHECKS, options.optOut);
  const make = async (beta: number): Promise<Debiaser> => await s.create({ ...options.options, beta });
  // The base model's scores are on a larger scale, as they are in practice.
  const ft = matrix('epoch-3', 1, 1);
  const base = matrix('base', 2, 50);
  const findings = await runChecks(DEBIASER_CHECKS, async (check) => {
    switch (check) {
      case 'shape-and-ids': {
        const d = await make(1);
        if (d.id !== s.id) return fail(`the debiaser made for '${s.id}' says its id is '${d.id}'`);
        if (typeof d.description !== 'string' || d.description.trim() === '') return fail('the description is empty');
        const [a, b] = [copy(ft), copy(base)];
        const problem = outputProblem(d.debias(a, b));
        if (problem) return fail(`the output: ${problem}`);
        if (!identical(a, ft) || !identical(b, base)) return fail('it modified its input matrices (return a new matrix)');
        return pass('the inputs\' ids in order, finite values, inputs left unchanged');
      }
      case 'beta-zero': {
        const out = (await make(0)).debias(ft, base);
        const problem = outputProblem(out) ?? orderProblem(ft, out);
        if (problem) return fail(`with β = 0 the output should be the plain (fine-tuned) scores, up to an increasing transform per test column: ${problem}`);
        return pass(identical(out, ft) || out.values.every((x, k) => x === ft.values[k]) ? 'with β = 0 the output equals the fine-tuned scores' : 'with β = 0 every test column keeps the order of the fine-tuned scores');
      }
      case 'constant-columns': {
        const d = await make(1);
        const problems = [
          ['a fine-tuned matrix', matrix('epoch-3', 3, 1, true), base],
          ['a base matrix', ft, matrix('base', 4, 50, true)],
          ['both matrices', matrix('epoch-3', 3, 1, true), matrix('base', 4, 50, true)],
        ].flatMap(([what, a, b]) => {
          const p = outputProblem(d.debias(a as ScoreMatrix, b as ScoreMatrix));
          return p ? [`with a constant and an all-zero test column in ${what as string}: ${p}`] : [];
        });
        return problems.length > 0 ? fail(problems.join('; ')) : pass('finite output with constant and all-zero test columns');
      }
      case 'mismatched-inputs': {
        const d = await make(1);
        const problem = refusalProblem(() => d.debias(ft, matrix('base', 2, 50, false, [...TRAIN_IDS].reverse())));
        return problem ? fail(`given a base matrix whose training ids are in another order: ${problem}`) : pass('refuses matrices whose ids do not line up');
      }
      case 'determinism': {
        const d = await make(1);
        return identical(d.debias(ft, base), (await make(1)).debias(ft, base)) ? pass('bit-identical outputs on the same inputs') : fail('the same inputs gave different outputs');
      }
    }
  }, options.optOut);
  return { kind: 'debiaser', id: s.id, plugin: s.plugin, findings };
}

/**
 * Runs every denoiser check on `subject` (a registered denoiser id, or `{ id, plugin, create }`);
 * the factory gets `options.options` (default `{}`).
 *
 * @throws DdaError for an unknown id, or an opt-out of an unknown check or without a reason.
 */
export async function checkDenoiser(subject: string | Subject<Denoiser>, options: CheckOptions<DenoiserCheck> = {}): Promise<ConformanceReport> {
  const s = toSubject(subject, denoisers);
  validateOptOuts('denoiser', s.id, DENOISER_CHECKS, options.optOut);
  const make = async (): Promise<Denoiser> => await s.create({ ...options.options });
  const epochs = [matrix('epoch-1', 5, 1), matrix('epoch-2', 6, 2), matrix('epoch-3', 7, 3)];
  const findings = await runChecks(DENOISER_CHECKS, async (check) => {
    switch (check) {
      case 'shape-and-ids': {
        const d = await make();
        if (d.id !== s.id) return fail(`the denoiser made for '${s.id}' says its id is '${d.id}'`);
        if (typeof d.description !== 'string' || d.description.trim() === '') return fail('the description is empty');
        const inputs = epochs.map(copy);
        const problem = outputProblem(d.denoise(inputs, checkpoints(3)));
        if (problem) return fail(`the output over 3 checkpoints: ${problem}`);
        if (inputs.some((m, i) => !identical(m, epochs[i] as ScoreMatrix))) return fail('it modified its input matrices (return a new matrix)');
        return pass('the inputs\' ids in order, finite values, inputs left unchanged');
      }
      case 'single-checkpoint': {
        const only = epochs[0] as ScoreMatrix;
        const out = (await make()).denoise([only], checkpoints(1));
        const problem = outputProblem(out) ?? orderProblem(only, out);
        if (problem) return fail(`with N = 1 checkpoint the output should be that checkpoint's (plain) scores, up to an increasing transform per test column: ${problem}`);
        return pass(out.values.every((x, k) => x === only.values[k]) ? 'with N = 1 the output equals the checkpoint\'s scores' : 'with N = 1 every test column keeps the order of the checkpoint\'s scores');
      }
      case 'constant-columns': {
        const problem = outputProblem((await make()).denoise([matrix('epoch-1', 8, 1, true), matrix('epoch-2', 9, 2, true), matrix('epoch-3', 10, 3, true)], checkpoints(3)));
        return problem ? fail(`with a constant and an all-zero test column at every checkpoint: ${problem}`) : pass('finite output with constant and all-zero test columns');
      }
      case 'mismatched-inputs': {
        const d = await make();
        const problem = refusalProblem(() => d.denoise([epochs[0] as ScoreMatrix, matrix('epoch-2', 6, 2, false, [...TRAIN_IDS].reverse())], checkpoints(2)));
        return problem ? fail(`given checkpoints whose training ids are in different orders: ${problem}`) : pass('refuses checkpoints whose ids do not line up');
      }
      case 'determinism': {
        return identical((await make()).denoise(epochs, checkpoints(3)), (await make()).denoise(epochs, checkpoints(3)))
          ? pass('bit-identical outputs on the same inputs')
          : fail('the same inputs gave different outputs');
      }
    }
  }, options.optOut);
  return { kind: 'denoiser', id: s.id, plugin: s.plugin, findings };
}
