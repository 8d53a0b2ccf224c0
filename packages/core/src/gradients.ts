import { DdaError } from './errors.js';

/**
 * Per-example gradients, one row per sample: `rows[i]` is the flattened gradient of sample `ids[i]`
 * with respect to the trainable parameters (LoRA adapters by default), in the order given by
 * `parameterNames` / `parameterSizes`. Units: d(loss in nats) / d(parameter).
 */
export interface GradientMatrix {
  readonly ids: readonly string[];
  /** Length of every row. */
  readonly dim: number;
  readonly rows: readonly Float32Array[];
  /** Names of the parameter tensors, in flattening order. */
  readonly parameterNames: readonly string[];
  /** Number of scalars of each parameter tensor, same order as `parameterNames`. */
  readonly parameterSizes: readonly number[];
  /**
   * Shape of each parameter tensor (row-major, e.g. `[out, in]` for a weight matrix; PEFT's
   * `lora_A.weight` is `[rank, in]`, `lora_B.weight` `[out, rank]`), same order as `parameterNames`;
   * the product of a shape is its size. Optional: needed only by scorers that use the matrix
   * structure of a parameter (e.g. `if-ekfac`).
   */
  readonly parameterShapes?: readonly (readonly number[])[];
  /** Checkpoint the gradients were taken at (e.g. `base`, `epoch-2`). */
  readonly checkpoint: string;
}

/** Checks shapes and that every entry is finite; throws a DdaError that names the sample. */
export function validateGradientMatrix(g: GradientMatrix, what: string): void {
  if (g.rows.length !== g.ids.length) {
    throw new DdaError(`${what}: ${g.rows.length} gradient rows for ${g.ids.length} ids`);
  }
  const total = g.parameterSizes.reduce((a, b) => a + b, 0);
  if (total !== g.dim) throw new DdaError(`${what}: parameter sizes add up to ${total}, but dim is ${g.dim}`);
  if (g.parameterShapes !== undefined) {
    if (g.parameterShapes.length !== g.parameterSizes.length) {
      throw new DdaError(`${what}: ${g.parameterShapes.length} parameter shapes for ${g.parameterSizes.length} parameter tensors`, 'give one shape per parameter tensor, or none');
    }
    g.parameterShapes.forEach((shape, l) => {
      const size = shape.reduce((a, b) => a * b, 1);
      if (size !== g.parameterSizes[l]) {
        throw new DdaError(`${what}: parameter '${g.parameterNames[l]}' has shape [${shape.join(', ')}] (${size} entries) but size ${g.parameterSizes[l]}`);
      }
    });
  }
  g.rows.forEach((row, i) => {
    if (row.length !== g.dim) throw new DdaError(`${what}: gradient of '${g.ids[i]}' has ${row.length} entries, expected ${g.dim}`);
    for (let k = 0; k < row.length; k++) {
      if (!Number.isFinite(row[k] as number)) {
        throw new DdaError(
          `${what}: gradient of sample '${g.ids[i]}' at checkpoint '${g.checkpoint}' has a non-finite entry (${row[k]}) at index ${k}`,
          'the loss diverged; lower the learning rate or check the inputs for over-long or empty responses',
        );
      }
    }
  });
}

/**
 * Per-example gradients read one block of rows at a time (e.g. from an on-disk store), so that a
 * scorer whose scores for a training row depend on that row only (dot products, cosines) keeps one
 * block in memory however large the training set is.
 */
export interface GradientBlocks {
  /** Every sample id, in row order (the concatenation of the blocks' ids). */
  readonly ids: readonly string[];
  readonly dim: number;
  readonly checkpoint: string;
  readonly blockCount: number;
  /** Block `b` (0-based) as a GradientMatrix of its rows. */
  readBlock(b: number): Promise<GradientMatrix>;
}
