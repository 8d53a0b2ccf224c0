import { DdaError } from '@dda/core';
import type { TensorMap } from './weights.js';

/**
 * A small reader and writer of the safetensors format (8-byte little-endian header length, a JSON
 * header `{name: {dtype, shape, data_offsets}}`, then the raw little-endian data). Reads F32, F16
 * and BF16 (widened to float32); writes F32, F16 or BF16 (narrowed with round-to-nearest-even).
 * `__metadata__` is kept as string pairs. The lazy reader of files on disk is
 * {@link SafetensorsReader} (safetensors-reader.ts); this module holds the format itself.
 */
export interface SafetensorsFile {
  readonly tensors: TensorMap;
  readonly metadata: Record<string, string>;
}

/** Element types this package reads and writes. */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';
/** Bytes per element of each supported dtype. */
export const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = { F32: 4, F16: 2, BF16: 2 };
/** Other dtypes of the format, named in errors (quantised or integer checkpoints). */
const OTHER_DTYPES = ['F64', 'I64', 'I32', 'I16', 'I8', 'U64', 'U32', 'U16', 'U8', 'BOOL', 'F8_E4M3', 'F8_E5M2'];

export const isSafetensorsDtype = (d: unknown): d is SafetensorsDtype => d === 'F32' || d === 'F16' || d === 'BF16';

/** One tensor of a header: its dtype, shape and [begin, end) byte span in the data section. */
export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

/** A parsed header: the tensors in header order, the metadata, and where the data section starts in the file. */
export interface SafetensorsHeader {
  readonly entries: readonly SafetensorsEntry[];
  readonly metadata: Record<string, string>;
  /** Byte offset of the data section in the file (8 + header length). */
  readonly dataStart: number;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function badFile(fileName: string, what: string): never {
  throw new DdaError(`${fileName}: not a valid safetensors file: ${what}`, 're-export the weights, or check that the download/copy was not truncated');
}

/** The header length stored in the first 8 bytes; throws when the file cannot hold it. */
export function safetensorsHeaderLength(first8: Uint8Array, fileBytes: number, fileName: string): number {
  if (fileBytes < 8 || first8.length < 8) badFile(fileName, `only ${fileBytes} bytes, shorter than the 8-byte header length`);
  const headerLen = Number(new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true));
  if (headerLen < 2 || 8 + headerLen > fileBytes) badFile(fileName, `header length ${headerLen} does not fit in the file's ${fileBytes} bytes`);
  return headerLen;
}

/**
 * Parses and checks a safetensors header (the JSON bytes after the 8-byte length) against a file of
 * `fileBytes` bytes: every tensor has a supported dtype, a valid shape, data_offsets that match
 * its shape and lie inside the data section, and no two tensors overlap. Every malformation
 * throws a DdaError naming `fileName`; a dtype other than F32/F16/BF16 is named with what to do.
 */
export function parseSafetensorsHeader(headerJson: Uint8Array, fileBytes: number, fileName: string): SafetensorsHeader {
  const bad = (what: string): never => badFile(fileName, what);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerJson));
  } catch (e) {
    bad(`header is not JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) bad('header is not a JSON object');
  const dataStart = 8 + headerJson.length;
  const dataLen = fileBytes - dataStart;
  const entries: SafetensorsEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || !Object.values(raw).every((v) => typeof v === 'string')) bad('__metadata__ must map strings to strings');
      metadata = raw as Record<string, string>;
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof info !== 'object' || info === null) bad(`entry '${name}' is not an object`);
    const dtype = info.dtype;
    if (!isSafetensorsDtype(dtype)) {
      if (typeof dtype === 'string' && OTHER_DTYPES.includes(dtype)) {
        throw new DdaError(
          `${fileName}: tensor '${name}' is stored as ${dtype}; this loader reads F32, F16 and BF16 only`,
          dtype.startsWith('I') || dtype.startsWith('U') || dtype.startsWith('F8')
            ? 'a quantised (GPTQ/AWQ/FP8/bitsandbytes) checkpoint cannot be read: use the unquantised model (its F16/BF16/F32 safetensors)'
            : "convert it: in Python, load with transformers and save_pretrained(..., safe_serialization=True) after model.to(torch.float32)",
        );
      }
      bad(`tensor '${name}' has dtype ${JSON.stringify(dtype)}; supported: ${Object.keys(DTYPE_BYTES).join(', ')}`);
    }
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) bad(`tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`);
    const offs = info.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isInteger(d) && d >= 0)) bad(`tensor '${name}' has invalid data_offsets`);
    const [begin, end] = offs as [number, number];
    const n = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end < begin || end - begin !== n * DTYPE_BYTES[dtype as SafetensorsDtype]) {
      bad(`tensor '${name}': data_offsets [${begin}, ${end}] do not match shape [${(shape as number[]).join(', ')}] of ${dtype as string}`);
    }
    if (end > dataLen) bad(`tensor '${name}' ends at byte ${end} of the data section, which has only ${dataLen} bytes (file truncated?)`);
    entries.push({ name, dtype: dtype as SafetensorsDtype, shape: shape as number[], begin, end });
  }
  const spans = [...entries].sort((a, b) => a.begin - b.begin);
  for (let k = 1; k < spans.length; k++) {
    const prev = spans[k - 1] as SafetensorsEntry;
    const cur = spans[k] as SafetensorsEntry;
    if (cur.begin < prev.end) bad(`tensors '${prev.name}' and '${cur.name}' overlap`);
  }
  return { entries, metadata, dataStart };
}

/** float32 value of every float16 bit pattern (256 KiB, built on first use). */
let F16_TABLE: Float32Array | null = null;
function f16Table(): Float32Array {
  if (F16_TABLE) return F16_TABLE;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const f = h & 0x3ff;
    t[h] = e === 0 ? s * Math.pow(2, -14) * (f / 1024) : e === 31 ? (f ? NaN : s * Infinity) : s * Math.pow(2, e - 15) * (1 + f / 1024);
  }
  F16_TABLE = t;
  return t;
}

/** A Uint16Array over `bytes` (copied when the bytes are not 2-byte aligned or the host is big-endian). */
function u16View(bytes: Uint8Array): Uint16Array {
  if (LITTLE_ENDIAN && bytes.byteOffset % 2 === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  const out = new Uint16Array(bytes.byteLength / 2);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let k = 0; k < out.length; k++) out[k] = dv.getUint16(2 * k, true);
  return out;
}

/**
 * Widens little-endian stored values to float32. F32 bytes are returned as a view without a copy
 * when they are 4-byte aligned (else copied); F16 goes through a 65,536-entry table, BF16 by
 * shifting its 16 bits into the high half of a float32 (both exact: every F16 and BF16 value is a
 * float32 value). The result holds `bytes.length / DTYPE_BYTES[dtype]` values.
 */
export function widenToFloat32(bytes: Uint8Array, dtype: SafetensorsDtype): Float32Array {
  if (dtype === 'F32') {
    if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    const out = new Float32Array(bytes.byteLength / 4);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let k = 0; k < out.length; k++) out[k] = dv.getFloat32(4 * k, true);
    return out;
  }
  const src = u16View(bytes);
  if (dtype === 'F16') {
    const table = f16Table();
    const out = new Float32Array(src.length);
    for (let k = 0; k < src.length; k++) out[k] = table[src[k] as number] as number;
    return out;
  }
  const bits = new Uint32Array(src.length);
  for (let k = 0; k < src.length; k++) bits[k] = (src[k] as number) << 16;
  return new Float32Array(bits.buffer);
}

const F32_SCRATCH = new Float32Array(1);
const U32_SCRATCH = new Uint32Array(F32_SCRATCH.buffer);

/** bfloat16 bits of a float32 value, rounded to nearest even (as torch's `.to(torch.bfloat16)`); NaN stays NaN. */
export function float32ToBf16Bits(x: number): number {
  F32_SCRATCH[0] = x;
  const u = U32_SCRATCH[0] as number;
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x7fffff) !== 0) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float16 bits of a float32 value, rounded to nearest even (IEEE 754 binary16, with subnormals; overflow → ±Infinity). */
export function float32ToF16Bits(x: number): number {
  F32_SCRATCH[0] = x;
  const u = U32_SCRATCH[0] as number;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const man = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    // Subnormal: shift the implicit-1 mantissa right, rounding to nearest even.
    const m = man | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let h = m >>> shift;
    if (rest > half || (rest === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (man >>> 13);
  const rest = man & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++; // may carry into the exponent: still correct (up to Infinity)
  return sign | h;
}

/**
 * Narrows float32 values into little-endian `dtype` bytes, written into `out` from byte 0
 * (F16/BF16 round to nearest even).
 */
export function narrowFromFloat32(values: Float32Array, dtype: SafetensorsDtype, out: Uint8Array): void {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  if (dtype === 'F32') {
    if (LITTLE_ENDIAN) out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    else for (let k = 0; k < values.length; k++) dv.setFloat32(4 * k, values[k] as number, true);
    return;
  }
  const f = dtype === 'F16' ? float32ToF16Bits : float32ToBf16Bits;
  for (let k = 0; k < values.length; k++) dv.setUint16(2 * k, f(values[k] as number), true);
}

/** Parses a safetensors buffer; every malformation gets a DdaError naming `fileName` and what is wrong. */
export function readSafetensors(buf: Uint8Array, fileName: string): SafetensorsFile {
  const headerLen = safetensorsHeaderLength(buf, buf.length, fileName);
  const { entries, metadata, dataStart } = parseSafetensorsHeader(buf.subarray(8, 8 + headerLen), buf.length, fileName);
  const tensors: TensorMap = new Map();
  for (const e of entries) {
    // Copy out of `buf` so that the caller's buffer is not kept alive by the returned tensors.
    const data = Float32Array.from(widenToFloat32(buf.subarray(dataStart + e.begin, dataStart + e.end), e.dtype));
    tensors.set(e.name, { shape: e.shape, data });
  }
  return { tensors, metadata };
}

/**
 * The bytes before the data section of a safetensors file holding `entries` (laid out one after
 * another in the given order): 8-byte length, then the JSON header padded with spaces to a
 * multiple of 8 bytes. Returns the bytes and the data size.
 */
export function safetensorsHeaderBytes(
  entries: readonly { name: string; dtype: SafetensorsDtype; shape: readonly number[] }[],
  metadata: Record<string, string> = {},
): { bytes: Uint8Array; dataBytes: number } {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let off = 0;
  for (const e of entries) {
    const size = e.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[e.dtype];
    header[e.name] = { dtype: e.dtype, shape: [...e.shape], data_offsets: [off, off + size] };
    off += size;
  }
  let hb = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - ((8 + hb.length) % 8)) % 8;
  if (pad) hb = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(pad));
  const bytes = new Uint8Array(8 + hb.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(hb.length), true);
  bytes.set(hb, 8);
  return { bytes, dataBytes: off };
}

/** Serialises tensors as safetensors (header padded to 8 bytes, tensors in map order), F32 unless `dtype` says otherwise. */
export function writeSafetensors(tensors: TensorMap, metadata: Record<string, string> = {}, dtype: SafetensorsDtype = 'F32'): Uint8Array {
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new DdaError(`tensor '${name}': shape [${t.shape.join(', ')}] holds ${n} values, data has ${t.data.length}`);
  }
  const { bytes, dataBytes } = safetensorsHeaderBytes([...tensors].map(([name, t]) => ({ name, dtype, shape: t.shape })), metadata);
  const out = new Uint8Array(bytes.length + dataBytes);
  out.set(bytes);
  let p = bytes.length;
  for (const t of tensors.values()) {
    const size = t.data.length * DTYPE_BYTES[dtype];
    narrowFromFloat32(t.data, dtype, out.subarray(p, p + size));
    p += size;
  }
  return out;
}
