/**
 * `random`: the chance baseline. Every (training sample, test output) pair gets an independent
 * uniform score in [0, 1), drawn from `SeededRandom(seed)` (mulberry32) in row-major order
 * (train row i, then test column j): the same seed and shape always give the same matrix.
 * By default the scores do not depend on the checkpoint (so DDA's debias of random scores against
 * the base model is exactly zero); with `perCheckpoint: true` the seed is mixed with a hash of the
 * checkpoint id, so each checkpoint gets its own, still reproducible, draw.
 *
 * Sign: none by construction (the convention "higher = more responsible" holds only by chance).
 * Units: dimensionless, uniform in [0, 1). Expected ROC-AUC 50%.
 */
import { DdaError, SeededRandom, createScoreMatrix, fnv1a, type ScoreMatrix } from '@dda/core';

/** Options of {@link randomScores} and the `random` scorer. */
export interface RandomOptions {
  /** Integer seed (default 0). */
  readonly seed?: number;
  /** Mix the checkpoint id into the seed (default false: the same matrix at every checkpoint). */
  readonly perCheckpoint?: boolean;
}

/** 32-bit FNV-1a hash of a string (moved to @dda/core; re-exported here). */
export { fnv1a };

/** The seed actually used: `seed`, or `(seed ^ fnv1a(checkpoint)) >>> 0` with `perCheckpoint`. */
export function effectiveSeed(options: RandomOptions, checkpoint: string): number {
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed)) throw new DdaError(`random: option 'seed' must be an integer, got ${seed}`, 'pass e.g. seed = 0');
  const per = options.perCheckpoint ?? false;
  if (typeof per !== 'boolean') throw new DdaError(`random: option 'perCheckpoint' must be true or false, got ${JSON.stringify(per)}`);
  return per ? (seed ^ fnv1a(checkpoint)) >>> 0 : seed;
}

/**
 * Uniform scores [nTrain × nTest] (see the module doc).
 *
 * @throws DdaError on a non-integer seed or a non-boolean `perCheckpoint`.
 */
export function randomScores(
  trainIds: readonly string[],
  testIds: readonly string[],
  options: RandomOptions = {},
  checkpoint = 'none',
): ScoreMatrix {
  const seed = effectiveSeed(options, checkpoint);
  const rng = new SeededRandom(seed);
  const values = new Float64Array(trainIds.length * testIds.length);
  for (let k = 0; k < values.length; k++) values[k] = rng.next();
  return createScoreMatrix(trainIds, testIds, values, {
    method: 'random',
    computedOver: `independent uniform draws in [0, 1) (seed ${options.seed ?? 0}${options.perCheckpoint ? `, mixed with checkpoint '${checkpoint}' → ${seed}` : ', same at every checkpoint'}); dimensionless; the chance baseline, no relation to responsibility`,
    units: 'dimensionless (uniform draws in [0, 1))',
    checkpoints: [checkpoint],
    transforms: [],
  });
}
