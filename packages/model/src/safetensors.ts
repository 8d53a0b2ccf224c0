import { DdaError } from '@dda/core';
import type { TensorMap } from './weights.js';

/**
 * A small reader and writer of the safetensors format (8-byte little-endian header length, a JSON
 * header `{name: {dtype, shape, data_offsets}}`, then the raw little-endian data). Reads F32, F16
 * and BF16 (converted to float32); writes F32. `__metadata__` is kept as string pairs.
 */
export interface SafetensorsFile {
  readonly tensors: TensorMap;
  readonly metadata: Record<string, string>;
}

const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * Math.pow(2, -14) * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * Math.pow(2, e - 15) * (1 + f / 1024);
}

/** Parses a safetensors buffer; every malformation gets a DdaError naming `fileName` and what is wrong. */
export function readSafetensors(buf: Uint8Array, fileName: string): SafetensorsFile {
  const bad = (what: string): never => {
    throw new DdaError(`${fileName}: not a valid safetensors file: ${what}`, 're-export the weights, or check that the download/copy was not truncated');
  };
  if (buf.length < 8) bad(`only ${buf.length} bytes, shorter than the 8-byte header length`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = Number(dv.getBigUint64(0, true));
  if (headerLen < 2 || 8 + headerLen > buf.length) bad(`header length ${headerLen} does not fit in the file's ${buf.length} bytes`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + headerLen)));
  } catch (e) {
    bad(`header is not JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) bad('header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = buf.length - dataStart;
  const tensors: TensorMap = new Map();
  let metadata: Record<string, string> = {};
  const spans: [number, number, string][] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || !Object.values(raw).every((v) => typeof v === 'string')) bad('__metadata__ must map strings to strings');
      metadata = raw as Record<string, string>;
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof info !== 'object' || info === null) bad(`entry '${name}' is not an object`);
    const dtype = info.dtype;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) bad(`tensor '${name}' has dtype ${JSON.stringify(dtype)}; supported: ${Object.keys(DTYPE_BYTES).join(', ')}`);
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) bad(`tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`);
    const offs = info.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isInteger(d) && d >= 0)) bad(`tensor '${name}' has invalid data_offsets`);
    const [begin, end] = offs as [number, number];
    const n = (shape as number[]).reduce((a, b) => a * b, 1);
    const bytes = DTYPE_BYTES[dtype as string] as number;
    if (end < begin || end - begin !== n * bytes) bad(`tensor '${name}': data_offsets [${begin}, ${end}] do not match shape [${(shape as number[]).join(', ')}] of ${dtype as string}`);
    if (end > dataLen) bad(`tensor '${name}' ends at byte ${end} of the data section, which has only ${dataLen} bytes (file truncated?)`);
    spans.push([begin, end, name]);
    const data = new Float32Array(n);
    const base = dataStart + begin;
    if (dtype === 'F32') for (let k = 0; k < n; k++) data[k] = dv.getFloat32(base + 4 * k, true);
    else if (dtype === 'F16') for (let k = 0; k < n; k++) data[k] = f16ToF32(dv.getUint16(base + 2 * k, true));
    else for (let k = 0; k < n; k++) data[k] = new Float32Array(new Uint32Array([dv.getUint16(base + 2 * k, true) << 16]).buffer)[0] as number;
    tensors.set(name, { shape: shape as number[], data });
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let k = 1; k < spans.length; k++) {
    const prev = spans[k - 1] as [number, number, string];
    const cur = spans[k] as [number, number, string];
    if (cur[0] < prev[1]) bad(`tensors '${prev[2]}' and '${cur[2]}' overlap`);
  }
  return { tensors, metadata };
}

/** Serialises tensors as F32 safetensors (header padded to 8 bytes, tensors in map order). */
export function writeSafetensors(tensors: TensorMap, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let off = 0;
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new DdaError(`tensor '${name}': shape [${t.shape.join(', ')}] holds ${n} values, data has ${t.data.length}`);
    header[name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [off, off + 4 * n] };
    off += 4 * n;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.length + off);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let p = 8 + hb.length;
  for (const t of tensors.values()) {
    for (let k = 0; k < t.data.length; k++) dv.setFloat32(p + 4 * k, t.data[k] as number, true);
    p += 4 * t.data.length;
  }
  return out;
}
