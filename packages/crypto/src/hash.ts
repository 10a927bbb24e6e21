import { createHash, hash as oneShot } from 'node:crypto';

export const HASH_BYTES = 32;
export const ZERO_HASH = new Uint8Array(HASH_BYTES);

/**
 * SHA-256 via Node's native (OpenSSL) implementation. Profiling showed the
 * pure-JS hash dominating node CPU under load (gossip message ids of every
 * received copy, tx ids, block hashes); native is an order of magnitude
 * faster and produces identical digests (checked against @noble/hashes in the tests).
 */
export function sha256(data: Uint8Array): Uint8Array {
  // crypto.hash (Node ≥ 20.12) hashes in one call, without a Hash object per digest: a third
  // of createHash's time on the 32–100 byte inputs (merkle leaves and nodes, trie nodes) that
  // most digests are.
  return owned(oneShot('sha256', data, 'buffer'));
}

export function hashConcat(...parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return sha256(parts[0]!);
  let n = 0;
  for (const p of parts) n += p.length;
  if (n > CONCAT_MAX) {
    const h = createHash('sha256');
    for (const p of parts) h.update(p);
    return owned(h.digest());
  }
  const buf = Buffer.allocUnsafe(n);
  let o = 0;
  for (const p of parts) {
    buf.set(p, o);
    o += p.length;
  }
  return owned(oneShot('sha256', buf, 'buffer'));
}

/** Above this many bytes a streaming hash beats copying the parts together. */
const CONCAT_MAX = 4096;

/** A digest as a Uint8Array with its own 32-byte buffer (never a view into a pooled one). */
function owned(d: Buffer): Uint8Array {
  if (d.byteOffset === 0 && d.buffer.byteLength === HASH_BYTES) return new Uint8Array(d.buffer);
  return new Uint8Array(d.buffer.slice(d.byteOffset, d.byteOffset + HASH_BYTES));
}
