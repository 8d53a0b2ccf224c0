import { SeededRandom, type GradientMatrix, type ScoringInput } from '@dda/core';

/** A gradient matrix from plain rows, with the given parameter blocks (default: one block). */
export function grads(rows: number[][], prefix: string, sizes?: number[], checkpoint = 'epoch-1'): GradientMatrix {
  const dim = rows[0]?.length ?? sizes?.reduce((a, b) => a + b, 0) ?? 0;
  const parameterSizes = sizes ?? [dim];
  return {
    ids: rows.map((_, i) => `${prefix}${i}`),
    dim,
    rows: rows.map((r) => Float32Array.from(r)),
    parameterNames: parameterSizes.map((_, l) => `layer${l}.lora`),
    parameterSizes,
    checkpoint,
  };
}

/** Random float32-exact rows (values are multiples of 1/64, so float32 storage loses nothing). */
export function randomRows(rng: SeededRandom, n: number, dim: number): number[][] {
  return Array.from({ length: n }, () => Array.from({ length: dim }, () => Math.round(rng.normal() * 64) / 64));
}

export function input(train: GradientMatrix, test: GradientMatrix, checkpoint = 'epoch-1'): ScoringInput {
  return {
    checkpoint,
    train: train.ids.map((id) => ({ id, prompt: 'p', response: 'r' })),
    test: test.ids.map((id) => ({ id, prompt: 'p', response: 'r' })),
    trainGradients: async () => train,
    testGradients: async () => test,
  };
}

/** Solves A x = b by Gaussian elimination with partial pivoting (independent reference). */
export function gaussSolve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[p]![c]!)) p = r;
    [m[c], m[p]] = [m[p]!, m[c]!];
    for (let r = c + 1; r < n; r++) {
      const f = m[r]![c]! / m[c]![c]!;
      for (let k = c; k <= n; k++) m[r]![k]! -= f * m[c]![k]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r]![n]!;
    for (let k = r + 1; k < n; k++) s -= m[r]![k]! * x[k]!;
    x[r] = s / m[r]![r]!;
  }
  return x;
}

/** Naive influence g_iᵀ H⁻¹ h_j with H = (1/n) Σ g gᵀ + λI built explicitly (dim×dim). */
export function naiveInfluence(train: number[][], test: number[][], lambda: number): number[] {
  const n = train.length;
  const d = train[0]!.length;
  const h = Array.from({ length: d }, (_, p) =>
    Array.from({ length: d }, (_, q) => train.reduce((s, g) => s + g[p]! * g[q]!, 0) / n + (p === q ? lambda : 0)),
  );
  const out: number[] = [];
  const xs = test.map((t) => gaussSolve(h, t));
  for (const g of train) for (const x of xs) out.push(g.reduce((s, gp, p) => s + gp * x[p]!, 0));
  return out;
}

/** `g`'s rows split into consecutive blocks of the given sizes. */
export function split(g: GradientMatrix, sizes: readonly number[]): GradientMatrix[] {
  let start = 0;
  return sizes.map((s) => {
    const b = { ...g, ids: g.ids.slice(start, start + s), rows: g.rows.slice(start, start + s) };
    start += s;
    return b;
  });
}

/** Largest |a − b| relative to the largest |a|. */
export function relativeDifference(a: Float64Array, b: Float64Array): number {
  const scale = Math.max(...[...a].map(Math.abs), 1e-300);
  return Math.max(...[...a].map((x, k) => Math.abs(x - (b[k] as number)))) / scale;
}
