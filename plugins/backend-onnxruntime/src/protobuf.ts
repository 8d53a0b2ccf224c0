/**
 * A minimal Protocol Buffers writer: exactly the wire types the ONNX messages need
 * (varint, 64-bit-safe integers up to 2^53, fixed32 floats, length-delimited bytes and strings,
 * nested messages). Fields are written in the order they are added.
 */

/** Wire types of the protobuf encoding. */
export const WIRE = { varint: 0, fixed64: 1, bytes: 2, fixed32: 5 } as const;

const textEncoder = new TextEncoder();

/** Appends protobuf fields to a growing byte buffer. */
export class ProtoWriter {
  private buf: Uint8Array;
  private len = 0;

  /**
   * @param capacity - Initial buffer size in bytes (default 256); it doubles when exceeded. A
   *   good estimate for large messages saves the copies of growing (fresh memory is slow to
   *   touch on some virtual machines: about 5 ms per MB measured on the development machine).
   */
  constructor(capacity = 256) {
    this.buf = new Uint8Array(Math.max(16, capacity));
  }

  /** Number of bytes written so far. */
  get length(): number {
    return this.len;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /**
   * Writes a non-negative integer or a negative one (as the 10-byte two's complement of int64)
   * as a varint. Integers must be exact in a double (|v| ≤ 2^53).
   */
  varint(value: number): this {
    if (!Number.isSafeInteger(value)) throw new RangeError(`protobuf varint: ${value} is not a safe integer`);
    if (value < 0) {
      // int64 two's complement, always 10 bytes.
      let v = BigInt.asUintN(64, BigInt(value));
      this.reserve(10);
      for (let i = 0; i < 10; i++) {
        const byte = Number(v & 0x7fn);
        v >>= 7n;
        this.buf[this.len++] = v === 0n ? byte : byte | 0x80;
        if (v === 0n) break;
      }
      return this;
    }
    this.reserve(8);
    let v = value;
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
    return this;
  }

  /** Writes a field key (field number and wire type). */
  tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }

  /** A varint field (int32, int64, enum, bool). */
  intField(field: number, value: number): this {
    return this.tag(field, WIRE.varint).varint(value);
  }

  /** A `float` field (fixed32, little-endian IEEE 754). */
  floatField(field: number, value: number): this {
    this.tag(field, WIRE.fixed32);
    this.reserve(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, value, true);
    this.len += 4;
    return this;
  }

  /** A length-delimited field holding raw bytes. */
  bytesField(field: number, bytes: Uint8Array): this {
    this.tag(field, WIRE.bytes).varint(bytes.length);
    this.reserve(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
    return this;
  }

  /** A length-delimited field holding a UTF-8 string. */
  stringField(field: number, value: string): this {
    return this.bytesField(field, textEncoder.encode(value));
  }

  /**
   * A nested message field, written by `write` in place: five bytes are reserved for its length,
   * and once the message is written it moves back over the bytes the length does not need (so
   * the length is the shortest varint, as protobuf writes it, and no message is copied to
   * another buffer).
   */
  messageField(field: number, write: (w: ProtoWriter) => void): this {
    this.tag(field, WIRE.bytes);
    this.reserve(5);
    const start = this.len;
    this.len += 5;
    write(this);
    const size = this.len - start - 5;
    if (size >= 2 ** 35) throw new RangeError(`protobuf message of ${size} bytes is too long`);
    let k = 1;
    while (size >= 2 ** (7 * k)) k++;
    this.buf.copyWithin(start + k, start + 5, this.len);
    let v = size;
    for (let i = 0; i < k; i++) {
      this.buf[start + i] = i < k - 1 ? (v % 0x80) | 0x80 : v;
      v = Math.floor(v / 0x80);
    }
    this.len = start + k + size;
    return this;
  }

  /** The bytes written so far, as a view of the internal buffer (valid until the next write). */
  view(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  /**
   * The bytes written so far: a view of the buffer when it is at most 1 MiB larger than them (no
   * copy of a large message), else a copy sized exactly. Write nothing more after it.
   */
  finish(): Uint8Array {
    return this.buf.length - this.len <= 1 << 20 ? this.buf.subarray(0, this.len) : this.buf.slice(0, this.len);
  }
}
