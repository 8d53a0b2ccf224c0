import { DdaError, numberOption, scorers, type PluginOptions, type RegistryEntry, type Scorer } from '@dda/core';
import { effectiveSeed, randomScores, type RandomOptions } from './random-scorer.js';

/** Reads `random` options: seed (integer, default 0), perCheckpoint (boolean, default false). */
export function readRandomOptions(options: PluginOptions): RandomOptions {
  const per = options['perCheckpoint'] ?? false;
  if (typeof per !== 'boolean') throw new DdaError(`random: option 'perCheckpoint' must be true or false, got ${JSON.stringify(per)}`);
  const o = { seed: numberOption(options, 'seed', 0), perCheckpoint: per };
  effectiveSeed(o, ''); // validates the seed now rather than at scoring time
  return o;
}

/**
 * The `random` scorer: seeded uniform scores in [0, 1), the chance baseline; needs nothing from
 * the model; dimensionless; no relation to responsibility.
 */
export function randomScorer(options: RandomOptions = {}): Scorer {
  return {
    id: 'random',
    description: 'seeded uniform scores in [0, 1), the chance baseline (dimensionless; same matrix at every checkpoint unless perCheckpoint)',
    needs: [],
    async score(input) {
      return randomScores(
        input.train.map((s) => s.id),
        input.test.map((s) => s.id),
        options,
        input.checkpoint,
      );
    },
  };
}

/** Registry entry `random`. */
export const scorerEntries: readonly RegistryEntry<Scorer, PluginOptions>[] = [
  {
    id: 'random',
    description: 'seeded uniform random scores, the chance baseline (options seed = 0, perCheckpoint = false)',
    priority: 0,
    options: ['seed', 'perCheckpoint'],
    create: (o) => randomScorer(readRandomOptions(o)),
  },
];

/** Adds `random` to the `scorers` registry of @dda/core. Idempotent. Called when this package is imported. */
export function registerRandomScorer(): void {
  for (const e of scorerEntries) if (!scorers.has(e.id)) scorers.register(e);
}
