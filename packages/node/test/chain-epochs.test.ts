// Chain across epochs: the proposer schedule, block validation and certificate checks follow each round's epoch committee.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressFromPublicKey, formatAddress, generateKeyPair, getBackend, toHex, type KeyPair } from '@qnexus/crypto';
import { QnexusError, certificateVoteBody, voteSigningBytes, type Certificate, type Genesis } from '@qnexus/types';
import { ChainStore } from '@qnexus/db';
import { Chain, candidateFromEnvs, type Candidate } from '../src/chain.js';
import { Logger } from '@qnexus/runtime';
import { createMetrics } from '../src/metrics.js';
import { TxVerifier } from '../src/verifier.js';
import { announce, unitGenesis } from './helpers.js';

const b = getBackend('ml-dsa-44');
const vals: KeyPair[] = [1, 2, 3, 4].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
const fresh: KeyPair[] = [11, 12, 13].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
const beaconKey = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(70));
const addrOf = (k: KeyPair) => formatAddress(addressFromPublicKey(k.publicKey));
const EPOCH = 4;

const G: Genesis = unitGenesis(vals, beaconKey, { chainId: 'unit-epochs', epochLength: EPOCH });

/** Epoch 1 keeps the genesis committee; epoch 2 keeps one of it and brings three newcomers. */
const EPOCH1 = vals;
const EPOCH2 = [vals[0]!, ...fresh];

function keyFor(address: string): KeyPair {
  const k = [...vals, ...fresh].find((v) => addrOf(v) === address);
  if (!k) throw new Error(`no key for ${address}`);
  return k;
}

function certify(header: Candidate['block']['header'], hash: Uint8Array, signers: KeyPair[], round: number): Certificate {
  const cert: Certificate = { height: header.height, round, blockHash: hash, votes: [] };
  for (const k of signers) {
    const validator = addressFromPublicKey(k.publicKey);
    cert.votes.push({ validator, signature: b.sign(k.secretKey, voteSigningBytes(certificateVoteBody(cert, G.chainId, 0, validator))) });
  }
  return cert;
}

describe('node: chain across epochs', () => {
  let dir: string;
  let store: ChainStore;
  let chain: Chain;
  const log = new Logger('json', 'error');
  const verifier = new TxVerifier('ml-dsa-44', createMetrics());

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-chain-epochs-'));
    store = await ChainStore.open(dir);
    chain = await Chain.open(store, G, 0, verifier, log, { now: () => 9_500 });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const rejects = (f: () => unknown, code: string, re?: RegExp) =>
    assert.throws(f, (e: unknown) => e instanceof QnexusError && e.code === code && (!re || re.test(e.message)));

  function build(slot: number): Candidate {
    const k = keyFor(chain.proposerFor(slot)!);
    return chain.build(slot, [], addressFromPublicKey(k.publicKey), (m) => b.sign(k.secretKey, m));
  }

  it('has no schedule for an epoch until its announcement is verified, then schedules from that epoch committee', async () => {
    assert.ok(vals.map(addrOf).includes(chain.proposerFor(3)!));
    assert.equal(chain.proposerFor(4), undefined);
    assert.equal(chain.committeeFor(1), undefined);
    assert.equal(chain.memberAt(1, addrOf(vals[0]!)), undefined);
    assert.equal(await chain.epochs.add(announce(G, beaconKey, 1, [EPOCH1]), 't'), 'accepted');
    assert.equal(await chain.epochs.add(announce(G, beaconKey, 2, [EPOCH2]), 't'), 'accepted');
    const inEpoch = (r: number) => (r < 2 * EPOCH ? vals : EPOCH2).map(addrOf);
    for (let r = 0; r < 3 * EPOCH; r++) assert.ok(inEpoch(r).includes(chain.proposerFor(r)!), `round ${r}`);
    // Over enough epoch-2 rounds every member of its committee is scheduled, and nobody else.
    const proposers2 = new Set(Array.from({ length: 64 }, (_, i) => chain.proposerFor(2 * EPOCH + (i % EPOCH))));
    assert.ok([...proposers2].every((p) => EPOCH2.map(addrOf).includes(p!)));
    assert.equal(chain.proposerFor(3 * EPOCH), undefined, 'epoch 3 is not announced');
    assert.equal(chain.memberAt(2, addrOf(vals[1]!)), undefined);
    assert.equal(chain.memberAt(2, addrOf(fresh[0]!))?.stake, 100n);
    assert.equal(chain.shardOfMember(2, addrOf(fresh[2]!)), 0);
    assert.equal(chain.shardOfMember(2, addrOf(vals[3]!)), undefined);
    assert.equal(chain.currentEpoch(9_500), 2);
  });

  it('validates blocks and certificates of an epoch-2 round against the epoch-2 committee only', async () => {
    await chain.epochs.add(announce(G, beaconKey, 2, [EPOCH2]), 't');
    const slot = 2 * EPOCH + 1;
    const c = build(slot);
    assert.equal(chain.validate(c, 1), null);
    // A block for the same slot claiming a proposer of the old committee is not scheduled.
    const outsiderHeader = { ...c.block.header, proposer: addressFromPublicKey(vals[1]!.publicKey) };
    assert.match(chain.validate(candidateFromEnvs(outsiderHeader, c.block.signature, []), 1) ?? '', /proposer is not scheduled/);
    // A block in epoch 1 (unknown here) cannot be validated at all.
    const unknown = { ...c.block.header, slot: EPOCH + 1 };
    assert.match(chain.validate(candidateFromEnvs(unknown, c.block.signature, []), 1) ?? '', /epoch 1 is unknown/);

    const h = c.block.header;
    // The epoch-0 committee would certify an epoch-0 round, but not this epoch-2 one.
    rejects(() => chain.verifyCertificate(certify(h, c.hash, vals.slice(0, 3), slot), h), 'BAD_CERTIFICATE', /non-member/);
    rejects(() => chain.verifyCertificate(certify(h, c.hash, vals, slot), h), 'BAD_CERTIFICATE', /non-member/);
    // Two of four epoch-2 members are not a quorum; three are.
    rejects(() => chain.verifyCertificate(certify(h, c.hash, fresh.slice(0, 2), slot), h), 'BAD_CERTIFICATE', /more than 2\/3/);
    chain.verifyCertificate(certify(h, c.hash, [vals[0]!, fresh[0]!, fresh[1]!], slot), h);
    // A certificate from a round of an epoch we do not know is not judged: EPOCH_UNKNOWN, to be fetched.
    rejects(() => chain.verifyCertificate(certify(h, c.hash, EPOCH2, 3 * EPOCH), h), 'EPOCH_UNKNOWN');

    const { changes } = await chain.importCertified(c.block, c.raw, certify(h, c.hash, fresh, slot));
    assert.equal(chain.headHeight, 1);
    assert.ok(changes);
    assert.ok(EPOCH2.map((k) => toHex(addressFromPublicKey(k.publicKey))).includes(toHex(h.proposer)));
  });

  it('a certificate of an epoch-0 round is checked against the genesis committee even after the committees changed', async () => {
    await chain.epochs.add(announce(G, beaconKey, 2, [EPOCH2]), 't');
    const c = build(2);
    const h = c.block.header;
    chain.verifyCertificate(certify(h, c.hash, vals.slice(1), 2), h);
    rejects(() => chain.verifyCertificate(certify(h, c.hash, fresh, 2), h), 'BAD_CERTIFICATE', /non-member/);
    // Decided late, in a round of epoch 2: only the epoch-2 committee's precommits count then.
    rejects(() => chain.verifyCertificate(certify(h, c.hash, vals.slice(1), 2 * EPOCH), h), 'BAD_CERTIFICATE', /non-member/);
    chain.verifyCertificate(certify(h, c.hash, fresh, 2 * EPOCH), h);
  });

  it('reloads verified announcements with the chain', async () => {
    await chain.epochs.add(announce(G, beaconKey, 2, [EPOCH2]), 't');
    await store.close();
    store = await ChainStore.open(dir);
    const again = await Chain.open(store, G, 0, verifier, log);
    assert.deepEqual([...again.committeeFor(2)!.members.keys()].sort(), EPOCH2.map(addrOf).sort());
    assert.equal(again.epochs.latestEpoch(), 2);
  });
});
