import assert from 'node:assert/strict';
import { addressFromPublicKey, formatAddress, generateKeyPair, homeShard, parseAddress, sha256, toHex, utf8 } from '@qnexus/crypto';
import {
  encodeGenesis,
  epochOf,
  genesisHash,
  genesisSupply,
  genesisToJson,
  makeGenesis,
  parseGenesis,
  QnexusError,
  slotAt,
  type Genesis,
  type GenesisJson,
} from '@qnexus/types';
import { key, throwsCode } from './helpers.js';

const accAddr = (n: number) => formatAddress(sha256(utf8(`genesis-acc-${n}`)).slice(0, 20));
const valAddr = (n: number) => formatAddress(addressFromPublicKey(key(n).publicKey));
/** A base58btc Ed25519 libp2p peer id (the shape `peerIdFromKeyFile` prints). */
const BEACON_PEER = '12D3KooWJWEKvSFbben74C7H4YtKjhPMTDxd7gP7zxWSUEeF27st';
const byAddr = <T extends { address: string }>(xs: T[]) => [...xs].sort((a, b) => (a.address < b.address ? -1 : 1));

function validJson(): GenesisJson {
  return {
    chainId: 'qn-genesis-test',
    scheme: 'ml-dsa-44',
    genesisTime: 1_700_000_000_000,
    slotMs: 500,
    epochLength: 32,
    shardCount: 2,
    minFee: '10',
    maxBlockTxs: 500,
    xferTimeoutSlots: 20,
    beacon: { publicKey: toHex(key(30).publicKey), peerId: BEACON_PEER },
    accounts: byAddr([
      { address: accAddr(1), balance: '1000000' },
      { address: accAddr(2), balance: '0' },
      { address: accAddr(3), balance: '18446744073000000000' },
    ]),
    validators: byAddr([
      { address: valAddr(21), publicKey: toHex(key(21).publicKey), stake: '100' },
      { address: valAddr(22), publicKey: toHex(key(22).publicKey), stake: '200' },
    ]),
  };
}

const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

function rejects(mut: (j: GenesisJson & Record<string, unknown>) => void, why: string): void {
  const j = clone(validJson()) as GenesisJson & Record<string, unknown>;
  mut(j);
  throwsCode(() => parseGenesis(j), 'BAD_GENESIS', why);
}

/** Like `rejects`, and the message names the reason (so a test cannot pass for an unrelated error). */
function rejectsWith(mut: (j: GenesisJson & Record<string, unknown>) => void, re: RegExp, why: string): void {
  const j = clone(validJson()) as GenesisJson & Record<string, unknown>;
  mut(j);
  assert.throws(
    () => parseGenesis(j),
    (e: unknown) => e instanceof QnexusError && e.code === 'BAD_GENESIS' && re.test(e.message),
    why,
  );
}

describe('types: genesis', () => {
  it('parses a valid genesis', () => {
    const g = parseGenesis(validJson());
    assert.equal(g.chainId, 'qn-genesis-test');
    assert.equal(g.scheme, 'ml-dsa-44');
    assert.equal(g.minFee, 10n);
    assert.equal(g.accounts.length, 3);
    assert.equal(typeof g.accounts[0]!.balance, 'bigint');
    assert.deepEqual(g.validators.map((v) => v.stake).sort(), [100n, 200n]);
    for (const v of g.validators) assert.equal(v.publicKey.length, 1312);
    assert.equal(genesisSupply(g), 1_000_000n + 18446744073000000000n);
    // JSON round trip
    assert.deepEqual(genesisToJson(g), validJson());
    assert.deepEqual(parseGenesis(clone(genesisToJson(g))), g);
  });

  it('rejects non-objects', () => {
    for (const x of [null, 1, 'g', [], undefined]) throwsCode(() => parseGenesis(x), 'BAD_GENESIS', String(x));
  });

  it('rejects unknown fields at every level', () => {
    rejects((j) => (j.extra = 1), 'top-level');
    rejects((j) => ((j.accounts[0] as Record<string, unknown>).nonce = '0'), 'account');
    rejects((j) => ((j.validators[0] as Record<string, unknown>).name = 'v'), 'validator');
  });

  it('rejects unsorted and duplicate accounts / validators', () => {
    rejects((j) => j.accounts.reverse(), 'unsorted accounts');
    rejects((j) => j.accounts.push({ ...j.accounts[2]! }), 'duplicate account');
    rejects((j) => (j.accounts[1] = { ...j.accounts[0]!, balance: '5' }), 'duplicate account, other balance');
    rejects((j) => j.validators.reverse(), 'unsorted validators');
    rejects((j) => j.validators.push({ ...j.validators[1]! }), 'duplicate validator');
  });

  it('rejects a validator whose address does not match its public key', () => {
    rejects((j) => (j.validators[0]!.address = j.validators[1]!.address), 'swapped address');
    rejects((j) => (j.validators[0]!.address = accAddr(9)), 'arbitrary address');
    rejects((j) => (j.validators[0]!.publicKey = toHex(key(23).publicKey)), 'other key');
  });

  it('rejects a bad scheme or a public key of the wrong length for the scheme', () => {
    rejects((j) => (j.scheme = 'ml-dsa-99'), 'unknown scheme');
    rejects((j) => (j.scheme = 'ML-DSA-44'), 'uppercase scheme');
    rejects((j) => ((j as Record<string, unknown>).scheme = 44), 'numeric scheme');
    rejects((j) => (j.scheme = 'ml-dsa-65'), 'ml-dsa-44 keys under ml-dsa-65');
    rejects((j) => (j.validators[0]!.publicKey = j.validators[0]!.publicKey.slice(2)), 'short key');
    rejects((j) => (j.validators[0]!.publicKey = j.validators[0]!.publicKey.toUpperCase().replace(/^../, 'zz')), 'non-hex key');
  });

  it('accepts ml-dsa-65 validators and beacon under ml-dsa-65', () => {
    const kp = generateKeyPair('ml-dsa-65', new Uint8Array(32).fill(65));
    const beacon = generateKeyPair('ml-dsa-65', new Uint8Array(32).fill(66));
    const j = validJson();
    j.scheme = 'ml-dsa-65';
    j.shardCount = 1;
    j.validators = [{ address: formatAddress(addressFromPublicKey(kp.publicKey)), publicKey: toHex(kp.publicKey), stake: '1' }];
    // an ml-dsa-44 beacon key under ml-dsa-65 is the wrong length
    throwsCode(() => parseGenesis(j), 'BAD_GENESIS', 'ml-dsa-44 beacon under ml-dsa-65');
    j.beacon.publicKey = toHex(beacon.publicKey);
    const g = parseGenesis(j);
    assert.equal(g.scheme, 'ml-dsa-65');
    assert.equal(g.beacon.publicKey.length, 1952);
  });

  it('rejects non-decimal or out-of-range amounts', () => {
    const bad: unknown[] = ['-1', '01', '1.0', '1e3', '0x10', ' 1', '1 ', '', 'abc', 10, 10n, null, '18446744073709551616', '100000000000000000000', '+5'];
    for (const v of bad) {
      rejects((j) => ((j.accounts[0] as Record<string, unknown>).balance = v), `balance ${String(v)}`);
      rejects((j) => ((j.validators[0] as Record<string, unknown>).stake = v), `stake ${String(v)}`);
      rejects((j) => ((j as Record<string, unknown>).minFee = v), `minFee ${String(v)}`);
    }
    // u64 max is fine for a single balance but the total supply must fit u64 as well
    rejects((j) => (j.accounts[0]!.balance = '18446744073709551615'), 'supply overflow');
    const ok = validJson();
    ok.accounts = [{ address: accAddr(1), balance: '18446744073709551615' }];
    assert.equal(parseGenesis(ok).accounts[0]!.balance, 2n ** 64n - 1n);
    rejects((j) => (j.validators[0]!.stake = '0'), 'zero stake');
  });

  it('rejects bad scalars, chain ids, shards and empty validator sets', () => {
    rejects((j) => (j.chainId = 'Bad'), 'chain id');
    rejects((j) => (j.chainId = ''), 'empty chain id');
    rejects((j) => (j.shardCount = 0), 'shardCount 0');
    rejects((j) => (j.shardCount = 65), 'shardCount 65');
    rejects((j) => (j.shardCount = 1.5), 'shardCount 1.5');
    rejects((j) => (j.slotMs = 49), 'slotMs too small');
    rejects((j) => ((j as Record<string, unknown>).genesisTime = '0'), 'genesisTime string');
    rejects((j) => (j.genesisTime = -1), 'genesisTime negative');
    rejects((j) => (j.epochLength = 0), 'epochLength');
    rejects((j) => (j.maxBlockTxs = 10_001), 'maxBlockTxs');
    rejects((j) => (j.validators = []), 'no validators');
    rejects((j) => ((j as Record<string, unknown>).accounts = {}), 'accounts not array');
    rejects((j) => ((j as Record<string, unknown>).accounts = [null]), 'null account');
    rejects((j) => (j.accounts[0]!.address = j.accounts[0]!.address.toUpperCase()), 'uppercase address');
    rejects((j) => delete (j as Record<string, unknown>).minFee, 'missing minFee');
  });

  it('makeGenesis sorts accounts and validators and validates', () => {
    const g0 = parseGenesis(validJson());
    const shuffled = {
      ...g0,
      accounts: [g0.accounts[2]!, g0.accounts[0]!, g0.accounts[1]!],
      validators: [g0.validators[1]!, g0.validators[0]!],
    };
    const g = makeGenesis(shuffled);
    assert.deepEqual(g, g0);
    assert.deepEqual(genesisHash(g), genesisHash(g0));
    // the input arrays are not mutated
    assert.equal(shuffled.accounts[0], g0.accounts[2]);
    // a bad input fails at makeGenesis
    throwsCode(() => makeGenesis({ ...g0, accounts: [g0.accounts[0]!, g0.accounts[0]!] }), 'BAD_GENESIS');
    throwsCode(() => makeGenesis({ ...g0, validators: [{ ...g0.validators[0]!, address: accAddr(1) }] }), 'BAD_GENESIS');
  });

  it('genesisHash is deterministic and sensitive to every field', () => {
    const g = parseGenesis(validJson());
    const h = toHex(genesisHash(g));
    assert.equal(toHex(genesisHash(parseGenesis(validJson()))), h);
    assert.equal(toHex(sha256(encodeGenesis(g))), h);
    const v0 = g.validators[0]!;
    const variants: [string, Genesis][] = [
      ['chainId', { ...g, chainId: 'qn-genesis-tesu' }],
      ['scheme', { ...g, scheme: 'ml-dsa-65' }],
      ['genesisTime', { ...g, genesisTime: g.genesisTime + 1 }],
      ['slotMs', { ...g, slotMs: g.slotMs + 1 }],
      ['epochLength', { ...g, epochLength: g.epochLength + 1 }],
      ['shardCount', { ...g, shardCount: 3 }],
      ['minFee', { ...g, minFee: g.minFee + 1n }],
      ['maxBlockTxs', { ...g, maxBlockTxs: g.maxBlockTxs + 1 }],
      ['xferTimeoutSlots', { ...g, xferTimeoutSlots: g.xferTimeoutSlots + 1 }],
      ['beacon key', { ...g, beacon: { ...g.beacon, publicKey: key(31).publicKey } }],
      ['beacon peer id', { ...g, beacon: { ...g.beacon, peerId: BEACON_PEER.slice(0, -1) + 'u' } }],
      ['account address', { ...g, accounts: [{ ...g.accounts[0]!, address: accAddr(7) }, ...g.accounts.slice(1)] }],
      ['account balance', { ...g, accounts: [{ ...g.accounts[0]!, balance: g.accounts[0]!.balance + 1n }, ...g.accounts.slice(1)] }],
      ['account removed', { ...g, accounts: g.accounts.slice(1) }],
      ['validator key', { ...g, validators: [{ ...v0, publicKey: key(23).publicKey }, ...g.validators.slice(1)] }],
      ['validator stake', { ...g, validators: [{ ...v0, stake: v0.stake + 1n }, ...g.validators.slice(1)] }],
      ['validator removed', { ...g, validators: g.validators.slice(1) }],
    ];
    const seen = new Set([h]);
    for (const [name, v] of variants) {
      const vh = toHex(genesisHash(v));
      assert.notEqual(vh, h, name);
      seen.add(vh);
    }
    assert.equal(seen.size, variants.length + 1, 'all variants distinct');
  });

  it('parses the beacon and xferTimeoutSlots', () => {
    const g = parseGenesis(validJson());
    assert.deepEqual(g.beacon, { publicKey: key(30).publicKey, peerId: BEACON_PEER });
    assert.equal(g.xferTimeoutSlots, 20);
    // other peer id shapes of base58btc libp2p ids
    for (const peerId of ['QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N', '16Uiu2HAmQFjzNDsaE86Mo6iGM4DE6zDs1oQ3bR6rNmoprV8zwwz4']) {
      const j = validJson();
      j.beacon.peerId = peerId;
      assert.equal(parseGenesis(j).beacon.peerId, peerId);
    }
  });

  it('rejects a missing or malformed beacon', () => {
    rejectsWith((j) => delete (j as Record<string, unknown>).beacon, /beacon must be an object/, 'missing beacon');
    rejectsWith((j) => ((j as Record<string, unknown>).beacon = null), /beacon must be an object/, 'null beacon');
    rejectsWith((j) => ((j as Record<string, unknown>).beacon = [j.beacon.publicKey, j.beacon.peerId]), /beacon must be an object/, 'array beacon');
    rejectsWith((j) => ((j as Record<string, unknown>).beacon = j.beacon.publicKey), /beacon must be an object/, 'string beacon');
    rejectsWith((j) => ((j.beacon as Record<string, unknown>).shard = 0), /unknown field beacon\.shard/, 'unknown beacon field');
    rejectsWith((j) => delete (j.beacon as Record<string, unknown>).publicKey, /beacon\.publicKey/, 'missing beacon key');
    rejectsWith((j) => (j.beacon.publicKey = j.beacon.publicKey.slice(2)), /beacon\.publicKey/, 'short beacon key');
    rejectsWith((j) => (j.beacon.publicKey += '00'), /beacon\.publicKey/, 'long beacon key');
    rejectsWith((j) => (j.beacon.publicKey = j.beacon.publicKey.toUpperCase()), /beacon\.publicKey/, 'uppercase beacon key');
    rejectsWith((j) => ((j.beacon as Record<string, unknown>).publicKey = 7), /beacon\.publicKey/, 'numeric beacon key');
  });

  it('rejects a beacon peer id that is not a base58 libp2p peer id', () => {
    const bad: unknown[] = [
      undefined,
      '',
      7,
      BEACON_PEER.slice(0, 45), // too short
      BEACON_PEER + 'A'.repeat(9), // 61 characters
      BEACON_PEER.slice(0, -1) + '0', // '0' is not base58
      BEACON_PEER.slice(0, -1) + 'O',
      BEACON_PEER.slice(0, -1) + 'I',
      BEACON_PEER.slice(0, -1) + 'l',
      BEACON_PEER.slice(0, -1) + '_',
      ` ${BEACON_PEER}`,
      `${BEACON_PEER}\n`,
      `/p2p/${BEACON_PEER}`,
    ];
    for (const v of bad) rejectsWith((j) => ((j.beacon as Record<string, unknown>).peerId = v), /peerId/, `peer id ${JSON.stringify(v)}`);
    // the boundaries of the accepted length are inclusive
    const ok = validJson();
    ok.beacon.peerId = BEACON_PEER.slice(0, 46);
    assert.equal(parseGenesis(ok).beacon.peerId.length, 46);
    ok.beacon.peerId = BEACON_PEER + 'A'.repeat(8);
    assert.equal(parseGenesis(ok).beacon.peerId.length, 60);
  });

  it('rejects a missing or out-of-range xferTimeoutSlots', () => {
    rejectsWith((j) => delete (j as Record<string, unknown>).xferTimeoutSlots, /xferTimeoutSlots/, 'missing');
    for (const v of [1, 0, -5, 2.5, '20', null, 1_000_001]) rejectsWith((j) => ((j as Record<string, unknown>).xferTimeoutSlots = v), /xferTimeoutSlots/, `xferTimeoutSlots ${String(v)}`);
    for (const v of [2, 1_000_000]) {
      const j = validJson();
      j.xferTimeoutSlots = v;
      assert.equal(parseGenesis(j).xferTimeoutSlots, v);
    }
  });

  it('rejects fewer validators than shards', () => {
    rejectsWith((j) => (j.shardCount = 3), /2 validators cannot fill 3 shard committees/, '2 validators, 3 shards');
    rejectsWith((j) => (j.validators = j.validators.slice(0, 1)), /1 validators cannot fill 2/, '1 validator, 2 shards');
    // exactly one validator per shard is enough
    const j = validJson();
    j.shardCount = 1;
    j.validators = j.validators.slice(0, 1);
    assert.equal(parseGenesis(j).validators.length, 1);
  });

  it("rejects the old per-validator 'shard' field as an unknown field", () => {
    rejectsWith((j) => ((j.validators[0] as Record<string, unknown>).shard = 0), /unknown field validators\[0\]\.shard/, 'shard on validator 0');
    rejectsWith((j) => ((j.validators[1] as Record<string, unknown>).shard = 1), /unknown field validators\[1\]\.shard/, 'shard on validator 1');
  });

  it('genesisSupply per shard adds up to the total', () => {
    const g = parseGenesis(validJson());
    const s0 = genesisSupply(g, 0);
    const s1 = genesisSupply(g, 1);
    assert.equal(s0 + s1, genesisSupply(g));
    // the fixture's balances are distinct, so each shard's supply is the sum of its home accounts
    let e0 = 0n;
    for (const a of g.accounts) if (homeShard(parseAddress(a.address), 2) === 0) e0 += a.balance;
    assert.equal(s0, e0);
    assert.equal(genesisSupply(g, 5), 0n);
  });

  it('slotAt and epochOf', () => {
    const g = { genesisTime: 1000, slotMs: 100, epochLength: 4 };
    assert.equal(slotAt(g, 999), -1);
    assert.equal(slotAt(g, 1000), 0);
    assert.equal(slotAt(g, 1099), 0);
    assert.equal(slotAt(g, 1100), 1);
    assert.equal(slotAt(g, 1000 + 100 * 37 + 5), 37);
    assert.equal(epochOf(g, 0), 0);
    assert.equal(epochOf(g, 3), 0);
    assert.equal(epochOf(g, 4), 1);
    assert.equal(epochOf(g, 37), 9);
  });
});
