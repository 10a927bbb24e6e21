// State proofs end to end on a real node (in-process, one validator that finalizes alone): the SDK, trusting only the
// genesis (and the beacon key's signed committees), verifies an account and module queries the node proves; a proof of
// another height or another account, a byte flipped anywhere (trie node, header, certificate, value), a lie in the JSON
// over honest proofs, or a forged committee announcement is PROOF_INVALID; no committee at all is EPOCH_UNKNOWN.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressFromPublicKey, formatAddress, fromHex, generateKeyPair, toHex, type KeyPair } from '@qnexus/crypto';
import { app } from '@qnexus/app';
import { node as N, type Static } from '@qnexus/api';
import { ApiError, QnexusClient, transferAndWait, verifyAccountProof, verifyQueryProof, verifyStateAnswer, type AccountInfo, type ProofVerifyOptions } from '@qnexus/sdk';
import type { Genesis } from '@qnexus/types';
import { startNode } from '../src/node.js';
import type { RunningNode } from '../src/config.js';
import { assertMatches } from '../../api/test/check.js';
import { announce, embeddedNodeConfig, unitGenesis } from './helpers.js';

type Proof = Static<typeof N.StateProof>;

const validator = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(51));
const beaconKey = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(52));
const [alice, bob] = [53, 54].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i))) as [KeyPair, KeyPair];
const addrOf = (k: KeyPair) => formatAddress(addressFromPublicKey(k.publicKey));

/** The hex string with the byte at `i` flipped. */
function flip(hex: string, i: number): string {
  const b = fromHex(hex);
  b[i]! ^= 0x01;
  return toHex(b);
}

/** `count` byte positions spread over `len` bytes, first and last included. */
function positions(len: number, count: number): number[] {
  if (len <= count) return Array.from({ length: len }, (_, i) => i);
  return [...new Set(Array.from({ length: count }, (_, k) => Math.round((k * (len - 1)) / (count - 1))))];
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ApiError, `an ApiError, got ${String(e)}`);
    return e.code;
  }
  return 'verified';
}

describe('node: state proofs verified by the SDK as a light client', function () {
  this.timeout(180_000);
  let dir: string;
  let n: RunningNode;
  let g: Genesis;
  let client: QnexusClient;
  /** Alice's account proven before and after her transfer to bob (the state differs between the two heights). */
  let early: AccountInfo;
  let late: AccountInfo;
  let bobLate: AccountInfo;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-proofs-'));
    g = unitGenesis([validator], beaconKey, { chainId: 'proofs-test', genesisTime: Date.now(), accounts: [alice, bob].map((k) => ({ address: addrOf(k), balance: 1_000_000n })) });
    n = await startNode(
      embeddedNodeConfig(join(dir, 'n'), g, {
        validatorKey: { ...validator, address: addressFromPublicKey(validator.publicKey), seed: new Uint8Array(32) },
        verifyWorkers: 0,
      }),
    );
    client = new QnexusClient(n.info.apiUrl, { genesis: g });
    await client.waitForHeight(1, 60_000, { finalized: true });
    early = await client.account(addrOf(alice), { verify: true });
    await transferAndWait(client, { key: { ...alice, scheme: 'ml-dsa-44' }, to: addrOf(bob), amount: 5n, timeoutMs: 60_000 });
    late = await client.account(addrOf(alice), { verify: true });
    bobLate = await client.account(addrOf(bob), { verify: true });
  });
  after(async () => {
    await n?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const verifyOf = (a: AccountInfo, opts: ProofVerifyOptions = {}) => code(verifyAccountProof(g, a, opts));
  const withProof = (a: AccountInfo, p: Partial<Proof>): AccountInfo => ({ ...a, proof: { ...a.proof!, ...p } });

  it('an account proven by the node verifies, at the height it says, and the fields are the proven ones', async () => {
    assert.ok(late.proof && early.proof);
    const { verified: _v, ...wire } = late as AccountInfo & { verified: unknown };
    assertMatches(N.account.response, wire, 'GET /v1/accounts/{address}?proof=true');
    assert.ok(late.proof.height > early.proof.height);
    assert.equal((late as AccountInfo & { verified: { height: number } }).verified.height, late.proof.height);
    assert.ok(BigInt(late.balance) < BigInt(early.balance) - 5n, 'the amount and the fee left');
    assert.equal(late.nonce, '1');
    assert.notEqual(late.publicKey, null, 'the key registered by the transfer is proven');
    assert.equal(early.publicKey, null, 'absent before her first transaction: proven absent');
    // A pinned height answers the state of that height, proven.
    const pinned = await client.account(addrOf(alice), { verify: true, height: early.proof.height });
    assert.equal(pinned.balance, early.balance);
    assert.equal(pinned.verified.height, early.proof.height);
    // An account the shard never saw: every key proven absent.
    const nobody = await client.account('qn' + '77'.repeat(20), { verify: true });
    assert.equal(nobody.balance, '0');
    assert.ok(nobody.proof!.entries.every((e) => e.value === null));
  });

  it('a proof of another height fails: asked for one height, or spliced with the other height’s header', async () => {
    assert.equal(await verifyOf(early, { height: late.proof!.height }), 'PROOF_INVALID');
    // The JSON of one height over the proof of another.
    assert.equal(await verifyOf({ ...late, proof: early.proof! }), 'PROOF_INVALID');
    // The entries of one height against the certified header of another.
    assert.equal(await verifyOf(withProof(early, { height: late.proof!.height, header: late.proof!.header, certificate: late.proof!.certificate })), 'PROOF_INVALID');
  });

  it('a proof of another account fails', async () => {
    assert.equal(await verifyOf({ ...late, proof: bobLate.proof! }), 'PROOF_INVALID');
    assert.equal(await verifyOf({ ...bobLate, address: late.address }), 'PROOF_INVALID');
  });

  it('a node lying in the JSON over an honest proof fails', async () => {
    assert.equal(await verifyOf({ ...late, balance: (BigInt(late.balance) + 1n).toString() }), 'PROOF_INVALID');
    assert.equal(await verifyOf({ ...late, nonce: '0' }), 'PROOF_INVALID');
    assert.equal(await verifyOf({ ...late, publicKey: null }), 'PROOF_INVALID');
  });

  it('one flipped byte anywhere fails, at the step it breaks: a trie node, the header, a certificate vote, a value', async () => {
    const p = late.proof!;
    const failures: string[] = [];
    let checked = 0;
    /** Must fail with PROOF_INVALID naming one of `steps` (a flip that breaks decoding fails at its shape or decode step). */
    const check = async (what: string, a: AccountInfo, steps: RegExp) => {
      checked++;
      try {
        await verifyAccountProof(g, a);
        failures.push(`${what}: verified`);
      } catch (e) {
        if (!(e instanceof ApiError) || e.code !== 'PROOF_INVALID' || !steps.test(e.message)) failures.push(`${what}: ${String(e)}`);
      }
    };
    for (const [i, e] of p.entries.entries()) {
      for (const [j, node] of e.nodes.entries()) {
        for (const at of positions(node.length / 2, 12)) {
          const entries = p.entries.map((x, k) => (k === i ? { ...x, nodes: x.nodes.map((y, l) => (l === j ? flip(y, at) : y)) } : x));
          await check(`entry ${i} node ${j} byte ${at}`, withProof(late, { entries }), /\(state proof\)/);
        }
      }
      if (e.value !== null) {
        for (const at of positions(e.value.length / 2, 4)) {
          const entries = p.entries.map((x, k) => (k === i ? { ...x, value: flip(x.value!, at) } : x));
          await check(`entry ${i} value byte ${at}`, withProof(late, { entries }), /\(state proof\)/);
        }
      }
    }
    for (const at of positions(p.header.length / 2, 40)) await check(`header byte ${at}`, withProof(late, { header: flip(p.header, at) }), /\((header|certificate)\)/);
    for (const at of positions(p.certificate.length / 2, 40)) await check(`certificate byte ${at}`, withProof(late, { certificate: flip(p.certificate, at) }), /\(certificate\)/);
    // Entries dropped, added or reordered; no proof at all.
    await check('an entry dropped', withProof(late, { entries: p.entries.slice(1) }), /\(shape\)/);
    await check('an entry added', withProof(late, { entries: [...p.entries, p.entries[0]!] }), /\(shape\)/);
    await check('entries reordered', withProof(late, { entries: [...p.entries].reverse() }), /\(keys\)/);
    await check('no proof', { ...late, proof: undefined } as AccountInfo, /\(shape\)/);
    assert.deepEqual(failures, []);
    assert.ok(checked > 100, `${checked} tampered proofs checked`);
  });

  it('module queries of single keys are proven: bank balance and staking pending-fee verify; a lie fails; a range query has no proof', async () => {
    const bal = await client.verifiedQuery(app, 'bank', 'balance', [addrOf(bob), 'qfc']);
    assert.equal(bal.answer.amount, bobLate.balance);
    const fee = await client.verifiedQuery(app, 'staking', 'pending-fee', [addrOf(validator)]);
    assert.ok(BigInt(fee.answer.amount as string) > 0n, 'the validator earned a tip on the transfer');
    const raw = await client.moduleQuery('staking', 'pending-fee', [addrOf(validator)], { proof: true });
    const q = { module: 'staking', name: 'pending-fee', params: [addrOf(validator)] };
    // The proof is the host's schema (the module's own fields are plain JSON Schema, which Value.Check does not read).
    assertMatches(N.StateProof, raw.proof, 'proof of GET /v1/staking/pending-fee/{proposer}?proof=true');
    assert.equal(await code(verifyQueryProof(g, app, q, raw)), 'verified');
    assert.equal(await code(verifyQueryProof(g, app, q, { ...raw, amount: '999999' })), 'PROOF_INVALID');
    assert.equal(await code(verifyQueryProof(g, app, { ...q, params: [addrOf(alice)] }, raw)), 'PROOF_INVALID');
    await assert.rejects(client.moduleQuery('bank', 'balances', [addrOf(bob)], { proof: true }), (e: ApiError) => e.code === 'BAD_REQUEST' && /no proof/.test(e.message));
    await assert.rejects(client.moduleQuery('bank', 'balance', [addrOf(bob), 'qfc'], { proof: true, height: 1_000_000 }), (e: ApiError) => e.code === 'BAD_REQUEST');
  });

  it('past epoch 0 the committee is the beacon-signed one: verified with the genesis beacon key, forged → PROOF_INVALID, none → EPOCH_UNKNOWN', async () => {
    // A client whose genesis counts every slot as an epoch: the certificate's round is then past epoch 0, so its
    // committee must come from a signed announcement (here: the beacon key signing the same single validator).
    const g1: Genesis = { ...g, epochLength: 1 };
    const round = (await client.block(late.proof!.height)).certificate!.round;
    assert.ok(round >= 1);
    const keys = late.proof!.entries.map((e) => fromHex(e.key));
    const run = (announcement?: ProofVerifyOptions['announcement']) => code(verifyStateAnswer(g1, late.proof, keys, 0, announcement ? { announcement } : {}));
    assert.equal(await run(), 'EPOCH_UNKNOWN');
    assert.equal(await run(async () => undefined), 'EPOCH_UNKNOWN');
    assert.equal(await run(async (e) => announce(g1, beaconKey, e, [[validator]])), 'verified');
    const forger = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(55));
    assert.equal(await run(async (e) => announce(g1, forger, e, [[validator]])), 'PROOF_INVALID', 'not signed by the genesis beacon key');
    assert.equal(await run(async (e) => announce(g1, beaconKey, e + 1, [[validator]])), 'PROOF_INVALID', "another epoch's announcement");
    assert.equal(await run(async (e) => announce(g1, beaconKey, e, [[forger]])), 'PROOF_INVALID', 'a committee that did not sign the certificate');
  });
});
