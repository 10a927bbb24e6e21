import { sendMsg } from '@qnexus/state';
// Chain: certificate verification, block validation and commit against a real LevelDB.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressFromPublicKey, formatAddress, generateKeyPair, getBackend, toHex, type KeyPair } from '@qnexus/crypto';
import {
  QnexusError,
  blockHash,
  certificateVoteBody,
  encodeTx,
  openTx,
  txRoot,
  txSigningBytes,
  voteSigningBytes,
  type Certificate,
  type Genesis,
} from '@qnexus/types';
import { ChainStore } from '@qnexus/db';
import { Chain, candidateFromEnvs, type Candidate } from '../src/chain.js';
import { Logger } from '@qnexus/runtime';
import { Mempool } from '../src/mempool.js';
import { createMetrics } from '../src/metrics.js';
import { TxVerifier } from '../src/verifier.js';
import { unitGenesis, nativeCounters, userBalances, pendingFees } from './helpers.js';

const b = getBackend('ml-dsa-44');
const vals: KeyPair[] = [1, 2, 3, 4].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
const user = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(50));
const outsider = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(60));
const beaconKey = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(70));
const addrOf = (k: KeyPair) => formatAddress(addressFromPublicKey(k.publicKey));

function genesis(): Genesis {
  return unitGenesis(vals, beaconKey, { accounts: [{ address: addrOf(user), balance: 1_000_000n }] });
}

function keyFor(address: string): KeyPair {
  const k = [...vals, outsider].find((v) => addrOf(v) === address);
  if (!k) throw new Error(`no key for ${address}`);
  return k;
}

describe('node: chain', () => {
  let dir: string;
  let store: ChainStore;
  let chain: Chain;
  const log = new Logger('json', 'error');
  const metrics = createMetrics();
  const verifier = new TxVerifier('ml-dsa-44', metrics);

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-chain-'));
    store = await ChainStore.open(dir);
    chain = await Chain.open(store, genesis(), 0, verifier, log);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Build block 1 at the slot whose proposer we can sign for (the next block at `slot`). */
  function buildBlock(txs = [] as ReturnType<typeof openTx>[], slot = 1): Candidate {
    const proposer = keyFor(chain.proposerFor(slot)!);
    return chain.build(slot, txs, addressFromPublicKey(proposer.publicKey), (m) => b.sign(proposer.secretKey, m));
  }

  function certify(c: Candidate, signers: KeyPair[], round = 1): Certificate {
    const cert: Certificate = { height: c.block.header.height, round, blockHash: c.hash, votes: [] };
    for (const k of signers) {
      const validator = addressFromPublicKey(k.publicKey);
      const body = certificateVoteBody(cert, 'unit', 0, validator);
      cert.votes.push({ validator, signature: b.sign(k.secretKey, voteSigningBytes(body)) });
    }
    return cert;
  }

  function transfer(nonce: bigint, amount = 10n) {
    const body = { chainId: 'unit', nonce, fee: 1n, publicKey: user.publicKey, payload: sendMsg('transfer', { to: addressFromPublicKey(outsider.publicKey), amount: amount }) };
    return openTx(encodeTx({ body, signature: b.sign(user.secretKey, txSigningBytes(body)) }));
  }

  /** The keyless form: the sender named by address, its key left to the state. */
  function keylessTransfer(nonce: bigint, amount = 10n) {
    const body = { chainId: 'unit', nonce, fee: 1n, address: addressFromPublicKey(user.publicKey), payload: sendMsg('transfer', { to: addressFromPublicKey(outsider.publicKey), amount }) };
    return openTx(encodeTx({ body, signature: b.sign(user.secretKey, txSigningBytes(body)) }));
  }

  const sigChecks = async () => (await metrics.sigVerify.get()).values.reduce((n, v) => n + v.value, 0);

  const rejects = (f: () => unknown, code: string, re?: RegExp) =>
    assert.throws(f, (e: unknown) => e instanceof QnexusError && e.code === code && (!re || re.test(e.message)));

  it('accepts a certificate with > 2/3 of the stake and rejects every weaker or forged one', () => {
    const c = buildBlock();
    assert.equal(chain.validate(c, 1), null);
    chain.verifyCertificate(certify(c, vals.slice(0, 3)), c.block.header);
    rejects(() => chain.verifyCertificate(certify(c, vals.slice(0, 2)), c.block.header), 'BAD_CERTIFICATE', /more than 2\/3/);
    rejects(() => chain.verifyCertificate(certify(c, [vals[0]!, vals[0]!, vals[1]!]), c.block.header), 'BAD_CERTIFICATE', /duplicate/);
    rejects(() => chain.verifyCertificate(certify(c, [vals[0]!, vals[1]!, outsider]), c.block.header), 'BAD_CERTIFICATE', /non-member/);
    const forged = certify(c, vals.slice(0, 3));
    forged.votes[2]!.signature[100]! ^= 1;
    rejects(() => chain.verifyCertificate(forged, c.block.header), 'BAD_CERTIFICATE', /bad signature/);
    const other = { ...certify(c, vals.slice(0, 3)), blockHash: new Uint8Array(32) };
    rejects(() => chain.verifyCertificate(other, c.block.header), 'BAD_CERTIFICATE', /different block/);
    // Votes signed for another round do not certify this one.
    const wrongRound = certify(c, vals.slice(0, 3), 2);
    rejects(() => chain.verifyCertificate({ ...wrongRound, round: 3 }, c.block.header), 'BAD_CERTIFICATE', /bad signature/);
  });

  it('build without emptyOk: null, and nothing signed, when no transaction applies; a block when one does', () => {
    const proposer = keyFor(chain.proposerFor(1)!);
    let signed = 0;
    const sign = (m: Uint8Array) => (signed++, b.sign(proposer.secretKey, m));
    const by = addressFromPublicKey(proposer.publicKey);
    assert.equal(chain.build(1, [], by, sign, undefined, false), null);
    // A transaction that does not apply (a nonce gap) is no reason for a block either.
    assert.equal(chain.build(1, [transfer(5n)], by, sign, undefined, false), null);
    assert.equal(signed, 0);
    const c = chain.build(1, [transfer(5n), transfer(0n)], by, sign, undefined, false);
    assert.equal(c?.envs.length, 1);
    assert.equal(chain.build(1, [], by, sign)!.envs.length, 0, 'emptyOk by default: an empty block');
    assert.equal(signed, 2);
  });

  it('imports a certified block, persists it atomically, and refuses one that does not extend the head', async () => {
    const c = buildBlock([transfer(0n)]);
    const cert = certify(c, vals.slice(1, 4));
    await chain.importCertified(c.block, c.raw, cert);
    assert.equal(chain.headHeight, 1);
    assert.equal(await store.headHeight(), 1);
    assert.ok(await store.txLocation(c.envs[0]!.hash));
    // Fee 1: nothing burned (floor of half), the tip is pending for the block's proposer.
    assert.equal(userBalances(chain.state) + nativeCounters(chain.state).burned + nativeCounters(chain.state).fees, 1_000_000n);
    assert.deepEqual(pendingFees(chain.state), [[toHex(c.block.header.proposer), 1n]]);
    // Replaying the same block is refused (it is no longer next).
    await assert.rejects(chain.importCertified(c.block, c.raw, cert), (e: unknown) => e instanceof QnexusError && e.code === 'BAD_BLOCK');
    // A reopened chain loads the same head and state root.
    await store.close();
    store = await ChainStore.open(dir);
    const again = await Chain.open(store, genesis(), 0, verifier, log);
    assert.equal(again.headHeight, 1);
    assert.deepEqual(again.state.root(), chain.state.root());
  });

  it('a certified block whose transactions do not reproduce its state root is refused', async () => {
    const c = buildBlock([transfer(0n)]);
    c.block.header.stateRoot = new Uint8Array(32).fill(9);
    // The proposer signs a header with a wrong root; validators would not certify it, but a faulty peer might serve it.
    const cert = certify({ ...c, hash: blockHash(c.block.header) }, vals.slice(0, 3));
    await assert.rejects(chain.importCertified(c.block, c.raw, cert), (e: unknown) => e instanceof QnexusError && e.code === 'BAD_BLOCK' && /state root/.test(e.message));
    assert.equal(chain.headHeight, 0);
  });

  it('validate rejects a wrong height, an unscheduled proposer, duplicate txs and bad tx signatures', () => {
    const good = buildBlock([transfer(0n)]);
    assert.equal(chain.validate(good, 1), null);
    assert.match(chain.validate(good, 2) ?? '', /not next/);
    // As received from the network: no cached execution, header rebuilt around the given txs.
    const asReceived = (envs: ReturnType<typeof openTx>[], over: Partial<typeof good.block.header> = {}) =>
      candidateFromEnvs({ ...good.block.header, txRoot: txRoot(envs.map((e) => e.hash)), txCount: envs.length, ...over }, good.block.signature, envs);
    const t = transfer(0n);
    assert.match(chain.validate(asReceived([t, t]), 1) ?? '', /duplicate/);
    assert.match(chain.validate(asReceived([t], { proposer: addressFromPublicKey(outsider.publicKey) }), 1) ?? '', /proposer/);
    const badRaw = transfer(0n, 11n).raw.slice();
    badRaw[badRaw.length - 3]! ^= 1;
    assert.match(chain.validate(asReceived([openTx(badRaw)]), 1) ?? '', /bad signature/);
    assert.equal(chain.validate(asReceived([transfer(0n)]), 1), null, 'a re-signed copy of the same tx is the same tx');
    assert.match(chain.validate(asReceived([transfer(0n, 99n)]), 1) ?? '', /state root/, 'a different tx set does not reproduce the header root');
  });

  it('keyless transactions: TX_KEY_UNKNOWN (before any signature check) until the key is final; then admitted, validated and imported', async () => {
    const mp = new Mempool(chain, verifier);
    const isCode = (code: string) => (e: unknown) => e instanceof QnexusError && e.code === code;
    const checks = await sigChecks();
    await assert.rejects(mp.admit(keylessTransfer(0n)), isCode('TX_KEY_UNKNOWN'));
    assert.equal(await sigChecks(), checks, 'refused on a state read, before any signature work');
    assert.equal(verifier.check(keylessTransfer(0n)), 'TX_KEY_UNKNOWN');
    // The key is only pending (in the mempool), not in the head state: still refused.
    const t0 = transfer(0n);
    assert.equal(await mp.admit(t0), 'added');
    await assert.rejects(mp.admit(keylessTransfer(1n)), isCode('TX_KEY_UNKNOWN'));
    // A block whose keyless transaction relies on a key carried earlier in the same block is invalid.
    const good = buildBlock([t0]);
    const same = [t0, keylessTransfer(1n)];
    const asReceived = candidateFromEnvs({ ...good.block.header, txRoot: txRoot(same.map((e) => e.hash)), txCount: same.length }, good.block.signature, same);
    assert.match(chain.validate(asReceived, 1) ?? '', /registers no key/);
    await chain.importCertified(good.block, good.raw, certify(good, vals.slice(0, 3)));
    mp.onCommit(good.envs);
    assert.deepEqual(chain.state.publicKey(addressFromPublicKey(user.publicKey)), user.publicKey);
    // Now the head state has the key: admitted; a keyless copy with a bad signature is not.
    const k1 = keylessTransfer(1n);
    const badRaw = k1.raw.slice();
    badRaw[badRaw.length - 3]! ^= 1;
    await assert.rejects(mp.admit(openTx(badRaw)), isCode('TX_BAD_SIGNATURE'));
    assert.equal(await mp.admit(k1), 'added');
    assert.equal(k1.raw.length, transfer(1n).raw.length - (1312 - 20));
    // The next block carries it; a node that never saw it validates it against the parent state's key.
    const c2 = buildBlock(mp.select(10), 2);
    assert.deepEqual(c2.envs.map((e) => e.hashHex), [k1.hashHex]);
    verifier.forget(k1.hashHex);
    assert.equal(chain.validate(candidateFromEnvs(c2.block.header, c2.block.signature, c2.envs.map((e) => openTx(e.raw))), 2), null);
    await chain.importCertified(c2.block, c2.raw, certify(c2, vals.slice(0, 3), 2));
    assert.equal(chain.state.account(Buffer.from(addressFromPublicKey(user.publicKey)).toString('hex'))?.nonce, 2n);
  });

  it('the mempool admits once, reports specific codes, and drops what a commit makes stale', async () => {
    const mp = new Mempool(chain, verifier);
    const t0 = transfer(0n);
    assert.equal(await mp.admit(t0), 'added');
    assert.equal(await mp.admit(t0), 'known');
    await assert.rejects(mp.admit(transfer(0n, 12n)), (e: unknown) => e instanceof QnexusError && e.code === 'TX_NONCE_TAKEN');
    await assert.rejects(mp.admit(transfer(500n)), (e: unknown) => e instanceof QnexusError && e.code === 'TX_NONCE_FUTURE');
    await assert.rejects(mp.admit(transfer(1n, 10n ** 9n)), (e: unknown) => e instanceof QnexusError && e.code === 'TX_INSUFFICIENT_FUNDS');
    assert.equal(mp.pendingNonce(Buffer.from(addressFromPublicKey(user.publicKey)).toString('hex')), 1n);
    // A different tx with nonce 0 gets finalized instead: ours becomes stale and is reported as rejected.
    const winner = transfer(0n, 13n);
    const c = buildBlock([winner]);
    await chain.importCertified(c.block, c.raw, certify(c, vals.slice(0, 3)));
    mp.onCommit(c.envs);
    assert.equal(mp.size, 0);
    assert.equal(mp.rejection(t0.hashHex)?.code, 'TX_NONCE_STALE');
    // The pool read the sender's account at the old head; it answers from the new one now.
    const sender = Buffer.from(addressFromPublicKey(user.publicKey)).toString('hex');
    assert.equal(mp.pendingNonce(sender), 1n);
    await assert.rejects(mp.admit(transfer(0n, 14n)), (e: unknown) => e instanceof QnexusError && e.code === 'TX_NONCE_STALE');
    assert.equal(await mp.admit(transfer(1n)), 'added');
  });
});
