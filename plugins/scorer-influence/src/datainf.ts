/**
 * `datainf`: DataInf (Kwon et al., ICLR 2024), a closed-form approximation of the influence function
 * with a block-diagonal Hessian, one block per parameter tensor l (from `parameterNames` /
 * `parameterSizes` of the gradients). Per block, the damped empirical Fisher
 * H_l = (1/n) Σ_i g_il g_ilᵀ + λ_l I is inverted by swapping the order of inversion and averaging:
 *
 *     H_l⁻¹ v ≈ (1/(n λ_l)) Σ_i ( v − (g_ilᵀ v) / (λ_l + ‖g_il‖²) · g_il )
 *
 * score[i][j] = Σ_l g_ilᵀ H_l⁻¹ h_jl, with g_il / h_jl the block-l part of the training-loss /
 * test-measurement gradient. Sign: the negative of Koh & Liang's influence, higher = more
 * responsible; units: dimensionless (as `if-exact`). Default λ_l = dampingRatio (0.1) × mean_i
 * ‖g_il‖² / d_l, the paper's choice; an absolute `damping` applies to every block. A block whose
 * training gradients are all zero contributes exactly 0 and is skipped.
 * Cost O(n × dim × nTest); memory one float64 vector of the largest block.
 */
import { DdaError, createScoreMatrix, type GradientMatrix, type ScoreMatrix } from '@dda/core';
import { checkGradientPair } from '@dda/scorer-grad-dot';
import {
  checkDampingOptions,
  describeBlockDamping,
  describeCheckpoints,
  requireTrainingGradients,
  resolveDamping,
  squaredNorm,
  type DampingOptions,
} from './damping.js';
import type { Float64EngineOptions } from './linalg.js';

/** Options of {@link dataInfScores} and the `datainf` scorer: the damping, and where its streamed fit's float64 products run (`engine`). */
export type DataInfOptions = DampingOptions & Float64EngineOptions;

/** One parameter block: its name, first coordinate and size. */
export interface ParameterBlock {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
}

/** The parameter blocks of a gradient matrix, in flattening order (zero-size tensors included). */
export function parameterBlocks(g: GradientMatrix): ParameterBlock[] {
  let offset = 0;
  return g.parameterSizes.map((size, l) => {
    const b = { name: g.parameterNames[l] ?? `block-${l}`, offset, size };
    offset += size;
    return b;
  });
}

/**
 * DataInf scores [nTrain × nTest] (see the module doc for the formula, sign and units).
 *
 * @throws DdaError on malformed or mismatched gradients, no training gradients, or invalid options.
 */
export function dataInfScores(
  train: GradientMatrix,
  test: GradientMatrix,
  options: DataInfOptions = {},
  checkpoint: string = train.checkpoint,
): ScoreMatrix {
  checkGradientPair(train, test, 'datainf');
  checkDampingOptions(options, 'datainf');
  requireTrainingGradients(train, 'datainf');
  if (train.parameterSizes.length === 0 && train.dim > 0) {
    throw new DdaError('datainf: the gradients list no parameter tensors', 'fill parameterNames / parameterSizes so the rows can be split per layer');
  }
  const n = train.rows.length;
  const m = test.rows.length;
  const out = new Float64Array(n * m);
  const blocks = parameterBlocks(train).filter((b) => b.size > 0);
  const lambdas: number[] = [];
  let skipped = 0;
  for (const { offset, size } of blocks) {
    const end = offset + size;
    const lambda = resolveDamping(train.rows, options, offset, end);
    if (!(lambda > 0)) {
      skipped++; // every training gradient is zero on this block: its contribution is exactly 0
      continue;
    }
    lambdas.push(lambda);
    const w = Float64Array.from(train.rows, (r) => 1 / (lambda + squaredNorm(r, offset, end)));
    const x = new Float64Array(size);
    const inv = 1 / (n * lambda);
    for (let j = 0; j < m; j++) {
      const v = test.rows[j] as Float32Array;
      // x = (1/(nλ)) (n v − Σ_i (g_iᵀ v) w_i g_i), w_i = 1 / (λ + ‖g_i‖²)
      for (let p = 0; p < size; p++) x[p] = n * (v[offset + p] as number);
      for (let i = 0; i < n; i++) {
        const g = train.rows[i] as Float32Array;
        let s = 0;
        for (let p = 0; p < size; p++) s += (g[offset + p] as number) * (v[offset + p] as number);
        const a = s * (w[i] as number);
        if (a === 0) continue;
        for (let p = 0; p < size; p++) x[p] = (x[p] as number) - a * (g[offset + p] as number);
      }
      for (let i = 0; i < n; i++) {
        const g = train.rows[i] as Float32Array;
        let s = 0;
        for (let p = 0; p < size; p++) s += (g[offset + p] as number) * (x[p] as number);
        const k = i * m + j;
        out[k] = (out[k] as number) + s * inv;
      }
    }
  }
  const lam = describeBlockDamping(lambdas, options);
  return createScoreMatrix(train.ids, test.ids, out, {
    method: 'datainf',
    computedOver: `Σ_l g_trainᵀ H_l⁻¹ g_test over ${train.dim} parameters in ${blocks.length} parameter blocks${skipped ? ` (${skipped} with all-zero training gradients skipped)` : ''} (${describeCheckpoints(train, test)}), H_l = (1/n) Σ g_l g_lᵀ + λ_l I inverted by the DataInf closed form, ${lam}; dimensionless; higher = more responsible`,
    units: 'dimensionless',
    checkpoints: [checkpoint],
    transforms: [],
  });
}
