// Cross-shard transfers by two-phase commit: escrow, prepare, decide, on two shard states.
import assert from 'node:assert/strict';
import { addressFromPublicKey, formatAddress, generateKeyPair, getBackend, homeShard, sha256, toHex, utf8, type KeyPair } from '@qnexus/crypto';
import { assignCommittees, epochSeed } from '@qnexus/consensus';
import {
  encodeTx,
  encodeXferRecord,
  genesisHash,
  genesisSupply,
  makeGenesis,
  openTx,
  txSigningBytes,
  type ErrorCode,
  type Genesis,
  type TxBody,
  type TxEnvelope,
  type XferInfo,
  type XferRecord,
  BEACON_SHARD,
} from '@qnexus/types';
import { WorldState, XFER_RECORD_PREFIX, epochCommittees, releaseId, stateParams, verifyXferProof, type BlockContext, type StateParams } from '@qnexus/state';
import { Pending, app, counters, kindOf, message, pendingFee, pendingFees, snapshot, stateWith, throwsCode, userBalances, xinfo, type Counters, type Payload, prng } from './helpers.js';

// ------------------------------------------------------------------ fixtures

const CHAIN = 'qn-xshard-test';
const MIN_FEE = 5n;
const INITIAL = 1_000_000n;
const TIMEOUT = 10;
const b44 = getBackend('ml-dsa-44');
const SIG44 = new Uint8Array(2420); // applyTx does not verify signatures; only the length matters

const gen = (label: string) => generateKeyPair('ml-dsa-44', sha256(utf8(`xshard-state-${label}`)));
const pool: KeyPair[] = Array.from({ length: 14 }, (_, i) => gen(`acct-${i}`));
const addrOf = (k: KeyPair) => addressFromPublicKey(k.publicKey);
const hexOf = (k: KeyPair) => toHex(addrOf(k));
const shardOf = (k: KeyPair) => homeShard(addrOf(k), 2);
/** Funded accounts by home shard (two shards). */
const onShard = [0, 1].map((s) => pool.filter((k) => shardOf(k) === s));
const unfunded = gen('unfunded');
const beacon = gen('beacon');
const impostor = gen('impostor');
const validators = [gen('val-0'), gen('val-1'), gen('val-2')];
const ZERO_ADDR = new Uint8Array(20);

function genesis(): Genesis {
  return makeGenesis({
    chainId: CHAIN,
    scheme: 'ml-dsa-44',
    genesisTime: 0,
    slotMs: 1000,
    epochLength: 16,
    shardCount: 2,
    minFee: MIN_FEE,
    maxBlockTxs: 1000,
    xferTimeoutSlots: TIMEOUT,
    beacon: { publicKey: beacon.publicKey, peerId: '12D3KooWJWEKvSFbben74C7H4YtKjhPMTDxd7gP7zxWSUEeF27st' },
    accounts: pool.map((k) => ({ address: formatAddress(addrOf(k)), balance: INITIAL })),
    validators: validators.map((v, i) => ({ address: formatAddress(addrOf(v)), publicKey: v.publicKey, stake: BigInt(10 + i) })),
    // The 2PC tests burn whole fees so their amounts stay readable; fee
    // splitting and proposer fee records are covered by the randomized run
    // below (with its own burn rate) and by staking.test.ts.
    staking: { feeBurnBps: 10_000, minStake: 100n },
  });
}

const G = genesis();
const P: StateParams[] = [stateParams(G, 0), stateParams(G, 1)];
const [A, A2] = onShard[0]! as [KeyPair, KeyPair];
const [C, C2] = onShard[1]! as [KeyPair, KeyPair];
/** Proposer of every block in these tests (it earns nothing at a 100 % burn rate). */
const PROPOSER = addrOf(validators[0]!);
const EMPTY = new Uint8Array(0);
/** The money counters (the fee epoch moves with the slots of each test). */
const money = (c: Counters) => ({ burned: c.burned, escrow: c.escrow, exported: c.exported, imported: c.imported, fees: c.fees });
const ZERO_MONEY = { burned: 0n, escrow: 0n, exported: 0n, imported: 0n, fees: 0n };

function userTx(kind: 'transfer' | 'xtransfer', from: KeyPair, to: Uint8Array, amount: bigint, o: { nonce?: bigint; fee?: bigint } = {}): TxEnvelope {
  const body: TxBody = { chainId: CHAIN, nonce: o.nonce ?? 0n, fee: o.fee ?? MIN_FEE, publicKey: from.publicKey, payload: message({ kind, to, amount }) };
  return openTx(encodeTx({ body, signature: SIG44 }));
}

const xtransfer = (from: KeyPair, to: Uint8Array, amount: bigint, o: { nonce?: bigint; fee?: bigint } = {}) => userTx('xtransfer', from, to, amount, o);

/** A beacon system entry, really signed (over the 'beacon' domain) unless `sign` is false. */
function systemTx(payload: Payload, o: { signer?: KeyPair; publicKey?: Uint8Array; nonce?: bigint; fee?: bigint; sign?: boolean } = {}): TxEnvelope {
  const signer = o.signer ?? beacon;
  const body: TxBody = { chainId: CHAIN, nonce: o.nonce ?? 0n, fee: o.fee ?? 0n, publicKey: o.publicKey ?? signer.publicKey, payload: message(payload) };
  const signature = o.sign === false ? SIG44 : b44.sign(signer.secretKey, txSigningBytes(body));
  return openTx(encodeTx({ body, signature }));
}

const prepare = (x: XferInfo, o: Parameters<typeof systemTx>[1] = {}) => systemTx({ kind: 'xprepare', xfer: x }, o);
const decision = (x: XferInfo, commit: boolean, o: Parameters<typeof systemTx>[1] = {}) => systemTx({ kind: 'xdecision', xfer: x, commit }, o);

/** sum(balances) + burned + fees + escrow + exported − imported of one shard state. */
function accounted(s: WorldState): bigint {
  const c = counters(s);
  return userBalances(s) + c.burned + c.fees + c.escrow + c.exported - c.imported;
}

function assertInvariant(s: WorldState, shard: number, msg = ''): void {
  assert.equal(accounted(s), genesisSupply(G, shard), `per-shard invariant on shard ${shard} ${msg}`);
  for (const k of ['burned', 'escrow', 'exported', 'imported', 'fees'] as const) assert.ok(counters(s)[k] >= 0n, `${k} >= 0 ${msg}`);
  // the fees counter is exactly the sum of the proposers' pending fees
  assert.equal(pendingFees(s).reduce((a, [, v]) => a + v, 0n), counters(s).fees, `fees = Σ pending ${msg}`);
}

/** Execute one block on a shard state, check root, apply, and check the invariant. */
function block(s: WorldState, shard: number, txs: TxEnvelope[], ctx: BlockContext, params: StateParams = P[shard]!): void {
  const exec = app.executeBlock(s, txs, params, ctx);
  s.apply(exec.changes);
  assert.deepEqual(s.root(), exec.stateRoot, 'root after apply = predicted root');
  assertInvariant(s, shard, `after block ${ctx.height}`);
}

/** applyTx must throw `code` and leave the pending writes exactly as they were. */
function refuses(o: Pending, env: TxEnvelope, p: StateParams, ctx: BlockContext, code: ErrorCode, msg?: string): void {
  const before = snapshot(o);
  throwsCode(() => app.applyTx(o.kv, env, p, ctx), code, msg);
  assert.deepEqual(snapshot(o), before, `${msg ?? code}: pending writes must be unchanged`);
}

const bal = (s: { account(h: string): { balance: bigint } | undefined }, k: KeyPair | Uint8Array) => s.account(k instanceof Uint8Array ? toHex(k) : hexOf(k))?.balance ?? 0n;

/** Fresh genesis states of both shards. */
const fresh = () => [app.genesisState(G, 0), app.genesisState(G, 1)] as const;

/** Escrow an xtransfer on the source state at (height, slot) and return the agreed info. */
function escrow(src: WorldState, shard: number, from: KeyPair, to: Uint8Array, amount: bigint, ctx: BlockContext, o: { nonce?: bigint; fee?: bigint } = {}): XferInfo {
  const env = xtransfer(from, to, amount, o);
  block(src, shard, [env], ctx);
  const rec = src.xfer(env.hashHex);
  assert.ok(rec, 'source record written');
  return rec.info;
}

// ------------------------------------------------------------------ tests

describe('state: cross-shard fixture', () => {
  it('has funded accounts on both shards and a zero address homed on shard 0', () => {
    assert.ok(onShard[0]!.length >= 2 && onShard[1]!.length >= 2, 'need two accounts per shard; change the key labels');
    assert.equal(homeShard(ZERO_ADDR, 2), 0);
    assert.equal(genesisSupply(G, 0) + genesisSupply(G, 1), genesisSupply(G));
    assert.deepEqual(P[1], {
      chainId: CHAIN,
      scheme: 'ml-dsa-44',
      minFee: MIN_FEE,
      shard: 1,
      shardCount: 2,
      beaconPublicKey: beacon.publicKey,
      xferTimeoutSlots: TIMEOUT,
      epochLength: 16,
      minStake: 100n,
      feeBurnBps: 10_000,
      maxBlockWeight: 1000,
    });
  });
});

describe('state: 2PC commit path', () => {
  it('escrow -> prepare accepted -> commit on both: recipient credited, counters and invariants hold at every step', () => {
    const [s0, s1] = fresh();
    const supply = genesisSupply(G);
    const root0 = s0.root();
    // 1. the sender's xtransfer escrows amount + burns the fee on the source
    const env = xtransfer(A, addrOf(C), 1000n, { fee: 7n });
    block(s0, 0, [env], { height: 1, slot: 5, proposer: PROPOSER });
    assert.deepEqual(s0.account(hexOf(A)), { balance: INITIAL - 1007n, nonce: 1n, publicKey: A.publicKey });
    assert.deepEqual(money(counters(s0)), { burned: 7n, escrow: 1000n, exported: 0n, imported: 0n, fees: 0n });
    const info: XferInfo = xinfo({ kind: 'transfer', id: env.hash, srcShard: 0, dstShard: 1, from: addrOf(A), to: addrOf(C), amount: 1000n, deadlineSlot: 5 + TIMEOUT, payload: EMPTY });
    const src: XferRecord = { role: 'source', info, prepare: 'accepted', reason: '', decision: 'none', preparedHeight: 1, decidedHeight: 0 };
    assert.deepEqual(s0.xfer(env.hashHex), src);
    assert.notDeepEqual(s0.root(), root0);
    assert.equal(userBalances(s0) + userBalances(s1) + counters(s0).burned, supply - 1000n, 'the amount is in flight (escrowed)');

    // 2. the beacon's prepare on the destination is accepted; nothing moves yet
    const root1 = s1.root();
    block(s1, 1, [prepare(info)], { height: 1, slot: 6, proposer: PROPOSER });
    assert.deepEqual(s1.xfer(env.hashHex), { role: 'destination', info, prepare: 'accepted', reason: '', decision: 'none', preparedHeight: 1, decidedHeight: 0 });
    assert.deepEqual(money(counters(s1)), ZERO_MONEY);
    assert.equal(bal(s1, C), INITIAL);
    assert.notDeepEqual(s1.root(), root1, 'the record is in the state root');

    // 3. commit on the source: escrow becomes exported
    block(s0, 0, [decision(info, true)], { height: 2, slot: 8, proposer: PROPOSER });
    assert.deepEqual(money(counters(s0)), { burned: 7n, escrow: 0n, exported: 1000n, imported: 0n, fees: 0n });
    assert.equal(bal(s0, A), INITIAL - 1007n, 'a commit does not refund');
    assert.deepEqual(s0.xfer(env.hashHex), { ...src, decision: 'commit', decidedHeight: 2 });
    assert.equal(userBalances(s0) + userBalances(s1) + counters(s0).burned, supply - 1000n, 'still in flight until the destination commits');

    // 4. commit on the destination: the recipient is credited, imported balances exported
    block(s1, 1, [decision(info, true)], { height: 2, slot: 9, proposer: PROPOSER });
    assert.equal(bal(s1, C), INITIAL + 1000n);
    assert.deepEqual(money(counters(s1)), { burned: 0n, escrow: 0n, exported: 0n, imported: 1000n, fees: 0n });
    assert.equal(s1.xfer(env.hashHex)!.decision, 'commit');
    assert.equal(s1.xfer(env.hashHex)!.decidedHeight, 2);
    assert.equal(userBalances(s0) + userBalances(s1) + counters(s0).burned + counters(s1).burned, supply, 'global supply once both applied');
    assert.equal(counters(s0).exported, counters(s1).imported);
  });

  it('the destination may apply the commit before the source does', () => {
    const [s0, s1] = fresh();
    const info = escrow(s1, 1, C, addrOf(A2), 250n, { height: 1, slot: 1, proposer: PROPOSER });
    assert.deepEqual(info, { ...info, srcShard: 1, dstShard: 0, deadlineSlot: 1 + TIMEOUT });
    block(s0, 0, [prepare(info)], { height: 1, slot: 2, proposer: PROPOSER });
    block(s0, 0, [decision(info, true)], { height: 2, slot: 3, proposer: PROPOSER });
    assert.equal(bal(s0, A2), INITIAL + 250n);
    // the value sits in the source's escrow and in the recipient's balance until the source commits
    assert.equal(userBalances(s0) + userBalances(s1) + counters(s1).burned, genesisSupply(G));
    assert.equal(counters(s1).escrow, counters(s0).imported);
    block(s1, 1, [decision(info, true)], { height: 2, slot: 4, proposer: PROPOSER });
    assert.equal(userBalances(s0) + userBalances(s1) + counters(s1).burned, genesisSupply(G));
    assert.deepEqual([counters(s1).escrow, counters(s1).exported, counters(s0).imported], [0n, 250n, 250n]);
  });

  it('several transfers in one block, both directions, with replays in the same block refused', () => {
    const [s0, s1] = fresh();
    const t1 = xtransfer(A, addrOf(C), 10n);
    const t2 = xtransfer(A, addrOf(C2), 20n, { nonce: 1n });
    const t3 = xtransfer(A2, addrOf(C), 30n);
    block(s0, 0, [t1, t2, t3], { height: 1, slot: 1, proposer: PROPOSER });
    assert.equal(counters(s0).escrow, 60n);
    assert.equal(counters(s0).burned, 3n * MIN_FEE);
    const infos = [t1, t2, t3].map((t) => s0.xfer(t.hashHex)!.info);
    block(s1, 1, infos.map((x) => prepare(x, { sign: false })), { height: 1, slot: 2, proposer: PROPOSER });
    // a block carrying the same decision twice is invalid
    throwsCode(() => app.executeBlock(s1, [decision(infos[0]!, true, { sign: false }), decision(infos[0]!, true, { sign: false })], P[1]!, { height: 2, slot: 3, proposer: PROPOSER }), 'BAD_BLOCK');
    block(s1, 1, infos.map((x) => decision(x, true, { sign: false })), { height: 2, slot: 3, proposer: PROPOSER });
    block(s0, 0, infos.map((x) => decision(x, true, { sign: false })), { height: 2, slot: 4, proposer: PROPOSER });
    assert.equal(bal(s1, C), INITIAL + 40n);
    assert.equal(bal(s1, C2), INITIAL + 20n);
    assert.deepEqual(money(counters(s0)), { burned: 15n, escrow: 0n, exported: 60n, imported: 0n, fees: 0n });
    assert.deepEqual(money(counters(s1)), { burned: 0n, escrow: 0n, exported: 0n, imported: 60n, fees: 0n });
  });
});

describe('state: 2PC refusal and abort paths', () => {
  it('recipient the zero address: refused (TX_BAD_RECIPIENT) -> abort -> sender refunded the amount, the fee stays burned', () => {
    const [s0, s1] = fresh();
    const info = escrow(s1, 1, C, ZERO_ADDR, 500n, { height: 1, slot: 3, proposer: PROPOSER }, { fee: 9n });
    assert.equal(info.dstShard, 0);
    assert.equal(bal(s1, C), INITIAL - 509n);
    block(s0, 0, [prepare(info)], { height: 1, slot: 4, proposer: PROPOSER });
    const dst = s0.xfer(toHex(info.id))!;
    assert.equal(dst.prepare, 'refused');
    assert.equal(dst.reason, 'TX_BAD_RECIPIENT');
    assert.equal(s0.account(toHex(ZERO_ADDR)), undefined, 'nothing credited to the zero address');
    // a commit for a refused transfer cannot apply on the destination
    refuses(Pending.over(s0), decision(info, true), P[0]!, { height: 2, slot: 5, proposer: PROPOSER }, 'XS_NOT_PREPARED');
    // the beacon aborts: the source refunds the amount (not the fee)
    block(s1, 1, [decision(info, false)], { height: 2, slot: 5, proposer: PROPOSER });
    assert.deepEqual(s1.account(hexOf(C)), { balance: INITIAL - 9n, nonce: 1n, publicKey: C.publicKey });
    assert.deepEqual(money(counters(s1)), { burned: 9n, escrow: 0n, exported: 0n, imported: 0n, fees: 0n });
    assert.equal(s1.xfer(toHex(info.id))!.decision, 'abort');
    block(s0, 0, [decision(info, false)], { height: 2, slot: 6, proposer: PROPOSER });
    assert.deepEqual(s0.xfer(toHex(info.id)), { ...dst, decision: 'abort', decidedHeight: 2 });
    assert.deepEqual(money(counters(s0)), ZERO_MONEY);
    assert.equal(userBalances(s0) + userBalances(s1) + counters(s1).burned, genesisSupply(G));
  });

  it('presumed abort: abort on the destination without a prepare, then a late prepare is XS_ALREADY_DECIDED', () => {
    const [s0, s1] = fresh();
    const info = escrow(s0, 0, A, addrOf(C), 77n, { height: 1, slot: 1, proposer: PROPOSER });
    block(s1, 1, [decision(info, false)], { height: 1, slot: 2, proposer: PROPOSER });
    assert.deepEqual(s1.xfer(toHex(info.id)), { role: 'destination', info, prepare: 'none', reason: '', decision: 'abort', preparedHeight: 0, decidedHeight: 1 });
    assert.deepEqual(money(counters(s1)), ZERO_MONEY);
    refuses(Pending.over(s1), prepare(info), P[1]!, { height: 2, slot: 3, proposer: PROPOSER }, 'XS_ALREADY_DECIDED', 'late prepare');
    refuses(Pending.over(s1), decision(info, true), P[1]!, { height: 2, slot: 3, proposer: PROPOSER }, 'XS_ALREADY_DECIDED', 'commit after abort');
    refuses(Pending.over(s1), decision(info, false), P[1]!, { height: 2, slot: 3, proposer: PROPOSER }, 'XS_ALREADY_DECIDED', 'abort again');
    block(s0, 0, [decision(info, false)], { height: 2, slot: 3, proposer: PROPOSER });
    assert.equal(bal(s0, A), INITIAL - MIN_FEE);
    assert.deepEqual(money(counters(s0)), { ...ZERO_MONEY, burned: MIN_FEE });
  });

  it('an accepted prepare can still be aborted (e.g. the source timed out): nothing is credited', () => {
    const [s0, s1] = fresh();
    const info = escrow(s0, 0, A, addrOf(C), 64n, { height: 1, slot: 1, proposer: PROPOSER });
    block(s1, 1, [prepare(info)], { height: 1, slot: 2, proposer: PROPOSER });
    block(s1, 1, [decision(info, false)], { height: 2, slot: 12, proposer: PROPOSER });
    assert.equal(bal(s1, C), INITIAL);
    assert.deepEqual(money(counters(s1)), ZERO_MONEY);
    block(s0, 0, [decision(info, false)], { height: 2, slot: 12, proposer: PROPOSER });
    assert.equal(bal(s0, A), INITIAL - MIN_FEE);
  });
});

describe('state: 2PC replays and bad entries', () => {
  let s0: WorldState;
  let s1: WorldState;
  let info: XferInfo;
  const next = { height: 3, slot: 7, proposer: PROPOSER };

  beforeEach(() => {
    [s0, s1] = fresh();
    info = escrow(s0, 0, A, addrOf(C), 1234n, { height: 1, slot: 2, proposer: PROPOSER });
  });

  it('the same xprepare twice is XS_DUPLICATE (in one block and across blocks)', () => {
    const p = prepare(info);
    const o = Pending.over(s1);
    app.applyTx(o.kv, p, P[1]!, { height: 1, slot: 3, proposer: PROPOSER });
    refuses(o, p, P[1]!, { height: 1, slot: 3, proposer: PROPOSER }, 'XS_DUPLICATE', 'same overlay');
    block(s1, 1, [p], { height: 1, slot: 3, proposer: PROPOSER });
    refuses(Pending.over(s1), p, P[1]!, next, 'XS_DUPLICATE', 'next block');
    // a re-signed copy (different signature bytes, same id) is the same entry
    const again = prepare(info);
    assert.equal(again.hashHex, p.hashHex);
    refuses(Pending.over(s1), again, P[1]!, next, 'XS_DUPLICATE', 're-signed copy');
  });

  it('the same decision twice is XS_ALREADY_DECIDED, on the source and on the destination', () => {
    block(s1, 1, [prepare(info)], { height: 1, slot: 3, proposer: PROPOSER });
    const d = decision(info, true);
    block(s0, 0, [d], { height: 2, slot: 4, proposer: PROPOSER });
    block(s1, 1, [d], { height: 2, slot: 4, proposer: PROPOSER });
    refuses(Pending.over(s0), d, P[0]!, next, 'XS_ALREADY_DECIDED', 'source');
    refuses(Pending.over(s1), d, P[1]!, next, 'XS_ALREADY_DECIDED', 'destination');
    // the opposite outcome after a decision is refused too
    refuses(Pending.over(s0), decision(info, false), P[0]!, next, 'XS_ALREADY_DECIDED', 'abort after commit (source)');
    refuses(Pending.over(s1), decision(info, false), P[1]!, next, 'XS_ALREADY_DECIDED', 'abort after commit (destination)');
    // and a prepare after the decision
    refuses(Pending.over(s1), prepare(info), P[1]!, next, 'XS_ALREADY_DECIDED', 'prepare after commit');
  });

  it('a decision whose info differs from the record is XS_MISMATCH (every field, both shards)', () => {
    block(s1, 1, [prepare(info)], { height: 1, slot: 3, proposer: PROPOSER });
    const variants: [string, XferInfo][] = [
      ['amount', { ...info, amount: info.amount + 1n }],
      ['recipient', { ...info, to: addrOf(C2) }],
      ['sender', { ...info, from: addrOf(A2) }],
      ['deadline', { ...info, deadlineSlot: info.deadlineSlot + 1 }],
    ];
    for (const [what, x] of variants) {
      for (const commit of [true, false]) {
        refuses(Pending.over(s0), decision(x, commit, { sign: false }), P[0]!, next, 'XS_MISMATCH', `source, ${what}, commit=${commit}`);
        refuses(Pending.over(s1), decision(x, commit, { sign: false }), P[1]!, next, 'XS_MISMATCH', `destination, ${what}, commit=${commit}`);
      }
    }
    // the record is unchanged, and the true decision still applies
    block(s0, 0, [decision(info, true)], next);
    assert.equal(counters(s0).exported, 1234n);
  });

  it('a commit on the destination without a prepare is XS_NOT_PREPARED', () => {
    refuses(Pending.over(s1), decision(info, true), P[1]!, next, 'XS_NOT_PREPARED');
    assert.equal(s1.xfer(toHex(info.id)), undefined);
  });

  it('a decision on the source without an escrow is XS_UNKNOWN_TRANSFER', () => {
    const unknown = { ...info, id: sha256(utf8('never escrowed')) };
    refuses(Pending.over(s0), decision(unknown, true), P[0]!, next, 'XS_UNKNOWN_TRANSFER', 'commit');
    refuses(Pending.over(s0), decision(unknown, false), P[0]!, next, 'XS_UNKNOWN_TRANSFER', 'abort');
  });

  it('an entry not signed with the beacon key is XS_UNAUTHORIZED (checkTxStateless and applyTx)', () => {
    for (const env of [prepare(info, { signer: impostor }), decision(info, true, { signer: impostor }), decision(info, false, { signer: A })]) {
      const shard = app.kindName(env) === 'xprepare' ? 1 : 0;
      throwsCode(() => app.checkStateless(env, P[shard]!), 'XS_UNAUTHORIZED', app.kindName(env));
      refuses(Pending.over(shard ? s1 : s0), env, P[shard]!, next, 'XS_UNAUTHORIZED');
    }
    // the beacon's own entry passes the stateless checks
    assert.doesNotThrow(() => app.checkStateless(prepare(info), P[1]!));
  });

  it('an entry delivered to the wrong shard is XS_WRONG_SHARD', () => {
    // a prepare is for the destination only
    refuses(Pending.over(s0), prepare(info), P[0]!, next, 'XS_WRONG_SHARD', 'prepare on the source');
    throwsCode(() => app.checkStateless(prepare(info), P[0]!), 'XS_WRONG_SHARD');
    // with three shards, a decision for shards 0 and 1 is not for shard 2
    const p3: StateParams = { ...P[0]!, shard: 2, shardCount: 3 };
    throwsCode(() => app.checkStateless(decision(info, true, { sign: false }), p3), 'XS_WRONG_SHARD', 'decision on a third shard');
    throwsCode(() => app.checkStateless(prepare(info, { sign: false }), p3), 'XS_WRONG_SHARD', 'prepare on a third shard');
  });

  it('system entries must carry nonce 0, fee 0 and valid, distinct shards (TX_MALFORMED)', () => {
    throwsCode(() => app.checkStateless(prepare(info, { nonce: 1n, sign: false }), P[1]!), 'TX_MALFORMED', 'nonce');
    throwsCode(() => app.checkStateless(prepare(info, { fee: 1n, sign: false }), P[1]!), 'TX_MALFORMED', 'fee');
    throwsCode(() => app.checkStateless(prepare({ ...info, srcShard: 1 }, { sign: false }), P[1]!), 'TX_MALFORMED', 'src = dst');
    throwsCode(() => app.checkStateless(decision({ ...info, dstShard: 2 }, true, { sign: false }), P[0]!), 'TX_MALFORMED', 'dst out of range');
    throwsCode(() => app.checkStateless(prepare({ ...info, srcShard: 5 }, { sign: false }), P[1]!), 'TX_MALFORMED', 'src out of range');
  });

  it('the beacon key signing a user-kind transaction is just a user (no special rights)', () => {
    // an xtransfer from the beacon's own (unfunded) account fails on funds, not on authority
    const home = homeShard(addrOf(beacon), 2);
    refuses(Pending.over(home ? s1 : s0), xtransfer(beacon, addrOf(home ? A : C), 1n), P[home]!, next, 'TX_INSUFFICIENT_FUNDS');
  });
});

describe('state: xtransfer admission rules', () => {
  const ctx = { height: 1, slot: 1, proposer: PROPOSER };

  it('to a recipient on the same shard is TX_SAME_SHARD; a plain transfer to another shard is TX_CROSS_SHARD', () => {
    const [s0] = fresh();
    refuses(Pending.over(s0), xtransfer(A, addrOf(A2), 5n), P[0]!, ctx, 'TX_SAME_SHARD');
    refuses(Pending.over(s0), userTx('transfer', A, addrOf(C), 5n), P[0]!, ctx, 'TX_CROSS_SHARD');
    // the zero address lives on shard 0: a plain transfer to it from shard 0 is same-shard
    refuses(Pending.over(s0), xtransfer(A, ZERO_ADDR, 5n), P[0]!, ctx, 'TX_SAME_SHARD');
  });

  it('the usual sender rules apply to xtransfers', () => {
    const [s0] = fresh();
    const o = Pending.over(s0);
    refuses(o, xtransfer(C, addrOf(A), 5n), P[0]!, ctx, 'TX_WRONG_SHARD', 'sender on shard 1');
    refuses(o, xtransfer(A, addrOf(C), 0n), P[0]!, ctx, 'TX_BAD_AMOUNT', 'zero amount');
    refuses(o, xtransfer(A, addrOf(C), 5n, { fee: MIN_FEE - 1n }), P[0]!, ctx, 'TX_FEE_TOO_LOW', 'fee');
    refuses(o, xtransfer(A, addrOf(C), INITIAL - MIN_FEE + 1n), P[0]!, ctx, 'TX_INSUFFICIENT_FUNDS', 'amount + fee > balance');
    refuses(o, xtransfer(A, addrOf(C), 5n, { nonce: 1n }), P[0]!, ctx, 'TX_NONCE_FUTURE', 'nonce');
    if (shardOf(unfunded) === 0) refuses(o, xtransfer(unfunded, addrOf(C), 1n), P[0]!, ctx, 'TX_INSUFFICIENT_FUNDS', 'unfunded');
    // exactly the whole balance can be escrowed
    app.applyTx(o.kv, xtransfer(A, addrOf(C), INITIAL - MIN_FEE), P[0]!, ctx);
    assert.equal(o.account(hexOf(A))!.balance, 0n);
    assert.equal(counters(o).escrow, INITIAL - MIN_FEE);
    // replaying the same xtransfer is refused: its nonce is spent before its record is looked at (the
    // record id is the tx hash, so only an exact replay could collide, and that is a stale nonce)
    refuses(o, xtransfer(A, addrOf(C), INITIAL - MIN_FEE), P[0]!, ctx, 'TX_NONCE_STALE');
  });
});

describe('state: prepare refusals', () => {
  it('deadline: a prepare in a block whose slot is past deadlineSlot is refused with XS_DEADLINE_PASSED', () => {
    const [s0, s1] = fresh();
    const info = escrow(s0, 0, A, addrOf(C), 40n, { height: 1, slot: 20, proposer: PROPOSER });
    assert.equal(info.deadlineSlot, 20 + TIMEOUT);
    // at the deadline slot itself: accepted
    const atDeadline = Pending.over(s1);
    app.applyTx(atDeadline.kv, prepare(info), P[1]!, { height: 4, slot: info.deadlineSlot, proposer: PROPOSER });
    assert.equal(atDeadline.xfer(toHex(info.id))!.prepare, 'accepted');
    // one slot later: refused, recorded with the reason
    block(s1, 1, [prepare(info)], { height: 4, slot: info.deadlineSlot + 1, proposer: PROPOSER });
    const rec = s1.xfer(toHex(info.id))!;
    assert.equal(rec.prepare, 'refused');
    assert.equal(rec.reason, 'XS_DEADLINE_PASSED');
    assert.equal(rec.preparedHeight, 4);
    throwsCode(() => app.applyTx(Pending.over(s1).kv, decision(info, true), P[1]!, { height: 5, slot: 40, proposer: PROPOSER }), 'XS_NOT_PREPARED');
    block(s1, 1, [decision(info, false)], { height: 5, slot: 40, proposer: PROPOSER });
    block(s0, 0, [decision(info, false)], { height: 2, slot: 40, proposer: PROPOSER });
    assert.equal(bal(s0, A), INITIAL - MIN_FEE);
  });

  it('a recipient whose balance would overflow u64 is refused with TX_BAD_AMOUNT', () => {
    const s1 = stateWith([[addrOf(C), 2n ** 64n - 10n]], P[1]!);
    const info: XferInfo = xinfo({ kind: 'transfer', id: sha256(utf8('overflow')), srcShard: 0, dstShard: 1, from: addrOf(A), to: addrOf(C), amount: 10n, deadlineSlot: 100, payload: EMPTY });
    const o = Pending.over(s1);
    app.applyTx(o.kv, prepare(info, { sign: false }), P[1]!, { height: 1, slot: 1, proposer: PROPOSER });
    assert.deepEqual([o.xfer(toHex(info.id))!.prepare, o.xfer(toHex(info.id))!.reason], ['refused', 'TX_BAD_AMOUNT']);
    const ok = Pending.over(s1);
    app.applyTx(ok.kv, prepare({ ...info, amount: 9n }, { sign: false }), P[1]!, { height: 1, slot: 1, proposer: PROPOSER });
    assert.equal(ok.xfer(toHex(info.id))!.prepare, 'accepted');
  });

  it('a recipient that does not live on the destination shard is refused with XS_WRONG_SHARD (recorded)', () => {
    const [, s1] = fresh();
    const info: XferInfo = xinfo({ kind: 'transfer', id: sha256(utf8('misrouted')), srcShard: 0, dstShard: 1, from: addrOf(A), to: addrOf(A2), amount: 10n, deadlineSlot: 100, payload: EMPTY });
    block(s1, 1, [prepare(info, { sign: false })], { height: 1, slot: 1, proposer: PROPOSER });
    assert.deepEqual([s1.xfer(toHex(info.id))!.prepare, s1.xfer(toHex(info.id))!.reason], ['refused', 'XS_WRONG_SHARD']);
  });
});

describe('state: transfer records in the state root', () => {
  it('the root changes with each record phase; a state reloaded from its records has the same root', () => {
    const [s0, s1] = fresh();
    const roots = new Set<string>([toHex(s1.root())]);
    const info = escrow(s0, 0, A, addrOf(C), 99n, { height: 1, slot: 1, proposer: PROPOSER });
    block(s1, 1, [prepare(info)], { height: 1, slot: 2, proposer: PROPOSER });
    roots.add(toHex(s1.root()));
    block(s1, 1, [decision(info, true)], { height: 2, slot: 3, proposer: PROPOSER });
    roots.add(toHex(s1.root()));
    assert.equal(roots.size, 3);
    for (const s of [s0, s1]) {
      const reloaded = WorldState.fromEntries([...s.kv.all()].map(([k, v]): [string, Uint8Array] => [k, v.slice()]));
      assert.deepEqual(reloaded.root(), s.root());
      assert.deepEqual(reloaded.xfer(toHex(info.id)), s.xfer(toHex(info.id)));
    }
    // without its records the root differs
    const withoutRecords = WorldState.fromEntries([...s1.kv.all()].filter(([k]) => !k.startsWith(XFER_RECORD_PREFIX)));
    assert.notDeepEqual(withoutRecords.root(), s1.root());
    assert.deepEqual(withoutRecords.xferRecords(), []);
  });

  it('proveXfers proofs verify against root() and fail for a tampered record, a tampered proof or another root', () => {
    const [s0] = fresh();
    const ids: string[] = [];
    // several records among the accounts, so the proofs have depth
    for (let i = 0; i < 5; i++) {
      const env = xtransfer(A, addrOf(i % 2 ? C : C2), BigInt(10 + i), { nonce: BigInt(i) });
      block(s0, 0, [env], { height: i + 1, slot: i + 1, proposer: PROPOSER });
      ids.push(env.hashHex);
    }
    const oldRoot = s0.root();
    const unknown = toHex(sha256(utf8('unknown')));
    const items = s0.proveXfers([ids[3]!, unknown, ids[0]!, ids[4]!]);
    assert.equal(items.length, 3, 'unknown ids are skipped');
    const root = s0.root();
    items.forEach((item, i) => {
      const id = [ids[3], ids[0], ids[4]][i]!;
      assert.deepEqual(item.record, encodeXferRecord(s0.xfer(id)!));
      assert.deepEqual(verifyXferProof(root, item), s0.xfer(id), `record ${i} verifies`);
      // tampered record (amount byte), tampered proof, wrong root, garbage record
      const rec = item.record.slice();
      rec[3 + 32 + 4 + 4 + 20 + 20 + 7]! ^= 1; // version, role, kind, id, shards, from, to: the amount's last byte
      assert.equal(verifyXferProof(root, { ...item, record: rec }), null, 'tampered record');
      const p = item.proof;
      for (let k = 0; k < p.length; k++) {
        for (const at of [0, p[k]!.length - 1]) {
          const nodes = p.map((x, j) => (j === k ? x.map((b, i) => (i === at ? b ^ 1 : b)) : x));
          assert.equal(verifyXferProof(root, { ...item, proof: nodes }), null, `tampered node ${k} at byte ${at}`);
        }
      }
      assert.equal(verifyXferProof(root, { ...item, proof: p.slice(1) }), null, 'proof without its root node');
      assert.equal(verifyXferProof(root, { ...item, proof: p.slice(0, -1) }), null, 'shortened proof');
      assert.equal(verifyXferProof(root, { ...item, proof: [...p, p[0]!] }), null, 'lengthened proof');
      // another record's proof for this record
      const otherItem = items[(i + 1) % items.length]!;
      // (a proof is the nodes on the key's path: two records under the same last node share it, and it proves both)
      const samePath = otherItem.proof.length === p.length && otherItem.proof.every((x, j) => Buffer.compare(x, p[j]!) === 0);
      if (!samePath) assert.equal(verifyXferProof(root, { ...item, proof: otherItem.proof }), null, "another record's proof");
      assert.equal(verifyXferProof(app.genesisState(G, 1).root(), item), null, 'another root');
      assert.equal(verifyXferProof(root, { record: new Uint8Array([1, 2, 3]), proof: item.proof }), null, 'garbage record');
    });
    assert.ok(items[0]!.proof.length >= 3, 'records among the accounts: proofs have depth');
    // after a decision the old proof no longer verifies against the new root, a fresh one does
    block(s0, 0, [decision(s0.xfer(ids[0]!)!.info, false)], { height: 6, slot: 6, proposer: PROPOSER });
    const stale = items[1]!;
    assert.equal(verifyXferProof(s0.root(), stale), null);
    assert.notEqual(verifyXferProof(oldRoot, stale), null);
    const freshItem = s0.proveXfers([ids[0]!])[0]!;
    assert.equal(verifyXferProof(s0.root(), freshItem)!.decision, 'abort');
    assert.deepEqual(s0.proveXfers([]), []);
  });
});

describe('state: block building with beacon entries', () => {
  it('executeApplicable skips a replayed entry and applies the rest; the applied list is a valid block', () => {
    const [s0, s1] = fresh();
    const info = escrow(s0, 0, A, addrOf(C), 300n, { height: 1, slot: 1, proposer: PROPOSER });
    const p = prepare(info);
    block(s1, 1, [p], { height: 1, slot: 2, proposer: PROPOSER });
    const d = decision(info, true);
    const user = userTx('transfer', C, addrOf(C2), 3n);
    const ctx = { height: 2, slot: 3, proposer: PROPOSER };
    const r = app.executeApplicable(s1, [p, d, d, user], P[1]!, ctx);
    assert.deepEqual(r.applied.map((e) => e.hashHex), [d.hashHex, user.hashHex]);
    assert.deepEqual(
      r.skipped.map((x) => [app.kindName(x.env), x.error.code]),
      [
        ['xprepare', 'XS_DUPLICATE'],
        ['xdecision', 'XS_ALREADY_DECIDED'],
      ],
    );
    assert.deepEqual(app.executeBlock(s1, r.applied, P[1]!, ctx).stateRoot, r.exec.stateRoot);
    throwsCode(() => app.executeBlock(s1, [p, d], P[1]!, ctx), 'BAD_BLOCK');
    s1.apply(r.exec.changes);
    assert.equal(bal(s1, C), INITIAL + 300n - 3n - MIN_FEE);
    assertInvariant(s1, 1);
  });
});

describe('state: randomized 2PC runs keep every invariant', () => {


  function stakeTx(from: KeyPair, validator: KeyPair, amount: bigint, nonce: bigint, fee: bigint): TxEnvelope {
    const body: TxBody = { chainId: CHAIN, nonce, fee, publicKey: from.publicKey, payload: message({ kind: 'stake', validatorPublicKey: validator.publicKey, amount, validatorSignature: SIG44 }) };
    return openTx(encodeTx({ body, signature: SIG44 }));
  }

  function unstakeTx(from: KeyPair, validator: Uint8Array, nonce: bigint, fee: bigint): TxEnvelope {
    const body: TxBody = { chainId: CHAIN, nonce, fee, publicKey: from.publicKey, payload: message({ kind: 'unstake', validator }) };
    return openTx(encodeTx({ body, signature: SIG44 }));
  }

  it('random transfers, stakes, unstakes, proposer fee rolls and releases; prepares (some late), decisions in random order and replays', () => {
    const rand = prng(0x2bc);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    // A real fee split, so tips accrue and every epoch change sends fee records to the beacon.
    const PR = [0, 1].map((k) => ({ ...P[k]!, feeBurnBps: 4000 }));
    const isShard = (s: number) => s === 0 || s === 1;
    const states = fresh();
    const heights = [0, 0];
    const nonces = new Map<string, bigint>();
    const nextNonce = (k: KeyPair) => {
      const n = nonces.get(hexOf(k)) ?? 0n;
      nonces.set(hexOf(k), n + 1n);
      return n;
    };
    let slot = 0;
    type Pending = { info: XferInfo; prepared?: 'accepted' | 'refused'; decided?: boolean; commit?: boolean; delivered: Map<number, boolean> };
    const pending: Pending[] = [];
    const seenIds = new Set<string>();
    const track = (info: XferInfo) => {
      const id = toHex(info.id);
      assert.ok(!seenIds.has(id), `record id ${id.slice(0, 16)} is new`);
      seenIds.add(id);
      const delivered = new Map<number, boolean>();
      for (const s of [info.srcShard, info.dstShard]) if (isShard(s)) delivered.set(s, false);
      pending.push({ info, delivered });
    };
    const count = { commits: 0, aborts: 0, replays: 0, stakes: 0, unstakes: 0, feeRecords: 0, feeAborts: 0, releases: 0, releasesCredited: 0 };
    // What the beacon received (committed stakes + fees) and paid out (committed releases).
    let beaconIn = 0n;
    let beaconOut = 0n;
    let releaseAttempt = 0;
    const run = (shard: number, txs: TxEnvelope[]) => {
      // one clock for both shards: their blocks may share a slot
      if (rand() < 0.4) slot++;
      heights[shard]!++;
      const s = states[shard]!;
      const before = new Set([...s.xferRecords()].map((x) => toHex(x.info.id)));
      block(s, shard, txs, { height: heights[shard]!, slot, proposer: addrOf(pick(validators)) }, PR[shard]!);
      // fee records the block opened by itself (first block of a new epoch)
      for (const rec of s.xferRecords()) {
        if (kindOf(rec.info) !== 'fees' || before.has(toHex(rec.info.id))) continue;
        assert.equal(rec.preparedHeight, heights[shard]);
        assert.equal(rec.info.srcShard, shard);
        assert.equal(rec.info.dstShard, BEACON_SHARD);
        assert.ok(rec.info.amount > 0n);
        count.feeRecords++;
        track(rec.info);
      }
      return s;
    };
    const decide = (x: Pending, commit: boolean) => {
      x.decided = true;
      x.commit = commit;
      if (commit) count.commits++;
      else count.aborts++;
    };
    const deliver = (x: Pending, target: number) => {
      const s = states[target]!;
      const entry = decision(x.info, x.commit!, { sign: false });
      if (x.delivered.get(target)) {
        throwsCode(() => app.executeBlock(s, [entry], PR[target]!, { height: heights[target]! + 1, slot: slot + 1, proposer: PROPOSER }), 'BAD_BLOCK');
        count.replays++;
        return;
      }
      const id = toHex(x.info.id);
      const kind = kindOf(x.info);
      const pendingBefore = kind === 'fees' ? pendingFee(s, toHex(x.info.from)) : 0n;
      run(target, [entry]);
      x.delivered.set(target, true);
      if (target === x.info.srcShard && (kind === 'stake' || kind === 'fees') && x.commit) beaconIn += x.info.amount;
      if (kind === 'release' && x.commit) {
        beaconOut += x.info.amount;
        count.releasesCredited++;
      }
      if (kind === 'fees' && !x.commit) {
        // the fees return to the proposer's pending fees (a new roll may already have sent them again)
        const rolled = [...s.xferRecords()].some((r) => kindOf(r.info) === 'fees' && r.preparedHeight === heights[target] && toHex(r.info.from) === toHex(x.info.from));
        if (!rolled) assert.ok(pendingFee(s, toHex(x.info.from)) >= pendingBefore + x.info.amount, 'aborted fees are pending again');
        count.feeAborts++;
      }
      assert.equal(s.xfer(id)!.decision, x.commit ? 'commit' : 'abort');
    };

    for (let step = 0; step < 200; step++) {
      const r = rand();
      if (r < 0.3 || pending.length === 0) {
        const shard = rand() < 0.5 ? 0 : 1;
        const from = pick(onShard[shard]!);
        const to = rand() < 0.1 && shard === 1 ? ZERO_ADDR : addrOf(pick(onShard[1 - shard]!));
        const env = xtransfer(from, to, 1n + BigInt(Math.floor(rand() * 5000)), { nonce: nextNonce(from), fee: MIN_FEE + BigInt(Math.floor(rand() * 30)) });
        run(shard, [env]);
        track(states[shard]!.xfer(env.hashHex)!.info);
      } else if (r < 0.4) {
        // a stake or an unstake from a funded account to the beacon
        const shard = rand() < 0.5 ? 0 : 1;
        const from = pick(onShard[shard]!);
        const v = pick([...validators, gen('newcomer')]);
        const fee = MIN_FEE + BigInt(Math.floor(rand() * 30));
        const env = rand() < 0.6 ? stakeTx(from, v, 100n + BigInt(Math.floor(rand() * 3000)), nextNonce(from), fee) : unstakeTx(from, addrOf(v), nextNonce(from), fee);
        if (app.kindName(env) === 'stake') count.stakes++;
        else count.unstakes++;
        run(shard, [env]);
        const rec = states[shard]!.xfer(env.hashHex)!;
        assert.equal(rec.info.to.length, 20);
        assert.deepEqual(rec.info.to, addrOf(v));
        track(rec.info);
      } else if (r < 0.47) {
        // the beacon releases an unbonded validator's funds to its home shard (some to the reserved zero address: refused)
        const shard = rand() < 0.5 ? 0 : 1;
        const home = shard === 0 && rand() < 0.15 ? ZERO_ADDR : addrOf(pick(onShard[shard]!));
        const v = pick(validators);
        const info: XferInfo = xinfo({
          kind: 'release',
          id: releaseId(CHAIN, addrOf(v), releaseAttempt++),
          srcShard: BEACON_SHARD,
          dstShard: shard,
          from: addrOf(v),
          to: home,
          amount: 1n + BigInt(Math.floor(rand() * 2000)),
          deadlineSlot: slot + TIMEOUT,
          payload: EMPTY,
        });
        count.releases++;
        track(info);
      } else {
        // mostly the recent records (so most prepares arrive in time), sometimes any
        const x = rand() < 0.7 ? pending[pending.length - 1 - Math.floor(rand() * Math.min(4, pending.length))]! : pick(pending);
        const dst = x.info.dstShard;
        const needsPrepare = isShard(dst);
        if (needsPrepare && !x.prepared && !x.decided && rand() < 0.7) {
          // deliver the prepare (sometimes after the deadline has passed)
          if (rand() < 0.2) slot = Math.max(slot, x.info.deadlineSlot);
          run(dst, [prepare(x.info, { sign: false })]);
          const rec = states[dst]!.xfer(toHex(x.info.id))!;
          x.prepared = rec.prepare as 'accepted' | 'refused';
          const zero = toHex(x.info.to) === toHex(ZERO_ADDR);
          assert.equal(rec.reason, zero ? 'TX_BAD_RECIPIENT' : slot > x.info.deadlineSlot ? 'XS_DEADLINE_PASSED' : '');
        } else if (!x.decided) {
          // the beacon as destination decides as soon as the record is proven (stake refusals: abort)
          decide(x, needsPrepare ? x.prepared === 'accepted' && rand() < 0.85 : rand() < 0.8);
        }
        if (x.decided) {
          // deliver the decision to one participant shard (random order), or replay an already-delivered phase
          const targets = [...x.delivered.keys()];
          deliver(x, pick(targets));
        } else if (x.prepared && rand() < 0.3) {
          throwsCode(() => app.applyTx(Pending.over(states[dst]!).kv, prepare(x.info, { sign: false }), PR[dst]!, { height: 1, slot, proposer: PROPOSER }), 'XS_DUPLICATE');
          count.replays++;
        }
      }
    }
    // the beacon finishes: decide and deliver everything outstanding (fee records opened meanwhile included; they commit)
    for (let i = 0; i < pending.length; i++) {
      const x = pending[i]!;
      if (!x.decided) decide(x, isShard(x.info.dstShard) ? x.prepared === 'accepted' : true);
      for (const [shard, done] of x.delivered) if (!done) deliver(x, shard);
    }
    if (process.env.QN_DEBUG) console.log(JSON.stringify({ records: pending.length, ...count, slot, beaconIn: String(beaconIn), beaconOut: String(beaconOut) }));
    assert.ok(count.commits > 10 && count.aborts > 5 && count.replays > 3, JSON.stringify(count));
    assert.ok(count.stakes > 3 && count.unstakes > 2 && count.feeRecords > 3 && count.feeAborts > 0 && count.releasesCredited > 2, JSON.stringify(count));
    const [s0, s1] = states;
    assert.equal(counters(s0).escrow + counters(s1).escrow, 0n, 'no escrow left once everything is decided');
    // shard to shard the flows cancel; what remains is what went to the beacon minus what came back
    assert.equal(counters(s0).exported + counters(s1).exported - counters(s0).imported - counters(s1).imported, beaconIn - beaconOut);
    const held = (s: WorldState) => userBalances(s) + counters(s).burned + counters(s).fees;
    assert.equal(held(s0) + held(s1) + beaconIn - beaconOut, genesisSupply(G), 'global conservation (shards + beacon)');
    for (const x of pending) {
      for (const shard of x.delivered.keys()) assert.equal(states[shard]!.xfer(toHex(x.info.id))!.decision, x.commit ? 'commit' : 'abort');
    }
  });
});

describe('state: counters and committees', () => {
  it('counters are read from the bank, xfer and fee entries: zero for a fresh shard, and the same after a reload', () => {
    const [s0] = fresh();
    assert.deepEqual(counters(s0), { ...ZERO_MONEY, feeEpoch: 0 });
    escrow(s0, 0, A, addrOf(C), 42n, { height: 1, slot: 1, proposer: PROPOSER });
    assert.deepEqual(counters(s0), { ...ZERO_MONEY, burned: MIN_FEE, escrow: 42n, feeEpoch: 0 });
    assert.deepEqual(counters(WorldState.fromEntries(s0.kv.all())), counters(s0));
  });

  it('epochCommittees: one committee per shard, every validator once, the same for every epoch (sticky)', () => {
    const cs = epochCommittees(G, 0);
    assert.equal(cs.length, 2);
    assert.deepEqual(cs.flatMap((c) => c.validators.map((v) => v.address)).sort(), G.validators.map((v) => v.address).sort());
    const expected = assignCommittees(
      G.validators.map((v) => ({ address: v.address, stake: v.stake })),
      2,
      epochSeed(CHAIN, genesisHash(G), 0),
    );
    assert.deepEqual(cs, expected);
    for (const e of [1, 2, 1000]) assert.deepEqual(epochCommittees(G, e), cs, `epoch ${e}`);
  });
});
