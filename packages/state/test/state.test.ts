import assert from 'node:assert/strict';
import {
  addressFromPublicKey,
  formatAddress,
  fromHex,
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
  Writer,
  encodeTx,
  genesisSupply,
  makeGenesis,
  openTx,
  txSigningBytes,
  type TxMsg,
  type Genesis,
  type TxBody,
  type TxEnvelope,
} from '@qnexus/types';
import { EMPTY_ROOT, FEE_COLLECTOR, MODULE_IDS, NATIVE_DENOM, WorldState, moduleKey, stateParams, xferRecordKey, type SendMsg, type StateChanges, type StateParams } from '@qnexus/state';
import { FEE_ACCOUNT } from '@qnexus/module-staking';
import { Pending, app, counters, entriesOf, message, pendingFee, pendingFees, prng, snapshot, stateWith, throwsCode, userBalances, viewAfter, type Counters, type Payload } from './helpers.js';

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
  /** Name the sender by address (the keyless form) instead of carrying its key. */
  keyless?: boolean;
  signature?: Uint8Array;
  /** A raw message instead of the transfer (unknown kinds, malformed encodings). */
  msg?: TxMsg;
}

function tx(from: KeyPair, o: TxOpts = {}): TxEnvelope {
  const common = {
    chainId: o.chainId ?? CHAIN,
    nonce: o.nonce ?? 0n,
    fee: o.fee ?? MIN_FEE,
    payload: o.msg ?? message({ kind: 'transfer', to: o.to ?? addrOf(keys[1]!), amount: o.amount ?? 100n }),
  };
  const body: TxBody = o.keyless ? { ...common, address: addrOf(from) } : { ...common, publicKey: o.publicKey ?? from.publicKey };
  return openTx(encodeTx({ body, signature: o.signature ?? SIG44 }));
}

const ZERO: Counters = { burned: 0n, escrow: 0n, exported: 0n, imported: 0n, fees: 0n, feeEpoch: 0 };

/** Full state keys of the bank's records of an address: account record ('a') and native balance ('b'). */
const authKeyHex = (addr: Uint8Array) => toHex(moduleKey(MODULE_IDS.bank, new Uint8Array([0x61, ...addr])));
const pubKeyHex = (addr: Uint8Array) => toHex(moduleKey(MODULE_IDS.bank, new Uint8Array([0x6b, ...addr])));
const balKeyHex = (addr: Uint8Array, denom = NATIVE_DENOM) => toHex(moduleKey(MODULE_IDS.bank, new Uint8Array([0x62, ...addr, ...utf8(denom)])));

function rootHex(s: WorldState, ch?: StateChanges): string {
  return toHex(s.rootWith(ch));
}

// ------------------------------------------------------------------ tests

describe('state: account records', () => {
  it('an account record is a u64 nonce under bank ‖ 0x61 ‖ address, its key under 0x6b written once; the balance is a separate entry', () => {
    const s = app.genesisState(G, 0);
    const r = app.executeApplicable(s, [tx(keys[0]!, { amount: 3n, to: addrOf(keys[N_ACCOUNTS]!) })], P, CTX);
    s.apply(r.exec.changes);
    assert.deepEqual(s.kv.get(authKeyHex(addrOf(keys[0]!))), new Writer().u64(1n).finish());
    assert.deepEqual(s.kv.get(pubKeyHex(addrOf(keys[0]!))), keys[0]!.publicKey);
    assert.deepEqual(s.kv.get(authKeyHex(addrOf(keys[N_ACCOUNTS]!))), new Writer().u64(0n).finish(), 'credited');
    assert.equal(s.kv.get(pubKeyHex(addrOf(keys[N_ACCOUNTS]!))), undefined, 'no key yet');
    assert.deepEqual(s.kv.get(balKeyHex(addrOf(keys[0]!))), new Writer().u64(INITIAL - 3n - MIN_FEE).finish());
    assert.deepEqual(s.kv.get(balKeyHex(addrOf(keys[N_ACCOUNTS]!))), new Writer().u64(3n).finish());
    // the second transaction bumps the nonce only: the key entry is not written again
    const r2 = app.executeApplicable(s, [tx(keys[0]!, { amount: 3n, to: addrOf(keys[N_ACCOUNTS]!), nonce: 1n })], P, CTX);
    assert.equal(r2.applied.length, 1);
    assert.equal(r2.exec.changes.writes.has(pubKeyHex(addrOf(keys[0]!))), false);
    assert.deepEqual(r2.exec.changes.writes.get(authKeyHex(addrOf(keys[0]!))), new Writer().u64(2n).finish());
  });

  it('records read back from raw entries, at the extremes (u64 max nonce, the largest key); malformed ones are MALFORMED', () => {
    const addr = addrOf(keys[0]!);
    const big = new Uint8Array(2592).fill(3);
    const entries = (nonce: Uint8Array, pk?: Uint8Array): [string, Uint8Array][] => [
      [authKeyHex(addr), nonce],
      ...(pk ? [[pubKeyHex(addr), pk] as [string, Uint8Array]] : []),
      [balKeyHex(addr), new Writer().u64(2n ** 64n - 1n).finish()],
    ];
    const max = WorldState.fromEntries(entries(new Writer().u64(2n ** 64n - 1n).finish(), big));
    assert.deepEqual(max.account(toHex(addr)), { balance: 2n ** 64n - 1n, nonce: 2n ** 64n - 1n, publicKey: big });
    const none = WorldState.fromEntries(entries(new Writer().u64(7n).finish()));
    assert.deepEqual(none.account(toHex(addr)), { balance: 2n ** 64n - 1n, nonce: 7n, publicKey: null });
    const good = new Writer().u64(1n).finish();
    throwsCode(() => WorldState.fromEntries(entries(new Uint8Array([...good, 0]))).account(toHex(addr)), 'MALFORMED', 'trailing byte');
    throwsCode(() => WorldState.fromEntries(entries(good.slice(0, good.length - 1))).account(toHex(addr)), 'MALFORMED', 'truncated');
    throwsCode(() => WorldState.fromEntries(entries(good, new Uint8Array(2593))).account(toHex(addr)), 'MALFORMED', 'oversize key');
    throwsCode(() => WorldState.fromEntries([[authKeyHex(addr), good], [balKeyHex(addr), new Uint8Array(7)]]).account(toHex(addr)), 'MALFORMED', 'short balance');
  });
});

describe('state: keyless transactions (the sender named by address)', () => {
  const send = (nonce: bigint, keyless: boolean, k = keys[0]!) => tx(k, { nonce, keyless, amount: 2n, to: addrOf(k === keys[3] ? keys[4]! : keys[3]!) });

  it('TX_KEY_UNKNOWN before the key is registered, on its own and in a block; nothing written', () => {
    const o = Pending.over(app.genesisState(G, 0));
    const before = snapshot(o);
    throwsCode(() => app.applyTx(o.kv, send(0n, true), P, CTX), 'TX_KEY_UNKNOWN');
    assert.deepEqual(snapshot(o), before);
    // an account that received funds (it has a record) but never sent has no key either
    app.applyTx(o.kv, send(0n, false), P, CTX);
    throwsCode(() => app.applyTx(o.kv, send(0n, true, keys[3]!), P, CTX), 'TX_KEY_UNKNOWN');
    const s = app.genesisState(G, 0);
    assert.throws(() => app.executeBlock(s, [send(0n, true)], P, CTX), (e: unknown) => e instanceof QnexusError && e.code === 'BAD_BLOCK' && /TX_KEY_UNKNOWN/.test(e.message));
    const r = app.executeApplicable(s, [send(0n, true)], P, CTX);
    assert.equal(r.applied.length, 0);
    assert.equal(r.skipped[0]?.error.code, 'TX_KEY_UNKNOWN');
  });

  it('applies once the key is registered: nonce and balance move as for the keyed form, the key entry is not rewritten', () => {
    const o = Pending.over(app.genesisState(G, 0));
    app.applyTx(o.kv, send(0n, false), P, CTX);
    const balance = o.account(hexOf(keys[0]!))!.balance;
    app.applyTx(o.kv, send(1n, true), P, CTX);
    const a = o.account(hexOf(keys[0]!))!;
    assert.equal(a.nonce, 2n);
    assert.equal(a.balance, balance - 2n - MIN_FEE);
    assert.deepEqual(a.publicKey, keys[0]!.publicKey, 'the registered key is unchanged');
    assert.deepEqual(o.publicKey(addrOf(keys[0]!)), keys[0]!.publicKey);
    assert.equal(o.publicKey(addrOf(keys[3]!)), null);
  });

  it('in a block, the key must be registered before the block: a key carried earlier in the same block does not count', () => {
    const s = app.genesisState(G, 0);
    const same = [send(0n, false), send(1n, true)];
    assert.throws(() => app.executeBlock(s, same, P, CTX), (e: unknown) => e instanceof QnexusError && e.code === 'BAD_BLOCK' && /transaction 1 .*TX_KEY_UNKNOWN/.test(e.message));
    // the proposer's builder agrees: it leaves the keyless one out
    const built = app.executeApplicable(s, same, P, CTX);
    assert.deepEqual(built.applied.map((e) => e.hashHex), [same[0]!.hashHex]);
    assert.equal(built.skipped[0]?.error.code, 'TX_KEY_UNKNOWN');
    // in the next block it applies, and the keyless block replays to the same root
    s.apply(built.exec.changes);
    const next = [send(1n, true), send(2n, true)];
    const exec = app.executeBlock(s, next, P, { ...CTX, height: 2, slot: 2 });
    const r = app.executeApplicable(s, next, P, { ...CTX, height: 2, slot: 2 });
    assert.equal(r.applied.length, 2);
    assert.equal(toHex(exec.stateRoot), toHex(r.exec.stateRoot));
  });

  it('stateless checks: the signature length is still the scheme\'s; a keyless beacon entry is XS_UNAUTHORIZED', () => {
    throwsCode(() => app.checkStateless(tx(keys[0]!, { keyless: true, signature: new Uint8Array(2419) }), P), 'TX_WRONG_SCHEME');
    app.checkStateless(send(1n, true), P);
    const entry = openTx(encodeTx({ body: { chainId: CHAIN, nonce: 0n, fee: 0n, address: addressFromPublicKey(beaconKey.publicKey), payload: { kind: (MODULE_IDS.xfer << 8) | 1, msg: new Uint8Array(0) } }, signature: SIG44 }));
    throwsCode(() => app.checkStateless(entry, P), 'XS_UNAUTHORIZED');
  });
});

describe('state: genesis state', () => {
  it('fromGenesis holds every genesis account and the full supply', () => {
    const s = app.genesisState(G, 0);
    assert.equal(s.size, N_ACCOUNTS);
    assert.equal(userBalances(s), genesisSupply(G));
    for (const k of keys.slice(0, N_ACCOUNTS)) assert.deepEqual(s.account(hexOf(k)), { balance: INITIAL, nonce: 0n, publicKey: null });
    assert.equal(s.account(hexOf(keys[N_ACCOUNTS]!)), undefined);
    assert.deepEqual(counters(s), ZERO);
    assert.deepEqual(s.denomTotals(), [{ denom: NATIVE_DENOM, balances: genesisSupply(G), genesis: genesisSupply(G), minted: 0n, burned: 0n, escrow: 0n, exported: 0n, imported: 0n }]);
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
      maxBlockWeight: 1000,
    });
  });

  it('a shard without genesis accounts still has the native supply record (and so a non-empty root)', () => {
    const noAccounts = makeGenesis({ ...G, accounts: [] });
    const s = app.genesisState(noAccounts, 0);
    assert.equal(s.size, 0);
    assert.deepEqual(s.denomTotals().map((t) => [t.denom, t.genesis, t.balances]), [[NATIVE_DENOM, 0n, 0n]]);
    assert.notDeepEqual(s.root(), EMPTY_ROOT);
  });
});

describe('state: applyTx', () => {
  it('a transfer moves the amount, bumps the nonce, splits the fee (burn + proposer tip) and registers the key', () => {
    const s = app.genesisState(G, 0);
    const o = Pending.over(s);
    const to = keys[N_ACCOUNTS]!; // new account
    app.applyTx(o.kv, tx(keys[0]!, { amount: 1000n, fee: 7n, to: addrOf(to) }), P, CTX);
    assert.deepEqual(o.account(hexOf(keys[0]!)), { balance: INITIAL - 1007n, nonce: 1n, publicKey: keys[0]!.publicKey });
    assert.deepEqual(o.account(hexOf(to)), { balance: 1000n, nonce: 0n, publicKey: null });
    assert.equal(counters(o).burned, 4n, '60 % of 7, rounded down');
    assert.equal(counters(o).fees, 3n);
    assert.equal(pendingFee(o, toHex(PROPOSER)), 3n);
    assert.deepEqual(pendingFees(o), [[toHex(PROPOSER), 3n]]);
    assert.equal(pendingFee(s, toHex(PROPOSER)), 0n);
    // the tips sit in the fee account, outside the users' balances
    assert.equal(o.account(toHex(FEE_ACCOUNT))!.balance, 3n);
    assert.equal(userBalances(o), genesisSupply(G) - 4n - 3n);
    // base state untouched
    assert.deepEqual(s.account(hexOf(keys[0]!)), { balance: INITIAL, nonce: 0n, publicKey: null });
    assert.equal(s.account(hexOf(to)), undefined);
    assert.equal(counters(s).burned, 0n);
    // second tx from the same sender reads the pending writes
    app.applyTx(o.kv, tx(keys[0]!, { nonce: 1n, amount: 1n, to: addrOf(keys[1]!) }), P, CTX);
    assert.deepEqual(o.account(hexOf(keys[0]!)), { balance: INITIAL - 1007n - 1n - MIN_FEE, nonce: 2n, publicKey: keys[0]!.publicKey });
    assert.deepEqual(o.account(hexOf(keys[1]!)), { balance: INITIAL + 1n, nonce: 0n, publicKey: null });
    assert.equal(counters(o).burned, 4n + burnOf(MIN_FEE));
    assert.equal(pendingFee(o, toHex(PROPOSER)), 3n + tipOf(MIN_FEE));
    // a recipient keeps its registered key and nonce
    const o2 = Pending.over(o);
    app.applyTx(o2.kv, tx(keys[1]!, { amount: 5n, to: addrOf(keys[0]!) }), P, CTX);
    assert.deepEqual(o2.account(hexOf(keys[0]!)), { balance: INITIAL - 1008n - MIN_FEE + 5n, nonce: 2n, publicKey: keys[0]!.publicKey });
  });

  it('spending the exact balance is allowed and leaves zero (the balance entry is deleted, the account stays)', () => {
    const s = app.genesisState(G, 0);
    const o = Pending.over(s);
    app.applyTx(o.kv, tx(keys[2]!, { amount: INITIAL - MIN_FEE, to: addrOf(keys[3]!) }), P, CTX);
    assert.deepEqual(o.account(hexOf(keys[2]!)), { balance: 0n, nonce: 1n, publicKey: keys[2]!.publicKey });
    assert.equal(o.account(hexOf(keys[3]!))!.balance, 2n * INITIAL - MIN_FEE);
    assert.equal(o.kv.writes.get(balKeyHex(addrOf(keys[2]!))), null, 'a zero balance is no entry');
  });

  it('applies with real ML-DSA-signed transactions too', () => {
    const body: TxBody = { chainId: CHAIN, nonce: 0n, fee: MIN_FEE, publicKey: keys[4]!.publicKey, payload: message({ kind: 'transfer', to: addrOf(keys[5]!), amount: 9n }) };
    const signature = getBackend('ml-dsa-44').sign(keys[4]!.secretKey, txSigningBytes(body));
    const env = openTx(encodeTx({ body, signature }));
    assert.ok(getBackend('ml-dsa-44').verify(body.publicKey, env.signBytes, env.tx.signature));
    const o = Pending.over(app.genesisState(G, 0));
    app.applyTx(o.kv, env, P, CTX);
    assert.equal(o.account(hexOf(keys[5]!))!.balance, INITIAL + 9n);
  });

  describe('failure codes, each leaving the pending writes unchanged', () => {
    const cases: [string, Parameters<typeof throwsCode>[1], (o: Pending) => TxEnvelope][] = [
      ['stale nonce', 'TX_NONCE_STALE', () => tx(keys[0]!, { nonce: 0n })],
      ['future nonce', 'TX_NONCE_FUTURE', () => tx(keys[0]!, { nonce: 2n })],
      ['future nonce for a fresh account', 'TX_NONCE_FUTURE', () => tx(keys[3]!, { nonce: 1n })],
      ['insufficient funds (amount + fee > balance)', 'TX_INSUFFICIENT_FUNDS', (o) => tx(keys[3]!, { amount: o.account(hexOf(keys[3]!))!.balance - MIN_FEE + 1n })],
      ['insufficient funds (fee alone)', 'TX_INSUFFICIENT_FUNDS', (o) => tx(keys[3]!, { amount: 1n, fee: o.account(hexOf(keys[3]!))!.balance + 1n })],
      ['insufficient funds (the fee takes it all)', 'TX_INSUFFICIENT_FUNDS', (o) => tx(keys[3]!, { amount: 1n, fee: o.account(hexOf(keys[3]!))!.balance })],
      ['unfunded sender', 'TX_INSUFFICIENT_FUNDS', () => tx(keys[N_ACCOUNTS]!, { amount: 1n })],
      ['wrong chain', 'TX_WRONG_CHAIN', () => tx(keys[0]!, { nonce: 1n, chainId: 'qn-other' })],
      ['wrong scheme (ml-dsa-65 key)', 'TX_WRONG_SCHEME', () => {
        const k65 = generateKeyPair('ml-dsa-65', new Uint8Array(32).fill(65));
        return tx(k65, { signature: new Uint8Array(3309) });
      }],
      ['wrong scheme (signature length)', 'TX_WRONG_SCHEME', () => tx(keys[0]!, { nonce: 1n, signature: new Uint8Array(2419) })],
      // (A key of no ML-DSA length does not even decode: TX_MALFORMED, in the codec's tests.)
      ['wrong scheme (an ML-DSA-87-long key)', 'TX_WRONG_SCHEME', () => tx(keys[0]!, { nonce: 1n, publicKey: new Uint8Array(2592).fill(7) })],
      ['fee too low', 'TX_FEE_TOO_LOW', () => tx(keys[0]!, { nonce: 1n, fee: MIN_FEE - 1n })],
      ['zero fee', 'TX_FEE_TOO_LOW', () => tx(keys[0]!, { nonce: 1n, fee: 0n })],
      ['zero amount', 'TX_BAD_AMOUNT', () => tx(keys[0]!, { nonce: 1n, amount: 0n })],
      ['self transfer', 'TX_SELF_TRANSFER', () => tx(keys[0]!, { nonce: 1n, to: addrOf(keys[0]!) })],
      ['a kind no module defines', 'TX_UNKNOWN_KIND', () => tx(keys[0]!, { nonce: 1n, msg: { kind: (0x7f << 8) | 1, msg: new Uint8Array(0) } })],
      ['a transfer message with a trailing byte', 'TX_MALFORMED', () => {
        const m = message({ kind: 'transfer', to: addrOf(keys[3]!), amount: 1n });
        return tx(keys[0]!, { nonce: 1n, msg: { kind: m.kind, msg: new Uint8Array([...m.msg, 0]) } });
      }],
      ['a transfer of an invalid denom', 'BANK_BAD_DENOM', () => tx(keys[0]!, { nonce: 1n, msg: message({ kind: 'transfer', to: addrOf(keys[3]!), amount: 1n, denom: 'Bad Denom' }) })],
      ['a transfer of a denom the sender does not hold', 'TX_INSUFFICIENT_FUNDS', () => tx(keys[0]!, { nonce: 1n, msg: message({ kind: 'transfer', to: addrOf(keys[3]!), amount: 1n, denom: 'tok/none' }) })],
    ];
    for (const [name, code, make] of cases) {
      it(`${code}: ${name}`, () => {
        const o = Pending.over(app.genesisState(G, 0));
        app.applyTx(o.kv, tx(keys[0]!, { nonce: 0n, amount: 10n, to: addrOf(keys[3]!) }), P, CTX); // make the pending writes non-trivial
        const before = snapshot(o);
        const env = make(o);
        throwsCode(() => app.applyTx(o.kv, env, P, CTX), code, name);
        assert.deepEqual(snapshot(o), before, 'pending writes must be unchanged');
        // and the branch still accepts a good tx afterwards
        app.applyTx(o.kv, tx(keys[0]!, { nonce: 1n, amount: 1n, to: addrOf(keys[3]!) }), P, CTX);
      });
    }

    it('Σ balances of a denom is bounded by u64: balances up to the bound move freely; one unit more is TX_BAD_AMOUNT', () => {
      const max = 2n ** 64n - 1n;
      const s = stateWith([
        [addrOf(keys[0]!), 1000n],
        [addrOf(keys[1]!), max - 1000n],
      ], P);
      assert.equal(userBalances(s), max);
      const o = Pending.over(s);
      app.applyTx(o.kv, tx(keys[0]!, { amount: 995n, to: addrOf(keys[1]!) }), P, CTX);
      assert.equal(o.account(hexOf(keys[1]!))!.balance, max - 5n);
      assert.equal(o.account(hexOf(keys[0]!))!.balance, 0n);
      throwsCode(() => stateWith([[addrOf(keys[0]!), max], [addrOf(keys[1]!), 1n]], P), 'TX_BAD_AMOUNT', 'total over u64');
      throwsCode(() => stateWith([[addrOf(keys[0]!), max + 1n]], P), 'TX_BAD_AMOUNT', 'balance over u64');
    });

    it('stateless checks run without state (checkTxStateless)', () => {
      assert.doesNotThrow(() => app.checkStateless(tx(keys[0]!), P));
      throwsCode(() => app.checkStateless(tx(keys[0]!, { chainId: 'nope' }), P), 'TX_WRONG_CHAIN');
      throwsCode(() => app.checkStateless(tx(keys[0]!, { fee: 1n }), P), 'TX_FEE_TOO_LOW');
      // a higher minimum fee in the params is honoured
      throwsCode(() => app.checkStateless(tx(keys[0]!, { fee: 10n }), { ...P, minFee: 11n }), 'TX_FEE_TOO_LOW');
      throwsCode(() => app.checkStateless(tx(keys[0]!), { ...P, scheme: 'ml-dsa-87' }), 'TX_WRONG_SCHEME');
    });
  });
});

describe('state: the host on a transaction (cost, name, weight)', () => {
  const env = (payload: Payload, fee = 10n, publicKey = keys[0]!.publicKey) =>
    openTx(encodeTx({ body: { chainId: CHAIN, nonce: 4n, fee, publicKey, payload: message(payload) }, signature: SIG44 }));
  const info = { id: sha256(utf8('x')), srcShard: 0, dstShard: 1, from: addrOf(keys[0]!), to: addrOf(keys[1]!), amount: 5n, deadlineSlot: 9, payload: new Uint8Array(0), module: MODULE_IDS.bank, op: 1, denom: NATIVE_DENOM };

  it('cost = what the sender gives up in the native denom: amount + fee, the fee alone for other denoms and unstakes, 0 for beacon entries', () => {
    const to = addrOf(keys[1]!);
    assert.equal(app.cost(env({ kind: 'transfer', to, amount: 777n })), 787n);
    assert.equal(app.cost(env({ kind: 'xtransfer', to, amount: 777n })), 787n);
    assert.equal(app.cost(env({ kind: 'xtransfer', to, amount: 777n }, 0n)), 777n);
    assert.equal(app.cost(env({ kind: 'transfer', to, amount: 777n, denom: 'tok/x' })), 10n, 'another denom is not native spend');
    assert.equal(app.cost(env({ kind: 'stake', validatorPublicKey: validator2.publicKey, amount: 5000n, validatorSignature: SIG44 })), 5010n);
    assert.equal(app.cost(env({ kind: 'unstake', validator: addrOf(validator2) })), 10n);
    assert.equal(app.cost(env({ kind: 'xprepare', xfer: info }, 0n, beaconKey.publicKey)), 0n);
    // a (malformed) beacon entry with a nonzero fee still costs nothing to anyone
    assert.equal(app.cost(env({ kind: 'xdecision', xfer: info, commit: true }, 5n, beaconKey.publicKey)), 0n);
  });

  it('names and weights: every message is named by its module, weighs 1 unless it says otherwise; an unknown kind is TX_UNKNOWN_KIND', () => {
    const names = app.messages().map((m) => `${m.module}/${m.name}/${m.kind.toString(16)}`);
    for (const n of ['bank/transfer/101', 'bank/xtransfer/102', 'xfer/xprepare/201', 'xfer/xdecision/202', 'staking/stake/301', 'staking/unstake/302']) assert.ok(names.includes(n), n);
    assert.equal(app.kindName(env({ kind: 'unstake', validator: addrOf(validator2) })), 'unstake');
    assert.equal(app.weight(env({ kind: 'transfer', to: addrOf(keys[1]!), amount: 1n })), 1);
    const unknown = openTx(encodeTx({ body: { chainId: CHAIN, nonce: 0n, fee: 10n, publicKey: keys[0]!.publicKey, payload: { kind: 0x7f01, msg: new Uint8Array(0) } }, signature: SIG44 }));
    assert.equal(app.kindName(unknown), 'unknown');
    throwsCode(() => app.cost(unknown), 'TX_UNKNOWN_KIND');
  });
});

describe('state: block execution', () => {
  it('executeBlock applies txs in order and returns the matching root', () => {
    const s = app.genesisState(G, 0);
    const rootBefore = rootHex(s);
    const txs = [
      tx(keys[0]!, { nonce: 0n, amount: 10n, to: addrOf(keys[1]!) }),
      tx(keys[0]!, { nonce: 1n, amount: 20n, to: addrOf(keys[2]!) }),
      tx(keys[1]!, { nonce: 0n, amount: INITIAL + 10n - MIN_FEE, to: addrOf(keys[N_ACCOUNTS]!) }), // spends what it just received
    ];
    const exec = app.executeBlock(s, txs, P, CTX);
    assert.equal(rootHex(s), rootBefore, 'executeBlock must not mutate the state');
    // the balances written: the four accounts and the fee account (tips); staking's fee hook takes the
    // whole fee, so the fee collector is never touched
    const balancesWritten = [...exec.changes.writes.keys()].filter((k) => k.startsWith(toHex(moduleKey(MODULE_IDS.bank, new Uint8Array([0x62])))));
    assert.deepEqual(balancesWritten.sort(), [0, 1, 2, N_ACCOUNTS].map((i) => balKeyHex(addrOf(keys[i]!))).concat(balKeyHex(FEE_ACCOUNT)).sort());
    assert.equal(exec.changes.writes.has(balKeyHex(FEE_COLLECTOR)), false, 'the collector is not touched');
    const next = viewAfter(s, exec.changes.writes);
    assert.equal(counters(next).burned, 3n * burnOf(MIN_FEE));
    assert.equal(counters(next).fees, 3n * tipOf(MIN_FEE));
    assert.deepEqual(pendingFees(next), [[toHex(PROPOSER), 3n * tipOf(MIN_FEE)]]);
    assert.equal(exec.changes.xfers.size, 0);
    s.apply(exec.changes);
    assert.equal(toHex(s.root()), toHex(exec.stateRoot));
    assert.notEqual(toHex(s.root()), rootBefore);
    assert.equal(s.account(hexOf(keys[1]!))!.balance, 0n);
    assert.equal(s.account(hexOf(keys[N_ACCOUNTS]!))!.balance, INITIAL + 10n - MIN_FEE);
    assert.equal(userBalances(s) + counters(s).burned + counters(s).fees, genesisSupply(G));
    // module accounts are account records too once they hold anything: staking's fee account here
    // (the fee collector holds only what no fee hook takes, nothing with staking wired)
    assert.equal(s.size, N_ACCOUNTS + 1 + 1);
    assert.equal(s.account(toHex(FEE_COLLECTOR)), undefined);
    assert.equal(pendingFee(s, toHex(PROPOSER)), 3n * tipOf(MIN_FEE));
  });

  it('executeBlock fails the whole block (BAD_BLOCK) if one tx fails', () => {
    const s = app.genesisState(G, 0);
    const rootBefore = rootHex(s);
    const bad = tx(keys[0]!, { nonce: 5n });
    const txs = [tx(keys[0]!, { nonce: 0n }), bad, tx(keys[0]!, { nonce: 1n })];
    assert.throws(
      () => app.executeBlock(s, txs, P, CTX),
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
    throwsCode(() => app.executeBlock(s, [tx(keys[0]!), tx(keys[0]!)], P, CTX), 'BAD_BLOCK');
  });

  it('an empty block changes nothing', () => {
    const s = app.genesisState(G, 0);
    const exec = app.executeBlock(s, [], P, CTX);
    assert.equal(exec.changes.writes.size, 0);
    assert.equal(toHex(exec.stateRoot), rootHex(s));
  });

  it('executeApplicable skips failing txs and keeps the rest in order', () => {
    const s = app.genesisState(G, 0);
    const t = [
      tx(keys[0]!, { nonce: 1n }), // future: skipped (nonce gap)
      tx(keys[0]!, { nonce: 0n, amount: 50n }), // ok
      tx(keys[0]!, { nonce: 1n, amount: 60n }), // ok now
      tx(keys[2]!, { amount: INITIAL }), // insufficient (amount + fee)
      tx(keys[3]!, { fee: 0n }), // fee too low
      tx(keys[0]!, { nonce: 1n, amount: 70n }), // stale (racing spend)
      tx(keys[4]!, { amount: 5n, to: addrOf(keys[5]!) }), // ok
    ];
    const r = app.executeApplicable(s, t, P, CTX);
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
    const replay = app.executeBlock(s, r.applied, P, CTX);
    assert.equal(toHex(replay.stateRoot), toHex(r.exec.stateRoot));
    assert.deepEqual([...replay.changes.writes], [...r.exec.changes.writes], 'the same writes');
    s.apply(r.exec.changes);
    assert.equal(toHex(s.root()), toHex(r.exec.stateRoot));
    assert.equal(s.account(hexOf(keys[1]!))!.balance, INITIAL + 110n);
    assert.equal(counters(s).burned, 3n * burnOf(MIN_FEE));
    assert.equal(counters(s).fees, 3n * tipOf(MIN_FEE));
    // the skipped senders are untouched: keys[2] paid no fee, keys[3] has no nonce bump
    assert.deepEqual(s.account(hexOf(keys[2]!)), { balance: INITIAL, nonce: 0n, publicKey: null });
    assert.deepEqual(s.account(hexOf(keys[3]!)), { balance: INITIAL, nonce: 0n, publicKey: null });
  });

  it('supply invariant sum(balances) + burned + fees = genesis supply over many random transfers', () => {
    const rand = prng(0xc0ffee);
    const all = keys.slice(0, N_ACCOUNTS + 1); // includes the unfunded account
    const s = app.genesisState(G, 0);
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
      const res = app.executeApplicable(s, txs, P, ctx);
      applied += res.applied.length;
      skipped += res.skipped.length;
      // update the model from the applied txs, independently of the state code
      for (const env of res.applied) {
        const b = env.tx.body;
        assert.equal(app.kindName(env), 'transfer');
        // decoded by the host, read back here as the bank's send message
        const pl = app.decode(env).p as SendMsg;
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
      assert.equal(toHex(app.executeBlock(s, res.applied, P, ctx).stateRoot), toHex(res.exec.stateRoot));
      s.apply(res.exec.changes);
      assert.equal(toHex(s.root()), toHex(res.exec.stateRoot));
      assert.equal(userBalances(s) + counters(s).burned + counters(s).fees, supply, `supply invariant after block ${block}`);
      assert.equal(counters(s).burned, burned);
      assert.deepEqual(pendingFees(s), [...tips.entries()].filter(([, v]) => v > 0n).sort((a, b) => (a[0] < b[0] ? -1 : 1)));
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
  /** The root of the entries built from scratch in key order, in one update (the trie's canonical form makes history irrelevant). */
  const specRoot = (entries: Iterable<[string, Uint8Array]>) =>
    WorldState.fromEntries([...entries].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))).root();

  function played(): WorldState {
    const s = app.genesisState(G, 0);
    const r = app.executeApplicable(s, [tx(keys[0]!, { amount: 3n, to: addrOf(keys[N_ACCOUNTS]!) }), tx(keys[2]!, { amount: 4n, to: addrOf(keys[3]!) })], P, CTX);
    s.apply(r.exec.changes);
    return s;
  }

  it('is the trie root of the entries, independent of insertion order and of the history of writes', () => {
    const s = played();
    const e = entriesOf(s);
    assert.ok(e.length > N_ACCOUNTS, 'accounts, balances, totals, supply, fees');
    assert.deepEqual(s.root(), specRoot(e));
    const rand = prng(7);
    for (let i = 0; i < 5; i++) {
      const shuffled = e.map((x) => [rand(), x] as const).sort((p, q) => p[0] - q[0]).map((p) => p[1]);
      assert.equal(toHex(WorldState.fromEntries(shuffled).root()), toHex(s.root()));
    }
    // inserting via apply in two steps, another order, also agrees
    const b = WorldState.fromEntries([]);
    b.apply({ writes: new Map(e.slice(5)), xfers: new Map() });
    b.apply({ writes: new Map(e.slice(0, 5).reverse()), xfers: new Map() });
    assert.equal(toHex(b.root()), toHex(s.root()));
  });

  it('changes when any value, any key, an entry removed or an entry added', () => {
    const e = entriesOf(played());
    const base = toHex(specRoot(e));
    const seen = new Set([base]);
    let variants = 0;
    for (let i = 0; i < e.length; i++) {
      const [k, v] = e[i]!;
      const value = e.slice();
      value[i] = [k, v.map((x, j) => (j === v.length - 1 ? x ^ 1 : x))];
      seen.add(toHex(WorldState.fromEntries(value).root()));
      const removed = e.filter((_, j) => j !== i);
      seen.add(toHex(WorldState.fromEntries(removed).root()));
      variants += 2;
    }
    // a key under another module with the same bytes
    const [k0, v0] = e[0]!;
    seen.add(toHex(WorldState.fromEntries([...e.slice(1), ['7f' + k0.slice(2), v0]]).root()));
    seen.add(toHex(WorldState.fromEntries([...e, [balKeyHex(addrOf(keys[9]!)), new Writer().u64(0n).finish()]]).root()));
    variants += 2;
    assert.equal(seen.size, variants + 1);
  });

  it('rootWith(changes) equals the root after apply(changes) and does not mutate; deletions drop leaves', () => {
    const s = played();
    const before = toHex(s.root());
    const size = s.kv.size;
    const a0 = authKeyHex(addrOf(keys[0]!));
    const writes = new Map<string, Uint8Array | null>([
      [a0, new Writer().u64(9n).bytes(new Uint8Array(0)).finish()], // existing
      [balKeyHex(addrOf(keys[9]!)), new Writer().u64(77n).finish()], // new
      [balKeyHex(addrOf(keys[2]!)), null], // deleted
      [balKeyHex(addrOf(keys[8]!), 'nothere'), null], // deleting an absent key: no-op
    ]);
    const ch: StateChanges = { writes, xfers: new Map() };
    const predicted = toHex(s.rootWith(ch));
    assert.notEqual(predicted, before);
    assert.equal(toHex(s.root()), before, 'rootWith must not mutate');
    assert.equal(s.kv.size, size);
    s.apply(ch);
    assert.equal(toHex(s.root()), predicted);
    assert.equal(s.kv.size, size);
    assert.equal(s.kv.get(balKeyHex(addrOf(keys[2]!))), undefined);
    // and a fresh state built from the final entries agrees
    assert.equal(toHex(WorldState.fromEntries(s.kv.all()).root()), predicted);
    // empty changes give the same root
    assert.equal(toHex(s.rootWith({ writes: new Map(), xfers: new Map() })), predicted);
  });

  it('WorldState.fromEntries of the stored entries reproduces the same root and reads', () => {
    const s = played();
    assert.ok(counters(s).fees > 0n, 'the proposer has pending fees');
    const stored = entriesOf(s).map(([k, v]): [string, Uint8Array] => [k, v.slice()]);
    const reloaded = WorldState.fromEntries(stored);
    assert.equal(toHex(reloaded.root()), toHex(s.root()));
    assert.equal(reloaded.size, s.size);
    assert.deepEqual(counters(reloaded), counters(s));
    assert.deepEqual(pendingFees(reloaded), pendingFees(s));
    assert.deepEqual(reloaded.denomTotals(), s.denomTotals());
    assert.deepEqual(reloaded.account(hexOf(keys[0]!))!.publicKey, keys[0]!.publicKey);
    assert.equal(reloaded.account(hexOf(keys[N_ACCOUNTS]!))!.publicKey, null);
  });

  it('the empty state has the empty trie root; one entry changes it', () => {
    const a = WorldState.fromEntries([]).root();
    assert.equal(a.length, 32);
    assert.deepEqual(a, EMPTY_ROOT);
    assert.notDeepEqual(WorldState.fromEntries([['01', new Uint8Array(0)]]).root(), a);
  });
});

describe('state: home shards', () => {
  const G2 = makeGenesis({ ...G, shardCount: 2 });
  const P2 = [stateParams(G2, 0), stateParams(G2, 1)];
  const shardOf = (k: KeyPair) => homeShard(addrOf(k), 2);
  const byShard = [0, 1].map((s) => keys.slice(0, N_ACCOUNTS).filter((k) => shardOf(k) === s));

  it('the fixture has funded accounts on both shards', () => {
    assert.ok(byShard[0]!.length >= 2 && byShard[1]!.length >= 2, 'need two accounts per shard; change the key seeds');
  });

  it("each shard's genesis state holds exactly its home accounts, and the shard supplies add up", () => {
    const s0 = app.genesisState(G2, 0);
    const s1 = app.genesisState(G2, 1);
    assert.equal(s0.size, byShard[0]!.length);
    assert.equal(s1.size, byShard[1]!.length);
    for (const k of byShard[0]!) assert.ok(s0.account(hexOf(k)) && !s1.account(hexOf(k)));
    assert.equal(userBalances(s0), genesisSupply(G2, 0));
    assert.equal(userBalances(s1), genesisSupply(G2, 1));
    assert.equal(genesisSupply(G2, 0) + genesisSupply(G2, 1), genesisSupply(G2));
  });

  it('a sender from another shard is TX_WRONG_SHARD; a plain transfer to another shard is TX_CROSS_SHARD', () => {
    const [a, b] = byShard[0]!;
    const [c] = byShard[1]!;
    const o = Pending.over(app.genesisState(G2, 0));
    throwsCode(() => app.applyTx(o.kv, tx(c!, { to: addrOf(a!) }), P2[0]!, CTX), 'TX_WRONG_SHARD');
    throwsCode(() => app.applyTx(o.kv, tx(a!, { to: addrOf(c!) }), P2[0]!, CTX), 'TX_CROSS_SHARD');
    assert.deepEqual(snapshot(o), [], 'refused transactions leave no trace');
    app.applyTx(o.kv, tx(a!, { to: addrOf(b!) }), P2[0]!, CTX);
    assert.equal(o.account(hexOf(b!))!.balance, INITIAL + 100n);
  });

  it('a proposer skips a transaction that cannot pay amount + fee though it can pay the fee: nothing of it is in the block', () => {
    const [a, a2, a3] = byShard[0]!;
    const [c] = byShard[1]!;
    const s0 = app.genesisState(G2, 0);
    const body = (from: KeyPair, payload: Payload, nonce = 0n, fee = MIN_FEE): TxEnvelope =>
      openTx(encodeTx({ body: { chainId: CHAIN, nonce, fee, publicKey: from.publicKey, payload: message(payload) }, signature: SIG44 }));
    // the fee is affordable, the amount is not: whether the host checks the cost up front or the escrow debit throws after the fee, nothing may remain
    // (a holds INITIAL + 7 once the first good transaction credited it: 3 short of amount + fee)
    const xfail = body(a!, { kind: 'xtransfer', to: addrOf(c!), amount: INITIAL + 3n });
    // the same for a stake (its escrow debit comes after the fee too)
    const sfail = body(a2!, { kind: 'stake', validatorPublicKey: validator2.publicKey, amount: INITIAL, validatorSignature: SIG44 });
    const good = [tx(a3 ?? b0(), { amount: 7n, to: addrOf(a!) }), body(a2!, { kind: 'xtransfer', to: addrOf(c!), amount: 11n })];
    const ctx = { ...CTX, slot: 2 };
    const withFailing = app.executeApplicable(s0, [good[0]!, xfail, sfail, good[1]!], P2[0]!, ctx);
    assert.deepEqual(withFailing.skipped.map((x) => [x.env.hashHex, x.error.code]), [
      [xfail.hashHex, 'TX_INSUFFICIENT_FUNDS'],
      [sfail.hashHex, 'TX_INSUFFICIENT_FUNDS'],
    ]);
    assert.deepEqual(withFailing.applied.map((e) => e.hashHex), good.map((e) => e.hashHex));
    // exactly the writes of the block without them: no nonce, no fee, no tip, no burn, no record
    const without = app.executeApplicable(s0, good, P2[0]!, ctx);
    assert.deepEqual([...withFailing.exec.changes.writes].map(([k, v]) => [k, v && toHex(v)]), [...without.exec.changes.writes].map(([k, v]) => [k, v && toHex(v)]));
    assert.deepEqual(withFailing.exec.stateRoot, without.exec.stateRoot);
    assert.ok(!withFailing.exec.changes.writes.has(toHex(xferRecordKey(xfail.hash))), 'no record of the failed xtransfer');
    assert.ok(!withFailing.exec.changes.writes.has(toHex(xferRecordKey(sfail.hash))), 'no record of the failed stake');
    assert.ok(![...withFailing.exec.changes.writes.keys()].some((k) => k.includes(hexOf(a!)) && k !== balKeyHex(addrOf(a!))), 'no record of the failing sender but the credit it received');
    s0.apply(withFailing.exec.changes);
    assert.deepEqual(s0.account(hexOf(a!)), { balance: INITIAL + 7n, nonce: 0n, publicKey: null }, 'nonce and balance of the xtransfer sender unchanged (but for the credit)');
    assert.deepEqual(s0.account(hexOf(a2!)), { balance: INITIAL - 11n - MIN_FEE, nonce: 1n, publicKey: a2!.publicKey }, 'only its good xtransfer counted');
    assert.equal(s0.xfer(xfail.hashHex), undefined);
    assert.equal(s0.xfer(sfail.hashHex), undefined);
    // the same sender can still use nonce 0
    const retry = body(a!, { kind: 'xtransfer', to: addrOf(c!), amount: 1n });
    assert.deepEqual(app.executeApplicable(s0, [retry], P2[0]!, { ...ctx, height: 2 }).applied, [retry]);
    // and a block that carries the failing one is invalid
    throwsCode(() => app.executeBlock(app.genesisState(G2, 0), [xfail], P2[0]!, ctx), 'BAD_BLOCK');

    function b0(): KeyPair {
      throw new Error('fixture: need three accounts on shard 0; change the key seeds');
    }
  });
});
