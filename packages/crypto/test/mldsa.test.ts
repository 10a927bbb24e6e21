import assert from 'node:assert/strict';
import {
  SCHEMES,
  bytesEqual,
  domainTag,
  generateKeyPair,
  getBackend,
  schemeLengths,
  signingBytes,
  utf8,
  type KeyPair,
  type SchemeName,
} from '@qnexus/crypto';

function seedOf(n: number): Uint8Array {
  return new Uint8Array(32).fill(n);
}

function flipBit(b: Uint8Array, byteIndex: number, bit = 0): Uint8Array {
  const c = b.slice();
  c[byteIndex] = c[byteIndex]! ^ (1 << bit);
  return c;
}

describe('crypto: ML-DSA backend', () => {
  const expectedLengths: Record<SchemeName, { publicKey: number; secretKey: number; signature: number; seed: number }> = {
    'ml-dsa-44': { publicKey: 1312, secretKey: 2560, signature: 2420, seed: 32 },
    'ml-dsa-65': { publicKey: 1952, secretKey: 4032, signature: 3309, seed: 32 },
    'ml-dsa-87': { publicKey: 2592, secretKey: 4896, signature: 4627, seed: 32 },
  };

  for (const scheme of SCHEMES) {
    describe(scheme, () => {
      const backend = getBackend(scheme);
      let kp: KeyPair;
      let other: KeyPair;
      const msg = signingBytes('qn-test', 'tx', utf8(`hello ${scheme}`));
      let sig: Uint8Array;

      before(() => {
        kp = backend.keygen(seedOf(1));
        other = backend.keygen(seedOf(2));
        sig = backend.sign(kp.secretKey, msg);
      });

      it('has FIPS 204 lengths', () => {
        assert.deepEqual(schemeLengths(scheme), expectedLengths[scheme]);
        assert.deepEqual(backend.lengths, expectedLengths[scheme]);
        assert.equal(kp.scheme, scheme);
        assert.equal(kp.publicKey.length, expectedLengths[scheme].publicKey);
        assert.equal(kp.secretKey.length, expectedLengths[scheme].secretKey);
        assert.equal(sig.length, expectedLengths[scheme].signature);
      });

      it('sign/verify round trip', () => {
        assert.equal(backend.verify(kp.publicKey, msg, sig), true);
      });

      it('rejects a flipped bit in the message, signature or public key', () => {
        assert.equal(backend.verify(kp.publicKey, flipBit(msg, 0), sig), false);
        assert.equal(backend.verify(kp.publicKey, flipBit(msg, msg.length - 1, 7), sig), false);
        assert.equal(backend.verify(kp.publicKey, msg, flipBit(sig, 0)), false);
        assert.equal(backend.verify(kp.publicKey, msg, flipBit(sig, Math.floor(sig.length / 2), 3)), false);
        assert.equal(backend.verify(flipBit(kp.publicKey, 40), msg, sig), false);
        assert.equal(backend.verify(flipBit(kp.publicKey, kp.publicKey.length - 1, 5), msg, sig), false);
      });

      it('rejects a signature under a different key', () => {
        assert.equal(backend.verify(other.publicKey, msg, sig), false);
      });

      it('returns false (never throws) for wrong-length keys and signatures', () => {
        const cases: [Uint8Array, Uint8Array][] = [
          [kp.publicKey.subarray(0, kp.publicKey.length - 1), sig],
          [new Uint8Array([...kp.publicKey, 0]), sig],
          [new Uint8Array(0), sig],
          [kp.publicKey, sig.subarray(0, sig.length - 1)],
          [kp.publicKey, new Uint8Array([...sig, 0])],
          [kp.publicKey, new Uint8Array(0)],
          [new Uint8Array(0), new Uint8Array(0)],
        ];
        for (const [pk, s] of cases) {
          let r: boolean | undefined;
          assert.doesNotThrow(() => {
            r = backend.verify(pk, msg, s);
          });
          assert.equal(r, false, `pk ${pk.length} B, sig ${s.length} B`);
        }
      });

      it('returns false for an all-zero / all-0xff signature of the right length', () => {
        const l = backend.lengths.signature;
        assert.equal(backend.verify(kp.publicKey, msg, new Uint8Array(l)), false);
        assert.equal(backend.verify(kp.publicKey, msg, new Uint8Array(l).fill(0xff)), false);
      });

      it('keygen rejects a seed of the wrong length', () => {
        assert.throws(() => backend.keygen(new Uint8Array(31)), TypeError);
        assert.throws(() => backend.keygen(new Uint8Array(33)), TypeError);
      });
    });
  }

  it('keygen from the same seed is deterministic; different seeds differ', () => {
    for (const scheme of SCHEMES) {
      const a = generateKeyPair(scheme, seedOf(7));
      const b = generateKeyPair(scheme, seedOf(7));
      const c = generateKeyPair(scheme, seedOf(8));
      assert.ok(bytesEqual(a.publicKey, b.publicKey), scheme);
      assert.ok(bytesEqual(a.secretKey, b.secretKey), scheme);
      assert.ok(!bytesEqual(a.publicKey, c.publicKey), scheme);
    }
  });

  it('generateKeyPair defaults to ml-dsa-44 with a random seed', () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    assert.equal(a.scheme, 'ml-dsa-44');
    assert.equal(a.publicKey.length, 1312);
    assert.ok(!bytesEqual(a.publicKey, b.publicKey));
  });

  it('schemes do not cross-verify', () => {
    const b44 = getBackend('ml-dsa-44');
    const b65 = getBackend('ml-dsa-65');
    const kp = b44.keygen(seedOf(3));
    const m = utf8('cross');
    const s = b44.sign(kp.secretKey, m);
    assert.equal(b65.verify(kp.publicKey, m, s), false);
  });

  it('hedged signing: two signatures of one message differ and both verify', () => {
    const b = getBackend('ml-dsa-44');
    const kp = b.keygen(seedOf(4));
    const m = signingBytes('qn-test', 'vote', utf8('same message'));
    const s1 = b.sign(kp.secretKey, m);
    const s2 = b.sign(kp.secretKey, m);
    assert.ok(!bytesEqual(s1, s2), 'hedged signatures should differ');
    assert.equal(b.verify(kp.publicKey, m, s1), true);
    assert.equal(b.verify(kp.publicKey, m, s2), true);
  });

  it('getBackend caches one instance per scheme', () => {
    assert.equal(getBackend('ml-dsa-65'), getBackend('ml-dsa-65'));
    assert.notEqual(getBackend('ml-dsa-44'), getBackend('ml-dsa-65'));
  });
});

describe('crypto: domain separation', () => {
  const body = utf8('transfer 10 to bob');

  it('signingBytes = u16be(len(tag)) || "qnexus/<chain>/<kind>" || body', () => {
    const sb = signingBytes('chain-a', 'tx', body);
    const tag = utf8('qnexus/chain-a/tx');
    assert.equal(sb[0], 0);
    assert.equal(sb[1], tag.length);
    assert.deepEqual(sb.subarray(2, 2 + tag.length), tag);
    assert.deepEqual(sb.subarray(2 + tag.length), body);
    assert.deepEqual(domainTag('chain-a', 'tx'), sb.subarray(0, 2 + tag.length));
  });

  it('domainTag rejects invalid chain ids', () => {
    for (const bad of ['', 'Chain', '-abc', 'a b', 'a/b', 'x'.repeat(65), 'ünï']) {
      assert.throws(() => domainTag(bad, 'tx'), TypeError, JSON.stringify(bad));
    }
    assert.doesNotThrow(() => domainTag('x'.repeat(64), 'tx'));
    assert.doesNotThrow(() => domainTag('0', 'block'));
  });

  it('no domain tag is a prefix of another (length prefix)', () => {
    const a = domainTag('ab', 'tx');
    const b = domainTag('ab-c', 'tx');
    assert.notDeepEqual(b.subarray(0, a.length), a);
  });

  it("every signed kind, including 'stake', has its own tag", () => {
    const kinds = ['tx', 'block', 'proposal', 'vote', 'beacon', 'binding', 'stake'] as const;
    const tags = kinds.map((k) => Buffer.from(domainTag('chain-a', k)).toString('hex'));
    assert.equal(new Set(tags).size, kinds.length);
    const stake = domainTag('chain-a', 'stake');
    const text = utf8('qnexus/chain-a/stake');
    assert.deepEqual([stake[0], stake[1]], [0, text.length]);
    assert.deepEqual(stake.subarray(2), text);
    assert.deepEqual(signingBytes('chain-a', 'stake', body).subarray(stake.length), body);
  });

  it("a validator's stake consent does not verify under any other kind, or another chain", () => {
    const b = getBackend('ml-dsa-44');
    const kp = b.keygen(seedOf(11));
    const sig = b.sign(kp.secretKey, signingBytes('chain-a', 'stake', body));
    assert.equal(b.verify(kp.publicKey, signingBytes('chain-a', 'stake', body), sig), true);
    assert.equal(b.verify(kp.publicKey, signingBytes('chain-b', 'stake', body), sig), false);
    for (const k of ['tx', 'block', 'proposal', 'vote', 'beacon', 'binding'] as const) {
      assert.equal(b.verify(kp.publicKey, signingBytes('chain-a', k, body), sig), false, k);
    }
    // and a transaction signature is not a stake consent
    const txSig = b.sign(kp.secretKey, signingBytes('chain-a', 'tx', body));
    assert.equal(b.verify(kp.publicKey, signingBytes('chain-a', 'stake', body), txSig), false);
  });

  for (const scheme of ['ml-dsa-44', 'ml-dsa-87'] as const) {
    it(`${scheme}: a tx signature for chain A does not verify for chain B or kind vote/block/proposal`, () => {
      const b = getBackend(scheme);
      const kp = b.keygen(seedOf(9));
      const sig = b.sign(kp.secretKey, signingBytes('chain-a', 'tx', body));
      assert.equal(b.verify(kp.publicKey, signingBytes('chain-a', 'tx', body), sig), true);
      assert.equal(b.verify(kp.publicKey, signingBytes('chain-b', 'tx', body), sig), false);
      assert.equal(b.verify(kp.publicKey, signingBytes('chain-a', 'vote', body), sig), false);
      assert.equal(b.verify(kp.publicKey, signingBytes('chain-a', 'block', body), sig), false);
      assert.equal(b.verify(kp.publicKey, signingBytes('chain-a', 'proposal', body), sig), false);
      assert.equal(b.verify(kp.publicKey, body, sig), false, 'raw body without tag');
    });
  }
});

describe('crypto: sha256', () => {
  it('matches @noble/hashes for empty, short and multi-block inputs, and hashConcat equals hashing the concatenation', async () => {
    const { sha256: noble } = await import('@noble/hashes/sha2.js');
    const { sha256, hashConcat, concatBytes } = await import('@qnexus/crypto');
    for (const n of [0, 1, 55, 56, 64, 1000, 100_000]) {
      const data = new Uint8Array(n).map((_, i) => (i * 31 + 7) & 0xff);
      assert.deepEqual(sha256(data), noble(data));
      const a = data.subarray(0, n >> 1);
      const b = data.subarray(n >> 1);
      assert.deepEqual(hashConcat(a, b), noble(concatBytes(a, b)));
      assert.deepEqual(hashConcat(b, a, data), noble(concatBytes(b, a, data)));
      // digests own their 32 bytes: never views into a shared pool a later digest could reuse
      assert.equal(sha256(data).buffer.byteLength, 32);
      assert.equal(hashConcat(a, b).buffer.byteLength, 32);
    }
  });
});
