// The shard heads in the beacon's registry snapshot: every shard's newest certified block, signed with the rest.
import assert from 'node:assert/strict';
import { getBackend } from '@qnexus/crypto';
import {
  MAX_SNAPSHOT_HEADS,
  Writer,
  decodeRegistrySnapshot,
  encodeRegistrySnapshot,
  encodeRegistrySnapshotBody,
  registrySnapshotSigningBytes,
  type RegistrySnapshot,
  type ShardHead,
} from '@qnexus/types';
import { CHAIN, hash, key, throwsCode, withTrailing } from './helpers.js';

const b44 = getBackend('ml-dsa-44');
/** shard u32, height u64, block hash 32, slot u64, round u64. */
const HEAD_BYTES = 4 + 8 + 32 + 8 + 8;

function head(shard: number, over: Partial<ShardHead> = {}): ShardHead {
  return { shard, height: 100 + shard, blockHash: hash(`block-${shard}`), slot: 200 + shard, round: 201 + shard, ...over };
}

function snapshot(heads: ShardHead[]): RegistrySnapshot {
  return {
    chainId: CHAIN,
    slot: 300,
    epoch: 9,
    validators: [],
    totals: { genesisStake: 1n, stakedIn: 2n, feesIn: 3n, minted: 4n, slashed: 5n, released: 6n, held: 7n },
    heads,
    peers: [],
  };
}

const wrap = (body: Uint8Array, sig = new Uint8Array(3).fill(9)) => new Writer().bytes(body).bytes(sig).finish();

describe('types: shard heads in registry snapshots', () => {
  it('round trip with no, one and many heads; each head adds its fixed size after the totals', () => {
    const empty = encodeRegistrySnapshotBody(snapshot([]));
    for (const heads of [[], [head(1)], [head(0), head(1), head(5)], Array.from({ length: MAX_SNAPSHOT_HEADS }, (_, k) => head(k))]) {
      const s = { body: snapshot(heads), signature: new Uint8Array(7).fill(1) };
      const e = encodeRegistrySnapshot(s);
      const d = decodeRegistrySnapshot(e);
      assert.deepEqual(d, s);
      assert.deepEqual(encodeRegistrySnapshot(d), e, 'canonical');
      assert.equal(encodeRegistrySnapshotBody(s.body).length, empty.length + heads.length * HEAD_BYTES);
    }
    // extremes survive
    const max = head(MAX_SNAPSHOT_HEADS - 1, { height: Number.MAX_SAFE_INTEGER, slot: Number.MAX_SAFE_INTEGER, round: 0 });
    assert.deepEqual(decodeRegistrySnapshot(encodeRegistrySnapshot({ body: snapshot([max]), signature: new Uint8Array(0) })).body.heads, [max]);
  });

  it('every head field is signed', () => {
    const body = snapshot([head(0), head(1)]);
    const signature = b44.sign(key(9).secretKey, registrySnapshotSigningBytes(body));
    assert.ok(b44.verify(key(9).publicKey, registrySnapshotSigningBytes(body), signature));
    const h1 = head(1);
    const variants = [
      snapshot([head(0)]),
      snapshot([head(0), head(2)]),
      snapshot([head(0), { ...h1, height: h1.height + 1 }]),
      snapshot([head(0), { ...h1, blockHash: hash('other') }]),
      snapshot([head(0), { ...h1, slot: h1.slot + 1 }]),
      snapshot([head(0), { ...h1, round: h1.round + 1 }]),
    ];
    variants.forEach((v, i) => assert.equal(b44.verify(key(9).publicKey, registrySnapshotSigningBytes(v), signature), false, `variant ${i}`));
  });

  it('the encoder refuses heads out of shard order, duplicates and too many (RangeError)', () => {
    assert.throws(() => encodeRegistrySnapshotBody(snapshot([head(1), head(0)])), RangeError);
    assert.throws(() => encodeRegistrySnapshotBody(snapshot([head(1), head(1)])), RangeError);
    assert.throws(() => encodeRegistrySnapshotBody(snapshot(Array.from({ length: MAX_SNAPSHOT_HEADS + 1 }, (_, k) => head(k)))), RangeError);
    assert.throws(() => encodeRegistrySnapshotBody(snapshot([head(0, { blockHash: new Uint8Array(31) })])), RangeError);
  });

  it('the decoder refuses non-canonical heads, oversize counts, truncation and trailing bytes with MALFORMED', () => {
    const body = encodeRegistrySnapshotBody(snapshot([head(0), head(1)]));
    // The heads are followed by the peers' count (none here; see snapshot-peers.test.ts).
    const headsOff = body.length - 4 - 2 * HEAD_BYTES - 4;
    const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
    assert.equal(dv(body).getUint32(headsOff), 2);
    // the second head's shard rewritten to 0 (a duplicate); the first's to 7 (out of order)
    const dup = body.slice();
    dv(dup).setUint32(headsOff + 4 + HEAD_BYTES, 0);
    throwsCode(() => decodeRegistrySnapshot(wrap(dup)), 'MALFORMED', 'duplicate shard');
    const swapped = body.slice();
    dv(swapped).setUint32(headsOff + 4, 7);
    throwsCode(() => decodeRegistrySnapshot(wrap(swapped)), 'MALFORMED', 'decreasing shard');
    // count above the bound or beyond the input
    const huge = body.slice();
    dv(huge).setUint32(headsOff, MAX_SNAPSHOT_HEADS + 1);
    throwsCode(() => decodeRegistrySnapshot(wrap(huge)), 'MALFORMED', 'count above the bound');
    const more = body.slice();
    dv(more).setUint32(headsOff, 3);
    throwsCode(() => decodeRegistrySnapshot(wrap(more)), 'MALFORMED', 'count beyond the input');
    // a height beyond a safe integer
    const hi = body.slice();
    dv(hi).setBigUint64(headsOff + 4 + 4, 2n ** 53n);
    throwsCode(() => decodeRegistrySnapshot(wrap(hi)), 'MALFORMED', 'height beyond 2^53');
    // the count cut off (a pre-heads body) and a trailing byte after the heads
    throwsCode(() => decodeRegistrySnapshot(wrap(body.slice(0, headsOff))), 'MALFORMED', 'no heads count');
    throwsCode(() => decodeRegistrySnapshot(wrap(withTrailing(body))), 'MALFORMED', 'trailing');
    for (let n = headsOff; n < body.length; n += 5) throwsCode(() => decodeRegistrySnapshot(wrap(body.slice(0, n))), 'MALFORMED', `truncated at ${n}`);
    assert.equal(decodeRegistrySnapshot(wrap(body)).body.heads.length, 2);
  });
});
