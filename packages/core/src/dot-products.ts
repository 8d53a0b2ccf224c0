/**
 * Row × row inner products on a dot-product kernel of the `dotKernels` registry ({@link DotKernel}:
 * onnxruntime's float32 GEMM when @dda/backend-onnxruntime is loaded, a plugin's kernel the same
 * way), chosen by an `engine` option every caller reads the same way: `auto` (the registered
 * kernels by priority; `null` when none starts or one fails while computing, so that the caller
 * runs its own float64 loop, the reason logged once per caller), `js` (`null` at once: the
 * caller's float64 loop) or a kernel's id (that kernel, required: a failure is an error). Used by
 * the gradient scorers' train × query products and by the gradient projection (rows × P_mᵀ).
 */
import { DdaError } from './errors.js';
import type { DotKernel } from './plugins.js';
import { dotKernels } from './registries.js';

/** The provenance phrase of products computed by a caller's own float64 loop (where {@link kernelProducts} gives null). */
export const FLOAT64_LOOP_HOW = 'float64 JavaScript loop';

/** Products computed on a kernel: row-major values and the kernel's provenance. */
export interface KernelProducts {
  /** `values[i·nTest + j] = rows[i] · test[j]`, row-major [rows × nTest], float32 accumulation. */
  readonly values: Float64Array;
  /** The kernel's backend, e.g. `onnxruntime-cpu`. */
  readonly engine: string;
  /** One phrase for provenance, e.g. "float32 GEMM on onnxruntime-cpu". */
  readonly how: string;
}

/** Options of {@link kernelProducts}. */
export interface KernelProductOptions {
  /** `auto` (default), `js`, or a registered kernel's id. */
  readonly engine?: string;
  /** At most this many rows per kernel call. */
  readonly blockRows?: number;
  /** Where the fallback reason goes under `auto` (default console.warn), once per `who` per process. */
  readonly log?: (line: string) => void;
  /** Who asks, for the fallback line and errors (e.g. `grad-dot`, `projection`). */
  readonly who?: string;
}

const fallbackLogged = new Set<string>();

/** The kernel for `engine` (`auto`: the first registered kernel that starts, by priority; its failures' reasons in one line). */
async function kernelFor(engine: string): Promise<DotKernel> {
  if (engine !== 'auto') return await dotKernels.create(engine, {});
  if (dotKernels.ids().length === 0) throw new Error('no dot-product kernel is registered (an engine plugin such as @dda/backend-onnxruntime registers one when imported)');
  try {
    return (await dotKernels.resolve({})).value;
  } catch {
    throw new Error(dotKernels.lastFailures.map((f) => `${f.id}: ${f.reason}`).join('; '));
  }
}

/** A DdaError for an engine id that is neither `auto`, `js` nor a registered kernel's. */
function checkEngineId(engine: string, who: string): void {
  if (engine !== 'auto' && engine !== 'js' && !dotKernels.has(engine)) {
    throw new DdaError(`${who}: unknown dot-product engine '${engine}'`, `choose auto, js${dotKernels.ids().map((id) => `, ${id}`).join('')} (a plugin's kernel needs its plugin loaded)`);
  }
}

/**
 * Where a kernel cannot give the products (`reason`): under a kernel asked for by id a DdaError
 * ("the <engine> dot-product engine <cannot>: <reason>"), under `auto` null for the caller's
 * float64 loop, with "<none> (<reason>)" logged once per `key` per process.
 */
function fallBack(engine: string, who: string, key: string, cannot: string, none: string, reason: string, log: ((line: string) => void) | undefined): null {
  if (engine !== 'auto') throw new DdaError(`${who}: the ${engine} dot-product engine ${cannot}: ${reason}`, "install onnxruntime-node (see the README), or pass engine 'js' or 'auto'");
  if (!fallbackLogged.has(key)) {
    fallbackLogged.add(key);
    (log ?? ((l: string) => console.warn(l)))(`${who}: ${none} (${reason}); falling back to the float64 JavaScript loop`);
  }
  return null;
}

/**
 * `rows[i] · test[j·dim .. (j+1)·dim)` for every i, j on the kernel `o.engine` names, or `null`
 * where the caller's own float64 loop must compute them (`js`; `auto` with no kernel that starts
 * or one that fails while computing; empty inputs).
 *
 * @param rows - Rows of length `dim` (views of larger arrays are fine).
 * @param test - The other side, concatenated: [nTest × dim].
 * @throws DdaError for an unknown engine id, or a kernel asked for by id that cannot start or fails.
 */
export async function kernelProducts(rows: readonly Float32Array[], dim: number, test: Float32Array, nTest: number, o: KernelProductOptions = {}): Promise<KernelProducts | null> {
  const engine = o.engine ?? 'auto';
  const who = o.who ?? 'dot products';
  if (engine === 'js' || rows.length === 0 || nTest === 0 || dim === 0) return null;
  checkEngineId(engine, who);
  try {
    const kernel = await kernelFor(engine);
    const values = await kernel.dot(rows, dim, test, nTest, o.blockRows !== undefined ? { blockRows: o.blockRows } : {});
    return { values, engine: kernel.backend, how: kernel.how };
  } catch (e) {
    return fallBack(engine, who, who, 'cannot run', 'no dot-product kernel started', e instanceof Error ? e.message : String(e), o.log);
  }
}

/** Bytes of float64 rows (both sides together) per {@link DotKernel.dot64} call of {@link kernelProducts64}: longer rows are multiplied in chunks of their coordinates. */
export const FLOAT64_CHUNK_BYTES = 64 * 1024 * 1024;

/** The provenance phrase of products a kernel computed in float64 ({@link kernelProducts64}). */
function float64KernelHow(backend: string): string {
  return `float64 GEMM on ${backend}`;
}

/**
 * `a[i] · b[j]` for every i, j with float64 accumulation, on the float64 GEMM ({@link DotKernel.dot64})
 * of the kernel `o.engine` names, or `null` where the caller's own float64 loop must compute them
 * (`js`; `auto` with no kernel that starts, none with `dot64`, or one that fails while computing;
 * empty inputs). The rows are widened to float64 (exact for float32 rows) a chunk of coordinates at
 * a time, at most {@link FLOAT64_CHUNK_BYTES} per call, and the chunks' products summed in float64:
 * the values differ from an in-order float64 loop only by the order of the sums.
 *
 * @param a - Rows of length `dim` (float32 or float64; views are fine). @param b - The other side.
 * @param o.chunkBytes - Bytes of both sides' widened rows per kernel call (default {@link FLOAT64_CHUNK_BYTES}).
 * @returns `values[i·b.length + j]`, row-major [a.length × b.length], with the kernel's provenance.
 * @throws DdaError for an unknown engine id, or a kernel asked for by id that cannot start, has no
 *   float64 products, or fails.
 */
export async function kernelProducts64(a: readonly ArrayLike<number>[], b: readonly ArrayLike<number>[], dim: number, o: Omit<KernelProductOptions, 'blockRows'> & { readonly chunkBytes?: number } = {}): Promise<KernelProducts | null> {
  const engine = o.engine ?? 'auto';
  const who = o.who ?? 'float64 products';
  if (engine === 'js' || a.length === 0 || b.length === 0 || dim === 0) return null;
  checkEngineId(engine, who);
  const fallback = (reason: string): null => fallBack(engine, who, `${who} (float64)`, 'cannot run float64 products', 'no float64 dot-product kernel', reason, o.log);
  let kernel: DotKernel;
  try {
    kernel = await kernelFor(engine);
  } catch (e) {
    return fallback(e instanceof Error ? e.message : String(e));
  }
  const dot64 = kernel.dot64?.bind(kernel);
  if (dot64 === undefined) return fallback(`kernel ${kernel.id} has no float64 products`);
  const nA = a.length;
  const nB = b.length;
  const chunk = Math.max(1, Math.min(dim, Math.floor((o.chunkBytes ?? FLOAT64_CHUNK_BYTES) / (8 * (nA + nB)))));
  // Float64 rows laid out one after the other in one buffer go to the kernel as they are.
  const whole = (rows: readonly ArrayLike<number>[]): Float64Array | null => {
    const first = rows[0];
    if (chunk !== dim || !(first instanceof Float64Array)) return null;
    for (const [k, r] of rows.entries()) {
      if (!(r instanceof Float64Array) || r.buffer !== first.buffer || r.byteOffset !== first.byteOffset + k * dim * 8 || r.length !== dim) return null;
    }
    return new Float64Array(first.buffer, first.byteOffset, rows.length * dim);
  };
  const wa = whole(a);
  const wb = whole(b);
  if (wa && wb) {
    try {
      return { values: await dot64(wa, nA, wb, nB, dim), engine: kernel.backend, how: float64KernelHow(kernel.backend) };
    } catch (e) {
      return fallback(e instanceof Error ? e.message : String(e));
    }
  }
  const values = new Float64Array(nA * nB);
  const fa = wa ?? new Float64Array(nA * chunk);
  const fb = wb ?? new Float64Array(nB * chunk);
  try {
    for (let d0 = 0; d0 < dim; d0 += chunk) {
      const w = Math.min(chunk, dim - d0);
      const pa = w === chunk ? fa : fa.subarray(0, nA * w);
      const pb = w === chunk ? fb : fb.subarray(0, nB * w);
      const fill = (rows: readonly ArrayLike<number>[], into: Float64Array): void => {
        rows.forEach((r, i) => {
          const at = i * w;
          if (r instanceof Float32Array || r instanceof Float64Array) into.set(w === r.length ? r : r.subarray(d0, d0 + w), at);
          else for (let d = 0; d < w; d++) into[at + d] = r[d0 + d] as number;
        });
      };
      if (!wa) fill(a, pa);
      if (!wb) fill(b, pb);
      const part = await dot64(pa, nA, pb, nB, w);
      if (d0 === 0) values.set(part);
      else for (let k = 0; k < values.length; k++) values[k] = (values[k] as number) + (part[k] as number);
    }
  } catch (e) {
    return fallback(e instanceof Error ? e.message : String(e));
  }
  return { values, engine: kernel.backend, how: float64KernelHow(kernel.backend) };
}
