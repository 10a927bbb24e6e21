import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';

/**
 * @libp2p/crypto 5.1.23 (the version the whole libp2p-2 tree dedupes to) declares
 * its keys against @libp2p/interface 3, whose Uint8ArrayList type differs from
 * interface 2's. At runtime these are the very objects libp2p 2.10 itself uses;
 * only the declarations disagree, so we re-type them once, here.
 */
function asInterface2Key(key: object): PrivateKey {
  return key as unknown as PrivateKey;
}

/**
 * Load the node's libp2p identity key, creating it on first use.
 *
 * The file holds the protobuf-marshalled private key (the same encoding libp2p
 * uses everywhere), so the peer id survives restarts. A new key is Ed25519.
 *
 * Creation is race-free and never clobbers an existing key: the key is written
 * to a private temporary file and then hard-linked into place, which fails with
 * EEXIST if another process won the race — in that case we read the winner's key.
 */
export async function loadOrCreatePeerKey(path: string): Promise<PrivateKey> {
  const existing = await readKeyFile(path);
  if (existing !== undefined) return existing;

  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const generated = await generateKeyPair('Ed25519');
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  // `mode` only applies when the file is created; 'wx' guarantees we create it.
  await writeFile(tmp, privateKeyToProtobuf(generated), { mode: 0o600, flag: 'wx' });
  try {
    await link(tmp, path).catch(async (err: NodeJS.ErrnoException) => {
      // Some filesystems (certain bind mounts, FAT) refuse hard links: fall back to an exclusive create.
      if (err.code !== 'EPERM' && err.code !== 'ENOTSUP' && err.code !== 'ENOSYS') throw err;
      await writeFile(path, privateKeyToProtobuf(generated), { mode: 0o600, flag: 'wx' });
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const winner = await readKeyFile(path);
    if (winner === undefined) throw new Error(`peer key file ${path} vanished while being created`);
    return winner;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  return asInterface2Key(generated);
}

/** The peer id (base58btc string) derived from a key file, creating the key if missing. */
export async function peerIdFromKeyFile(path: string): Promise<string> {
  const key = await loadOrCreatePeerKey(path);
  return peerIdFromPrivateKey(key).toString();
}

async function readKeyFile(path: string): Promise<PrivateKey | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return asInterface2Key(privateKeyFromProtobuf(bytes));
  } catch (err) {
    // Never silently replace a corrupt identity: the operator must decide.
    throw new Error(`peer key file ${path} is not a valid protobuf-encoded libp2p private key: ${(err as Error).message}`);
  }
}
