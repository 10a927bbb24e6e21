import { sha256 } from './hash.js';
import { toHex } from './bytes.js';
import { generateKeyPair, randomSeed, type KeyPair, type SchemeName } from './mldsa.js';

/** An address is the first 20 bytes of SHA-256(public key), shown as `qn` + 40 hex chars. */
export const ADDRESS_BYTES = 20;
export const ADDRESS_PREFIX = 'qn';
const ADDRESS_RE = /^qn[0-9a-f]{40}$/;

export function addressFromPublicKey(publicKey: Uint8Array): Uint8Array {
  return sha256(publicKey).slice(0, ADDRESS_BYTES);
}

export function formatAddress(addr: Uint8Array): string {
  if (addr.length !== ADDRESS_BYTES) throw new TypeError('address must be 20 bytes');
  return ADDRESS_PREFIX + toHex(addr);
}

export function isAddressString(s: string): boolean {
  return ADDRESS_RE.test(s);
}

export function parseAddress(s: string): Uint8Array {
  if (!isAddressString(s)) throw new TypeError(`invalid address ${JSON.stringify(s)}: expected qn followed by 40 lowercase hex characters`);
  return new Uint8Array(Buffer.from(s.slice(2), 'hex'));
}

/** Home shard of an address: derived from its bytes so every node agrees without state. */
export function homeShard(addr: Uint8Array, shardCount: number): number {
  if (shardCount <= 1) return 0;
  return ((addr[0]! << 8) | addr[1]!) % shardCount;
}

/**
 * A fresh key pair whose address lives on `shard` (of `shardCount`): keys are drawn until one does
 * (each draw succeeds with probability 1/shardCount), at most `maxTries`; undefined when none did.
 * For throwaway keys that must sign on a given shard (a faucet request needs no funded key).
 */
export function generateKeyPairOnShard(scheme: SchemeName, shard: number, shardCount: number, maxTries: number, seed: () => Uint8Array = randomSeed): KeyPair | undefined {
  for (let i = 0; i < maxTries; i++) {
    const k = generateKeyPair(scheme, seed());
    if (homeShard(addressFromPublicKey(k.publicKey), shardCount) === shard) return k;
  }
  return undefined;
}
