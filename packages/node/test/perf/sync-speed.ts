import { sendMsg } from '@qnexus/state';
// Block-range sync speed: a fresh node catches up from one peer over real libp2p on 127.0.0.1.
//
//   node --import tsx packages/node/test/perf/sync-speed.ts [--blocks 2000] [--txs-per-block 0] [--workers 2] [--rebuild]
//
// The serving peer's chain (N blocks, each certified by 3 of 4 validators, with K signed transfers
// per block) is built once and cached under $TMPDIR/qnexus-sync-bench/ (building signs 4 + K ML-DSA
// signatures per block, which takes far longer than syncing it). The client is a full node as
// `qnexus node` wires it: a TxVerifier on a VerifyPool of --workers threads, the engine and the syncer.
// It prints blocks/s, the ML-DSA verifications done per block, the sync buffer's peak and the peak RSS.
// Build first (`npx tsc -b`): the verify pool's workers run from packages/node/dist.
//
// Not a mocha test: the unit glob is packages/*/test/**/*.test.ts and this file is not *.test.ts.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { addressFromPublicKey, formatAddress, generateKeyPair, getBackend, type KeyPair } from '@qnexus/crypto';
import { certificateVoteBody, encodeTx, openTx, txSigningBytes, voteSigningBytes, type Certificate, type Genesis, type TxEnvelope } from '@qnexus/types';
import { ChainStore } from '@qnexus/db';
import { createP2PNode, topics, type P2PNode } from '@qnexus/p2p';
import { Chain } from '../../src/chain.js';
import { Engine } from '../../src/engine.js';
import { Logger } from '@qnexus/runtime';
import { Mempool } from '../../src/mempool.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { Syncer } from '../../src/sync.js';
import { TxVerifier } from '../../src/verifier.js';
import type { VerifyPool } from '../../src/verify-pool.js';
import { unitGenesis } from '../helpers.js';

const { values: args } = parseArgs({
  options: {
    blocks: { type: 'string', default: '2000' },
    'txs-per-block': { type: 'string', default: '0' },
    workers: { type: 'string', default: '2' },
    rebuild: { type: 'boolean', default: false },
    /** Signature backend of the syncing node (verifier and pool), where the tree supports choosing one. */
    backend: { type: 'string', default: 'noble' },
  },
});
const BLOCKS = Number(args.blocks);
const TXS = Number(args['txs-per-block']);
const WORKERS = Number(args.workers);
const BACKEND = args.backend!;
const SCHEME = 'ml-dsa-44' as const;
const SENDERS = 10;

const b = getBackend(SCHEME);
const vals: KeyPair[] = [1, 2, 3, 4].map((i) => generateKeyPair(SCHEME, new Uint8Array(32).fill(i)));
const senders: KeyPair[] = Array.from({ length: SENDERS }, (_, i) => generateKeyPair(SCHEME, new Uint8Array(32).fill(100 + i)));
const sink = generateKeyPair(SCHEME, new Uint8Array(32).fill(99));
const beaconKey = generateKeyPair(SCHEME, new Uint8Array(32).fill(70));
const addrOf = (k: KeyPair) => formatAddress(addressFromPublicKey(k.publicKey));

// Genesis yesterday 00:00 UTC: deterministic for a day (so the cached chain matches), and the wall
// clock stays inside epoch 0 (one epoch of 1,000,000 one-second slots), as do all block slots.
const DAY = 86_400_000;
const genesisTime = Math.floor(Date.now() / DAY) * DAY - DAY;
const G: Genesis = unitGenesis(vals, beaconKey, {
  chainId: 'sync-bench',
  genesisTime,
  epochLength: 1_000_000,
  maxBlockTxs: Math.max(100, TXS),
  accounts: senders.map((k) => ({ address: addrOf(k), balance: 10n ** 15n })),
});

const quiet = new Logger('json', 'error');

// The pool's workers load verify-worker.js next to verify-pool.js, which exists only in the built dist
// (run `npx tsc -b` first); everything else runs from source.
const { VerifyPool: DistPool } = (await import(new URL('../../dist/verify-pool.js', import.meta.url).href)) as { VerifyPool: new (scheme: string, size: number, backend?: string) => VerifyPool };

interface Node {
  store: ChainStore;
  chain: Chain;
  p2p: P2PNode;
  engine: Engine;
  syncer: Syncer;
  metrics: Metrics;
  pool: VerifyPool | null;
}

async function openNode(dir: string, pool: VerifyPool | null): Promise<Node> {
  const metrics = createMetrics();
  // The server and the chain builder use the default backend; `--backend` applies to the syncing client.
  const verifier = pool && BACKEND !== 'noble' ? new TxVerifier(SCHEME, metrics, pool, { backend: BACKEND } as never) : new TxVerifier(SCHEME, metrics, pool);
  const store = await ChainStore.open(join(dir, 'db'));
  const chain = await Chain.open(store, G, 0, verifier, quiet);
  const p2p = await createP2PNode({ peerKeyPath: join(dir, 'peer.key'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], maxMessageBytes: 4 * 1024 * 1024, log: () => undefined });
  await chain.epochs.start(p2p);
  const t = topics(G.chainId, 0);
  const engine = new Engine(chain, new Mempool(chain, verifier), p2p, verifier, null, t, metrics, quiet);
  await engine.start();
  const syncer = new Syncer(chain, engine, p2p, t, metrics, quiet);
  syncer.reporterOptions = { out: { isTTY: false, write: () => true }, logEveryMs: 1e9 };
  return { store, chain, p2p, engine, syncer, metrics, pool };
}

async function closeNode(n: Node): Promise<void> {
  n.syncer.stop();
  await n.engine.stop();
  n.chain.epochs.stop();
  await n.p2p.stop();
  await n.store.close();
  await n.pool?.close();
}

const keyFor = (address: string): KeyPair => vals.find((v) => addrOf(v) === address)!;

/** Commit BLOCKS blocks (slots 1..N) with TXS transfers each, certified by 3 of the 4 validators. */
async function buildChain(dir: string): Promise<void> {
  const n = await openNode(dir, null);
  const nonces = senders.map(() => 0n);
  const to = addressFromPublicKey(sink.publicKey);
  const t0 = Date.now();
  for (let slot = 1; slot <= BLOCKS; slot++) {
    const txs: TxEnvelope[] = [];
    for (let i = 0; i < TXS; i++) {
      const s = (slot * TXS + i) % SENDERS;
      const body = { chainId: G.chainId, nonce: nonces[s]!++, fee: 1n, publicKey: senders[s]!.publicKey, payload: sendMsg('transfer', { to: to, amount: 1n }) };
      txs.push(openTx(encodeTx({ body, signature: b.sign(senders[s]!.secretKey, txSigningBytes(body)) })));
    }
    const k = keyFor(n.chain.proposerFor(slot)!);
    const c = n.chain.build(slot, txs, addressFromPublicKey(k.publicKey), (m) => b.sign(k.secretKey, m));
    if (c.envs.length !== TXS) throw new Error(`block ${slot}: ${c.envs.length} of ${TXS} transactions applied`);
    const cert: Certificate = { height: c.block.header.height, round: slot, blockHash: c.hash, votes: [] };
    for (const s of vals.filter((v) => v !== k).slice(0, 3)) {
      const validator = addressFromPublicKey(s.publicKey);
      cert.votes.push({ validator, signature: b.sign(s.secretKey, voteSigningBytes(certificateVoteBody(cert, G.chainId, 0, validator))) });
    }
    await n.engine.run(() => n.chain.commit(c, cert));
    if (slot % 200 === 0) process.stderr.write(`  built ${slot}/${BLOCKS} blocks (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
  }
  await closeNode(n);
}

async function verifies(m: Metrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await m.sigVerify.get()).values) out[String(v.labels.kind)] = v.value;
  return out;
}

async function main(): Promise<void> {
  const root = join(tmpdir(), 'qnexus-sync-bench');
  const serverDir = join(root, `chain-${BLOCKS}x${TXS}-${genesisTime}`);
  if (args.rebuild) rmSync(serverDir, { recursive: true, force: true });
  if (!existsSync(join(serverDir, 'DONE'))) {
    rmSync(serverDir, { recursive: true, force: true });
    mkdirSync(serverDir, { recursive: true });
    process.stderr.write(`building a ${BLOCKS}-block chain with ${TXS} txs/block in ${serverDir}…\n`);
    await buildChain(serverDir);
    writeFileSync(join(serverDir, 'DONE'), '');
  }
  const server = await openNode(serverDir, null);
  if (server.chain.headHeight !== BLOCKS) throw new Error(`cached chain has ${server.chain.headHeight} blocks; run with --rebuild`);
  await server.syncer.start();
  const clientDir = mkdtempSync(join(tmpdir(), 'qnexus-sync-client-'));
  const client = await openNode(clientDir, BACKEND === 'noble' ? new DistPool(SCHEME, WORKERS) : new DistPool(SCHEME, WORKERS, BACKEND));
  try {
    await client.p2p.dial(server.p2p.multiaddrs()[0]!);
    const t0 = performance.now();
    while (client.chain.headHeight < BLOCKS) {
      const before = client.chain.headHeight;
      await client.syncer.tick();
      if (client.chain.headHeight === before) throw new Error(`sync made no progress at height ${before}`);
    }
    const secs = (performance.now() - t0) / 1000;
    const v = await verifies(client.metrics);
    const total = Object.values(v).reduce((a, x) => a + x, 0);
    const cacheHits = (await client.metrics.sigCacheHits.get()).values[0]?.value ?? 0;
    console.log(
      JSON.stringify({
        blocks: BLOCKS,
        txsPerBlock: TXS,
        workers: WORKERS,
        backend: BACKEND,
        seconds: Number(secs.toFixed(2)),
        blocksPerSec: Math.round(BLOCKS / secs),
        txsPerSec: Math.round((BLOCKS * TXS) / secs),
        verifiesPerBlock: Number((total / BLOCKS).toFixed(2)),
        verifies: v,
        txCacheHits: cacheHits,
        // Frames received and not yet imported, at most (bounded by SYNC_BUFFER_BYTES), and the process's peak RSS (server and client together).
        bufferPeakMiB: Number((client.syncer.bufferStats.peakBytes / 2 ** 20).toFixed(1)),
        maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
      }),
    );
    if (Buffer.compare(Buffer.from(client.chain.headHash), Buffer.from(server.chain.headHash)) !== 0) throw new Error('client head differs from the server head');
  } finally {
    await closeNode(client);
    await closeNode(server);
    rmSync(clientDir, { recursive: true, force: true });
  }
}

await main();
