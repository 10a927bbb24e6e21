import { scryptAsync } from '@noble/hashes/scrypt.js';
import { gcm } from '@noble/ciphers/aes.js';
import { randomBytes } from 'node:crypto';
import { fromHex, isHex, toHex, utf8 } from './bytes.js';
import { addressFromPublicKey, formatAddress } from './address.js';
import { generateKeyPair, isSchemeName, randomSeed, type KeyPair, type SchemeName } from './mldsa.js';

/**
 * Encrypted keystore (version 1). The 32-byte ML-DSA seed is what is stored:
 * keys are re-derived deterministically (FIPS 204 KeyGen_internal), which keeps
 * the file small and lets other backends import the same key.
 * scrypt derives a 256-bit key; AES-256-GCM encrypts the seed with the address
 * and scheme as associated data, so a tampered header fails authentication.
 */
export interface KeystoreFile {
  version: 1;
  scheme: SchemeName;
  address: string;
  publicKey: string;
  crypto: {
    kdf: 'scrypt';
    kdfparams: { N: number; r: number; p: number; dkLen: 32; salt: string };
    cipher: 'aes-256-gcm';
    nonce: string;
    ciphertext: string;
  };
}

export interface KeystoreOptions {
  /** scrypt cost; 2^15 by default (~0.1-0.3 s here). Tests and devnets may lower it. */
  scryptN?: number;
}

export class KeystoreError extends Error {
  constructor(
    readonly code: 'KEYSTORE_BAD_PASSPHRASE' | 'KEYSTORE_MALFORMED',
    message: string,
  ) {
    super(message);
    this.name = 'KeystoreError';
  }
}

export interface UnlockedKey extends KeyPair {
  address: Uint8Array;
  seed: Uint8Array;
}

function aad(scheme: string, address: string): Uint8Array {
  return utf8(`qnexus-keystore-v1/${scheme}/${address}`);
}

export async function encryptKeystore(
  scheme: SchemeName,
  passphrase: string,
  seed: Uint8Array = randomSeed(),
  opts: KeystoreOptions = {},
): Promise<{ file: KeystoreFile; key: UnlockedKey }> {
  const kp = generateKeyPair(scheme, seed);
  const address = addressFromPublicKey(kp.publicKey);
  const addr = formatAddress(address);
  const salt = new Uint8Array(randomBytes(16));
  const nonce = new Uint8Array(randomBytes(12));
  const N = opts.scryptN ?? 1 << 15;
  const dk = await scryptAsync(utf8(passphrase), salt, { N, r: 8, p: 1, dkLen: 32 });
  const ciphertext = gcm(dk, nonce, aad(scheme, addr)).encrypt(seed);
  const file: KeystoreFile = {
    version: 1,
    scheme,
    address: addr,
    publicKey: toHex(kp.publicKey),
    crypto: {
      kdf: 'scrypt',
      kdfparams: { N, r: 8, p: 1, dkLen: 32, salt: toHex(salt) },
      cipher: 'aes-256-gcm',
      nonce: toHex(nonce),
      ciphertext: toHex(ciphertext),
    },
  };
  return { file, key: { ...kp, address, seed } };
}

export function parseKeystore(json: unknown): KeystoreFile {
  const bad = (why: string): never => {
    throw new KeystoreError('KEYSTORE_MALFORMED', `malformed keystore: ${why}`);
  };
  if (typeof json !== 'object' || json === null) bad('not a JSON object');
  const f = json as Partial<KeystoreFile>;
  if (f.version !== 1) bad(`unsupported version ${String(f.version)}`);
  if (typeof f.scheme !== 'string' || !isSchemeName(f.scheme)) bad('unknown scheme');
  if (typeof f.address !== 'string' || typeof f.publicKey !== 'string') bad('missing address or publicKey');
  const c = f.crypto;
  if (!c || c.kdf !== 'scrypt' || c.cipher !== 'aes-256-gcm' || !c.kdfparams) bad('unsupported kdf or cipher');
  const { N, r, p, salt, dkLen } = c!.kdfparams;
  const powerOfTwo = Number.isInteger(N) && N >= 2 && (N & (N - 1)) === 0;
  if (!powerOfTwo || N > 1 << 22 || !Number.isInteger(r) || r < 1 || r > 32 || !Number.isInteger(p) || p < 1 || p > 16 || dkLen !== 32) {
    bad('bad scrypt parameters (N a power of two ≤ 2^22, 1 ≤ r ≤ 32, 1 ≤ p ≤ 16, dkLen 32)');
  }
  if (typeof salt !== 'string' || !isHex(salt) || salt.length < 16) bad('salt must be hex (at least 8 bytes)');
  if (typeof c!.nonce !== 'string' || !isHex(c!.nonce, 12)) bad('nonce must be 12 bytes of hex');
  if (typeof c!.ciphertext !== 'string' || !isHex(c!.ciphertext, 32 + 16)) bad('ciphertext must be 48 bytes of hex (seed + tag)');
  return f as KeystoreFile;
}

export async function decryptKeystore(json: unknown, passphrase: string): Promise<UnlockedKey> {
  const f = parseKeystore(json);
  const { N, r, p, salt } = f.crypto.kdfparams;
  let seed: Uint8Array;
  try {
    const dk = await scryptAsync(utf8(passphrase), fromHex(salt), { N, r, p, dkLen: 32 });
    seed = gcm(dk, fromHex(f.crypto.nonce), aad(f.scheme, f.address)).decrypt(fromHex(f.crypto.ciphertext));
  } catch {
    throw new KeystoreError('KEYSTORE_BAD_PASSPHRASE', 'wrong passphrase (or the keystore file was modified)');
  }
  const kp = generateKeyPair(f.scheme, seed);
  const address = addressFromPublicKey(kp.publicKey);
  if (formatAddress(address) !== f.address || toHex(kp.publicKey) !== f.publicKey) {
    throw new KeystoreError('KEYSTORE_MALFORMED', 'keystore address does not match its key');
  }
  return { ...kp, address, seed };
}
