// The state layer's staking primitives that the node and the beacon share: the ids of the records the staking
// module and the beacon make (fees, releases), equivocation evidence and epoch committees and announcements.
// (The staking module itself, run by the app, is tested in packages/modules/staking/test.)
import assert from 'node:assert/strict';
import { addressFromPublicKey, concatBytes, formatAddress, generateKeyPair, getBackend, sha256, toHex, utf8, type KeyPair } from '@qnexus/crypto';
import { epochSeed } from '@qnexus/consensus';
import {
  decodeEpochAnnouncement,
  encodeEpochAnnouncement,
  epochAnnouncementSigningBytes,
  genesisHash,
  makeGenesis,
  voteSigningBytes,
  type EpochAnnouncement,
  type Genesis,
  type SignedEpochAnnouncement,
  type SignedVote,
  type VoteBody,
  type VoteEvidence,
} from '@qnexus/types';
import {
  checkEpochAnnouncement,
  epochAnnouncementOf,
  epochCommittees,
  epochCommitteesFromAnnouncement,
  feesRecordId,
  genesisEpoch,
  releaseId,
  verifyVoteEvidence,
  type EpochCommittees,
} from '@qnexus/state';
import { throwsCode } from './helpers.js';

// ------------------------------------------------------------------ fixtures

const CHAIN = 'qn-staking-test';
const L = 8; // epoch length
const b44 = getBackend('ml-dsa-44');
const PK44 = 1312;

const gen = (label: string) => generateKeyPair('ml-dsa-44', sha256(utf8(`staking-state-${label}`)));
const addrOf = (k: KeyPair) => addressFromPublicKey(k.publicKey);
const beacon = gen('beacon');
const impostor = gen('impostor');
const validators = [gen('val-0'), gen('val-1'), gen('val-2'), gen('val-3')];
const newcomer = gen('newcomer');

const G: Genesis = makeGenesis({
  chainId: CHAIN,
  scheme: 'ml-dsa-44',
  genesisTime: 0,
  slotMs: 1000,
  epochLength: L,
  shardCount: 2,
  minFee: 5n,
  maxBlockTxs: 1000,
  xferTimeoutSlots: 10,
  beacon: { publicKey: beacon.publicKey, peerId: '12D3KooWJWEKvSFbben74C7H4YtKjhPMTDxd7gP7zxWSUEeF27st' },
  accounts: [],
  validators: validators.map((v, i) => ({ address: formatAddress(addrOf(v)), publicKey: v.publicKey, stake: BigInt(1000 + 100 * i) })),
});
const GH = genesisHash(G);
const [V0, V1] = validators.map(addrOf) as [Uint8Array, Uint8Array];
const sortedHex = (xs: Uint8Array[]) => xs.map((x) => toHex(x)).sort();

function u32be(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}
function u64be(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

// ------------------------------------------------------------------ tests

describe('staking: record ids', () => {
  it('feesRecordId and releaseId are the documented hashes, distinct per input', () => {
    assert.deepEqual(feesRecordId(CHAIN, 1, 7, V0), sha256(concatBytes(utf8(`qnexus/${CHAIN}/fees`), u32be(1), u64be(7), V0)));
    assert.deepEqual(releaseId(CHAIN, V0, 3), sha256(concatBytes(utf8(`qnexus/${CHAIN}/release`), V0, u32be(3))));
    const ids = [
      feesRecordId(CHAIN, 0, 0, V0),
      feesRecordId(CHAIN, 1, 0, V0),
      feesRecordId(CHAIN, 0, 1, V0),
      feesRecordId(CHAIN, 0, 0, V1),
      feesRecordId('qn-other', 0, 0, V0),
      releaseId(CHAIN, V0, 0),
      releaseId(CHAIN, V0, 1),
      releaseId(CHAIN, V1, 0),
      releaseId('qn-other', V0, 0),
    ];
    assert.equal(new Set(ids.map((x) => toHex(x))).size, ids.length);
  });
});

describe('staking: equivocation evidence (verifyVoteEvidence)', () => {
  const key = validators[2]!;
  const other = validators[3]!;
  const verify = (pk: Uint8Array, msg: Uint8Array, sig: Uint8Array) => b44.verify(pk, msg, sig);
  const h1 = sha256(utf8('block-1'));
  const h2 = sha256(utf8('block-2'));
  const body = (o: Partial<VoteBody> = {}): VoteBody => ({ chainId: CHAIN, shard: 1, height: 9, round: 17, step: 'precommit', blockHash: h1, validator: addrOf(key), ...o });
  const signed = (b: VoteBody, k: KeyPair = key): SignedVote => ({ body: b, signature: b44.sign(k.secretKey, voteSigningBytes(b)) });
  const ev = (a: SignedVote, b: SignedVote): VoteEvidence => ({ first: a, second: b });
  const v1 = signed(body());
  const v2 = signed(body({ blockHash: h2 }));

  it('accepts two validly signed conflicting votes (block vs block, block vs nil, both steps)', () => {
    assert.doesNotThrow(() => verifyVoteEvidence(ev(v1, v2), CHAIN, key.publicKey, verify));
    assert.doesNotThrow(() => verifyVoteEvidence(ev(v2, v1), CHAIN, key.publicKey, verify));
    assert.doesNotThrow(() => verifyVoteEvidence(ev(v1, signed(body({ blockHash: null }))), CHAIN, key.publicKey, verify));
    assert.doesNotThrow(() => verifyVoteEvidence(ev(signed(body({ step: 'prevote', blockHash: null })), signed(body({ step: 'prevote' }))), CHAIN, key.publicKey, verify));
  });

  const rejects: [string, () => [VoteEvidence, string, Uint8Array]][] = [
    ['the same block twice', () => [ev(v1, signed(body())), CHAIN, key.publicKey]],
    ['nil twice', () => [ev(signed(body({ blockHash: null })), signed(body({ blockHash: null }))), CHAIN, key.publicKey]],
    ['different heights', () => [ev(v1, signed(body({ blockHash: h2, height: 10 }))), CHAIN, key.publicKey]],
    ['different rounds', () => [ev(v1, signed(body({ blockHash: h2, round: 18 }))), CHAIN, key.publicKey]],
    ['different steps', () => [ev(v1, signed(body({ blockHash: h2, step: 'prevote' }))), CHAIN, key.publicKey]],
    ['different shards', () => [ev(v1, signed(body({ blockHash: h2, shard: 0 }))), CHAIN, key.publicKey]],
    ['another chain (both votes)', () => [ev(signed(body({ chainId: 'qn-other' })), signed(body({ chainId: 'qn-other', blockHash: h2 }))), CHAIN, key.publicKey]],
    ['another chain (one vote)', () => [ev(v1, signed(body({ chainId: 'qn-other', blockHash: h2 }))), CHAIN, key.publicKey]],
    ['checked for another chain id', () => [ev(v1, v2), 'qn-other', key.publicKey]],
    ['different validators', () => [ev(v1, signed(body({ blockHash: h2, validator: addrOf(other) }), other)), CHAIN, key.publicKey]],
    ['a key that is not the validator', () => [ev(signed(body({ validator: addrOf(other) }), other), signed(body({ blockHash: h2, validator: addrOf(other) }), other)), CHAIN, key.publicKey]],
    ['the wrong key for the votes', () => [ev(v1, v2), CHAIN, other.publicKey]],
    ['a bad first signature', () => [ev({ ...v1, signature: v1.signature.map((b, i) => (i === 0 ? b ^ 1 : b)) }, v2), CHAIN, key.publicKey]],
    ['a bad second signature', () => [ev(v1, { ...v2, signature: v1.signature }), CHAIN, key.publicKey]],
    ['a vote signed by another key', () => [ev(v1, signed(body({ blockHash: h2 }), other)), CHAIN, key.publicKey]],
  ];
  for (const [name, make] of rejects) {
    it(`EVIDENCE_INVALID: ${name}`, () => {
      const [e, chain, pk] = make();
      throwsCode(() => verifyVoteEvidence(e, chain, pk, verify), 'EVIDENCE_INVALID', name);
    });
  }
});

describe('staking: epoch committees and announcements', () => {
  const verify = (pk: Uint8Array, msg: Uint8Array, sig: Uint8Array) => b44.verify(pk, msg, sig);
  const sign = (body: EpochAnnouncement, k: KeyPair = beacon): SignedEpochAnnouncement => ({ body, signature: b44.sign(k.secretKey, epochAnnouncementSigningBytes(body)) });
  const g0 = genesisEpoch(G);

  /** Epoch 1: the genesis committees plus a newcomer on shard 1 and a changed stake. */
  function epoch1(): EpochAnnouncement {
    const a = epochAnnouncementOf(CHAIN, L, { ...g0, epoch: 1, seed: epochSeed(CHAIN, GH, 1) }, 5);
    a.committees[1]!.members.push({ publicKey: newcomer.publicKey, stake: 1500n });
    a.committees[0]!.members[0] = { ...a.committees[0]!.members[0]!, stake: 9999n };
    return a;
  }

  it('genesisEpoch is the genesis assignment with keys and the epoch-0 seed', () => {
    assert.equal(g0.epoch, 0);
    assert.deepEqual(g0.seed, epochSeed(CHAIN, GH, 0));
    assert.deepEqual(g0.shards.map((s) => s.committee), epochCommittees(G, 0));
    assert.deepEqual(g0.shards.flatMap((s) => [...s.members.keys()]).sort(), G.validators.map((v) => v.address).sort());
    for (const s of g0.shards) {
      for (const v of s.committee.validators) {
        const m = s.members.get(v.address)!;
        assert.equal(m.stake, v.stake);
        assert.equal(formatAddress(addressFromPublicKey(m.publicKey)), v.address);
      }
    }
  });

  it('accepts the genesis epoch and a later epoch (after a wire round trip) and returns their committees', () => {
    const a0 = decodeEpochAnnouncement(encodeEpochAnnouncement(sign(epochAnnouncementOf(CHAIN, L, g0, 0))));
    const c0 = checkEpochAnnouncement(a0, G, GH, verify);
    assert.equal(c0.epoch, 0);
    assert.deepEqual(c0.shards.map((s) => s.committee), g0.shards.map((s) => s.committee));
    assert.deepEqual(c0.shards.map((s) => sortedHex([...s.members.values()].map((m) => m.publicKey))), g0.shards.map((s) => sortedHex([...s.members.values()].map((m) => m.publicKey))));
    // members may be listed in any order
    const shuffled = epochAnnouncementOf(CHAIN, L, g0, 0);
    shuffled.committees.forEach((c) => c.members.reverse());
    assert.doesNotThrow(() => checkEpochAnnouncement(sign(shuffled), G, GH, verify));

    const body = epoch1();
    const c1: EpochCommittees = checkEpochAnnouncement(sign(body), G, GH, verify);
    assert.equal(c1.epoch, 1);
    assert.deepEqual(c1.seed, epochSeed(CHAIN, GH, 1));
    assert.equal(c1.shards.length, 2);
    const nc = formatAddress(addrOf(newcomer));
    assert.equal(c1.shards[1]!.members.get(nc)!.stake, 1500n);
    assert.deepEqual(c1.shards[1]!.members.get(nc)!.publicKey, newcomer.publicKey);
    assert.ok(c1.shards[1]!.committee.validators.some((v) => v.address === nc));
    const orig = epochAnnouncementOf(CHAIN, L, g0, 0).committees[0]!.members[0]!.stake;
    assert.equal(c1.shards[0]!.committee.totalStake, g0.shards[0]!.committee.totalStake - orig + 9999n);
    assert.deepEqual(epochCommitteesFromAnnouncement(body).shards.map((s) => s.committee), c1.shards.map((s) => s.committee));
    // the beacon's body for c1 round-trips to the same committees
    assert.deepEqual(checkEpochAnnouncement(sign(epochAnnouncementOf(CHAIN, L, c1, 9)), G, GH, verify).shards.map((s) => s.committee), c1.shards.map((s) => s.committee));
  });

  it('XS_UNAUTHORIZED when not signed by the genesis beacon key, or tampered after signing', () => {
    throwsCode(() => checkEpochAnnouncement(sign(epoch1(), impostor), G, GH, verify), 'XS_UNAUTHORIZED', 'impostor');
    const s = sign(epoch1());
    throwsCode(() => checkEpochAnnouncement({ ...s, body: { ...s.body, issuedSlot: 6 } }, G, GH, verify), 'XS_UNAUTHORIZED', 'tampered');
  });

  const malformed: [string, (a: EpochAnnouncement) => EpochAnnouncement][] = [
    ['another chain id', (a) => ({ ...a, chainId: 'qn-other' })],
    ['a start slot that is not epoch × epochLength', (a) => ({ ...a, startSlot: a.startSlot + 1 })],
    ['the seed of another epoch', (a) => ({ ...a, seed: epochSeed(CHAIN, GH, 0) })],
    ['a seed from another genesis', (a) => ({ ...a, seed: epochSeed(CHAIN, sha256(utf8('other genesis')), 1) })],
    ['too few committees', (a) => ({ ...a, committees: a.committees.slice(0, 1) })],
    ['too many committees', (a) => ({ ...a, committees: [...a.committees, { shard: 2, members: [{ publicKey: gen('x').publicKey, stake: 1n }] }] })],
    ['committees out of order', (a) => ({ ...a, committees: [a.committees[1]!, a.committees[0]!] })],
    ['a wrong shard number', (a) => ({ ...a, committees: [a.committees[0]!, { ...a.committees[1]!, shard: 2 }] })],
    ['an empty committee', (a) => ({ ...a, committees: [a.committees[0]!, { shard: 1, members: [] }] })],
    ['a member key of the wrong length', (a) => ({ ...a, committees: [a.committees[0]!, { shard: 1, members: [...a.committees[1]!.members, { publicKey: new Uint8Array(PK44 - 1).fill(7), stake: 5n }] }] })],
    ['a member in two shards', (a) => ({ ...a, committees: [a.committees[0]!, { shard: 1, members: [...a.committees[1]!.members, a.committees[0]!.members[0]!] }] })],
    ['a member twice in one shard', (a) => ({ ...a, committees: [a.committees[0]!, { shard: 1, members: [...a.committees[1]!.members, a.committees[1]!.members[0]!] }] })],
    ['a zero stake', (a) => ({ ...a, committees: [a.committees[0]!, { shard: 1, members: [...a.committees[1]!.members, { publicKey: gen('zero').publicKey, stake: 0n }] }] })],
  ];
  for (const [name, mutate] of malformed) {
    it(`MALFORMED: ${name}`, () => {
      throwsCode(() => checkEpochAnnouncement(sign(mutate(epoch1())), G, GH, verify), 'MALFORMED', name);
    });
  }

  it('MALFORMED: an epoch 0 that is not the genesis assignment (stake, extra member, moved member)', () => {
    const base = () => epochAnnouncementOf(CHAIN, L, g0, 0);
    const stakeChanged = base();
    stakeChanged.committees[0]!.members[0] = { ...stakeChanged.committees[0]!.members[0]!, stake: 1n };
    const extra = base();
    extra.committees[1]!.members.push({ publicKey: newcomer.publicKey, stake: 1000n });
    const moved = base();
    const m = moved.committees[0]!.members.pop()!;
    moved.committees[1]!.members.push(m);
    assert.ok(moved.committees[0]!.members.length > 0, 'fixture: shard 0 keeps a member');
    for (const [name, a] of [['stake', stakeChanged], ['extra', extra], ['moved', moved]] as const) {
      throwsCode(() => checkEpochAnnouncement(sign(a), G, GH, verify), 'MALFORMED', name);
    }
  });
});
