// A cross-shard op's `lock` runs on the source right after the engine's escrow, on the same branch:
// what it writes lands with the record, and when it refuses, the escrow and the fee step go too.
import assert from 'node:assert/strict';
import { addressFromPublicKey, formatAddress, generateKeyPair, homeShard, sha256, utf8, type KeyPair } from '@qnexus/crypto';
import { QnexusError, Writer, encodeTx, makeGenesis, openTx, type Reader, type TxEnvelope } from '@qnexus/types';
import { NATIVE_DENOM, msg, stateParams, type HostKeepers, type Module } from '@qnexus/state';
import { createApp } from '@qnexus/app';

const CHAIN = 'qn-lock-test';
const SIG44 = new Uint8Array(2420);
const gen = (label: string) => generateKeyPair('ml-dsa-44', sha256(utf8(`lock-${label}`)));
const addrOf = (k: KeyPair) => addressFromPublicKey(k.publicKey);
// The sender on shard 0, the recipient on shard 1.
const keys = Array.from({ length: 16 }, (_, i) => gen(`k${i}`));
const alice = keys.find((k) => homeShard(addrOf(k), 2) === 0)!;
const bob = keys.find((k) => homeShard(addrOf(k), 2) === 1)!;
const validator = gen('validator');
const G = makeGenesis({
  chainId: CHAIN,
  scheme: 'ml-dsa-44',
  genesisTime: 0,
  slotMs: 1000,
  epochLength: 10,
  shardCount: 2,
  minFee: 5n,
  maxBlockTxs: 100,
  xferTimeoutSlots: 10,
  beacon: { publicKey: gen('beacon').publicKey, peerId: '12D3KooWJWEKvSFbben74C7H4YtKjhPMTDxd7gP7zxWSUEeF27st' },
  accounts: [{ address: formatAddress(addrOf(alice)), balance: 1_000_000n }],
  validators: [
    { address: formatAddress(addrOf(validator)), publicKey: validator.publicKey, stake: 10n },
    { address: formatAddress(addrOf(gen('v2'))), publicKey: gen('v2').publicKey, stake: 10n },
  ],
});
const P = stateParams(G, 0);
const CTX = { height: 1, slot: 1, proposer: addrOf(validator) };
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
const tx = (amount: bigint, nonce: bigint): TxEnvelope => {
  const w = new Writer(8).u64(amount);
  return openTx(encodeTx({ body: { chainId: CHAIN, nonce, fee: 5n, publicKey: alice.publicKey, payload: { kind: (202 << 8) | 1, msg: w.finish() } }, signature: SIG44 }));
};

describe('state: a cross-shard op locks on the source', () => {
  it("the lock's writes land with the escrow and the record", () => {
    const s = app.genesisState(G, 0);
    const b = app.executeBlock(s, [tx(40n, 0n)], P, CTX);
    s.apply(b.changes);
    assert.deepEqual(s.store(202).get(LOCKED), new Writer(8).u64(40n).finish());
    assert.equal(s.denomTotals().find((t) => t.denom === NATIVE_DENOM)!.escrow, 40n);
    assert.equal(b.changes.xfers.size, 1);
  });

  it('a lock that refuses undoes the escrow and the fee step: the transaction writes nothing', () => {
    const s = app.genesisState(G, 0);
    const r = app.executeApplicable(s, [tx(13n, 0n)], P, CTX);
    assert.deepEqual(r.skipped.map((x) => x.error.code), ['LOCKEE_UNLUCKY']);
    assert.equal(r.exec.changes.writes.size, 0);
  });
});
