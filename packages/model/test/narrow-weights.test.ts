import { describe, expect, it } from 'vitest';
import { assertFiniteBaseTensors, baseTensorFromStored, isNarrow, widenBaseTensor, widenToFloat32 } from '@dda/model';

// The narrow base tensors of the engine contract (@dda/model's narrow-weights.ts): widened back to
// float32 exactly as the safetensors reader widens the stored bytes, and checked for non-finite values.
const u32 = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);
const allPatterns = (): Uint16Array => Uint16Array.from({ length: 65536 }, (_, b) => b);
const asBytes = (b: Uint16Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

describe('widenBaseTensor', () => {
  it('bf16 and f16 bits widen to the reader\'s float32 values on every one of the 65,536 patterns, NaN payloads included', () => {
    const b = allPatterns();
    expect(u32(widenBaseTensor({ shape: [65536], format: 'bf16', bits: b }).data)).toEqual(u32(widenToFloat32(asBytes(b), 'BF16')));
    expect(u32(widenBaseTensor({ shape: [65536], format: 'f16', bits: b }).data)).toEqual(u32(widenToFloat32(asBytes(b), 'F16')));
  });

  it('a BF16 tensor stored as scaled half (baseTensorFromStored\'s default) widens to its bfloat16 values', () => {
    // Finite normal values over 20 binades, zeros of both signs: they fit the scaled half's window.
    const b = Uint16Array.from({ length: 4096 }, (_, i) => (i === 0 ? 0 : i === 1 ? 0x8000 : ((i & 1) << 15) | ((110 + (i % 20)) << 7) | (i % 128)));
    const t = baseTensorFromStored({ dtype: 'BF16', shape: [64, 64], bytes: asBytes(b) });
    expect(isNarrow(t) && t.format === 'f16' && t.scale !== 1).toBe(true);
    expect(u32(widenBaseTensor(t).data)).toEqual(u32(widenToFloat32(asBytes(b), 'BF16')));
    expect(widenBaseTensor(t).shape).toEqual([64, 64]);
  });

  it('returns float32 tensors as they are', () => {
    const data = Float32Array.from([1, -2, 3.5]);
    expect(widenBaseTensor({ shape: [3], data }).data).toBe(data);
  });
});

describe('assertFiniteBaseTensors', () => {
  it('names the tensor, value and index of the first infinity or NaN in either narrow format or float32, and passes finite ones', () => {
    const ok = new Map([['a', { shape: [2], format: 'bf16' as const, bits: Uint16Array.from([0x3f80, 0xbf80]) }], ['b', { shape: [1], data: Float32Array.from([2]) }]]);
    expect(() => assertFiniteBaseTensors(ok, 'base weights')).not.toThrow();
    expect(() => assertFiniteBaseTensors(new Map([['w', { shape: [3], format: 'bf16' as const, bits: Uint16Array.from([0x3f80, 0x3f80, 0xff80]) }]]), 'base weights'))
      .toThrow("base weights: tensor 'w' holds -Infinity at flat index 2");
    expect(() => assertFiniteBaseTensors(new Map([['h', { shape: [2], format: 'f16' as const, bits: Uint16Array.from([0x7e00, 0]), scale: 0.5 }]]), 'base weights'))
      .toThrow("base weights: tensor 'h' holds NaN at flat index 0");
    expect(() => assertFiniteBaseTensors(new Map([['f', { shape: [2], data: Float32Array.from([0, Infinity]) }]]), 'base weights'))
      .toThrow("base weights: tensor 'f' holds Infinity at flat index 1");
  });
});
