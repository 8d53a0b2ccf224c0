/**
 * Frozen base weights kept narrow: a BF16 or F16 checkpoint's tensors fed to onnxruntime as their
 * stored 16-bit patterns (half the bytes of float32, never widened in JavaScript) and decoded to
 * float32 inside the graph, exactly, right where an operator reads them ({@link GraphBuilder.decode}).
 *
 * onnxruntime-node 1.30 refuses BFLOAT16 tensors ("Unsupported data type: 16") but takes UINT16 and
 * FLOAT16 ones. A BF16 weight is fed as UINT16 and decoded by Cast(uint16 → int32) then Gather from
 * {@link bf16Table}, the float32 value of each of the 65,536 bit patterns (bits << 16): exact for
 * every pattern, NaN payloads, infinities and subnormals included. An F16 weight is fed as FLOAT16
 * and decoded by Cast(float16 → float32), exact (IEEE half is a subset of single). The decoded
 * values are therefore the float32 numbers that @dda/model's widening (`readFloat32`) gives, and
 * losses and gradients are bit-identical to feeding the widened weights.
 */
import { DdaError } from '@dda/core';

/** How a narrow weight stores its values: `bf16` (bfloat16 bits, fed as UINT16) or `f16` (IEEE half, fed as FLOAT16). */
export type NarrowFormat = 'bf16' | 'f16';

/** A float32 base tensor in Hugging Face layout (linear weights [out, in]). */
export interface Float32Weight {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/**
 * A base tensor kept as 16-bit patterns (little-endian, row-major, Hugging Face layout):
 * `bits.length` = product of `shape`. Its float32 values are those of the patterns in `format`,
 * times `scale` (a power of two, default 1) for `f16`.
 */
export interface NarrowWeight {
  readonly shape: readonly number[];
  readonly format: NarrowFormat;
  readonly bits: Uint16Array;
  /** For `f16`: the power of two the half values are multiplied by (see {@link bf16AsScaledF16}); 1 when absent. */
  readonly scale?: number;
}

/** What a graph needs to know of a narrow weight: its format and (f16) scale. */
export interface NarrowSpec {
  readonly format: NarrowFormat;
  readonly scale: number;
}

/** A frozen base tensor: float32 values, or narrow ones decoded inside the graph. */
export type BaseTensor = Float32Weight | NarrowWeight;
/** Base tensors by Hugging Face name. */
export type BaseWeightMap = ReadonlyMap<string, BaseTensor>;

/** Whether a base tensor is narrow. */
export function isNarrow(t: BaseTensor): t is NarrowWeight {
  return 'bits' in t;
}

/** Number of elements of a base tensor. */
export function tensorElements(t: BaseTensor): number {
  return isNarrow(t) ? t.bits.length : t.data.length;
}

/** Bytes a base tensor holds in memory (2 per narrow element, 4 per float32 one). */
export function tensorBytes(t: BaseTensor): number {
  return isNarrow(t) ? t.bits.byteLength : t.data.byteLength;
}

let table: Float32Array | undefined;

/**
 * The float32 value of every bfloat16 bit pattern: entry b is the float32 whose bits are b << 16
 * (built through a Uint32Array view, so NaN payloads are kept bit for bit). 65,536 entries, 256 KiB.
 */
export function bf16Table(): Float32Array {
  if (table === undefined) {
    const u = new Uint32Array(65536);
    for (let b = 0; b < 65536; b++) u[b] = b << 16 >>> 0;
    table = new Float32Array(u.buffer);
  }
  return table;
}

/**
 * The same values as bfloat16 bits `bits` in IEEE half times one power of two 2^k, when every value
 * fits, else null. A bfloat16 value ±1.m·2^e (7 mantissa bits) is a half value times 2^k exactly
 * when −17 ≤ e − k ≤ 15 (half's largest exponent is 15; below −14 its subnormals still hold 8
 * significant bits down to −17); k is chosen from the largest exponent, and null is returned when the
 * smallest non-zero value falls below the window (33 binades), when a value is a bfloat16
 * subnormal, infinite or NaN, or when 2^k is not a normal float32. Zeros of either sign are kept.
 * Then Cast(float16 → float32) and a multiplication by 2^k (exact: the product is the bfloat16
 * value, a float32) decode it inside the graph: about 4 ns an element on the development machine
 * against about 34 for the bfloat16 table's Cast and Gather (onnxruntime's Gather copies element by
 * element), the same 2 bytes an element. Typical weights fit: a normal sample of 65 M values with
 * standard deviation 0.02 spans about 25 binades.
 */
export function bf16AsScaledF16(bits: Uint16Array): { bits: Uint16Array; scale: number } | null {
  let maxE = -Infinity;
  let minE = Infinity;
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i] as number;
    const e = (b >> 7) & 0xff;
    if (e === 0xff) return null; // infinite or NaN
    if (e === 0) {
      if ((b & 0x7f) !== 0) return null; // subnormal
      continue; // ±0
    }
    if (e > maxE) maxE = e;
    if (e < minE) minE = e;
  }
  if (maxE === -Infinity) return { bits: new Uint16Array(bits.length).map((_, i) => (bits[i] as number) & 0x8000), scale: 1 };
  // Unbiased exponents: e − 127; choose k = (maxE − 127) − 15.
  const k = maxE - 127 - 15;
  if (minE - 127 - k < -17 || k < -126 || k > 127) return null;
  const out = new Uint16Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i] as number;
    const sign = b & 0x8000;
    const e = (b >> 7) & 0xff;
    if (e === 0) {
      out[i] = sign;
      continue;
    }
    const m = b & 0x7f;
    const x = e - 127 - k; // in [−17, 15]
    out[i] = x >= -14 ? sign | ((x + 15) << 10) | (m << 3) : sign | ((128 | m) << (x + 17));
  }
  return { bits: out, scale: 2 ** k };
}

/**
 * Prefix of the extra graph inputs through which a narrow weight is decoded more than once:
 * input `<name>@decode<k>` (k = 1, 2, ...) is fed the same tensor as `<name>` (see
 * {@link GraphBuilder.decode}).
 */
export const DECODE_ALIAS = '@decode';

/** The weight an input name feeds: `name` itself, or the weight of which it is a decode alias. */
export function aliasSource(inputName: string): string {
  const k = inputName.lastIndexOf(DECODE_ALIAS);
  return k > 0 && /^\d+$/.test(inputName.slice(k + DECODE_ALIAS.length)) ? inputName.slice(0, k) : inputName;
}

/** A tensor as a safetensors file stores it (what @dda/model's `readRaw` returns). */
export interface StoredTensor {
  readonly dtype: 'F32' | 'F16' | 'BF16';
  readonly shape: readonly number[];
  readonly bytes: Uint8Array;
}

/**
 * A base tensor from its stored bytes without widening: F16 → `f16` bits (a view of `bytes` when
 * 2-byte aligned, else one copy), F32 → float32 values (a view when 4-byte aligned), BF16 → by
 * default the same values as scaled half (`bf16: 'scaled-f16'`, {@link bf16AsScaledF16}: one new
 * 2-byte array, decoded faster) where every value of the tensor fits, else (or with `bf16: 'table'`)
 * the `bf16` bits themselves. Either way the decoded float32 values are the widened ones bit for
 * bit. Little-endian hosts only, as safetensors is little-endian.
 *
 * @throws DdaError if the byte length does not match the shape and dtype.
 */
export function baseTensorFromStored(t: StoredTensor, o: { readonly bf16?: 'table' | 'scaled-f16' } = {}): BaseTensor {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const width = t.dtype === 'F32' ? 4 : 2;
  if (t.bytes.byteLength !== n * width) throw new DdaError(`narrow weights: ${t.bytes.byteLength} bytes for ${t.dtype} [${t.shape.join(', ')}], expected ${n * width}`, 'read the tensor with its own dtype and shape');
  // Typed-array views need their element alignment: an unaligned slice is copied once.
  const bytes = t.bytes.byteOffset % width === 0 ? t.bytes : t.bytes.slice();
  if (t.dtype === 'F32') return { shape: [...t.shape], data: new Float32Array(bytes.buffer, bytes.byteOffset, n) };
  const bits = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  if (t.dtype === 'F16') return { shape: [...t.shape], format: 'f16', bits };
  const half = (o.bf16 ?? 'scaled-f16') === 'scaled-f16' ? bf16AsScaledF16(bits) : null;
  return half ? { shape: [...t.shape], format: 'f16', bits: half.bits, scale: half.scale } : { shape: [...t.shape], format: 'bf16', bits };
}

/**
 * Every base tensor of a model folder in its stored form (see {@link baseTensorFromStored}), read
 * one tensor at a time: e.g. `storedBaseWeights(openModelFolder(dir).weights)` holds a 2.2 GB
 * BF16 TinyLlama-1.1B in 2.2 GB, where widening it would take 4.4 GB.
 */
export function storedBaseWeights(weights: { readonly names: readonly string[]; readRaw(name: string): StoredTensor }, o: { readonly bf16?: 'table' | 'scaled-f16' } = {}): Map<string, BaseTensor> {
  return new Map(weights.names.map((name) => [name, baseTensorFromStored(weights.readRaw(name), o)]));
}
