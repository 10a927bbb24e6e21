import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { concatBytes } from './bytes.js';

export const HASH_BYTES = 32;
export const ZERO_HASH = new Uint8Array(HASH_BYTES);

export function sha256(data: Uint8Array): Uint8Array {
  return nobleSha256(data);
}

export function hashConcat(...parts: Uint8Array[]): Uint8Array {
  return nobleSha256(concatBytes(...parts));
}
