import { DdaError, numberOption, scorers, type PluginOptions, type RegistryEntry, type Scorer } from '@dda/core';
import { gradientScorer, readGradDotOptions } from '@dda/scorer-grad-dot';
import { dataInfScores, type DataInfOptions } from './datainf.js';
import { DEFAULT_PC_K, gradDotPcScores, type GradDotPcOptions } from './grad-dot-pc.js';
import { DEFAULT_TRACKSTAR_MIX, trackStarScores, type TrackStarOptions } from './trackstar.js';
import type { DampingOptions } from './damping.js';
import { ifEkfacScores, ifEkfacStreamedFit, type IfEkfacOptions } from './if-ekfac.js';
import { ifExactScoresOnEngine, type IfExactOptions } from './if-exact.js';
import { ifLissaScoresOnEngine, ifLissaStreamedFit, type IfLissaOptions } from './if-lissa.js';
import type { KernelSolver } from './linalg.js';
import { dataInfStreamedFit, gradDotPcStreamedFit, ifExactStreamedFit, trackStarStreamedFit } from './streamed-fit.js';

function optionalNumber(options: PluginOptions, key: string): number | undefined {
  return options[key] === undefined ? undefined : numberOption(options, key, 0);
}

/** The option `engine` of the influence scorers' float64 products (`auto`, `js` or a registered kernel's id; validated as `grad-dot`'s). */
function readEngine(options: PluginOptions): { engine: string } {
  return { engine: readGradDotOptions(options).engine ?? 'auto' };
}

function readDamping(options: PluginOptions): DampingOptions {
  const damping = optionalNumber(options, 'damping');
  const dampingRatio = optionalNumber(options, 'dampingRatio');
  return { ...(damping !== undefined && { damping }), ...(dampingRatio !== undefined && { dampingRatio }) };
}

/** Reads `if-exact` options: damping, dampingRatio, solver (`auto` | `dual` | `primal`), maxSystemSize, engine (of the float64 products: `auto` | `js` | a kernel id). */
export function readIfExactOptions(options: PluginOptions): IfExactOptions {
  const solver = options['solver'] ?? 'auto';
  if (solver !== 'auto' && solver !== 'dual' && solver !== 'primal') {
    throw new DdaError(`if-exact: option 'solver' must be 'auto', 'dual' or 'primal', got ${JSON.stringify(solver)}`);
  }
  const maxSystemSize = optionalNumber(options, 'maxSystemSize');
  return { ...readDamping(options), solver: solver as KernelSolver, ...(maxSystemSize !== undefined && { maxSystemSize }), ...readEngine(options) };
}

/** Reads `if-lissa` options: damping, dampingRatio, depth, scale, batch, repeats, seed, testBlock, solver (`auto` | `dual` | `primal`), streamAboveBytes, engine. */
export function readIfLissaOptions(options: PluginOptions): IfLissaOptions {
  const o: Record<string, number> = {};
  for (const key of ['depth', 'scale', 'batch', 'repeats', 'seed', 'testBlock', 'streamAboveBytes']) {
    const v = optionalNumber(options, key);
    if (v !== undefined) o[key] = v;
  }
  const solver = options['solver'] ?? 'auto';
  if (solver !== 'auto' && solver !== 'dual' && solver !== 'primal') {
    throw new DdaError(`if-lissa: option 'solver' must be auto, dual or primal, got ${String(solver)}`, 'leave it out for auto');
  }
  return { ...readDamping(options), ...o, solver, ...readEngine(options) };
}

/**
 * The `if-exact` scorer: g_trainᵀ H⁻¹ g_test with H = (1/n) Σ g gᵀ + λI (damped empirical Fisher
 * of the training gradients), solved exactly; dimensionless; higher = more responsible.
 */
export function ifExactScorer(options: IfExactOptions = {}): Scorer {
  return gradientScorer(
    'if-exact',
    'influence function g_trainᵀ H⁻¹ g_test, H = damped empirical Fisher (1/n) Σ g gᵀ + λI of the training gradients, solved exactly by Cholesky (dimensionless; higher = more responsible)',
    ifExactScoresOnEngine,
    options,
    { streamedFit: ifExactStreamedFit(options) },
  );
}

/**
 * The `if-lissa` scorer: as `if-exact`, with H⁻¹ by the LiSSA iteration; dimensionless; higher =
 * more responsible. Its streamed fit (full batch, primal) takes depth + 1 passes over the training
 * gradients, used above `streamAboveBytes` of them per checkpoint; minibatches and the dual solver
 * are refused there, so their gradients are stored.
 * @throws DdaError on invalid options.
 */
export function ifLissaScorer(options: IfLissaOptions = {}): Scorer {
  return gradientScorer(
    'if-lissa',
    'influence function g_trainᵀ H⁻¹ g_test, H = damped empirical Fisher of the training gradients, H⁻¹ by LiSSA (dimensionless; higher = more responsible)',
    ifLissaScoresOnEngine,
    options,
    { streamedFit: ifLissaStreamedFit(options) },
  );
}

/** The `datainf` scorer: DataInf's per-layer closed-form inverse; dimensionless; higher = more responsible. */
export function dataInfScorer(options: DataInfOptions = {}): Scorer {
  return gradientScorer(
    'datainf',
    'DataInf: Σ over parameter tensors of g_trainᵀ H_l⁻¹ g_test with the closed-form inverse of the per-layer damped Fisher (dimensionless; higher = more responsible)',
    dataInfScores,
    options,
    { streamedFit: dataInfStreamedFit(options) },
  );
}

/** Reads `if-ekfac` options: damping, dampingRatio, maxFactorSize, engine. */
export function readIfEkfacOptions(options: PluginOptions): IfEkfacOptions {
  const maxFactorSize = optionalNumber(options, 'maxFactorSize');
  return { ...readDamping(options), ...(maxFactorSize !== undefined && { maxFactorSize }), ...readEngine(options) };
}

/**
 * The `if-ekfac` scorer: Σ over parameter tensors of g_trainᵀ H_l⁻¹ g_test with H_l the
 * eigenvalue-corrected Kronecker-factored damped Fisher, factors from the per-example gradient
 * matrices; dimensionless; higher = more responsible.
 */
export function ifEkfacScorer(options: IfEkfacOptions = {}): Scorer {
  return gradientScorer(
    'if-ekfac',
    'EK-FAC influence: Σ over parameter tensors of g_trainᵀ H_l⁻¹ g_test, H_l = eigenvalue-corrected Kronecker factors (from per-example gradient matrices) + λ_l I (dimensionless; higher = more responsible)',
    ifEkfacScores,
    options,
    { streamedFit: ifEkfacStreamedFit(options) },
  );
}

/** Reads `grad-dot-pc` options: k (positive integer, default 10), basis (`train` | `query`, default `train`), engine and blockRows (as `grad-dot`). */
export function readGradDotPcOptions(options: PluginOptions): GradDotPcOptions {
  const basis = options['basis'] ?? 'train';
  if (basis !== 'train' && basis !== 'query') throw new DdaError(`grad-dot-pc: option 'basis' must be 'train' or 'query', got ${JSON.stringify(basis)}`, "leave it out for 'train'");
  return { ...readGradDotOptions(options), k: numberOption(options, 'k', DEFAULT_PC_K), basis };
}

/**
 * The `grad-dot-pc` scorer: grad-dot after the k leading principal directions of the training (or
 * test) gradients are projected out, as bergson does; units of grad-dot; higher = more responsible.
 * With the training basis it has a streamed fit (dim ≤ 8192); with the query basis it is row-separable.
 */
export function gradDotPcScorer(options: GradDotPcOptions = {}): Scorer {
  return gradientScorer(
    'grad-dot-pc',
    'gradient inner product with the k leading (uncentred) principal directions of the training or test gradients projected out, ∇ℓᵀ(I − V_k V_kᵀ)∇f (units of grad-dot; higher = more responsible)',
    gradDotPcScores,
    options,
    // The query basis depends on the test gradients only: each training row's scores on that row alone.
    options.basis === 'query' ? { rowSeparable: true } : { streamedFit: gradDotPcStreamedFit(options) },
  );
}

/** Reads `trackstar` options: mix (λ in [0, 1], default 0.5), damping, dampingRatio, maxSystemSize, engine and blockRows (as `grad-dot`). */
export function readTrackStarOptions(options: PluginOptions): TrackStarOptions {
  const mix = optionalNumber(options, 'mix');
  const maxSystemSize = optionalNumber(options, 'maxSystemSize');
  return { ...readGradDotOptions(options), ...readDamping(options), ...(mix !== undefined && { mix }), ...(maxSystemSize !== undefined && { maxSystemSize }) };
}

/**
 * The `trackstar` scorer: gradient cosine under the inverse of a mixed (training and query)
 * second moment, after TrackStar; dimensionless in [−1, 1]; higher = more responsible.
 */
export function trackStarScorer(options: TrackStarOptions = {}): Scorer {
  return gradientScorer(
    'trackstar',
    "cosine of the training and test gradients under R⁻¹, R = (1 − λ) × training + λ × query gradient second moment + εI (TrackStar's mixed Hessian down-weighting common directions, without optimizer-state correction or projection; dimensionless in [-1, 1]; higher = more responsible)",
    trackStarScores,
    options,
    { streamedFit: trackStarStreamedFit(options) },
  );
}

/** Registry entries `if-exact`, `if-lissa`, `datainf`, `if-ekfac`, `grad-dot-pc` and `trackstar`; options as in {@link readIfExactOptions} etc. */
export const scorerEntries: readonly RegistryEntry<Scorer, PluginOptions>[] = [
  {
    id: 'datainf',
    description: 'DataInf closed-form influence per parameter tensor (options damping, dampingRatio = 0.1, engine = auto: its streamed fit\'s float64 products on a kernel)',
    priority: 80,
    options: ['damping', 'dampingRatio', 'engine'],
    create: (o) => dataInfScorer({ ...readDamping(o), ...readEngine(o) }),
  },
  {
    id: 'if-exact',
    description: 'exact influence with the damped empirical Fisher (options damping, dampingRatio = 0.1, solver, maxSystemSize = 8192, engine = auto: the float64 products on a kernel\'s float64 GEMM)',
    priority: 70,
    options: ['damping', 'dampingRatio', 'solver', 'maxSystemSize', 'engine'],
    create: (o) => ifExactScorer(readIfExactOptions(o)),
  },
  {
    id: 'if-lissa',
    description: 'LiSSA influence with the damped empirical Fisher (options damping, dampingRatio, depth = 200, scale, batch = 0 (all), repeats = 1, seed = 0, solver, streamAboveBytes = 2^30: training gradients above it streamed in depth + 1 passes, engine = auto)',
    priority: 60,
    options: ['damping', 'dampingRatio', 'depth', 'scale', 'batch', 'repeats', 'seed', 'testBlock', 'solver', 'streamAboveBytes', 'engine'],
    create: (o) => ifLissaScorer(readIfLissaOptions(o)),
  },
  {
    id: 'if-ekfac',
    description: 'EK-FAC influence per parameter tensor, factors from per-example gradients (options damping, dampingRatio = 0.1, maxFactorSize = 1024, engine = auto)',
    priority: 65,
    options: ['damping', 'dampingRatio', 'maxFactorSize', 'engine'],
    create: (o) => ifEkfacScorer(readIfEkfacOptions(o)),
  },
  {
    id: 'grad-dot-pc',
    description: `grad-dot with the k leading principal directions of the gradients projected out, as bergson (options k = ${DEFAULT_PC_K}, basis = train|query, engine = auto|js|a dot-product kernel, blockRows)`,
    priority: 55,
    options: ['k', 'basis', 'engine', 'blockRows'],
    create: (o) => gradDotPcScorer(readGradDotPcOptions(o)),
  },
  {
    id: 'trackstar',
    description: `TrackStar-style cosine under a mixed training/query second moment (options mix = ${DEFAULT_TRACKSTAR_MIX}, damping, dampingRatio = 0.1, maxSystemSize = 8192, engine = auto|js|a dot-product kernel)`,
    priority: 50,
    options: ['mix', 'damping', 'dampingRatio', 'maxSystemSize', 'engine', 'blockRows'],
    create: (o) => trackStarScorer(readTrackStarOptions(o)),
  },
];

/**
 * Adds `if-exact`, `if-lissa`, `datainf`, `if-ekfac`, `grad-dot-pc` and `trackstar` to the `scorers` registry of @dda/core. Idempotent.
 * Called when this package is imported.
 */
export function registerInfluenceScorers(): void {
  for (const e of scorerEntries) if (!scorers.has(e.id)) scorers.register(e);
}
