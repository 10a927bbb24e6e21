// Invariants are part of block validity: a module that declares one, and a
// block that breaks it (or breaks the host's own per-denom supply identity),
// makes that block invalid. Exercised with deliberately broken test modules
// wired next to the app's.
import assert from 'node:assert/strict';
import { QnexusError, Writer, type TxEnvelope } from '@qnexus/types';
import { msg, type HostKeepers, type Module } from '@qnexus/state';
import { createApp } from '@qnexus/app';
import { testModuleChain, throwsCode } from './helpers.js';

const { key, G, P, CTX, tx: signed } = testModuleChain('qn-invariants-test', { funded: ['alice'] });
const alice = key('alice');

/** Test module 200: `bump` counts up a counter it declares may never exceed 3; `leak` credits 1 unit out of nothing. */
const TEST_ID = 200;
const COUNTER = new Uint8Array([0x63]);
function counterModule(k: HostKeepers): Module {
  return {
    name: 'counter',
    id: TEST_ID,
    msgs: [
      msg<Record<string, never>>({
        type: 1,
        name: 'bump',
        encode: () => undefined,
        decode: () => ({}),
        json: () => ({}),
        handle({ store }) {
          const n = store.get(COUNTER)?.[0] ?? 0;
          store.set(COUNTER, new Uint8Array([n + 1]));
        },
      }),
      msg<Record<string, never>>({
        type: 2,
        name: 'leak',
        encode: () => undefined,
        decode: () => ({}),
        json: () => ({}),
        // a bug: a credit that no mint books, so Σ balances exceeds genesis + minted
        handle: ({ ctx, env }) => k.bank.credit(ctx, env.from, 1n),
      }),
    ],
    invariants(ctx) {
      const n = ctx.store(TEST_ID).get(COUNTER)?.[0] ?? 0;
      if (n > 3) throw new Error(`counter ${n} is over 3`);
    },
  };
}

const app = createApp((k) => [counterModule(k)]);

function tx(type: number, nonce: bigint): TxEnvelope {
  return signed(alice, (TEST_ID << 8) | type, new Writer().finish(), nonce);
}
const bumps = (n: number, from = 0) => Array.from({ length: n }, (_, i) => tx(1, BigInt(from + i)));

function badBlock(fn: () => unknown, re: RegExp): void {
  assert.throws(
    fn,
    (e: unknown) => {
      assert.ok(e instanceof QnexusError, String(e));
      assert.equal(e.code, 'BAD_BLOCK', e.message);
      assert.match(e.message, re);
      return true;
    },
  );
}

describe('state: invariants make a block invalid', () => {
  it('a module-declared invariant: a block that keeps it is valid, one that breaks it is BAD_BLOCK naming the module, and nothing is applied', () => {
    const s = app.genesisState(G, 0);
    const ok = app.executeBlock(s, bumps(3), P, CTX);
    s.apply(ok.changes);
    assert.deepEqual(s.root(), ok.stateRoot);
    const root = s.root();
    badBlock(() => app.executeBlock(s, bumps(1, 3), P, { ...CTX, height: 2 }), /invariant.*counter.*over 3/);
    // the proposer leaves the offending transaction out (one bad transaction must not stop a shard
    // proposing) and builds a valid block from the rest
    const built = app.executeApplicable(s, bumps(2, 3), P, { ...CTX, height: 2 });
    assert.deepEqual(built.applied, []);
    assert.deepEqual(built.skipped.map((x) => x.error.code), ['INVARIANT_BROKEN', 'TX_NONCE_FUTURE']);
    assert.doesNotThrow(() => app.executeBlock(s, built.applied, P, { ...CTX, height: 2 }));
    assert.deepEqual(s.root(), root, 'the committed state is untouched');
    // four bumps in one block from a fresh state: the same
    const s2 = app.genesisState(G, 0);
    badBlock(() => app.executeBlock(s2, bumps(4), P, CTX), /counter/);
  });

  it("the host's supply identity: a module that credits value without minting it breaks the block", () => {
    const s = app.genesisState(G, 0);
    badBlock(() => app.executeBlock(s, [tx(2, 0n)], P, CTX), /invariant.*supply of qfc/);
    // the same module's well-behaved message alone is fine
    assert.doesNotThrow(() => app.executeBlock(s, bumps(1), P, CTX));
  });

  it('invariants are checked after the end-block hooks, and a thrown non-Error counts too', () => {
    // the same counter, with an end-block hook that caps it at 3: four bumps in a block are then valid
    const capped = createApp((k) => [{ ...counterModule(k), endBlock: (ctx) => {
      const st = ctx.store(TEST_ID);
      if ((st.get(COUNTER)?.[0] ?? 0) > 3) st.set(COUNTER, new Uint8Array([3]));
    } }]);
    const s = capped.genesisState(G, 0);
    const b = capped.executeBlock(s, bumps(4), P, CTX);
    s.apply(b.changes);
    assert.deepEqual(s.kv.get('c8' + '63'), new Uint8Array([3]), 'the hook ran before the check');
    // an invariant that throws a string is still a broken invariant
    const stringy = createApp((k) => [{ ...counterModule(k), invariants: (ctx) => {
      if ((ctx.store(TEST_ID).get(COUNTER)?.[0] ?? 0) > 0) throw 'counter moved';
    } }]);
    badBlock(() => stringy.executeBlock(stringy.genesisState(G, 0), bumps(1), P, CTX), /counter moved/);
    throwsCode(() => stringy.executeBlock(stringy.genesisState(G, 0), bumps(1), P, CTX), 'BAD_BLOCK');
  });
});
