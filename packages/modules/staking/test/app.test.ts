// The staking module run by the app: the fee split and the proposer fee roll, stake and unstake records to the
// beacon, the beacon's decisions on them and its releases, each block checked against the supply identity.
// (Its messages' encodings and the validator's consent: staking.test.ts; state's staking primitives — record
// ids, equivocation evidence, epoch announcements — are tested in packages/state/test/staking.test.ts.)
import assert from 'node:assert/strict';
import {
  addressFromPublicKey,
  formatAddress,
  generateKeyPair,
  getBackend,
  homeShard,
  sha256,
  toHex,
  utf8,
  type KeyPair,
} from '@qnexus/crypto';
import {
  BEACON_SHARD,
  encodeTx,
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
} from '@qnexus/types';
import {
  WorldState,
  ExecCtx,
  MODULE_IDS,
  moduleKey,
  feesRecordId,
  releaseId,
  splitFee,
  stateParams,
  verifyXferProof,
  type BlockContext,
  type StateParams,
} from '@qnexus/state';
import { OPS, Pending, app, counters, message, pendingFee, pendingFees, snapshot, throwsCode, userBalances, viewAfter, xinfo, type Payload } from '../../../state/test/helpers.js';

// ------------------------------------------------------------------ fixtures

const CHAIN = 'qn-staking-test';
const MIN_FEE = 5n;
const INITIAL = 1_000_000n;
const TIMEOUT = 10;
const L = 8; // epoch length
const b44 = getBackend('ml-dsa-44');
const SIG44 = new Uint8Array(2420); // applyTx does not verify signatures; only the length matters
const PK44 = 1312;
const EMPTY = new Uint8Array(0);

const gen = (label: string) => generateKeyPair('ml-dsa-44', sha256(utf8(`staking-state-${label}`)));
const pool: KeyPair[] = Array.from({ length: 12 }, (_, i) => gen(`acct-${i}`));
const addrOf = (k: KeyPair) => addressFromPublicKey(k.publicKey);
const hexOf = (k: KeyPair | Uint8Array) => toHex(k instanceof Uint8Array ? k : addrOf(k));
const shardOf = (k: KeyPair) => homeShard(addrOf(k), 2);
const onShard = [0, 1].map((s) => pool.filter((k) => shardOf(k) === s));
const beacon = gen('beacon');
const impostor = gen('impostor');
const validators = [gen('val-0'), gen('val-1'), gen('val-2'), gen('val-3')];
const newcomer = gen('newcomer');
const ZERO_ADDR = new Uint8Array(20);

const G: Genesis = makeGenesis({
  chainId: CHAIN,
  scheme: 'ml-dsa-44',
  genesisTime: 0,
  slotMs: 1000,
  epochLength: L,
  shardCount: 2,
  minFee: MIN_FEE,
  maxBlockTxs: 1000,
  xferTimeoutSlots: TIMEOUT,
  beacon: { publicKey: beacon.publicKey, peerId: '12D3KooWJWEKvSFbben74C7H4YtKjhPMTDxd7gP7zxWSUEeF27st' },
  accounts: pool.map((k) => ({ address: formatAddress(addrOf(k)), balance: INITIAL })),
  validators: validators.map((v, i) => ({ address: formatAddress(addrOf(v)), publicKey: v.publicKey, stake: BigInt(1000 + 100 * i) })),
  // defaults: minStake 1000, feeBurnBps 5000
});
const P: StateParams[] = [stateParams(G, 0), stateParams(G, 1)];
const [A, A2] = onShard[0]! as [KeyPair, KeyPair];
const [C] = onShard[1]! as [KeyPair];
const [V0, V1, V2] = validators.map(addrOf) as [Uint8Array, Uint8Array, Uint8Array];

const ctxAt = (height: number, slot: number, proposer: Uint8Array = V0): BlockContext => ({ height, slot, proposer });

function userTx(from: KeyPair, payload: Payload, o: { nonce?: bigint; fee?: bigint } = {}): TxEnvelope {
  const body: TxBody = { chainId: CHAIN, nonce: o.nonce ?? 0n, fee: o.fee ?? MIN_FEE, publicKey: from.publicKey, payload: message(payload) };
  return openTx(encodeTx({ body, signature: SIG44 }));
}
const transfer = (from: KeyPair, to: KeyPair, amount: bigint, o: { nonce?: bigint; fee?: bigint } = {}) => userTx(from, { kind: 'transfer', to: addrOf(to), amount }, o);
const stake = (from: KeyPair, v: KeyPair | Uint8Array, amount: bigint, o: { nonce?: bigint; fee?: bigint; sig?: Uint8Array } = {}) =>
  userTx(from, { kind: 'stake', validatorPublicKey: v instanceof Uint8Array ? v : v.publicKey, amount, validatorSignature: o.sig ?? SIG44 }, o);
const unstake = (from: KeyPair, validator: Uint8Array, o: { nonce?: bigint; fee?: bigint } = {}) => userTx(from, { kind: 'unstake', validator }, o);

function systemTx(payload: Payload): TxEnvelope {
  const body: TxBody = { chainId: CHAIN, nonce: 0n, fee: 0n, publicKey: beacon.publicKey, payload: message(payload) };
  return openTx(encodeTx({ body, signature: b44.sign(beacon.secretKey, txSigningBytes(body)) }));
}
const prepare = (x: XferInfo) => systemTx({ kind: 'xprepare', xfer: x });
const decision = (x: XferInfo, commit: boolean) => systemTx({ kind: 'xdecision', xfer: x, commit });

function refuses(s: WorldState, env: TxEnvelope, p: StateParams, ctx: BlockContext, code: ErrorCode, msg?: string): void {
  const o = Pending.over(s);
  const before = snapshot(o);
  throwsCode(() => app.applyTx(o.kv, env, p, ctx), code, msg);
  assert.deepEqual(snapshot(o), before, `${msg ?? code}: pending writes must be unchanged`);
}

/** Σ balances + burned + fees + escrow + exported − imported = the shard's genesis supply, and fees = Σ pending. */
function assertInvariant(s: WorldState, shard: number, msg = ''): void {
  const c = counters(s);
  assert.equal(userBalances(s) + c.burned + c.fees + c.escrow + c.exported - c.imported, genesisSupply(G, shard), `supply identity on shard ${shard} ${msg}`);
  assert.equal(pendingFees(s).reduce((a, [, v]) => a + v, 0n), c.fees, `fees = Σ pending ${msg}`);
}

function block(s: WorldState, shard: number, txs: TxEnvelope[], ctx: BlockContext): void {
  const exec = app.executeBlock(s, txs, P[shard]!, ctx);
  s.apply(exec.changes);
  assert.deepEqual(s.root(), exec.stateRoot, 'root after apply = predicted root');
  assertInvariant(s, shard, `after block ${ctx.height}`);
}

const bal = (s: { account(h: string): { balance: bigint } | undefined }, k: KeyPair | Uint8Array) => s.account(hexOf(k))?.balance ?? 0n;
const fresh = () => [app.genesisState(G, 0), app.genesisState(G, 1)] as const;
/** Full key of a proposer's pending tips (staking module, 'p' ‖ address) and the prefix of them all. */
const PENDING_PREFIX = toHex(moduleKey(MODULE_IDS.staking, new Uint8Array([0x70])));
const pendingKey = (addr: Uint8Array) => PENDING_PREFIX + toHex(addr);

// ------------------------------------------------------------------ tests

describe('staking: fixture', () => {
  it('has funded accounts on both shards and the genesis staking defaults in the params', () => {
    assert.ok(onShard[0]!.length >= 2 && onShard[1]!.length >= 1);
    assert.equal(P[0]!.epochLength, L);
    assert.equal(P[0]!.minStake, 1000n);
    assert.equal(P[0]!.feeBurnBps, 5000);
  });
});

describe('staking: fee split', () => {
  it('splitFee floors the burn; 0 and 10000 basis points are the extremes', () => {
    assert.deepEqual(splitFee(7n, 5000), { burn: 3n, tip: 4n });
    assert.deepEqual(splitFee(7n, 3333), { burn: 2n, tip: 5n });
    assert.deepEqual(splitFee(5n, 10_000), { burn: 5n, tip: 0n });
    assert.deepEqual(splitFee(5n, 0), { burn: 0n, tip: 5n });
    assert.deepEqual(splitFee(0n, 5000), { burn: 0n, tip: 0n });
  });

  it('every user transaction kind pays burn + tip; the tip goes to the block proposer', () => {
    const [s0] = fresh();
    const o = Pending.over(s0);
    const ctx = ctxAt(1, 1, V1);
    app.applyTx(o.kv, transfer(A, A2, 10n, { fee: 7n }), P[0]!, ctx); // burn 3, tip 4
    app.applyTx(o.kv, userTx(A, { kind: 'xtransfer', to: addrOf(C), amount: 10n }, { nonce: 1n, fee: 9n }), P[0]!, ctx); // 4, 5
    app.applyTx(o.kv, stake(A, newcomer, 1000n, { nonce: 2n, fee: 11n }), P[0]!, ctx); // 5, 6
    app.applyTx(o.kv, unstake(A, V0, { nonce: 3n, fee: 13n }), P[0]!, { ...ctx, proposer: V2 }); // 6, 7 to another proposer
    assert.equal(counters(o).burned, 3n + 4n + 5n + 6n);
    assert.equal(counters(o).fees, 4n + 5n + 6n + 7n);
    assert.deepEqual(pendingFees(o), [[hexOf(V1), 15n], [hexOf(V2), 7n]].sort((a, b) => (a[0]! < b[0]! ? -1 : 1)));
    assert.equal(pendingFee(o, hexOf(V0)), 0n);
    assert.equal(bal(o, A), INITIAL - 10n - 7n - 10n - 9n - 1000n - 11n - 13n);
    // the base state is untouched
    assert.deepEqual(pendingFees(s0), []);
    assert.equal(counters(s0).fees, 0n);
  });

  it('at a 100 % burn rate nobody earns and no pending-fee entry appears', () => {
    const [s0] = fresh();
    const p = { ...P[0]!, feeBurnBps: 10_000 };
    const exec = app.executeBlock(s0, [transfer(A, A2, 1n)], p, ctxAt(1, 1));
    const after = viewAfter(s0, exec.changes.writes);
    assert.equal(counters(after).burned, MIN_FEE);
    assert.equal(counters(after).fees, 0n);
    assert.ok(![...exec.changes.writes.keys()].some((k) => k.startsWith(PENDING_PREFIX)), 'no pending-fee entry written');
    assert.equal(exec.changes.writes.get(PENDING_PREFIX.slice(0, 2) + '65'), undefined, 'nor the fee epoch (no roll)');
  });

  it('pending fees merge over their base in a branch: overrides, removals, address order; the root follows the entries', () => {
    const u64 = (n: bigint) => { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, n); return b; };
    const entry = (addr: Uint8Array, n: bigint): [string, Uint8Array] => [pendingKey(addr), u64(n)];
    const base = WorldState.fromEntries([entry(V2, 10n), entry(V0, 20n)]);
    assert.deepEqual(pendingFees(base), [[hexOf(V0), 20n], [hexOf(V2), 10n]].sort((a, b) => (a[0]! < b[0]! ? -1 : 1)));
    const o = Pending.over(base);
    o.kv.delete(pendingKey(V0));
    o.kv.set(...entry(V1, 5n));
    const want = [[hexOf(V1), 5n], [hexOf(V2), 10n]].sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
    assert.deepEqual(pendingFees(o), want);
    assert.equal(pendingFee(o, hexOf(V0)), 0n);
    assert.equal(pendingFee(Pending.over(o), hexOf(V1)), 5n, 'nested branches read through');
    assert.deepEqual(pendingFees(Pending.over(o)), want);
    // the root of the merged writes: the same as a state built from the final entries
    const ch = { writes: o.kv.writes, xfers: new Map() };
    const predicted = base.rootWith(ch);
    assert.deepEqual(predicted, WorldState.fromEntries([entry(V2, 10n), entry(V1, 5n)]).root());
    base.apply(ch);
    assert.deepEqual(base.root(), predicted);
    assert.deepEqual(pendingFees(base), want);
    // deleting an absent entry is a no-op
    const before = base.root();
    base.apply({ writes: new Map([[pendingKey(V0), null]]), xfers: new Map() });
    assert.deepEqual(base.root(), before);
  });
});

describe('staking: proposer fee records at epoch changes', () => {
  it('the first block of a later epoch turns each pending fee into a fees record, in address order, before its transactions', () => {
    const [s0] = fresh();
    block(s0, 0, [transfer(A, A2, 1n, { fee: 7n }), transfer(A, A2, 1n, { nonce: 1n, fee: 10n })], ctxAt(1, 1, V0)); // tips 4 + 5
    block(s0, 0, [transfer(A2, A, 1n, { fee: 5n })], ctxAt(2, 3, V1)); // tip 3
    assert.deepEqual(counters(s0), { ...counters(s0), burned: 3n + 5n + 2n, fees: 12n, feeEpoch: 0, escrow: 0n });
    // a block of the same epoch sends nothing
    block(s0, 0, [], ctxAt(3, L - 1, V2));
    assert.equal([...s0.xferRecords()].length, 0);

    // slot L: epoch 1; the block's own tx tips the new proposer after the roll
    const rollCtx = ctxAt(4, L, V2);
    block(s0, 0, [transfer(A, A2, 1n, { nonce: 2n, fee: 6n })], rollCtx); // tip 3 to V2
    const recs = [...s0.xferRecords()];
    assert.equal(recs.length, 2);
    const expected = (addr: Uint8Array, amount: bigint): XferRecord => ({
      role: 'source',
      info: xinfo({ kind: 'fees', id: feesRecordId(CHAIN, 0, 0, addr), srcShard: 0, dstShard: BEACON_SHARD, from: addr, to: addr, amount, deadlineSlot: L + TIMEOUT, payload: EMPTY }),
      prepare: 'accepted',
      reason: '',
      decision: 'none',
      preparedHeight: 4,
      decidedHeight: 0,
    });
    assert.deepEqual(s0.xfer(toHex(feesRecordId(CHAIN, 0, 0, V0))), expected(V0, 9n));
    assert.deepEqual(s0.xfer(toHex(feesRecordId(CHAIN, 0, 0, V1))), expected(V1, 3n));
    assert.equal(counters(s0).escrow, 12n);
    assert.equal(counters(s0).fees, 3n);
    assert.equal(counters(s0).feeEpoch, 1);
    assert.deepEqual(pendingFees(s0), [[hexOf(V2), 3n]]);

    // another block of epoch 1: nothing more
    block(s0, 0, [], ctxAt(5, L + 1, V0));
    assert.equal([...s0.xferRecords()].length, 2);
    // epochs 2 and 3 pass without blocks; the fees of epoch 1 are named by the epoch they accrued in
    block(s0, 0, [], ctxAt(6, 3 * L + 2, V0));
    const r = s0.xfer(toHex(feesRecordId(CHAIN, 0, 1, V2)));
    assert.ok(r, 'the fees record of epoch 1');
    assert.equal(r.info.amount, 3n);
    assert.equal(r.info.deadlineSlot, 3 * L + 2 + TIMEOUT);
    assert.equal(counters(s0).feeEpoch, 3);
    assert.equal(counters(s0).fees, 0n);
    assert.equal(counters(s0).escrow, 15n);
    assert.deepEqual(pendingFees(s0), []);
    // an epoch change with nothing pending only moves the fee epoch
    const root = s0.root();
    block(s0, 0, [], ctxAt(7, 5 * L, V1));
    assert.equal(counters(s0).feeEpoch, 5);
    assert.equal([...s0.xferRecords()].length, 3);
    assert.notDeepEqual(s0.root(), root, 'the fee epoch is part of the root');
  });

  it('executeApplicable and beginBlock roll the same way as executeBlock; ids differ per shard', () => {
    const [s0, s1] = fresh();
    block(s0, 0, [transfer(A, A2, 1n)], ctxAt(1, 1, V0));
    block(s1, 1, [userTx(C, { kind: 'xtransfer', to: addrOf(A), amount: 1n })], ctxAt(1, 1, V0));
    const ctx = ctxAt(2, L, V1);
    const viaBlock = app.executeBlock(s0, [], P[0]!, ctx);
    const viaBuild = app.executeApplicable(s0, [], P[0]!, ctx);
    assert.deepEqual(viaBuild.exec.stateRoot, viaBlock.stateRoot);
    const o = Pending.over(s0);
    app.beginBlock(new ExecCtx(o.kv, P[0]!, ctx));
    assert.deepEqual(s0.rootWith({ writes: o.kv.writes, xfers: new Map() }), viaBlock.stateRoot);
    // beginBlock twice in one block is a no-op the second time
    app.beginBlock(new ExecCtx(o.kv, P[0]!, ctx));
    assert.deepEqual(s0.rootWith({ writes: o.kv.writes, xfers: new Map() }), viaBlock.stateRoot);
    block(s1, 1, [], ctx);
    assert.notEqual(toHex(feesRecordId(CHAIN, 0, 0, V0)), toHex(feesRecordId(CHAIN, 1, 0, V0)));
    assert.ok(s1.xfer(toHex(feesRecordId(CHAIN, 1, 0, V0))));
  });

  it('commit exports a fees record; abort puts it back into the proposer\'s pending fees, sent again at the next epoch change', () => {
    const [s0, s1] = fresh();
    for (const s of [s0, s1]) {
      const shard = s === s0 ? 0 : 1;
      const from = shard === 0 ? A : C;
      block(s, shard, [userTx(from, { kind: 'transfer', to: addrOf(onShard[shard]![1] ?? A2), amount: 1n }, { fee: 20n })], ctxAt(1, 1, V0)); // tip 10
      block(s, shard, [], ctxAt(2, L, V1));
    }
    const info0 = s0.xfer(toHex(feesRecordId(CHAIN, 0, 0, V0)))!.info;
    const info1 = s1.xfer(toHex(feesRecordId(CHAIN, 1, 0, V0)))!.info;
    // commit on shard 0
    block(s0, 0, [decision(info0, true)], ctxAt(3, L + 1));
    assert.deepEqual([counters(s0).escrow, counters(s0).exported, counters(s0).fees], [0n, 10n, 0n]);
    assert.equal(s0.xfer(toHex(info0.id))!.decision, 'commit');
    // abort on shard 1: back to pending, added to what the proposer earned since
    block(s1, 1, [transfer(C, onShard[1]![1] ?? C, 1n, { nonce: 1n, fee: 6n })], ctxAt(3, L + 1, V0)); // +3 pending for V0
    block(s1, 1, [decision(info1, false)], ctxAt(4, L + 2, V2));
    assert.deepEqual([counters(s1).escrow, counters(s1).exported, counters(s1).fees], [0n, 0n, 13n]);
    assert.equal(pendingFee(s1, hexOf(V0)), 13n);
    assert.equal(s1.xfer(toHex(info1.id))!.decision, 'abort');
    // a replayed decision is refused
    refuses(s1, decision(info1, false), P[1]!, ctxAt(5, L + 3), 'XS_ALREADY_DECIDED');
    // next epoch: one record of 13 under the epoch-1 id
    block(s1, 1, [], ctxAt(5, 2 * L, V1));
    assert.equal(s1.xfer(toHex(feesRecordId(CHAIN, 1, 1, V0)))!.info.amount, 13n);
    assert.equal(counters(s1).escrow, 13n);
  });

  it('decisions for a fees record: wrong shard, unknown record, mismatch', () => {
    const [s0, s1] = fresh();
    block(s0, 0, [transfer(A, A2, 1n)], ctxAt(1, 1, V0));
    block(s0, 0, [], ctxAt(2, L, V1));
    const info = s0.xfer(toHex(feesRecordId(CHAIN, 0, 0, V0)))!.info;
    throwsCode(() => app.checkStateless(decision(info, true), P[1]!), 'XS_WRONG_SHARD', 'fees decision on shard 1');
    refuses(s1, decision(info, true), P[1]!, ctxAt(1, L), 'XS_WRONG_SHARD');
    refuses(s0, decision({ ...info, id: sha256(utf8('other')) }, true), P[0]!, ctxAt(3, L), 'XS_UNKNOWN_TRANSFER');
    refuses(s0, decision({ ...info, amount: info.amount + 1n }, true), P[0]!, ctxAt(3, L), 'XS_MISMATCH');
    // a fees record has the beacon as destination: no prepare for it on any shard
    throwsCode(() => app.checkStateless(prepare(info), P[0]!), 'TX_MALFORMED');
    throwsCode(() => app.checkStateless(decision({ ...info, dstShard: 1 }, true), P[0]!), 'TX_MALFORMED', 'fees to a shard');
    throwsCode(() => app.checkStateless(decision({ ...info, payload: new Uint8Array(1) }, true), P[0]!), 'TX_MALFORMED', 'fees with data');
  });
});

describe('staking: stake transactions', () => {
  it('stateless checks: STAKE_TOO_LOW, TX_WRONG_SCHEME for the validator key or consent signature, fee and home shard', () => {
    const ok = stake(A, newcomer, 1000n);
    assert.doesNotThrow(() => app.checkStateless(ok, P[0]!));
    throwsCode(() => app.checkStateless(stake(A, newcomer, 999n), P[0]!), 'STAKE_TOO_LOW');
    throwsCode(() => app.checkStateless(stake(A, newcomer, 0n), P[0]!), 'STAKE_TOO_LOW');
    throwsCode(() => app.checkStateless(stake(A, newcomer.publicKey.slice(1), 1000n), P[0]!), 'TX_WRONG_SCHEME', 'short validator key');
    throwsCode(() => app.checkStateless(stake(A, new Uint8Array(1952), 1000n), P[0]!), 'TX_WRONG_SCHEME', 'ml-dsa-65 sized key');
    throwsCode(() => app.checkStateless(stake(A, newcomer, 1000n, { sig: new Uint8Array(2419) }), P[0]!), 'TX_WRONG_SCHEME', 'consent signature length');
    throwsCode(() => app.checkStateless(stake(A, newcomer, 1000n, { fee: MIN_FEE - 1n }), P[0]!), 'TX_FEE_TOO_LOW');
    throwsCode(() => app.checkStateless(stake(C, newcomer, 1000n), P[0]!), 'TX_WRONG_SHARD');
    // a higher minimum in the params is honoured; staking oneself is allowed (genesis validators are their own home)
    throwsCode(() => app.checkStateless(stake(A, newcomer, 1000n), { ...P[0]!, minStake: 1001n }), 'STAKE_TOO_LOW');
    assert.doesNotThrow(() => app.checkStateless(stake(A, A, 1000n), P[0]!));
  });

  it('escrows amount + fee into a stake record to the beacon (payload = validator key, to = its address); a replay is refused', () => {
    const [s0] = fresh();
    const env = stake(A, newcomer, 5000n, { fee: 10n });
    block(s0, 0, [env], ctxAt(1, 3, V1));
    assert.deepEqual(s0.account(hexOf(A)), { balance: INITIAL - 5010n, nonce: 1n, publicKey: A.publicKey });
    assert.deepEqual([counters(s0).escrow, counters(s0).burned, counters(s0).fees], [5000n, 5n, 5n]);
    assert.deepEqual(s0.xfer(env.hashHex), {
      role: 'source',
      info: xinfo({ kind: 'stake', id: env.hash, srcShard: 0, dstShard: BEACON_SHARD, from: addrOf(A), to: addrOf(newcomer), amount: 5000n, deadlineSlot: 3 + TIMEOUT, payload: newcomer.publicKey }),
      prepare: 'accepted',
      reason: '',
      decision: 'none',
      preparedHeight: 1,
      decidedHeight: 0,
    });
    // an exact replay: its nonce is spent (the record id is the tx hash, so nothing else can collide)
    refuses(s0, env, P[0]!, ctxAt(2, 4), 'TX_NONCE_STALE');
    // the record, with its public key, is provable to the beacon
    const [item] = s0.proveXfers([env.hashHex]);
    assert.deepEqual(verifyXferProof(s0.root(), item!), s0.xfer(env.hashHex));
    // funds: amount + fee must be covered
    refuses(s0, stake(A2, newcomer, INITIAL, { fee: MIN_FEE }), P[0]!, ctxAt(2, 4), 'TX_INSUFFICIENT_FUNDS');
    refuses(s0, stake(A, newcomer, 1000n, { nonce: 5n }), P[0]!, ctxAt(2, 4), 'TX_NONCE_FUTURE');
  });

  it('commit exports the stake; abort refunds the funder (not the fee); a decision on the other shard is XS_WRONG_SHARD', () => {
    const [s0, s1] = fresh();
    const e1 = stake(A, newcomer, 2000n);
    const e2 = stake(A, validators[0]!, 3000n, { nonce: 1n });
    block(s0, 0, [e1, e2], ctxAt(1, 1));
    const i1 = s0.xfer(e1.hashHex)!.info;
    const i2 = s0.xfer(e2.hashHex)!.info;
    assert.equal(counters(s0).escrow, 5000n);
    throwsCode(() => app.checkStateless(decision(i1, true), P[1]!), 'XS_WRONG_SHARD');
    refuses(s1, decision(i1, true), P[1]!, ctxAt(1, 2), 'XS_WRONG_SHARD');
    block(s0, 0, [decision(i1, true), decision(i2, false)], ctxAt(2, 2));
    assert.deepEqual([counters(s0).escrow, counters(s0).exported], [0n, 2000n]);
    assert.equal(bal(s0, A), INITIAL - 2000n - 2n * MIN_FEE, 'the aborted 3000 came back');
    assert.deepEqual([s0.xfer(e1.hashHex)!.decision, s0.xfer(e2.hashHex)!.decision], ['commit', 'abort']);
    refuses(s0, decision(i1, true), P[0]!, ctxAt(3, 3), 'XS_ALREADY_DECIDED');
    // another validator key in data (right length) is a different transfer
    refuses(s0, decision({ ...i2, payload: newcomer.publicKey, to: addrOf(newcomer) }, true), P[0]!, ctxAt(3, 3), 'XS_MISMATCH');
  });

  it('beacon entries for stakes: no prepare; shards and data must fit the kind', () => {
    const info: XferInfo = xinfo({ kind: 'stake', id: sha256(utf8('s')), srcShard: 0, dstShard: BEACON_SHARD, from: addrOf(A), to: addrOf(newcomer), amount: 1000n, deadlineSlot: 50, payload: newcomer.publicKey });
    assert.doesNotThrow(() => app.checkStateless(decision(info, true), P[0]!));
    throwsCode(() => app.checkStateless(prepare(info), P[0]!), 'TX_MALFORMED', 'prepare of a stake');
    throwsCode(() => app.checkStateless(prepare(info), P[1]!), 'TX_MALFORMED', 'prepare of a stake elsewhere');
    throwsCode(() => app.checkStateless(decision({ ...info, dstShard: 1 }, true), P[0]!), 'TX_MALFORMED', 'stake to a shard');
    throwsCode(() => app.checkStateless(decision({ ...info, srcShard: BEACON_SHARD }, true), P[0]!), 'TX_MALFORMED', 'beacon to beacon');
    throwsCode(() => app.checkStateless(decision({ ...info, srcShard: 2 }, true), P[0]!), 'TX_MALFORMED', 'source out of range');
    throwsCode(() => app.checkStateless(decision({ ...info, payload: EMPTY }, true), P[0]!), 'TX_MALFORMED', 'stake without key');
    throwsCode(() => app.checkStateless(decision({ ...info, ...OPS.unstake }, true), P[0]!), 'TX_MALFORMED', 'unstake with data');
    throwsCode(() => app.checkStateless(decision({ ...info, ...OPS.transfer }, true), P[0]!), 'TX_MALFORMED', 'transfer to the beacon');
  });
});

describe('staking: unstake transactions', () => {
  it('costs only the fee and records an amount-0 request to the beacon; commit and abort move nothing', () => {
    const [s0] = fresh();
    assert.doesNotThrow(() => app.checkStateless(unstake(A, V2), P[0]!));
    throwsCode(() => app.checkStateless(unstake(A, V2, { fee: 1n }), P[0]!), 'TX_FEE_TOO_LOW');
    throwsCode(() => app.checkStateless(unstake(C, V2), P[0]!), 'TX_WRONG_SHARD');
    // the validator may be the signer itself (no self-transfer rule here)
    assert.doesNotThrow(() => app.checkStateless(unstake(A, addrOf(A)), P[0]!));
    const e1 = unstake(A, V2, { fee: 8n });
    const e2 = unstake(A, V1, { nonce: 1n });
    block(s0, 0, [e1, e2], ctxAt(1, 2, V0));
    assert.equal(bal(s0, A), INITIAL - 8n - MIN_FEE);
    assert.equal(counters(s0).escrow, 0n);
    assert.deepEqual(s0.xfer(e1.hashHex)!.info, xinfo({ kind: 'unstake', id: e1.hash, srcShard: 0, dstShard: BEACON_SHARD, from: addrOf(A), to: V2, amount: 0n, deadlineSlot: 2 + TIMEOUT, payload: EMPTY }));
    refuses(s0, e1, P[0]!, ctxAt(2, 3), 'TX_NONCE_STALE');
    const balance = bal(s0, A);
    block(s0, 0, [decision(s0.xfer(e1.hashHex)!.info, true), decision(s0.xfer(e2.hashHex)!.info, false)], ctxAt(2, 3));
    assert.equal(bal(s0, A), balance, 'nothing refunded, nothing taken');
    assert.deepEqual([counters(s0).escrow, counters(s0).exported], [0n, 0n]);
    assert.deepEqual([s0.xfer(e1.hashHex)!.decision, s0.xfer(e2.hashHex)!.decision], ['commit', 'abort']);
  });
});

describe('staking: releases from the beacon', () => {
  const release = (to: Uint8Array, dst: number, amount: bigint, attempt = 0, deadlineSlot = 20): XferInfo =>
    xinfo({
    kind: 'release',
    id: releaseId(CHAIN, V1, attempt),
    srcShard: BEACON_SHARD,
    dstShard: dst,
    from: V1,
    to,
    amount,
    deadlineSlot,
    payload: EMPTY,
  });

  it('prepare accepted, then commit credits the home account (imported += amount); the identity holds', () => {
    const [, s1] = fresh();
    const info = release(addrOf(C), 1, 4321n);
    block(s1, 1, [prepare(info)], ctxAt(1, 2));
    assert.deepEqual(s1.xfer(toHex(info.id)), { role: 'destination', info, prepare: 'accepted', reason: '', decision: 'none', preparedHeight: 1, decidedHeight: 0 });
    assert.equal(bal(s1, C), INITIAL);
    block(s1, 1, [decision(info, true)], ctxAt(2, 3));
    assert.equal(bal(s1, C), INITIAL + 4321n);
    assert.equal(counters(s1).imported, 4321n);
    assert.equal(s1.xfer(toHex(info.id))!.decision, 'commit');
    refuses(s1, decision(info, true), P[1]!, ctxAt(3, 4), 'XS_ALREADY_DECIDED');
    refuses(s1, prepare(info), P[1]!, ctxAt(3, 4), 'XS_ALREADY_DECIDED');
  });

  it('refusals (zero address, deadline) and aborts credit nothing; commit without prepare is XS_NOT_PREPARED', () => {
    const [s0, s1] = fresh();
    const zero = release(ZERO_ADDR, 0, 10n);
    block(s0, 0, [prepare(zero)], ctxAt(1, 1));
    assert.deepEqual([s0.xfer(toHex(zero.id))!.prepare, s0.xfer(toHex(zero.id))!.reason], ['refused', 'TX_BAD_RECIPIENT']);
    refuses(s0, decision(zero, true), P[0]!, ctxAt(2, 2), 'XS_NOT_PREPARED');
    block(s0, 0, [decision(zero, false)], ctxAt(2, 2));
    assert.deepEqual([counters(s0).imported, counters(s0).escrow], [0n, 0n]);
    const late = release(addrOf(C), 1, 10n, 1, 5);
    block(s1, 1, [prepare(late)], ctxAt(1, 6));
    assert.equal(s1.xfer(toHex(late.id))!.reason, 'XS_DEADLINE_PASSED');
    const unprepared = release(addrOf(C), 1, 10n, 2);
    refuses(s1, decision(unprepared, true), P[1]!, ctxAt(2, 7), 'XS_NOT_PREPARED');
    block(s1, 1, [decision(unprepared, false)], ctxAt(2, 7));
    assert.equal(s1.xfer(toHex(unprepared.id))!.prepare, 'none');
    assert.equal(bal(s1, C), INITIAL);
  });

  it('release entries must come from the beacon to this shard', () => {
    const info = release(addrOf(C), 1, 10n);
    assert.doesNotThrow(() => app.checkStateless(prepare(info), P[1]!));
    throwsCode(() => app.checkStateless(prepare(info), P[0]!), 'XS_WRONG_SHARD', 'prepare on shard 0');
    throwsCode(() => app.checkStateless(decision(info, true), P[0]!), 'XS_WRONG_SHARD', 'decision on shard 0');
    throwsCode(() => app.checkStateless(prepare({ ...info, srcShard: 0 }), P[1]!), 'TX_MALFORMED', 'release from a shard');
    throwsCode(() => app.checkStateless(prepare({ ...info, dstShard: BEACON_SHARD }), P[1]!), 'TX_MALFORMED', 'release to the beacon');
    throwsCode(() => app.checkStateless(prepare({ ...info, dstShard: 2 }), P[1]!), 'TX_MALFORMED', 'release to a shard out of range');
    throwsCode(() => app.checkStateless(prepare({ ...info, payload: new Uint8Array(PK44) }), P[1]!), 'TX_MALFORMED', 'release with data');
    // a shard transfer from the beacon shard is not a release
    throwsCode(() => app.checkStateless(prepare({ ...info, ...OPS.transfer }), P[1]!), 'TX_MALFORMED', 'transfer from the beacon');
    // not signed by the beacon
    const body: TxBody = { chainId: CHAIN, nonce: 0n, fee: 0n, publicKey: impostor.publicKey, payload: message({ kind: 'xprepare', xfer: info }) };
    throwsCode(() => app.checkStateless(openTx(encodeTx({ body, signature: SIG44 })), P[1]!), 'XS_UNAUTHORIZED');
  });
});
