import { sendMsg } from '@qnexus/state';
// A settled cross-shard record is pruned by the chain's own blocks, and a replay of its beacon entries
// is still refused after the data dir is closed and reopened (real LevelDB, the node's admission path).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressFromPublicKey, formatAddress, generateKeyPair, getBackend, homeShard, toHex, type KeyPair } from '@qnexus/crypto';
import {
  QnexusError,
  XFER_RETENTION_SLOTS,
  makeGenesis,
  certificateVoteBody,
  encodeTx,
  encodeXDecision,
  encodeXPrepare,
  openTx,
  txSigningBytes,
  voteSigningBytes,
  type Certificate,
  type Genesis,
  type TxBody,
  type TxEnvelope,
  type TxMsg,
  type XferInfo,
} from '@qnexus/types';
import { ChainStore } from '@qnexus/db';
import { Chain, type Candidate } from '../src/chain.js';
import { Logger } from '@qnexus/runtime';
import { Mempool } from '../src/mempool.js';
import { createMetrics } from '../src/metrics.js';
import { TxVerifier } from '../src/verifier.js';

const CHAIN = 'unit-xfer-prune';
const TIMEOUT = 16;
const b = getBackend('ml-dsa-44');
const vals: KeyPair[] = [1, 2, 3, 4].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
const beaconKey = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(70));
const users: KeyPair[] = Array.from({ length: 8 }, (_, i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(120 + i)));
const rawAddr = (k: KeyPair) => addressFromPublicKey(k.publicKey);
const addrOf = (k: KeyPair) => formatAddress(rawAddr(k));
const onShard = (s: number) => users.filter((k) => homeShard(rawAddr(k), 2) === s);
// One epoch covers every slot the test uses (the window is the chain's default), so epoch 0's committee runs them all.
const G: Genesis = makeGenesis({
  chainId: CHAIN,
  scheme: 'ml-dsa-44',
  genesisTime: 0,
  slotMs: 1000,
  epochLength: 1_000_000,
  shardCount: 2,
  minFee: 1n,
  maxBlockTxs: 100,
  xferTimeoutSlots: TIMEOUT,
  beacon: { publicKey: beaconKey.publicKey, peerId: '12D3KooWJWEKvSFbben74C7H4YtKjhPMTDxd7gP7zxWSUEeF27st' },
  accounts: users.map((k) => ({ address: addrOf(k), balance: 1_000_000n })),
  validators: vals.map((k) => ({ address: addrOf(k), publicKey: k.publicKey, stake: 100n })),
});
/** Every denom's supply identity terms (balances, escrow, exported, imported…) and the sender's balance. */
const money = (c: Chain, parties: KeyPair[]) => ({ totals: c.state.denomTotals(), balances: parties.map((k) => c.state.account(hexOf(k))?.balance) });
const hexOf = (k: KeyPair) => toHex(rawAddr(k));

function signed(body: TxBody, k: KeyPair): TxEnvelope {
  return openTx(encodeTx({ body, signature: b.sign(k.secretKey, txSigningBytes(body)) }));
}
const beaconTx = (payload: TxMsg) => signed({ chainId: CHAIN, nonce: 0n, fee: 0n, publicKey: beaconKey.publicKey, payload }, beaconKey);

describe('node: a pruned cross-shard record stays refused across a restart', () => {
  const log = new Logger('json', 'error');
  const metrics = createMetrics();
  const verifier = new TxVerifier('ml-dsa-44', metrics);
  let dir: string;
  let store: ChainStore;
  let chain: Chain;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qnexus-xfer-prune-'));
    store = await ChainStore.open(dir);
    chain = await Chain.open(store, G, 0, verifier, log);
  });
  after(async () => {
    await store?.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  function keyFor(address: string): KeyPair {
    const k = vals.find((v) => addrOf(v) === address);
    if (!k) throw new Error(`no key for ${address}`);
    return k;
  }
  function certify(c: Candidate): Certificate {
    const cert: Certificate = { height: c.block.header.height, round: c.block.header.slot, blockHash: c.hash, votes: [] };
    for (const m of chain.committeeFor(0)!.committee.validators) {
      const k = keyFor(m.address);
      cert.votes.push({ validator: rawAddr(k), signature: b.sign(k.secretKey, voteSigningBytes(certificateVoteBody(cert, CHAIN, chain.shard, rawAddr(k)))) });
    }
    return cert;
  }
  /** Build, certify and commit a block at `slot`; the transactions that were applied. */
  async function commit(slot: number, txs: TxEnvelope[] = []): Promise<number> {
    const proposer = keyFor(chain.proposerFor(slot)!);
    const c = chain.build(slot, txs, rawAddr(proposer), (m) => b.sign(proposer.secretKey, m));
    await chain.commit(c, certify(c));
    return c.envs.length;
  }
  /** The node's admission of a beacon entry: the code it refuses it with. */
  async function admissionCode(env: TxEnvelope): Promise<string> {
    try {
      await new Mempool(chain, verifier).admit(env);
      return 'added';
    } catch (e) {
      if (e instanceof QnexusError) return e.code;
      throw e;
    }
  }

  it('source side: escrow, commit, pruned a window later; replays refused with XS_PRUNED before and after reopen', async function () {
    this.timeout(60_000);
    const [from] = onShard(0) as [KeyPair];
    const [to] = onShard(1) as [KeyPair];
    const xt = signed({ chainId: CHAIN, nonce: 0n, fee: 1n, publicKey: from.publicKey, payload: sendMsg('xtransfer', { to: rawAddr(to), amount: 500n }) }, from);
    assert.equal(await commit(1, [xt]), 1);
    const x: XferInfo = chain.state.xfer(xt.hashHex)!.info;
    const commitEntry = beaconTx(encodeXDecision(x, true));
    assert.equal(await commit(2, [commitEntry]), 1);
    assert.equal(chain.state.xfer(xt.hashHex)?.decision, 'commit');
    const settled = money(chain, [from]);
    assert.equal(settled.totals[0]!.exported, 500n);
    assert.equal(await admissionCode(commitEntry), 'XS_ALREADY_DECIDED', 'before the window: the record answers');

    // The window is measured from the decision's slot (2); the record's deadline (1 + TIMEOUT) is long past by then.
    const due = 2 + XFER_RETENTION_SLOTS;
    await commit(due - 1);
    assert.ok(chain.state.xfer(xt.hashHex), 'kept until the window ends');
    await commit(due);
    assert.equal(chain.state.xfer(xt.hashHex), undefined, 'pruned by the block at the end of the window');
    assert.deepEqual(money(chain, [from]), settled, 'no value moved');
    const replays = [commitEntry, beaconTx(encodeXDecision(x, false))];
    const expected = due <= x.deadlineSlot + XFER_RETENTION_SLOTS ? 'XS_PRUNED' : 'XS_EXPIRED';
    assert.equal(expected, 'XS_PRUNED', 'decided before its deadline: a tombstone covers the rest of the window');
    for (const env of replays) assert.equal(await admissionCode(env), expected);
    // A proposer leaves them out.
    assert.equal(await commit(due + 1, replays), 0);
    const root = chain.state.root();

    // Reopen the data dir: the same state, the same refusals, and still nothing recreated.
    await store.close();
    store = await ChainStore.open(dir);
    chain = await Chain.open(store, G, 0, verifier, log);
    assert.deepEqual(chain.state.root(), root);
    assert.equal(chain.state.xfer(xt.hashHex), undefined);
    for (const env of replays) assert.equal(await admissionCode(env), 'XS_PRUNED', 'refused after the restart');
    assert.equal(await commit(due + 2, replays), 0);
    assert.equal(chain.state.xfer(xt.hashHex), undefined);
    assert.deepEqual(money(chain, [from]), settled);

    // Once the deadline is a window behind, the tombstone goes and the deadline alone refuses them.
    const forget = x.deadlineSlot + XFER_RETENTION_SLOTS + 1;
    await commit(forget);
    for (const env of replays) assert.equal(await admissionCode(env), 'XS_EXPIRED');
    // And a prepare for it (this shard is its source, so shard 1's would be misrouted): replays of another shape fare the same.
    assert.equal(await admissionCode(beaconTx(encodeXPrepare({ ...x, srcShard: 1, dstShard: 0, to: rawAddr(from) }))), 'XS_EXPIRED');
  });
});
