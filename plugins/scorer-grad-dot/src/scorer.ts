import { DdaError, numberOption, scorers, type PluginOptions, type RegistryEntry, type Scorer } from '@dda/core';
import { DEFAULT_BLOCK_ROWS, checkIdsMatchInput, gradCosScores, gradDotScores, type GradDotOptions } from './grad-dot.js';

function readOptions(options: PluginOptions): GradDotOptions {
  const blockRows = numberOption(options, 'blockRows', DEFAULT_BLOCK_ROWS);
  if (!Number.isInteger(blockRows) || blockRows < 1) {
    throw new DdaError(`option 'blockRows' must be a positive integer, got ${blockRows}`, 'pass e.g. blockRows = 256');
  }
  return { blockRows };
}

/**
 * The `grad-dot` scorer: score[i][j] = ∇ℓ(z_t_i)·∇f(z_e_j) at the input's checkpoint
 * (the negative of Koh & Liang's influence with H = I; higher = more responsible).
 * Units: nats² per squared parameter unit.
 */
export function gradDotScorer(options: GradDotOptions = {}): Scorer {
  return {
    id: 'grad-dot',
    description:
      'inner product of the training-loss gradient and the test-measurement gradient (influence with H = I, sign flipped so higher = more responsible; units nats² per squared parameter unit)',
    needs: ['gradients'],
    async score(input) {
      const [train, test] = await Promise.all([input.trainGradients(), input.testGradients()]);
      checkIdsMatchInput(input, train, test, 'grad-dot');
      return gradDotScores(train, test, options, input.checkpoint);
    },
  };
}

/**
 * The `grad-cos` scorer: cosine of the training-loss and test-measurement gradients at the
 * input's checkpoint; dimensionless in [−1, 1], 0 for a zero gradient; higher = more responsible.
 */
export function gradCosScorer(options: GradDotOptions = {}): Scorer {
  return {
    id: 'grad-cos',
    description: 'cosine similarity of the training-loss and test-measurement gradients (dimensionless, in [-1, 1]; higher = more responsible)',
    needs: ['gradients'],
    async score(input) {
      const [train, test] = await Promise.all([input.trainGradients(), input.testGradients()]);
      checkIdsMatchInput(input, train, test, 'grad-cos');
      return gradCosScores(train, test, options, input.checkpoint);
    },
  };
}

/** Registry entries `grad-dot` and `grad-cos`; option `blockRows` (positive integer, default 256). */
export const scorerEntries: readonly RegistryEntry<Scorer, PluginOptions>[] = [
  {
    id: 'grad-dot',
    description: 'gradient inner product ∇ℓ(train)·∇f(test), influence with H = I (option blockRows, default 256)',
    priority: 100,
    create: (o) => gradDotScorer(readOptions(o)),
  },
  {
    id: 'grad-cos',
    description: 'gradient cosine similarity (option blockRows, default 256)',
    priority: 90,
    create: (o) => gradCosScorer(readOptions(o)),
  },
];

/**
 * Adds `grad-dot` and `grad-cos` to the `scorers` registry of @dda/core. Idempotent: ids already
 * registered are left alone. Called when this package is imported.
 */
export function registerGradDotScorers(): void {
  for (const e of scorerEntries) if (!scorers.has(e.id)) scorers.register(e);
}
