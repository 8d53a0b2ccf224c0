import { DdaError, createScoreMatrix, dotKernels, numberOption, scorers, type GradientMatrix, type PluginOptions, type RegistryEntry, type ScoreMatrix, type Scorer, type ScoringInput, type StreamedFit } from '@dda/core';
import { DEFAULT_BLOCK_ROWS, checkIdsMatchInput, type GradDotOptions } from './grad-dot.js';
import { gradCosScoresOnEngine, gradDotScoresOnEngine } from './gemm-engine.js';
import { TRACIN_CP_COMBINE, tracInCheckpointScores } from './tracin.js';

/**
 * Reads the dot-product options of the gradient scorers: `blockRows` (positive integer, default
 * 256) and `engine` (`auto` | `js` | a dot-product kernel's id such as `onnxruntime`, default
 * `auto`).
 *
 * @throws DdaError for a bad `blockRows`, or an engine that is neither `auto`, `js` nor a registered kernel.
 */
export function readGradDotOptions(options: PluginOptions): GradDotOptions {
  const blockRows = numberOption(options, 'blockRows', DEFAULT_BLOCK_ROWS);
  if (!Number.isInteger(blockRows) || blockRows < 1) {
    throw new DdaError(`option 'blockRows' must be a positive integer, got ${blockRows}`, 'pass e.g. blockRows = 256');
  }
  const engine = options.engine ?? 'auto';
  const choices = ['auto', 'js', ...dotKernels.ids()];
  if (typeof engine !== 'string' || !choices.includes(engine)) {
    throw new DdaError(`option 'engine' must be one of ${choices.join(', ')} (auto, js or a registered dot-product kernel), got ${JSON.stringify(engine)}`, "pass engine 'auto' (a registered kernel such as onnxruntime's GEMM when one starts) or 'js'; a plugin's kernel needs its plugin loaded");
  }
  return { blockRows, engine };
}

/** A function scoring training gradients against test gradients at one checkpoint. */
export type GradientScoresFn<O> = (train: GradientMatrix, test: GradientMatrix, options: O, checkpoint: string) => ScoreMatrix | Promise<ScoreMatrix>;

/**
 * A Scorer over per-example gradients: fetches the input's training and test gradients, checks that
 * their ids match the input's samples in order, and scores them with `scores` at the input's checkpoint.
 * Every gradient-based scorer plugin is built with it.
 *
 * `rowSeparable`: the scores of a training row depend on that row only (dot products, cosines).
 * Such a scorer reads the training gradients block by block when the input offers
 * `trainGradientBlocks` (an on-disk store), so memory holds one block, not the whole training set.
 * `streamedFit`: the scorer's two-pass streamed form (see StreamedFit in @dda/core), declared as given.
 */
export function gradientScorer<O>(id: string, description: string, scores: GradientScoresFn<O>, options: O, shape: { rowSeparable?: boolean; streamedFit?: StreamedFit } = {}): Scorer {
  return {
    id,
    description,
    needs: ['gradients'],
    ...(shape.rowSeparable ? { rowSeparable: true } : {}),
    ...(shape.streamedFit ? { streamedFit: shape.streamedFit } : {}),
    async score(input) {
      if (shape.rowSeparable && input.trainGradientBlocks) return scoreInBlocks(id, input, scores, options);
      const [train, test] = await Promise.all([input.trainGradients(), input.testGradients()]);
      checkIdsMatchInput(input, train, test, id);
      return scores(train, test, options, input.checkpoint);
    },
  };
}

/** A row-separable scorer over the training gradients' blocks: each block's rows scored against every test gradient. */
async function scoreInBlocks<O>(id: string, input: ScoringInput, scores: GradientScoresFn<O>, options: O): Promise<ScoreMatrix> {
  const blocks = await (input.trainGradientBlocks as NonNullable<ScoringInput['trainGradientBlocks']>)();
  const test = await input.testGradients();
  const expected = input.train.map((s) => s.id);
  if (blocks.ids.length !== expected.length || blocks.ids.some((x, i) => x !== expected[i])) {
    throw new DdaError(`${id}: the stored training gradients (${blocks.ids.length} rows) do not match the ${expected.length} training samples in order`, 'recompute the gradients (delete the gradient artifact)');
  }
  const nTest = test.rows.length;
  const values = new Float64Array(blocks.ids.length * nTest);
  let offset = 0;
  let first: ScoreMatrix | undefined;
  for (let b = 0; b < blocks.blockCount; b++) {
    const block = await blocks.readBlock(b);
    const m = await scores(block, test, options, input.checkpoint);
    values.set(m.values, offset * nTest);
    offset += block.rows.length;
    first ??= m;
  }
  if (offset !== blocks.ids.length) throw new DdaError(`${id}: the gradient blocks hold ${offset} rows, their ids ${blocks.ids.length}`);
  if (!first) throw new DdaError(`${id}: the training gradient store has no blocks`, 'recompute the gradients (delete the gradient artifact)');
  return createScoreMatrix(blocks.ids, test.ids, values, { ...first.provenance, computedOver: `${first.provenance.computedOver} (training gradients streamed in ${blocks.blockCount} blocks)` });
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
    { rowSeparable: true },
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
    { rowSeparable: true },
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
      { rowSeparable: true },
    ),
    combine: TRACIN_CP_COMBINE,
  };
}

/** Registry entries `grad-dot`, `grad-cos` and `tracin-cp`; option `blockRows` (positive integer, default 256). */
export const scorerEntries: readonly RegistryEntry<Scorer, PluginOptions>[] = [
  {
    id: 'grad-dot',
    description: 'gradient inner product ∇ℓ(train)·∇f(test), influence with H = I (options blockRows, default 256; engine auto|js|the id of a dot-product kernel, default auto = the registered kernels by priority, e.g. the onnxruntime float32 GEMM, when one starts)',
    priority: 100,
    options: ['blockRows', 'engine'],
    create: (o) => gradDotScorer(readGradDotOptions(o)),
  },
  {
    id: 'grad-cos',
    description: 'gradient cosine similarity (options blockRows, default 256; engine auto|js|the id of a dot-product kernel, default auto)',
    priority: 90,
    options: ['blockRows', 'engine'],
    create: (o) => gradCosScorer(readGradDotOptions(o)),
  },
  {
    id: 'tracin-cp',
    description: 'TracIn-CP: Σ η_i ∇ℓ·∇f over the epoch checkpoints / Σ η_i (combined with denoiser lr-weighted; option blockRows)',
    priority: 85,
    options: ['blockRows', 'engine'],
    create: (o) => tracInCpScorer(readGradDotOptions(o)),
  },
];

/**
 * Adds `grad-dot`, `grad-cos` and `tracin-cp` to the `scorers` registry of @dda/core. Idempotent: ids already
 * registered are left alone. Called when this package is imported.
 */
export function registerGradDotScorers(): void {
  for (const e of scorerEntries) if (!scorers.has(e.id)) scorers.register(e);
}
