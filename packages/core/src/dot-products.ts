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
  if (engine !== 'auto' && !dotKernels.has(engine)) {
    throw new DdaError(`${who}: unknown dot-product engine '${engine}'`, `choose auto, js${dotKernels.ids().map((id) => `, ${id}`).join('')} (a plugin's kernel needs its plugin loaded)`);
  }
  try {
    const kernel = await kernelFor(engine);
    const values = await kernel.dot(rows, dim, test, nTest, o.blockRows !== undefined ? { blockRows: o.blockRows } : {});
    return { values, engine: kernel.backend, how: kernel.how };
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    if (engine !== 'auto') throw new DdaError(`${who}: the ${engine} dot-product engine cannot run: ${reason}`, "install onnxruntime-node (see the README), or pass engine 'js' or 'auto'");
    if (!fallbackLogged.has(who)) {
      fallbackLogged.add(who);
      (o.log ?? ((l: string) => console.warn(l)))(`${who}: no dot-product kernel started (${reason}); falling back to the float64 JavaScript loop`);
    }
    return null;
  }
}
