// A cross-shard op's `lock` runs on the source right after the engine's escrow, on the same branch:
// what it writes lands with the record, and when it refuses, the escrow and the fee step go too.
import assert from 'node:assert/strict';
import { homeShard, toHex } from '@qnexus/crypto';
import { QnexusError, Writer, type Reader, type TxEnvelope } from '@qnexus/types';
import { Branch, NATIVE_DENOM, msg, type HostKeepers, type Module } from '@qnexus/state';
import { createApp } from '@qnexus/app';
import { testModuleChain } from './helpers.js';

// The sender on shard 0 (funded), the recipient on shard 1.
const labels = Array.from({ length: 16 }, (_, i) => `k${i}`);
const probe = testModuleChain('qn-lock-test', { funded: [], shardCount: 2 });
const aliceLabel = labels.find((l) => homeShard(probe.addrOf(probe.key(l)), 2) === 0)!;
const bobLabel = labels.find((l) => homeShard(probe.addrOf(probe.key(l)), 2) === 1)!;
const { key, addrOf, G, P, CTX, tx: signed } = testModuleChain('qn-lock-test', { funded: [aliceLabel], shardCount: 2 });
const alice = key(aliceLabel);
const bob = key(bobLabel);
const LOCKED = new Uint8Array([0x6c]);

/** Module `lockee` (id 202): `send {amount}` to bob through op 1, whose lock records the amount and refuses 13. */
function lockee(k: HostKeepers): Module {
  return {
    name: 'lockee',
    id: 202,
    errors: { LOCKEE_UNLUCKY: 400 },
    msgs: [
      msg<{ amount: bigint }>({
        type: 1,
        name: 'lockee-send',
        encode: (w: Writer, p) => void w.u64(p.amount),
        decode: (r: Reader) => ({ amount: r.u64() }),
        json: () => ({}),
        handle: ({ ctx, env }, p) => k.xfer.open(ctx, k.xfer.infoFor(ctx, env, { module: 202, op: 1, denom: NATIVE_DENOM, dstShard: 1, to: addrOf(bob), amount: p.amount }), env.from),
      }),
    ],
    xfers: [
      {
        op: 1,
        name: 'lockee-deliver',
        route: 'shard-shard',
        lock(ctx, x) {
          if (x.amount === 13n) throw new QnexusError('LOCKEE_UNLUCKY', 'thirteen');
          ctx.store(202).set(LOCKED, new Writer(8).u64(x.amount).finish());
        },
      },
    ],
  };
}
const app = createApp((k) => [lockee(k)]);
const tx = (amount: bigint, nonce: bigint): TxEnvelope => signed(alice, (202 << 8) | 1, new Writer(8).u64(amount).finish(), nonce);

describe('state: a cross-shard op locks on the source', () => {
  it("the lock's writes land with the escrow and the record", () => {
    const s = app.genesisState(G, 0);
    const b = app.executeBlock(s, [tx(40n, 0n)], P, CTX);
    s.apply(b.changes);
    assert.deepEqual(s.store(202).get(LOCKED), new Writer(8).u64(40n).finish());
    assert.equal(s.denomTotals().find((t) => t.denom === NATIVE_DENOM)!.escrow, 40n);
    assert.equal(b.changes.xfers.size, 1);
  });

  it('a lock that refuses undoes the escrow and the record: only the fee is paid', () => {
    const s = app.genesisState(G, 0);
    const r = app.executeApplicable(s, [tx(13n, 0n)], P, CTX);
    assert.deepEqual(r.exec.failed.map((x) => x.code), ['LOCKEE_UNLUCKY']);
    s.apply(r.exec.changes);
    assert.equal(s.store(202).get(LOCKED), undefined);
    assert.equal(s.denomTotals().find((t) => t.denom === NATIVE_DENOM)!.escrow, 0n);
    assert.equal(r.exec.changes.xfers.size, 0);
    assert.equal(s.account(toHex(addrOf(alice)))!.nonce, 1n, 'the nonce is used: the next transaction is not stuck behind it');
    // applyTx, the admission check, still refuses it outright.
    assert.throws(() => app.applyTx(new Branch(app.genesisState(G, 0).kv), tx(13n, 0n), P, CTX), (e: unknown) => e instanceof QnexusError && e.code === 'LOCKEE_UNLUCKY');
  });
});
