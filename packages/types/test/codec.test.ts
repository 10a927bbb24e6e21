import assert from 'node:assert/strict';
import { ERROR_HTTP_STATUS, QnexusError, Reader, Writer, decodeWith, isErrorCode } from '@qnexus/types';
import { throwsCode } from './helpers.js';

describe('types: Writer/Reader', () => {
  it('encodes big-endian fixed-width integers and u32-prefixed bytes/strings', () => {
    const b = new Writer(1)
      .u8(0xab)
      .u32(0x01020304)
      .u64(0x0102030405060708n)
      .u64(5)
      .fixed(new Uint8Array([9, 9]), 2)
      .bytes(new Uint8Array([7]))
      .string('hé')
      .finish();
    assert.deepEqual(
      [...b],
      [0xab, 1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 5, 9, 9, 0, 0, 0, 1, 7, 0, 0, 0, 3, 0x68, 0xc3, 0xa9],
    );
    const r = new Reader(b);
    assert.equal(r.u8(), 0xab);
    assert.equal(r.u32(), 0x01020304);
    assert.equal(r.u64(), 0x0102030405060708n);
    assert.equal(r.u64n(), 5);
    assert.deepEqual(r.fixed(2), new Uint8Array([9, 9]));
    assert.deepEqual(r.bytes(1), new Uint8Array([7]));
    assert.equal(r.string(3), 'hé');
    assert.equal(r.remaining, 0);
    assert.doesNotThrow(() => r.end());
  });

  it('grows its buffer beyond the initial capacity', () => {
    const big = new Uint8Array(10_000).map((_, i) => i & 0xff);
    const out = new Writer(1).bytes(big).u8(1).finish();
    assert.equal(out.length, 10_005);
    assert.deepEqual(new Reader(out).bytes(10_000), big);
  });

  it('Writer rejects out-of-range values', () => {
    assert.throws(() => new Writer().u8(256), RangeError);
    assert.throws(() => new Writer().u8(-1), RangeError);
    assert.throws(() => new Writer().u8(1.5), RangeError);
    assert.throws(() => new Writer().u32(2 ** 32), RangeError);
    assert.throws(() => new Writer().u64(-1n), RangeError);
    assert.throws(() => new Writer().u64(2n ** 64n), RangeError);
    assert.throws(() => new Writer().u64(2 ** 53), RangeError);
    assert.throws(() => new Writer().fixed(new Uint8Array(3), 4), RangeError);
    assert.doesNotThrow(() => new Writer().u64(2n ** 64n - 1n));
  });

  it('Reader rejects truncation, oversize lengths/counts, bad UTF-8, unsafe u64n, trailing bytes', () => {
    throwsCode(() => new Reader(new Uint8Array(3)).u32(), 'MALFORMED');
    throwsCode(() => new Reader(new Uint8Array(7)).u64(), 'MALFORMED');
    throwsCode(() => new Reader(new Uint8Array(0)).u8(), 'MALFORMED');
    throwsCode(() => new Reader(new Writer().u32(5).finish()).bytes(4), 'MALFORMED'); // over limit
    throwsCode(() => new Reader(new Writer().u32(5).u8(1).finish()).bytes(10), 'MALFORMED'); // truncated
    throwsCode(() => new Reader(new Writer().u32(0xffffffff).finish()).bytes(1 << 20), 'MALFORMED');
    throwsCode(() => new Reader(new Writer().u32(11).finish()).count(10), 'MALFORMED');
    assert.equal(new Reader(new Writer().u32(10).finish()).count(10), 10);
    throwsCode(() => new Reader(new Writer().bytes(new Uint8Array([0xff, 0xfe])).finish()).string(10), 'MALFORMED');
    throwsCode(() => new Reader(new Writer().u64(2n ** 53n).finish()).u64n(), 'MALFORMED');
    assert.equal(new Reader(new Writer().u64(2 ** 53 - 1).finish()).u64n(), 2 ** 53 - 1);
    const r = new Reader(new Uint8Array(2));
    r.u8();
    throwsCode(() => r.end(), 'MALFORMED');
  });

  it('Reader honours subarray offsets', () => {
    const backing = new Uint8Array([0xee, 0, 0, 0, 7, 0xee]);
    const r = new Reader(backing.subarray(1, 5));
    assert.equal(r.u32(), 7);
    r.end();
  });

  it('decoded fields are copies even when the input is a Buffer', () => {
    const wire = Buffer.from(new Writer().fixed(new Uint8Array(4).fill(7), 4).bytes(new Uint8Array([9])).finish());
    const r = new Reader(wire);
    const a = r.fixed(4);
    const b = r.bytes(1);
    wire.fill(0);
    assert.deepEqual([...a], [7, 7, 7, 7]);
    assert.deepEqual([...b], [9]);
  });

  it('decodeWith rejects trailing bytes and wraps foreign errors as MALFORMED', () => {
    throwsCode(() => decodeWith(new Uint8Array([1, 2]), 'x', (r) => r.u8()), 'MALFORMED');
    assert.equal(decodeWith(new Uint8Array([1]), 'x', (r) => r.u8()), 1);
    throwsCode(
      () =>
        decodeWith(new Uint8Array(0), 'x', () => {
          throw new TypeError('boom');
        }),
      'MALFORMED',
    );
    // QnexusErrors pass through with their own code.
    throwsCode(
      () =>
        decodeWith(new Uint8Array(0), 'x', () => {
          throw new QnexusError('TX_UNKNOWN_KIND', 'k');
        }),
      'TX_UNKNOWN_KIND',
    );
  });
});

describe('types: errors', () => {
  it('QnexusError carries a stable code, HTTP status and JSON form', () => {
    const e = new QnexusError('TX_NONCE_STALE', 'old');
    assert.ok(e instanceof Error);
    assert.equal(e.name, 'QnexusError');
    assert.equal(e.httpStatus, 409);
    assert.deepEqual(e.toJSON(), { error: { code: 'TX_NONCE_STALE', message: 'old' } });
    assert.equal(new QnexusError('TX_TOO_LARGE', '').httpStatus, 413);
    assert.equal(new QnexusError('UNAVAILABLE', '').httpStatus, 503);
    assert.equal(new QnexusError('KEYSTORE_BAD_PASSPHRASE', '').httpStatus, 401);
  });

  it('isErrorCode knows exactly the table keys', () => {
    for (const k of Object.keys(ERROR_HTTP_STATUS)) assert.ok(isErrorCode(k));
    assert.equal(isErrorCode('toString'), false);
    assert.equal(isErrorCode('NOPE'), false);
    assert.equal(isErrorCode('__proto__'), false);
  });
});
