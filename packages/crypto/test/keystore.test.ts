import assert from 'node:assert/strict';
import {
  KeystoreError,
  addressFromPublicKey,
  decryptKeystore,
  encryptKeystore,
  formatAddress,
  generateKeyPair,
  getBackend,
  parseKeystore,
  toHex,
  utf8,
  type KeystoreFile,
} from '@qnexus/crypto';

const N = 1 << 10;
const PASS = 'correct horse battery staple';

function clone<T>(x: T): T {
  return JSON.parse(JSON.stringify(x)) as T;
}

function flipHexChar(s: string, i = 0): string {
  const c = s[i]!;
  const r = c === '0' ? '1' : '0';
  return s.slice(0, i) + r + s.slice(i + 1);
}

async function rejectsWith(p: Promise<unknown>, code: KeystoreError['code']): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof KeystoreError, `expected KeystoreError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.name, 'KeystoreError');
    return true;
  });
}

describe('crypto: keystore', () => {
  let file: KeystoreFile;
  const seed = new Uint8Array(32).map((_, i) => i * 7);

  before(async () => {
    ({ file } = await encryptKeystore('ml-dsa-44', PASS, seed, { scryptN: N }));
  });

  it('file has the documented shape and does not leak the seed', async () => {
    const kp = generateKeyPair('ml-dsa-44', seed);
    assert.equal(file.version, 1);
    assert.equal(file.scheme, 'ml-dsa-44');
    assert.equal(file.address, formatAddress(addressFromPublicKey(kp.publicKey)));
    assert.equal(file.publicKey, toHex(kp.publicKey));
    assert.equal(file.crypto.kdf, 'scrypt');
    assert.deepEqual({ ...file.crypto.kdfparams, salt: undefined }, { N, r: 8, p: 1, dkLen: 32, salt: undefined });
    assert.match(file.crypto.kdfparams.salt, /^[0-9a-f]{32}$/);
    assert.equal(file.crypto.cipher, 'aes-256-gcm');
    assert.match(file.crypto.nonce, /^[0-9a-f]{24}$/);
    assert.equal(file.crypto.ciphertext.length, (32 + 16) * 2, '32-byte seed + 16-byte GCM tag');
    assert.ok(!JSON.stringify(file).includes(toHex(seed)), 'seed must not appear in clear');
  });

  it('encrypt/decrypt round trip (through JSON) recovers the key', async () => {
    const json = JSON.parse(JSON.stringify(file)) as unknown;
    const key = await decryptKeystore(json, PASS);
    assert.deepEqual(key.seed, seed);
    const kp = generateKeyPair('ml-dsa-44', seed);
    assert.deepEqual(key.publicKey, kp.publicKey);
    assert.deepEqual(key.secretKey, kp.secretKey);
    assert.equal(key.scheme, 'ml-dsa-44');
    assert.deepEqual(key.address, addressFromPublicKey(kp.publicKey));
    // The recovered secret key signs verifiably.
    const b = getBackend('ml-dsa-44');
    const m = utf8('unlocked');
    assert.ok(b.verify(kp.publicKey, m, b.sign(key.secretKey, m)));
  });

  it('round trip for every scheme with a random seed', async () => {
    for (const scheme of ['ml-dsa-65', 'ml-dsa-87'] as const) {
      const { file: f, key } = await encryptKeystore(scheme, 'pw', undefined, { scryptN: N });
      assert.equal(f.scheme, scheme);
      const back = await decryptKeystore(clone(f), 'pw');
      assert.deepEqual(back.seed, key.seed);
      assert.deepEqual(back.publicKey, key.publicKey);
      assert.deepEqual(back.address, key.address);
    }
  });

  it('two encryptions of one seed use fresh salt and nonce', async () => {
    const { file: f2 } = await encryptKeystore('ml-dsa-44', PASS, seed, { scryptN: N });
    assert.equal(f2.address, file.address);
    assert.notEqual(f2.crypto.kdfparams.salt, file.crypto.kdfparams.salt);
    assert.notEqual(f2.crypto.nonce, file.crypto.nonce);
    assert.notEqual(f2.crypto.ciphertext, file.crypto.ciphertext);
  });

  it('wrong passphrase -> KEYSTORE_BAD_PASSPHRASE', async () => {
    await rejectsWith(decryptKeystore(clone(file), PASS + '!'), 'KEYSTORE_BAD_PASSPHRASE');
    await rejectsWith(decryptKeystore(clone(file), ''), 'KEYSTORE_BAD_PASSPHRASE');
  });

  it('tampered ciphertext, nonce, salt or scrypt params -> error', async () => {
    const mutations: ((f: KeystoreFile) => void)[] = [
      (f) => (f.crypto.ciphertext = flipHexChar(f.crypto.ciphertext, 0)),
      (f) => (f.crypto.ciphertext = flipHexChar(f.crypto.ciphertext, f.crypto.ciphertext.length - 1)), // tag
      (f) => (f.crypto.nonce = flipHexChar(f.crypto.nonce, 3)),
      (f) => (f.crypto.kdfparams.salt = flipHexChar(f.crypto.kdfparams.salt, 5)),
      (f) => (f.crypto.kdfparams.N = N * 2),
    ];
    for (const m of mutations) {
      const f = clone(file);
      m(f);
      await rejectsWith(decryptKeystore(f, PASS), 'KEYSTORE_BAD_PASSPHRASE');
    }
  });

  it('tampered address (authenticated as associated data) -> error', async () => {
    const other = formatAddress(addressFromPublicKey(generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(9)).publicKey));
    const f = clone(file);
    f.address = other;
    await assert.rejects(decryptKeystore(f, PASS), KeystoreError);
    await rejectsWith(decryptKeystore(f, PASS), 'KEYSTORE_BAD_PASSPHRASE');
  });

  it('tampered scheme -> error', async () => {
    const f = clone(file);
    f.scheme = 'ml-dsa-65';
    await assert.rejects(decryptKeystore(f, PASS), KeystoreError);
  });

  it('publicKey that does not match the decrypted seed -> KEYSTORE_MALFORMED', async () => {
    const f = clone(file);
    f.publicKey = flipHexChar(f.publicKey, 10);
    await rejectsWith(decryptKeystore(f, PASS), 'KEYSTORE_MALFORMED');
  });

  it('malformed JSON shapes -> KEYSTORE_MALFORMED', async () => {
    const base = clone(file) as unknown as Record<string, unknown>;
    const crypto = base.crypto as Record<string, unknown>;
    const kdfparams = crypto.kdfparams as Record<string, unknown>;
    const shapes: unknown[] = [
      null,
      undefined,
      42,
      'keystore',
      [],
      {},
      { ...base, version: 2 },
      { ...base, version: '1' },
      { ...base, scheme: 'ml-dsa-99' },
      { ...base, scheme: undefined },
      { ...base, address: undefined },
      { ...base, address: 5 },
      { ...base, publicKey: undefined },
      { ...base, crypto: undefined },
      { ...base, crypto: null },
      { ...base, crypto: { ...crypto, kdf: 'pbkdf2' } },
      { ...base, crypto: { ...crypto, cipher: 'aes-128-ctr' } },
      { ...base, crypto: { ...crypto, kdfparams: undefined } },
      { ...base, crypto: { ...crypto, kdfparams: { ...kdfparams, N: 0 } } },
      { ...base, crypto: { ...crypto, kdfparams: { ...kdfparams, N: -1024 } } },
      { ...base, crypto: { ...crypto, kdfparams: { ...kdfparams, N: 1.5 } } },
      { ...base, crypto: { ...crypto, kdfparams: { ...kdfparams, N: '1024' } } },
      { ...base, crypto: { ...crypto, kdfparams: { ...kdfparams, N: 1 << 23 } } },
      { ...base, crypto: { ...crypto, kdfparams: { ...kdfparams, r: 0 } } },
      { ...base, crypto: { ...crypto, kdfparams: { ...kdfparams, p: undefined } } },
      { ...base, crypto: { ...crypto, kdfparams: { ...kdfparams, salt: 7 } } },
      { ...base, crypto: { ...crypto, nonce: undefined } },
      { ...base, crypto: { ...crypto, ciphertext: null } },
    ];
    for (const [i, s] of shapes.entries()) {
      assert.throws(
        () => parseKeystore(s),
        (e: unknown) => e instanceof KeystoreError && e.code === 'KEYSTORE_MALFORMED',
        `shape #${i}`,
      );
      await rejectsWith(decryptKeystore(s, PASS), 'KEYSTORE_MALFORMED');
    }
  });

  it('parseKeystore accepts the well-formed file', () => {
    assert.equal(parseKeystore(clone(file)).address, file.address);
  });
});
