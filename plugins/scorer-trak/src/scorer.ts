import { DdaError, numberOption, scorers, type PluginOptions, type RegistryEntry, type Scorer } from '@dda/core';
import { gradientScorer } from '@dda/scorer-grad-dot';
import { DEFAULT_PROJECTION_DIM, trakBlockSummaries, trakScoresOnEngine, type TrakOptions } from './trak.js';

/** Reads `trak` options: projectionDim, seed, damping, dampingRatio, solver, maxSystemSize, engine (`auto`, `js` or a dot-product kernel's id). */
export function readTrakOptions(options: PluginOptions): TrakOptions {
  const o: Record<string, number> = {};
  for (const key of ['projectionDim', 'seed', 'damping', 'dampingRatio', 'maxSystemSize']) {
    if (options[key] !== undefined) o[key] = numberOption(options, key, 0);
  }
  const solver = options['solver'] ?? 'auto';
  if (solver !== 'auto' && solver !== 'dual' && solver !== 'primal') {
    throw new DdaError(`trak: option 'solver' must be 'auto', 'dual' or 'primal', got ${JSON.stringify(solver)}`);
  }
  const engine = options['engine'];
  if (engine !== undefined && typeof engine !== 'string') throw new DdaError(`trak: option 'engine' must be a string (auto, js or a dot-product kernel's id), got ${JSON.stringify(engine)}`);
  return { ...o, solver, ...(engine !== undefined ? { engine } : {}) };
}

/**
 * The `trak` scorer: TRAK's projected kernel φ_testᵀ (ΦᵀΦ + λI)⁻¹ φ_train over randomly projected
 * gradients at the input's checkpoint; dimensionless; higher = more responsible.
 */
export function trakScorer(options: TrakOptions = {}): Scorer {
  const scorer = gradientScorer(
    'trak',
    'TRAK projected kernel φ_testᵀ (ΦᵀΦ + λI)⁻¹ φ_train over seeded Gaussian projections of the gradients (dimensionless; higher = more responsible)',
    trakScoresOnEngine,
    options,
  );
  // Streamed: each block of training gradients projected and dropped (with a projection only).
  return (options.projectionDim ?? DEFAULT_PROJECTION_DIM) > 0 ? { ...scorer, blockSummaries: trakBlockSummaries(options) } : scorer;
}

/** Registry entry `trak`. */
export const scorerEntries: readonly RegistryEntry<Scorer, PluginOptions>[] = [
  {
    id: 'trak',
    description: `TRAK projected-kernel attribution (options projectionDim = ${DEFAULT_PROJECTION_DIM} (0 = none), seed = 0, damping, dampingRatio = 0.1, engine = auto)`,
    priority: 50,
    options: ['projectionDim', 'seed', 'damping', 'dampingRatio', 'maxSystemSize', 'solver', 'engine'],
    create: (o) => trakScorer(readTrakOptions(o)),
  },
];

/** Adds `trak` to the `scorers` registry of @dda/core. Idempotent. Called when this package is imported. */
export function registerTrakScorer(): void {
  for (const e of scorerEntries) if (!scorers.has(e.id)) scorers.register(e);
}
