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
  QnexusError,
  encodeTx,
  genesisSupply,
  makeGenesis,
  openTx,
  txSigningBytes,
  type ErrorCode,
  type Genesis,
  type XferRecord,
  type TxBody,
  type TxEnvelope,
} from '@qnexus/types';
import {
  Overlay,
  WorldState,
  applyTx,
  checkTxStateless,
  decodeAccount,
  encodeAccount,
  encodeCounters,
  decodeCounters,
  executeApplicable,
  executeBlock,
  stateParams,
  ZERO_COUNTERS,
  type Account,
  type Counters,
  type StateChanges,
  type StateParams,
} from '@qnexus/state';

// ------------------------------------------------------------------ fixtures

const CHAIN = 'qn-state-test';
const MIN_FEE = 5n;
const N_ACCOUNTS = 8;
const INITIAL = 1_000_000n;

const keys: KeyPair[] = Array.from({ length: N_ACCOUNTS + 2 }, (_, i) => generateKeyPair('ml-dsa-44', sha256(utf8(`state-key-${i}`))));
const addrOf = (k: KeyPair) => addressFromPublicKey(k.publicKey);
const hexOf = (k: KeyPair) => toHex(addrOf(k));
const SIG44 = new Uint8Array(2420); // applyTx does not verify signatures; only the length matters
const beaconKey = generateKeyPair('ml-dsa-44', sha256(utf8('state-beacon')));
const validator2 = generateKeyPair('ml-dsa-44', sha256(utf8('state-validator-2')));
/** Proposer of the blocks in these tests: it earns the non-burned part of every fee. */
const PROPOSER = addrOf(validator2);
/** Block context of the transactions in these tests (no cross-shard deadlines or epoch changes are involved here). */
const CTX = { height: 1, slot: 1, proposer: PROPOSER };
/** 60 % of each fee is burned here (not the default), the rest is the proposer's tip. */
const BURN_BPS = 6000;
const burnOf = (fee: bigint) => (fee * BigInt(BURN_BPS)) / 10_000n;
const tipOf = (fee: bigint) => fee - burnOf(fee);

function genesis(): Genesis {
  const validator = keys[N_ACCOUNTS + 1]!;
  return makeGenesis({
    chainId: CHAIN,
    scheme: 'ml-dsa-44',
    genesisTime: 0,
    slotMs: 1000,
    epochLength: 10,
    shardCount: 1,
    minFee: MIN_FEE,
    maxBlockTxs: 1000,
    xferTimeoutSlots: 10,
    beacon: { publicKey: beaconKey.publicKey, peerId: '12D3KooWJWEKvSFbben74C7H4YtKjhPMTDxd7gP7zxWSUEeF27st' },
    // keys[N_ACCOUNTS] is deliberately left unfunded
    accounts: keys.slice(0, N_ACCOUNTS).map((k) => ({ address: formatAddress(addrOf(k)), balance: INITIAL })),
    // two validators so the same genesis also serves two shards (one committee each)
    validators: [validator, validator2].map((v) => ({ address: formatAddress(addrOf(v)), publicKey: v.publicKey, stake: 10n })),
    staking: { feeBurnBps: BURN_BPS },
  });
}

const G = genesis();
const P: StateParams = stateParams(G, 0);

interface TxOpts {
  nonce?: bigint;
  fee?: bigint;
  amount?: bigint;
  to?: Uint8Array;
  chainId?: string;
  publicKey?: Uint8Array;
  signature?: Uint8Array;
}

function tx(from: KeyPair, o: TxOpts = {}): TxEnvelope {
  const body: TxBody = {
    chainId: o.chainId ?? CHAIN,
    nonce: o.nonce ?? 0n,
    fee: o.fee ?? MIN_FEE,
    publicKey: o.publicKey ?? from.publicKey,
    payload: { kind: 'transfer', to: o.to ?? addrOf(keys[1]!), amount: o.amount ?? 100n },
  };
  return openTx(encodeTx({ body, signature: o.signature ?? SIG44 }));
}

function throwsCode(fn: () => unknown, code: ErrorCode, msg?: string): void {
  assert.throws(
    fn,
    (e: unknown) => {
      assert.ok(e instanceof QnexusError, `expected QnexusError, got ${String(e)}`);
      assert.equal(e.code, code, `${msg ?? ''}: ${e.message}`);
      return true;
    },
    msg,
  );
}

function snapshot(o: Overlay): { accounts: [string, Account][]; xfers: [string, XferRecord][]; fees: [string, bigint][]; counters: Counters } {
  return {
    accounts: [...o.accounts.entries()].map(([k, a]) => [k, { ...a }]),
    xfers: [...o.xfers.entries()].map(([k, x]) => [k, { ...x }]),
    fees: [...o.fees.entries()],
    counters: { ...o.counters },
  };
}

const counters = (burned: bigint): Counters => ({ ...ZERO_COUNTERS, burned });
const changes = (accounts: Map<string, Account>, burned: bigint): StateChanges => ({ accounts, xfers: new Map(), pendingFees: new Map(), counters: counters(burned) });

/** Seeded PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function rootHex(s: WorldState, ch?: StateChanges): string {
  return toHex(s.rootWith(ch));
}

// ------------------------------------------------------------------ tests

describe('state: accounts encoding', () => {
  it('encodeAccount/decodeAccount round trip, with and without a public key', () => {
    const accs: Account[] = [
      { balance: 0n, nonce: 0n, publicKey: null },
      { balance: 2n ** 64n - 1n, nonce: 2n ** 64n - 1n, publicKey: keys[0]!.publicKey },
      { balance: 42n, nonce: 7n, publicKey: new Uint8Array(2592).fill(3) },
    ];
    for (const a of accs) assert.deepEqual(decodeAccount(encodeAccount(a)), a);
  });

  it('decodeAccount rejects trailing bytes and truncation', () => {
    const e = encodeAccount({ balance: 1n, nonce: 2n, publicKey: null });
    throwsCode(() => decodeAccount(new Uint8Array([...e, 0])), 'MALFORMED');
    throwsCode(() => decodeAccount(e.slice(0, e.length - 1)), 'MALFORMED');
  });
});

describe('state: genesis state', () => {
  it('fromGenesis holds every genesis account and the full supply', () => {
    const s = WorldState.fromGenesis(G, 0);
    assert.equal(s.size, N_ACCOUNTS);
    assert.equal(s.burned, 0n);
    assert.equal(s.totalBalance(), genesisSupply(G));
    for (const k of keys.slice(0, N_ACCOUNTS)) assert.deepEqual(s.account(hexOf(k)), { balance: INITIAL, nonce: 0n, publicKey: null });
    assert.equal(s.account(hexOf(keys[N_ACCOUNTS]!)), undefined);
    assert.deepEqual(s.counters, ZERO_COUNTERS);
    assert.deepEqual(P, {
      chainId: CHAIN,
      scheme: 'ml-dsa-44',
      minFee: MIN_FEE,
      shard: 0,
      shardCount: 1,
      beaconPublicKey: beaconKey.publicKey,
      xferTimeoutSlots: 10,
      epochLength: 10,
      minStake: 1000n,
      feeBurnBps: BURN_BPS,
    });
  });
});

describe('state: applyTx', () => {
  it('a transfer moves the amount, bumps the nonce, splits the fee (burn + proposer tip) and registers the key', () => {
    const s = WorldState.fromGenesis(G, 0);
    const o = new Overlay(s);
    const to = keys[N_ACCOUNTS]!; // new account
    applyTx(o, tx(keys[0]!, { amount: 1000n, fee: 7n, to: addrOf(to) }), P, CTX);
    assert.deepEqual(o.account(hexOf(keys[0]!)), { balance: INITIAL - 1007n, nonce: 1n, publicKey: keys[0]!.publicKey });
    assert.deepEqual(o.account(hexOf(to)), { balance: 1000n, nonce: 0n, publicKey: null });
    assert.equal(o.counters.burned, 4n, '60 % of 7, rounded down');
    assert.equal(o.counters.fees, 3n);
    assert.equal(o.pendingFee(toHex(PROPOSER)), 3n);
    assert.deepEqual(o.pendingFees(), [[toHex(PROPOSER), 3n]]);
    assert.equal(s.pendingFee(toHex(PROPOSER)), 0n);
    // base state untouched
    assert.deepEqual(s.account(hexOf(keys[0]!)), { balance: INITIAL, nonce: 0n, publicKey: null });
    assert.equal(s.account(hexOf(to)), undefined);
    assert.equal(s.burned, 0n);
    // second tx from the same sender reads the overlay
    applyTx(o, tx(keys[0]!, { nonce: 1n, amount: 1n, to: addrOf(keys[1]!) }), P, CTX);
    assert.deepEqual(o.account(hexOf(keys[0]!)), { balance: INITIAL - 1007n - 1n - MIN_FEE, nonce: 2n, publicKey: keys[0]!.publicKey });
    assert.deepEqual(o.account(hexOf(keys[1]!)), { balance: INITIAL + 1n, nonce: 0n, publicKey: null });
    assert.equal(o.counters.burned, 4n + burnOf(MIN_FEE));
    assert.equal(o.pendingFee(toHex(PROPOSER)), 3n + tipOf(MIN_FEE));
    // a recipient keeps its registered key and nonce
    const o2 = new Overlay(o);
    applyTx(o2, tx(keys[1]!, { amount: 5n, to: addrOf(keys[0]!) }), P, CTX);
    assert.deepEqual(o2.account(hexOf(keys[0]!)), { balance: INITIAL - 1008n - MIN_FEE + 5n, nonce: 2n, publicKey: keys[0]!.publicKey });
  });

  it('spending the exact balance is allowed and leaves zero', () => {
    const o = new Overlay(WorldState.fromGenesis(G, 0));
    applyTx(o, tx(keys[2]!, { amount: INITIAL - MIN_FEE, to: addrOf(keys[3]!) }), P, CTX);
    assert.equal(o.account(hexOf(keys[2]!))!.balance, 0n);
    assert.equal(o.account(hexOf(keys[3]!))!.balance, 2n * INITIAL - MIN_FEE);
  });

  it('applies with real ML-DSA-signed transactions too', () => {
    const body: TxBody = { chainId: CHAIN, nonce: 0n, fee: MIN_FEE, publicKey: keys[4]!.publicKey, payload: { kind: 'transfer', to: addrOf(keys[5]!), amount: 9n } };
    const signature = getBackend('ml-dsa-44').sign(keys[4]!.secretKey, txSigningBytes(body));
    const env = openTx(encodeTx({ body, signature }));
    assert.ok(getBackend('ml-dsa-44').verify(body.publicKey, env.signBytes, env.tx.signature));
    const o = new Overlay(WorldState.fromGenesis(G, 0));
    applyTx(o, env, P, CTX);
    assert.equal(o.account(hexOf(keys[5]!))!.balance, INITIAL + 9n);
  });

  describe('failure codes, each leaving the overlay unchanged', () => {
    const cases: [string, ErrorCode, (o: Overlay) => TxEnvelope][] = [
      ['stale nonce', 'TX_NONCE_STALE', () => tx(keys[0]!, { nonce: 0n })],
      ['future nonce', 'TX_NONCE_FUTURE', () => tx(keys[0]!, { nonce: 2n })],
      ['future nonce for a fresh account', 'TX_NONCE_FUTURE', () => tx(keys[3]!, { nonce: 1n })],
      ['insufficient funds (amount + fee > balance)', 'TX_INSUFFICIENT_FUNDS', (o) => tx(keys[3]!, { amount: o.account(hexOf(keys[3]!))!.balance - MIN_FEE + 1n })],
      ['insufficient funds (fee alone)', 'TX_INSUFFICIENT_FUNDS', (o) => tx(keys[3]!, { amount: 1n, fee: o.account(hexOf(keys[3]!))!.balance })],
      ['unfunded sender', 'TX_INSUFFICIENT_FUNDS', () => tx(keys[N_ACCOUNTS]!, { amount: 1n })],
      ['wrong chain', 'TX_WRONG_CHAIN', () => tx(keys[0]!, { nonce: 1n, chainId: 'qn-other' })],
      ['wrong scheme (ml-dsa-65 key)', 'TX_WRONG_SCHEME', () => {
        const k65 = generateKeyPair('ml-dsa-65', new Uint8Array(32).fill(65));
        return tx(k65, { signature: new Uint8Array(3309) });
      }],
      ['wrong scheme (signature length)', 'TX_WRONG_SCHEME', () => tx(keys[0]!, { nonce: 1n, signature: new Uint8Array(2419) })],
      ['wrong scheme (public key length)', 'TX_WRONG_SCHEME', () => tx(keys[0]!, { nonce: 1n, publicKey: keys[0]!.publicKey.slice(1) })],
      ['fee too low', 'TX_FEE_TOO_LOW', () => tx(keys[0]!, { nonce: 1n, fee: MIN_FEE - 1n })],
      ['zero fee', 'TX_FEE_TOO_LOW', () => tx(keys[0]!, { nonce: 1n, fee: 0n })],
      ['zero amount', 'TX_BAD_AMOUNT', () => tx(keys[0]!, { nonce: 1n, amount: 0n })],
      ['self transfer', 'TX_SELF_TRANSFER', () => tx(keys[0]!, { nonce: 1n, to: addrOf(keys[0]!) })],
    ];
    for (const [name, code, make] of cases) {
      it(`${code}: ${name}`, () => {
        const o = new Overlay(WorldState.fromGenesis(G, 0));
        applyTx(o, tx(keys[0]!, { nonce: 0n, amount: 10n, to: addrOf(keys[3]!) }), P, CTX); // make the overlay non-trivial
        const before = snapshot(o);
        const env = make(o);
        throwsCode(() => applyTx(o, env, P, CTX), code, name);
        assert.deepEqual(snapshot(o), before, 'overlay must be unchanged');
        // and the overlay still accepts a good tx afterwards
        applyTx(o, tx(keys[0]!, { nonce: 1n, amount: 1n, to: addrOf(keys[3]!) }), P, CTX);
      });
    }

    it('TX_BAD_AMOUNT when the recipient balance would overflow u64', () => {
      const s = WorldState.fromEntries(
        [
          [hexOf(keys[0]!), { balance: 1000n, nonce: 0n, publicKey: null }],
          [hexOf(keys[1]!), { balance: 2n ** 64n - 10n, nonce: 0n, publicKey: null }],
        ],
        ZERO_COUNTERS,
      );
      const o = new Overlay(s);
      const before = snapshot(o);
      throwsCode(() => applyTx(o, tx(keys[0]!, { amount: 10n, to: addrOf(keys[1]!) }), P, CTX), 'TX_BAD_AMOUNT');
      assert.deepEqual(snapshot(o), before);
      applyTx(o, tx(keys[0]!, { amount: 9n, to: addrOf(keys[1]!) }), P, CTX);
      assert.equal(o.account(hexOf(keys[1]!))!.balance, 2n ** 64n - 1n);
    });

    it('stateless checks run without state (checkTxStateless)', () => {
      assert.doesNotThrow(() => checkTxStateless(tx(keys[0]!), P));
      throwsCode(() => checkTxStateless(tx(keys[0]!, { chainId: 'nope' }), P), 'TX_WRONG_CHAIN');
      throwsCode(() => checkTxStateless(tx(keys[0]!, { fee: 1n }), P), 'TX_FEE_TOO_LOW');
      // a higher minimum fee in the params is honoured
      throwsCode(() => checkTxStateless(tx(keys[0]!, { fee: 10n }), { ...P, minFee: 11n }), 'TX_FEE_TOO_LOW');
      throwsCode(() => checkTxStateless(tx(keys[0]!), { ...P, scheme: 'ml-dsa-87' }), 'TX_WRONG_SCHEME');
    });
  });
});

describe('state: block execution', () => {
  it('executeBlock applies txs in order and returns the matching root', () => {
    const s = WorldState.fromGenesis(G, 0);
    const rootBefore = rootHex(s);
    const txs = [
      tx(keys[0]!, { nonce: 0n, amount: 10n, to: addrOf(keys[1]!) }),
      tx(keys[0]!, { nonce: 1n, amount: 20n, to: addrOf(keys[2]!) }),
      tx(keys[1]!, { nonce: 0n, amount: INITIAL + 10n - MIN_FEE, to: addrOf(keys[N_ACCOUNTS]!) }), // spends what it just received
    ];
    const exec = executeBlock(s, txs, P, CTX);
    assert.equal(rootHex(s), rootBefore, 'executeBlock must not mutate the state');
    assert.equal(exec.changes.accounts.size, 4);
    assert.equal(exec.changes.counters.burned, 3n * burnOf(MIN_FEE));
    assert.equal(exec.changes.counters.fees, 3n * tipOf(MIN_FEE));
    assert.deepEqual([...exec.changes.pendingFees], [[toHex(PROPOSER), 3n * tipOf(MIN_FEE)]]);
    s.apply(exec.changes);
    assert.equal(toHex(s.root()), toHex(exec.stateRoot));
    assert.notEqual(toHex(s.root()), rootBefore);
    assert.equal(s.account(hexOf(keys[1]!))!.balance, 0n);
    assert.equal(s.account(hexOf(keys[N_ACCOUNTS]!))!.balance, INITIAL + 10n - MIN_FEE);
    assert.equal(s.totalBalance() + s.burned + s.counters.fees, genesisSupply(G));
    assert.equal(s.pendingFee(toHex(PROPOSER)), 3n * tipOf(MIN_FEE));
  });

  it('executeBlock fails the whole block (BAD_BLOCK) if one tx fails', () => {
    const s = WorldState.fromGenesis(G, 0);
    const rootBefore = rootHex(s);
    const bad = tx(keys[0]!, { nonce: 5n });
    const txs = [tx(keys[0]!, { nonce: 0n }), bad, tx(keys[0]!, { nonce: 1n })];
    assert.throws(
      () => executeBlock(s, txs, P, CTX),
      (e: unknown) => {
        assert.ok(e instanceof QnexusError);
        assert.equal(e.code, 'BAD_BLOCK');
        assert.match(e.message, /transaction 1/);
        assert.match(e.message, /TX_NONCE_FUTURE/);
        assert.ok(e.message.includes(bad.hashHex));
        return true;
      },
    );
    assert.equal(rootHex(s), rootBefore);
    assert.deepEqual(s.account(hexOf(keys[0]!)), { balance: INITIAL, nonce: 0n, publicKey: null });
    // the same tx twice in a block: the second is stale
    throwsCode(() => executeBlock(s, [tx(keys[0]!), tx(keys[0]!)], P, CTX), 'BAD_BLOCK');
  });

  it('an empty block changes nothing', () => {
    const s = WorldState.fromGenesis(G, 0);
    const exec = executeBlock(s, [], P, CTX);
    assert.equal(exec.changes.accounts.size, 0);
    assert.equal(toHex(exec.stateRoot), rootHex(s));
  });

  it('executeApplicable skips failing txs and keeps the rest in order', () => {
    const s = WorldState.fromGenesis(G, 0);
    const t = [
      tx(keys[0]!, { nonce: 1n }), // future: skipped (nonce gap)
      tx(keys[0]!, { nonce: 0n, amount: 50n }), // ok
      tx(keys[0]!, { nonce: 1n, amount: 60n }), // ok now
      tx(keys[2]!, { amount: INITIAL }), // insufficient (amount + fee)
      tx(keys[3]!, { fee: 0n }), // fee too low
      tx(keys[0]!, { nonce: 1n, amount: 70n }), // stale (racing spend)
      tx(keys[4]!, { amount: 5n, to: addrOf(keys[5]!) }), // ok
    ];
    const r = executeApplicable(s, t, P, CTX);
    assert.deepEqual(r.applied, [t[1], t[2], t[6]]);
    assert.deepEqual(
      r.skipped.map((x) => [t.indexOf(x.env), x.error.code]),
      [
        [0, 'TX_NONCE_FUTURE'],
        [3, 'TX_INSUFFICIENT_FUNDS'],
        [4, 'TX_FEE_TOO_LOW'],
        [5, 'TX_NONCE_STALE'],
      ],
    );
    // The applied list is itself a valid block with the same outcome.
    const replay = executeBlock(s, r.applied, P, CTX);
    assert.equal(toHex(replay.stateRoot), toHex(r.exec.stateRoot));
    s.apply(r.exec.changes);
    assert.equal(toHex(s.root()), toHex(r.exec.stateRoot));
    assert.equal(s.account(hexOf(keys[1]!))!.balance, INITIAL + 110n);
    assert.equal(s.burned, 3n * burnOf(MIN_FEE));
    assert.equal(s.counters.fees, 3n * tipOf(MIN_FEE));
  });

  it('supply invariant sum(balances) + burned + fees = genesis supply over many random transfers', () => {
    const rand = prng(0xc0ffee);
    const all = keys.slice(0, N_ACCOUNTS + 1); // includes the unfunded account
    const s = WorldState.fromGenesis(G, 0);
    const supply = genesisSupply(G);
    const model = new Map<string, { balance: bigint; nonce: bigint }>();
    for (const k of all) model.set(hexOf(k), { balance: s.account(hexOf(k))?.balance ?? 0n, nonce: 0n });
    let burned = 0n;
    const tips = new Map<string, bigint>();
    let applied = 0;
    let skipped = 0;
    for (let block = 0; block < 40; block++) {
      const txs: TxEnvelope[] = [];
      const pendingNonce = new Map<string, bigint>();
      const n = 1 + Math.floor(rand() * 12);
      for (let i = 0; i < n; i++) {
        const from = all[Math.floor(rand() * all.length)]!;
        let to = all[Math.floor(rand() * all.length)]!;
        if (to === from) to = all[(all.indexOf(from) + 1) % all.length]!;
        const h = hexOf(from);
        const nonce = pendingNonce.get(h) ?? model.get(h)!.nonce;
        const bal = model.get(h)!.balance;
        // mostly affordable amounts, sometimes too large, sometimes a bad nonce
        const r = rand();
        const amount = r < 0.1 ? bal + 1n : 1n + BigInt(Math.floor(rand() * Number(bal > 0n ? (bal > 100_000n ? 100_000n : bal) : 1n)));
        const fee = MIN_FEE + BigInt(Math.floor(rand() * 20));
        const useNonce = rand() < 0.05 ? nonce + 1n : nonce;
        txs.push(tx(from, { nonce: useNonce, amount, fee, to: addrOf(to) }));
        pendingNonce.set(h, nonce + 1n);
      }
      // a different proposer per block (all within epoch 0: no fee records here)
      const ctx = { ...CTX, proposer: addrOf(keys[block % 3]!) };
      const res = executeApplicable(s, txs, P, ctx);
      applied += res.applied.length;
      skipped += res.skipped.length;
      // update the model from the applied txs, independently of the state code
      for (const env of res.applied) {
        const b = env.tx.body;
        const pl = b.payload;
        assert.equal(pl.kind, 'transfer');
        if (pl.kind !== 'transfer') continue;
        const f = model.get(toHex(env.from))!;
        const t = model.get(toHex(pl.to))!;
        assert.equal(b.nonce, f.nonce);
        assert.ok(f.balance >= pl.amount + b.fee);
        f.balance -= pl.amount + b.fee;
        f.nonce += 1n;
        t.balance += pl.amount;
        burned += burnOf(b.fee);
        const who = toHex(ctx.proposer);
        tips.set(who, (tips.get(who) ?? 0n) + tipOf(b.fee));
      }
      // a block built from the applied txs validates to the same root
      assert.equal(toHex(executeBlock(s, res.applied, P, ctx).stateRoot), toHex(res.exec.stateRoot));
      s.apply(res.exec.changes);
      assert.equal(toHex(s.root()), toHex(res.exec.stateRoot));
      assert.equal(s.totalBalance() + s.burned + s.counters.fees, supply, `supply invariant after block ${block}`);
      assert.equal(s.burned, burned);
      assert.deepEqual(s.pendingFees(), [...tips.entries()].filter(([, v]) => v > 0n).sort((a, b) => (a[0] < b[0] ? -1 : 1)));
      for (const [h, m] of model) {
        const a = s.account(h);
        assert.equal(a?.balance ?? 0n, m.balance, h);
        assert.equal(a?.nonce ?? 0n, m.nonce, h);
      }
    }
    assert.ok(applied > 150, `applied ${applied}`);
    assert.ok(skipped > 5, `skipped ${skipped}`);
  });
});

describe('state: state root', () => {
  function sample(): [string, Account][] {
    return keys.slice(0, 6).map((k, i) => [hexOf(k), { balance: BigInt(1000 + i), nonce: BigInt(i), publicKey: i % 2 ? k.publicKey : null }]);
  }

  it('is independent of insertion order', () => {
    const e = sample();
    const a = WorldState.fromEntries(e, counters(17n));
    const rand = prng(7);
    for (let i = 0; i < 5; i++) {
      const shuffled = e.map((x) => [rand(), x] as const).sort((p, q) => p[0] - q[0]).map((p) => p[1]);
      assert.equal(toHex(WorldState.fromEntries(shuffled, counters(17n)).root()), toHex(a.root()));
    }
    // inserting via apply in another order also agrees
    const b = WorldState.fromEntries([], counters(0n));
    b.apply(changes(new Map(e.slice(3)), 0n));
    b.apply(changes(new Map(e.slice(0, 3).reverse()), 17n));
    assert.equal(toHex(b.root()), toHex(a.root()));
  });

  it('changes when any account field, any account, or burned changes', () => {
    const e = sample();
    const base = toHex(WorldState.fromEntries(e, counters(17n)).root());
    const seen = new Set([base]);
    let variants = 0;
    for (let i = 0; i < e.length; i++) {
      const [k, a] = e[i]!;
      const mods: Account[] = [
        { ...a, balance: a.balance + 1n },
        { ...a, nonce: a.nonce + 1n },
        { ...a, publicKey: a.publicKey ? null : keys[0]!.publicKey },
      ];
      for (const m of mods) {
        const e2 = e.slice();
        e2[i] = [k, m];
        seen.add(toHex(WorldState.fromEntries(e2, counters(17n)).root()));
        variants++;
      }
      // removing the account
      seen.add(toHex(WorldState.fromEntries(e.filter((_, j) => j !== i), counters(17n)).root()));
      variants++;
    }
    seen.add(toHex(WorldState.fromEntries(e, counters(18n)).root()));
    variants++;
    // adding a zero-balance account
    seen.add(toHex(WorldState.fromEntries([...e, [hexOf(keys[9]!), { balance: 0n, nonce: 0n, publicKey: null }]], counters(17n)).root()));
    variants++;
    assert.equal(seen.size, variants + 1);
  });

  it('rootWith(changes) equals the root after apply(changes) and does not mutate', () => {
    const s = WorldState.fromEntries(sample(), counters(3n));
    const before = toHex(s.root());
    const ch: StateChanges = {
      accounts: new Map<string, Account>([
        [hexOf(keys[1]!), { balance: 1n, nonce: 9n, publicKey: null }], // existing
        [hexOf(keys[8]!), { balance: 77n, nonce: 0n, publicKey: null }], // new
        [hexOf(keys[9]!), { balance: 78n, nonce: 1n, publicKey: keys[9]!.publicKey }], // new
      ]),
      xfers: new Map(),
      pendingFees: new Map([[hexOf(keys[2]!), 9n]]),
      counters: counters(4n),
    };
    const predicted = toHex(s.rootWith(ch));
    assert.notEqual(predicted, before);
    assert.equal(toHex(s.root()), before, 'rootWith must not mutate');
    assert.equal(s.size, 6);
    s.apply(ch);
    assert.equal(toHex(s.root()), predicted);
    assert.equal(s.size, 8);
    assert.equal(s.burned, 4n);
    // and a fresh state built from the final entries agrees
    assert.equal(toHex(WorldState.fromEntries([...s.entries()], counters(4n), [], s.pendingFees()).root()), predicted);
    assert.notEqual(toHex(WorldState.fromEntries([...s.entries()], counters(4n)).root()), predicted, 'pending fees are in the root');
    // empty changes with the same burned give the same root
    assert.equal(toHex(s.rootWith(changes(new Map(), 4n))), predicted);
    // every counter is part of the root
    for (const k of ['burned', 'escrow', 'exported', 'imported', 'fees'] as const) {
      assert.notEqual(toHex(s.rootWith({ accounts: new Map(), xfers: new Map(), pendingFees: new Map(), counters: { ...s.counters, [k]: s.counters[k] + 1n } })), predicted, k);
    }
    assert.notEqual(toHex(s.rootWith({ ...changes(new Map(), 4n), counters: { ...s.counters, feeEpoch: 1 } })), predicted, 'feeEpoch');
  });

  it('WorldState.fromEntries after encode/decodeAccount reproduces the same root', () => {
    const s = WorldState.fromGenesis(G, 0);
    const r = executeApplicable(
      s,
      [tx(keys[0]!, { amount: 3n, to: addrOf(keys[N_ACCOUNTS]!) }), tx(keys[2]!, { amount: 4n, to: addrOf(keys[3]!) })],
      P,
      CTX,
    );
    s.apply(r.exec.changes);
    const stored: [string, Uint8Array][] = [...s.entries()].map(([k, a]) => [k, encodeAccount(a)]);
    assert.ok(s.counters.fees > 0n, 'the proposer has pending fees');
    const reloaded = WorldState.fromEntries(
      stored.map(([k, b]) => [k, decodeAccount(b)]),
      decodeCounters(encodeCounters(s.counters)),
      [],
      s.pendingFees(),
    );
    assert.equal(toHex(reloaded.root()), toHex(s.root()));
    assert.equal(reloaded.size, s.size);
    assert.deepEqual(reloaded.account(hexOf(keys[0]!))!.publicKey, keys[0]!.publicKey);
    assert.equal(reloaded.account(hexOf(keys[N_ACCOUNTS]!))!.publicKey, null);
  });

  it('the empty state still has a well-defined, burned-dependent root', () => {
    const a = WorldState.fromEntries([], counters(0n)).root();
    const b = WorldState.fromEntries([], counters(1n)).root();
    assert.equal(a.length, 32);
    assert.notDeepEqual(a, b);
  });
});

describe('state: home shards', () => {
  const G2 = makeGenesis({ ...G, shardCount: 2 });
  const shardOf = (k: KeyPair) => homeShard(addrOf(k), 2);
  const byShard = [0, 1].map((s) => keys.slice(0, N_ACCOUNTS).filter((k) => shardOf(k) === s));

  it('the fixture has funded accounts on both shards', () => {
    assert.ok(byShard[0]!.length >= 2 && byShard[1]!.length >= 2, 'need two accounts per shard; change the key seeds');
  });

  it("each shard's genesis state holds exactly its home accounts, and the shard supplies add up", () => {
    const s0 = WorldState.fromGenesis(G2, 0);
    const s1 = WorldState.fromGenesis(G2, 1);
    assert.equal(s0.size, byShard[0]!.length);
    assert.equal(s1.size, byShard[1]!.length);
    for (const k of byShard[0]!) assert.ok(s0.account(hexOf(k)) && !s1.account(hexOf(k)));
    assert.equal(s0.totalBalance(), genesisSupply(G2, 0));
    assert.equal(s1.totalBalance(), genesisSupply(G2, 1));
    assert.equal(genesisSupply(G2, 0) + genesisSupply(G2, 1), genesisSupply(G2));
  });

  it('a sender from another shard is TX_WRONG_SHARD; a plain transfer to another shard is TX_CROSS_SHARD', () => {
    const p0 = stateParams(G2, 0);
    const [a, b] = byShard[0]!;
    const [c] = byShard[1]!;
    const o = new Overlay(WorldState.fromGenesis(G2, 0));
    throwsCode(() => applyTx(o, tx(c!, { to: addrOf(a!) }), p0, CTX), 'TX_WRONG_SHARD');
    throwsCode(() => applyTx(o, tx(a!, { to: addrOf(c!) }), p0, CTX), 'TX_CROSS_SHARD');
    assert.equal(o.accounts.size, 0, 'refused transactions leave no trace');
    applyTx(o, tx(a!, { to: addrOf(b!) }), p0, CTX);
    assert.equal(o.account(hexOf(b!))!.balance, INITIAL + 100n);
  });
});
