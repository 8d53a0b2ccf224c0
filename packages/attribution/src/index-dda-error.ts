/**
 * How much of a DDA-over-indexes score is projection error (Johnson–Lindenstrauss), estimated from
 * the projected rows themselves.
 *
 * Per tensor m, an index score is ⟨P_m g, P_m h⟩ with P_m of k_m rows; the indexes of one DDA share
 * P_m (one seed), so the errors at θ0 and the checkpoints are correlated. A DDA score that is, per
 * query column j, the combination Σ_c a_cj·s_c (c over θ0 and the checkpoints) has the error
 * tr((P_mᵀP_m − I)·A_m) with A_m = Σ_c a_cj h_c g_cᵀ, of variance (Gaussian P_m)
 * (‖A_m‖_F² + tr(A_m²)) / k_m = Σ_{c,c'} a_c a_c' (⟨h_c,h_c'⟩⟨g_c,g_c'⟩ + ⟨g_c,h_c'⟩⟨g_c',h_c⟩) / k_m;
 * a Rademacher P_m's is that less 2·Σ_x A_m,xx² / k_m, so this slightly overstates it. The inner
 * products are estimated by those of the projected rows (‖P g‖ estimates ‖g‖). For one score alone
 * (one c, a = 1) it is (‖g‖²‖h‖² + ⟨g,h⟩²)/k_m ≤ 2‖g‖²‖h‖²/k_m, the README's bound.
 *
 * The weights a_cj are read off the DDA transform itself, by finite differences (one entry per
 * column moved by a millionth of the column's scale): exact for the strategies that are, per test
 * column, affine in each checkpoint's scores once their fitted parameters are fixed (denoisers
 * `mean`, `lr-weighted`, `zscore-mean` or none; debiasers `raw`, `fitted-beta`, `zscore`,
 * `unit-norm` or none). Their fitted parameters (a column's mean and standard deviation, the fitted
 * β) average over every training row, so their own projection error is left out. Other strategies
 * (a median, ranks, a plugin's) are not propagated: the estimate is then each checkpoint's error
 * against its own scores, on the raw scale.
 */
import { type CheckpointInfo, type ScoreMatrix, createScoreMatrix } from '@dda/core';
import { ddaMatrix } from './method.js';
import type { ModuleProjection } from './projection.js';
import type { CheckpointScores } from './run.js';

/** Denoisers and debiasers whose output is, per test column, affine in every checkpoint's scores once fitted (see the module's comment). */
const AFFINE_DENOISERS: readonly (string | null)[] = ['mean', 'lr-weighted', 'zscore-mean', null];
const AFFINE_DEBIASERS: readonly (string | null)[] = ['raw', 'fitted-beta', 'zscore', 'unit-norm', null];

/** Training rows sampled (evenly spaced) for the medians; the top-(k+1) rows of every query come on top. */
export const ERROR_SAMPLE_ROWS = 256;
/** Warn when the median estimated standard deviation exceeds this fraction of the scores' spread (the median over the queries of a column's standard deviation). */
export const ERROR_WARN_RATIO = 0.25;
/** ... or when, for the median query, the top-1 entry's estimated sd exceeds this fraction of its |score| (the newcomer's raw DDA at --dim 1024: 0.67, its top-1 scoring 15.2 where exact DDA gives 1.51). */
export const ERROR_WARN_TOP1 = 0.5;

/** What query.json records of the projection error (`projectionError`). */
export interface ProjectionErrorSummary {
  /** How the standard deviations were estimated. */
  readonly method: string;
  /** Whether the error was propagated through the DDA transform (else: per checkpoint, on the raw scale). */
  readonly propagated: boolean;
  readonly sampledRows: number;
  /** Over the sampled rows × every query: the median estimated sd and the median |score| (of the DDA scores, or of each checkpoint's when not propagated: the checkpoint of the largest ratio). */
  readonly medianSd: number;
  readonly medianAbsScore: number;
  /** The scores' spread that ranks the training rows: the median over the queries of a column's standard deviation over the training rows. */
  readonly columnSd: number;
  /** medianSd / columnSd: the error against the differences a ranking rests on (centred scores make |score| itself small). */
  readonly ratio: number;
  /** Median over the queries of the top-1 entry's sd / |score|. */
  readonly top1Ratio: number;
  /** The fraction of the top-k entries whose margin over the (k+1)-th is below 2 sd of the difference (√(sd² + sd_{k+1}²), the two errors taken as independent). */
  readonly topKWithin2Sd: number;
  readonly topK: number;
  /** The warning's thresholds on `ratio` and `top1Ratio` (the top-k fraction is recorded, not warned on: with few rows or a short list it is large even where the error is small). */
  readonly thresholds: { readonly ratio: number; readonly top1Ratio: number };
  /** The warning printed, or null. */
  readonly warning: string | null;
}

/** One index of the DDA: its checkpoint id, module layout, and a reader of row i. */
export interface ErrorIndex {
  readonly id: string;
  readonly modules: readonly ModuleProjection[];
  readonly row: (i: number) => Float32Array;
  /** The queries' projected rows at this index. */
  readonly queries: readonly Float64Array[];
}

/** Per test column, the weight of each matrix of `s` (θ0 first, then the checkpoints) in the DDA output, by finite differences of the transform. */
async function transformWeights(
  s: CheckpointScores, infos: readonly CheckpointInfo[], o: { debias: string | null; denoise: string | null; beta: number }, out: ScoreMatrix,
): Promise<Float64Array[]> {
  const n = out.trainIds.length;
  const nq = out.testIds.length;
  const all = [s.base, ...s.epochs];
  const weights: Float64Array[] = [];
  for (const [c, m] of all.entries()) {
    const values = Float64Array.from(m.values);
    const at: number[] = [];
    const eps: number[] = [];
    for (let j = 0; j < nq; j++) {
      // The row nearest the column's median: a z-score's or a fit's parameters barely move with it.
      const col = Array.from({ length: n }, (_, i) => ({ i, v: m.values[i * nq + j] as number })).sort((a, b) => a.v - b.v);
      const i = (col[Math.floor(n / 2)] as { i: number }).i;
      const e = 1e-6 * Math.max(...col.map((x) => Math.abs(x.v)), Number.MIN_VALUE);
      values[i * nq + j] = (values[i * nq + j] as number) + e;
      at.push(i);
      eps.push(e);
    }
    const moved = createScoreMatrix(m.trainIds, m.testIds, values, m.provenance);
    const t = { ...s, base: c === 0 ? moved : s.base, epochs: s.epochs.map((x, k) => (k === c - 1 ? moved : x)) };
    const r = await ddaMatrix(t, infos, o);
    weights.push(Float64Array.from({ length: nq }, (_, j) => ((r.values[(at[j] as number) * nq + j] as number) - (out.values[(at[j] as number) * nq + j] as number)) / (eps[j] as number)));
  }
  return weights;
}

/** Per-module inner products of two projected rows (with `scale` applied to each). */
function moduleDots(a: ArrayLike<number>, b: ArrayLike<number>, modules: readonly ModuleProjection[]): Float64Array {
  const out = new Float64Array(modules.length);
  for (const [m, p] of modules.entries()) {
    let d = 0;
    for (let x = p.offset; x < p.offset + p.dims; x++) d += (a[x] as number) * (b[x] as number);
    out[m] = d;
  }
  return out;
}

const norm = (v: ArrayLike<number>): number => {
  let s = 0;
  for (let x = 0; x < v.length; x++) s += (v[x] as number) ** 2;
  return Math.sqrt(s);
};

/**
 * The projection variance of the DDA score of row `i` for query `j`, with weights `a` (one per
 * index, in `ix` order), from per-module Gram matrices of the projected rows (see the module's comment).
 */
function pairVariance(g: readonly ArrayLike<number>[], h: readonly ArrayLike<number>[], a: readonly number[], modules: readonly ModuleProjection[], hh: readonly (readonly Float64Array[])[]): number {
  const C = g.length;
  const gg: Float64Array[][] = [];
  const gh: Float64Array[][] = [];
  for (let c = 0; c < C; c++) {
    gg.push([]);
    gh.push([]);
    for (let d = 0; d < C; d++) {
      (gg[c] as Float64Array[]).push(d < c ? ((gg[d] as Float64Array[])[c] as Float64Array) : moduleDots(g[c] as ArrayLike<number>, g[d] as ArrayLike<number>, modules));
      (gh[c] as Float64Array[]).push(moduleDots(g[c] as ArrayLike<number>, h[d] as ArrayLike<number>, modules));
    }
  }
  let v = 0;
  for (const [m, p] of modules.entries()) {
    let s = 0;
    for (let c = 0; c < C; c++) {
      for (let d = 0; d < C; d++) {
        const w = (a[c] as number) * (a[d] as number);
        if (w === 0) continue;
        s += w * (((hh[c] as Float64Array[])[d] as Float64Array)[m] as number) * (((gg[c] as Float64Array[])[d] as Float64Array)[m] as number)
          + w * (((gh[c] as Float64Array[])[d] as Float64Array)[m] as number) * (((gh[d] as Float64Array[])[c] as Float64Array)[m] as number);
      }
    }
    v += s / p.dims;
  }
  return Math.max(0, v);
}

/** The median over the columns of `values` [n × nq] of a column's standard deviation. */
function medianColumnSd(values: Float64Array, n: number, nq: number): number {
  return median(Array.from({ length: nq }, (_, j) => {
    let m = 0;
    for (let i = 0; i < n; i++) m += values[i * nq + j] as number;
    m /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += ((values[i * nq + j] as number) - m) ** 2;
    return Math.sqrt(v / n);
  }));
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? Number.NaN : n % 2 ? (s[(n - 1) / 2] as number) : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2;
};

/**
 * Estimates the projection error of DDA scores over indexes and summarises it against the scores
 * (see {@link ProjectionErrorSummary}; the module's comment says how).
 *
 * @param ix The indexes, θ0's first, then the checkpoints' in `s.epochs` order.
 * @param normalize Cosine scores: the rows and queries are scaled to unit norm first (the error of the norms themselves left out).
 * @returns The summary and `sd(i, j)`, the estimated standard deviation of the DDA score of row i for query j.
 */
export async function estimateProjectionError(
  ix: readonly ErrorIndex[], s: CheckpointScores, infos: readonly CheckpointInfo[], o: { debias: string | null; denoise: string | null; beta: number }, out: ScoreMatrix, topK: number, normalize: boolean,
): Promise<{ summary: ProjectionErrorSummary; sd: (i: number, j: number) => number }> {
  const n = out.trainIds.length;
  const nq = out.testIds.length;
  const modules = (ix[0] as ErrorIndex).modules;
  const propagated = AFFINE_DENOISERS.includes(o.denoise) && AFFINE_DEBIASERS.includes(o.debias);
  const weights = propagated ? await transformWeights(s, infos, o, out) : null;
  const unit = (v: ArrayLike<number>): ArrayLike<number> => {
    if (!normalize) return v;
    const z = norm(v);
    return z > 0 ? Float64Array.from(v as ArrayLike<number>, (x) => x / z) : v;
  };
  const queries = ix.map((x) => x.queries.map(unit));
  // Per query: the per-module inner products of its rows at every pair of indexes.
  const hh = Array.from({ length: nq }, (_, j) => queries.map((qc) => queries.map((qd) => moduleDots(qc[j] as Float64Array, qd[j] as Float64Array, modules))));
  const rows = new Map<number, ArrayLike<number>[]>();
  const rowAt = (i: number): ArrayLike<number>[] => {
    let r = rows.get(i);
    if (!r) rows.set(i, (r = ix.map((x) => unit(x.row(i)))));
    return r;
  };
  const memo = new Map<number, number>();
  // With weights: one variance for the DDA score; without: one per index, each against its own score (the largest ratio is reported).
  const variance = (i: number, j: number, c: number | null): number => {
    const key = (i * nq + j) * (ix.length + 1) + (c ?? ix.length);
    let v = memo.get(key);
    if (v === undefined) {
      const a = c === null ? (weights as Float64Array[]).map((w) => w[j] as number) : ix.map((_, k) => (k === c ? 1 : 0));
      v = pairVariance(rowAt(i), queries.map((q) => q[j] as Float64Array), a, modules, hh[j] as Float64Array[][]);
      memo.set(key, v);
    }
    return v;
  };
  const sd = (i: number, j: number): number => Math.sqrt(variance(i, j, null));
  const sample = [...new Set(Array.from({ length: Math.min(n, ERROR_SAMPLE_ROWS) }, (_, t) => Math.floor((t * n) / Math.min(n, ERROR_SAMPLE_ROWS))))];
  let medianSd: number;
  let medianAbsScore: number;
  let columnSd: number;
  let ratio: number;
  if (weights) {
    const sds: number[] = [];
    const abs: number[] = [];
    for (const i of sample) for (let j = 0; j < nq; j++) {
      sds.push(sd(i, j));
      abs.push(Math.abs(out.values[i * nq + j] as number));
    }
    medianSd = median(sds);
    medianAbsScore = median(abs);
    columnSd = medianColumnSd(out.values, n, nq);
    ratio = medianSd / columnSd;
  } else {
    const per = ix.map((x, c) => {
      const m = c === 0 ? s.base : (s.epochs[c - 1] as ScoreMatrix);
      const sds: number[] = [];
      const abs: number[] = [];
      for (const i of sample) for (let j = 0; j < nq; j++) {
        sds.push(Math.sqrt(variance(i, j, c)));
        abs.push(Math.abs(m.values[i * nq + j] as number));
      }
      return { sd: median(sds), abs: median(abs), spread: medianColumnSd(m.values, n, nq) };
    });
    const worst = per.reduce((a, b) => (b.sd / b.spread > a.sd / a.spread ? b : a));
    medianSd = worst.sd;
    medianAbsScore = worst.abs;
    columnSd = worst.spread;
    ratio = worst.sd / worst.spread;
  }
  // The top-(k+1) of every query, and how many of the top k are within 2 sd of the (k+1)-th.
  const k = Math.min(topK, n - 1);
  let within = 0;
  let entries = 0;
  const top1: number[] = [];
  for (let j = 0; j < nq; j++) {
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (out.values[b * nq + j] as number) - (out.values[a * nq + j] as number) || a - b);
    const sdOf = (i: number): number => (weights ? sd(i, j) : Math.sqrt(Math.max(...ix.map((_, c) => variance(i, j, c)))));
    const next = order[k] as number;
    const nextScore = out.values[next * nq + j] as number;
    for (let r = 0; r < k; r++) {
      const i = order[r] as number;
      const margin = (out.values[i * nq + j] as number) - nextScore;
      if (margin < 2 * Math.hypot(sdOf(i), sdOf(next))) within++;
      entries++;
    }
    const best = order[0] as number;
    top1.push(sdOf(best) / Math.abs(out.values[best * nq + j] as number));
  }
  const topKWithin2Sd = entries > 0 ? within / entries : 0;
  const top1Ratio = median(top1);
  const loud = ratio > ERROR_WARN_RATIO || top1Ratio > ERROR_WARN_TOP1;
  const what = weights ? 'the DDA scores' : "each index's scores (the DDA transform's error not propagated: it is not affine per column)";
  const warning = loud
    ? `the projection's error is a large part of ${what}: estimated standard deviation ${fmt(medianSd)} (median) against a spread of ${fmt(columnSd)} (the median over queries of a column's standard deviation; ratio ${fmt(ratio)}, warned above ${ERROR_WARN_RATIO}) and a median |score| of ${fmt(medianAbsScore)}, top-1 sd/|score| ${fmt(top1Ratio)} (median over queries; warned above ${ERROR_WARN_TOP1}), ${(100 * topKWithin2Sd).toFixed(0)}% of the top-${k} entries within 2 sd of the ${k + 1}-th; the ranking then follows the projection more than the gradients: build the indexes with a larger --dim (the sd falls as 1/√dim)${o.debias === 'raw' ? ", or debias with fitted-beta or zscore (raw subtracts θ0's scores at full weight, and θ0's, often the largest, bring their error whole)" : ''}`
    : null;
  return {
    summary: {
      method: `Johnson–Lindenstrauss variance per tensor from the projected rows' per-tensor inner products, ${weights ? 'propagated through the DDA transform (its weights per test column by finite differences; fitted parameters held fixed)' : 'per index against its own scores, not propagated (the DDA transform is not affine per column)'}${normalize ? ', rows and queries at unit norm (cosine)' : ''}`,
      propagated: weights !== null, sampledRows: sample.length, medianSd, medianAbsScore, columnSd, ratio, top1Ratio, topKWithin2Sd, topK: k,
      thresholds: { ratio: ERROR_WARN_RATIO, top1Ratio: ERROR_WARN_TOP1 }, warning,
    },
    sd,
  };
}

const fmt = (x: number): string => (Number.isFinite(x) ? Number(x.toPrecision(3)).toString() : String(x));
