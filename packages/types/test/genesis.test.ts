import assert from 'node:assert/strict';
import { addressFromPublicKey, formatAddress, generateKeyPair, homeShard, parseAddress, sha256, toHex, utf8 } from '@qnexus/crypto';
import {
  DEFAULT_STAKING,
  encodeGenesis,
  epochIssuance,
  epochOf,
  genesisHash,
  genesisStake,
  genesisSupply,
  genesisToJson,
  makeGenesis,
  parseGenesis,
  QnexusError,
  slotAt,
  type Genesis,
  type GenesisJson,
  type GenesisStakingJson,
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

/** DEFAULT_STAKING as genesisToJson writes it (amounts as decimal strings). */
const DEFAULT_STAKING_JSON: GenesisStakingJson = {
  minStake: '1000',
  unbondingEpochs: 2,
  churnLimit: 4,
  slashBps: 1000,
  feeBurnBps: 5000,
  rewardPerEpoch: '1000',
  halvingEpochs: 100,
};

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
    // JSON round trip (the optional staking object is always written out, with the defaults here)
    assert.deepEqual(genesisToJson(g), { ...validJson(), staking: DEFAULT_STAKING_JSON });
    assert.deepEqual(parseGenesis(clone(genesisToJson(g))), g);
    assert.deepEqual(genesisToJson(parseGenesis(clone(genesisToJson(g)))), genesisToJson(g));
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
      ['staking.minStake', { ...g, staking: { ...g.staking, minStake: g.staking.minStake + 1n } }],
      ['staking.unbondingEpochs', { ...g, staking: { ...g.staking, unbondingEpochs: g.staking.unbondingEpochs + 1 } }],
      ['staking.churnLimit', { ...g, staking: { ...g.staking, churnLimit: g.staking.churnLimit + 1 } }],
      ['staking.slashBps', { ...g, staking: { ...g.staking, slashBps: g.staking.slashBps + 1 } }],
      ['staking.feeBurnBps', { ...g, staking: { ...g.staking, feeBurnBps: g.staking.feeBurnBps + 1 } }],
      ['staking.rewardPerEpoch', { ...g, staking: { ...g.staking, rewardPerEpoch: g.staking.rewardPerEpoch + 1n } }],
      ['staking.halvingEpochs', { ...g, staking: { ...g.staking, halvingEpochs: g.staking.halvingEpochs + 1 } }],
    ];
    const seen = new Set([h]);
    for (const [name, v] of variants) {
      const vh = toHex(genesisHash(v));
      assert.notEqual(vh, h, name);
      seen.add(vh);
    }
    assert.equal(seen.size, variants.length + 1, 'all variants distinct');
  });

  it('staking: absent means DEFAULT_STAKING; always written by genesisToJson; explicit and partial objects', () => {
    assert.deepEqual(DEFAULT_STAKING, {
      minStake: 1000n,
      unbondingEpochs: 2,
      churnLimit: 4,
      slashBps: 1000,
      feeBurnBps: 5000,
      rewardPerEpoch: 1000n,
      halvingEpochs: 100,
    });
    const g = parseGenesis(validJson());
    assert.deepEqual(g.staking, DEFAULT_STAKING);
    assert.deepEqual(genesisToJson(g).staking, DEFAULT_STAKING_JSON);
    // an explicit object with the default values is the same genesis (same hash) as none
    const same = validJson();
    same.staking = { ...DEFAULT_STAKING_JSON };
    assert.deepEqual(parseGenesis(same), g);
    assert.equal(toHex(genesisHash(parseGenesis(same))), toHex(genesisHash(g)));
    // an empty object is all defaults
    const empty = validJson() as GenesisJson & Record<string, unknown>;
    empty.staking = {} as GenesisStakingJson;
    assert.deepEqual(parseGenesis(empty).staking, DEFAULT_STAKING);
    // explicit values, including the extremes each field accepts
    const explicit: GenesisStakingJson = {
      minStake: '18446744073709551615',
      unbondingEpochs: 0,
      churnLimit: 1,
      slashBps: 10_000,
      feeBurnBps: 0,
      rewardPerEpoch: '0',
      halvingEpochs: 0,
    };
    const j = validJson();
    j.staking = explicit;
    const ge = parseGenesis(j);
    assert.deepEqual(ge.staking, { minStake: 2n ** 64n - 1n, unbondingEpochs: 0, churnLimit: 1, slashBps: 10_000, feeBurnBps: 0, rewardPerEpoch: 0n, halvingEpochs: 0 });
    assert.deepEqual(genesisToJson(ge).staking, explicit);
    assert.deepEqual(parseGenesis(clone(genesisToJson(ge))), ge);
    const hi = validJson();
    hi.staking = { minStake: '1', unbondingEpochs: 1_000_000, churnLimit: 1024, slashBps: 0, feeBurnBps: 10_000, rewardPerEpoch: '5', halvingEpochs: 1_000_000 };
    assert.deepEqual(parseGenesis(hi).staking, { minStake: 1n, unbondingEpochs: 1_000_000, churnLimit: 1024, slashBps: 0, feeBurnBps: 10_000, rewardPerEpoch: 5n, halvingEpochs: 1_000_000 });
    // a partial object: given fields are taken, the rest default
    const part = validJson() as GenesisJson & Record<string, unknown>;
    part.staking = { slashBps: 2500, rewardPerEpoch: '77' } as unknown as GenesisStakingJson;
    assert.deepEqual(parseGenesis(part).staking, { ...DEFAULT_STAKING, slashBps: 2500, rewardPerEpoch: 77n });
  });

  it('staking: bad values are BAD_GENESIS naming the field', () => {
    const st = (j: GenesisJson & Record<string, unknown>) => {
      j.staking = { ...DEFAULT_STAKING_JSON };
      return j.staking as unknown as Record<string, unknown>;
    };
    rejectsWith((j) => (st(j).extra = 1), /unknown field staking\.extra/, 'unknown staking field');
    rejectsWith((j) => (st(j).shard = 0), /unknown field staking\.shard/, 'unknown staking field shard');
    rejectsWith((j) => (st(j).slashBps = 10_001), /staking\.slashBps/, 'slashBps > 10000');
    rejectsWith((j) => (st(j).feeBurnBps = 10_001), /staking\.feeBurnBps/, 'feeBurnBps > 10000');
    rejectsWith((j) => (st(j).minStake = '0'), /staking\.minStake must be positive/, 'minStake 0');
    rejectsWith((j) => (st(j).churnLimit = 0), /staking\.churnLimit/, 'churnLimit 0');
    rejectsWith((j) => (st(j).churnLimit = 1025), /staking\.churnLimit/, 'churnLimit 1025');
    rejectsWith((j) => (st(j).unbondingEpochs = 1_000_001), /staking\.unbondingEpochs/, 'unbondingEpochs too large');
    rejectsWith((j) => (st(j).halvingEpochs = 1_000_001), /staking\.halvingEpochs/, 'halvingEpochs too large');
    for (const f of ['unbondingEpochs', 'churnLimit', 'slashBps', 'feeBurnBps', 'halvingEpochs']) {
      for (const v of [-1, 1.5, '2', null]) rejectsWith((j) => (st(j)[f] = v), new RegExp(`staking\\.${f}`), `${f} ${JSON.stringify(v)}`);
    }
    for (const f of ['minStake', 'rewardPerEpoch']) {
      for (const v of [-1, 1000, '-1', '01', '1.5', '18446744073709551616', null]) rejectsWith((j) => (st(j)[f] = v), new RegExp(`staking\\.${f}`), `${f} ${JSON.stringify(v)}`);
    }
    for (const v of [null, 1, 'x', [], [DEFAULT_STAKING_JSON]]) rejectsWith((j) => ((j as Record<string, unknown>).staking = v), /staking must be an object/, `staking ${JSON.stringify(v)}`);
  });

  it('staking changes the genesis hash', () => {
    const g = parseGenesis(validJson());
    const h = toHex(genesisHash(g));
    const j = validJson();
    j.staking = { ...DEFAULT_STAKING_JSON, slashBps: 2000 };
    const g2 = parseGenesis(j);
    assert.notEqual(toHex(genesisHash(g2)), h);
    assert.notDeepEqual(encodeGenesis(g2), encodeGenesis(g));
    // every staking field is in the encoding (one at a time, all distinct)
    const seen = new Set([h]);
    for (const [f, v] of Object.entries({ minStake: '1001', unbondingEpochs: 3, churnLimit: 5, slashBps: 1001, feeBurnBps: 5001, rewardPerEpoch: '1001', halvingEpochs: 101 })) {
      const jj = validJson() as GenesisJson & Record<string, unknown>;
      jj.staking = { ...DEFAULT_STAKING_JSON, [f]: v };
      seen.add(toHex(genesisHash(parseGenesis(jj))));
    }
    assert.equal(seen.size, 8, 'each staking field changes the hash');
  });

  it('makeGenesis takes an optional partial staking over the defaults', () => {
    const g0 = parseGenesis(validJson());
    const { staking: _omit, ...rest } = g0;
    void _omit;
    assert.deepEqual(makeGenesis(rest).staking, DEFAULT_STAKING);
    assert.deepEqual(makeGenesis(rest), g0);
    const g = makeGenesis({ ...rest, staking: { minStake: 5n, halvingEpochs: 0 } });
    assert.deepEqual(g.staking, { ...DEFAULT_STAKING, minStake: 5n, halvingEpochs: 0 });
    assert.notEqual(toHex(genesisHash(g)), toHex(genesisHash(g0)));
    // DEFAULT_STAKING itself is not modified by a partial override
    assert.equal(DEFAULT_STAKING.minStake, 1000n);
    // bad staking values fail at makeGenesis
    throwsCode(() => makeGenesis({ ...rest, staking: { minStake: 0n } }), 'BAD_GENESIS', 'minStake 0');
    throwsCode(() => makeGenesis({ ...rest, staking: { slashBps: 10_001 } }), 'BAD_GENESIS', 'slashBps 10001');
    throwsCode(() => makeGenesis({ ...rest, staking: { churnLimit: 0 } }), 'BAD_GENESIS', 'churnLimit 0');
  });

  it('genesisStake sums the genesis validators\' stakes', () => {
    const g = parseGenesis(validJson());
    assert.equal(genesisStake(g), 300n);
    assert.equal(genesisStake({ ...g, validators: g.validators.slice(1) }), g.validators[1]!.stake);
    assert.equal(genesisStake({ ...g, validators: [] }), 0n);
  });

  it('epochIssuance halves every halvingEpochs epochs', () => {
    const s = { rewardPerEpoch: 1000n, halvingEpochs: 10 };
    assert.equal(epochIssuance(s, 0), 1000n);
    assert.equal(epochIssuance(s, 9), 1000n);
    assert.equal(epochIssuance(s, 10), 500n);
    assert.equal(epochIssuance(s, 19), 500n);
    assert.equal(epochIssuance(s, 20), 250n);
    assert.equal(epochIssuance(s, 30), 125n);
    assert.equal(epochIssuance(s, 40), 62n, 'floor');
    assert.equal(epochIssuance(s, 99), 1n);
    assert.equal(epochIssuance(s, 100), 0n);
    // halvingEpochs 0: never halves
    assert.equal(epochIssuance({ rewardPerEpoch: 1000n, halvingEpochs: 0 }, 0), 1000n);
    assert.equal(epochIssuance({ rewardPerEpoch: 1000n, halvingEpochs: 0 }, 1_000_000_000), 1000n);
    // 64 or more halvings is 0 even for the largest reward (no shift by >= 64)
    const max = { rewardPerEpoch: 2n ** 64n - 1n, halvingEpochs: 1 };
    assert.equal(epochIssuance(max, 63), 1n);
    assert.equal(epochIssuance(max, 64), 0n);
    assert.equal(epochIssuance(max, 65), 0n);
    assert.equal(epochIssuance(max, Number.MAX_SAFE_INTEGER), 0n);
    assert.equal(epochIssuance({ rewardPerEpoch: 2n ** 64n - 1n, halvingEpochs: 3 }, 3 * 64 - 1), 1n);
    assert.equal(epochIssuance({ rewardPerEpoch: 2n ** 64n - 1n, halvingEpochs: 3 }, 3 * 64), 0n);
    // the defaults: 1000 per epoch, halving every 100 epochs
    assert.equal(epochIssuance(DEFAULT_STAKING, 99), 1000n);
    assert.equal(epochIssuance(DEFAULT_STAKING, 100), 500n);
    // monotone non-increasing
    let prev = epochIssuance(s, 0);
    for (let e = 1; e < 200; e++) {
      const cur = epochIssuance(s, e);
      assert.ok(cur <= prev, `epoch ${e}`);
      prev = cur;
    }
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
