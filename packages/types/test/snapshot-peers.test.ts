// The committees' bound peers in the beacon's registry snapshot: validator address → peer id, signed with the rest.
import assert from 'node:assert/strict';
import { compareBytes, getBackend } from '@qnexus/crypto';
import {
  MAX_PEER_ID_BYTES,
  MAX_SNAPSHOT_PEERS,
  Writer,
  decodeRegistrySnapshot,
  encodeRegistrySnapshot,
  encodeRegistrySnapshotBody,
  registrySnapshotSigningBytes,
  type RegistrySnapshot,
  type SnapshotPeer,
} from '@qnexus/types';
import { CHAIN, addr, key, throwsCode, withTrailing } from './helpers.js';

const b44 = getBackend('ml-dsa-44');
const PEER_A = '12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf';
const PEER_B = '12D3KooWJWEKvSFbben74C7H4YtKjhPMTDxd7gP7zxWSUEeF27st';

/** Peers of validators n…, sorted by address as the encoder requires. */
function peers(...ns: number[]): SnapshotPeer[] {
  return ns.map((n, i) => ({ validator: addr(n), peerId: i % 2 ? PEER_B : PEER_A })).sort((a, b) => compareBytes(a.validator, b.validator));
}

function snapshot(p: SnapshotPeer[]): RegistrySnapshot {
  return {
    chainId: CHAIN,
    slot: 300,
    epoch: 9,
    validators: [],
    totals: { genesisStake: 1n, stakedIn: 2n, feesIn: 3n, minted: 4n, slashed: 5n, released: 6n, held: 7n },
    heads: [],
    peers: p,
  };
}

const wrap = (body: Uint8Array, sig = new Uint8Array(3).fill(9)) => new Writer().bytes(body).bytes(sig).finish();
const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
/** address, u32 length, id. */
const peerBytes = (id: string) => 20 + 4 + id.length;

describe('types: committee peers in registry snapshots', () => {
  it('round trip with no, one and many peers; canonical; each peer adds address, length and id after the heads', () => {
    const empty = encodeRegistrySnapshotBody(snapshot([]));
    for (const p of [[], peers(1), peers(1, 2, 3, 4, 5)]) {
      const s = { body: snapshot(p), signature: new Uint8Array(7).fill(1) };
      const e = encodeRegistrySnapshot(s);
      const d = decodeRegistrySnapshot(e);
      assert.deepEqual(d, s);
      assert.deepEqual(encodeRegistrySnapshot(d), e, 'canonical');
      assert.equal(encodeRegistrySnapshotBody(s.body).length, empty.length + p.reduce((n, x) => n + peerBytes(x.peerId), 0));
    }
    const longest = 'x'.repeat(MAX_PEER_ID_BYTES);
    assert.equal(decodeRegistrySnapshot(encodeRegistrySnapshot({ body: snapshot([{ validator: addr(1), peerId: longest }]), signature: new Uint8Array(0) })).body.peers[0]!.peerId, longest);
  });

  it('every peer field is signed', () => {
    const body = snapshot(peers(1, 2));
    const signature = b44.sign(key(9).secretKey, registrySnapshotSigningBytes(body));
    assert.ok(b44.verify(key(9).publicKey, registrySnapshotSigningBytes(body), signature));
    const [p0, p1] = body.peers as [SnapshotPeer, SnapshotPeer];
    const variants = [
      snapshot([p0]),
      snapshot([]),
      snapshot([p0, { ...p1, peerId: p1.peerId === PEER_A ? PEER_B : PEER_A }]),
      snapshot(peers(1, 3)),
    ];
    variants.forEach((v, i) => assert.equal(b44.verify(key(9).publicKey, registrySnapshotSigningBytes(v), signature), false, `variant ${i}`));
  });

  it('the encoder refuses peers out of address order, duplicates, empty or long ids and too many (RangeError)', () => {
    const [a, b] = peers(1, 2) as [SnapshotPeer, SnapshotPeer];
    assert.throws(() => encodeRegistrySnapshotBody(snapshot([b, a])), RangeError);
    assert.throws(() => encodeRegistrySnapshotBody(snapshot([a, { ...a, peerId: PEER_B }])), RangeError);
    assert.throws(() => encodeRegistrySnapshotBody(snapshot([{ ...a, peerId: '' }])), RangeError);
    assert.throws(() => encodeRegistrySnapshotBody(snapshot([{ ...a, peerId: 'x'.repeat(MAX_PEER_ID_BYTES + 1) }])), RangeError);
    const many = Array.from({ length: MAX_SNAPSHOT_PEERS + 1 }, (_, i) => {
      const validator = new Uint8Array(20);
      dv(validator).setUint32(16, i);
      return { validator, peerId: PEER_A };
    });
    assert.throws(() => encodeRegistrySnapshotBody(snapshot(many)), RangeError);
  });

  it('the decoder refuses non-canonical peers, oversize counts and ids, truncation and trailing bytes with MALFORMED', () => {
    const p = peers(1, 2);
    const body = encodeRegistrySnapshotBody(snapshot(p));
    const off = body.length - 4 - peerBytes(p[0]!.peerId) - peerBytes(p[1]!.peerId);
    assert.equal(dv(body).getUint32(off), 2);
    const second = off + 4 + peerBytes(p[0]!.peerId);
    // the second address made equal to the first (a duplicate), then smaller (out of order)
    const dup = body.slice();
    dup.set(p[0]!.validator, second);
    throwsCode(() => decodeRegistrySnapshot(wrap(dup)), 'MALFORMED', 'duplicate validator');
    const swapped = body.slice();
    swapped.set(new Uint8Array(20), second);
    throwsCode(() => decodeRegistrySnapshot(wrap(swapped)), 'MALFORMED', 'decreasing validator');
    // counts above the bound or beyond the input; an id length above the bound; an empty id
    const huge = body.slice();
    dv(huge).setUint32(off, MAX_SNAPSHOT_PEERS + 1);
    throwsCode(() => decodeRegistrySnapshot(wrap(huge)), 'MALFORMED', 'count above the bound');
    const more = body.slice();
    dv(more).setUint32(off, 3);
    throwsCode(() => decodeRegistrySnapshot(wrap(more)), 'MALFORMED', 'count beyond the input');
    const longId = body.slice();
    dv(longId).setUint32(off + 4 + 20, MAX_PEER_ID_BYTES + 1);
    throwsCode(() => decodeRegistrySnapshot(wrap(longId)), 'MALFORMED', 'id above the bound');
    const noId = encodeRegistrySnapshotBody(snapshot([]));
    const withEmpty = new Writer().u32(1).fixed(addr(1), 20).u32(0).finish();
    const bodyEmptyId = new Uint8Array([...noId.slice(0, noId.length - 4), ...withEmpty]);
    throwsCode(() => decodeRegistrySnapshot(wrap(bodyEmptyId)), 'MALFORMED', 'empty id');
    // the count cut off (a pre-peers body), a trailing byte, truncation anywhere in the peers
    throwsCode(() => decodeRegistrySnapshot(wrap(body.slice(0, off))), 'MALFORMED', 'no peers count');
    throwsCode(() => decodeRegistrySnapshot(wrap(withTrailing(body))), 'MALFORMED', 'trailing');
    for (let n = off; n < body.length; n += 7) throwsCode(() => decodeRegistrySnapshot(wrap(body.slice(0, n))), 'MALFORMED', `truncated at ${n}`);
    assert.deepEqual(decodeRegistrySnapshot(wrap(body)).body.peers, p);
  });
});
