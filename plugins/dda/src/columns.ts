/**
 * Per-test-column transforms of a row-major [nTrain × nTest] value array. Each works column by
 * column over the training rows, returns a new Float64Array and never produces NaN.
 */

/**
 * Relative tolerance under which a column's spread counts as zero: a column whose standard
 * deviation (or L2 norm) is at most this times its largest absolute value is treated as constant
 * (or zero). This keeps rounding noise, e.g. the mean of [0.1, 0.1, 0.1] not being exactly 0.1,
 * from being blown up to ±1 by a division.
 */
export const RELATIVE_ZERO = 1e-12;

function maxAbsOfColumn(v: Float64Array, nTrain: number, nTest: number, j: number): number {
  let m = 0;
  for (let i = 0; i < nTrain; i++) m = Math.max(m, Math.abs(v[i * nTest + j] as number));
  return m;
}

/**
 * The power of two nearest below the largest |value| of column j (1 for an all-zero column):
 * dividing by it is exact, and brings the column's largest magnitude into [1, 2).
 */
export function columnScale(v: Float64Array, nTrain: number, nTest: number, j: number): number {
  const m = maxAbsOfColumn(v, nTrain, nTest, j);
  if (m === 0) return 1;
  const e = Math.floor(Math.log2(m));
  // Two factors: 2^e alone is 0 below 2^-1074 and the column may hold subnormals.
  return e < -1000 ? 2 ** -1000 * 2 ** (e + 1000) : 2 ** e;
}

/**
 * Mean and population standard deviation (divide by nTrain) of column j. Computed on the column
 * divided by a power of two (exact), so that sums and squares neither overflow nor underflow
 * anywhere in the float64 range; the result is bit-identical to the direct formula where that
 * one is finite and free of underflow.
 */
export function columnMeanStd(v: Float64Array, nTrain: number, nTest: number, j: number): { mean: number; std: number } {
  if (nTrain === 0) return { mean: 0, std: 0 };
  const p = columnScale(v, nTrain, nTest, j);
  let s = 0;
  for (let i = 0; i < nTrain; i++) s += (v[i * nTest + j] as number) / p;
  const mean = s / nTrain;
  let ss = 0;
  for (let i = 0; i < nTrain; i++) {
    const d = (v[i * nTest + j] as number) / p - mean;
    ss += d * d;
  }
  return { mean: mean * p, std: Math.sqrt(ss / nTrain) * p };
}

/**
 * Z-scores every column: (x − mean) / std over the training rows (population std).
 * A column whose std is zero (relative to its magnitude, see {@link RELATIVE_ZERO}) is only
 * centred, which for a constant column gives zeros.
 */
export function zscoreColumns(v: Float64Array, nTrain: number, nTest: number): Float64Array {
  const out = new Float64Array(v.length);
  for (let j = 0; j < nTest; j++) {
    const { mean, std } = columnMeanStd(v, nTrain, nTest, j);
    const constant = std <= RELATIVE_ZERO * maxAbsOfColumn(v, nTrain, nTest, j);
    for (let i = 0; i < nTrain; i++) {
      const k = i * nTest + j;
      out[k] = constant ? 0 : ((v[k] as number) - mean) / std;
    }
  }
  return out;
}

/** Scales every column to unit L2 norm over the training rows; an all-zero column stays zero. */
export function unitNormColumns(v: Float64Array, nTrain: number, nTest: number): Float64Array {
  const out = new Float64Array(v.length);
  for (let j = 0; j < nTest; j++) {
    // Scale by the largest magnitude first so the sum of squares cannot overflow or underflow.
    const m = maxAbsOfColumn(v, nTrain, nTest, j);
    if (m === 0) continue;
    let ss = 0;
    for (let i = 0; i < nTrain; i++) {
      const x = (v[i * nTest + j] as number) / m;
      ss += x * x;
    }
    const norm = m * Math.sqrt(ss);
    for (let i = 0; i < nTrain; i++) out[i * nTest + j] = (v[i * nTest + j] as number) / norm;
  }
  return out;
}

/**
 * Replaces every column by its mid-ranks scaled to [0, 1]: the lowest score gets 0, the highest 1,
 * ties share the mean of their ranks, i.e. (midRank − 1) / (nTrain − 1) with 1-based ranks.
 * With a single training row every value is 0.5.
 */
export function rankColumns(v: Float64Array, nTrain: number, nTest: number): Float64Array {
  const out = new Float64Array(v.length);
  const idx = new Array<number>(nTrain);
  for (let j = 0; j < nTest; j++) {
    if (nTrain === 1) {
      out[j] = 0.5;
      continue;
    }
    for (let i = 0; i < nTrain; i++) idx[i] = i;
    idx.sort((a, b) => (v[a * nTest + j] as number) - (v[b * nTest + j] as number) || a - b);
    let start = 0;
    while (start < nTrain) {
      const s = v[(idx[start] as number) * nTest + j] as number;
      let end = start + 1;
      while (end < nTrain && (v[(idx[end] as number) * nTest + j] as number) === s) end++;
      const scaled = (start + end - 1) / 2 / (nTrain - 1); // mean of 0-based ranks start..end-1
      for (let t = start; t < end; t++) out[(idx[t] as number) * nTest + j] = scaled;
      start = end;
    }
  }
  return out;
}
