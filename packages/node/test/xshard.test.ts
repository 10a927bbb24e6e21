// Chain and mempool on a two-shard genesis: cross-shard transfers, beacon system entries, persistence, report chunks.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressFromPublicKey, formatAddress, generateKeyPair, getBackend, homeShard, toHex, type KeyPair } from '@qnexus/crypto';
import {
  MAX_REPORT_ITEMS,
  QnexusError,
  certificateVoteBody,
  encodeBeaconRequest,
  encodeTx,
  genesisSupply,
  openTx,
  txRoot,
  txSigningBytes,
  voteSigningBytes,
  type Certificate,
  type AnyErrorCode,
  encodeXDecision,
  encodeXPrepare,
  type BlockHeader,
  type Genesis,
  type ReportItem,
  type TxBody,
  type TxEnvelope,
  type TxMsg,
  type XferInfo,
} from '@qnexus/types';
import { epochCommittees, sendMsg, verifyXferProof } from '@qnexus/state';
import { ChainStore } from '@qnexus/db';
import { Chain, candidateFromEnvs, type Candidate } from '../src/chain.js';
import { Logger } from '@qnexus/runtime';
import { Mempool } from '../src/mempool.js';
import { createMetrics } from '../src/metrics.js';
import { TxVerifier } from '../src/verifier.js';
import { reportChunks } from '../src/xshard.js';
import { unitGenesis, nativeCounters, userBalances, pendingFees } from './helpers.js';

const CHAIN = 'unit-x';
const TIMEOUT = 16;
const b = getBackend('ml-dsa-44');
const vals: KeyPair[] = [1, 2, 3, 4].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
const beaconKey = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(70));
const impostor = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(71));
const users: KeyPair[] = Array.from({ length: 12 }, (_, i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(100 + i)));
const addrOf = (k: KeyPair) => formatAddress(addressFromPublicKey(k.publicKey));
const rawAddr = (k: KeyPair) => addressFromPublicKey(k.publicKey);
const hexOf = (k: KeyPair) => toHex(rawAddr(k));
const onShard = (s: number) => users.filter((k) => homeShard(rawAddr(k), 2) === s);
const INITIAL = 1_000_000n;

function genesis(): Genesis {
  return unitGenesis(vals, beaconKey, { chainId: CHAIN, shardCount: 2, xferTimeoutSlots: TIMEOUT, accounts: users.map((k) => ({ address: addrOf(k), balance: INITIAL })) });
}

const G = genesis();

function keyFor(address: string): KeyPair {
  const k = vals.find((v) => addrOf(v) === address);
  if (!k) throw new Error(`no key for ${address}`);
  return k;
}

function userTx(kind: 'transfer' | 'xtransfer', from: KeyPair, to: KeyPair | Uint8Array, amount: bigint, nonce = 0n, fee = 1n): TxEnvelope {
  const body: TxBody = { chainId: CHAIN, nonce, fee, publicKey: from.publicKey, payload: sendMsg(kind, { to: to instanceof Uint8Array ? to : rawAddr(to), amount }) };
  return openTx(encodeTx({ body, signature: b.sign(from.secretKey, txSigningBytes(body)) }));
}

/** A beacon entry; `publicKey` defaults to the signer's (so an impostor signs with its own key unless told otherwise). */
function systemTx(payload: TxMsg, signer: KeyPair = beaconKey, publicKey: Uint8Array = signer.publicKey): TxEnvelope {
  const body: TxBody = { chainId: CHAIN, nonce: 0n, fee: 0n, publicKey, payload };
  return openTx(encodeTx({ body, signature: b.sign(signer.secretKey, txSigningBytes(body)) }));
}

const prepare = (x: XferInfo, signer?: KeyPair, publicKey?: Uint8Array) => systemTx(encodeXPrepare(x), signer, publicKey);
const decision = (x: XferInfo, commit: boolean) => systemTx(encodeXDecision(x, commit));

async function rejectsCode(p: Promise<unknown>, code: AnyErrorCode, re?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof QnexusError, String(e));
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return true;
  });
}

describe('node: two-shard chain and beacon entries', () => {
  const log = new Logger('json', 'error');
  const metrics = createMetrics();
  const verifier = new TxVerifier('ml-dsa-44', metrics);
  const sender = onShard(0)[0]!;
  const recipient = onShard(1)[0]!;
  const dirs: string[] = [];
  const stores: ChainStore[] = [];

  async function openChain(shard: number, dir = mkdtempSync(join(tmpdir(), `qnexus-xchain-${shard}-`))): Promise<{ chain: Chain; store: ChainStore; dir: string }> {
    if (!dirs.includes(dir)) dirs.push(dir);
    const store = await ChainStore.open(dir);
    stores.push(store);
    return { chain: await Chain.open(store, G, shard, verifier, log), store, dir };
  }

  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close().catch(() => undefined);
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  /** Build the next block at `slot` (signed by its scheduled proposer) from the given candidates. */
  function build(chain: Chain, slot: number, txs: TxEnvelope[]): Candidate {
    const proposer = keyFor(chain.proposerFor(slot)!);
    return chain.build(slot, txs, addressFromPublicKey(proposer.publicKey), (m) => b.sign(proposer.secretKey, m));
  }

  /** A certificate signed by the whole committee of the chain's shard. */
  function certify(chain: Chain, c: Candidate): Certificate {
    const cert: Certificate = { height: c.block.header.height, round: c.block.header.slot, blockHash: c.hash, votes: [] };
    for (const m of chain.committeeFor(0)!.committee.validators) {
      const k = keyFor(m.address);
      const validator = addressFromPublicKey(k.publicKey);
      cert.votes.push({ validator, signature: b.sign(k.secretKey, voteSigningBytes(certificateVoteBody(cert, CHAIN, chain.shard, validator))) });
    }
    return cert;
  }

  it('fixture: users on both shards; each shard has its own committee of two', async () => {
    assert.ok(onShard(0).length >= 2 && onShard(1).length >= 2, 'need two users per shard; change the key seeds');
    const cs = epochCommittees(G, 0);
    assert.deepEqual(cs.map((c) => c.validators.length), [2, 2]);
    const { chain } = await openChain(1);
    assert.deepEqual(chain.committeeFor(0)!.committee, cs[1]);
    assert.deepEqual([...chain.committeeFor(0)!.members.keys()].sort(), cs[1]!.validators.map((v) => v.address).sort());
    // the genesis state of a shard holds only its home accounts
    assert.equal(userBalances(chain.state), genesisSupply(G, 1));
    assert.equal(chain.state.account(hexOf(sender)), undefined);
  });

  it('an xtransfer block commits, escrows, and survives a reopen with the same state root and record', async () => {
    const { chain, store, dir } = await openChain(0);
    const mp = new Mempool(chain, verifier);
    const x = userTx('xtransfer', sender, recipient, 4321n, 0n, 3n);
    assert.equal(await mp.admit(x), 'added');
    // a plain transfer across shards and an xtransfer within the shard are refused at admission
    await rejectsCode(mp.admit(userTx('transfer', sender, recipient, 1n, 1n)), 'TX_CROSS_SHARD');
    await rejectsCode(mp.admit(userTx('xtransfer', sender, onShard(0)[1]!, 1n, 1n)), 'TX_SAME_SHARD');
    await rejectsCode(mp.admit(userTx('xtransfer', recipient, sender, 1n)), 'TX_WRONG_SHARD');
    // the pending escrow counts against the sender's balance
    await rejectsCode(mp.admit(userTx('xtransfer', sender, recipient, INITIAL - 4324n + 1n, 1n)), 'TX_INSUFFICIENT_FUNDS');

    const slot = 3;
    const c = build(chain, slot, mp.select(100));
    assert.deepEqual(c.envs.map((e) => e.hashHex), [x.hashHex]);
    assert.equal(chain.validate(c, 1), null);
    const changes = await chain.commit(c, certify(chain, c));
    mp.onCommit(c.envs);
    assert.equal(mp.size, 0);
    // commit returns the state changes it applied, including the new transfer record
    assert.deepEqual([...changes.xfers.keys()], [x.hashHex]);
    // fee 3: half (floor) burned, the rest pending for the block's proposer
    assert.deepEqual(nativeCounters(chain.state), { burned: 1n, escrow: 4321n, exported: 0n, imported: 0n, fees: 2n, feeEpoch: 0 });
    const counters = nativeCounters(chain.state);
    assert.deepEqual(pendingFees(chain.state), [[toHex(c.block.header.proposer), 2n]]);
    const rec = chain.state.xfer(x.hashHex)!;
    assert.deepEqual(rec.info, { module: 1, op: 1, denom: 'qfc', payload: new Uint8Array(0), id: x.hash, srcShard: 0, dstShard: 1, from: rawAddr(sender), to: rawAddr(recipient), amount: 4321n, deadlineSlot: slot + TIMEOUT });
    assert.equal(rec.preparedHeight, 1);
    assert.equal(chain.state.account(hexOf(sender))!.balance, INITIAL - 4324n);
    assert.deepEqual(chain.headStateRoot, chain.state.root());
    const root = chain.state.root();

    await store.close();
    stores.splice(stores.indexOf(store), 1);
    const again = (await openChain(0, dir)).chain;
    assert.equal(again.headHeight, 1);
    assert.equal(again.headSlot, slot);
    assert.deepEqual(again.state.root(), root);
    assert.deepEqual(again.state.xfer(x.hashHex), rec);
    assert.deepEqual(nativeCounters(again.state), counters);
    // the reloaded chain's proof of the record verifies against the committed header root
    const [item] = again.state.proveXfers([x.hashHex]);
    assert.ok(item);
    assert.deepEqual(verifyXferProof(again.headStateRoot, item), rec);
  });

  it('importCertified of a block with beacon entries returns the candidate and its changes', async () => {
    const src = await openChain(0);
    const dst = await openChain(1);
    const x = userTx('xtransfer', sender, recipient, 50n);
    const c0 = build(src.chain, 1, [x]);
    await src.chain.commit(c0, certify(src.chain, c0));
    const info = src.chain.state.xfer(x.hashHex)!.info;
    // the destination imports a certified block carrying the prepare (as sync would)
    const c1 = build(dst.chain, 2, [prepare(info)]);
    assert.equal(c1.envs.length, 1);
    const { candidate, changes } = await dst.chain.importCertified(c1.block, c1.raw, certify(dst.chain, c1));
    assert.equal(candidate.hashHex, c1.hashHex);
    assert.equal(changes.xfers.get(x.hashHex)!.prepare, 'accepted');
    assert.equal(dst.chain.state.xfer(x.hashHex)!.role, 'destination');
    // then the commit decision credits the recipient
    const c2 = build(dst.chain, 3, [decision(info, true)]);
    await dst.chain.commit(c2, certify(dst.chain, c2));
    assert.equal(nativeCounters(dst.chain.state).imported, 50n);
    assert.equal(dst.chain.state.account(hexOf(recipient))!.balance, INITIAL + 50n);
  });

  it('validate refuses blocks whose beacon entries are forged or not from the beacon', async () => {
    const { chain } = await openChain(1);
    const info: XferInfo = { module: 1, op: 1, denom: 'qfc', id: new Uint8Array(32).fill(5), srcShard: 0, dstShard: 1, from: rawAddr(sender), to: rawAddr(recipient), amount: 10n, deadlineSlot: 100, payload: new Uint8Array(0) };
    const good = build(chain, 1, [prepare(info)]);
    assert.equal(chain.validate(good, 1), null);
    // as received from the network: no cached execution, header rebuilt around the given entries
    const asReceived = (envs: TxEnvelope[]) =>
      candidateFromEnvs({ ...good.block.header, txRoot: txRoot(envs.map((e) => e.hash)), txCount: envs.length }, good.block.signature, envs);
    // beacon public key, signature by another key: the signature check fails
    assert.match(chain.validate(asReceived([prepare(info, impostor, beaconKey.publicKey)]), 1) ?? '', /bad signature/);
    // another key altogether: the state rules refuse it
    assert.match(chain.validate(asReceived([prepare(info, impostor)]), 1) ?? '', /XS_UNAUTHORIZED/);
    // a prepare for the other shard
    assert.match(chain.validate(asReceived([prepare({ ...info, srcShard: 1, dstShard: 0 })]), 1) ?? '', /XS_WRONG_SHARD/);
  });

  it('the mempool admits beacon entries for this shard only, puts them first, and reports replays via onStaleSystem', async () => {
    const { chain } = await openChain(1);
    const mp = new Mempool(chain, verifier);
    const stale: [string, AnyErrorCode][] = [];
    mp.onStaleSystem = (env, code) => stale.push([env.hashHex, code]);
    const info: XferInfo = { module: 1, op: 1, denom: 'qfc', id: new Uint8Array(32).fill(7), srcShard: 0, dstShard: 1, from: rawAddr(sender), to: rawAddr(recipient), amount: 900n, deadlineSlot: 50, payload: new Uint8Array(0) };

    const p = prepare(info);
    const local = userTx('transfer', onShard(1)[1]!, recipient, 5n);
    assert.equal(await mp.admit(local), 'added');
    assert.equal(await mp.admit(p), 'added');
    assert.equal(await mp.admit(p), 'known');
    assert.equal(mp.size, 2);
    assert.equal(mp.get(p.hashHex), p);
    // refused: another key (XS_UNAUTHORIZED), the beacon's key with a forged signature (XS_UNAUTHORIZED), another shard (XS_WRONG_SHARD)
    await rejectsCode(mp.admit(prepare({ ...info, id: new Uint8Array(32).fill(8) }, impostor)), 'XS_UNAUTHORIZED');
    await rejectsCode(mp.admit(prepare({ ...info, id: new Uint8Array(32).fill(9) }, impostor, beaconKey.publicKey)), 'XS_UNAUTHORIZED', /signature/);
    await rejectsCode(mp.admit(prepare({ ...info, id: new Uint8Array(32).fill(10), srcShard: 1, dstShard: 0 })), 'XS_WRONG_SHARD');
    // an authentic commit for a transfer this shard has not prepared yet is held (a node a block
    // behind its peers), but the builder cannot apply it until the prepare is final here
    const held = decision({ ...info, id: new Uint8Array(32).fill(12) }, true);
    assert.equal(await mp.admit(held), 'added');
    assert.equal(mp.size, 3);
    assert.deepEqual(stale, [], 'none of these is a replay');

    // beacon entries come first in a block
    const sel = mp.select(10);
    assert.deepEqual(sel.map((e) => e.hashHex), [p.hashHex, held.hashHex, local.hashHex]);
    const c1 = build(chain, 1, sel);
    assert.deepEqual(c1.envs.map((e) => e.hashHex), [p.hashHex, local.hashHex]);
    await chain.commit(c1, certify(chain, c1));
    mp.onCommit(c1.envs);
    assert.equal(mp.size, 1, 'the held commit stays until its prepare is final here');
    assert.equal(chain.state.xfer(toHex(info.id))!.prepare, 'accepted');

    // the same prepare again (the beacon missed our report): refused, and reported as stale
    await rejectsCode(mp.admit(prepare(info)), 'XS_DUPLICATE');
    assert.deepEqual(stale, [[p.hashHex, 'XS_DUPLICATE']]);

    // the decision is admitted now, committed, and its replay is reported too
    const d = decision(info, true);
    assert.equal(await mp.admit(d), 'added');
    const c2 = build(chain, 2, mp.select(10));
    assert.deepEqual(c2.envs.map((e) => e.hashHex), [d.hashHex]);
    await chain.commit(c2, certify(chain, c2));
    mp.onCommit(c2.envs);
    assert.equal(mp.size, 1);
    assert.equal(chain.state.account(hexOf(recipient))!.balance, INITIAL + 5n + 900n);
    await rejectsCode(mp.admit(d), 'XS_ALREADY_DECIDED');
    assert.deepEqual(stale[1], [d.hashHex, 'XS_ALREADY_DECIDED']);
    assert.equal(stale.length, 2);
  });

  it('a committed decision makes a pending prepare of the same transfer moot: onCommit drops it as rejected', async () => {
    const { chain } = await openChain(1);
    const mp = new Mempool(chain, verifier);
    const info: XferInfo = { module: 1, op: 1, denom: 'qfc', id: new Uint8Array(32).fill(11), srcShard: 0, dstShard: 1, from: rawAddr(sender), to: rawAddr(recipient), amount: 1n, deadlineSlot: 50, payload: new Uint8Array(0) };
    const p = prepare(info);
    assert.equal(await mp.admit(p), 'added');
    // another node's block carries the beacon's abort (presumed abort) before our prepare got in
    const abort = decision(info, false);
    const c = build(chain, 1, [abort]);
    await chain.commit(c, certify(chain, c));
    mp.onCommit(c.envs);
    assert.equal(mp.size, 0);
    assert.equal(mp.get(p.hashHex), undefined);
    assert.equal(mp.rejection(p.hashHex)?.code, 'XS_ALREADY_DECIDED');
    // and a block builder skips such a stale entry rather than producing an invalid block
    const c2 = build(chain, 2, [p]);
    assert.equal(c2.envs.length, 0);
    assert.equal(chain.validate(c2, 2), null);
  });
});

const dummyHeader: BlockHeader = { chainId: CHAIN, shard: 0, height: 1, slot: 1, parentHash: new Uint8Array(32), stateRoot: new Uint8Array(32), txRoot: new Uint8Array(32), proposer: new Uint8Array(20), txCount: 0 };

describe('node: reports to the beacon', () => {
  it('split records into chunks that fit the beacon\'s request bound, in order, none split', () => {
    const item = (n: number, recordBytes: number, proofNodes = 6): ReportItem => ({ record: new Uint8Array(recordBytes).fill(n & 0xff), proof: Array.from({ length: proofNodes }, () => new Uint8Array(300)) });
    // Stake records carry a public key: 1,024 of them would not fit in one report.
    const big = Array.from({ length: 1500 }, (_, i) => item(i, 2700));
    const chunks = reportChunks(big);
    assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
    assert.deepEqual(chunks.flat(), big);
    for (const c of chunks) {
      const bytes = encodeBeaconRequest({ type: 'report', report: { binding: { binding: { chainId: CHAIN, shard: 0, publicKey: vals[0]!.publicKey, peerId: 'p' }, signature: new Uint8Array(2420) }, header: dummyHeader, certificate: { height: 1, round: 1, blockHash: new Uint8Array(32), votes: [] }, items: c } }).length;
      assert.ok(bytes < 1.1 * 1024 * 1024, `a report of ${bytes} bytes`);
    }
    // Small records: MAX_REPORT_ITEMS per report.
    const small = Array.from({ length: MAX_REPORT_ITEMS + 1 }, (_, i) => item(i, 100, 1));
    assert.deepEqual(reportChunks(small).map((c) => c.length), [MAX_REPORT_ITEMS, 1]);
    assert.deepEqual(reportChunks([]), []);
  });
});
