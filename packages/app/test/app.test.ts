import assert from 'node:assert/strict';
import { addressFromPublicKey, formatAddress, generateKeyPair } from '@qnexus/crypto';
import { QnexusError, genesisHash, genesisToJson, makeGenesis, parseGenesis, type Genesis } from '@qnexus/types';
import { StateMachine, msg, type Module } from '@qnexus/state';
import { app, checkGenesisModules, createApp, genesisModules, wire } from '../src/index.js';

const v = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(1));
const beacon = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(2));

function genesis(over: Partial<Parameters<typeof makeGenesis>[0]> = {}): Genesis {
  return makeGenesis({
    chainId: 'apptest',
    scheme: 'ml-dsa-44',
    genesisTime: 0,
    slotMs: 1000,
    epochLength: 8,
    shardCount: 1,
    minFee: 1n,
    maxBlockTxs: 100,
    xferTimeoutSlots: 16,
    beacon: { publicKey: beacon.publicKey, peerId: '12D3KooWJWEKvSFbben74C7H4YtKjhPMTDxd7gP7zxWSUEeF27st' },
    accounts: [],
    validators: [{ address: formatAddress(addressFromPublicKey(v.publicKey)), publicKey: v.publicKey, stake: 100n }],
    ...over,
  });
}

const extra = (name: string, id: number): Module => ({
  name,
  id,
  msgs: [msg<Record<string, never>>({ type: 1, name: `${name}-ping`, encode: () => undefined, decode: () => ({}), handle: () => undefined, json: () => ({}) })],
});

const code = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof QnexusError, String(e));
    return e.code;
  }
  assert.fail('expected an error');
};

describe('app: the module list and the genesis it implies', () => {
  it('lists the host built-ins first, then the wired modules, with unique ids and message names', () => {
    assert.deepEqual(app.modules.map((m) => [m.name, m.id]), [['bank', 1], ['xfer', 2], ['staking', 3], ['token', 4], ['faucet', 5], ['amm', 6], ['dex', 7]]);
    assert.deepEqual(genesisModules(), [{ name: 'staking', id: 3 }, { name: 'token', id: 4 }, { name: 'faucet', id: 5 }, { name: 'amm', id: 6 }, { name: 'dex', id: 7 }]);
    const kinds = app.messages().map((m) => `${m.module}/${m.name}/${m.kind.toString(16)}`);
    assert.deepEqual(kinds.slice(0, 6), ['bank/transfer/101', 'bank/xtransfer/102', 'xfer/xprepare/201', 'xfer/xdecision/202', 'staking/stake/301', 'staking/unstake/302']);
    // Each wired module's kinds carry its id as their high byte, and no kind is defined twice.
    for (const m of app.messages()) assert.equal(m.kind >> 8, app.module(m.module)!.id);
    assert.equal(new Set(kinds).size, kinds.length);
  });

  it('refuses wiring that would make kinds or state keys ambiguous', () => {
    assert.throws(() => createApp(() => [extra('dup', 3)]), /id 3 is taken/);
    assert.throws(() => createApp(() => [extra('staking', 9)]), /taken/);
    assert.throws(() => createApp(() => [extra('zero', 0)]), /not in 1\.\.255/);
    assert.throws(() => new StateMachine((k) => [...wire(k), { ...extra('twice', 9), msgs: [...extra('a', 9).msgs!, ...extra('a', 9).msgs!] }]), /message name a-ping is taken/);
    assert.throws(() => createApp(() => [{ ...extra('errs', 9), errors: { OTHER_CODE: 400 } }]), /must start with ERRS_/);
  });

  it('a genesis names the modules: round trip, part of the hash, absent ≠ empty', () => {
    const plain = genesis();
    const named = genesis({ modules: genesisModules() });
    assert.deepEqual(parseGenesis(JSON.parse(JSON.stringify(genesisToJson(named)))).modules, [{ name: 'staking', id: 3 }, { name: 'token', id: 4 }, { name: 'faucet', id: 5 }, { name: 'amm', id: 6 }, { name: 'dex', id: 7 }]);
    assert.equal(parseGenesis(JSON.parse(JSON.stringify(genesisToJson(plain)))).modules, undefined);
    const hashes = new Set([plain, named, genesis({ modules: [] })].map((g) => Buffer.from(genesisHash(g)).toString('hex')));
    assert.equal(hashes.size, 3);
    for (const bad of [[{ name: 'x', id: 3 }], [{ name: 'bank', id: 1 }], [{ name: 'ab', id: 9 }, { name: 'cd', id: 4 }], [{ name: 'ab', id: 4, extra: 1 }]]) {
      assert.equal(code(() => parseGenesis({ ...genesisToJson(plain), modules: bad })), 'BAD_GENESIS', JSON.stringify(bad));
    }
  });

  it('a process whose app runs other modules than the genesis names refuses it (BAD_CONFIG); an unnamed genesis is not checked', () => {
    assert.doesNotThrow(() => checkGenesisModules(genesis({ modules: genesisModules() })));
    assert.doesNotThrow(() => checkGenesisModules(genesis()));
    assert.equal(code(() => checkGenesisModules(genesis({ modules: [] }))), 'BAD_CONFIG');
    const withNote = createApp(() => [extra('note', 200)]);
    assert.equal(code(() => checkGenesisModules(genesis({ modules: genesisModules() }), withNote)), 'BAD_CONFIG');
    assert.doesNotThrow(() => checkGenesisModules(genesis({ modules: genesisModules(withNote) }), withNote));
  });

  it("a module's genesis section: parsed by the module into its genesis state, its default when absent, refused when invalid, part of the hash", () => {
    const KEY = new Uint8Array([0x67]);
    const seeded = (k: Parameters<typeof wire>[0]): Module => ({
      ...extra('seed', 9),
      genesis: {
        default: () => 7,
        parse: (j: unknown) => {
          if (typeof j !== 'object' || j === null || typeof (j as { n?: unknown }).n !== 'number') throw new Error('expected { n: number }');
          return (j as { n: number }).n;
        },
        init: (ctx, n) => ctx.store(9).set(KEY, new Uint8Array([n as number])),
      },
    });
    const sm = createApp((k) => [seeded(k)]);
    const mods = (section?: unknown) => genesisModules(sm).map((m) => (m.name === 'seed' && section !== undefined ? { ...m, genesis: section } : m));
    const read = (g: Genesis) => sm.genesisState(g, 0).store(9).get(KEY)?.[0];
    assert.equal(read(genesis({ modules: mods() })), 7, 'the default');
    const g42 = parseGenesis(JSON.parse(JSON.stringify(genesisToJson(genesis({ modules: mods({ n: 42 }) })))));
    assert.equal(read(g42), 42, 'the file\'s section, after a JSON round trip');
    assert.notEqual(Buffer.from(genesisHash(g42)).toString('hex'), Buffer.from(genesisHash(genesis({ modules: mods({ n: 43 }) }))).toString('hex'));
    // key order does not change the hash (canonical JSON)
    assert.equal(
      Buffer.from(genesisHash(genesis({ modules: mods({ a: 1, n: 2 }) }))).toString('hex'),
      Buffer.from(genesisHash(genesis({ modules: mods({ n: 2, a: 1 }) }))).toString('hex'),
    );
    assert.equal(code(() => checkGenesisModules(genesis({ modules: mods({ n: 'x' }) }), sm)), 'BAD_GENESIS');
    assert.doesNotThrow(() => checkGenesisModules(genesis({ modules: mods({ n: 5 }) }), sm));
  });
});
