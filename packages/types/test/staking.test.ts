// Staking objects of the types layer: the beacon's registry snapshots and their JSON, the staking error codes.
// (Stake and unstake messages and the validator's consent are the staking module's: packages/modules/staking/test.)
import assert from 'node:assert/strict';
import { addressFromPublicKey, formatAddress, getBackend, signingBytes } from '@qnexus/crypto';
import {
  CODEC_VERSION,
  ERROR_HTTP_STATUS,
  MAX_SIGNATURE_BYTES,
  QnexusError,
  VALIDATOR_STATUSES,
  Writer,
  decodeRegistrySnapshot,
  encodeRegistrySnapshot,
  encodeRegistrySnapshotBody,
  isErrorCode,
  registrySnapshotSigningBytes,
  stakingTotalsToJson,
  validatorInfoToJson,
  type RegistrySnapshot,
  type StakingTotals,
  type ValidatorInfo,
} from '@qnexus/types';
import { CHAIN, addr, key, throwsCode, withTrailing } from './helpers.js';

const b44 = getBackend('ml-dsa-44');
const U64_MAX = 2n ** 64n - 1n;

/** Every strict prefix of `b` must be rejected with `code` (all prefixes for short inputs, a sample for long ones). */
function rejectsTruncation(b: Uint8Array, decode: (x: Uint8Array) => unknown, code: 'MALFORMED' | 'TX_MALFORMED'): void {
  const step = b.length > 400 ? 37 : 1;
  const lengths = new Set<number>();
  for (let n = 0; n < b.length; n += step) lengths.add(n);
  for (let n = Math.max(0, b.length - 40); n < b.length; n++) lengths.add(n);
  for (const n of lengths) throwsCode(() => decode(b.slice(0, n)), code, `prefix ${n}/${b.length}`);
}

// ------------------------------------------------------------------ registry snapshots

function info(n: number, over: Partial<ValidatorInfo> = {}): ValidatorInfo {
  return {
    address: addr(n),
    home: addr(n + 100),
    stake: 1000n * BigInt(n),
    status: 'active',
    shard: n % 2,
    activationEpoch: 0,
    exitEpoch: null,
    withdrawableEpoch: null,
    rewards: 17n,
    slashed: 0n,
    lastEpoch: 4,
    last: { signed: 7, blocks: 8 },
    lifetime: { signed: 30, blocks: 32 },
    ...over,
  };
}

function totals(over: Partial<StakingTotals> = {}): StakingTotals {
  return { genesisStake: 300n, stakedIn: 5000n, feesIn: 12n, minted: 4000n, slashed: 100n, released: 1000n, held: 8212n, ...over };
}

function snapshot(over: Partial<RegistrySnapshot> = {}): RegistrySnapshot {
  return {
    chainId: CHAIN,
    slot: 170,
    epoch: 5,
    validators: [
      info(20),
      info(21, { status: 'pending', shard: null, activationEpoch: null, lastEpoch: null, last: { signed: 0, blocks: 0 }, lifetime: { signed: 0, blocks: 0 } }),
      info(22, { status: 'exiting', exitEpoch: 6, withdrawableEpoch: 8 }),
      info(23, { status: 'exited', exitEpoch: 5, withdrawableEpoch: 7 }),
      info(24, { status: 'slashed', slashed: 200n, exitEpoch: 6, withdrawableEpoch: 8 }),
      info(25, { status: 'withdrawn', stake: 0n, rewards: 0n, exitEpoch: 1, withdrawableEpoch: 3 }),
    ],
    totals: totals(),
    heads: [],
    peers: [],
    ...over,
  };
}

/** Byte offsets inside an encoded snapshot body with CHAIN as chain id. */
const VALIDATORS_OFF = 1 + 4 + CHAIN.length + 8 + 8 + 4;
/** address, home, stake, status, 4 optional epochs, rewards, slashed, last epoch, 4 participation counters. */
const VALIDATOR_BYTES = 20 + 20 + 8 + 1 + 4 * 8 + 8 + 8 + 8 + 4 * 8;
const STATUS_OFF = 20 + 20 + 8;

describe('types: registry snapshots', () => {
  it("round trip; signed by the beacon under the 'beacon' domain; byte-identical on re-encoding", () => {
    const body = snapshot();
    assert.deepEqual(
      body.validators.map((v) => v.status).sort(),
      [...VALIDATOR_STATUSES].sort(),
      'every status is covered',
    );
    assert.deepEqual(VALIDATOR_STATUSES, ['pending', 'active', 'exiting', 'exited', 'slashed', 'withdrawn']);
    assert.deepEqual(registrySnapshotSigningBytes(body), signingBytes(CHAIN, 'beacon', encodeRegistrySnapshotBody(body)));
    const signature = b44.sign(key(9).secretKey, registrySnapshotSigningBytes(body));
    const e = encodeRegistrySnapshot({ body, signature });
    const d = decodeRegistrySnapshot(e);
    assert.deepEqual(d, { body, signature });
    assert.deepEqual(encodeRegistrySnapshot(d), e);
    assert.ok(b44.verify(key(9).publicKey, registrySnapshotSigningBytes(d.body), d.signature));
    // … then the shard heads' and the peers' counts (none here; see snapshot-heads.test.ts, snapshot-peers.test.ts).
    assert.equal(encodeRegistrySnapshotBody(body).length, VALIDATORS_OFF + body.validators.length * VALIDATOR_BYTES + 7 * 8 + 4 + 4);
    // every field is signed
    const v0 = body.validators[0]!;
    const withV0 = (o: Partial<ValidatorInfo>) => snapshot({ validators: [{ ...v0, ...o }, ...body.validators.slice(1)] });
    const variants: RegistrySnapshot[] = [
      snapshot({ slot: 171 }),
      snapshot({ epoch: 6 }),
      snapshot({ validators: body.validators.slice(1) }),
      snapshot({ validators: [body.validators[1]!, body.validators[0]!, ...body.validators.slice(2)] }),
      withV0({ home: addr(99) }),
      withV0({ stake: v0.stake + 1n }),
      withV0({ status: 'exiting' }),
      withV0({ shard: 1 }),
      withV0({ shard: null }),
      withV0({ activationEpoch: 1 }),
      withV0({ activationEpoch: null }),
      withV0({ exitEpoch: 0 }),
      withV0({ withdrawableEpoch: 0 }),
      withV0({ rewards: 18n }),
      withV0({ slashed: 1n }),
      withV0({ lastEpoch: 3 }),
      withV0({ last: { signed: 6, blocks: 8 } }),
      withV0({ last: { signed: 7, blocks: 9 } }),
      withV0({ lifetime: { signed: 31, blocks: 32 } }),
      withV0({ lifetime: { signed: 30, blocks: 33 } }),
      ...(Object.keys(totals()) as (keyof StakingTotals)[]).map((k) => snapshot({ totals: totals({ [k]: totals()[k] + 1n }) })),
    ];
    variants.forEach((v, i) => assert.equal(b44.verify(key(9).publicKey, registrySnapshotSigningBytes(v), signature), false, `variant ${i}`));
    assert.equal(new Set(variants.map((v) => Buffer.from(encodeRegistrySnapshotBody(v)).toString('hex'))).size, variants.length, 'variants distinct');
    assert.equal(b44.verify(key(9).publicKey, signingBytes(CHAIN, 'tx', encodeRegistrySnapshotBody(body)), signature), false, 'tx domain');
  });

  it('nullable epochs and shard: null and 0 are distinct, and both survive the wire', () => {
    const nulls = info(30, { shard: null, activationEpoch: null, exitEpoch: null, withdrawableEpoch: null, lastEpoch: null });
    const zeros = info(30, { shard: 0, activationEpoch: 0, exitEpoch: 0, withdrawableEpoch: 0, lastEpoch: 0 });
    const maxes = info(30, {
      shard: 0xffff,
      activationEpoch: Number.MAX_SAFE_INTEGER - 1,
      exitEpoch: Number.MAX_SAFE_INTEGER - 1,
      withdrawableEpoch: Number.MAX_SAFE_INTEGER - 1,
      lastEpoch: Number.MAX_SAFE_INTEGER - 1,
    });
    const encs = new Set<string>();
    for (const v of [nulls, zeros, maxes]) {
      const s = { body: snapshot({ validators: [v] }), signature: new Uint8Array(0) };
      const e = encodeRegistrySnapshot(s);
      const d = decodeRegistrySnapshot(e);
      assert.deepEqual(d, s);
      assert.strictEqual(d.body.validators[0]!.shard, v.shard);
      assert.strictEqual(d.body.validators[0]!.lastEpoch, v.lastEpoch);
      encs.add(Buffer.from(e).toString('hex'));
    }
    assert.equal(encs.size, 3);
    // on the wire: 0 is null, n + 1 is n
    const body = encodeRegistrySnapshotBody(snapshot({ validators: [nulls] }));
    const shardOff = VALIDATORS_OFF + STATUS_OFF + 1;
    const dv = new DataView(body.buffer, body.byteOffset);
    assert.equal(dv.getBigUint64(shardOff), 0n);
    const zb = encodeRegistrySnapshotBody(snapshot({ validators: [zeros] }));
    assert.equal(new DataView(zb.buffer, zb.byteOffset).getBigUint64(shardOff), 1n);
    // an encoded value beyond a safe integer is malformed
    const hi = body.slice();
    new DataView(hi.buffer).setBigUint64(shardOff, 2n ** 53n);
    throwsCode(() => decodeRegistrySnapshot(new Writer().bytes(hi).bytes(new Uint8Array(0)).finish()), 'MALFORMED', 'shard beyond 2^53');
  });

  it('round trip with no validators and with extreme amounts', () => {
    for (const validators of [[], [info(40, { stake: U64_MAX, rewards: U64_MAX, slashed: U64_MAX, home: new Uint8Array(20).fill(0xff) })]]) {
      const t = totals({ genesisStake: U64_MAX, held: 0n, minted: U64_MAX });
      const s = { body: snapshot({ validators, totals: t, slot: Number.MAX_SAFE_INTEGER, epoch: 0 }), signature: new Uint8Array(4627).fill(1) };
      assert.deepEqual(decodeRegistrySnapshot(encodeRegistrySnapshot(s)), s);
    }
  });

  it('rejects trailing bytes (after the snapshot and inside the body), truncation, versions, bad status bytes and oversize counts with MALFORMED', () => {
    const s = { body: snapshot(), signature: new Uint8Array(50).fill(7) };
    const e = encodeRegistrySnapshot(s);
    throwsCode(() => decodeRegistrySnapshot(withTrailing(e)), 'MALFORMED', 'trailing after the signature');
    rejectsTruncation(e, decodeRegistrySnapshot, 'MALFORMED');
    const body = encodeRegistrySnapshotBody(s.body);
    const wrapS = (b: Uint8Array) => new Writer().bytes(b).bytes(s.signature).finish();
    assert.deepEqual(wrapS(body), e);
    throwsCode(() => decodeRegistrySnapshot(wrapS(withTrailing(body))), 'MALFORMED', 'trailing inside the body');
    throwsCode(() => decodeRegistrySnapshot(wrapS(withTrailing(body, [0, 0, 0, 0, 0, 0, 0, 0]))), 'MALFORMED', 'a u64 of trailing bytes inside the body');
    for (const v of [0, 2]) {
      const x = body.slice();
      x[0] = v;
      throwsCode(() => decodeRegistrySnapshot(wrapS(x)), 'MALFORMED', `version ${v}`);
    }
    // status bytes: 0..5 are the statuses, 6 and up are malformed
    for (let st = 0; st < VALIDATOR_STATUSES.length; st++) {
      const x = body.slice();
      x[VALIDATORS_OFF + STATUS_OFF] = st;
      assert.equal(decodeRegistrySnapshot(wrapS(x)).body.validators[0]!.status, VALIDATOR_STATUSES[st]);
    }
    for (const st of [6, 255]) {
      const x = body.slice();
      x[VALIDATORS_OFF + STATUS_OFF] = st;
      throwsCode(() => decodeRegistrySnapshot(wrapS(x)), 'MALFORMED', `status ${st}`);
    }
    // validator count above the bound, or beyond the input
    const headW = () => new Writer().u8(CODEC_VERSION).string(CHAIN).u64(1).u64(0);
    throwsCode(() => decodeRegistrySnapshot(wrapS(headW().u32(0xffffffff).finish())), 'MALFORMED', 'huge validator count');
    throwsCode(() => decodeRegistrySnapshot(wrapS(headW().u32(2).finish())), 'MALFORMED', 'count beyond input');
    // an invalid chain id string, oversize signature, oversize body slot
    throwsCode(() => decodeRegistrySnapshot(wrapS(new Writer().u8(CODEC_VERSION).bytes(new Uint8Array([0xff])).finish())), 'MALFORMED', 'bad utf-8 chain id');
    throwsCode(() => decodeRegistrySnapshot(new Writer().bytes(body).u32(MAX_SIGNATURE_BYTES + 1).finish()), 'MALFORMED', 'oversize signature');
    throwsCode(() => decodeRegistrySnapshot(new Writer().u32(0xffffffff).finish()), 'MALFORMED', 'oversize body');
    throwsCode(() => decodeRegistrySnapshot(new Uint8Array(0)), 'MALFORMED', 'empty');
  });

  it('the encoder refuses an unknown status', () => {
    assert.throws(() => encodeRegistrySnapshotBody(snapshot({ validators: [info(1, { status: 'retired' as ValidatorInfo['status'] })] })), RangeError);
  });

  it('validatorInfoToJson and stakingTotalsToJson: addresses as qn… strings, amounts as decimal strings, participation rates', () => {
    const v = info(20);
    assert.deepEqual(validatorInfoToJson(v), {
      address: formatAddress(addr(20)),
      home: formatAddress(addr(120)),
      stake: '20000',
      status: 'active',
      shard: 0,
      activationEpoch: 0,
      exitEpoch: null,
      withdrawableEpoch: null,
      rewards: '17',
      slashed: '0',
      participation: { epoch: 4, signed: 7, blocks: 8, rate: 7 / 8 },
      lifetime: { signed: 30, blocks: 32, rate: 30 / 32 },
    });
    // no blocks: the rate is null (not NaN); nulls pass through; u64 amounts are exact
    const p = info(21, { stake: U64_MAX, shard: null, lastEpoch: null, last: { signed: 0, blocks: 0 }, lifetime: { signed: 0, blocks: 0 }, exitEpoch: 9, withdrawableEpoch: 11 });
    const j = validatorInfoToJson(p);
    assert.equal(j.stake, '18446744073709551615');
    assert.equal(j.shard, null);
    assert.deepEqual(j.participation, { epoch: null, signed: 0, blocks: 0, rate: null });
    assert.deepEqual(j.lifetime, { signed: 0, blocks: 0, rate: null });
    assert.equal(j.exitEpoch, 9);
    assert.equal(j.withdrawableEpoch, 11);
    // JSON-serialisable as is
    assert.deepEqual(JSON.parse(JSON.stringify(j)), j);
    assert.deepEqual(stakingTotalsToJson(totals({ minted: U64_MAX })), {
      genesisStake: '300',
      stakedIn: '5000',
      feesIn: '12',
      minted: '18446744073709551615',
      slashed: '100',
      released: '1000',
      held: '8212',
    });
    // the validator address is derived from its key
    assert.equal(validatorInfoToJson(v).address, formatAddress(addressFromPublicKey(key(20).publicKey)));
  });
});

// ------------------------------------------------------------------ error codes

describe('types: staking error codes', () => {
  it('the new codes exist with their HTTP statuses', () => {
    const expected = {
      STAKE_BAD_CONSENT: 400,
      STAKE_TOO_LOW: 400,
      STAKE_NOT_OWNER: 403,
      STAKE_BAD_STATUS: 409,
      VALIDATOR_UNKNOWN: 404,
      EVIDENCE_INVALID: 400,
      EVIDENCE_EXPIRED: 409,
      EPOCH_UNKNOWN: 503,
    } as const;
    for (const [code, status] of Object.entries(expected)) {
      assert.ok(isErrorCode(code), code);
      assert.equal(ERROR_HTTP_STATUS[code as keyof typeof expected], status, code);
      const e = new QnexusError(code as keyof typeof expected, 'm');
      assert.equal(e.httpStatus, status);
      assert.deepEqual(e.toJSON(), { error: { code, message: 'm' } });
    }
  });
});
