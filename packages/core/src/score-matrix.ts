import { DdaError } from './errors.js';

/**
 * What a score means: every score in this project follows one convention,
 * **higher = the training sample is more responsible for the test output**.
 */
export interface ScoreProvenance {
  /** Stable kebab-case id of the method that produced the scores (e.g. `grad-dot`, `dda`). */
  readonly method: string;
  /** Human-readable description of the units and of what the scores were computed over (each transform appends to it). */
  readonly computedOver: string;
  /**
   * The units of the values as they are now, after every transform (e.g. `nats² per squared
   * parameter unit`, `dimensionless`), where the producer states them. A transform that rescales
   * (z-score, unit norm, ranks) replaces it; one that keeps the scale keeps it. Absent: see
   * `computedOver` (scores stored by older versions, or a scorer that does not state them).
   */
  readonly units?: string;
  /** Checkpoint ids the scores come from (e.g. `["base"]`, `["epoch-1","epoch-2"]`). */
  readonly checkpoints: readonly string[];
  /** Transforms applied so far, in order (e.g. `["denoise:mean", "debias:raw(beta=1)"]`). */
  readonly transforms: readonly string[];
}

/**
 * A dense score matrix of shape [nTrain × nTest], row-major:
 * `values[i * nTest + j]` is the score of training sample `trainIds[i]` for test output `testIds[j]`.
 * Sign convention: higher = training sample more responsible for the test output.
 */
export interface ScoreMatrix {
  readonly trainIds: readonly string[];
  readonly testIds: readonly string[];
  /** Row-major values, length nTrain * nTest. Float64 to keep sums over many checkpoints exact enough. */
  readonly values: Float64Array;
  readonly provenance: ScoreProvenance;
}

/** The units of a matrix's values as a phrase: {@link ScoreProvenance.units} where stated, else `units of the '<method>' scores`. */
export function scoreUnits(m: Pick<ScoreMatrix, 'provenance'>): string {
  return m.provenance.units ?? `not declared by the '${m.provenance.method}' scorer (its ScoreProvenance has no units; computedOver may say)`;
}

/** Builds a score matrix and checks its shape and that every value is finite. */
export function createScoreMatrix(
  trainIds: readonly string[],
  testIds: readonly string[],
  values: Float64Array | readonly number[],
  provenance: ScoreProvenance,
): ScoreMatrix {
  const v = values instanceof Float64Array ? values : Float64Array.from(values);
  if (v.length !== trainIds.length * testIds.length) {
    throw new DdaError(
      `score matrix for '${provenance.method}' has ${v.length} values, expected ${trainIds.length} train × ${testIds.length} test = ${trainIds.length * testIds.length}`,
      'the scorer must return one value per (train, test) pair',
    );
  }
  assertFiniteScores(v, trainIds, testIds, provenance.method);
  return { trainIds: [...trainIds], testIds: [...testIds], values: v, provenance };
}

/** Throws a DdaError naming the first non-finite score, if any. */
export function assertFiniteScores(
  values: Float64Array,
  trainIds: readonly string[],
  testIds: readonly string[],
  method: string,
): void {
  const nTest = testIds.length;
  for (let k = 0; k < values.length; k++) {
    const x = values[k] as number;
    if (!Number.isFinite(x)) {
      const i = Math.floor(k / Math.max(nTest, 1));
      const j = k - i * nTest;
      throw new DdaError(
        `method '${method}' produced a non-finite score (${x}) for train '${trainIds[i]}' × test '${testIds[j]}'`,
        'check the gradients for NaN/Inf (e.g. lower the learning rate, or inspect the checkpoint)',
      );
    }
  }
}

/** Value at (train row i, test column j). */
export function scoreAt(m: ScoreMatrix, i: number, j: number): number {
  return m.values[i * m.testIds.length + j] as number;
}

/** Throws unless the two matrices have the same train and test ids in the same order. */
export function assertSameShape(a: ScoreMatrix, b: ScoreMatrix, what: string): void {
  const same = (x: readonly string[], y: readonly string[]): boolean =>
    x.length === y.length && x.every((v, k) => v === y[k]);
  if (!same(a.trainIds, b.trainIds) || !same(a.testIds, b.testIds)) {
    throw new DdaError(
      `${what}: score matrices do not line up ('${a.provenance.method}' is ${a.trainIds.length}×${a.testIds.length}, '${b.provenance.method}' is ${b.trainIds.length}×${b.testIds.length}, or their ids differ)`,
      'score every checkpoint over the same training samples and test outputs, in the same order',
    );
  }
}

/**
 * Aggregates the columns of a score matrix: for each group (e.g. a source / canary), the mean
 * score of every training sample over that group's test columns. Returns one Float64Array of
 * length nTrain per group. Sign convention is preserved (higher = more responsible).
 */
export function aggregateColumns(
  m: ScoreMatrix,
  groups: ReadonlyMap<string, readonly string[]>,
): Map<string, Float64Array> {
  const col = new Map(m.testIds.map((id, j) => [id, j] as const));
  const nTrain = m.trainIds.length;
  const nTest = m.testIds.length;
  const out = new Map<string, Float64Array>();
  for (const [group, ids] of groups) {
    if (ids.length === 0) throw new DdaError(`group '${group}' has no test outputs to aggregate over`);
    const cols = ids.map((id) => {
      const j = col.get(id);
      if (j === undefined) throw new DdaError(`test id '${id}' of group '${group}' is not a column of the score matrix`);
      return j;
    });
    const agg = new Float64Array(nTrain);
    for (let i = 0; i < nTrain; i++) {
      let s = 0;
      for (const j of cols) s += m.values[i * nTest + j] as number;
      agg[i] = s / cols.length;
    }
    out.set(group, agg);
  }
  return out;
}
