import { QnexusError } from './errors.js';

/**
 * Canonical binary encoding: big-endian fixed-width integers, u32 length
 * prefixes for variable bytes/strings/lists, no optional fields, no padding.
 * A value has exactly one encoding; decoders reject trailing bytes and
 * over-long lengths, so `decode(encode(x))` round-trips and hashes are stable.
 */
export class Writer {
  private buf: Uint8Array;
  private view: DataView;
  private len = 0;
  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`u8 out of range: ${v}`);
    this.ensure(1);
    this.buf[this.len++] = v;
    return this;
  }
  u16(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`u16 out of range: ${v}`);
    this.ensure(2);
    this.view.setUint16(this.len, v);
    this.len += 2;
    return this;
  }
  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`u32 out of range: ${v}`);
    this.ensure(4);
    this.view.setUint32(this.len, v);
    this.len += 4;
    return this;
  }
  u64(v: bigint | number): this {
    const b = typeof v === 'number' ? BigInt(v) : v;
    if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new RangeError(`u64 number not a safe integer: ${v}`);
    if (b < 0n || b > 0xffffffffffffffffn) throw new RangeError(`u64 out of range: ${b}`);
    this.ensure(8);
    this.view.setBigUint64(this.len, b);
    this.len += 8;
    return this;
  }
  /** Fixed-length bytes (length is implied by the schema). */
  fixed(b: Uint8Array, n: number): this {
    if (b.length !== n) throw new RangeError(`expected ${n} bytes, got ${b.length}`);
    this.ensure(n);
    this.buf.set(b, this.len);
    this.len += n;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.u32(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }
  string(s: string): this {
    return this.bytes(new TextEncoder().encode(s));
  }
  /**
   * The encoding. A writer sized exactly (a block, a batch) hands over its buffer instead of a
   * copy: megabytes a block otherwise allocated and copied twice. A write after finishing still
   * leaves the result alone: a full buffer is grown into a new one first.
   */
  finish(): Uint8Array {
    return this.len === this.buf.length ? this.buf : this.buf.slice(0, this.len);
  }
}

export class Reader {
  private off = 0;
  private readonly view: DataView;
  /**
   * With `views`, byte fields are views into `buf` instead of copies: only for an input the
   * decoded value keeps anyway and nobody writes to (a transaction's own encoding, held by its
   * envelope), where copying a 2.4 KB signature out of it is garbage and nothing else.
   */
  constructor(
    private readonly buf: Uint8Array,
    private readonly views = false,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number, what: string): void {
    if (this.off + n > this.buf.length) throw new QnexusError('MALFORMED', `truncated input reading ${what}`);
  }
  u8(what = 'u8'): number {
    this.need(1, what);
    return this.buf[this.off++]!;
  }
  u16(what = 'u16'): number {
    this.need(2, what);
    const v = this.view.getUint16(this.off);
    this.off += 2;
    return v;
  }
  u32(what = 'u32'): number {
    this.need(4, what);
    const v = this.view.getUint32(this.off);
    this.off += 4;
    return v;
  }
  u64(what = 'u64'): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.off);
    this.off += 8;
    return v;
  }
  /** u64 that must fit a JS safe integer (heights, slots, counts). */
  u64n(what = 'u64'): number {
    const v = this.u64(what);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new QnexusError('MALFORMED', `${what} too large`);
    return Number(v);
  }
  fixed(n: number, what = 'bytes'): Uint8Array {
    this.need(n, what);
    // Copy (unless `views`): decoded objects must not alias a reused input buffer.
    const out = this.views ? this.buf.subarray(this.off, this.off + n) : new Uint8Array(this.buf.subarray(this.off, this.off + n));
    this.off += n;
    return out;
  }
  bytes(max: number, what = 'bytes'): Uint8Array {
    const n = this.u32(`${what} length`);
    if (n > max) throw new QnexusError('MALFORMED', `${what} length ${n} exceeds limit ${max}`);
    return this.fixed(n, what);
  }
  string(max: number, what = 'string'): string {
    const b = this.bytes(max, what);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(b);
    } catch {
      throw new QnexusError('MALFORMED', `${what} is not valid UTF-8`);
    }
  }
  /** Number of list items, bounded before anything is allocated. */
  count(max: number, what = 'list'): number {
    const n = this.u32(`${what} count`);
    if (n > max) throw new QnexusError('MALFORMED', `${what} count ${n} exceeds limit ${max}`);
    return n;
  }
  get remaining(): number {
    return this.buf.length - this.off;
  }
  end(what = 'message'): void {
    if (this.off !== this.buf.length) throw new QnexusError('MALFORMED', `${this.buf.length - this.off} trailing bytes after ${what}`);
  }
}

/** Decode helper: wraps unexpected exceptions as MALFORMED so callers see one error code. */
export function decodeWith<T>(bytes: Uint8Array, what: string, fn: (r: Reader) => T, views = false): T {
  const r = new Reader(bytes, views);
  try {
    const v = fn(r);
    r.end(what);
    return v;
  } catch (e) {
    if (e instanceof QnexusError) throw e;
    throw new QnexusError('MALFORMED', `malformed ${what}: ${(e as Error).message}`);
  }
}
