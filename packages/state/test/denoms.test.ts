// A module mints and burns only the denoms it owns (`<module>/…`), through the keeper the host
// hands it; the native denom is nobody's to mint. Minted and burned amounts enter the denom's
// supply identity, which holds after every block.
import assert from 'node:assert/strict';
import { toHex } from '@qnexus/crypto';
import { Writer, type Reader, type TxEnvelope } from '@qnexus/types';
import { NATIVE_DENOM, msg, type HostKeepers, type Module } from '@qnexus/state';
import { createApp } from '@qnexus/app';
import { testModuleChain } from './helpers.js';

const { key, addrOf, G, P, CTX, tx: signed } = testModuleChain('qn-denoms-test', { funded: ['alice'] });
const alice = key('alice');

/** Test module `tok` (id 201): `mint`/`burn` a denom named in the message, to and from the sender. */
interface Op {
  denom: string;
  amount: bigint;
}
const codec = { encode: (w: Writer, p: Op) => void w.string(p.denom).u64(p.amount), decode: (r: Reader): Op => ({ denom: r.string(64), amount: r.u64() }) };
function tokModule(k: HostKeepers): Module {
  const d = k.denoms('tok');
  return {
    name: 'tok',
    id: 201,
    msgs: [
      msg<Op>({ type: 1, name: 'tok-mint', ...codec, json: () => ({}), handle: ({ ctx, env }, p) => d.mint(ctx, env.from, p.amount, p.denom) }),
      msg<Op>({ type: 2, name: 'tok-burn', ...codec, json: () => ({}), handle: ({ ctx, env }, p) => d.burn(ctx, env.from, p.amount, p.denom) }),
    ],
  };
}
const app = createApp((k) => [tokModule(k)]);

function tx(type: number, p: Op, nonce: bigint): TxEnvelope {
  const w = new Writer(96);
  codec.encode(w, p);
  return signed(alice, (201 << 8) | type, w.finish(), nonce);
}

describe('state: denoms belong to the module that names them', () => {
  it('mints and burns its own denom; the denom supply identity holds with minted and burned', () => {
    const s = app.genesisState(G, 0);
    const b = app.executeBlock(s, [tx(1, { denom: 'tok/gold', amount: 500n }, 0n), tx(2, { denom: 'tok/gold', amount: 120n }, 1n)], P, CTX);
    s.apply(b.changes);
    assert.equal(s.balance(addrOf(alice), 'tok/gold'), 380n);
    const gold = s.denomTotals().find((t) => t.denom === 'tok/gold')!;
    assert.deepEqual({ minted: gold.minted, burned: gold.burned, balances: gold.balances, genesis: gold.genesis }, { minted: 500n, burned: 120n, balances: 380n, genesis: 0n });
  });

  it("refuses another module's denom and the native one (BANK_NOT_DENOM_OWNER): the sender pays the fee, nothing else is written", () => {
    const s = app.genesisState(G, 0);
    for (const [type, denom] of [
      [1, NATIVE_DENOM],
      [1, 'amm/1'],
      [1, 'Bad Denom'],
      [2, NATIVE_DENOM],
    ] as const) {
      const r = app.executeApplicable(s, [tx(type, { denom, amount: 1n }, 0n)], P, CTX);
      // Included with its message refused (host applyInBlock): the nonce and the fee step stand.
      assert.deepEqual(r.exec.failed.map((x) => x.code), [denom === 'Bad Denom' ? 'BANK_BAD_DENOM' : 'BANK_NOT_DENOM_OWNER'], denom);
      assert.equal(r.applied.length, 1);
      const keys = [...r.exec.changes.writes.keys()];
      assert.ok(keys.length > 0 && keys.every((k) => !k.startsWith('c9')), `nothing of the module written for ${denom}`);
      // (The native denom's supply record moves with the burned part of the fee.)
      if (denom !== NATIVE_DENOM) assert.equal(r.exec.changes.writes.get(`0173${toHex(new Writer(80).string(denom).finish())}`), undefined, `no supply record for ${denom}`);
    }
  });
});
