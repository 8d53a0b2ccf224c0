/**
 * Per-token attribution of the top training samples of a gradient scorer: which tokens of a
 * training sample's response carry its score for a query.
 *
 * grad-dot scores a training sample z against a query by ∇ℓ(z)·h, with h = ∇f(query) the query's
 * test-measurement gradient and ℓ(z) = Σ_t w_t ℓ_t(z) its mean response-token loss
 * (w_t = m_t / Σ m, m the loss mask). The score therefore splits over the response tokens:
 *
 *     score = Σ_t w_t · D_t,   D_t = d/dε ℓ_t(θ + ε h) at ε = 0 = ∇ℓ_t · h
 *
 * and D_t is a directional derivative, taken here by one central difference (two forward passes
 * per sample at θ ± ε h over the trainable tensors), not one backward pass per token. The sign is
 * the score's: a gradient step on token t alone changes the query's measurement by −η·w_t·D_t, so
 * a positive value is a token whose training makes the query output more likely (higher = more
 * responsible). grad-cos divides the score by ‖∇ℓ(z)‖‖h‖, and its token values the same way.
 */
import { DdaError, type GradientMatrix, type TextSample } from '@dda/core';
import type { Tokenizer } from '@dda/model';
import type { Checkpoint } from './checkpoints.js';
import type { CheckpointModel } from './engine.js';
import type { QueryTop } from './outputs.js';
import type { AttributionRun, CheckpointScores } from './run.js';

/** Scorers whose score is a gradient dot product that splits over tokens (grad-cos: normalised). */
export const TOKEN_ATTRIBUTION_SCORERS: readonly string[] = ['grad-dot', 'grad-cos'];

/**
 * Step of the central difference, in function space: ε = δ/‖h‖², the step along the query
 * gradient h = ∇f that lowers the query's measurement f by δ = 3·10⁻³ nats/token to first order
 * (f(θ − ε h) ≈ f(θ) − ε‖h‖²), so the step is equally small for the model whatever the
 * parametrisation. The forward passes run in float32 (unit roundoff u = 2⁻²⁴ ≈ 6·10⁻⁸): a central
 * difference's rounding error grows like u·|ℓ|/δ and its truncation error like δ², which balance
 * near δ ≈ (3u·|ℓ|)^(1/3) ≈ 10⁻² for losses of a few nats. Measured on the tiny test model against
 * exact per-token gradient dot products (test/token-attribution.test.ts), the largest error is
 * 10⁻⁵–10⁻⁴ of the largest token value at δ = 3·10⁻³, and 10–1000 times larger at δ = 10⁻⁵
 * (rounding) and 10⁻¹ (truncation).
 */
export const FD_LOSS_STEP = 3e-3;

/**
 * Cap of the step relative to the trainable parameters, ‖ε h‖ ≤ 10⁻³·‖θ‖, for queries whose
 * gradient is so small that δ/‖h‖² would leave the neighbourhood where the loss is smooth.
 */
export const FD_MAX_RELATIVE_STEP = 1e-3;

/** The step of {@link tokenDirectionalDerivatives}: ε = min(δ/‖h‖², κ·‖θ‖/‖h‖) (0 when h = 0). */
export function finiteDifferenceStep(hNorm: number, thetaNorm: number, lossStep = FD_LOSS_STEP, maxRelativeStep = FD_MAX_RELATIVE_STEP): number {
  if (hNorm === 0) return 0;
  return Math.min(lossStep / (hNorm * hNorm), (maxRelativeStep * thetaNorm) / hNorm);
}

/** A direction in the trainable parameters, laid out as a gradient row. */
export interface Direction {
  readonly names: readonly string[];
  readonly sizes: readonly number[];
  readonly vector: Float32Array;
}

/** The row `j` of a gradient matrix as a {@link Direction}. */
export function directionOf(g: GradientMatrix, j: number): Direction {
  const vector = g.rows[j];
  if (!vector) throw new DdaError(`no gradient row ${j} (the matrix has ${g.rows.length})`);
  return { names: g.parameterNames, sizes: g.parameterSizes, vector };
}

function norm(values: Iterable<number>): number {
  let s = 0;
  for (const v of values) s += v * v;
  return Math.sqrt(s);
}

/**
 * D_t = d/dε ℓ_t(θ + ε h) at ε = 0 (nats per unit of h) for every position t of each sample
 * (length tokens − 1, position t predicting token t + 1), by the central difference
 * (ℓ_t(θ + ε h) − ℓ_t(θ − ε h)) / 2ε with ε from {@link finiteDifferenceStep} (θ: the tensors `h`
 * names at `cp`; `lossStep` δ in nats/token, `maxRelativeStep` κ). A zero direction gives zeros (ε = 0).
 *
 * @throws DdaError if the trainable tensors of `cp` are all zero (no scale for the step).
 */
export async function tokenDirectionalDerivatives(
  model: CheckpointModel, cp: Checkpoint, samples: readonly TextSample[], h: Direction, lossStep = FD_LOSS_STEP, maxRelativeStep = FD_MAX_RELATIVE_STEP,
): Promise<{ derivatives: Float64Array[]; epsilon: number }> {
  const hNorm = norm(h.vector);
  const sizes = new Map(h.names.map((n, k) => [n, h.sizes[k] as number]));
  const thetaNorm = norm([...cp.weights].filter(([n]) => sizes.has(n)).flatMap(([, t]) => [norm(t.data)]));
  if (hNorm === 0) return { derivatives: (await model.tokenLosses(cp, samples)).map((l) => new Float64Array(l.length)), epsilon: 0 };
  if (!(thetaNorm > 0)) throw new DdaError(`token attribution at ${cp.id}: the trainable tensors are all zero, so the finite-difference step has no scale`);
  const epsilon = finiteDifferenceStep(hNorm, thetaNorm, lossStep, maxRelativeStep);
  const plus = await model.tokenLosses(cp, samples, { ...h, scale: epsilon });
  const minus = await model.tokenLosses(cp, samples, { ...h, scale: -epsilon });
  return { derivatives: plus.map((p, i) => Float64Array.from(p, (v, t) => (v - ((minus[i] as Float64Array)[t] as number)) / (2 * epsilon))), epsilon };
}

/** The text of each token of `ids` in context (prefix differences of the decoded text; special tokens by their text). */
export function tokenPieces(tok: Tokenizer, ids: readonly number[]): string[] {
  let before = '';
  return ids.map((id, k) => {
    const text = tok.decode(ids.slice(0, k + 1));
    const piece = text.startsWith(before) ? text.slice(before.length) : tok.decode([id]);
    before = text;
    return piece !== '' ? piece : id === tok.eosId ? tok.eosText : id === tok.endOfTurn.id ? tok.endOfTurn.text : piece;
  });
}

/** The response tokens of one training sample with their share of its score. */
export interface TokenScores {
  /** Text of each response token (the tokens the loss mask covers), in order. */
  readonly pieces: readonly string[];
  /** w_t·D_t of each of them, in the score's units; they add up to {@link sum}. */
  readonly values: readonly number[];
  /** Σ of {@link values}: the finite-difference value of the score. */
  readonly sum: number;
  /** The scorer's own score of the sample for the query at the checkpoint. */
  readonly score: number;
}

/** Per-token attribution of the page's top samples, or why there is none. */
export type TokenAttribution =
  | {
    readonly kind: 'computed';
    readonly scorer: string;
    readonly checkpoint: string;
    /** How it was computed, one paragraph for the page. */
    readonly how: string;
    /** Query id → training id → its tokens. */
    readonly queries: ReadonlyMap<string, ReadonlyMap<string, TokenScores>>;
  }
  | { readonly kind: 'omitted'; readonly reason: string };

/**
 * Per-token attribution of the top samples in `tops` (their `top` lists, not the opposing ones) at
 * the final checkpoint, for scorers in {@link TOKEN_ATTRIBUTION_SCORERS}; for any other scorer an
 * `omitted` result that says why. Costs two forward passes per listed sample and query (and, for
 * grad-cos, one gradient per distinct listed sample for its norm).
 */
export async function tokenAttribution(run: AttributionRun, scores: CheckpointScores, tops: readonly QueryTop[]): Promise<TokenAttribution> {
  const id = scores.scorer.id;
  if (!TOKEN_ATTRIBUTION_SCORERS.includes(id)) {
    return { kind: 'omitted', reason: `Per-token attribution is drawn for the scorers whose score is one gradient dot product at the final checkpoint (${TOKEN_ATTRIBUTION_SCORERS.join(', ')}), which splits exactly over the tokens of a training sample; '${id}' is not one of them, so there is no heat map.` };
  }
  const projection = run.options.projection;
  if (projection) {
    const flag = run.options.trainRows ? '--index' : '--projection-dim';
    return { kind: 'omitted', reason: `The scores are over gradients projected to ${projection.dim} dimensions (${flag}), so a score is not the full gradients' dot product that splits over the tokens of a training sample; there is no heat map (run without ${flag} for one).` };
  }
  const task = run.task;
  const cp = task.checkpoints[task.checkpoints.length - 1];
  const matrix = scores.epochs[scores.epochs.length - 1];
  if (!cp || !matrix) throw new DdaError('token attribution: no checkpoint');
  const model = await run.model();
  const queryGradients = await run.queryGradients(cp);
  const index = new Map(task.train.samples.map((s, i) => [s.id, i]));
  const sampleOf = (trainId: string): TextSample => {
    const i = index.get(trainId);
    if (i === undefined) throw new DdaError(`token attribution: no training sample '${trainId}'`);
    return task.train.samples[i] as TextSample;
  };
  // grad-cos divides by ‖∇ℓ(z)‖ ‖h‖: the norms of the listed samples' gradients at cp.
  const trainNorms = new Map<string, number>();
  if (id === 'grad-cos') {
    const listed = [...new Set(tops.flatMap((q) => q.top.map((t) => t.trainId)))];
    const g = await model.gradients(cp, listed.map(sampleOf));
    listed.forEach((t, k) => trainNorms.set(t, norm(g.rows[k] as Float32Array)));
  }
  const nTest = matrix.testIds.length;
  const row = new Map(matrix.trainIds.map((t, i) => [t, i]));
  const out = new Map<string, Map<string, TokenScores>>();
  for (const q of tops) {
    const j = matrix.testIds.indexOf(q.queryId);
    const jg = queryGradients.ids.indexOf(q.queryId);
    if (j < 0 || jg < 0) throw new DdaError(`token attribution: no scores or gradient for query '${q.queryId}'`);
    const h = directionOf(queryGradients, jg);
    const samples = q.top.map((t) => sampleOf(t.trainId));
    const { derivatives } = await tokenDirectionalDerivatives(model, cp, samples, h);
    const hNorm = norm(h.vector);
    const bySample = new Map<string, TokenScores>();
    q.top.forEach((t, k) => {
      const e = task.encode(samples[k] as TextSample, task.origin(t.trainId));
      const d = derivatives[k] as Float64Array;
      let mass = 0;
      for (const m of e.lossMask) mass += m;
      const scale = id === 'grad-cos' ? 1 / ((trainNorms.get(t.trainId) as number) * hNorm) : 1;
      const positions = [...e.lossMask.keys()].filter((p) => (e.lossMask[p] as number) !== 0);
      const values = positions.map((p) => (((e.lossMask[p] as number) / Math.max(mass, 1)) * (d[p] as number) * scale));
      const i = row.get(t.trainId);
      bySample.set(t.trainId, {
        pieces: tokenPieces(task.base.tokenizer, positions.map((p) => e.tokens[p + 1] as number)),
        values,
        sum: values.reduce((a, b) => a + b, 0),
        score: i === undefined ? Number.NaN : (matrix.values[i * nTest + j] as number),
      });
    });
    out.set(q.queryId, bySample);
  }
  const measure = (await run.measurement()).id;
  return {
    kind: 'computed', scorer: id, checkpoint: cp.id, queries: out,
    how: `Each token's value is its share of the sample's ${id} score at the final checkpoint ${cp.id}: w_t · d/dε ℓ_t(θ + ε h) at ε = 0, with ℓ_t the token's loss, w_t its weight in the sample's mean response-token loss, and h the gradient of the query's test measurement '${measure}'${id === 'grad-cos' ? ', divided by ‖∇ℓ(sample)‖ ‖h‖ as the cosine is' : ''}. The derivative is one central difference over the trainable parameters (two forward passes per sample at θ ± ε h, the step lowering the query's measurement by ${FD_LOSS_STEP} nats/token to first order, at most ${FD_MAX_RELATIVE_STEP} ‖θ‖), so the values add up to the ${id} score up to the difference's error. Red tokens support the query output (training on them makes it more likely), blue ones oppose it; the colour is scaled to each sample's largest |value|.`,
  };
}
