import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_BACKEND, describeBackend, formatAddress, getBackend, resolveBackend, toHex } from '@qnexus/crypto';
import { MAX_TX_BATCH, MAX_TX_BYTES, QnexusError, genesisHash, openTx, type TxEnvelope } from '@qnexus/types';
import { ChainStore, type UpgradeProgress } from '@qnexus/db';
import { chainTopics, createP2PNode, discoveryProtocol, topics, type P2PNode } from '@qnexus/p2p';
import { ApiGuard, Logger, Shutdown, registerCryptoBackendInfo, serverUrl, writeInfoFile } from '@qnexus/runtime';
import { moduleApiRoutes, startApi } from './api.js';
import { Chain, DEFAULT_STATE_RETENTION, MIN_STATE_RETENTION } from './chain.js';
import { DEFAULT_EMPTY_BLOCK_INTERVAL, DEFAULT_STATE_CACHE_MB, defaultVerifyWorkers, type NodeConfig, type NodeInfo, type RunningNode } from './config.js';
import { Engine } from './engine.js';
import { DEFAULT_MEMPOOL_LIMITS, DEFAULT_MEMPOOL_MAX_BYTES, Mempool } from './mempool.js';
import { ADMISSION_JOURNAL_FILE, AdmissionJournal, MEMPOOL_JOURNAL_FILE, readAdmissionJournal, takeMempoolJournal } from './mempool-journal.js';
import { bindState, createMetrics } from './metrics.js';
import { Syncer } from './sync.js';
import { DEFAULT_SNAPSHOT_CHUNK_ITEMS, DEFAULT_SNAPSHOT_THRESHOLD, SnapshotService } from './snapshot.js';
import { DEFAULT_TX_GOSSIP_FLUSH_MS, TxGossip, TxInventory } from './txgossip.js';
import { LoadMonitor } from './load.js';
import { DEFAULT_VERIFY_CACHE_SIZE, TxVerifier } from './verifier.js';
import { VerifyPool } from './verify-pool.js';
import { XShard } from './xshard.js';
import { checkGenesisModules } from '@qnexus/app';
import { TrieImporter } from '@qnexus/state';
import { RecentXfers } from './explorer-index.js';

/** Slots of the chain's measured finality rate the mempool may hold before the API sheds new transactions. */
export const MEMPOOL_DRAIN_SLOTS = 4;
/**
 * Pending transactions never shed for: the rule before any rate is measured. Set when a block held
 * at most ≈ 413 keyless transfers (1 MiB); a 2 MiB block holds ≈ 830, so the floor is now about
 * two-thirds of a full block (kept: the rate-based limit, 4 slots of finality, is well above it).
 */
export const MEMPOOL_MIN_BACKLOG = 512;
/**
 * Weight of each 250 ms window in the finality-rate average. A block drains the pool once a slot
 * (one window in four at 1-s slots): with the monitor's default 0.3 the rate swung between 0.5 and
 * 1.6 times its mean and the limit with it, shedding at 600 tx/s offered, below saturation. At
 * 1/16 it averages over about four slots and stays within 10 % of the mean.
 */
export const MEMPOOL_RATE_ALPHA = 1 / 16;

/** Start a shard node (validator when cfg.validatorKey is set): store, state, p2p, consensus, sync, API. */
export async function startNode(cfg: NodeConfig): Promise<RunningNode> {
  const g = cfg.genesis;
  if (cfg.shard < 0 || cfg.shard >= g.shardCount) throw new QnexusError('BAD_CONFIG', `shard ${cfg.shard} does not exist (genesis has ${g.shardCount})`);
  checkGenesisModules(g);
  const tuning = nodeTuning(cfg);
  // Fails here (CryptoBackendError CRYPTO_BACKEND_UNAVAILABLE) when the backend cannot load: never a silent fallback.
  getBackend(g.scheme, tuning.backend);
  mkdirSync(cfg.dataDir, { recursive: true });
  const validator = cfg.validatorKey ? formatAddress(cfg.validatorKey.address) : null;
  const log = new Logger(cfg.logFormat, cfg.logLevel, { shard: cfg.shard, ...(validator ? { validator: validator.slice(0, 10) } : {}) });
  const metrics = createMetrics();
  // The admin token is created (or read) before anything else starts: a bad token file fails fast.
  const guard = new ApiGuard({ dataDir: cfg.dataDir, rateLimit: cfg.apiRateLimit, rateBurst: cfg.apiRateBurst, http: { maxConnections: cfg.apiMaxConnections, maxConnectionsPerIp: cfg.apiMaxConnectionsPerIp, headersTimeoutMs: cfg.apiHeadersTimeoutMs, requestTimeoutMs: cfg.apiRequestTimeoutMs }, registry: metrics.registry });
  registerCryptoBackendInfo(metrics.registry, tuning.backend, g.scheme);
  // --verify-workers 0: no pool, transaction signatures are verified on the event loop.
  // A validator's workers also make its vote and proposal signatures (the key is handed to them once, at start).
  const pool = tuning.verifyWorkers > 0 ? new VerifyPool(g.scheme, tuning.verifyWorkers, tuning.backend, cfg.validatorKey ? { signingKey: cfg.validatorKey.secretKey } : {}) : null;
  const verifier = new TxVerifier(g.scheme, metrics, pool, { capacity: tuning.verifyCacheSize, backend: tuning.backend });
  const shutdown = new Shutdown(log);
  if (pool) shutdown.add(() => pool.close());
  // A data dir of the previous layout is upgraded in place before the chain opens (blocks move to height keys).
  const upgrade = {
    onProgress: (p: UpgradeProgress) =>
      log.info(p.done < p.total ? 'upgrading the data dir to the current block layout' : 'data dir upgraded to the current block layout', { heights: p.done, of: p.total, blocksMoved: p.moved }),
  };
  const store = await ChainStore.open(join(cfg.dataDir, 'db'), { upgrade }).catch(async (e: unknown) => {
    await pool?.close();
    throw e;
  });
  shutdown.add(() => store.close());
  // POST /v1/admin/backup: a consistent snapshot of the store, taken while the node runs.
  guard.setBackup((dir) => store.backup(dir));
  try {
    const chain = await Chain.open(store, g, cfg.shard, verifier, log, {}, { retention: tuning.stateRetention, ...stateCaches(tuning.stateCacheMb) });
    bindState(metrics, () => chain.stateStats());
    const mempool = new Mempool(chain, verifier, { ...DEFAULT_MEMPOOL_LIMITS, maxTxs: tuning.mempoolMaxTxs, maxBytes: tuning.mempoolMaxBytes });
    const journal = new AdmissionJournal(join(cfg.dataDir, ADMISSION_JOURNAL_FILE), { maxEntries: tuning.mempoolMaxTxs, registry: metrics.registry });
    mempool.onRemoved = (hashHex) => journal.remove(hashHex);
    // Runs after the API, engine and gossip have stopped (steps run in reverse order), before the store closes:
    // the whole mempool (gossiped transactions too) for the next start.
    shutdown.add(async () => {
      const pending = mempool.pending();
      await journal.close(pending);
      if (pending.length > 0) log.info('mempool saved for the next start', { txs: pending.length, file: journal.path });
    });
    const t = topics(g.chainId, cfg.shard);
    const p2p = await createP2PNode({
      peerKeyPath: join(cfg.dataDir, 'peer.key'),
      listen: cfg.listen,
      announce: cfg.announce,
      bootstrap: cfg.bootstrap,
      scoringProfile: 'devnet',
      maxMessageBytes: 4 * 1024 * 1024,
      log: (level, msg, fields) => log.log(level, `p2p: ${msg}`, fields),
      // One bootstrap address is enough to join: peers name the shard's other nodes and the beacon.
      discovery: { protocol: discoveryProtocol(g.chainId), wantPeers: [g.beacon.peerId] },
      allowedTopics: chainTopics(g.chainId, g.shardCount),
      // The beacon always gets a connection; the committees join it as the beacon's snapshots name their peers.
      trustedPeers: [g.beacon.peerId],
    });
    shutdown.add(() => p2p.stop());
    metrics.p2p.bind(() => p2p.stats());
    // Committees per epoch: gossip subscription and fetch service up before the engine asks for them.
    chain.epochs.onCount = (result) => metrics.epochAnnouncements.inc({ result });
    await chain.epochs.start(p2p);
    shutdown.add(() => chain.epochs.stop());
    // A node at genesis far behind its peers (or one whose snapshot sync was cut short) first takes
    // the state of a recent certified height from them; block sync and gossip go on from there.
    const snapshots = new SnapshotService(chain, p2p, t, metrics, log, {
      importer: (root, height) => new TrieImporter(root, height),
      chunkItems: tuning.snapshotChunkItems,
      // A node given no peer to dial has no one to take a snapshot from: it does not wait for offers.
      ...(cfg.bootstrap.length === 0 ? { findPeersMs: 0 } : {}),
    });
    shutdown.add(() => snapshots.stop());
    const joined = await snapshots.join(tuning.sync, tuning.snapshotThreshold);
    if ('skipped' in joined) log.debug('snapshot sync not used', { reason: joined.skipped });
    await snapshots.serve();
    const engine = new Engine(chain, mempool, p2p, verifier, cfg.validatorKey ?? null, t, metrics, log, pool?.canSign ? (m) => pool.sign(m) : null, tuning.emptyBlockInterval);
    // Batches go straight to each connected shard peer (and by gossip too when that may not reach everyone: see TxGossip).
    const txGossip = new TxGossip(p2p, t.tx, mempool, metrics, (e) => log.warn('tx publish failed', { error: e.message }), tuning.txGossipBatch, tuning.txGossipFlushMs, { protocol: t.txDirectProtocol });
    await txGossip.subscribe();
    shutdown.add(() => txGossip.stop());
    // Pending transactions are announced again to peers that (re)join the shard and while they stay pending.
    const txInventory = new TxInventory(p2p, t, mempool, metrics, log, g);
    await txInventory.start();
    shutdown.add(() => txInventory.stop());
    await restoreMempool(journal, join(cfg.dataDir, MEMPOOL_JOURNAL_FILE), mempool, txGossip, p2p, t.tx, log);
    await engine.start();
    shutdown.add(() => engine.stop());
    const xshard = new XShard(chain, engine, mempool, p2p, txGossip, cfg.validatorKey ?? null, metrics, log);
    await xshard.start();
    shutdown.add(() => xshard.stop());
    // A proposal's missing transactions are asked of its proposer too: the registry binds validators to peers.
    engine.peerOfValidator = (address) => xshard.registry.latest?.peers.find((p) => formatAddress(p.validator) === address)?.peerId;
    engine.beforePropose = () => txGossip.flush();
    // A committee member's peer we know of but did not reach directly gets our batches by gossip too.
    txGossip.expectedPeers = committeePeers(chain, () => xshard.registry.latest?.peers);
    const syncer = new Syncer(chain, engine, p2p, t, metrics, log);
    await syncer.start();
    shutdown.add(() => syncer.stop());
    // Shed API load once the loop lags by more than a tenth of a slot.
    const load = new LoadMonitor(Math.max(20, g.slotMs / 10));
    // …or once the verify workers hold more than half a slot of work at the rate they are draining it.
    if (pool) load.addQueue('signature verification backlog', { backlog: () => pool.backlog, completed: () => pool.completed, maxDrainMs: g.slotMs / 2, minItems: 256 });
    // …or once the pool holds more than MEMPOOL_DRAIN_SLOTS slots of the chain's measured finality
    // rate. Past that, what is admitted only waits: latency grows by the slot, the shard's mempools
    // drift apart (a validator a block behind refuses nonces the others hold), proposals name
    // transactions their voters lack, and rounds fail, so a saturated shard finalized less than it
    // could (docs/performance.md). Clients are told to come back instead (Retry-After).
    load.addQueue('transaction backlog', { backlog: () => mempool.size, completed: () => mempool.committedTotal, maxDrainMs: MEMPOOL_DRAIN_SLOTS * g.slotMs, minItems: MEMPOOL_MIN_BACKLOG, alpha: MEMPOOL_RATE_ALPHA });
    shutdown.add(() => load.stop());
    const role = engine.self ? 'validator' : 'full';
    // The explorer's list of recent transfers: seeded from the state, then from every commit (consensus or sync).
    const recentXfers = RecentXfers.fromRecords(chain.state.xferRecords());
    engine.commitListeners.push((_c, _cert, changes) => recentXfers.note(changes.xfers.values()));
    const server = await startApi(
      { chain, engine, mempool, p2p, syncer, txGossip, load, metrics, log, role, validator, xshard, verifier, guard, recentXfers, journal: tuning.admissionJournal ? journal : null },
      cfg.apiHost,
      cfg.apiPort,
      moduleApiRoutes(chain.app),
    );
    shutdown.addServer(server);
    const info: NodeInfo = {
      pid: process.pid,
      role,
      shard: cfg.shard,
      chainId: g.chainId,
      peerId: p2p.peerId,
      multiaddrs: p2p.multiaddrs(),
      apiUrl: serverUrl(cfg.apiHost, server),
      validator,
      dataDir: cfg.dataDir,
    };
    writeInfoFile(join(cfg.dataDir, 'node-info.json'), info);
    log.info('node started', {
      role,
      chainId: g.chainId,
      genesisHash: toHex(genesisHash(g)).slice(0, 16),
      peerId: p2p.peerId,
      api: info.apiUrl,
      listen: info.multiaddrs,
      height: chain.headHeight,
      baseHeight: chain.baseHeight,
      modules: chain.app.modules.map((m) => `${m.name}#${m.id}`).join(','),
      cryptoBackend: describeBackend(cfg.cryptoBackend ?? DEFAULT_BACKEND),
      verifyWorkers: tuning.verifyWorkers,
      verifyCacheSize: tuning.verifyCacheSize,
      txGossipBatch: tuning.txGossipBatch,
      txGossipFlushMs: tuning.txGossipFlushMs,
      emptyBlockInterval: tuning.emptyBlockInterval,
      admissionJournal: tuning.admissionJournal,
    });
    return { info, stop: () => shutdown.stop('node') };
  } catch (e) {
    await shutdown.abort();
    throw e;
  }
}

/** The crypto and verification knobs of a NodeConfig, defaults applied and ranges checked (BAD_CONFIG). */
function nodeTuning(cfg: NodeConfig) {
  const int = (name: string, v: number | undefined, dflt: number, min: number, max: number): number => {
    const n = v ?? dflt;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new QnexusError('BAD_CONFIG', `${name} must be an integer in [${min}, ${max}], not ${n}`);
    return n;
  };
  return {
    // `auto` resolves here, once: the verify workers load the same backend by name.
    backend: resolveBackend(cfg.cryptoBackend ?? DEFAULT_BACKEND),
    verifyWorkers: int('verifyWorkers', cfg.verifyWorkers, defaultVerifyWorkers(), 0, 256),
    verifyCacheSize: int('verifyCacheSize', cfg.verifyCacheSize, DEFAULT_VERIFY_CACHE_SIZE, 0, 100_000_000),
    txGossipBatch: int('txGossipBatch', cfg.txGossipBatch, MAX_TX_BATCH, 1, MAX_TX_BATCH),
    txGossipFlushMs: int('txGossipFlushMs', cfg.txGossipFlushMs, DEFAULT_TX_GOSSIP_FLUSH_MS, 0, 10_000),
    emptyBlockInterval: int('emptyBlockInterval', cfg.emptyBlockInterval, DEFAULT_EMPTY_BLOCK_INTERVAL, 1, 1_000),
    admissionJournal: cfg.admissionJournal ?? true,
    mempoolMaxTxs: int('mempoolMaxTxs', cfg.mempoolMaxTxs, DEFAULT_MEMPOOL_LIMITS.maxTxs, 1, 10_000_000),
    // At least one transaction of the largest size must fit.
    mempoolMaxBytes: int('mempoolMaxBytes', cfg.mempoolMaxBytes, DEFAULT_MEMPOOL_MAX_BYTES, MAX_TX_BYTES, 2 ** 40),
    sync: syncMode(cfg.sync),
    snapshotThreshold: int('snapshotThreshold', cfg.snapshotThreshold, DEFAULT_SNAPSHOT_THRESHOLD, 0, 1_000_000_000),
    snapshotChunkItems: int('snapshotChunkItems', cfg.snapshotChunkItems, DEFAULT_SNAPSHOT_CHUNK_ITEMS, 1, 4096),
    stateRetention: int('stateRetention', cfg.stateRetention, DEFAULT_STATE_RETENTION, MIN_STATE_RETENTION, 1_000_000_000),
    stateCacheMb: int('stateCacheMb', cfg.stateCacheMb, DEFAULT_STATE_CACHE_MB, 1, 1_000_000),
  };
}

/** The state's cache budget, split two to one between trie nodes (every read of the trie walks them) and values. */
function stateCaches(mb: number): { nodeCacheBytes: number; valueCacheBytes: number } {
  const bytes = mb * 1024 * 1024;
  return { nodeCacheBytes: Math.floor((bytes * 2) / 3), valueCacheBytes: Math.floor(bytes / 3) };
}

function syncMode(v: NodeConfig['sync']): 'snapshot' | 'blocks' {
  if (v === undefined) return 'snapshot';
  if (v !== 'snapshot' && v !== 'blocks') throw new QnexusError('BAD_CONFIG', `sync must be snapshot or blocks, not ${String(v)}`);
  return v;
}

/**
 * The peers of this shard's current committee that the beacon's registry snapshot binds, worked
 * out again only when the committee or the snapshot changes (TxGossip asks for every batch).
 */
function committeePeers(chain: Chain, bound: () => readonly { validator: Uint8Array; peerId: string }[] | undefined): () => readonly string[] {
  let key: { members: ReadonlyMap<string, unknown> | undefined; peers: readonly unknown[] | undefined } | null = null;
  let out: string[] = [];
  return () => {
    // The epoch's committee (undefined until its announcement arrives) and the snapshot's peers, by identity.
    const members = chain.committeeFor(chain.currentEpoch())?.members;
    const peers = bound();
    if (key !== null && key.members === members && key.peers === peers) return out;
    key = { members, peers };
    out = members && peers ? peers.filter((p) => members.has(formatAddress(p.validator))).map((p) => p.peerId) : [];
    return out;
  };
}

/** Journaled transactions re-admitted at once at start (see restoreMempool). */
const RESTORE_BATCH = 256;

/**
 * Re-admit what the admission journal holds (every acknowledged transaction not known to be
 * final or dropped, or the whole mempool after a clean stop) and what an older version's clean
 * stop saved, through the normal checks; start the journal afresh with what was re-admitted;
 * gossip it again once the transaction topic has a peer.
 */
async function restoreMempool(journal: AdmissionJournal, legacyPath: string, mempool: Mempool, txGossip: TxGossip, p2p: P2PNode, txTopic: string, log: Logger): Promise<void> {
  const legacy = takeMempoolJournal(legacyPath);
  if (legacy.error !== undefined) log.warn('mempool journal unreadable, moved aside', { file: `${legacyPath}.corrupt`, error: legacy.error });
  const read = readAdmissionJournal(journal.path);
  if (read.warning !== undefined) log.warn('admission journal damaged', { file: journal.path, warning: read.warning });
  else if (read.tailBytes > 0) log.info('admission journal ends in a torn record (a crash during a write); ignored', { file: journal.path, bytes: read.tailBytes });
  const txs = [...legacy.txs, ...read.txs];
  const added: TxEnvelope[] = [];
  let dropped = 0;
  // Admitted concurrently, a batch at a time: each waits for its signature check on the verify
  // pool, and one by one a journal of hundreds kept a restarted validator out of its committee
  // for seconds (the mempool takes nonces in any order within its window).
  for (let i = 0; i < txs.length; i += RESTORE_BATCH) {
    await Promise.all(
      txs.slice(i, i + RESTORE_BATCH).map(async (raw) => {
        try {
          const env = openTx(raw);
          if ((await mempool.admit(env)) === 'added') added.push(env);
        } catch {
          dropped++; // final meanwhile, or no longer valid: nothing to keep
        }
      }),
    );
  }
  await journal.open(added);
  if (txs.length === 0) return;
  log.info('mempool restored from the last stop', { txs: txs.length, readmitted: added.length, dropped, file: journal.path });
  if (added.length === 0) return;
  void p2p.waitForTopicPeers(txTopic, 1, 60_000).then((ok) => {
    if (ok) for (const env of added) txGossip.publish(env.raw);
  });
}
