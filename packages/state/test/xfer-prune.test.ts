// Settled cross-shard records are pruned after the retention window, and their ids stay refused as replays.
import assert from 'node:assert/strict';
import { addressFromPublicKey, formatAddress, generateKeyPair, getBackend, homeShard, sha256, toHex, utf8, type KeyPair } from '@qnexus/crypto';
import { encodeTx, genesisSupply, makeGenesis, openTx, txSigningBytes, type ErrorCode, type Genesis, type TxBody, type TxEnvelope, type XferInfo } from '@qnexus/types';
import { WorldState, stateParams, xfer, type BlockContext, type StateParams } from '@qnexus/state';
import { Pending, app, counters, message, snapshot, throwsCode, userBalances, xinfo, type Payload } from './helpers.js';

const CHAIN = 'qn-xfer-prune-test';
const INITIAL = 1_000_000n;
const TIMEOUT = 10;
/** A short retention window, so a test crosses it in a few blocks. */
const W = 20;
const b44 = getBackend('ml-dsa-44');
const SIG44 = new Uint8Array(2420); // the state machine checks no signatures; only the length matters

const gen = (label: string) => generateKeyPair('ml-dsa-44', sha256(utf8(`xfer-prune-${label}`)));
const pool: KeyPair[] = Array.from({ length: 12 }, (_, i) => gen(`acct-${i}`));
const addrOf = (k: KeyPair) => addressFromPublicKey(k.publicKey);
const onShard = [0, 1].map((s) => pool.filter((k) => homeShard(addrOf(k), 2) === s));
const beacon = gen('beacon');
const validators = [gen('val-0'), gen('val-1')];
const PROPOSER = addrOf(validators[0]!);

const G: Genesis = makeGenesis({
  chainId: CHAIN,
  scheme: 'ml-dsa-44',
  genesisTime: 0,
  slotMs: 1000,
  epochLength: 1_000_000,
  shardCount: 2,
  minFee: 5n,
  maxBlockTxs: 1000,
  xferTimeoutSlots: TIMEOUT,
  beacon: { publicKey: beacon.publicKey, peerId: '12D3KooWJWEKvSFbben74C7H4YtKjhPMTDxd7gP7zxWSUEeF27st' },
  accounts: pool.map((k) => ({ address: formatAddress(addrOf(k)), balance: INITIAL })),
  validators: validators.map((v, i) => ({ address: formatAddress(addrOf(v)), publicKey: v.publicKey, stake: BigInt(10 + i) })),
  staking: { feeBurnBps: 10_000, minStake: 100n },
});
const P: StateParams[] = [0, 1].map((s) => ({ ...stateParams(G, s), xferRetentionSlots: W }));
const [A, A2] = onShard[0]! as [KeyPair, KeyPair];
const [C] = onShard[1]! as [KeyPair];

function userTx(from: KeyPair, to: Uint8Array, amount: bigint, nonce: bigint): TxEnvelope {
  const body: TxBody = { chainId: CHAIN, nonce, fee: 5n, publicKey: from.publicKey, payload: message({ kind: 'xtransfer', to, amount }) };
  return openTx(encodeTx({ body, signature: SIG44 }));
}
function systemTx(payload: Payload): TxEnvelope {
  const body: TxBody = { chainId: CHAIN, nonce: 0n, fee: 0n, publicKey: beacon.publicKey, payload: message(payload) };
  return openTx(encodeTx({ body, signature: b44.sign(beacon.secretKey, txSigningBytes(body)) }));
}
const prepare = (x: XferInfo) => systemTx({ kind: 'xprepare', xfer: x });
const decision = (x: XferInfo, commit: boolean) => systemTx({ kind: 'xdecision', xfer: x, commit });

/** A shard's state and its next block, run through the host (hooks, invariants, root) like a node does. */
class Shard {
  readonly s: WorldState;
  height = 0;
  constructor(
    readonly shard: number,
    readonly params: StateParams = P[shard]!,
  ) {
    this.s = app.genesisState(G, shard);
  }
  block(slot: number, txs: TxEnvelope[] = []) {
    const ctx: BlockContext = { height: ++this.height, slot, proposer: PROPOSER };
    const exec = app.executeBlock(this.s, txs, this.params, ctx);
    this.s.apply(exec.changes);
    assert.deepEqual(this.s.root(), exec.stateRoot, 'root after apply = predicted root');
    // The supply identity of the native denom, per shard (the host checked it too, inside the block).
    const c = counters(this.s);
    assert.equal(userBalances(this.s) + c.burned + c.fees + c.escrow + c.exported - c.imported, genesisSupply(G, this.shard), `supply identity on shard ${this.shard}`);
    return exec;
  }
  /** Every balance and per-denom total: what pruning must leave exactly as it was. */
  money() {
    return { totals: this.s.denomTotals(), users: userBalances(this.s), c: counters(this.s) };
  }
  /** The entry is refused with `code` at `slot`, and leaves nothing behind. */
  refuses(env: TxEnvelope, slot: number, code: ErrorCode): void {
    const o = Pending.over(this.s);
    throwsCode(() => app.applyTx(o.kv, env, this.params, { height: this.height + 1, slot, proposer: PROPOSER }), code);
    assert.deepEqual(snapshot(o), [], `${code}: nothing written`);
  }
}

/** A committed xtransfer from A (shard 0) to C (shard 1): escrow at `slot`, prepare at slot+1, decisions at slot+2. */
function settled(src: Shard, dst: Shard, slot: number, commit: boolean, nonce = 0n, from: KeyPair = A): XferInfo {
  const env = userTx(from, addrOf(C), 1000n, nonce);
  src.block(slot, [env]);
  const info = src.s.xfer(env.hashHex)!.info;
  dst.block(slot + 1, [prepare(info)]);
  src.block(slot + 2, [decision(info, commit)]);
  dst.block(slot + 2, [decision(info, commit)]);
  return info;
}

const idOf = (x: XferInfo) => toHex(x.id);

describe('state: pruning settled cross-shard records', () => {
  it('a committed transfer: records pruned after the window, tombstones refuse every replay (XS_PRUNED, then XS_EXPIRED), no value moves', () => {
    const [s0, s1] = [new Shard(0), new Shard(1)];
    const x = settled(s0, s1, 5, true);
    const id = idOf(x);
    assert.equal(x.deadlineSlot, 5 + TIMEOUT);
    const decided = 7;
    const pruneAt = Math.max(decided + W, x.deadlineSlot + 1); // 27
    const before = [s0.money(), s1.money()];
    assert.equal(before[1]!.c.imported, 1000n);

    // One slot early: both records still there (a re-send is answered as already decided).
    s0.block(pruneAt - 1);
    s1.block(pruneAt - 1);
    assert.equal(s0.s.xfer(id)?.decision, 'commit');
    assert.equal(s1.s.xfer(id)?.decision, 'commit');
    s1.refuses(decision(x, true), pruneAt - 1, 'XS_ALREADY_DECIDED');

    // Due: gone on both sides, a tombstone in their place; not a record change the node would report.
    const e0 = s0.block(pruneAt);
    const e1 = s1.block(pruneAt);
    assert.equal(e0.changes.xfers.size + e1.changes.xfers.size, 0, 'a pruned record is no report item');
    for (const sh of [s0, s1]) {
      assert.equal(sh.s.xfer(id), undefined, `record pruned on shard ${sh.shard}`);
      assert.equal(xfer.tombstone(sh.s, id), 'commit');
      assert.deepEqual(xfer.pruneStats(sh.s), { pruned: 1n, tombstones: 1n });
    }
    assert.deepEqual([s0.money(), s1.money()], before, 'pruning moves no value: balances and per-denom totals unchanged');

    // Replays while the tombstone is held: refused, nothing recreated, on either side.
    const slot = pruneAt + 1;
    for (const env of [prepare(x), decision(x, true), decision(x, false)]) s1.refuses(env, slot, 'XS_PRUNED');
    for (const env of [decision(x, true), decision(x, false)]) s0.refuses(env, slot, 'XS_PRUNED');
    // A proposer leaves them out; the block stays valid and changes nothing of the transfer.
    const r = app.executeApplicable(s1.s, [prepare(x), decision(x, false)], s1.params, { height: s1.height + 1, slot, proposer: PROPOSER });
    assert.deepEqual(r.skipped.map((k) => k.error.code), ['XS_PRUNED', 'XS_PRUNED']);

    // The tombstone goes once the deadline is a window behind; replays are then refused by their deadline.
    const forget = x.deadlineSlot + W + 1; // 36
    s0.block(forget - 1);
    s1.block(forget - 1);
    assert.equal(xfer.tombstone(s1.s, id), 'commit', 'held through deadline + window');
    s0.block(forget);
    s1.block(forget);
    for (const sh of [s0, s1]) {
      assert.equal(xfer.tombstone(sh.s, id), undefined);
      assert.deepEqual(xfer.pruneStats(sh.s), { pruned: 1n, tombstones: 0n });
    }
    for (const env of [prepare(x), decision(x, true), decision(x, false)]) s1.refuses(env, forget, 'XS_EXPIRED');
    for (const env of [decision(x, true), decision(x, false)]) s0.refuses(env, forget + 1000, 'XS_EXPIRED');
    assert.deepEqual([s0.money(), s1.money()], before);
  });

  it('an aborted transfer (refused past its deadline): the refund stays, replays of the prepare and of the abort are refused', () => {
    const [s0, s1] = [new Shard(0), new Shard(1)];
    const env = userTx(A, addrOf(C), 500n, 0n);
    s0.block(3, [env]);
    const x = s0.s.xfer(env.hashHex)!.info;
    // The prepare reaches the destination after the deadline: recorded as a refusal (the beacon then aborts).
    s1.block(x.deadlineSlot + 1, [prepare(x)]);
    assert.equal(s1.s.xfer(idOf(x))?.reason, 'XS_DEADLINE_PASSED');
    s0.block(x.deadlineSlot + 2, [decision(x, false)]);
    s1.block(x.deadlineSlot + 2, [decision(x, false)]);
    const refunded = s0.money();
    assert.equal(refunded.c.escrow, 0n);
    const pruneAt = x.deadlineSlot + 2 + W;
    s0.block(pruneAt);
    s1.block(pruneAt);
    assert.equal(s0.s.xfer(idOf(x)), undefined);
    assert.equal(s1.s.xfer(idOf(x)), undefined);
    // Decided after the deadline, pruned a window later: by then the deadline is a window behind,
    // so no tombstone is needed at all and replays are refused by the deadline rule.
    assert.equal(xfer.tombstone(s1.s, idOf(x)), undefined);
    assert.deepEqual(xfer.pruneStats(s1.s), { pruned: 1n, tombstones: 0n });
    s1.refuses(prepare(x), pruneAt + 1, 'XS_EXPIRED');
    s1.refuses(decision(x, false), pruneAt + 1, 'XS_EXPIRED');
    s0.refuses(decision(x, false), pruneAt + 1, 'XS_EXPIRED');
    s0.refuses(decision(x, true), pruneAt + 1, 'XS_EXPIRED');
    assert.deepEqual(s0.money(), refunded, 'the refund is not paid twice');
  });

  it('an abort for a transfer the destination never saw: its record is pruned too, and a replayed abort does not create one again', () => {
    const s1 = new Shard(1);
    const x: XferInfo = { ...xinfoOf(sha256(utf8('never-prepared'))), deadlineSlot: 50 };
    s1.block(10, [decision(x, false)]); // today's legitimate case: an abort before any prepare arrived
    assert.equal(s1.s.xfer(idOf(x))?.prepare, 'none');
    s1.block(10 + W + 30); // due at max(10 + W, 51) = 51; tombstone until 50 + W
    assert.equal(s1.s.xfer(idOf(x)), undefined);
    assert.equal(xfer.tombstone(s1.s, idOf(x)), 'abort');
    s1.refuses(decision(x, false), 62, 'XS_PRUNED');
    s1.refuses(prepare(x), 62, 'XS_PRUNED');
  });

  it('an open record is never pruned, and its decision still settles it long after the window', () => {
    const [s0] = [new Shard(0)];
    const env = userTx(A, addrOf(C), 700n, 0n);
    s0.block(2, [env]);
    const x = s0.s.xfer(env.hashHex)!.info;
    const late = x.deadlineSlot + 10 * W;
    s0.block(late);
    assert.equal(s0.s.xfer(idOf(x))?.decision, 'none', 'an escrow is kept until decided');
    s0.block(late + 1, [decision(x, false)]);
    assert.equal(s0.money().c.escrow, 0n, 'a record, however old, is always acted upon');
    s0.block(late + 1 + W);
    assert.equal(s0.s.xfer(idOf(x)), undefined);
  });

  it('at most xferPrunesPerBlock steps per block; the rest wait for the next blocks', () => {
    const N = 2;
    const params = [0, 1].map((s) => ({ ...P[s]!, xferPrunesPerBlock: N }));
    const [s0, s1] = [new Shard(0, params[0]), new Shard(1, params[1])];
    // Five transfers decided in the same blocks (one escrow block with five senders' txs).
    const senders = [A, A2, ...onShard[0]!.slice(2, 5)];
    assert.equal(senders.length, 5, 'need five funded accounts on shard 0; change the key labels');
    const envs = senders.map((k) => userTx(k, addrOf(C), 100n, 0n));
    s0.block(1, envs);
    const xs = envs.map((e) => s0.s.xfer(e.hashHex)!.info);
    s1.block(2, xs.map(prepare));
    s0.block(3, xs.map((x) => decision(x, true)));
    s1.block(3, xs.map((x) => decision(x, true)));
    const left = (sh: Shard) => xs.filter((x) => sh.s.xfer(idOf(x))).length;
    const due = Math.max(3 + W, 1 + TIMEOUT + 1);
    const seen: number[] = [];
    for (let slot = due; slot < due + 4; slot++) {
      s0.block(slot);
      seen.push(left(s0));
    }
    assert.deepEqual(seen, [3, 1, 0, 0]);
    assert.deepEqual(xfer.pruneStats(s0.s), { pruned: 5n, tombstones: 5n });
    for (const x of xs) s0.refuses(decision(x, true), due + 4, 'XS_PRUNED');
  });
});

function xinfoOf(id: Uint8Array): XferInfo {
  return xinfo({ kind: 'transfer', id, srcShard: 0, dstShard: 1, from: addrOf(A), to: addrOf(C), amount: 10n, deadlineSlot: 100, payload: new Uint8Array(0) });
}
