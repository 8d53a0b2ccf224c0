/**
 * Frozen base weights kept narrow: a BF16 or F16 checkpoint's tensors held as their stored 16-bit
 * patterns (half the bytes of float32, never widened) for an engine that decodes them itself,
 * exactly (the engine contract's {@link DecoderEngine.openNarrow}; onnxruntime decodes them inside
 * its graphs). Their float32 values are those {@link widenToFloat32} gives the stored bytes, so an
 * engine fed them computes what it computes on the widened weights, bit for bit.
 */
import { DdaError } from '@dda/core';
import type { DecoderEngine } from './engine.js';
import { widenToFloat32 } from './safetensors.js';
import { assertFiniteTensors, type NamedTensor, type TensorMap } from './weights.js';

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

/** A frozen base tensor: float32 values, or narrow ones an engine decodes itself. */
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

/**
 * A base tensor as float32 ({@link NamedTensor}): a narrow one widened exactly (bf16: bits << 16;
 * f16: the half value times `scale`, a power of two, exact), a float32 one returned as it is.
 * The result of a narrow tensor is a new array of `tensorElements(t)` float32 values.
 */
export function widenBaseTensor(t: BaseTensor): NamedTensor {
  if (!isNarrow(t)) return { shape: [...t.shape], data: t.data };
  const u8 = new Uint8Array(t.bits.buffer, t.bits.byteOffset, t.bits.byteLength);
  const data = widenToFloat32(u8, t.format === 'bf16' ? 'BF16' : 'F16');
  const scale = t.scale ?? 1;
  if (scale !== 1) for (let i = 0; i < data.length; i++) data[i] = (data[i] as number) * scale;
  return { shape: [...t.shape], data };
}

/** Every tensor of a base map as float32 ({@link widenBaseTensor}), in the map's order. */
export function widenBaseWeights(m: BaseWeightMap): TensorMap {
  return new Map([...m].map(([name, t]) => [name, widenBaseTensor(t)]));
}

/**
 * Throws for a non-finite base tensor value (NaN or ±Infinity: a bf16 or f16 exponent of all ones),
 * as {@link assertFiniteTensors} does for float32 tensors (which it checks here too).
 *
 * @throws DdaError naming the first tensor and flat index holding NaN or ±Infinity, and `source`.
 */
export function assertFiniteBaseTensors(m: BaseWeightMap, source: string): void {
  for (const [name, t] of m) {
    if (!isNarrow(t)) {
      assertFiniteTensors(new Map([[name, { shape: [...t.shape], data: t.data }]]), source);
      continue;
    }
    const [shift, mask] = t.format === 'bf16' ? [7, 0xff] : [10, 0x1f];
    for (let k = 0; k < t.bits.length; k++) {
      if ((((t.bits[k] as number) >> shift) & mask) === mask) {
        const x = widenBaseTensor({ shape: [1], format: t.format, bits: t.bits.subarray(k, k + 1), ...(t.scale !== undefined ? { scale: t.scale } : {}) }).data[0];
        throw new DdaError(`${source}: tensor '${name}' holds ${x} at flat index ${k}`, 'the checkpoint is corrupt or its training diverged; use an earlier checkpoint or retrain with a lower learning rate');
      }
    }
  }
}
