// Byte helpers shared by every package. Hex is lowercase without 0x.

// Buffer's own hex encoder, called on the Uint8Array directly: half the time of wrapping it in a
// Buffer first, and no wrapper object per call (hex keys and ids are made on every transaction's
// path). Undocumented but part of Buffer.prototype since early Node; the fallback is the public way.
const hexSlice = (Buffer.prototype as unknown as { hexSlice?: (this: Uint8Array, start: number, end: number) => string }).hexSlice;

export function toHex(b: Uint8Array): string {
  return hexSlice ? hexSlice.call(b, 0, b.length) : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

export function fromHex(s: string): Uint8Array {
  const h = s.startsWith('0x') ? s.slice(2) : s;
  if (!HEX_RE.test(h)) throw new TypeError('invalid hex string');
  return new Uint8Array(Buffer.from(h, 'hex'));
}

export function isHex(s: string, byteLength?: number): boolean {
  if (!HEX_RE.test(s)) return false;
  return byteLength === undefined || s.length === byteLength * 2;
}

const ENCODER = new TextEncoder();

export function utf8(s: string): Uint8Array {
  return ENCODER.encode(s);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  // Long inputs (signatures, keys, blocks): native memcmp. Not constant-time, like the loop below.
  if (a.length > 64) return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Lexicographic byte order, used wherever canonical ordering is needed. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
