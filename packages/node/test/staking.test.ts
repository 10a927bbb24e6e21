import { stakeConsentSigningBytes, stakeMsg, unstakeMsg } from '@qnexus/module-staking';
import { sendMsg } from '@qnexus/state';
// Staking on a shard node: stake consent checked once (admission and block validation), registry
// snapshots, the validators/committee/evidence/supply API, and evidence and participation reports to the beacon
// (POST /v1/evidence: evidence.test.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressFromPublicKey, compareBytes, formatAddress, generateKeyPair, getBackend, toHex, type KeyPair, type UnlockedKey } from '@qnexus/crypto';
import {
  QnexusError,
  certificateVoteBody,
  decodeBeaconRequest,
  encodeRegistrySnapshot,
  encodeTx,
  encodeXAck,
  genesisSupply,
  openTx,
  registrySnapshotSigningBytes,
  txRoot,
  txSigningBytes,
  voteSigningBytes,
  type BeaconRequest,
  type Certificate,
  type ErrorCode,
  type Genesis,
  type RegistrySnapshot,
  type SignedVote,
  type TxBody,
  type TxEnvelope,
  type ValidatorInfo,
  type VoteBody,
  type VoteEvidence,
  type XAck,
} from '@qnexus/types';
import type { StateChanges } from '@qnexus/state';
import { ChainStore } from '@qnexus/db';
import type { P2PNode } from '@qnexus/p2p';
import { Chain, candidateFromEnvs, type Candidate } from '../src/chain.js';
import type { Engine } from '../src/engine.js';
import { Logger } from '@qnexus/runtime';
import { Mempool } from '../src/mempool.js';
import { createMetrics, type Metrics } from '../src/metrics.js';
import { RegistryView } from '../src/registry-view.js';
import type { TxGossip } from '../src/txgossip.js';
import { TxVerifier } from '../src/verifier.js';
import type { VerifyPool } from '../src/verify-pool.js';
import { XShard } from '../src/xshard.js';
import { startTestApi, unitGenesis, nativeCounters } from './helpers.js';

const CHAIN = 'unit-stake';
const b = getBackend('ml-dsa-44');
const vals: KeyPair[] = [1, 2, 3, 4].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
const beaconKey = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(70));
const impostor = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(71));
const newValidator = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(80));
const users: KeyPair[] = Array.from({ length: 8 }, (_, i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(100 + i)));
const addrOf = (k: KeyPair) => formatAddress(addressFromPublicKey(k.publicKey));
const rawAddr = (k: KeyPair) => addressFromPublicKey(k.publicKey);
const INITIAL = 1_000_000n;
const SLOT_MS = 1000;
const EPOCH = 32;

/** One shard, four validators; genesis "now" so the current epoch is 0 (the epoch book knows it). */
function genesis(): Genesis {
  return unitGenesis(vals, beaconKey, { chainId: CHAIN, genesisTime: Date.now() - 2 * SLOT_MS, slotMs: SLOT_MS, epochLength: EPOCH, staking: { minStake: 1000n, feeBurnBps: 5000 }, accounts: users.map((k) => ({ address: addrOf(k), balance: INITIAL })) });
}

function keyFor(address: string): KeyPair {
  const k = vals.find((v) => addrOf(v) === address);
  if (!k) throw new Error(`no key for ${address}`);
  return k;
}

function signTx(from: KeyPair, body: TxBody): TxEnvelope {
  return openTx(encodeTx({ body, signature: b.sign(from.secretKey, txSigningBytes(body)) }));
}

/** A stake by `funder` for `validator`, the consent signed by `consentBy` for `consentFunder` (defaults: the honest case). */
function stakeTx(
  funder: KeyPair,
  validator: KeyPair,
  opts: { nonce?: bigint; amount?: bigint; consentBy?: KeyPair; consentFunder?: KeyPair; consentChain?: string } = {},
): TxEnvelope {
  const consent = b.sign(
    (opts.consentBy ?? validator).secretKey,
    stakeConsentSigningBytes(opts.consentChain ?? CHAIN, rawAddr(opts.consentFunder ?? funder), validator.publicKey),
  );
  return signTx(funder, {
    chainId: CHAIN,
    nonce: opts.nonce ?? 0n,
    fee: 2n,
    publicKey: funder.publicKey,
    payload: stakeMsg({ validatorPublicKey: validator.publicKey, amount: opts.amount ?? 5000n, validatorSignature: consent }),
  });
}

function transferTx(from: KeyPair, to: KeyPair, amount: bigint, nonce: bigint, fee = 10n): TxEnvelope {
  return signTx(from, { chainId: CHAIN, nonce, fee, publicKey: from.publicKey, payload: sendMsg('transfer', { to: rawAddr(to), amount: amount }) });
}

async function rejectsCode(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof QnexusError, String(e));
    assert.equal(e.code, code, e.message);
    return true;
  });
}

function vote(k: KeyPair, over: Partial<VoteBody> = {}): SignedVote {
  const body: VoteBody = { chainId: CHAIN, shard: 0, height: 5, round: 7, step: 'prevote', blockHash: new Uint8Array(32).fill(1), validator: rawAddr(k), ...over };
  return { body, signature: b.sign(k.secretKey, voteSigningBytes(body)) };
}

function equivocation(k: KeyPair, over: Partial<VoteBody> = {}): VoteEvidence {
  return { first: vote(k, over), second: vote(k, { ...over, blockHash: new Uint8Array(32).fill(2) }) };
}

function validatorInfo(k: KeyPair, over: Partial<ValidatorInfo> = {}): ValidatorInfo {
  const none = { signed: 0, blocks: 0 };
  return {
    address: rawAddr(k),
    home: rawAddr(k),
    stake: 100n,
    status: 'active',
    shard: 0,
    activationEpoch: 0,
    exitEpoch: null,
    withdrawableEpoch: null,
    rewards: 7n,
    slashed: 0n,
    lastEpoch: null,
    last: none,
    lifetime: { signed: 3, blocks: 4 },
    ...over,
  };
}

function snapshot(slot: number, signer: KeyPair = beaconKey, chainId = CHAIN, peers: RegistrySnapshot['peers'] = []): Uint8Array {
  const body: RegistrySnapshot = {
    chainId,
    slot,
    epoch: Math.floor(slot / EPOCH),
    validators: [...vals.map((k) => validatorInfo(k)), validatorInfo(newValidator, { status: 'pending', shard: null, activationEpoch: null, home: rawAddr(users[0]!), stake: 5000n, rewards: 0n })],
    totals: { genesisStake: 400n, stakedIn: 5000n, feesIn: 0n, minted: 28n, slashed: 0n, released: 0n, held: 5428n },
    heads: [],
    peers,
  };
  return encodeRegistrySnapshot({ body, signature: b.sign(signer.secretKey, registrySnapshotSigningBytes(body)) });
}

describe('node: staking', () => {
  const log = new Logger('json', 'error');
  let G: Genesis;
  let dir: string;
  let store: ChainStore;
  let chain: Chain;
  let metrics: Metrics;
  let verifier: TxVerifier;

  beforeEach(async () => {
    G = genesis();
    dir = mkdtempSync(join(tmpdir(), 'qnexus-stake-'));
    store = await ChainStore.open(dir);
    metrics = createMetrics();
    verifier = new TxVerifier('ml-dsa-44', metrics);
    chain = await Chain.open(store, G, 0, verifier, log);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function build(slot: number, txs: TxEnvelope[]): Candidate {
    const proposer = keyFor(chain.proposerFor(slot)!);
    return chain.build(slot, txs, rawAddr(proposer), (m) => b.sign(proposer.secretKey, m));
  }

  function certify(c: Candidate): Certificate {
    const cert: Certificate = { height: c.block.header.height, round: c.block.header.slot, blockHash: c.hash, votes: [] };
    for (const k of vals) {
      const validator = rawAddr(k);
      cert.votes.push({ validator, signature: b.sign(k.secretKey, voteSigningBytes(certificateVoteBody(cert, CHAIN, 0, validator))) });
    }
    return cert;
  }

  /** A candidate as received from the network: no cached execution. */
  const asReceived = (c: Candidate): Candidate => candidateFromEnvs({ ...c.block.header, txRoot: txRoot(c.envs.map((e) => e.hash)) }, c.block.signature, c.envs);

  const sigChecks = async (m: Metrics, kind: string): Promise<number> => (await m.sigVerify.get()).values.find((v) => v.labels.kind === kind)?.value ?? 0;

  // ------------------------------------------------------------------ consent

  describe('stake consent (verify once)', () => {
    const funder = users[0]!;

    it('admits a stake with a valid consent, and block validation reuses the verdict', async () => {
      const mp = new Mempool(chain, verifier);
      const s = stakeTx(funder, newValidator);
      assert.equal(await mp.admit(s), 'added');
      assert.equal(await sigChecks(metrics, 'stake-consent'), 1);
      const c = build(1, mp.select(10));
      assert.deepEqual(c.envs.map((e) => e.hashHex), [s.hashHex]);
      assert.equal(chain.validate(asReceived(c), 1), null);
      // Both signatures came from the cache: no second consent check.
      assert.equal(await sigChecks(metrics, 'stake-consent'), 1);
      assert.equal(await sigChecks(metrics, 'tx'), 1);
      // The stake costs amount + fee: what remains pending is counted against the funder.
      await rejectsCode(mp.admit(transferTx(funder, users[1]!, INITIAL - 5002n + 1n, 1n, 1n)), 'TX_INSUFFICIENT_FUNDS');
      assert.equal(await mp.admit(transferTx(funder, users[1]!, INITIAL - 5002n - 1n, 1n, 1n)), 'added');
    });

    it('refuses a corrupted consent (STAKE_BAD_CONSENT) and a block carrying it is invalid', async () => {
      const mp = new Mempool(chain, verifier);
      const bad = stakeTx(funder, newValidator, { consentChain: 'other-chain' });
      await rejectsCode(mp.admit(bad), 'STAKE_BAD_CONSENT');
      assert.equal(verifier.check(bad), 'STAKE_BAD_CONSENT');
      // Not cached as good: a block with it (built by a faulty proposer) does not validate.
      const c = build(1, [bad]);
      assert.match(chain.validate(asReceived(c), 1) ?? '', /bad signature/);
      // A validator's consent signed by someone else's key is no consent either.
      await rejectsCode(mp.admit(stakeTx(funder, newValidator, { consentBy: impostor })), 'STAKE_BAD_CONSENT');
    });

    it('refuses a consent given to another funder', async () => {
      const mp = new Mempool(chain, verifier);
      const stolen = stakeTx(users[1]!, newValidator, { consentFunder: funder });
      await rejectsCode(mp.admit(stolen), 'STAKE_BAD_CONSENT');
      const c = build(1, [stolen]);
      assert.match(chain.validate(asReceived(c), 1) ?? '', /bad signature/);
      // The funder it was given to can use it.
      assert.equal(await mp.admit(stakeTx(funder, newValidator)), 'added');
    });

    it('a bad transaction signature is reported as such, before the consent', async () => {
      const s = stakeTx(funder, newValidator);
      const raw = s.raw.slice();
      raw[raw.length - 5]! ^= 1;
      await rejectsCode(new Mempool(chain, verifier).admit(openTx(raw)), 'TX_BAD_SIGNATURE');
    });

    it('on the worker-pool path both signatures go to the pool', async () => {
      const asked: number[] = [];
      const pool = {
        verify: async (pk: Uint8Array, msg: Uint8Array, sig: Uint8Array) => {
          asked.push(pk.length);
          return b.verify(pk, msg, sig);
        },
      } as unknown as VerifyPool;
      const pooled = new TxVerifier('ml-dsa-44', metrics, pool);
      const s = stakeTx(funder, newValidator);
      assert.equal(await pooled.checkAsync(s), 'ok');
      assert.equal(asked.length, 2);
      assert.equal(await pooled.checkAsync(stakeTx(funder, newValidator, { consentFunder: users[1]! })), 'STAKE_BAD_CONSENT');
      assert.equal(asked.length, 4);
      assert.equal(await pooled.checkAsync(s), 'ok');
      assert.equal(pooled.check(s), 'ok');
      assert.equal(asked.length, 4, 'the verified stake is cached');
    });

    it('an unstake costs the fee only', async () => {
      const mp = new Mempool(chain, verifier);
      const poor = users[2]!;
      const body: TxBody = { chainId: CHAIN, nonce: 0n, fee: 3n, publicKey: poor.publicKey, payload: unstakeMsg({ validator: rawAddr(vals[0]!) }) };
      assert.equal(await mp.admit(signTx(poor, body)), 'added');
      await rejectsCode(mp.admit(transferTx(poor, users[1]!, INITIAL - 3n - 1n + 1n, 1n, 1n)), 'TX_INSUFFICIENT_FUNDS');
      assert.equal(await mp.admit(transferTx(poor, users[1]!, INITIAL - 3n - 1n, 1n, 1n)), 'added');
    });
  });

  // ------------------------------------------------------------------ registry snapshots

  /** A clock in slot 100 (the snapshots below are dated up to slot 40). */
  const inSlot100 = () => G.genesisTime + 100 * SLOT_MS;

  describe('registry snapshots', () => {
    it('keeps the newest verified snapshot, ignores older ones and rejects forgeries', async () => {
      const view = new RegistryView(G, metrics, log, { now: inSlot100 });
      const latestSlot = (): number | undefined => view.latest?.slot;
      assert.equal(latestSlot(), undefined);
      assert.equal(view.validate(snapshot(10)), 'accept');
      assert.equal(latestSlot(), 10);
      assert.equal(view.validator(addrOf(newValidator))?.status, 'pending');
      assert.equal(view.validate(snapshot(9)), 'ignore');
      assert.equal(view.validate(snapshot(10)), 'ignore');
      assert.equal(view.validate(snapshot(20, impostor)), 'reject');
      assert.equal(view.validate(snapshot(20, beaconKey, 'other-chain')), 'reject');
      assert.equal(view.validate(new Uint8Array([1, 2, 3])), 'reject');
      const tampered = snapshot(30);
      tampered[tampered.length - 10]! ^= 1;
      assert.equal(view.validate(tampered), 'reject');
      assert.equal(latestSlot(), 10);
      assert.equal(view.validate(snapshot(40)), 'accept');
      assert.equal(latestSlot(), 40);
      const counts = Object.fromEntries((await metrics.registrySnapshots.get()).values.map((v) => [v.labels.result, v.value]));
      assert.deepEqual(counts, { accepted: 2, stale: 2, 'bad-signature': 2, 'wrong-chain': 1, malformed: 1 });
    });

    it('ignores a snapshot dated beyond the next slot before checking its signature', async () => {
      let slot = 10;
      const view = new RegistryView(G, metrics, log, { now: () => G.genesisTime + slot * SLOT_MS + 1 });
      // Ignored, not rejected: its relay may only have a clock ahead of ours (floods are scored as spam).
      assert.equal(view.validate(snapshot(12)), 'ignore');
      // Signed by an impostor: had it been verified it would count as a bad signature.
      assert.equal(view.validate(snapshot(1_000_000, impostor)), 'ignore');
      const counts = Object.fromEntries((await metrics.registrySnapshots.get()).values.map((v) => [v.labels.result, v.value]));
      assert.deepEqual(counts, { implausible: 2 });
      assert.equal(view.latest, null);
      assert.equal(view.validate(snapshot(11)), 'accept', 'one slot ahead: clock skew');
      slot = 11;
      assert.equal(view.validate(snapshot(12)), 'accept');
    });

    it('hands the peers of every newer snapshot, with the beacon, to the trust hook', () => {
      const trusted: string[][] = [];
      const view = new RegistryView(G, metrics, log, { now: inSlot100, trust: (ids) => trusted.push(ids) });
      const p = [
        { validator: rawAddr(vals[0]!), peerId: '12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf' },
        { validator: rawAddr(vals[1]!), peerId: '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo' },
      ].sort((a, b) => compareBytes(a.validator, b.validator));
      assert.deepEqual(view.trustedPeers(), [G.beacon.peerId], 'the beacon before any snapshot');
      assert.equal(view.validate(snapshot(10, beaconKey, CHAIN, p)), 'accept');
      assert.deepEqual(trusted, [[G.beacon.peerId, ...p.map((x) => x.peerId)]]);
      // Old and forged snapshots change nothing.
      assert.equal(view.validate(snapshot(9, beaconKey, CHAIN, [])), 'ignore');
      assert.equal(view.validate(snapshot(20, impostor, CHAIN, [])), 'reject');
      assert.equal(trusted.length, 1);
      // A newer one replaces the set (here: nobody said hello since).
      assert.equal(view.validate(snapshot(20)), 'accept');
      assert.deepEqual(trusted[1], [G.beacon.peerId]);
    });
  });

  // ------------------------------------------------------------------ API

  describe('API', () => {
    let server: Server;
    let url: string;
    let registry: RegistryView;
    let mempool: Mempool;

    // POST /v1/evidence is tested in evidence.test.ts, with a real XShard and a beacon peer over libp2p.
    beforeEach(async () => {
      registry = new RegistryView(G, metrics, log, { now: inSlot100 });
      mempool = new Mempool(chain, verifier);
      ({ server, url } = await startTestApi({ chain, verifier, metrics, log, xshard: { registry } }, { mempool }));
    });
    afterEach(async () => {
      await new Promise<void>((r) => server.close(() => r()));
    });

    const get = async (path: string) => {
      const r = await fetch(url + path);
      return { status: r.status, body: (await r.json()) as Record<string, any> };
    };
    const errorCode = (r: { body: Record<string, any> }) => (r.body.error as { code: string } | undefined)?.code;

    it('GET /v1/validators: the committee before a snapshot, the beacon registry after', async () => {
      const before = await get('/v1/validators');
      assert.equal(before.status, 200);
      assert.equal(before.body.source, 'committee');
      assert.equal(before.body.epoch, 0);
      assert.equal(before.body.totals, null);
      assert.equal(before.body.validators.length, 4);
      assert.equal(before.body.committee.length, 4);
      const v0 = before.body.validators.find((v: { address: string }) => v.address === addrOf(vals[0]!));
      assert.equal(v0.publicKey, toHex(vals[0]!.publicKey));
      assert.equal(v0.home, addrOf(vals[0]!));

      assert.equal(registry.validate(snapshot(12)), 'accept');
      const after = await get('/v1/validators');
      assert.equal(after.body.source, 'beacon-snapshot');
      assert.equal(after.body.slot, 12);
      assert.equal(after.body.validators.length, 5);
      assert.equal(after.body.totals.held, '5428');
      const nv = after.body.validators.find((v: { address: string }) => v.address === addrOf(newValidator));
      assert.equal(nv.status, 'pending');
      assert.equal(nv.publicKey, null, 'not in any committee the epoch book knows');
      assert.equal(after.body.validators.find((v: { address: string }) => v.address === addrOf(vals[1]!)).publicKey, toHex(vals[1]!.publicKey));

      const one = await get(`/v1/validators/${addrOf(newValidator)}`);
      assert.equal(one.status, 200);
      assert.equal(one.body.home, addrOf(users[0]!));
      assert.equal(one.body.stake, '5000');
      const unknown = await get(`/v1/validators/${addrOf(impostor)}`);
      assert.equal(unknown.status, 404);
      assert.equal(errorCode(unknown), 'VALIDATOR_UNKNOWN');
      assert.equal((await get('/v1/validators/nope')).status, 400);
      const fallback = await get(`/v1/validators/${addrOf(vals[3]!)}`);
      assert.equal(fallback.body.address, addrOf(vals[3]!));
    });

    it('GET /v1/committees (as on the beacon; /v1/committee the same): an epoch the book knows, EPOCH_UNKNOWN otherwise', async () => {
      const c0 = await get('/v1/committees?epoch=0');
      assert.deepEqual((await get('/v1/committee?epoch=0')).body, c0.body);
      assert.equal(c0.status, 200);
      assert.equal(c0.body.epoch, 0);
      assert.equal(c0.body.source, 'genesis');
      assert.equal(c0.body.members.length, 4);
      assert.equal(c0.body.totalStake, '400');
      assert.equal((await get('/v1/committees')).body.epoch, 0);
      const c5 = await get('/v1/committees?epoch=5');
      assert.equal(c5.status, 503);
      assert.equal(errorCode(c5), 'EPOCH_UNKNOWN');
      assert.equal((await get('/v1/committee?epoch=-1')).status, 400);
    });

    it('GET /v1/supply counts pending proposer fees in the identity; GET /v1/txs shows a stake', async () => {
      const t = transferTx(users[0]!, users[1]!, 100n, 0n, 10n);
      const s = stakeTx(users[2]!, newValidator);
      assert.equal(await mempool.admit(t), 'added');
      assert.equal(await mempool.admit(s), 'added');
      const c = build(1, mempool.select(10));
      assert.equal(c.envs.length, 2);
      await chain.commit(c, certify(c));
      mempool.onCommit(c.envs);
      const sup = await get('/v1/supply');
      assert.equal(sup.status, 200);
      assert.ok(BigInt(sup.body.fees) > 0n, JSON.stringify(sup.body));
      assert.equal(sup.body.escrow, '5000');
      assert.equal(sup.body.total, genesisSupply(G, 0).toString());
      assert.equal(BigInt(sup.body.balances) + BigInt(sup.body.burned) + BigInt(sup.body.fees) + BigInt(sup.body.escrow) + BigInt(sup.body.exported) - BigInt(sup.body.imported), BigInt(sup.body.total));

      const tx = await get(`/v1/txs/${s.hashHex}`);
      assert.equal(tx.status, 200);
      assert.equal(tx.body.kind, 'stake');
      assert.equal(tx.body.validator, addrOf(newValidator));
      assert.equal(tx.body.amount, '5000');
      assert.equal(tx.body.status, 'final');
    });
  });

  // ------------------------------------------------------------------ xshard: evidence and participation reports

  describe('beacon reports', () => {
    function fakes(answer: (req: BeaconRequest) => XAck | Error) {
      const requests: BeaconRequest[] = [];
      const p2p = {
        peerId: '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo',
        handle: async () => undefined,
        subscribe: () => undefined,
        penalize: () => undefined,
        async *request(_peer: string, _proto: string, data: Uint8Array) {
          const req = decodeBeaconRequest(data);
          requests.push(req);
          const a = answer(req);
          if (a instanceof Error) throw a;
          yield encodeXAck(a);
        },
      } as unknown as P2PNode;
      const engine = {
        commitListeners: [] as ((c: Candidate, cert: Certificate, changes: StateChanges) => void)[],
        evidenceListeners: [] as ((e: VoteEvidence) => void)[],
        run: async <T>(f: () => T) => f(),
      };
      return { p2p, engine, requests };
    }

    function unlocked(k: KeyPair): UnlockedKey {
      return { ...k, address: rawAddr(k), seed: new Uint8Array(32) };
    }

    const noChanges = (): StateChanges => ({ accounts: new Map(), xfers: new Map(), pendingFees: new Map(), counters: nativeCounters(chain.state) }) as unknown as StateChanges;

    it('forwards each piece of evidence once, retrying while the beacon is unreachable', async () => {
      let fail = 1;
      const { p2p, engine, requests } = fakes(() => (fail-- > 0 ? new Error('unreachable') : { ok: true, code: 'SLASHED', message: '' }));
      const xs = new XShard(chain, engine as unknown as Engine, new Mempool(chain, verifier), p2p, {} as TxGossip, null, metrics, log);
      await xs.start();
      try {
        const e = equivocation(vals[0]!);
        for (const l of engine.evidenceListeners) l(e);
        for (const l of engine.evidenceListeners) l(equivocation(vals[0]!)); // same key: not sent again
        await new Promise((r) => setTimeout(r, 1500));
        assert.deepEqual(requests.map((r) => r.type), ['evidence', 'evidence']);
        const counts = Object.fromEntries((await metrics.evidenceForwarded.get()).values.map((v) => [v.labels.result, v.value]));
        assert.deepEqual(counts, { unreachable: 1, ok: 1 });
      } finally {
        xs.stop();
      }
    });

    it('the proposer reports its block even without records; other members only blocks with records', async () => {
      const c = build(1, []);
      const cert = certify(c);
      const proposer = keyFor(chain.proposerFor(1)!);
      const other = vals.find((k) => k !== proposer)!;
      for (const [k, expected] of [
        [proposer, 1],
        [other, 0],
      ] as const) {
        const { p2p, engine, requests } = fakes(() => ({ ok: true, code: '', message: '' }));
        const xs = new XShard(chain, engine as unknown as Engine, new Mempool(chain, verifier), p2p, {} as TxGossip, unlocked(k), metrics, log);
        await xs.start();
        try {
          for (const l of engine.commitListeners) l(c, cert, noChanges());
          await new Promise((r) => setTimeout(r, 50));
          const reports = requests.filter((r) => r.type === 'report');
          assert.equal(reports.length, expected, addrOf(k));
          if (expected) {
            const rep = reports[0]!;
            assert.ok(rep.type === 'report');
            assert.equal(rep.report.items.length, 0);
            assert.equal(rep.report.header.height, 1);
            assert.equal(rep.report.certificate.votes.length, 4);
          }
        } finally {
          xs.stop();
        }
      }
    });
  });
});
