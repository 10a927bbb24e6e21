import { sendMsg } from '@qnexus/state';
// What the sync tests share: real nodes (store, chain, engine, syncer) on real libp2p peers, a
// stand-in verify pool, and certified blocks built from known keys.
import { join } from 'node:path';
import { addressFromPublicKey, formatAddress, generateKeyPair, getBackend, type KeyPair } from '@qnexus/crypto';
import { certificateVoteBody, encodeTx, openTx, txSigningBytes, voteSigningBytes, type Certificate, type Genesis, type TxEnvelope } from '@qnexus/types';
import { ChainStore } from '@qnexus/db';
import { createP2PNode, topics, type P2PNode } from '@qnexus/p2p';
import { Chain, type Candidate } from '../src/chain.js';
import { Engine } from '../src/engine.js';
import type { Logger } from '@qnexus/runtime';
import { Mempool } from '../src/mempool.js';
import { createMetrics, type Metrics } from '../src/metrics.js';
import { Syncer } from '../src/sync.js';
import { TxVerifier } from '../src/verifier.js';
import type { VerifyPool } from '../src/verify-pool.js';

const b = getBackend('ml-dsa-44');

/** The keys of the sync tests' genesis (`unitGenesis(validators, beacon, …)`) and of a funded user and a recipient. */
export const validators: KeyPair[] = [1, 2, 3, 4].map((i) => generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(i)));
export const user = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(50));
export const sink = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(60));
export const beaconKey = generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(70));
export const addrOf = (k: KeyPair): string => formatAddress(addressFromPublicKey(k.publicKey));

/**
 * A stand-in for the worker pool (its workers only load from the built dist): verdicts come back
 * asynchronously, each after a random short delay so they settle out of order, and every ask is counted.
 */
export function fakePool(): VerifyPool & { asked: number } {
  const pool = {
    asked: 0,
    verify: async (pk: Uint8Array, msg: Uint8Array, sig: Uint8Array) => {
      pool.asked++;
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 5)));
      return b.verify(pk, msg, sig);
    },
    close: async () => undefined,
  };
  return pool as unknown as VerifyPool & { asked: number };
}

export interface SyncPeer {
  chain: Chain;
  store: ChainStore;
  p2p: P2PNode;
  engine: Engine;
  syncer: Syncer;
  metrics: Metrics;
  pool: VerifyPool | null;
  /** Every penalty it handed out: [peer id, reason]. */
  penalties: [string, string][];
}

/** Shard-0 nodes of the genesis `env()` gives, each with its store under `env().dir`; `stopAll` after each test. */
export class SyncPeers {
  private readonly started: SyncPeer[] = [];

  constructor(
    private readonly env: () => { dir: string; genesis: Genesis },
    private readonly log: Logger,
  ) {}

  /** A node; with `serve` (the default) its syncer runs (handlers and the tick loop), else the test drives its ticks. */
  async peer(name: string, opts: { pool?: VerifyPool | null; serve?: boolean } = {}): Promise<SyncPeer> {
    const { dir, genesis } = this.env();
    const metrics = createMetrics();
    const pool = opts.pool ?? null;
    const verifier = new TxVerifier('ml-dsa-44', metrics, pool);
    const store = await ChainStore.open(join(dir, name));
    const chain = await Chain.open(store, genesis, 0, verifier, this.log);
    const p2p = await createP2PNode({ peerKeyPath: join(dir, `${name}.key`), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], maxMessageBytes: 4 * 1024 * 1024, log: () => undefined });
    await chain.epochs.start(p2p);
    const t = topics(genesis.chainId, 0);
    const engine = new Engine(chain, new Mempool(chain, verifier), p2p, verifier, null, t, metrics, this.log);
    await engine.start();
    const syncer = new Syncer(chain, engine, p2p, t, metrics, this.log);
    syncer.reporterOptions = { out: { isTTY: false, write: () => true }, logEveryMs: 1e9 };
    if (opts.serve ?? true) await syncer.start();
    const penalties: [string, string][] = [];
    const penalize = p2p.penalize.bind(p2p);
    p2p.penalize = (id: string, reason: string) => {
      penalties.push([id, reason]);
      penalize(id, reason);
    };
    const p = { chain, store, p2p, engine, syncer, metrics, pool, penalties };
    this.started.push(p);
    return p;
  }

  async stopAll(): Promise<void> {
    for (const p of this.started.splice(0)) {
      p.syncer.stop();
      await p.engine.stop();
      p.chain.epochs.stop();
      await p.p2p.stop();
      await p.store.close();
      await p.pool?.close();
    }
  }
}

/** A finality certificate of `c` for `round`, signed by `signers`. */
export function certify(genesis: Genesis, c: Candidate, round: number, signers: readonly KeyPair[]): Certificate {
  const cert: Certificate = { height: c.block.header.height, round, blockHash: c.hash, votes: [] };
  for (const s of signers) {
    const validator = addressFromPublicKey(s.publicKey);
    cert.votes.push({ validator, signature: b.sign(s.secretKey, voteSigningBytes(certificateVoteBody(cert, genesis.chainId, 0, validator))) });
  }
  return cert;
}

/** `n` signed transfers of 5 from `from` to `to`, nonces from `nonce`. */
export function transfers(genesis: Genesis, from: KeyPair, to: KeyPair, nonce: bigint, n: number): TxEnvelope[] {
  const txs: TxEnvelope[] = [];
  for (let i = 0; i < n; i++) {
    const body = { chainId: genesis.chainId, nonce: nonce + BigInt(i), fee: 1n, publicKey: from.publicKey, payload: sendMsg('transfer', { to: addressFromPublicKey(to.publicKey), amount: 5n }) };
    txs.push(openTx(encodeTx({ body, signature: b.sign(from.secretKey, txSigningBytes(body)) })));
  }
  return txs;
}

/**
 * Commit `blocks` blocks of `txs` transfers each (user → sink) on `p`, one a slot from `firstSlot`
 * (on top of the blocks of the slots before it), each certified by 3 of the 4 validators; `tamper`
 * may replace a slot's candidate or certificate. commit() trusts its
 * caller: this is the history `p` serves, right or wrong.
 */
export async function certifiedHistory(
  p: SyncPeer,
  genesis: Genesis,
  blocks: number,
  txs: number,
  tamper: (slot: number, c: Candidate, cert: Certificate) => Candidate = (_slot, c) => c,
  firstSlot = 1,
): Promise<void> {
  const keyOf = (address: string): KeyPair => validators.find((v) => addrOf(v) === address)!;
  for (let slot = firstSlot; slot < firstSlot + blocks; slot++) {
    const k = keyOf(p.chain.proposerFor(slot)!);
    const c = p.chain.build(slot, transfers(genesis, user, sink, BigInt((slot - 1) * txs), txs), addressFromPublicKey(k.publicKey), (m) => b.sign(k.secretKey, m));
    if (c.envs.length !== txs) throw new Error(`block ${slot} took ${c.envs.length} of ${txs} transfers`);
    const cert = certify(genesis, c, slot, validators.filter((v) => v !== k).slice(0, 3));
    const served = tamper(slot, c, cert);
    await p.engine.run(() => p.chain.commit(served, cert));
  }
}
