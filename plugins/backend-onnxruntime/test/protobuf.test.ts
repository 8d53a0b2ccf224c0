import { describe, expect, it } from 'vitest';
import { ProtoWriter, WIRE } from '@dda/backend-onnxruntime';

const bytes = (f: (w: ProtoWriter) => void): number[] => {
  const w = new ProtoWriter();
  f(w);
  return Array.from(w.finish());
};

describe('ProtoWriter', () => {
  it('encodes varints as the protobuf specification does', () => {
    expect(bytes((w) => w.varint(0))).toEqual([0]);
    expect(bytes((w) => w.varint(1))).toEqual([1]);
    expect(bytes((w) => w.varint(127))).toEqual([0x7f]);
    expect(bytes((w) => w.varint(128))).toEqual([0x80, 0x01]);
    expect(bytes((w) => w.varint(300))).toEqual([0xac, 0x02]);
    expect(bytes((w) => w.varint(2 ** 32))).toEqual([0x80, 0x80, 0x80, 0x80, 0x10]);
    expect(bytes((w) => w.varint(Number.MAX_SAFE_INTEGER))).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    // Negative int64: ten bytes of two's complement.
    expect(bytes((w) => w.varint(-1))).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    expect(bytes((w) => w.varint(-2))).toEqual([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    expect(() => bytes((w) => w.varint(0.5))).toThrow(RangeError);
    expect(() => bytes((w) => w.varint(2 ** 60))).toThrow(RangeError);
  });

  it('encodes keys, floats, strings and nested messages', () => {
    // The protobuf docs' example: field 1 = 150 is 08 96 01.
    expect(bytes((w) => w.intField(1, 150))).toEqual([0x08, 0x96, 0x01]);
    // Field 2 string "testing": 12 07 74 65 73 74 69 6e 67.
    expect(bytes((w) => w.stringField(2, 'testing'))).toEqual([0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6e, 0x67]);
    // Field 3 = message { field 1 = 150 }: 1a 03 08 96 01.
    expect(bytes((w) => w.messageField(3, (m) => m.intField(1, 150)))).toEqual([0x1a, 0x03, 0x08, 0x96, 0x01]);
    // Field 2 float 1.0: key (2 << 3 | 5) = 0x15, then 00 00 80 3f.
    expect(bytes((w) => w.floatField(2, 1))).toEqual([0x15, 0x00, 0x00, 0x80, 0x3f]);
    expect(bytes((w) => w.tag(20, WIRE.varint))).toEqual([0xa0, 0x01]);
    expect(bytes((w) => w.stringField(1, 'é'))).toEqual([0x0a, 0x02, 0xc3, 0xa9]);
  });

  it('grows its buffer for large payloads', () => {
    const payload = new Uint8Array(100_000).map((_, i) => i % 251);
    const out = bytes((w) => w.bytesField(9, payload));
    expect(out.slice(0, 4)).toEqual([0x4a, 0xa0, 0x8d, 0x06]); // key 9/LEN, varint 100000
    expect(out.length).toBe(4 + 100_000);
    expect(out[4 + 99_999]).toBe(99_999 % 251);
  });
});

describe('ProtoWriter nested messages in place', () => {
  it('gives the shortest length varint at every size, also when the buffer is exactly full', () => {
    const reference = (size: number): number[] => {
      const len: number[] = [];
      for (let v = size; ; v = Math.floor(v / 128)) {
        len.push(v >= 128 ? (v % 128) | 0x80 : v);
        if (v < 128) break;
      }
      return [0x1a, ...len];
    };
    for (const size of [0, 1, 2, 127, 128, 300, 16_383, 16_384, 100_000]) {
      const payload = new Uint8Array(size).map((_, i) => i % 7);
      for (const capacity of [16, 3 + size, 6 + size, 1 << 20]) {
        const w = new ProtoWriter(capacity);
        w.messageField(3, (m) => m.bytesField(1, payload).varint(5).messageField(2, (x) => x.intField(1, 150)));
        const inner = new ProtoWriter();
        inner.bytesField(1, payload).varint(5).messageField(2, (x) => x.intField(1, 150));
        const innerBytes = Array.from(inner.finish());
        expect(Array.from(w.finish())).toEqual([...reference(innerBytes.length), ...innerBytes]);
      }
    }
  });
});
