import { DdaError, numberOption, scorers, type GradientMatrix, type PluginOptions, type RegistryEntry, type ScoreMatrix, type Scorer } from '@dda/core';
import { DEFAULT_BLOCK_ROWS, checkIdsMatchInput, type DotEngineChoice, type GradDotOptions } from './grad-dot.js';
import { DOT_ENGINES, gradCosScoresOnEngine, gradDotScoresOnEngine } from './gemm-engine.js';
import { TRACIN_CP_COMBINE, tracInCheckpointScores } from './tracin.js';

function readOptions(options: PluginOptions): GradDotOptions {
  const blockRows = numberOption(options, 'blockRows', DEFAULT_BLOCK_ROWS);
  if (!Number.isInteger(blockRows) || blockRows < 1) {
    throw new DdaError(`option 'blockRows' must be a positive integer, got ${blockRows}`, 'pass e.g. blockRows = 256');
  }
  const engine = options.engine ?? 'auto';
  if (!DOT_ENGINES.includes(engine as DotEngineChoice)) {
    throw new DdaError(`option 'engine' must be one of ${DOT_ENGINES.join(', ')}, got ${String(engine)}`, "pass engine 'auto' (onnxruntime GEMM when available) or 'js'");
  }
  return { blockRows, engine: engine as DotEngineChoice };
}

/** A function scoring training gradients against test gradients at one checkpoint. */
export type GradientScoresFn<O> = (train: GradientMatrix, test: GradientMatrix, options: O, checkpoint: string) => ScoreMatrix | Promise<ScoreMatrix>;

/**
 * A Scorer over per-example gradients: fetches the input's training and test gradients, checks that
 * their ids match the input's samples in order, and scores them with `scores` at the input's checkpoint.
 * Every gradient-based scorer plugin is built with it.
 */
export function gradientScorer<O>(id: string, description: string, scores: GradientScoresFn<O>, options: O): Scorer {
  return {
    id,
    description,
    needs: ['gradients'],
    async score(input) {
      const [train, test] = await Promise.all([input.trainGradients(), input.testGradients()]);
      checkIdsMatchInput(input, train, test, id);
      return scores(train, test, options, input.checkpoint);
    },
  };
}

/**
 * The `grad-dot` scorer: score[i][j] = ∇ℓ(z_t_i)·∇f(z_e_j) at the input's checkpoint
 * (the negative of Koh & Liang's influence with H = I; higher = more responsible).
 * Units: nats² per squared parameter unit.
 */
export function gradDotScorer(options: GradDotOptions = {}): Scorer {
  return gradientScorer(
    'grad-dot',
    'inner product of the training-loss gradient and the test-measurement gradient (influence with H = I, sign flipped so higher = more responsible; units nats² per squared parameter unit)',
    gradDotScoresOnEngine,
    options,
  );
}

/**
 * The `grad-cos` scorer: cosine of the training-loss and test-measurement gradients at the
 * input's checkpoint; dimensionless in [−1, 1], 0 for a zero gradient; higher = more responsible.
 */
export function gradCosScorer(options: GradDotOptions = {}): Scorer {
  return gradientScorer(
    'grad-cos',
    'cosine similarity of the training-loss and test-measurement gradients (dimensionless, in [-1, 1]; higher = more responsible)',
    gradCosScoresOnEngine,
    options,
  );
}

/**
 * The `tracin-cp` scorer: at each checkpoint the term ∇ℓ(z_t_i)·∇f(z_e_j); it declares
 * `combine: { denoiser: 'lr-weighted' }`, so its answer for a fine-tuned model is
 * Σ_i η_i·term_i / Σ_i η_i over the epoch checkpoints = TracIn-CP / Σ η_i (see tracin.ts).
 * Units nats² per squared parameter unit; higher = more responsible.
 */
export function tracInCpScorer(options: GradDotOptions = {}): Scorer {
  return {
    ...gradientScorer(
      'tracin-cp',
      'TracIn-CP: learning-rate-weighted mean over the epoch checkpoints of ∇ℓ(train)·∇f(test) (= Σ η_i ⟨∇ℓ, ∇f⟩_θi / Σ η_i; units nats² per squared parameter unit; higher = more responsible)',
      tracInCheckpointScores,
      options,
    ),
    combine: TRACIN_CP_COMBINE,
  };
}

/** Registry entries `grad-dot`, `grad-cos` and `tracin-cp`; option `blockRows` (positive integer, default 256). */
export const scorerEntries: readonly RegistryEntry<Scorer, PluginOptions>[] = [
  {
    id: 'grad-dot',
    description: 'gradient inner product ∇ℓ(train)·∇f(test), influence with H = I (options blockRows, default 256; engine auto|onnxruntime|js, default auto = onnxruntime float32 GEMM when it starts)',
    priority: 100,
    create: (o) => gradDotScorer(readOptions(o)),
  },
  {
    id: 'grad-cos',
    description: 'gradient cosine similarity (options blockRows, default 256; engine auto|onnxruntime|js, default auto)',
    priority: 90,
    create: (o) => gradCosScorer(readOptions(o)),
  },
  {
    id: 'tracin-cp',
    description: 'TracIn-CP: Σ η_i ∇ℓ·∇f over the epoch checkpoints / Σ η_i (combined with denoiser lr-weighted; option blockRows)',
    priority: 85,
    create: (o) => tracInCpScorer(readOptions(o)),
  },
];

/**
 * Adds `grad-dot`, `grad-cos` and `tracin-cp` to the `scorers` registry of @dda/core. Idempotent: ids already
 * registered are left alone. Called when this package is imported.
 */
export function registerGradDotScorers(): void {
  for (const e of scorerEntries) if (!scorers.has(e.id)) scorers.register(e);
}
