// Provable queries: a query that names its keys (`proofKeys`) answers over those proven values exactly what it
// answers over the whole state, and reads nothing else; the account JSON is derived from its three bank keys.
import assert from 'node:assert/strict';
import { addressFromPublicKey, formatAddress, generateKeyPair, sha256, toHex, utf8 } from '@qnexus/crypto';
import { makeGenesis } from '@qnexus/types';
import { ProvenReader, StateView, bankAccountKeys, queryProofKeys, runProven, stateParams, type Module, type ProvenValue, type QueryDef, type WorldState } from '@qnexus/state';
import { app, throwsCode } from './helpers.js';

const gen = (label: string) => generateKeyPair('ml-dsa-44', sha256(utf8(`query-proof-${label}`)));
const [alice, validator, beacon] = [gen('alice'), gen('validator'), gen('beacon')];
const addr = (k: typeof alice) => addressFromPublicKey(k.publicKey);
const G = makeGenesis({
  chainId: 'qn-query-proof',
  scheme: 'ml-dsa-44',
  genesisTime: 0,
  slotMs: 1000,
  epochLength: 8,
  shardCount: 1,
  minFee: 1n,
  maxBlockTxs: 10,
  xferTimeoutSlots: 4,
  beacon: { publicKey: beacon.publicKey, peerId: '12D3KooWJWEKvSFbben74C7H4YtKjhPMTDxd7gP7zxWSUEeF27st' },
  accounts: [{ address: formatAddress(addr(alice)), balance: 1234n }],
  validators: [{ address: formatAddress(addr(validator)), publicKey: validator.publicKey, stake: 100n }],
});
const params = stateParams(G, 0);

/** What a proof of `keys` carries: each key with its value in `state` (null: absent). */
const proven = (state: WorldState, keys: Uint8Array[]): ProvenValue[] => keys.map((key) => ({ key, value: state.kv.get(toHex(key)) ?? null }));

function query(module: string, name: string): { m: Module; q: QueryDef } {
  const m = app.module(module)!;
  return { m, q: m.queries!.find((x) => x.name === name)! };
}

describe('state: provable queries (proofKeys, runProven) and the account keys', () => {
  const state = app.genesisState(G, 0);
  const alicePlain = formatAddress(addr(alice));

  for (const [module, name, args] of [
    ['bank', 'balance', { address: alicePlain, denom: 'qfc' }],
    ['bank', 'balance', { address: formatAddress(addr(validator)), denom: 'qfc' }],
    ['bank', 'balance', { address: alicePlain, denom: 'tok/none' }],
    ['staking', 'pending-fee', { proposer: formatAddress(addr(validator)) }],
  ] as const) {
    it(`${module} ${name} ${JSON.stringify(args)}: over its proven keys only, the same answer as over the state`, () => {
      const { m, q } = query(module, name);
      const keys = queryProofKeys(m, q, args);
      assert.ok(keys.every((k) => k[0] === m.id), 'full keys, under the module id');
      assert.deepEqual(runProven(m, q, params, args, proven(state, keys)), app.query(state, params, m, q, args));
    });
  }

  it('the account is derived from its three bank keys exactly', () => {
    const keys = bankAccountKeys(addr(alice)).map((k) => Uint8Array.from([1, ...k]));
    const view = new StateView(new ProvenReader(proven(state, keys)));
    assert.deepEqual(view.account(toHex(addr(alice))), state.account(toHex(addr(alice))));
    assert.equal(view.account(toHex(addr(alice)))!.balance, 1234n);
    // An address never seen: every key absent, no account.
    const nobody = new Uint8Array(20).fill(9);
    const none = bankAccountKeys(nobody).map((k) => Uint8Array.from([1, ...k]));
    assert.ok(proven(state, none).every((e) => e.value === null));
    assert.equal(new StateView(new ProvenReader(proven(state, none))).account(toHex(nobody)), undefined);
  });

  it('a range query has no proof; proven keys other than the named ones, or a read beyond them, are refused', () => {
    const { m: bank, q: balances } = query('bank', 'balances');
    throwsCode(() => queryProofKeys(bank, balances, { address: alicePlain }), 'BAD_REQUEST');
    const { q: balance } = query('bank', 'balance');
    const args = { address: alicePlain, denom: 'qfc' };
    const keys = queryProofKeys(bank, balance, args);
    throwsCode(() => runProven(bank, balance, params, args, proven(state, queryProofKeys(bank, balance, { ...args, denom: 'other' }))), 'INTERNAL');
    throwsCode(() => runProven(bank, balance, params, args, []), 'INTERNAL');
    // A query that reads a key it does not name is a bug: it fails rather than read unproven state.
    const sneaky: QueryDef = { ...balance, proofKeys: () => [new Uint8Array([0x6e])], run: balance.run };
    throwsCode(() => runProven(bank, sneaky, params, args, proven(state, [Uint8Array.from([1, 0x6e])])), 'INTERNAL');
    throwsCode(() => new ProvenReader(proven(state, keys)).range('01'), 'INTERNAL');
    // Bad arguments are the query's own errors, before anything is proven.
    throwsCode(() => queryProofKeys(bank, balance, { address: 'qn12', denom: 'qfc' }), 'BAD_REQUEST');
    throwsCode(() => queryProofKeys(bank, balance, { address: alicePlain, denom: 'Bad Denom' }), 'BANK_BAD_DENOM');
  });
});
