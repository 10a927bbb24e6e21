import assert from 'node:assert/strict';
import { ZERO_HASH, addressFromPublicKey, formatAddress, getBackend, sha256, signingBytes, toHex } from '@qnexus/crypto';
import {
  CODEC_VERSION,
  MAX_BLOCK_BYTES,
  MAX_COMMITTEE,
  MAX_TX_BYTES,
  QnexusError,
  Writer,
  XDECISION_KIND,
  XFER_MODULE_ID,
  XPREPARE_KIND,
  isSystemKind,
  blockHash,
  certificateVoteBody,
  decodeBlock,
  decodeCertificate,
  decodeEvidence,
  decodeHeader,
  decodeCompactProposal,
  decodeTxBatch,
  decodeTxIdList,
  decodeVote,
  decodeVoteGossip,
  encodeVoteGossip,
  encodeBlock,
  encodeCertificate,
  encodeEvidence,
  encodeHeader,
  encodeCompactProposal,
  encodeTxBatch,
  encodeTxIdList,
  MAX_TX_BATCH,
  ERROR_HTTP_STATUS,
  encodeProposalBody,
  encodeTx,
  encodeTxBody,
  encodeVote,
  encodeVoteBody,
  evidenceKey,
  headerSigningBytes,
  merkleLeaf,
  merkleRootOfLeafHashes,
  openTx,
  proposalSigningBytes,
  txRoot,
  txSigningBytes,
  voteSigningBytes,
  type Block,
  type BlockHeader,
  type Certificate,
  type ProposalBody,
  type SignedVote,
  type VoteBody,
} from '@qnexus/types';
import { CHAIN, MSG_KIND, addr, hash, key, keylessBody, opaqueMsg, signTx, throwsCode, txBody, withTrailing } from './helpers.js';

const b44 = getBackend('ml-dsa-44');

/** Every strict prefix of `b` must be rejected with `code`. Checks all prefixes for short inputs, a sample for long ones. */
function rejectsTruncation(b: Uint8Array, decode: (x: Uint8Array) => unknown, code: 'MALFORMED' | 'TX_MALFORMED'): void {
  const step = b.length > 400 ? 37 : 1;
  const lengths = new Set<number>();
  for (let n = 0; n < b.length; n += step) lengths.add(n);
  for (let n = Math.max(0, b.length - 40); n < b.length; n++) lengths.add(n);
  for (const n of lengths) throwsCode(() => decode(b.slice(0, n)), code, `prefix ${n}/${b.length}`);
}

function fakeSig(n: number, len = 2420): Uint8Array {
  return new Uint8Array(len).fill(n);
}

// ------------------------------------------------------------------ transactions

/** Offset of the u16 kind in a body with CHAIN as chain id: version, u32-prefixed chain id. */
const KIND_OFF = 1 + 4 + CHAIN.length;

describe('types: transactions', () => {
  it('encode/openTx round trip with derived identifiers', () => {
    const body = txBody();
    const tx = signTx(body);
    const raw = encodeTx(tx);
    const env = openTx(raw);
    assert.deepEqual(env.tx, tx);
    assert.deepEqual(env.raw, raw);
    assert.deepEqual(env.signBytes, txSigningBytes(body));
    assert.deepEqual(env.signBytes, signingBytes(CHAIN, 'tx', encodeTxBody(body)));
    assert.deepEqual(env.hash, sha256(txSigningBytes(body)));
    assert.equal(env.hashHex, toHex(env.hash));
    assert.deepEqual(env.from, addressFromPublicKey(key(1).publicKey));
    assert.equal(env.fromStr, formatAddress(env.from));
    assert.ok(b44.verify(body.publicKey, env.signBytes, env.tx.signature));
    // Re-encoding the decoded tx is byte-identical (canonical).
    assert.deepEqual(encodeTx(env.tx), raw);
  });

  it('round trips extreme field values: u64 nonce, fee 0, kinds 0 and 0xffff, an empty and a large message', () => {
    const body = txBody({ nonce: 2n ** 64n - 1n, fee: 0n, payload: opaqueMsg(new Uint8Array(20).fill(0xff), 2n ** 64n - 1n) });
    const tx = { body, signature: new Uint8Array(0) };
    assert.deepEqual(openTx(encodeTx(tx)).tx, tx);
    for (const kind of [0, 0xffff]) {
      for (const msg of [new Uint8Array(0), new Uint8Array(8000).fill(kind & 0xff)]) {
        const t = { body: txBody({ payload: { kind, msg } }), signature: new Uint8Array(0) };
        assert.deepEqual(openTx(encodeTx(t)).tx, t, `kind ${kind}, ${msg.length}-byte message`);
      }
    }
    const body65 = txBody({ publicKey: new Uint8Array(2592).fill(1), chainId: 'a'.repeat(64) });
    const tx65 = { body: body65, signature: new Uint8Array(4627).fill(2) };
    assert.deepEqual(openTx(encodeTx(tx65)).tx, tx65);
  });

  it('body layout: version, chain id, u16 kind, nonce, fee, public key, u32-prefixed message', () => {
    const body = txBody();
    const expected = new Writer()
      .u8(1)
      .string(CHAIN)
      .u16(MSG_KIND)
      .u64(3n)
      .u64(10n)
      .bytes(key(1).publicKey)
      .bytes(new Writer().fixed(addr(2), 20).u64(12345n).finish())
      .finish();
    assert.deepEqual(encodeTxBody(body), expected);
    // the kind is big-endian: module id first, then the module's message type
    const e = encodeTxBody(txBody({ payload: { kind: 0x0302, msg: new Uint8Array(0) } }));
    assert.deepEqual([...e.subarray(KIND_OFF, KIND_OFF + 2)], [3, 2]);
  });

  it('a body that carries its key encodes and hashes exactly as before the keyless form (pinned vector)', () => {
    const body = txBody();
    // The pre-keyless layout, written out by hand: the key is the length-prefixed field.
    const old = new Writer().u8(1).string(CHAIN).u16(MSG_KIND).u64(3n).u64(10n).bytes(key(1).publicKey).bytes(opaqueMsg().msg).finish();
    assert.deepEqual(encodeTxBody(body), old);
    assert.equal(toHex(sha256(txSigningBytes(body))), 'f0a2a0e6211d8c60deb13c1f7097238710f79cb33416bbb995e412b9f0f227ba');
    const env = openTx(encodeTx(signTx(body)));
    assert.equal(env.hashHex, 'f0a2a0e6211d8c60deb13c1f7097238710f79cb33416bbb995e412b9f0f227ba');
    assert.deepEqual(env.publicKey, key(1).publicKey);
  });

  it('keyless round trip: the signer field holds the 20-byte address; from is that address, publicKey null', () => {
    const body = keylessBody();
    const tx = signTx(body);
    const raw = encodeTx(tx);
    const env = openTx(raw);
    assert.deepEqual(env.tx, tx);
    assert.equal(env.tx.body.publicKey, undefined);
    assert.deepEqual(env.tx.body.address, addr(1));
    assert.equal(env.publicKey, null);
    assert.deepEqual(env.from, addr(1));
    assert.equal(env.fromStr, formatAddress(addr(1)));
    assert.deepEqual(env.hash, sha256(txSigningBytes(body)));
    // canonical: re-encoding is byte-identical; the layout is the keyed one with the address in the field
    assert.deepEqual(encodeTx(env.tx), raw);
    const expected = new Writer().u8(1).string(CHAIN).u16(MSG_KIND).u64(3n).u64(10n).bytes(addr(1)).bytes(opaqueMsg().msg).finish();
    assert.deepEqual(encodeTxBody(body), expected);
    // the signature is over the keyless body and verifies with the (registered) key
    assert.ok(b44.verify(key(1).publicKey, env.signBytes, env.tx.signature));
    // 1,292 bytes fewer than the same transaction carrying its ML-DSA-44 key
    assert.equal(encodeTx(signTx(txBody())).length - raw.length, 1312 - 20);
  });

  it('keyless and keyed forms of one transaction are different transactions (different ids; one signature does not serve both)', () => {
    const keyed = txBody({ nonce: 0n });
    const keyless = keylessBody({ nonce: 0n });
    const t = signTx(keyed);
    const e1 = openTx(encodeTx(t));
    const e2 = openTx(encodeTx({ body: keyless, signature: t.signature }));
    assert.deepEqual(e1.from, e2.from);
    assert.notEqual(e1.hashHex, e2.hashHex);
    assert.equal(b44.verify(key(1).publicKey, e2.signBytes, t.signature), false);
    // another address is another transaction too
    assert.notEqual(openTx(encodeTx({ body: keylessBody({ nonce: 0n, address: addr(2) }), signature: t.signature })).hashHex, e2.hashHex);
  });

  it('strict signer field: an address (20) or an ML-DSA key length (1312, 1952, 2592); anything else is TX_MALFORMED', () => {
    const withField = (field: Uint8Array) =>
      new Writer().bytes(new Writer().u8(1).string(CHAIN).u16(MSG_KIND).u64(0n).u64(1n).bytes(field).bytes(opaqueMsg().msg).finish()).bytes(new Uint8Array(2420)).finish();
    for (const n of [20, 1312, 1952, 2592]) {
      const env = openTx(withField(new Uint8Array(n).fill(9)));
      assert.equal(env.publicKey === null, n === 20, `length ${n}`);
    }
    for (const n of [0, 1, 19, 21, 32, 1311, 1313, 1951, 2000, 2591]) throwsCode(() => openTx(withField(new Uint8Array(n).fill(9))), 'TX_MALFORMED', `length ${n}`);
    // and the encoder refuses to write a keyless body whose address is not 20 bytes
    for (const n of [0, 19, 21, 32]) throwsCode(() => encodeTxBody(keylessBody({ address: new Uint8Array(n) })), 'TX_MALFORMED', `address of ${n}`);
  });

  it('TX_KEY_UNKNOWN is a stable error code (HTTP 422)', () => {
    assert.equal(ERROR_HTTP_STATUS.TX_KEY_UNKNOWN, 422);
  });

  it('tx hash is independent of the (hedged) signature bytes', () => {
    const body = txBody({ nonce: 0n });
    const t1 = signTx(body);
    const t2 = signTx(body);
    assert.notDeepEqual(t1.signature, t2.signature);
    const e1 = openTx(encodeTx(t1));
    const e2 = openTx(encodeTx(t2));
    assert.notDeepEqual(e1.raw, e2.raw);
    assert.deepEqual(e1.hash, e2.hash);
    // but the hash does depend on every body field, the kind and every message byte included
    const hashes = new Set<string>([e1.hashHex]);
    const variants = [
      txBody({ nonce: 1n }),
      txBody({ nonce: 0n, fee: 11n }),
      txBody({ nonce: 0n, chainId: 'qn-other' }),
      txBody({ nonce: 0n, publicKey: key(3).publicKey }),
      txBody({ nonce: 0n, payload: opaqueMsg(addr(4)) }),
      txBody({ nonce: 0n, payload: opaqueMsg(addr(2), 12346n) }),
      txBody({ nonce: 0n, payload: opaqueMsg(addr(2), 12345n, 0x0102) }),
      txBody({ nonce: 0n, payload: { kind: MSG_KIND, msg: withTrailing(opaqueMsg().msg) } }),
    ];
    for (const v of variants) hashes.add(openTx(encodeTx({ body: v, signature: t1.signature })).hashHex);
    assert.equal(hashes.size, variants.length + 1);
  });

  it('rejects trailing bytes after the tx and inside the body', () => {
    const tx = signTx(txBody());
    throwsCode(() => openTx(withTrailing(encodeTx(tx))), 'TX_MALFORMED');
    const body = withTrailing(encodeTxBody(tx.body), [0, 0]);
    throwsCode(() => openTx(new Writer().bytes(body).bytes(tx.signature).finish()), 'TX_MALFORMED');
  });

  it('rejects truncation with TX_MALFORMED', () => {
    const raw = encodeTx(signTx(txBody()));
    rejectsTruncation(raw, openTx, 'TX_MALFORMED');
    // truncated body inside a well-formed envelope (cut in the kind, the key, the message)
    const body = encodeTxBody(txBody());
    for (const n of [0, 1, 5, KIND_OFF + 1, body.length - 30, body.length - 8, body.length - 1]) {
      throwsCode(() => openTx(new Writer().bytes(body.slice(0, n)).bytes(new Uint8Array(4)).finish()), 'TX_MALFORMED', `body prefix ${n}`);
    }
  });

  it('rejects oversize length prefixes with TX_MALFORMED', () => {
    const tx = signTx(txBody());
    const body = encodeTxBody(tx.body);
    // body length prefix far beyond the input
    const raw = encodeTx(tx);
    const huge = raw.slice();
    new DataView(huge.buffer).setUint32(0, 0xffffffff);
    throwsCode(() => openTx(huge), 'TX_MALFORMED');
    // signature length prefix > MAX_SIGNATURE_BYTES
    throwsCode(() => openTx(new Writer().bytes(body).u32(4628).finish()), 'TX_MALFORMED');
    // public key longer than MAX_PUBLIC_KEY_BYTES
    const bigPk = encodeTxBody(txBody({ publicKey: new Uint8Array(2593) }));
    throwsCode(() => openTx(new Writer().bytes(bigPk).bytes(new Uint8Array(0)).finish()), 'TX_MALFORMED');
    // chain id longer than 64 bytes
    const longChain = new Writer().u8(1).string('a'.repeat(65)).finish();
    throwsCode(() => openTx(new Writer().bytes(longChain).bytes(new Uint8Array(0)).finish()), 'TX_MALFORMED');
    // message length prefix beyond the body, or beyond MAX_TX_BYTES
    const head = () => new Writer().u8(1).string(CHAIN).u16(MSG_KIND).u64(0).u64(0).bytes(key(1).publicKey);
    throwsCode(() => openTx(new Writer().bytes(head().u32(100).fixed(new Uint8Array(10), 10).finish()).bytes(new Uint8Array(0)).finish()), 'TX_MALFORMED', 'message beyond body');
    throwsCode(() => openTx(new Writer().bytes(head().u32(MAX_TX_BYTES + 1).finish()).bytes(new Uint8Array(0)).finish()), 'TX_MALFORMED', 'message over the limit');
    // no message at all
    throwsCode(() => openTx(new Writer().bytes(head().finish()).bytes(new Uint8Array(0)).finish()), 'TX_MALFORMED', 'no message');
  });

  it('rejects over-size input with TX_TOO_LARGE before decoding', () => {
    // a stake transaction carries two keys and two signatures: the limit leaves room for ML-DSA-87 ones
    assert.equal(MAX_TX_BYTES, 16384);
    throwsCode(() => openTx(new Uint8Array(MAX_TX_BYTES + 1)), 'TX_TOO_LARGE');
    // exactly the limit is decoded (and is garbage here)
    throwsCode(() => openTx(new Uint8Array(MAX_TX_BYTES)), 'TX_MALFORMED');
    // a well-formed transaction one byte over the limit (its message is too big) is TX_TOO_LARGE too
    const fixedPart = encodeTx({ body: txBody({ payload: { kind: MSG_KIND, msg: new Uint8Array(0) } }), signature: new Uint8Array(2420) }).length;
    const fits = { body: txBody({ payload: { kind: MSG_KIND, msg: new Uint8Array(MAX_TX_BYTES - fixedPart) } }), signature: new Uint8Array(2420) };
    assert.equal(encodeTx(fits).length, MAX_TX_BYTES);
    assert.deepEqual(openTx(encodeTx(fits)).tx, fits);
    const over = { ...fits, body: { ...fits.body, payload: { kind: MSG_KIND, msg: new Uint8Array(MAX_TX_BYTES - fixedPart + 1) } } };
    throwsCode(() => openTx(encodeTx(over)), 'TX_TOO_LARGE');
  });

  it('rejects unknown versions and invalid chain ids; any u16 kind passes the envelope (the app refuses unknown kinds)', () => {
    const body = encodeTxBody(txBody());
    const wrap = (b: Uint8Array) => new Writer().bytes(b).bytes(new Uint8Array(2420)).finish();
    const v2 = body.slice();
    v2[0] = 2;
    throwsCode(() => openTx(wrap(v2)), 'TX_MALFORMED');
    const v0 = body.slice();
    v0[0] = 0;
    throwsCode(() => openTx(wrap(v0)), 'TX_MALFORMED');
    assert.deepEqual([...body.subarray(KIND_OFF, KIND_OFF + 2)], [MSG_KIND >> 8, MSG_KIND & 0xff]);
    // the codec does not interpret kinds: each one is carried as is, the message untouched
    for (const k of [0, 7, 0x00ff, 0x7f01, 0xffff]) {
      const bk = body.slice();
      bk[KIND_OFF] = k >> 8;
      bk[KIND_OFF + 1] = k & 0xff;
      const env = openTx(wrap(bk));
      assert.equal(env.tx.body.payload.kind, k, `kind ${k}`);
      assert.deepEqual(env.tx.body.payload.msg, opaqueMsg().msg);
    }
    const badChain = new Writer().u8(1).string('Bad Chain').finish();
    throwsCode(() => openTx(wrap(new Uint8Array([...badChain, ...body.slice(KIND_OFF)]))), 'TX_MALFORMED');
    const invalidUtf8 = new Writer().u8(1).bytes(new Uint8Array([0xff])).finish();
    throwsCode(() => openTx(wrap(new Uint8Array([...invalidUtf8, ...body.slice(KIND_OFF)]))), 'TX_MALFORMED');
  });

  it("signing domain: 'beacon' for the xfer module's system kinds only, 'tx' for every other kind", () => {
    for (const kind of [0, MSG_KIND, 0x0103, XFER_MODULE_ID << 8, XPREPARE_KIND, XDECISION_KIND, (XFER_MODULE_ID << 8) | 3, 0x0301, 0xffff]) {
      const body = txBody({ payload: { kind, msg: new Uint8Array([1, 2, 3]) } });
      const domain = kind === XPREPARE_KIND || kind === XDECISION_KIND ? 'beacon' : 'tx';
      assert.equal(isSystemKind(kind), domain === 'beacon', `kind ${kind}`);
      assert.deepEqual(txSigningBytes(body), signingBytes(CHAIN, domain, encodeTxBody(body)), `kind ${kind}`);
      assert.deepEqual(openTx(encodeTx({ body, signature: new Uint8Array(0) })).signBytes, txSigningBytes(body), `kind ${kind}`);
    }
    // the same body under the other domain is another id: a user transaction cannot pass for a beacon entry
    const user = txBody();
    const asBeacon = txBody({ payload: { kind: XPREPARE_KIND, msg: user.payload.msg } });
    assert.notDeepEqual(openTx(encodeTx(signTx(user))).hash, openTx(encodeTx(signTx(asBeacon))).hash);
    const sig = b44.sign(key(1).secretKey, signingBytes(CHAIN, 'tx', encodeTxBody(asBeacon)));
    const env = openTx(encodeTx({ body: asBeacon, signature: sig }));
    assert.equal(b44.verify(key(1).publicKey, env.signBytes, env.tx.signature), false, "a system kind signed over 'tx'");
  });

  it('txRoot is the merkle root over leaf-hashed tx hashes', () => {
    const hs = [hash('a'), hash('b'), hash('c')];
    assert.deepEqual(txRoot(hs), merkleRootOfLeafHashes(hs.map(merkleLeaf)));
    assert.deepEqual(txRoot([]), ZERO_HASH);
    assert.notDeepEqual(txRoot(hs), txRoot([hs[1]!, hs[0]!, hs[2]!]));
  });
});

// ------------------------------------------------------------------ blocks

function header(over: Partial<BlockHeader> = {}): BlockHeader {
  return {
    chainId: CHAIN,
    shard: 2,
    height: 17,
    slot: 40,
    parentHash: hash('parent'),
    stateRoot: hash('state'),
    txRoot: hash('txroot'),
    proposer: addr(5),
    txCount: 2,
    ...over,
  };
}

function block(over: Partial<Block> = {}): Block {
  const txs = [encodeTx(signTx(txBody({ nonce: 0n }))), new Uint8Array([1, 2, 3])];
  return { header: header({ txCount: txs.length }), signature: fakeSig(7), txs, ...over };
}

describe('types: blocks', () => {
  it('header round trip and exact size', () => {
    const h = header();
    const e = encodeHeader(h);
    assert.deepEqual(decodeHeader(e), h);
    assert.equal(e.length, 1 + 4 + CHAIN.length + 4 + 8 + 8 + 32 * 3 + 20 + 4);
    const maxes = header({ shard: 0xffffffff, height: Number.MAX_SAFE_INTEGER, slot: 0, txCount: 0 });
    assert.deepEqual(decodeHeader(encodeHeader(maxes)), maxes);
  });

  it('block round trip, with and without transactions', () => {
    const b = block();
    const e = encodeBlock(b);
    assert.deepEqual(decodeBlock(e), b);
    assert.deepEqual(encodeBlock(decodeBlock(e)), e);
    const empty: Block = { header: header({ txCount: 0 }), signature: new Uint8Array(0), txs: [] };
    assert.deepEqual(decodeBlock(encodeBlock(empty)), empty);
  });

  it('real signature over the header verifies; blockHash is independent of the signature', () => {
    const h = header();
    const s1 = b44.sign(key(5).secretKey, headerSigningBytes(h));
    const s2 = b44.sign(key(5).secretKey, headerSigningBytes(h));
    assert.ok(b44.verify(key(5).publicKey, headerSigningBytes(h), s1));
    assert.ok(b44.verify(key(5).publicKey, headerSigningBytes(h), s2));
    const d1 = decodeBlock(encodeBlock({ header: h, signature: s1, txs: [new Uint8Array(1), new Uint8Array(2)] }));
    const d2 = decodeBlock(encodeBlock({ header: h, signature: s2, txs: [new Uint8Array(1), new Uint8Array(2)] }));
    assert.deepEqual(blockHash(d1.header), blockHash(d2.header));
    assert.deepEqual(blockHash(h), sha256(signingBytes(CHAIN, 'block', encodeHeader(h))));
  });

  it('blockHash changes with every header field', () => {
    const base = toHex(blockHash(header()));
    const variants: Partial<BlockHeader>[] = [
      { chainId: 'qn-other' },
      { shard: 3 },
      { height: 18 },
      { slot: 41 },
      { parentHash: hash('p2') },
      { stateRoot: hash('s2') },
      { txRoot: hash('t2') },
      { proposer: addr(6) },
      { txCount: 3 },
    ];
    const seen = new Set([base]);
    for (const v of variants) seen.add(toHex(blockHash(header(v))));
    assert.equal(seen.size, variants.length + 1);
  });

  it('rejects trailing bytes, truncation, tx count mismatch', () => {
    const e = encodeBlock(block());
    throwsCode(() => decodeBlock(withTrailing(e)), 'MALFORMED');
    rejectsTruncation(e, decodeBlock, 'MALFORMED');
    const mismatch = encodeBlock({ ...block(), header: header({ txCount: 3 }) });
    throwsCode(() => decodeBlock(mismatch), 'MALFORMED');
    throwsCode(() => decodeHeader(withTrailing(encodeHeader(header()))), 'MALFORMED');
    rejectsTruncation(encodeHeader(header()), decodeHeader, 'MALFORMED');
    // trailing bytes inside the header's length-prefixed slot
    const hdr = withTrailing(encodeHeader(header({ txCount: 0 })));
    throwsCode(() => decodeBlock(new Writer().bytes(hdr).bytes(new Uint8Array(0)).u32(0).finish()), 'MALFORMED');
  });

  it('rejects unknown header versions, oversize lengths and oversize blocks', () => {
    const h = encodeHeader(header({ txCount: 0 }));
    const v2 = h.slice();
    v2[0] = CODEC_VERSION + 1;
    throwsCode(() => decodeHeader(v2), 'MALFORMED');
    throwsCode(() => decodeBlock(new Writer().bytes(v2).bytes(new Uint8Array(0)).u32(0).finish()), 'MALFORMED');
    // header slot larger than 1024
    throwsCode(() => decodeBlock(new Writer().u32(1025).finish()), 'MALFORMED');
    // signature longer than MAX_SIGNATURE_BYTES
    throwsCode(() => decodeBlock(new Writer().bytes(h).u32(4628).finish()), 'MALFORMED');
    // tx count above MAX_BLOCK_TXS
    throwsCode(() => decodeBlock(new Writer().bytes(encodeHeader(header({ txCount: 10_001 }))).bytes(new Uint8Array(0)).u32(10_001).finish()), 'MALFORMED');
    // a tx longer than MAX_TX_BYTES
    throwsCode(
      () => decodeBlock(new Writer().bytes(encodeHeader(header({ txCount: 1 }))).bytes(new Uint8Array(0)).u32(1).u32(MAX_TX_BYTES + 1).finish()),
      'MALFORMED',
    );
    throwsCode(() => decodeBlock(new Uint8Array(MAX_BLOCK_BYTES + 1)), 'MALFORMED');
    // height beyond MAX_SAFE_INTEGER
    const hi = new Writer().u8(1).string(CHAIN).u32(0).u64(2n ** 53n).u64(0).finish();
    throwsCode(() => decodeHeader(new Uint8Array([...hi, ...new Uint8Array(32 * 3 + 20 + 4)])), 'MALFORMED');
  });
});

// ------------------------------------------------------------------ votes

function voteBody(over: Partial<VoteBody> = {}): VoteBody {
  return { chainId: CHAIN, shard: 1, height: 9, round: 2, step: 'prevote', blockHash: hash('blk'), validator: addr(7), ...over };
}

describe('types: votes', () => {
  it('round trip for prevote/precommit, for a block and for nil', () => {
    for (const step of ['prevote', 'precommit'] as const) {
      for (const bh of [hash('blk'), null]) {
        const v: SignedVote = { body: voteBody({ step, blockHash: bh }), signature: fakeSig(3) };
        const e = encodeVote(v);
        assert.deepEqual(decodeVote(e), v);
        assert.deepEqual(encodeVote(decodeVote(e)), e);
      }
    }
    const nil = encodeVoteBody(voteBody({ blockHash: null }));
    const some = encodeVoteBody(voteBody());
    assert.equal(some.length - nil.length, 32);
  });

  it('gossip form: a first send is the plain vote; a re-send adds an unsigned counter, new bytes for the same signed vote', () => {
    const v: SignedVote = { body: voteBody(), signature: fakeSig(3) };
    assert.deepEqual(encodeVoteGossip(v), encodeVote(v));
    const r1 = encodeVoteGossip(v, 1);
    const r2 = encodeVoteGossip(v, 2);
    assert.equal(r1.length, encodeVote(v).length + 4);
    assert.notDeepEqual(r1, r2, 'each re-send has its own gossip id');
    for (const e of [encodeVoteGossip(v), r1, r2]) assert.deepEqual(decodeVoteGossip(e), v);
    // The strict vote codec still refuses the trailer; the gossip decoder refuses anything else.
    assert.throws(() => decodeVote(r1), /MALFORMED|trailing/i);
    assert.throws(() => decodeVoteGossip(encodeVoteGossip(v).slice(0, -1)), (e: unknown) => (e as { code?: string }).code === 'MALFORMED');
    const zero = new Uint8Array(r1);
    zero.fill(0, zero.length - 4);
    assert.throws(() => decodeVoteGossip(zero), (e: unknown) => (e as { code?: string }).code === 'MALFORMED');
    const long = new Uint8Array(r1.length + 1);
    long.set(r1);
    assert.throws(() => decodeVoteGossip(long), (e: unknown) => (e as { code?: string }).code === 'MALFORMED');
    assert.throws(() => encodeVoteGossip(v, -1), RangeError);
  });

  it('nil vote and a vote for the zero hash are distinct', () => {
    const a = encodeVoteBody(voteBody({ blockHash: null }));
    const b = encodeVoteBody(voteBody({ blockHash: new Uint8Array(32) }));
    assert.notDeepEqual(a, b);
    assert.equal(decodeVote(encodeVote({ body: voteBody({ blockHash: new Uint8Array(32) }), signature: new Uint8Array(0) })).body.blockHash?.length, 32);
  });

  it('real signatures verify under the vote domain only', () => {
    const body = voteBody({ step: 'precommit' });
    const sig = b44.sign(key(7).secretKey, voteSigningBytes(body));
    const d = decodeVote(encodeVote({ body, signature: sig }));
    assert.ok(b44.verify(key(7).publicKey, voteSigningBytes(d.body), d.signature));
    assert.equal(b44.verify(key(7).publicKey, voteSigningBytes({ ...d.body, step: 'prevote' }), d.signature), false);
    assert.equal(b44.verify(key(7).publicKey, signingBytes(CHAIN, 'proposal', encodeVoteBody(body)), d.signature), false);
  });

  it('rejects unknown steps, bad nil flag, versions, trailing bytes, truncation', () => {
    const body = encodeVoteBody(voteBody());
    const stepOff = 1 + 4 + CHAIN.length + 4 + 8 + 8;
    assert.equal(body[stepOff], 1);
    const wrap = (b: Uint8Array) => new Writer().bytes(b).bytes(new Uint8Array(0)).finish();
    assert.doesNotThrow(() => decodeVote(wrap(body)));
    for (const s of [0, 3, 255]) {
      const x = body.slice();
      x[stepOff] = s;
      throwsCode(() => decodeVote(wrap(x)), 'MALFORMED', `step ${s}`);
    }
    const flag = body.slice();
    flag[stepOff + 1] = 2;
    throwsCode(() => decodeVote(wrap(flag)), 'MALFORMED');
    // nil flag 0 followed by a hash -> trailing bytes in the body
    const nilWithHash = body.slice();
    nilWithHash[stepOff + 1] = 0;
    throwsCode(() => decodeVote(wrap(nilWithHash)), 'MALFORMED');
    const ver = body.slice();
    ver[0] = 9;
    throwsCode(() => decodeVote(wrap(ver)), 'MALFORMED');
    throwsCode(() => decodeVote(withTrailing(encodeVote({ body: voteBody(), signature: fakeSig(1) }))), 'MALFORMED');
    throwsCode(() => decodeVote(wrap(withTrailing(body))), 'MALFORMED');
    rejectsTruncation(encodeVote({ body: voteBody(), signature: fakeSig(1, 40) }), decodeVote, 'MALFORMED');
    // oversize body slot (> 256) and signature (> 4627)
    throwsCode(() => decodeVote(new Writer().u32(257).finish()), 'MALFORMED');
    throwsCode(() => decodeVote(new Writer().bytes(body).u32(4628).finish()), 'MALFORMED');
  });
});

// ------------------------------------------------------------------ proposals

function proposalBody(over: Partial<ProposalBody> = {}): ProposalBody {
  return { chainId: CHAIN, shard: 2, height: 17, round: 4, validRound: -1, blockHash: blockHash(header()), proposer: addr(5), ...over };
}

describe('types: proposals', () => {
  function compact(validRound = -1, n = 2) {
    const txHashes = Array.from({ length: n }, (_, i) => hash(`tx${i}`));
    return { body: proposalBody({ validRound }), signature: fakeSig(4), header: header({ txCount: n, txRoot: txRoot(txHashes) }), headerSignature: fakeSig(9), txHashes };
  }

  it('compact proposal round trip with validRound -1, 0 and > 0, and 0 or many tx ids', () => {
    for (const validRound of [-1, 0, 3, Number.MAX_SAFE_INTEGER - 1]) {
      for (const n of [0, 1, 300]) {
        const p = compact(validRound, n);
        const e = encodeCompactProposal(p);
        const d = decodeCompactProposal(e);
        assert.deepEqual(d, p);
        assert.equal(d.body.validRound, validRound);
        assert.deepEqual(encodeCompactProposal(d), e);
      }
    }
  });

  it('a compact proposal whose id count disagrees with the header is malformed', () => {
    const p = compact(-1, 3);
    throwsCode(() => decodeCompactProposal(encodeCompactProposal({ ...p, header: { ...p.header, txCount: 2 } })), 'MALFORMED');
  });

  it('tx batches and id lists round trip; empty, oversize and truncated batches are malformed', () => {
    const raws = [encodeTx(signTx(txBody({ nonce: 0n }))), encodeTx(signTx(txBody({ nonce: 1n })))];
    assert.deepEqual(decodeTxBatch(encodeTxBatch(raws)), raws);
    assert.throws(() => encodeTxBatch([]), RangeError);
    assert.throws(() => encodeTxBatch(new Array(MAX_TX_BATCH + 1).fill(raws[0])), RangeError);
    throwsCode(() => decodeTxBatch(new Writer().u8(CODEC_VERSION).u32(0).finish()), 'MALFORMED');
    throwsCode(() => decodeTxBatch(new Writer().u8(CODEC_VERSION).u32(MAX_TX_BATCH + 1).finish()), 'MALFORMED');
    const e = encodeTxBatch(raws);
    throwsCode(() => decodeTxBatch(withTrailing(e)), 'MALFORMED');
    rejectsTruncation(e, decodeTxBatch, 'MALFORMED');
    const ids = [hash('a'), hash('b')];
    assert.deepEqual(decodeTxIdList(encodeTxIdList(ids)), ids);
    throwsCode(() => decodeTxIdList(withTrailing(encodeTxIdList(ids))), 'MALFORMED');
  });

  it('validRound -1 is encoded as 0 on the wire, distinct from validRound 0', () => {
    const a = encodeProposalBody(proposalBody({ validRound: -1 }));
    const b = encodeProposalBody(proposalBody({ validRound: 0 }));
    assert.notDeepEqual(a, b);
    const off = 1 + 4 + CHAIN.length + 4 + 8 + 8;
    assert.deepEqual([...a.subarray(off, off + 8)], [0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual([...b.subarray(off, off + 8)], [0, 0, 0, 0, 0, 0, 0, 1]);
    assert.throws(() => encodeProposalBody(proposalBody({ validRound: -2 })), RangeError);
  });

  it('real signature verifies under the proposal domain', () => {
    const body = proposalBody({ validRound: 1 });
    const sig = b44.sign(key(5).secretKey, proposalSigningBytes(body));
    const d = decodeCompactProposal(encodeCompactProposal({ ...compact(1), body, signature: sig }));
    assert.ok(b44.verify(key(5).publicKey, proposalSigningBytes(d.body), d.signature));
    assert.equal(b44.verify(key(5).publicKey, proposalSigningBytes({ ...d.body, validRound: -1 }), d.signature), false);
  });

  it('rejects trailing bytes, truncation, versions and a malformed inner body or header', () => {
    const p = compact();
    const e = encodeCompactProposal(p);
    throwsCode(() => decodeCompactProposal(withTrailing(e)), 'MALFORMED');
    rejectsTruncation(e, decodeCompactProposal, 'MALFORMED');
    const body = encodeProposalBody(p.body);
    const ver = body.slice();
    ver[0] = 2;
    const rest = (b: Uint8Array, h = encodeHeader(p.header)) => {
      const w = new Writer().u8(CODEC_VERSION).bytes(b).bytes(p.signature).bytes(h).bytes(p.headerSignature).u32(p.txHashes.length);
      for (const x of p.txHashes) w.fixed(x, 32);
      return w.finish();
    };
    assert.deepEqual(rest(body), e);
    throwsCode(() => decodeCompactProposal(rest(ver)), 'MALFORMED');
    throwsCode(() => decodeCompactProposal(rest(withTrailing(body))), 'MALFORMED');
    throwsCode(() => decodeCompactProposal(rest(body, withTrailing(encodeHeader(p.header)))), 'MALFORMED');
    throwsCode(() => decodeCompactProposal(new Writer().u8(CODEC_VERSION).u32(257).finish()), 'MALFORMED');
  });
});

// ------------------------------------------------------------------ certificates

function cert(n: number): Certificate {
  return {
    height: 17,
    round: 1,
    blockHash: blockHash(header()),
    votes: Array.from({ length: n }, (_, i) => ({ validator: addr(10 + i), signature: fakeSig(i, 50 + i) })),
  };
}

describe('types: certificates', () => {
  it('round trip with 0 and several votes', () => {
    for (const n of [0, 1, 4]) {
      const c = cert(n);
      const e = encodeCertificate(c);
      assert.deepEqual(decodeCertificate(e), c);
      assert.deepEqual(encodeCertificate(decodeCertificate(e)), e);
    }
  });

  it('certificateVoteBody rebuilds the precommit each validator signed', () => {
    const c = cert(0);
    const v = addr(11);
    const body = certificateVoteBody(c, CHAIN, 2, v);
    assert.deepEqual(body, { chainId: CHAIN, shard: 2, height: 17, round: 1, step: 'precommit', blockHash: c.blockHash, validator: v });
    const sig = b44.sign(key(11).secretKey, voteSigningBytes(body));
    const c2 = decodeCertificate(encodeCertificate({ ...c, votes: [{ validator: v, signature: sig }] }));
    assert.ok(b44.verify(key(11).publicKey, voteSigningBytes(certificateVoteBody(c2, CHAIN, 2, c2.votes[0]!.validator)), c2.votes[0]!.signature));
  });

  it('rejects trailing bytes, truncation, versions and oversize counts', () => {
    const e = encodeCertificate(cert(3));
    throwsCode(() => decodeCertificate(withTrailing(e)), 'MALFORMED');
    rejectsTruncation(e, decodeCertificate, 'MALFORMED');
    const v = e.slice();
    v[0] = 0;
    throwsCode(() => decodeCertificate(v), 'MALFORMED');
    const over = new Writer().u8(1).u64(1).u64(0).fixed(new Uint8Array(32), 32).u32(MAX_COMMITTEE + 1).finish();
    throwsCode(() => decodeCertificate(over), 'MALFORMED');
    const bigSig = new Writer().u8(1).u64(1).u64(0).fixed(new Uint8Array(32), 32).u32(1).fixed(new Uint8Array(20), 20).u32(4628).finish();
    throwsCode(() => decodeCertificate(bigSig), 'MALFORMED');
  });
});

// ------------------------------------------------------------------ evidence

describe('types: evidence', () => {
  it('round trip of two conflicting votes', () => {
    const first: SignedVote = { body: voteBody({ step: 'precommit', blockHash: hash('x') }), signature: fakeSig(1) };
    const second: SignedVote = { body: voteBody({ step: 'precommit', blockHash: null }), signature: fakeSig(2) };
    const e = encodeEvidence({ first, second });
    assert.deepEqual(decodeEvidence(e), { first, second });
    assert.deepEqual(encodeEvidence(decodeEvidence(e)), e);
  });

  it('round trip with maximal (ML-DSA-87 sized) signatures', () => {
    const first: SignedVote = { body: voteBody({ chainId: 'c'.repeat(64) }), signature: fakeSig(1, 4627) };
    const second: SignedVote = { body: voteBody({ chainId: 'c'.repeat(64), blockHash: hash('y') }), signature: fakeSig(2, 4627) };
    assert.deepEqual(decodeEvidence(encodeEvidence({ first, second })), { first, second });
  });

  it('rejects trailing bytes, truncation, unknown versions and bad inner votes', () => {
    const first: SignedVote = { body: voteBody(), signature: fakeSig(1, 30) };
    const second: SignedVote = { body: voteBody({ round: 3 }), signature: fakeSig(2, 30) };
    const e = encodeEvidence({ first, second });
    throwsCode(() => decodeEvidence(withTrailing(e)), 'MALFORMED');
    rejectsTruncation(e, decodeEvidence, 'MALFORMED');
    const v = e.slice();
    v[0] = 2;
    throwsCode(() => decodeEvidence(v), 'MALFORMED');
    throwsCode(
      () => decodeEvidence(new Writer().u8(1).bytes(withTrailing(encodeVote(first))).bytes(encodeVote(second)).finish()),
      'MALFORMED',
    );
    throwsCode(() => decodeEvidence(new Writer().u8(1).u32(8193).finish()), 'MALFORMED');
  });

  it('evidenceKey names the validator, height, round and step of the first vote', () => {
    const first: SignedVote = { body: voteBody({ step: 'precommit', blockHash: hash('x') }), signature: fakeSig(1) };
    const second: SignedVote = { body: voteBody({ step: 'precommit', blockHash: hash('y') }), signature: fakeSig(2) };
    const k = evidenceKey({ first, second });
    assert.equal(k, `${formatAddress(addr(7))}/9/2/precommit`);
    // whichever two conflicting votes prove it: the block hashes and signatures are not part of the key
    const third: SignedVote = { body: voteBody({ step: 'precommit', blockHash: null }), signature: fakeSig(3) };
    assert.equal(evidenceKey({ first, second: third }), k);
    assert.equal(evidenceKey({ first: { ...first, signature: fakeSig(9) }, second }), k);
    assert.equal(evidenceKey({ first: second, second: first }), k);
    // each of validator, height, round and step is part of the key
    const variants: Partial<VoteBody>[] = [{ validator: addr(8) }, { height: 10 }, { round: 3 }, { step: 'prevote' }];
    const seen = new Set([k]);
    for (const v of variants) {
      const f: SignedVote = { body: voteBody({ step: 'precommit', blockHash: hash('x'), ...v }), signature: fakeSig(1) };
      seen.add(evidenceKey({ first: f, second }));
    }
    assert.equal(seen.size, variants.length + 1);
    // it survives the wire
    assert.equal(evidenceKey(decodeEvidence(encodeEvidence({ first, second }))), k);
  });

  it('every decoder error is a QnexusError (never a raw RangeError)', () => {
    const garbage = [new Uint8Array([1]), new Uint8Array([1, 0, 0, 0, 200]), new Uint8Array(64).fill(0xff)];
    for (const g of garbage) {
      for (const dec of [decodeVote, decodeBlock, decodeCompactProposal, decodeTxBatch, decodeCertificate, decodeEvidence, decodeHeader, openTx]) {
        assert.throws(() => dec(g), QnexusError);
      }
    }
  });
});
