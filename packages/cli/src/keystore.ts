import {
  addressFromPublicKey,
  decryptKeystore,
  encryptKeystore,
  formatAddress,
  fromHex,
  isHex,
  KeystoreError,
  parseKeystore,
  schemeLengths,
  type KeystoreFile,
  type SchemeName,
  type UnlockedKey,
} from '@qnexus/crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { readText, writeNewFile } from './util.js';

/**
 * Read and check a keystore file's public part (no passphrase needed).
 * Throws KeystoreError KEYSTORE_MALFORMED for anything that is not a
 * consistent v1 keystore.
 */
export async function readKeystoreFile(path: string): Promise<KeystoreFile> {
  const text = await readText(path, 'keystore');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new KeystoreError('KEYSTORE_MALFORMED', `keystore ${path} is not valid JSON`);
  }
  let f: KeystoreFile;
  try {
    f = parseKeystore(json);
  } catch (e) {
    if (e instanceof KeystoreError) throw new KeystoreError(e.code, `${path}: ${e.message}`);
    throw e;
  }
  if (!isHex(f.publicKey, schemeLengths(f.scheme).publicKey)) {
    throw new KeystoreError('KEYSTORE_MALFORMED', `${path}: public key is not a ${f.scheme} public key`);
  }
  if (formatAddress(addressFromPublicKey(fromHex(f.publicKey))) !== f.address) {
    throw new KeystoreError('KEYSTORE_MALFORMED', `${path}: address does not match the public key`);
  }
  return f;
}

/** Read and decrypt a keystore. Throws KEYSTORE_BAD_PASSPHRASE / KEYSTORE_MALFORMED. */
export async function unlockKeystoreFile(path: string, passphrase: string): Promise<{ file: KeystoreFile; key: UnlockedKey }> {
  const file = await readKeystoreFile(path);
  try {
    return { file, key: await decryptKeystore(file, passphrase) };
  } catch (e) {
    if (e instanceof KeystoreError) throw new KeystoreError(e.code, `${path}: ${e.message}`);
    throw e;
  }
}

export function keystoreText(f: KeystoreFile): string {
  return `${JSON.stringify(f, null, 2)}\n`;
}

/**
 * Create a key (random, or from `seed`) and write its encrypted keystore (mode 0600) to `path`,
 * or to `path(address)` when where it goes depends on the new key's address. Refuses to
 * overwrite unless `force`.
 */
export async function createKeystoreFile(
  path: string | ((address: string) => string),
  scheme: SchemeName,
  passphrase: string,
  opts: { scryptN?: number; force?: boolean; seed?: Uint8Array } = {},
): Promise<KeystoreFile & { path: string }> {
  const { file } = await encryptKeystore(scheme, passphrase, opts.seed, opts.scryptN === undefined ? {} : { scryptN: opts.scryptN });
  const to = typeof path === 'string' ? path : path(file.address);
  await writeNewFile(to, keystoreText(file), { force: opts.force ?? false, mode: 0o600, what: 'keystore' });
  return { ...file, path: to };
}

/**
 * Where `qnexus keys new` puts a key without --out: $QNEXUS_HOME/keys (default ~/.qnexus/keys),
 * outside any checkout, so a key cannot be committed with the code by accident.
 */
export function defaultKeysDir(): string {
  return join(process.env.QNEXUS_HOME || join(homedir(), '.qnexus'), 'keys');
}
