// The staking module's messages: stake and unstake encodings (client side and the module's decoder, run by the
// host), the validator's consent (its signing bytes, bound to the chain and the funder, and the signature check the
// module hands the host). The module's effects (records to the beacon, fees, releases) are tested through the app
// in app.test.ts.
import assert from 'node:assert/strict';
import { formatAddress, getBackend, signingBytes, utf8 } from '@qnexus/crypto';
import {
  CODEC_VERSION,
  MAX_PUBLIC_KEY_BYTES,
  MAX_SIGNATURE_BYTES,
  MAX_TX_BYTES,
  Writer,
  encodeTx,
  encodeTxBody,
  openTx,
  txSigningBytes,
  type TxBody,
  type TxMsg,
} from '@qnexus/types';
import { StateMachine } from '@qnexus/state';
import { STAKING_ID, STAKING_KIND, STAKING_MSG, stakeConsentSigningBytes, stakeMsg, stakingModule, unstakeMsg, type StakeMsg } from '@qnexus/module-staking';
// The types tests' fixtures: deterministic ML-DSA-44 keys, the chain id, signing and the typed-error assertion.
import { CHAIN, addr, key, signTx, throwsCode, withTrailing } from '../../../types/test/helpers.js';

const b44 = getBackend('ml-dsa-44');
const U64_MAX = 2n ** 64n - 1n;

/** The host with this module only (bank and xfer are the host's built-ins): the module as any app would run it. */
const host = new StateMachine((k) => [stakingModule(k)]);

const consents = new Map<string, Uint8Array>();
/** Validator key 3's real consent to be staked by `funder` (key 1 by default), one per (chain, funder): ML-DSA signing is hedged. */
function consent(chainId = CHAIN, funder = addr(1)): Uint8Array {
  const k = `${chainId}/${formatAddress(funder)}`;
  let sig = consents.get(k);
  if (!sig) {
    sig = b44.sign(key(3).secretKey, stakeConsentSigningBytes(chainId, funder, key(3).publicKey));
    consents.set(k, sig);
  }
  return sig;
}

function stake(amount = 5000n, over: Partial<StakeMsg> = {}): StakeMsg {
  return { validatorPublicKey: key(3).publicKey, amount, validatorSignature: consent(), ...over };
}

function body(payload: TxMsg, over: Partial<TxBody> = {}): TxBody {
  return { chainId: CHAIN, nonce: 7n, fee: 10n, publicKey: key(1).publicKey, payload, ...over };
}

const stakeBody = (over: Partial<TxBody> = {}, amount = 5000n) => body(stakeMsg(stake(amount)), over);
const unstakeBody = (over: Partial<TxBody> = {}) => body(unstakeMsg({ validator: addr(3) }), { nonce: 8n, ...over });

/** The host's decoding of a message carried in a transaction (with a dummy signature): what admission and blocks run. */
function decodeMsg(m: TxMsg): unknown {
  return host.decode(openTx(encodeTx({ body: body(m), signature: new Uint8Array(2420) }))).p;
}

/** The module's own encoder for a message (what the host's codec round-trips), to hold the client side to it. */
function moduleEncode(kind: number, p: unknown): Uint8Array {
  const w = new Writer();
  host.msgDef(kind)!.def.encode(w, p);
  return w.finish();
}

describe('staking module: message kinds', () => {
  it('stake and unstake are module 3, types 1 and 2; the host names them', () => {
    assert.equal(STAKING_ID, 3);
    assert.deepEqual(STAKING_MSG, { stake: 1, unstake: 2 });
    assert.deepEqual(STAKING_KIND, { stake: 0x0301, unstake: 0x0302 });
    const mine = host.messages().filter((m) => m.module === 'staking');
    assert.deepEqual(mine, [
      { module: 'staking', name: 'stake', kind: 0x0301 },
      { module: 'staking', name: 'unstake', kind: 0x0302 },
    ]);
    assert.equal(host.kindName(openTx(encodeTx(signTx(stakeBody())))), 'stake');
    assert.equal(host.kindName(openTx(encodeTx(signTx(unstakeBody())))), 'unstake');
  });
});

describe('staking module: the validator consent', () => {
  it("stakeConsentSigningBytes: domain 'stake', version, funder address, u32-prefixed validator key", () => {
    const sb = stakeConsentSigningBytes(CHAIN, addr(1), key(3).publicKey);
    assert.deepEqual(sb, signingBytes(CHAIN, 'stake', new Writer().u8(CODEC_VERSION).fixed(addr(1), 20).bytes(key(3).publicKey).finish()));
    const tag = utf8(`qnexus/${CHAIN}/stake`);
    assert.deepEqual(sb.subarray(2, 2 + tag.length), tag);
    // a funder that is not 20 bytes is refused by the encoder
    assert.throws(() => stakeConsentSigningBytes(CHAIN, new Uint8Array(19), key(3).publicKey), RangeError);
  });

  it('the consent binds the chain, the funder and the validator key, and no other domain', () => {
    const sig = consent();
    assert.ok(b44.verify(key(3).publicKey, stakeConsentSigningBytes(CHAIN, addr(1), key(3).publicKey), sig));
    assert.equal(b44.verify(key(3).publicKey, stakeConsentSigningBytes('qn-other', addr(1), key(3).publicKey), sig), false, 'other chain');
    assert.equal(b44.verify(key(3).publicKey, stakeConsentSigningBytes(CHAIN, addr(2), key(3).publicKey), sig), false, 'other funder');
    assert.equal(b44.verify(key(4).publicKey, stakeConsentSigningBytes(CHAIN, addr(1), key(4).publicKey), sig), false, 'other validator key');
    const bytes = new Writer().u8(CODEC_VERSION).fixed(addr(1), 20).bytes(key(3).publicKey).finish();
    for (const kind of ['tx', 'beacon', 'binding', 'vote'] as const) {
      assert.equal(b44.verify(key(3).publicKey, signingBytes(CHAIN, kind, bytes), sig), false, `${kind} domain`);
    }
  });

  it("the module hands the host one 'stake-consent' check over the transaction's own chain and sender; it fails for another funder or chain", () => {
    const check = (b: TxBody, signer = key(1)) => {
      const env = openTx(encodeTx(signTx(b, signer)));
      const checks = host.signatures(env);
      assert.equal(checks.length, 1);
      const c = checks[0]!;
      assert.equal(c.label, 'stake-consent');
      assert.equal(c.code, 'STAKE_BAD_CONSENT');
      assert.deepEqual(c.publicKey, key(3).publicKey);
      assert.deepEqual(c.message, stakeConsentSigningBytes(b.chainId, env.from, key(3).publicKey));
      return b44.verify(c.publicKey, c.message, c.signature);
    };
    assert.equal(check(stakeBody()), true, 'funded by the key the validator consented to');
    // the same consent in a transaction signed by another account: bound to the funder, so it fails
    assert.equal(check(stakeBody({ publicKey: key(2).publicKey }), key(2)), false, 'another funder');
    // …and replayed on another chain
    assert.equal(check(stakeBody({ chainId: 'qn-other' })), false, 'another chain');
    // a consent for that other chain and funder passes there
    assert.equal(check(body(stakeMsg(stake(5000n, { validatorSignature: consent('qn-other', addr(2)) })), { chainId: 'qn-other', publicKey: key(2).publicKey }), key(2)), true);
    // a forged consent (not the validator's signature) fails
    assert.equal(check(body(stakeMsg(stake(5000n, { validatorSignature: new Uint8Array(2420).fill(7) })))), false, 'forged');
    // unstake carries no extra signature
    assert.deepEqual(host.signatures(openTx(encodeTx(signTx(unstakeBody())))), []);
  });
});

describe('staking module: stake and unstake messages', () => {
  it('stake round trip through encodeTx/openTx and the host decoder, byte-identical; signed over the tx domain; the consent verifies after decoding', () => {
    const b = stakeBody();
    const tx = signTx(b);
    const raw = encodeTx(tx);
    const env = openTx(raw);
    assert.deepEqual(env.tx, tx);
    assert.deepEqual(encodeTx(env.tx), raw);
    assert.equal(env.tx.body.payload.kind, STAKING_KIND.stake);
    assert.deepEqual(env.signBytes, signingBytes(CHAIN, 'tx', encodeTxBody(b)));
    assert.deepEqual(env.signBytes, txSigningBytes(b));
    assert.ok(b44.verify(key(1).publicKey, env.signBytes, env.tx.signature));
    const p = host.decode(env).p as StakeMsg;
    assert.deepEqual(p, stake());
    assert.ok(b44.verify(p.validatorPublicKey, stakeConsentSigningBytes(env.tx.body.chainId, env.from, p.validatorPublicKey), p.validatorSignature));
    // layout: u32-prefixed validator key, u64 amount, u32-prefixed consent signature
    assert.deepEqual(b.payload.msg, new Writer().bytes(key(3).publicKey).u64(5000n).bytes(p.validatorSignature).finish());
    // the client side writes exactly what the module's codec does
    assert.deepEqual(b.payload.msg, moduleEncode(STAKING_KIND.stake, p));
  });

  it('unstake round trip, byte-identical; layout is the validator address; the generic client builds the same message', () => {
    const b = unstakeBody();
    const tx = signTx(b);
    const raw = encodeTx(tx);
    const env = openTx(raw);
    assert.deepEqual(env.tx, tx);
    assert.deepEqual(encodeTx(env.tx), raw);
    assert.deepEqual(env.signBytes, signingBytes(CHAIN, 'tx', encodeTxBody(b)));
    assert.ok(b44.verify(key(1).publicKey, env.signBytes, env.tx.signature));
    assert.deepEqual(b.payload, { kind: STAKING_KIND.unstake, msg: addr(3) });
    assert.deepEqual(host.decode(env).p, { validator: addr(3) });
    assert.deepEqual(b.payload.msg, moduleEncode(STAKING_KIND.unstake, { validator: addr(3) }));
    // signed by the validator key itself
    const self = signTx(unstakeBody({ publicKey: key(3).publicKey }), key(3));
    const es = openTx(encodeTx(self));
    assert.deepEqual(es.tx, self);
    assert.equal(es.fromStr, formatAddress(addr(3)));
    // the encoder refuses an address that is not 20 bytes
    assert.throws(() => unstakeMsg({ validator: new Uint8Array(19) }), RangeError);
    // the generic client (`qnexus tx staking unstake --validator qn…`)
    assert.deepEqual(host.buildMsg('staking', 'unstake', { validator: formatAddress(addr(3)) }), b.payload);
    throwsCode(() => host.buildMsg('staking', 'unstake', { validator: 'qn123' }), 'TX_MALFORMED', 'bad address');
    throwsCode(() => host.buildMsg('staking', 'unstake', {}), 'TX_MALFORMED', 'no address');
    // stake needs the validator key's signature: no generic client
    throwsCode(() => host.buildMsg('staking', 'stake', {}), 'TX_UNKNOWN_KIND');
  });

  it('extreme values: amount 0 and u64 max; an ML-DSA-87 stake (two keys, two signatures) fits MAX_TX_BYTES', () => {
    for (const amount of [0n, 1n, U64_MAX]) {
      const tx = { body: stakeBody({ nonce: U64_MAX }, amount), signature: new Uint8Array(0) };
      const env = openTx(encodeTx(tx));
      assert.deepEqual(env.tx, tx, `amount ${amount}`);
      assert.equal((host.decode(env).p as StakeMsg).amount, amount);
    }
    const validator = { validatorPublicKey: new Uint8Array(MAX_PUBLIC_KEY_BYTES).fill(2), amount: U64_MAX, validatorSignature: new Uint8Array(MAX_SIGNATURE_BYTES).fill(3) };
    const big: TxBody = { chainId: 'c'.repeat(64), nonce: U64_MAX, fee: U64_MAX, publicKey: new Uint8Array(MAX_PUBLIC_KEY_BYTES).fill(1), payload: stakeMsg(validator) };
    const tx = { body: big, signature: new Uint8Array(MAX_SIGNATURE_BYTES).fill(4) };
    const raw = encodeTx(tx);
    assert.ok(raw.length <= MAX_TX_BYTES, `${raw.length} bytes`);
    assert.ok(raw.length > 8192, 'would not have fitted the old 8192-byte limit');
    const env = openTx(raw);
    assert.deepEqual(env.tx, tx);
    assert.deepEqual(host.decode(env).p, validator);
    // an unstake of ML-DSA-87 size too
    const ux = { body: { ...big, payload: unstakeMsg({ validator: new Uint8Array(20).fill(0xff) }) }, signature: new Uint8Array(MAX_SIGNATURE_BYTES) };
    assert.deepEqual(openTx(encodeTx(ux)).tx, ux);
  });

  it('every message field is part of the id', () => {
    const sig = new Uint8Array(2420);
    const id = (b: TxBody) => openTx(encodeTx({ body: b, signature: sig })).hashHex;
    const s = stake();
    const bodies: TxBody[] = [
      stakeBody(),
      stakeBody({}, 5001n),
      body(stakeMsg({ ...s, validatorPublicKey: key(4).publicKey })),
      body(stakeMsg({ ...s, validatorSignature: new Uint8Array(s.validatorSignature).fill(0) })),
      unstakeBody(),
      unstakeBody({ payload: unstakeMsg({ validator: addr(4) }) }),
      unstakeBody({ nonce: 9n }),
    ];
    assert.equal(new Set(bodies.map(id)).size, bodies.length);
  });

  it('truncated stake and unstake messages are TX_MALFORMED', () => {
    for (const m of [stakeMsg(stake()), unstakeMsg({ validator: addr(3) })]) {
      const name = m.kind === STAKING_KIND.stake ? 'stake' : 'unstake';
      assert.doesNotThrow(() => decodeMsg(m), name);
      // every prefix of the message (a sample for the long stake one), and each of the last 40
      const step = name === 'stake' ? 7 : 1;
      for (let n = 0; n < m.msg.length; n += step) throwsCode(() => decodeMsg({ kind: m.kind, msg: m.msg.slice(0, n) }), 'TX_MALFORMED', `${name} message prefix ${n}`);
      for (let n = Math.max(0, m.msg.length - 40); n < m.msg.length; n++) throwsCode(() => decodeMsg({ kind: m.kind, msg: m.msg.slice(0, n) }), 'TX_MALFORMED', `${name} message prefix ${n}`);
    }
  });

  it('bad stake and unstake messages are TX_MALFORMED: trailing bytes, oversize key or signature, length prefixes beyond the input, the other kind', () => {
    for (const m of [stakeMsg(stake()), unstakeMsg({ validator: addr(3) })]) {
      throwsCode(() => decodeMsg({ kind: m.kind, msg: withTrailing(m.msg) }), 'TX_MALFORMED', `${m.kind} trailing`);
    }
    const s = (msg: Uint8Array): TxMsg => ({ kind: STAKING_KIND.stake, msg });
    assert.doesNotThrow(() => decodeMsg(s(new Writer().bytes(key(3).publicKey).u64(5000n).bytes(new Uint8Array(10)).finish())));
    // validator key longer than MAX_PUBLIC_KEY_BYTES
    throwsCode(() => decodeMsg(s(new Writer().bytes(new Uint8Array(MAX_PUBLIC_KEY_BYTES + 1)).u64(5000n).bytes(new Uint8Array(10)).finish())), 'TX_MALFORMED', 'oversize validator key');
    // consent signature longer than MAX_SIGNATURE_BYTES
    throwsCode(() => decodeMsg(s(new Writer().bytes(key(3).publicKey).u64(5000n).bytes(new Uint8Array(MAX_SIGNATURE_BYTES + 1)).finish())), 'TX_MALFORMED', 'oversize consent signature');
    // length prefixes beyond the input
    throwsCode(() => decodeMsg(s(new Writer().u32(1312).fixed(new Uint8Array(100), 100).finish())), 'TX_MALFORMED', 'key length beyond input');
    throwsCode(() => decodeMsg(s(new Writer().bytes(key(3).publicKey).u64(5000n).u32(2420).fixed(new Uint8Array(10), 10).finish())), 'TX_MALFORMED', 'signature length beyond input');
    // missing consent signature entirely, or amount cut short
    throwsCode(() => decodeMsg(s(new Writer().bytes(key(3).publicKey).u64(5000n).finish())), 'TX_MALFORMED', 'no consent signature');
    throwsCode(() => decodeMsg(s(new Writer().bytes(key(3).publicKey).u32(0).finish())), 'TX_MALFORMED', 'short amount');
    // unstake: the address is exactly 20 bytes
    const u = (msg: Uint8Array): TxMsg => ({ kind: STAKING_KIND.unstake, msg });
    assert.doesNotThrow(() => decodeMsg(u(addr(3))));
    throwsCode(() => decodeMsg(u(new Uint8Array(19))), 'TX_MALFORMED', '19-byte validator');
    throwsCode(() => decodeMsg(u(new Uint8Array(21))), 'TX_MALFORMED', '21-byte validator');
    throwsCode(() => decodeMsg(u(new Uint8Array(0))), 'TX_MALFORMED', 'no validator');
    // an unstake message under the stake kind, and a stake message under the unstake kind
    throwsCode(() => decodeMsg(s(unstakeMsg({ validator: addr(3) }).msg)), 'TX_MALFORMED', 'unstake message as stake');
    throwsCode(() => decodeMsg(u(stakeMsg(stake()).msg)), 'TX_MALFORMED', 'stake message as unstake');
    // a type the module does not define is the host's TX_UNKNOWN_KIND
    throwsCode(() => decodeMsg({ kind: (STAKING_ID << 8) | 3, msg: addr(3) }), 'TX_UNKNOWN_KIND', 'type 3');
  });
});
