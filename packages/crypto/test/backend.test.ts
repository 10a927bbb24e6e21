import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BACKENDS,
  BACKEND_CHOICES,
  DEFAULT_BACKEND,
  describeBackend,
  isBackendChoice,
  resolveBackend,
  CryptoBackendError,
  SCHEMES,
  backendAvailable,
  backendStatus,
  bytesEqual,
  getBackend,
  isBackendName,
  signingBytes,
  utf8,
  type BackendName,
  type SignatureBackend,
} from '@qnexus/crypto';

const REQUIRE_TOOLS = process.env.QNEXUS_REQUIRE_TOOLS === '1';
const msg0 = utf8('cross-scheme');

function seedOf(n: number): Uint8Array {
  return new Uint8Array(32).fill(n);
}

function flipBit(b: Uint8Array, byteIndex: number, bit = 0): Uint8Array {
  const c = b.slice();
  c[byteIndex] = c[byteIndex]! ^ (1 << bit);
  return c;
}

/** verify, asserting it does not throw. */
function verifies(b: SignatureBackend, pk: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  let r: boolean | undefined;
  assert.doesNotThrow(() => {
    r = b.verify(pk, msg, sig);
  }, `${b.name} threw on pk ${pk.length} B, sig ${sig.length} B`);
  assert.equal(typeof r, 'boolean');
  return r!;
}

describe('crypto: signature backends', () => {
  it('BACKENDS, isBackendName, noble always available', () => {
    assert.deepEqual([...BACKENDS], ['noble', 'pqclean']);
    assert.ok(isBackendName('noble') && isBackendName('pqclean'));
    assert.ok(!isBackendName('openssl') && !isBackendName('NOBLE') && !isBackendName(''));
    assert.equal(backendAvailable('noble'), true);
    assert.equal(backendAvailable('openssl'), false);
    assert.equal(backendStatus('noble').available, true);
    assert.equal(getBackend('ml-dsa-44', 'noble').name, 'noble');
  });

  it('auto (the default) is pqclean where it loads, else noble; a named backend is itself', () => {
    assert.equal(DEFAULT_BACKEND, 'auto');
    assert.deepEqual([...BACKEND_CHOICES], ['auto', 'noble', 'pqclean']);
    assert.ok(isBackendChoice('auto') && isBackendChoice('noble') && !isBackendChoice('Auto'));
    const expected = backendAvailable('pqclean') ? 'pqclean' : 'noble';
    assert.equal(resolveBackend('auto'), expected);
    assert.equal(resolveBackend('noble'), 'noble');
    assert.equal(resolveBackend('pqclean'), 'pqclean');
    assert.equal(getBackend('ml-dsa-44').name, expected);
    assert.equal(getBackend('ml-dsa-44', 'auto'), getBackend('ml-dsa-44', expected));
    assert.match(describeBackend('auto'), new RegExp(`^${expected} \\(.*; chosen by auto\\)$`));
    assert.doesNotMatch(describeBackend('noble'), /auto/);
  });

  it('an unknown backend throws CryptoBackendError CRYPTO_BACKEND_UNKNOWN', () => {
    for (const bad of ['openssl', '', 'Noble']) {
      assert.throws(
        () => getBackend('ml-dsa-44', bad as BackendName),
        (e: unknown) => e instanceof CryptoBackendError && e.code === 'CRYPTO_BACKEND_UNKNOWN' && e.backend === bad && /expected noble or pqclean/.test(e.message),
      );
    }
  });

  it('pqclean that cannot load: unavailable, CryptoBackendError CRYPTO_BACKEND_UNAVAILABLE, noble unaffected, auto falls back to noble (child process)', () => {
    // Hide the package from require() in a child process, whether or not it is installed here.
    const dir = mkdtempSync(join(tmpdir(), 'qnexus-backend-'));
    try {
      const hook = join(dir, 'hide-pqclean.cjs');
      writeFileSync(
        hook,
        `const M = require('node:module'); const load = M._load;
M._load = function (req, ...a) { if (req === 'pqclean') { const e = new Error("Cannot find module 'pqclean'"); e.code = 'MODULE_NOT_FOUND'; throw e; } return load.call(this, req, ...a); };\n`,
      );
      const script = `
import { backendAvailable, backendStatus, getBackend, resolveBackend, CryptoBackendError } from '@qnexus/crypto';
let error = null;
try { getBackend('ml-dsa-44', 'pqclean'); } catch (e) { error = { isClass: e instanceof CryptoBackendError, code: e.code, backend: e.backend, message: e.message }; }
console.log(JSON.stringify({ available: backendAvailable('pqclean'), status: backendStatus('pqclean'), error, noble: getBackend('ml-dsa-44').name, auto: resolveBackend('auto') }));`;
      const out = execFileSync(process.execPath, ['--require', hook, '--input-type=module', '-e', script], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        encoding: 'utf8',
        env: { ...process.env, NODE_OPTIONS: '' },
      });
      const r = JSON.parse(out) as { available: boolean; status: { available: boolean; detail: string }; error: Record<string, unknown> | null; noble: string; auto: string };
      assert.equal(r.available, false);
      assert.equal(r.status.available, false);
      assert.match(r.status.detail, /pqclean is not installed/);
      assert.ok(r.error, 'getBackend threw');
      assert.deepEqual([r.error.isClass, r.error.code, r.error.backend], [true, 'CRYPTO_BACKEND_UNAVAILABLE', 'pqclean']);
      assert.match(String(r.error.message), /^signature backend pqclean is unavailable: the optional package pqclean is not installed/);
      // The default (auto) falls back to noble, without an error.
      assert.equal(r.noble, 'noble');
      assert.equal(r.auto, 'noble');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('pqclean (optional native FIPS 204 backend)', () => {
    before(function () {
      const st = backendStatus('pqclean');
      if (st.available) return;
      const msg = `pqclean is unavailable (${st.detail})`;
      if (REQUIRE_TOOLS) assert.fail(`${msg}, and QNEXUS_REQUIRE_TOOLS=1 requires it`);
      console.warn(`\n  !!!!!!!! SKIPPED: ${msg}; run npm install to build it (CI sets QNEXUS_REQUIRE_TOOLS=1) !!!!!!!!\n`);
      this.skip();
    });

    it('is available, reports how it runs, and is cached per scheme', () => {
      assert.equal(backendAvailable('pqclean'), true);
      assert.match(backendStatus('pqclean').detail, /native addon|WebAssembly/);
      const b = getBackend('ml-dsa-65', 'pqclean');
      assert.equal(b.name, 'pqclean');
      assert.equal(b.scheme, 'ml-dsa-65');
      assert.equal(getBackend('ml-dsa-65', 'pqclean'), b);
      assert.notEqual(getBackend('ml-dsa-65', 'noble'), b);
    });

    for (const scheme of SCHEMES) {
      describe(scheme, () => {
        let noble: SignatureBackend;
        let pq: SignatureBackend;
        let both: SignatureBackend[];
        const msg = signingBytes('qn-test', 'tx', utf8(`cross-backend ${scheme}`));
        let kp: ReturnType<SignatureBackend['keygen']>;
        let other: ReturnType<SignatureBackend['keygen']>;
        let nobleSig: Uint8Array;
        let pqSig: Uint8Array;

        before(() => {
          noble = getBackend(scheme, 'noble');
          pq = getBackend(scheme, 'pqclean');
          both = [noble, pq];
          kp = noble.keygen(seedOf(21));
          other = noble.keygen(seedOf(22));
          nobleSig = noble.sign(kp.secretKey, msg);
          pqSig = pq.sign(kp.secretKey, msg);
        });

        it('same lengths; keygen(seed) gives identical key pairs on both backends', () => {
          assert.deepEqual(pq.lengths, noble.lengths);
          for (const n of [21, 22, 99]) {
            const a = noble.keygen(seedOf(n));
            const b = pq.keygen(seedOf(n));
            assert.equal(b.scheme, scheme);
            assert.ok(bytesEqual(a.publicKey, b.publicKey), `public key, seed ${n}`);
            assert.ok(bytesEqual(a.secretKey, b.secretKey), `secret key, seed ${n}`);
          }
          assert.throws(() => pq.keygen(new Uint8Array(31)), TypeError);
        });

        it('pqclean signs with noble secret keys: FIPS 204 lengths, hedged', () => {
          assert.equal(pqSig.length, noble.lengths.signature);
          assert.ok(pqSig instanceof Uint8Array);
          const again = pq.sign(kp.secretKey, msg);
          assert.ok(!bytesEqual(pqSig, again), 'hedged: two signatures differ');
          assert.equal(pq.verify(kp.publicKey, msg, again), true);
        });

        it('noble-signed verifies under pqclean, pqclean-signed verifies under noble', () => {
          assert.equal(pq.verify(kp.publicKey, msg, nobleSig), true);
          assert.equal(noble.verify(kp.publicKey, msg, pqSig), true);
          assert.equal(pq.verify(kp.publicKey, msg, pqSig), true);
          assert.equal(noble.verify(kp.publicKey, msg, nobleSig), true);
        });

        it('inputs that are views into larger buffers verify (offsets honoured)', () => {
          const wrap = (b: Uint8Array) => {
            const big = new Uint8Array(b.length + 13).fill(0xaa);
            big.set(b, 7);
            return big.subarray(7, 7 + b.length);
          };
          assert.equal(pq.verify(wrap(kp.publicKey), wrap(msg), wrap(nobleSig)), true);
          assert.ok(bytesEqual(pq.keygen(seedOf(21)).publicKey, kp.publicKey));
          assert.equal(noble.verify(kp.publicKey, msg, pq.sign(wrap(kp.secretKey), wrap(msg))), true);
        });

        it('wrong message or wrong key → false on both backends', () => {
          for (const b of both) {
            for (const sig of [nobleSig, pqSig]) {
              assert.equal(verifies(b, kp.publicKey, utf8('another message'), sig), false, b.name);
              assert.equal(verifies(b, kp.publicKey, flipBit(msg, 0), sig), false, b.name);
              assert.equal(verifies(b, kp.publicKey, new Uint8Array(0), sig), false, b.name);
              assert.equal(verifies(b, other.publicKey, msg, sig), false, b.name);
            }
          }
        });

        it('malformed keys and signatures → false, never a throw, on both backends', () => {
          const pkLen = kp.publicKey.length;
          const sigLen = nobleSig.length;
          const badKeys: [string, Uint8Array][] = [
            ['empty', new Uint8Array(0)],
            ['truncated', kp.publicKey.subarray(0, pkLen - 1)],
            ['one byte long', new Uint8Array([...kp.publicKey, 0])],
            ['half', kp.publicKey.subarray(0, pkLen >> 1)],
            ['all-zero', new Uint8Array(pkLen)],
            ['all-0xff', new Uint8Array(pkLen).fill(0xff)],
            ['bit-flipped first byte', flipBit(kp.publicKey, 0)],
            ['bit-flipped last byte', flipBit(kp.publicKey, pkLen - 1, 7)],
            ['other scheme length', new Uint8Array(pkLen === 1312 ? 1952 : 1312)],
          ];
          const badSigs: [string, Uint8Array][] = [
            ['empty', new Uint8Array(0)],
            ['one byte', new Uint8Array(1)],
            ['truncated', nobleSig.subarray(0, sigLen - 1)],
            ['half', nobleSig.subarray(0, sigLen >> 1)],
            ['one byte long', new Uint8Array([...nobleSig, 0])],
            ['double length', new Uint8Array(sigLen * 2)],
            ['all-zero', new Uint8Array(sigLen)],
            ['all-0xff', new Uint8Array(sigLen).fill(0xff)],
            ['bit-flipped first byte', flipBit(nobleSig, 0)],
            ['bit-flipped middle', flipBit(pqSig, sigLen >> 1, 3)],
            ['bit-flipped last byte', flipBit(pqSig, sigLen - 1, 7)],
            ['garbage', Uint8Array.from({ length: sigLen }, (_, i) => (i * 131 + 17) & 0xff)],
          ];
          for (const b of both) {
            for (const [what, pk] of badKeys) assert.equal(verifies(b, pk, msg, nobleSig), false, `${b.name}: ${what} public key`);
            for (const [what, sig] of badSigs) assert.equal(verifies(b, kp.publicKey, msg, sig), false, `${b.name}: ${what} signature`);
            assert.equal(verifies(b, new Uint8Array(0), new Uint8Array(0), new Uint8Array(0)), false, `${b.name}: all empty`);
          }
        });
      });
    }

    it('schemes do not cross-verify under pqclean', () => {
      const kp = getBackend('ml-dsa-44').keygen(seedOf(3));
      const s = getBackend('ml-dsa-44', 'pqclean').sign(kp.secretKey, msg0);
      assert.equal(getBackend('ml-dsa-65', 'pqclean').verify(kp.publicKey, msg0, s), false);
    });

    it('sign with a secret key of the wrong length throws TypeError (as a programming error)', () => {
      const pq = getBackend('ml-dsa-44', 'pqclean');
      assert.throws(() => pq.sign(new Uint8Array(10), msg0), TypeError);
    });
  });
});
