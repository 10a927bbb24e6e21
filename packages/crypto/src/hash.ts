import { createHash } from 'node:crypto';

export const HASH_BYTES = 32;
export const ZERO_HASH = new Uint8Array(HASH_BYTES);

/**
 * SHA-256 via Node's native (OpenSSL) implementation. Profiling showed the
 * pure-JS hash dominating node CPU under load (gossip message ids of every
 * received copy, tx ids, block hashes); native is an order of magnitude
 * faster and produces identical digests (checked against @noble/hashes in the tests).
 */
export function sha256(data: Uint8Array): Uint8Array {
  const d = createHash('sha256').update(data).digest();
  return new Uint8Array(d.buffer.slice(d.byteOffset, d.byteOffset + HASH_BYTES));
}

export function hashConcat(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  const d = h.digest();
  return new Uint8Array(d.buffer.slice(d.byteOffset, d.byteOffset + HASH_BYTES));
}
