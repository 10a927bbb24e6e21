import assert from 'node:assert/strict';
import {
  ADDRESS_BYTES,
  addressFromPublicKey,
  bytesEqual,
  compareBytes,
  concatBytes,
  formatAddress,
  fromHex,
  generateKeyPair,
  hashConcat,
  homeShard,
  isAddressString,
  isHex,
  parseAddress,
  sha256,
  toHex,
  utf8,
} from '@qnexus/crypto';

describe('crypto: addresses', () => {
  it('address = first 20 bytes of SHA-256(public key)', () => {
    const kp = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(1));
    const a = addressFromPublicKey(kp.publicKey);
    assert.equal(a.length, ADDRESS_BYTES);
    assert.deepEqual(a, sha256(kp.publicKey).subarray(0, 20));
  });

  it('format/parse round trip', () => {
    for (let i = 0; i < 50; i++) {
      const a = sha256(utf8(`addr-${i}`)).slice(0, 20);
      const s = formatAddress(a);
      assert.match(s, /^qn[0-9a-f]{40}$/);
      assert.equal(s.length, 42);
      assert.ok(isAddressString(s));
      assert.deepEqual(parseAddress(s), a);
      assert.equal(formatAddress(parseAddress(s)), s);
    }
  });

  it('formatAddress rejects the wrong length', () => {
    assert.throws(() => formatAddress(new Uint8Array(19)), TypeError);
    assert.throws(() => formatAddress(new Uint8Array(21)), TypeError);
  });

  it('parseAddress rejects uppercase, short, long, missing/wrong prefix, non-hex', () => {
    const good = 'qn' + 'ab'.repeat(20);
    assert.doesNotThrow(() => parseAddress(good));
    const bad = [
      'qn' + 'AB'.repeat(20), // uppercase hex
      'QN' + 'ab'.repeat(20), // uppercase prefix
      'qn' + 'Ab' + 'ab'.repeat(19),
      'qn' + 'ab'.repeat(19), // short
      'qn' + 'ab'.repeat(19) + 'a', // odd
      'qn' + 'ab'.repeat(21), // long
      'ab'.repeat(21), // no prefix, same length
      'ab'.repeat(20), // no prefix
      '0x' + 'ab'.repeat(20),
      'qx' + 'ab'.repeat(20),
      'qn' + 'gg'.repeat(20),
      ' ' + good,
      good + '\n',
      '',
    ];
    for (const s of bad) {
      assert.equal(isAddressString(s), false, JSON.stringify(s));
      assert.throws(() => parseAddress(s), TypeError, JSON.stringify(s));
    }
  });

  it('homeShard is stable, in range and derived from the first two bytes', () => {
    const counts = new Map<number, number>();
    for (let i = 0; i < 400; i++) {
      const a = sha256(utf8(`shard-${i}`)).slice(0, 20);
      for (const n of [1, 2, 3, 4, 7, 16, 64]) {
        const s = homeShard(a, n);
        assert.ok(Number.isInteger(s) && s >= 0 && s < n, `shard ${s} of ${n}`);
        assert.equal(homeShard(a.slice(), n), s, 'stable');
        assert.equal(s, ((a[0]! << 8) | a[1]!) % n);
      }
      const s4 = homeShard(a, 4);
      counts.set(s4, (counts.get(s4) ?? 0) + 1);
      // Only the first two bytes matter.
      const b = a.slice();
      b[19] ^= 0xff;
      assert.equal(homeShard(b, 4), s4);
    }
    assert.equal(counts.size, 4, 'every shard gets some addresses');
    assert.equal(homeShard(new Uint8Array(20).fill(0xff), 1), 0);
    assert.equal(homeShard(new Uint8Array(20).fill(0xff), 0), 0);
    assert.equal(homeShard(new Uint8Array([0x01, 0x00, ...new Uint8Array(18)]), 7), 256 % 7);
  });
});

describe('crypto: bytes and hashes', () => {
  it('hex round trip, lowercase output, 0x accepted, bad hex rejected', () => {
    const b = new Uint8Array([0, 1, 0xab, 0xff]);
    assert.equal(toHex(b), '0001abff');
    assert.deepEqual(fromHex('0001abff'), b);
    assert.deepEqual(fromHex('0x0001ABFF'), b);
    assert.throws(() => fromHex('abc'), TypeError);
    assert.throws(() => fromHex('zz'), TypeError);
    assert.equal(isHex('abcd', 2), true);
    assert.equal(isHex('abcd', 3), false);
    assert.equal(isHex('abc'), false);
  });

  it('toHex respects subarray offsets', () => {
    const b = new Uint8Array([1, 2, 3, 4, 5]);
    assert.equal(toHex(b.subarray(1, 3)), '0203');
  });

  it('compareBytes is lexicographic, shorter prefix first', () => {
    assert.ok(compareBytes(new Uint8Array([1, 2]), new Uint8Array([1, 3])) < 0);
    assert.ok(compareBytes(new Uint8Array([2]), new Uint8Array([1, 9])) > 0);
    assert.ok(compareBytes(new Uint8Array([1]), new Uint8Array([1, 0])) < 0);
    assert.equal(compareBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2])), 0);
    assert.equal(bytesEqual(new Uint8Array([1]), new Uint8Array([1, 0])), false);
  });

  it('sha256 known answer and hashConcat = sha256(concat)', () => {
    assert.equal(toHex(sha256(utf8('abc'))), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const a = utf8('foo');
    const b = utf8('bar');
    assert.deepEqual(hashConcat(a, b), sha256(concatBytes(a, b)));
  });
});
