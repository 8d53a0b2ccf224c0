/**
 * Seeded random projections of per-example gradient rows, one matrix per differentiated tensor
 * (each LoRA matrix; every weight of a full checkpoint): the compression of the gradient index
 * (gradient-index.ts) and of projected attribution runs (`RunOptions.projection`). Sources: TRAK's
 * (Park et al. 2023) and LoGra's (Choe et al. 2024) random projections of per-example gradients;
 * Johnson–Lindenstrauss for why inner products survive: for a projection P with E[PᵀP] = I,
 * ⟨Pg, Ph⟩ is an unbiased estimate of ⟨g, h⟩ whose standard deviation for Rademacher entries is at
 * most √(2/k)·‖g‖‖h‖ per tensor.
 */
import { createHash } from 'node:crypto';
import { DdaError, FLOAT64_LOOP_HOW, SeededRandom, kernelProducts } from '@dda/core';
import type { GradientLayout } from './engine.js';

/** Default projected dimension k (TRAK keeps 2,048, LoGra 4,096 per layer; 16 KB per sample in float16). */
export const DEFAULT_INDEX_DIM = 8192;

/** Entries of the projection matrices: ±1 (Rademacher) or N(0, 1), scaled by 1/√k_m. */
export type ProjectionKind = 'rademacher' | 'gaussian';
export const PROJECTION_KINDS: readonly ProjectionKind[] = ['rademacher', 'gaussian'];

/** A projection: its kind, seed and total dimension k. */
export interface ProjectionSpec {
  readonly kind: ProjectionKind;
  readonly seed: number;
  readonly dim: number;
}

/**
 * The fields (kind, seed, dim) in which projection `a` differs from `b`, each described by
 * `say(field, a's value, b's value)`; a field `a` leaves out is not compared.
 */
export function projectionDifferences(a: Partial<ProjectionSpec>, b: ProjectionSpec, say: (field: keyof ProjectionSpec, a: unknown, b: unknown) => string): string[] {
  return (['kind', 'seed', 'dim'] as const).filter((f) => a[f] !== undefined && a[f] !== b[f]).map((f) => say(f, a[f], b[f]));
}

/** One differentiated tensor's share of the projection. */
export interface ModuleProjection {
  /** Tensor name (PEFT's, e.g. `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`). */
  readonly name: string;
  /** Its number of entries d_m in a gradient row. */
  readonly size: number;
  /** Its projected dimensions k_m. */
  readonly dims: number;
  /** Where its k_m dimensions start in a projected row. */
  readonly offset: number;
}

/**
 * How the k dimensions are split across the tensors: proportionally to each tensor's size d_m
 * (k·d_m/d rounded by largest remainder, ties to the earlier tensor; a tensor left with none takes
 * one from the largest share). Why proportional: the variance of ⟨P_m g_m, P_m h_m⟩ is about
 * ‖g_m‖²‖h_m‖²/k_m, and Σ_m a_m/k_m under Σ k_m = k is smallest at k_m ∝ √a_m = ‖g_m‖‖h_m‖,
 * which is ∝ d_m when every entry carries the same energy on average; an equal split would give
 * a 64-entry tensor as many dimensions as a 1M-entry one.
 *
 * @throws DdaError when k is smaller than the number of tensors, or the layout is empty or malformed.
 */
export function planProjection(layout: GradientLayout, k: number): ModuleProjection[] {
  const n = layout.names.length;
  if (n === 0 || n !== layout.sizes.length) throw new DdaError(`projection: a gradient layout of ${n} tensors and ${layout.sizes.length} sizes`);
  if (!Number.isInteger(k) || k < n) throw new DdaError(`projection: k = ${k} dimensions for ${n} tensors`, `give --dim of at least ${n} (one dimension per tensor), e.g. ${DEFAULT_INDEX_DIM}`);
  const total = layout.sizes.reduce((a, b) => a + b, 0);
  const exact = layout.sizes.map((d) => (k * d) / total);
  const dims = exact.map((x) => Math.floor(x));
  let left = k - dims.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of order) {
    if (left === 0) break;
    dims[i] = (dims[i] as number) + 1;
    left--;
  }
  for (let i = 0; i < n; i++) {
    if (dims[i] !== 0) continue;
    const largest = dims.indexOf(Math.max(...dims));
    dims[largest] = (dims[largest] as number) - 1;
    dims[i] = 1;
  }
  let offset = 0;
  return layout.names.map((name, i) => {
    const m = { name, size: layout.sizes[i] as number, dims: dims[i] as number, offset };
    offset += m.dims;
    return m;
  });
}

/** The seed of one tensor's matrix: the first 4 bytes (big-endian) of SHA-256(`<seed>:<tensor name>`). */
export function moduleSeed(seed: number, name: string): number {
  return createHash('sha256').update(`${seed}:${name}`).digest().readUInt32BE(0);
}

/**
 * The seeded random projection of gradient rows, one matrix per tensor: y_m = P_m g_m with P_m
 * [k_m × d_m], entries ±1/√k_m (Rademacher) or N(0, 1/k_m) (Gaussian), drawn row by row (row i,
 * then its d_m columns) from SeededRandom({@link moduleSeed}) (Rademacher: next() < 0.5 → +1);
 * E[P_mᵀP_m] = I, so E⟨Pg, Ph⟩ = ⟨g, h⟩. Each matrix is generated on first use and kept
 * (Σ_m k_m·d_m bytes for Rademacher signs, 4× for Gaussian), so memory is the projection's, not
 * the rows'. Two ways to apply it: {@link project}, one row in float64 (exact up to float64
 * rounding; a row's projection depends on that row only), and {@link projectRows}, a batch of rows
 * as one float32 GEMM per tensor on a dot-product kernel (onnxruntime's, about 100× faster at real
 * widths; float32 accumulation, relative error about 1e-6 of the row's norm against the float64
 * path, far below the float16 rounding of an index row), falling back to {@link project}.
 */
export class GradientProjector {
  readonly modules: readonly ModuleProjection[];
  private readonly matrices = new Map<number, Int8Array | Float32Array>();

  constructor(readonly spec: ProjectionSpec, readonly layout: GradientLayout) {
    if (!PROJECTION_KINDS.includes(spec.kind)) throw new DdaError(`projection kind '${String(spec.kind)}' is not known`, `use one of: ${PROJECTION_KINDS.join(', ')}`);
    if (!Number.isInteger(spec.seed)) throw new DdaError(`projection seed must be an integer, got ${spec.seed}`);
    this.modules = planProjection(layout, spec.dim);
  }

  /** Entries of one projected row (k). */
  get dim(): number {
    return this.spec.dim;
  }

  /** Entries of one gradient row (d = Σ d_m). */
  get inputDim(): number {
    return this.layout.sizes.reduce((a, b) => a + b, 0);
  }

  /** P_m, row-major [k_m × d_m], unscaled (±1 or N(0, 1)). */
  matrix(m: number): Int8Array | Float32Array {
    let p = this.matrices.get(m);
    if (p) return p;
    const mod = this.modules[m] as ModuleProjection;
    const rng = new SeededRandom(moduleSeed(this.spec.seed, mod.name));
    const len = mod.dims * mod.size;
    if (this.spec.kind === 'rademacher') {
      const s = new Int8Array(len);
      for (let i = 0; i < len; i++) s[i] = rng.next() < 0.5 ? 1 : -1;
      p = s;
    } else {
      const g = new Float32Array(len);
      for (let i = 0; i < len; i++) g[i] = rng.normal();
      p = g;
    }
    this.matrices.set(m, p);
    return p;
  }

  /**
   * The projections of a batch of gradient rows (each of length d, in the layout's order): per
   * tensor m, the rows' d_m entries times P_mᵀ as one product on the dot-product kernel `engine`
   * names (@dda/core's `kernelProducts`: `auto` by default, `js` for the float64 loop of
   * {@link project}, or a kernel id), then scaled by 1/√k_m. The same rows in the same batch give
   * the same bits (a kernel is deterministic for one shape); across engines, results differ by
   * float32 accumulation (see the class doc). Units: those of the gradient.
   *
   * @returns One Float64Array of length k per row, and how they were computed.
   * @throws DdaError when a row's length is not d, or a kernel asked for by id cannot run.
   */
  async projectRows(rows: readonly Float32Array[], o: { readonly engine?: string; readonly log?: (line: string) => void } = {}): Promise<{ readonly rows: Float64Array[]; readonly how: string }> {
    for (const r of rows) if (r.length !== this.inputDim) throw new DdaError(`projection: a gradient row of ${r.length} entries, expected ${this.inputDim}`);
    const out = rows.map(() => new Float64Array(this.dim));
    if (rows.length === 0) return { rows: out, how: FLOAT64_LOOP_HOW };
    let how: string | undefined;
    let off = 0;
    for (let m = 0; m < this.modules.length; m++) {
      const mod = this.modules[m] as ModuleProjection;
      const p = this.matrix(m);
      const pm = p instanceof Float32Array ? p : new Float32Array(p); // the typed-array copy, not the iterator of Float32Array.from
      const views = rows.map((r) => r.subarray(off, off + mod.size));
      const k = await kernelProducts(views, mod.size, pm, mod.dims, { engine: o.engine ?? 'auto', who: 'projection', ...(o.log ? { log: o.log } : {}) });
      if (!k) {
        // No kernel (js, or auto without one): the float64 loop for every row and tensor.
        rows.forEach((r, i) => this.project(r, out[i]));
        return { rows: out, how: FLOAT64_LOOP_HOW };
      }
      how = k.how;
      const scale = 1 / Math.sqrt(mod.dims);
      rows.forEach((_, i) => {
        const o2 = out[i] as Float64Array;
        for (let c = 0; c < mod.dims; c++) o2[mod.offset + c] = (k.values[i * mod.dims + c] as number) * scale;
      });
      off += mod.size;
    }
    return { rows: out, how: how ?? FLOAT64_LOOP_HOW };
  }

  /**
   * The projection of one gradient row (length d, in the layout's order) into `out` (length k),
   * accumulated in float64. Units: those of the gradient (nats/token per parameter unit).
   *
   * @throws DdaError when the row's length is not d.
   */
  project(row: Float32Array, out: Float64Array = new Float64Array(this.dim)): Float64Array {
    if (row.length !== this.inputDim) throw new DdaError(`projection: a gradient row of ${row.length} entries, expected ${this.inputDim}`);
    let off = 0;
    this.modules.forEach((mod, m) => {
      const p = this.matrix(m);
      const scale = 1 / Math.sqrt(mod.dims);
      for (let i = 0; i < mod.dims; i++) {
        let acc = 0;
        const base = i * mod.size;
        for (let j = 0; j < mod.size; j++) acc += (p[base + j] as number) * (row[off + j] as number);
        out[mod.offset + i] = acc * scale;
      }
      off += mod.size;
    });
    return out;
  }
}
