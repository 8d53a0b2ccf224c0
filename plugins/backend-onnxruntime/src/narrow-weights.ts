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
import type { NarrowFormat } from '@dda/model';

// The narrow tensor types and their reading from safetensors live in @dda/model (the engine contract
// hands them to engines); re-exported here as this plugin's API had them.
export {
  type NarrowFormat, type Float32Weight, type NarrowWeight, type BaseTensor, type BaseWeightMap, isNarrow, tensorElements, tensorBytes,
  bf16AsScaledF16, type StoredTensor, baseTensorFromStored, storedBaseWeights,
} from '@dda/model';

/** What a graph needs to know of a narrow weight: its format and (f16) scale. */
export interface NarrowSpec {
  readonly format: NarrowFormat;
  readonly scale: number;
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
