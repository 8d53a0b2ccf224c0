/** Comparisons of score matrices used by the checks. */
import type { ScoreMatrix } from '@dda/core';

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, k) => x === b[k]);

/**
 * What is wrong with the shape of `m` for the given ids (train ids, test ids, values length and
 * type, finiteness, provenance), or undefined when nothing is.
 */
export function shapeProblem(m: ScoreMatrix | undefined, trainIds: readonly string[], testIds: readonly string[]): string | undefined {
  if (!m || typeof m !== 'object') return `returned ${String(m)}, not a ScoreMatrix`;
  if (!Array.isArray(m.trainIds) || !sameList(m.trainIds, trainIds)) {
    return `its trainIds [${String(m.trainIds?.slice?.(0, 4))}…] are not the ${trainIds.length} training ids of the input in their order [${trainIds.slice(0, 4).join(', ')}…]`;
  }
  if (!Array.isArray(m.testIds) || !sameList(m.testIds, testIds)) return `its testIds [${String(m.testIds)}] are not the test ids of the input in their order [${testIds.join(', ')}]`;
  if (!(m.values instanceof Float64Array)) return 'its values are not a Float64Array';
  if (m.values.length !== trainIds.length * testIds.length) return `it has ${m.values.length} values, expected ${trainIds.length} × ${testIds.length} = ${trainIds.length * testIds.length}`;
  if (!m.provenance || typeof m.provenance.method !== 'string' || m.provenance.method.length === 0) return 'it has no provenance.method';
  return undefined;
}

/** The first non-finite value as text, or undefined when all are finite. */
export function nonFinite(m: ScoreMatrix): string | undefined {
  const n = m.testIds.length;
  for (let k = 0; k < m.values.length; k++) {
    const x = m.values[k] as number;
    if (!Number.isFinite(x)) return `${x} for train '${m.trainIds[Math.floor(k / n)]}' × test '${m.testIds[k % n]}'`;
  }
  return undefined;
}

/** Largest |value| (0 for an empty matrix). */
export function maxAbs(m: ScoreMatrix): number {
  let a = 0;
  for (const x of m.values) a = Math.max(a, Math.abs(x));
  return a;
}

/** Value of (train id, test id), or undefined when either id is missing. */
export function valueAt(m: ScoreMatrix, trainId: string, testId: string): number | undefined {
  const i = m.trainIds.indexOf(trainId);
  const j = m.testIds.indexOf(testId);
  return i < 0 || j < 0 ? undefined : m.values[i * m.testIds.length + j];
}

/**
 * The largest disagreement between two matrices over the same ids (in any order), as text when it
 * exceeds `tolerance` × max |reference|, else undefined.
 */
export function differenceByIds(reference: ScoreMatrix, other: ScoreMatrix, tolerance: number): string | undefined {
  const bound = tolerance * maxAbs(reference);
  let worst: { d: number; text: string } | undefined;
  for (const t of reference.trainIds) {
    for (const e of reference.testIds) {
      const a = valueAt(reference, t, e) as number;
      const b = valueAt(other, t, e);
      if (b === undefined) return `train '${t}' × test '${e}' is missing`;
      const d = Math.abs(a - b);
      if (d > bound && (!worst || d > worst.d)) worst = { d, text: `train '${t}' × test '${e}': ${a} before, ${b} after` };
    }
  }
  return worst && `${worst.text} (difference ${worst.d.toExponential(2)} > ${tolerance} × max |score| = ${bound.toExponential(2)})`;
}

/** Whether two matrices hold bit-identical values in the same layout. */
export function identical(a: ScoreMatrix, b: ScoreMatrix): boolean {
  return sameList(a.trainIds, b.trainIds) && sameList(a.testIds, b.testIds) && a.values.length === b.values.length && a.values.every((x, k) => Object.is(x, b.values[k]));
}

/**
 * Whether `out` orders the training rows of every test column as `plain` does (a strictly
 * increasing per-column transform: equal stays equal, larger stays larger); text of the first
 * violation, or undefined.
 */
export function orderProblem(plain: ScoreMatrix, out: ScoreMatrix): string | undefined {
  const n = plain.testIds.length;
  const rows = plain.trainIds.length;
  for (let j = 0; j < n; j++) {
    for (let a = 0; a < rows; a++) {
      for (let b = a + 1; b < rows; b++) {
        const p = Math.sign((plain.values[a * n + j] as number) - (plain.values[b * n + j] as number));
        const q = Math.sign((out.values[a * n + j] as number) - (out.values[b * n + j] as number));
        if (p !== q) {
          return `in test column '${plain.testIds[j]}', train '${plain.trainIds[a]}' vs '${plain.trainIds[b]}' compare ${p > 0 ? '>' : p < 0 ? '<' : '='} in the plain scores but ${q > 0 ? '>' : q < 0 ? '<' : '='} in the output`;
        }
      }
    }
  }
  return undefined;
}
