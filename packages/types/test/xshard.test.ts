// Cross-shard objects: the four transaction kinds, transfer records, beacon requests, acks and epoch announcements.
import assert from 'node:assert/strict';
import { formatAddress, getBackend, sha256, signingBytes, toHex } from '@qnexus/crypto';
import {
  BEACON_SHARD,
  CODEC_VERSION,
  MAX_PUBLIC_KEY_BYTES,
  MAX_RECORD_BYTES,
  MAX_REPORT_ITEMS,
  MAX_DENOM_BYTES,
  MAX_XFER_PAYLOAD_BYTES,
  XDECISION_KIND,
  XFER_MODULE_ID,
  XPREPARE_KIND,
  Writer,
  beaconTopics,
  decodeBeaconRequest,
  decodeEpochAnnouncement,
  decodeRegistrySnapshot,
  decodeXAck,
  decodeXferRecord,
  encodeBeaconRequest,
  encodeCertificate,
  encodeEpochAnnouncement,
  encodeEpochAnnouncementBody,
  encodeEvidence,
  encodeHeader,
  encodePeerBinding,
  encodeTx,
  encodeTxBody,
  encodeXAck,
  encodeXferRecord,
  epochAnnouncementSigningBytes,
  isSystemKind,
  merkleLeaf,
  memberAddress,
  readProofNodes,
  MAX_REPORT_PROOF_NODES,
  MAX_REPORT_PROOF_NODE_BYTES,
  writeProofNodes,
  decodeWith,
  openTx,
  peerBindingSigningBytes,
  peerBindingValidator,
  shardXProtocol,
  decodeSystemMsg,
  encodeXDecision,
  encodeXPrepare,
  txSigningBytes,
  xferInfoEqual,
  xferRecordPhase,
  type BeaconRequest,
  type BlockHeader,
  type Certificate,
  type EpochAnnouncement,
  type PeerBinding,
  type SignedPeerBinding,
  type KeyedTxBody,
  type TxBody,
  type TxMsg,
  type VoteBody,
  type VoteEvidence,
  type XferInfo,
  type XferRecord,
} from '@qnexus/types';
import { CHAIN, addr, hash, key, throwsCode, withTrailing } from './helpers.js';

const b44 = getBackend('ml-dsa-44');
/** Key numbers: 1 user, 9 beacon, 3 validator. */
const BEACON = () => key(9);
const PEER = '12D3KooWJWEKvSFbben74C7H4YtKjhPMTDxd7gP7zxWSUEeF27st';
const U64_MAX = 2n ** 64n - 1n;

/** Every strict prefix of `b` must be rejected with `code` (all prefixes for short inputs, a sample for long ones). */
function rejectsTruncation(b: Uint8Array, decode: (x: Uint8Array) => unknown, code: 'MALFORMED' | 'TX_MALFORMED'): void {
  const step = b.length > 400 ? 37 : 1;
  const lengths = new Set<number>();
  for (let n = 0; n < b.length; n += step) lengths.add(n);
  for (let n = Math.max(0, b.length - 40); n < b.length; n++) lengths.add(n);
  for (const n of lengths) throwsCode(() => decode(b.slice(0, n)), code, `prefix ${n}/${b.length}`);
}

/** Wire kinds of the messages these tests use: `(module << 8) | type` (bank 1, staking 3; xfer's are the beacon's). */
const KIND = { transfer: 0x0101, xtransfer: 0x0102, xprepare: XPREPARE_KIND, xdecision: XDECISION_KIND, stake: 0x0301, unstake: 0x0302 } as const;
type KindName = keyof typeof KIND;
/** (module, op) of the cross-shard operations: bank's transfer and staking's four. */
const OP = { transfer: [1, 1], stake: [3, 1], unstake: [3, 2], fees: [3, 3], release: [3, 4] } as const;

function xinfo(over: Partial<XferInfo> & { kind?: keyof typeof OP } = {}): XferInfo {
  const { kind = 'transfer', ...rest } = over;
  const [module, op] = OP[kind];
  return { module, op, denom: 'qfc', id: hash('xfer-1'), srcShard: 0, dstShard: 1, from: addr(1), to: addr(2), amount: 500n, deadlineSlot: 40, payload: new Uint8Array(0), ...rest };
}

/** An account transaction with an opaque message (the envelope never reads it; its module does). */
function userBody(kind: 'transfer' | 'xtransfer' | 'stake' | 'unstake', over: Partial<KeyedTxBody> = {}): KeyedTxBody {
  const msg = kind === 'unstake' ? addr(3) : new Writer().fixed(addr(2), 20).u64(777n).string('qfc').finish();
  return { chainId: CHAIN, nonce: 4n, fee: 10n, publicKey: key(1).publicKey, payload: { kind: KIND[kind], msg }, ...over };
}

function systemBody(payload: TxMsg, over: Partial<KeyedTxBody> = {}): KeyedTxBody {
  return { chainId: CHAIN, nonce: 0n, fee: 0n, publicKey: BEACON().publicKey, payload, ...over };
}

const prepareBody = (x = xinfo()) => systemBody(encodeXPrepare(x));
const decisionBody = (commit: boolean, x = xinfo()) => systemBody(encodeXDecision(x, commit));

function signed(body: TxBody, signer = isSystemKind(body.payload.kind) ? BEACON() : key(1)) {
  return { body, signature: b44.sign(signer.secretKey, txSigningBytes(body)) };
}

/** Wrap a (possibly broken) body in a transaction envelope with a dummy signature. */
const wrap = (body: Uint8Array) => new Writer().bytes(body).bytes(new Uint8Array(2420)).finish();

const ALL_BODIES: [KindName, KeyedTxBody][] = [
  ['transfer', userBody('transfer')],
  ['xtransfer', userBody('xtransfer')],
  ['xprepare', prepareBody()],
  ['xdecision', decisionBody(true)],
  ['stake', userBody('stake')],
  ['unstake', userBody('unstake')],
];

/** The XferInfo layout: u8 module, u8 op, string denom, id, u32 shards, from, to, u64 amount, u64 deadline, bytes payload. */
const infoBytes = (w: Writer, x: XferInfo) =>
  w.u8(x.module).u8(x.op).string(x.denom).fixed(x.id, 32).u32(x.srcShard).u32(x.dstShard).fixed(x.from, 20).fixed(x.to, 20).u64(x.amount).u64(x.deadlineSlot).bytes(x.payload);

// ------------------------------------------------------------------ transactions

describe('types: transaction envelopes and the beacon entries', () => {
  // One real signature per kind, reused by the tests below.
  const txs = new Map<KindName, ReturnType<typeof signed>>();
  before(() => {
    for (const [kind, body] of ALL_BODIES) txs.set(kind, signed(body));
  });

  it('round trip through encodeTx/openTx for every kind, byte-identical on re-encoding; the message is carried opaque', () => {
    for (const [kind, body] of ALL_BODIES) {
      const tx = txs.get(kind)!;
      const raw = encodeTx(tx);
      const env = openTx(raw);
      assert.deepEqual(env.tx, tx, kind);
      assert.equal(env.tx.body.payload.kind, KIND[kind]);
      assert.deepEqual(env.tx.body.payload.msg, body.payload.msg);
      assert.deepEqual(encodeTx(env.tx), raw, kind);
      assert.deepEqual(encodeTxBody(env.tx.body), encodeTxBody(body));
      assert.equal(env.fromStr, formatAddress(env.from));
    }
    // any u16 kind and any message bytes pass the envelope (the host refuses unknown kinds, not the codec)
    const odd = { body: { ...userBody('transfer'), payload: { kind: 0xffff, msg: new Uint8Array([1, 2, 3]) } }, signature: new Uint8Array(0) };
    assert.deepEqual(openTx(encodeTx(odd)).tx, odd);
  });

  it("account kinds are signed over the 'tx' domain, beacon entries over the 'beacon' domain", () => {
    for (const [kind, body] of ALL_BODIES) {
      const env = openTx(encodeTx(txs.get(kind)!));
      const domain = isSystemKind(KIND[kind]) ? 'beacon' : 'tx';
      assert.deepEqual(env.signBytes, signingBytes(CHAIN, domain, encodeTxBody(body)), kind);
      assert.deepEqual(env.signBytes, txSigningBytes(body), kind);
      assert.deepEqual(env.hash, sha256(env.signBytes), kind);
      assert.equal(env.hashHex, toHex(env.hash));
      assert.ok(b44.verify(body.publicKey, env.signBytes, env.tx.signature), `${kind} verifies`);
    }
  });

  it("a beacon entry signed over the 'tx' domain does not verify (and has another id)", () => {
    for (const body of [prepareBody(), decisionBody(false)]) {
      const wrongDomain = signingBytes(CHAIN, 'tx', encodeTxBody(body));
      const sig = b44.sign(BEACON().secretKey, wrongDomain);
      assert.ok(b44.verify(BEACON().publicKey, wrongDomain, sig), 'sanity: the signature itself is good');
      const env = openTx(encodeTx({ body, signature: sig }));
      assert.equal(b44.verify(BEACON().publicKey, env.signBytes, env.tx.signature), false, `${body.payload.kind} re-signed as a tx`);
      assert.notDeepEqual(env.hash, sha256(wrongDomain));
    }
    // and conversely, a user transaction signed under the beacon domain does not verify as a transaction
    const ub = userBody('xtransfer');
    const sig = b44.sign(key(1).secretKey, signingBytes(CHAIN, 'beacon', encodeTxBody(ub)));
    const env = openTx(encodeTx({ body: ub, signature: sig }));
    assert.equal(b44.verify(key(1).publicKey, env.signBytes, env.tx.signature), false);
  });

  it('body layout: version, chain id, u16 kind, nonce, fee, key, then the message; xprepare/xdecision messages are the XferInfo (and the decision flag)', () => {
    const head = (kind: number, nonce: bigint, fee: bigint, pk: Uint8Array) => new Writer().u8(1).string(CHAIN).u16(kind).u64(nonce).u64(fee).bytes(pk);
    const ub = userBody('xtransfer');
    assert.deepEqual(encodeTxBody(ub), head(KIND.xtransfer, 4n, 10n, key(1).publicKey).bytes(ub.payload.msg).finish());
    assert.deepEqual([XPREPARE_KIND, XDECISION_KIND, XFER_MODULE_ID], [0x0201, 0x0202, 2]);
    const x = xinfo({ srcShard: 3, dstShard: 7, deadlineSlot: 123456, denom: 'tok/x' });
    assert.deepEqual(encodeXPrepare(x), { kind: XPREPARE_KIND, msg: infoBytes(new Writer(), x).finish() });
    assert.deepEqual(encodeXDecision(x, true), { kind: XDECISION_KIND, msg: infoBytes(new Writer(), x).u8(1).finish() });
    assert.deepEqual(encodeXDecision(x, false).msg, infoBytes(new Writer(), x).u8(0).finish());
    assert.deepEqual(encodeTxBody(prepareBody(x)), head(XPREPARE_KIND, 0n, 0n, BEACON().publicKey).bytes(infoBytes(new Writer(), x).finish()).finish());
    // a stake op carries the validator key as its payload
    const sx = xinfo({ kind: 'stake', dstShard: BEACON_SHARD, to: addr(3), payload: key(3).publicKey });
    assert.deepEqual(encodeXDecision(sx, true).msg, infoBytes(new Writer(), sx).u8(1).finish());
    assert.deepEqual(encodeXDecision(sx, true).msg.subarray(0, 2), new Uint8Array([3, 1]));
    // decodeSystemMsg inverts both
    assert.deepEqual(decodeSystemMsg(encodeXPrepare(x)), { prepare: true, xfer: x });
    assert.deepEqual(decodeSystemMsg(encodeXDecision(sx, true)), { prepare: false, xfer: sx, commit: true });
    assert.deepEqual(decodeSystemMsg(encodeXDecision(sx, false)), { prepare: false, xfer: sx, commit: false });
  });

  it('the kind, the message, the decision and every XferInfo field are part of the id', () => {
    const id = (b: TxBody) => openTx(encodeTx({ body: b, signature: new Uint8Array(2420) })).hashHex;
    const ids = new Set<string>();
    const bodies: TxBody[] = [
      userBody('transfer'),
      userBody('xtransfer'),
      userBody('transfer', { payload: { kind: KIND.transfer, msg: new Uint8Array([0]) } }),
      prepareBody(),
      decisionBody(true),
      decisionBody(false),
      prepareBody(xinfo({ id: hash('xfer-2') })),
      prepareBody(xinfo({ srcShard: 2 })),
      prepareBody(xinfo({ dstShard: 2 })),
      prepareBody(xinfo({ from: addr(3) })),
      prepareBody(xinfo({ to: addr(3) })),
      prepareBody(xinfo({ amount: 501n })),
      prepareBody(xinfo({ deadlineSlot: 41 })),
      prepareBody(xinfo({ kind: 'stake' })),
      prepareBody(xinfo({ kind: 'release' })),
      prepareBody(xinfo({ denom: 'tok' })),
      prepareBody(xinfo({ payload: new Uint8Array([0]) })),
      prepareBody(xinfo({ payload: new Uint8Array([1]) })),
      userBody('stake'),
      userBody('unstake'),
    ];
    for (const b of bodies) ids.add(id(b));
    assert.equal(ids.size, bodies.length);
  });

  it('round trips extreme XferInfo values (u64 amount, 2^53−1 deadline, a 64-byte denom, the largest payload)', () => {
    const x = xinfo({ srcShard: 0xffffffff, dstShard: 0, amount: U64_MAX, deadlineSlot: Number.MAX_SAFE_INTEGER, from: new Uint8Array(20).fill(0xff), to: new Uint8Array(20), denom: 'd'.repeat(MAX_DENOM_BYTES) });
    const big = xinfo({ kind: 'release', srcShard: BEACON_SHARD, payload: new Uint8Array(MAX_XFER_PAYLOAD_BYTES).fill(0xab) });
    for (const body of [prepareBody(x), decisionBody(false, x), prepareBody(big), decisionBody(true, big)]) {
      const tx = { body, signature: new Uint8Array(0) };
      assert.deepEqual(openTx(encodeTx(tx)).tx, tx);
    }
    assert.deepEqual(decodeSystemMsg(encodeXPrepare(x)).xfer, x);
    assert.deepEqual(decodeSystemMsg(encodeXDecision(big, true)).xfer, big);
  });

  it('malformed beacon entries are TX_MALFORMED: truncation, trailing bytes, a bad decision flag, a deadline past 2^53, oversize denom or payload, another kind', () => {
    for (const m of [encodeXPrepare(xinfo()), encodeXDecision(xinfo({ payload: new Uint8Array(8) }), true)]) {
      rejectsTruncation(m.msg, (b) => decodeSystemMsg({ kind: m.kind, msg: b }), 'TX_MALFORMED');
      throwsCode(() => decodeSystemMsg({ kind: m.kind, msg: withTrailing(m.msg) }), 'TX_MALFORMED', 'trailing');
    }
    // the envelope itself: truncation and trailing bytes
    for (const kind of ['xtransfer', 'xprepare', 'xdecision'] as const) {
      const tx = txs.get(kind)!;
      rejectsTruncation(encodeTx(tx), openTx, 'TX_MALFORMED');
      throwsCode(() => openTx(wrap(withTrailing(encodeTxBody(tx.body)))), 'TX_MALFORMED', `${kind} trailing`);
    }
    const d = encodeXDecision(xinfo(), true).msg;
    assert.equal(d[d.length - 1], 1);
    for (const flag of [2, 7, 255]) {
      const bad = d.slice();
      bad[bad.length - 1] = flag;
      throwsCode(() => decodeSystemMsg({ kind: XDECISION_KIND, msg: bad }), 'TX_MALFORMED', `decision flag ${flag}`);
    }
    // the deadline is the last u64 before the (here empty) u32-prefixed payload; 2^53 is not a safe integer
    const p = encodeXPrepare(xinfo()).msg;
    const big = p.slice();
    assert.equal(new DataView(big.buffer).getBigUint64(big.length - 4 - 8), 40n);
    new DataView(big.buffer).setBigUint64(big.length - 4 - 8, 2n ** 53n);
    throwsCode(() => decodeSystemMsg({ kind: XPREPARE_KIND, msg: big }), 'TX_MALFORMED', 'deadline 2^53');
    throwsCode(() => decodeSystemMsg(encodeXPrepare(xinfo({ denom: 'd'.repeat(MAX_DENOM_BYTES + 1) }))), 'TX_MALFORMED', 'denom of 65 bytes');
    throwsCode(() => decodeSystemMsg(encodeXPrepare(xinfo({ payload: new Uint8Array(MAX_XFER_PAYLOAD_BYTES + 1) }))), 'TX_MALFORMED', 'oversize payload');
    throwsCode(() => decodeSystemMsg({ kind: KIND.transfer, msg: encodeXPrepare(xinfo()).msg }), 'TX_MALFORMED', 'not a beacon kind');
  });

  it('isSystemKind: exactly the xfer module types 1 and 2', () => {
    assert.deepEqual(
      (Object.keys(KIND) as KindName[]).map((k) => [k, isSystemKind(KIND[k])]),
      [
        ['transfer', false],
        ['xtransfer', false],
        ['xprepare', true],
        ['xdecision', true],
        ['stake', false],
        ['unstake', false],
      ],
    );
    for (const k of [0x0200, 0x0203, 0x0102, 0x0001, 0xff01]) assert.equal(isSystemKind(k), false, k.toString(16));
  });

  it('xferInfoEqual compares every field, payload by content', () => {
    const a = xinfo();
    assert.ok(xferInfoEqual(a, xinfo()));
    assert.ok(xferInfoEqual(a, { ...a, id: new Uint8Array(a.id), from: new Uint8Array(a.from) }), 'byte content, not identity');
    const variants: Parameters<typeof xinfo>[0][] = [
      { id: hash('other') },
      { srcShard: 5 },
      { dstShard: 5 },
      { from: addr(5) },
      { to: addr(5) },
      { amount: 499n },
      { deadlineSlot: 39 },
      { kind: 'stake' },
      { kind: 'fees' },
      { module: 9 },
      { op: 9 },
      { denom: 'tok' },
      { payload: new Uint8Array([0]) },
      { payload: key(3).publicKey },
    ];
    for (const v of variants) assert.equal(xferInfoEqual(a, xinfo(v)), false, JSON.stringify(Object.keys(v!)));
    const s = xinfo({ kind: 'stake', payload: key(3).publicKey });
    assert.ok(xferInfoEqual(s, { ...s, payload: new Uint8Array(key(3).publicKey) }));
    assert.equal(xferInfoEqual(s, { ...s, payload: key(4).publicKey }), false);
    assert.equal(xferInfoEqual(s, { ...s, payload: key(3).publicKey.slice(0, -1) }), false, 'a prefix of the payload');
  });
});

// ------------------------------------------------------------------ records

function record(over: Partial<XferRecord> = {}): XferRecord {
  return { role: 'destination', info: xinfo(), prepare: 'accepted', reason: '', decision: 'none', preparedHeight: 12, decidedHeight: 0, ...over };
}

/** Offsets in an encoded record: version, role, XferInfo (module, op, 'qfc', 96 bytes, empty payload), prepare, reason (u32 + bytes), decision, heights. */
const INFO_BYTES = 1 + 1 + 4 + 3 + 32 + 4 + 4 + 20 + 20 + 8 + 8 + 4;
const PREPARE_OFF = 2 + INFO_BYTES;

describe('types: transfer records', () => {
  it('round trip over every role, prepare and decision, with reasons and extreme heights', () => {
    let n = 0;
    for (const role of ['source', 'destination'] as const) {
      for (const prepare of ['none', 'accepted', 'refused'] as const) {
        for (const decision of ['none', 'commit', 'abort'] as const) {
          for (const [reason, ph, dh] of [
            ['', 0, 0],
            ['XS_DEADLINE_PASSED', 7, Number.MAX_SAFE_INTEGER],
          ] as const) {
            const r = record({ role, prepare, decision, reason, preparedHeight: ph, decidedHeight: dh });
            const e = encodeXferRecord(r);
            assert.deepEqual(decodeXferRecord(e), r);
            assert.deepEqual(encodeXferRecord(decodeXferRecord(e)), e);
            n++;
          }
        }
      }
    }
    assert.equal(n, 36);
    const e = encodeXferRecord(record());
    assert.equal(e[0], CODEC_VERSION);
    assert.equal(e.length, PREPARE_OFF + 1 + 4 + 0 + 1 + 8 + 8);
    // the info sits after version and role, as in a beacon entry
    assert.deepEqual(e.subarray(2, 2 + INFO_BYTES), infoBytes(new Writer(), xinfo()).finish());
  });

  it('different records encode differently (role, phases, reason, heights, module, op, denom, payload)', () => {
    const rs = [
      record(),
      record({ role: 'source' }),
      record({ prepare: 'refused', reason: 'TX_BAD_RECIPIENT' }),
      record({ prepare: 'refused', reason: 'XS_DEADLINE_PASSED' }),
      record({ decision: 'commit', decidedHeight: 13 }),
      record({ decision: 'abort', decidedHeight: 13 }),
      record({ preparedHeight: 11 }),
      record({ info: xinfo({ amount: 1n }) }),
      record({ info: xinfo({ kind: 'stake' }) }),
      record({ info: xinfo({ module: 7 }) }),
      record({ info: xinfo({ denom: 'tok' }) }),
      record({ info: xinfo({ payload: new Uint8Array([7]) }) }),
    ];
    assert.equal(new Set(rs.map((r) => toHex(encodeXferRecord(r)))).size, rs.length);
  });

  it('every op of the app round trips in records and beacon entries; module and op are plain bytes to the codec', () => {
    assert.equal(BEACON_SHARD, 0xffff);
    const infos: XferInfo[] = [
      xinfo(),
      xinfo({ kind: 'stake', dstShard: BEACON_SHARD, to: addr(3), payload: key(3).publicKey }),
      xinfo({ kind: 'unstake', dstShard: BEACON_SHARD, to: addr(3), amount: 0n }),
      xinfo({ kind: 'fees', dstShard: BEACON_SHARD, from: addr(5), to: addr(5) }),
      xinfo({ kind: 'release', srcShard: BEACON_SHARD, dstShard: 1, from: addr(3), to: addr(1) }),
      xinfo({ denom: 'tok/x', payload: new Uint8Array(MAX_PUBLIC_KEY_BYTES).fill(9) }),
      xinfo({ module: 255, op: 255 }),
    ];
    for (const info of infos) {
      const r = record({ info });
      const e = encodeXferRecord(r);
      const d = decodeXferRecord(e);
      assert.deepEqual(d, r);
      assert.ok(xferInfoEqual(d.info, info));
      assert.deepEqual(encodeXferRecord(d), e);
      assert.deepEqual([e[2], e[3]], [info.module, info.op]);
      for (const body of [prepareBody(info), decisionBody(true, info)]) {
        const tx = { body, signature: new Uint8Array(0) };
        assert.deepEqual(openTx(encodeTx(tx)).tx, tx);
        assert.deepEqual(decodeSystemMsg(body.payload).xfer, info);
      }
    }
  });

  it('a record whose payload or denom is over its bound is MALFORMED; a stake record with an ML-DSA-87 key fits MAX_RECORD_BYTES', () => {
    throwsCode(() => decodeXferRecord(encodeXferRecord(record({ info: xinfo({ payload: new Uint8Array(MAX_XFER_PAYLOAD_BYTES + 1) }) }))), 'MALFORMED', 'oversize payload');
    throwsCode(() => decodeXferRecord(encodeXferRecord(record({ info: xinfo({ denom: 'd'.repeat(MAX_DENOM_BYTES + 1) }) }))), 'MALFORMED', 'oversize denom');
    const biggest = encodeXferRecord(record({ reason: 'R'.repeat(64), info: xinfo({ denom: 'd'.repeat(MAX_DENOM_BYTES), payload: new Uint8Array(MAX_XFER_PAYLOAD_BYTES) }) }));
    assert.ok(biggest.length <= MAX_RECORD_BYTES, `${biggest.length} <= ${MAX_RECORD_BYTES}`);
    assert.equal(decodeXferRecord(biggest).info.payload.length, MAX_XFER_PAYLOAD_BYTES);
  });

  it('rejects bad enum bytes, versions, oversize reasons, trailing bytes and truncation with MALFORMED', () => {
    const e = encodeXferRecord(record({ decision: 'commit', decidedHeight: 3 }));
    throwsCode(() => decodeXferRecord(withTrailing(e)), 'MALFORMED');
    rejectsTruncation(e, decodeXferRecord, 'MALFORMED');
    const at = (off: number, v: number) => {
      const x = e.slice();
      x[off] = v;
      return x;
    };
    throwsCode(() => decodeXferRecord(at(0, 2)), 'MALFORMED', 'version 2');
    throwsCode(() => decodeXferRecord(at(0, 0)), 'MALFORMED', 'version 0');
    assert.equal(decodeXferRecord(at(1, 0)).role, 'source');
    throwsCode(() => decodeXferRecord(at(1, 2)), 'MALFORMED', 'role 2');
    assert.equal(decodeXferRecord(at(PREPARE_OFF, 2)).prepare, 'refused');
    throwsCode(() => decodeXferRecord(at(PREPARE_OFF, 3)), 'MALFORMED', 'prepare 3');
    const decisionOff = PREPARE_OFF + 1 + 4;
    assert.equal(decodeXferRecord(at(decisionOff, 2)).decision, 'abort');
    throwsCode(() => decodeXferRecord(at(decisionOff, 3)), 'MALFORMED', 'decision 3');
    throwsCode(() => decodeXferRecord(at(decisionOff, 255)), 'MALFORMED', 'decision 255');
    // reasons are short error codes: more than 64 bytes is refused
    assert.equal(decodeXferRecord(encodeXferRecord(record({ reason: 'R'.repeat(64) }))).reason.length, 64);
    throwsCode(() => decodeXferRecord(encodeXferRecord(record({ reason: 'R'.repeat(65) }))), 'MALFORMED');
    // heights beyond 2^53
    const hi = e.slice();
    new DataView(hi.buffer).setBigUint64(hi.length - 8, 2n ** 53n);
    throwsCode(() => decodeXferRecord(hi), 'MALFORMED');
    throwsCode(() => decodeXferRecord(new Uint8Array(0)), 'MALFORMED');
  });

  it('xferRecordPhase names the phase', () => {
    assert.equal(xferRecordPhase(record({ role: 'source' })), 'escrowed');
    assert.equal(xferRecordPhase(record()), 'prepared');
    assert.equal(xferRecordPhase(record({ prepare: 'refused', reason: 'TX_BAD_RECIPIENT' })), 'refused');
    assert.equal(xferRecordPhase(record({ decision: 'commit' })), 'committed');
    assert.equal(xferRecordPhase(record({ role: 'source', decision: 'abort' })), 'aborted');
    assert.equal(xferRecordPhase(record({ prepare: 'none', decision: 'abort' })), 'aborted');
  });
});

// ------------------------------------------------------------------ beacon requests

function header(over: Partial<BlockHeader> = {}): BlockHeader {
  return {
    chainId: CHAIN,
    shard: 1,
    height: 9,
    slot: 21,
    parentHash: hash('parent'),
    stateRoot: hash('state'),
    txRoot: hash('txroot'),
    proposer: addr(3),
    txCount: 0,
    ...over,
  };
}

function certificate(n = 2): Certificate {
  return { height: 9, round: 21, blockHash: hash('blk'), votes: Array.from({ length: n }, (_, i) => ({ validator: addr(20 + i), signature: new Uint8Array(60).fill(i + 1) })) };
}

const binding: PeerBinding = { chainId: CHAIN, shard: 1, publicKey: key(3).publicKey, peerId: PEER };

describe('types: peer bindings and beacon requests', () => {
  let sb: SignedPeerBinding;
  before(() => {
    sb = { binding, signature: b44.sign(key(3).secretKey, peerBindingSigningBytes(binding)) };
  });

  function report(nItems = 2): BeaconRequest {
    const recs = Array.from({ length: nItems }, (_, i) => encodeXferRecord(record({ info: xinfo({ id: hash(`x${i}`) }) })));
    // proof nodes are opaque here (the state package builds and checks them): varied counts and sizes
    return { type: 'report', report: { binding: sb, header: header(), certificate: certificate(), items: recs.map((record, i) => ({ record, proof: Array.from({ length: 1 + i }, (_, j) => new Uint8Array(40 + 17 * j).fill(i + j)) })) } };
  }

  it("a binding is signed under the 'binding' domain and names its validator", () => {
    assert.deepEqual(peerBindingSigningBytes(binding), signingBytes(CHAIN, 'binding', encodePeerBinding(binding)));
    assert.ok(b44.verify(key(3).publicKey, peerBindingSigningBytes(binding), sb.signature));
    assert.equal(b44.verify(key(3).publicKey, signingBytes(CHAIN, 'beacon', encodePeerBinding(binding)), sb.signature), false);
    assert.equal(b44.verify(key(3).publicKey, peerBindingSigningBytes({ ...binding, shard: 0 }), sb.signature), false, 'the shard is signed');
    assert.equal(b44.verify(key(3).publicKey, peerBindingSigningBytes({ ...binding, peerId: PEER.replace('J', 'K') }), sb.signature), false, 'the peer id is signed');
    assert.equal(peerBindingValidator(binding), formatAddress(addr(3)));
  });

  it('hello round trip', () => {
    const m: BeaconRequest = { type: 'hello', binding: sb };
    const e = encodeBeaconRequest(m);
    assert.deepEqual(decodeBeaconRequest(e), m);
    assert.deepEqual(encodeBeaconRequest(decodeBeaconRequest(e)), e);
    assert.deepEqual([e[0], e[1]], [CODEC_VERSION, 1]);
  });

  it('report round trip with 0, 1 and several items', () => {
    for (const n of [0, 1, 5]) {
      const m = report(n);
      const e = encodeBeaconRequest(m);
      const d = decodeBeaconRequest(e);
      assert.deepEqual(d, m);
      assert.deepEqual(encodeBeaconRequest(d), e);
      assert.equal(e[1], 2);
    }
  });

  it('proof nodes on the wire are u32 n, then n length-prefixed nodes; more than MAX_REPORT_PROOF_NODES nodes or a node over MAX_REPORT_PROOF_NODE_BYTES is MALFORMED', () => {
    const nodes = [hash('a'), new Uint8Array(100).fill(7), new Uint8Array(0)];
    const e = writeProofNodes(new Writer(), nodes).finish();
    assert.deepEqual(e, new Writer().u32(3).bytes(nodes[0]!).bytes(nodes[1]!).bytes(nodes[2]!).finish());
    assert.deepEqual(decodeWith(e, 'proof', readProofNodes), nodes);
    const read = (w: Writer, cut = 0) => () => {
      const b = w.finish();
      return decodeWith(b.slice(0, b.length - cut), 'proof', readProofNodes);
    };
    const many = new Writer().u32(MAX_REPORT_PROOF_NODES + 1);
    for (let i = 0; i <= MAX_REPORT_PROOF_NODES; i++) many.bytes(new Uint8Array(1));
    throwsCode(read(many), 'MALFORMED', 'too many nodes');
    throwsCode(read(new Writer().u32(1).bytes(new Uint8Array(MAX_REPORT_PROOF_NODE_BYTES + 1))), 'MALFORMED', 'a node too large');
    throwsCode(read(new Writer().u32(1).bytes(hash('a')), 1), 'MALFORMED', 'truncated node');
    assert.deepEqual(read(new Writer().u32(1).bytes(new Uint8Array(MAX_REPORT_PROOF_NODE_BYTES)))(), [new Uint8Array(MAX_REPORT_PROOF_NODE_BYTES)], 'a node of the largest size');
  });

  it('evidence round trip: type byte 3, no binding, the evidence bytes as encodeEvidence writes them', () => {
    const vb = (over: Partial<VoteBody> = {}): VoteBody => ({ chainId: CHAIN, shard: 1, height: 9, round: 21, step: 'precommit', blockHash: hash('a'), validator: addr(3), ...over });
    const evidences: VoteEvidence[] = [
      { first: { body: vb(), signature: new Uint8Array(2420).fill(1) }, second: { body: vb({ blockHash: hash('b') }), signature: new Uint8Array(2420).fill(2) } },
      { first: { body: vb({ step: 'prevote' }), signature: new Uint8Array(0) }, second: { body: vb({ step: 'prevote', blockHash: null }), signature: new Uint8Array(3) } },
      // the largest: ML-DSA-87 signatures and a 64-byte chain id
      {
        first: { body: vb({ chainId: 'c'.repeat(64) }), signature: new Uint8Array(4627).fill(1) },
        second: { body: vb({ chainId: 'c'.repeat(64), blockHash: hash('b') }), signature: new Uint8Array(4627).fill(2) },
      },
    ];
    for (const evidence of evidences) {
      const m: BeaconRequest = { type: 'evidence', evidence };
      const e = encodeBeaconRequest(m);
      assert.deepEqual([e[0], e[1]], [CODEC_VERSION, 3]);
      assert.deepEqual(e, new Writer().u8(CODEC_VERSION).u8(3).bytes(encodeEvidence(evidence)).finish());
      const d = decodeBeaconRequest(e);
      assert.deepEqual(d, m);
      assert.deepEqual(encodeBeaconRequest(d), e);
    }
    const e = encodeBeaconRequest({ type: 'evidence', evidence: evidences[0]! });
    throwsCode(() => decodeBeaconRequest(withTrailing(e)), 'MALFORMED', 'evidence trailing');
    rejectsTruncation(e, decodeBeaconRequest, 'MALFORMED');
    // malformed evidence inside a well-formed request
    const inner = encodeEvidence(evidences[0]!);
    throwsCode(() => decodeBeaconRequest(new Writer().u8(CODEC_VERSION).u8(3).bytes(withTrailing(inner)).finish()), 'MALFORMED', 'trailing inside the evidence');
    const v = inner.slice();
    v[0] = 2;
    throwsCode(() => decodeBeaconRequest(new Writer().u8(CODEC_VERSION).u8(3).bytes(v).finish()), 'MALFORMED', 'evidence version');
    throwsCode(() => decodeBeaconRequest(new Writer().u8(CODEC_VERSION).u8(3).u32(20_001).finish()), 'MALFORMED', 'oversize evidence');
    // a hello's bytes under type 3 are not evidence
    const asEvidence = encodeBeaconRequest({ type: 'hello', binding: sb }).slice();
    asEvidence[1] = 3;
    throwsCode(() => decodeBeaconRequest(asEvidence), 'MALFORMED', 'hello as evidence');
  });

  it('rejects unknown versions and types, trailing bytes and truncation with MALFORMED', () => {
    for (const m of [{ type: 'hello', binding: sb } as BeaconRequest, report(2)]) {
      const e = encodeBeaconRequest(m);
      throwsCode(() => decodeBeaconRequest(withTrailing(e)), 'MALFORMED', `${m.type} trailing`);
      rejectsTruncation(e, decodeBeaconRequest, 'MALFORMED');
      for (const v of [0, 2]) {
        const x = e.slice();
        x[0] = v;
        throwsCode(() => decodeBeaconRequest(x), 'MALFORMED', `version ${v}`);
      }
    }
    const hello = encodeBeaconRequest({ type: 'hello', binding: sb });
    // 1 hello, 2 report, 3 evidence (tested above); anything else is unknown
    for (const t of [0, 4, 255]) {
      const x = hello.slice();
      x[1] = t;
      throwsCode(() => decodeBeaconRequest(x), 'MALFORMED', `type ${t}`);
    }
    // a hello carrying report fields is a hello with trailing bytes
    const rep = encodeBeaconRequest(report(1));
    const asHello = rep.slice();
    asHello[1] = 1;
    throwsCode(() => decodeBeaconRequest(asHello), 'MALFORMED');
  });

  it('rejects malformed report internals: binding, header, certificate, counts, proof node counts and sizes', () => {
    const rec = encodeXferRecord(record());
    type Parts = { binding?: Uint8Array; header?: Uint8Array; cert?: Uint8Array; items?: (w: Writer) => void };
    const build = (p: Parts = {}) => {
      const w = new Writer().u8(CODEC_VERSION).u8(2).bytes(p.binding ?? encodePeerBinding(binding)).bytes(sb.signature);
      w.bytes(p.header ?? encodeHeader(header())).bytes(p.cert ?? encodeCertificate(certificate()));
      if (p.items) p.items(w);
      else w.u32(1).bytes(rec).u32(1).bytes(hash('node'));
      return w.finish();
    };
    // the hand-built layout is the real one
    const d = decodeBeaconRequest(build());
    assert.equal(d.type, 'report');
    assert.deepEqual(encodeBeaconRequest(d), build());
    const ver = encodePeerBinding(binding).slice();
    ver[0] = 9;
    throwsCode(() => decodeBeaconRequest(build({ binding: ver })), 'MALFORMED', 'binding version');
    throwsCode(() => decodeBeaconRequest(build({ binding: withTrailing(encodePeerBinding(binding)) })), 'MALFORMED', 'binding trailing');
    throwsCode(() => decodeBeaconRequest(build({ header: withTrailing(encodeHeader(header())) })), 'MALFORMED', 'header trailing');
    throwsCode(() => decodeBeaconRequest(build({ header: encodeHeader(header()).slice(0, 50) })), 'MALFORMED', 'header truncated');
    throwsCode(() => decodeBeaconRequest(build({ cert: withTrailing(encodeCertificate(certificate())) })), 'MALFORMED', 'certificate trailing');
    throwsCode(() => decodeBeaconRequest(build({ items: (w) => w.u32(MAX_REPORT_ITEMS + 1) })), 'MALFORMED', 'too many items');
    // a record may carry a public key (stake): up to MAX_RECORD_BYTES
    assert.equal(MAX_RECORD_BYTES, 4096);
    assert.equal((decodeBeaconRequest(build({ items: (w) => w.u32(1).bytes(new Uint8Array(MAX_RECORD_BYTES)).u32(0) })) as { report: { items: { record: Uint8Array }[] } }).report.items[0]!.record.length, MAX_RECORD_BYTES);
    throwsCode(() => decodeBeaconRequest(build({ items: (w) => w.u32(1).bytes(new Uint8Array(MAX_RECORD_BYTES + 1)).u32(0) })), 'MALFORMED', 'record > MAX_RECORD_BYTES');
    // an ML-DSA-87 stake record fits
    const bigRec = encodeXferRecord(record({ role: 'source', info: xinfo({ kind: 'stake', dstShard: BEACON_SHARD, payload: new Uint8Array(MAX_PUBLIC_KEY_BYTES) }) }));
    assert.ok(bigRec.length <= MAX_RECORD_BYTES);
    assert.deepEqual((decodeBeaconRequest(build({ items: (w) => w.u32(1).bytes(bigRec).u32(0) })) as { report: { items: { record: Uint8Array }[] } }).report.items[0]!.record, bigRec);
    throwsCode(() => decodeBeaconRequest(build({ items: (w) => w.u32(1).bytes(rec).u32(MAX_REPORT_PROOF_NODES + 1) })), 'MALFORMED', 'too many proof nodes');
    throwsCode(() => decodeBeaconRequest(build({ items: (w) => w.u32(1).bytes(rec).u32(2).bytes(hash('node')) })), 'MALFORMED', 'a proof node announced but missing');
    assert.deepEqual((decodeBeaconRequest(build({ items: (w) => w.u32(1).bytes(rec).u32(2).bytes(hash('a')).bytes(hash('b')) })) as { report: { items: { proof: unknown }[] } }).report.items[0]!.proof, [hash('a'), hash('b')]);
  });
});

// ------------------------------------------------------------------ acks

describe('types: XAck', () => {
  it('round trip of ok and error acks', () => {
    for (const a of [
      { ok: true, code: '', message: '' },
      { ok: false, code: 'XS_BAD_PROOF', message: 'inclusion proof of record 2 does not verify — ünïcode' },
      { ok: false, code: 'X'.repeat(64), message: 'm'.repeat(1024) },
    ]) {
      const e = encodeXAck(a);
      assert.deepEqual(decodeXAck(e), a);
      assert.deepEqual(encodeXAck(decodeXAck(e)), e);
    }
  });

  it('rejects truncation, trailing bytes, oversize code/message and invalid UTF-8 with MALFORMED', () => {
    const e = encodeXAck({ ok: false, code: 'XS_MISMATCH', message: 'no' });
    rejectsTruncation(e, decodeXAck, 'MALFORMED');
    throwsCode(() => decodeXAck(withTrailing(e)), 'MALFORMED');
    throwsCode(() => decodeXAck(encodeXAck({ ok: false, code: 'X'.repeat(65), message: '' })), 'MALFORMED');
    throwsCode(() => decodeXAck(encodeXAck({ ok: false, code: 'X', message: 'm'.repeat(1025) })), 'MALFORMED');
    throwsCode(() => decodeXAck(new Writer().u8(0).bytes(new Uint8Array([0xff, 0xfe])).string('').finish()), 'MALFORMED');
  });
});

// ------------------------------------------------------------------ epoch announcements

function announcement(over: Partial<EpochAnnouncement> = {}): EpochAnnouncement {
  return {
    chainId: CHAIN,
    epoch: 3,
    startSlot: 96,
    seed: hash('seed-3'),
    committees: [
      { shard: 0, members: [{ publicKey: key(20).publicKey, stake: 100n }, { publicKey: key(21).publicKey, stake: 50n }] },
      { shard: 1, members: [{ publicKey: key(22).publicKey, stake: U64_MAX }] },
    ],
    issuedSlot: 101,
    ...over,
  };
}

describe('types: epoch announcements', () => {
  it("round trip; signed by the beacon under the 'beacon' domain; every field is signed", () => {
    const body = announcement();
    assert.deepEqual(epochAnnouncementSigningBytes(body), signingBytes(CHAIN, 'beacon', encodeEpochAnnouncementBody(body)));
    const signature = b44.sign(BEACON().secretKey, epochAnnouncementSigningBytes(body));
    const e = encodeEpochAnnouncement({ body, signature });
    const d = decodeEpochAnnouncement(e);
    assert.deepEqual(d, { body, signature });
    assert.deepEqual(encodeEpochAnnouncement(d), e);
    assert.ok(b44.verify(BEACON().publicKey, epochAnnouncementSigningBytes(d.body), d.signature));
    const variants: Partial<EpochAnnouncement>[] = [
      { epoch: 4 },
      { startSlot: 97 },
      { seed: hash('seed-4') },
      { issuedSlot: 102 },
      { committees: [announcement().committees[1]!, announcement().committees[0]!] },
      { committees: [{ shard: 0, members: [{ publicKey: key(20).publicKey, stake: 101n }, { publicKey: key(21).publicKey, stake: 50n }] }, announcement().committees[1]!] },
      { committees: [{ shard: 0, members: [{ publicKey: key(23).publicKey, stake: 100n }, { publicKey: key(21).publicKey, stake: 50n }] }, announcement().committees[1]!] },
    ];
    for (const v of variants) assert.equal(b44.verify(BEACON().publicKey, epochAnnouncementSigningBytes(announcement(v)), signature), false, JSON.stringify(Object.keys(v)));
    // not valid as a transaction-domain or binding-domain signature either
    assert.equal(b44.verify(BEACON().publicKey, signingBytes(CHAIN, 'tx', encodeEpochAnnouncementBody(body)), signature), false);
  });

  it('members carry their public key; memberAddress derives the address', () => {
    const a = announcement();
    assert.equal(memberAddress(a.committees[0]!.members[0]!), formatAddress(addr(20)));
    assert.equal(memberAddress(a.committees[1]!.members[0]!), formatAddress(addr(22)));
    // the body layout: each member is a u32-prefixed public key and a u64 stake
    const w = new Writer().u8(CODEC_VERSION).string(CHAIN).u64(3).u64(96).fixed(hash('seed-3'), 32).u32(2);
    w.u32(0).u32(2).bytes(key(20).publicKey).u64(100n).bytes(key(21).publicKey).u64(50n);
    w.u32(1).u32(1).bytes(key(22).publicKey).u64(U64_MAX);
    assert.deepEqual(encodeEpochAnnouncementBody(a), w.u64(101).finish());
    // the keys survive the wire; ML-DSA-87 sized keys too
    const d = decodeEpochAnnouncement(encodeEpochAnnouncement({ body: a, signature: new Uint8Array(0) }));
    assert.deepEqual(d.body.committees.map((c) => c.members.map(memberAddress)), [[formatAddress(addr(20)), formatAddress(addr(21))], [formatAddress(addr(22))]]);
    const big = announcement({ committees: [{ shard: 0, members: Array.from({ length: 8 }, (_, i) => ({ publicKey: new Uint8Array(MAX_PUBLIC_KEY_BYTES).fill(i), stake: BigInt(i + 1) })) }] });
    const bs = { body: big, signature: new Uint8Array(4627).fill(5) };
    assert.deepEqual(decodeEpochAnnouncement(encodeEpochAnnouncement(bs)), bs);
    // a member key longer than MAX_PUBLIC_KEY_BYTES is malformed
    const tooBig = announcement({ committees: [{ shard: 0, members: [{ publicKey: new Uint8Array(MAX_PUBLIC_KEY_BYTES + 1), stake: 1n }] }] });
    throwsCode(() => decodeEpochAnnouncement(encodeEpochAnnouncement({ body: tooBig, signature: new Uint8Array(0) })), 'MALFORMED', 'oversize member key');
  });

  it('round trip with no committees and empty committees', () => {
    for (const committees of [[], [{ shard: 0, members: [] }]]) {
      const a = { body: announcement({ committees }), signature: new Uint8Array(0) };
      assert.deepEqual(decodeEpochAnnouncement(encodeEpochAnnouncement(a)), a);
    }
  });

  it('rejects truncation, trailing bytes, versions and oversize counts with MALFORMED', () => {
    const e = encodeEpochAnnouncement({ body: announcement(), signature: new Uint8Array(100).fill(7) });
    rejectsTruncation(e, decodeEpochAnnouncement, 'MALFORMED');
    throwsCode(() => decodeEpochAnnouncement(withTrailing(e)), 'MALFORMED');
    const body = encodeEpochAnnouncementBody(announcement());
    const sig = new Uint8Array(10);
    const wrapA = (b: Uint8Array) => new Writer().bytes(b).bytes(sig).finish();
    assert.doesNotThrow(() => decodeEpochAnnouncement(wrapA(body)));
    throwsCode(() => decodeEpochAnnouncement(wrapA(withTrailing(body))), 'MALFORMED', 'trailing in body');
    const v = body.slice();
    v[0] = 2;
    throwsCode(() => decodeEpochAnnouncement(wrapA(v)), 'MALFORMED', 'version');
    const head = () => new Writer().u8(1).string(CHAIN).u64(1).u64(0).fixed(hash('s'), 32);
    throwsCode(() => decodeEpochAnnouncement(wrapA(head().u32(65).finish())), 'MALFORMED', '65 committees');
    throwsCode(() => decodeEpochAnnouncement(wrapA(head().u32(1).u32(0).u32(1025).finish())), 'MALFORMED', '1025 members');
    throwsCode(() => decodeEpochAnnouncement(new Writer().bytes(body).u32(4628).finish()), 'MALFORMED', 'oversize signature');
  });

  it('every cross-shard decoder error is a QnexusError MALFORMED (never a raw RangeError)', () => {
    const garbage = [new Uint8Array(0), new Uint8Array([1]), new Uint8Array([1, 2, 0, 0, 0, 200]), new Uint8Array(64).fill(0xff), new Uint8Array(300).fill(1)];
    for (const g of garbage) {
      for (const dec of [decodeXferRecord, decodeBeaconRequest, decodeXAck, decodeEpochAnnouncement, decodeRegistrySnapshot]) throwsCode(() => dec(g), 'MALFORMED', `${dec.name}(${g.length} bytes)`);
    }
  });

  it('topic and protocol names are per chain (and per shard)', () => {
    assert.deepEqual(beaconTopics('qn-x'), {
      epochs: '/qnexus/qn-x/beacon/epochs',
      registry: '/qnexus/qn-x/beacon/registry',
      protocol: '/qnexus/qn-x/beacon/2pc/1.0.0',
      epochFetch: '/qnexus/qn-x/beacon/epoch/1.0.0',
    });
    const a = Object.values(beaconTopics('qn-x'));
    const b = Object.values(beaconTopics('qn-y'));
    assert.equal(new Set(a).size, 4, 'distinct names');
    for (let i = 0; i < a.length; i++) assert.notEqual(a[i], b[i]);
    assert.equal(shardXProtocol('qn-x', 3), '/qnexus/qn-x/shard/3/2pc/1.0.0');
    assert.notEqual(shardXProtocol('qn-x', 0), shardXProtocol('qn-x', 1));
  });
});
