import { mkdirSync } from 'node:fs';
import { STAKING_ID, checkGenesisModules } from '@qnexus/app';
import { join } from 'node:path';
import { DEFAULT_BACKEND, bytesEqual, describeBackend, getBackend, resolveBackend, toHex, type UnlockedKey } from '@qnexus/crypto';
import { chainTopics, createP2PNode, discoveryProtocol, peerIdFromKeyFile } from '@qnexus/p2p';
import { QnexusError } from '@qnexus/types';
import { Admitter } from './admission.js';
import { startApi } from './api.js';
import { Coordinator } from './coordinator.js';
import { ApiGuard, Logger, Shutdown, registerCryptoBackendInfo, serverUrl, writeInfoFile, type ProcessConfig } from '@qnexus/runtime';
import { createMetrics } from './metrics.js';
import { Registry } from './registry.js';
import { ShardSender } from './sender.js';
import { BeaconService } from './service.js';
import { BeaconStore } from './store.js';
import { beaconTxSigner } from './system.js';

export interface BeaconConfig extends ProcessConfig {
  /** The genesis beacon key (ML-DSA): signs epoch announcements, prepare requests and decisions. */
  beaconKey: UnlockedKey;
  /** Slots between re-sends of pending prepare requests and unapplied decisions (default 3). */
  resendSlots?: number;
}

/** Written to `<dataDir>/node-info.json` once the beacon listens (the devnet launcher waits for it). */
export interface BeaconInfo {
  pid: number;
  role: 'beacon';
  chainId: string;
  peerId: string;
  multiaddrs: string[];
  apiUrl: string;
  dataDir: string;
}

export interface RunningBeacon {
  info: BeaconInfo;
  stop(): Promise<void>;
}

/**
 * Start the beacon: check that this data dir and key are the genesis beacon's,
 * reload the staking registry and the 2PC log, then serve 2PC requests and
 * evidence, tick slots (freezes, rewards, releases, re-sends,
 * announcements) and the HTTP API.
 */
export async function startBeacon(cfg: BeaconConfig): Promise<RunningBeacon> {
  const g = cfg.genesis;
  checkGenesisModules(g);
  const backendName = resolveBackend(cfg.cryptoBackend ?? DEFAULT_BACKEND);
  // Fails here (CryptoBackendError CRYPTO_BACKEND_UNAVAILABLE) when the backend cannot load: never a silent fallback.
  const backend = getBackend(g.scheme, backendName);
  mkdirSync(cfg.dataDir, { recursive: true });
  const log = new Logger(cfg.logFormat, cfg.logLevel, { role: 'beacon' });
  if (cfg.beaconKey.scheme !== g.scheme || !bytesEqual(cfg.beaconKey.publicKey, g.beacon.publicKey)) {
    throw new QnexusError('BAD_CONFIG', `the beacon key (${cfg.beaconKey.scheme} ${toHex(cfg.beaconKey.publicKey).slice(0, 16)}…) is not the genesis beacon key (${g.scheme} ${toHex(g.beacon.publicKey).slice(0, 16)}…)`);
  }
  const peerKeyPath = join(cfg.dataDir, 'peer.key');
  const peerId = await peerIdFromKeyFile(peerKeyPath);
  if (peerId !== g.beacon.peerId) {
    throw new QnexusError('BAD_CONFIG', `the libp2p key ${peerKeyPath} is peer ${peerId}, but genesis names the beacon peer ${g.beacon.peerId}: start the beacon with the data dir whose peer.key the genesis was made from`);
  }

  const metrics = createMetrics();
  registerCryptoBackendInfo(metrics.registry, backendName, g.scheme);
  // The admin token (<dataDir>/admin.token) is created or read before anything starts.
  const guard = new ApiGuard({ dataDir: cfg.dataDir, rateLimit: cfg.apiRateLimit, rateBurst: cfg.apiRateBurst, http: { maxConnections: cfg.apiMaxConnections, maxConnectionsPerIp: cfg.apiMaxConnectionsPerIp, headersTimeoutMs: cfg.apiHeadersTimeoutMs, requestTimeoutMs: cfg.apiRequestTimeoutMs }, registry: metrics.registry });
  const shutdown = new Shutdown(log);
  const store = await BeaconStore.open(join(cfg.dataDir, 'db'));
  shutdown.add(() => store.close());
  // POST /v1/admin/backup: a consistent snapshot of the store, taken while the beacon runs.
  guard.setBackup((dir) => store.backup(dir));
  try {
    await store.initGenesis(g);
    // The registry and the 2PC log were written together; they are restored together.
    const registry = new Registry(g, await store.loadRegistry(), backendName);
    const restored = await store.loadEntries();
    const coordinator = new Coordinator({ signer: beaconTxSigner(g.chainId, g.scheme, cfg.beaconKey, backend), resendSlots: cfg.resendSlots, participants: new Map([[STAKING_ID, registry]]) }, restored);
    metrics.bindLog(coordinator);
    const p2p = await createP2PNode({
      peerKeyPath,
      listen: cfg.listen,
      announce: cfg.announce,
      bootstrap: cfg.bootstrap,
      scoringProfile: 'devnet',
      maxMessageBytes: 1024 * 1024,
      log: (level, msg, fields) => log.log(level, `p2p: ${msg}`, fields),
      // Serves peer exchange to joining nodes (it is the natural bootstrap address).
      discovery: { protocol: discoveryProtocol(g.chainId) },
      allowedTopics: chainTopics(g.chainId, g.shardCount),
    });
    shutdown.add(() => p2p.stop());
    metrics.p2p.bind(() => p2p.stats());
    const sender = new ShardSender(p2p, g.chainId, (shard) => registry.shardPeers(service.epoch, shard), metrics, log);
    // The sender's in-flight requests end when p2p stops (shutdown runs p2p.stop after this).
    let senderDone: Promise<void> = Promise.resolve();
    shutdown.add(() => {
      senderDone = sender.stop();
    });
    shutdown.addLast(() => senderDone);
    const service: BeaconService = new BeaconService({
      registry,
      store,
      coordinator,
      admitter: new Admitter(registry),
      sender,
      p2p,
      metrics,
      log,
      signAnnouncement: (bytes) => backend.sign(cfg.beaconKey.secretKey, bytes),
    });
    await service.start();
    shutdown.add(() => service.stop());
    const server = await startApi({ registry, coordinator, service, p2p, metrics, log, guard }, cfg.apiHost, cfg.apiPort);
    shutdown.addServer(server);
    const info: BeaconInfo = {
      pid: process.pid,
      role: 'beacon',
      chainId: g.chainId,
      peerId: p2p.peerId,
      multiaddrs: p2p.multiaddrs(),
      apiUrl: serverUrl(cfg.apiHost, server),
      dataDir: cfg.dataDir,
    };
    writeInfoFile(join(cfg.dataDir, 'node-info.json'), info);
    const counts = coordinator.counts();
    log.info('beacon started', {
      chainId: g.chainId,
      genesisHash: toHex(registry.genesisHash).slice(0, 16),
      peerId: p2p.peerId,
      api: info.apiUrl,
      listen: info.multiaddrs,
      slot: service.slot,
      epoch: service.epoch,
      validators: registry.all().length,
      frozenThrough: registry.frozenNext - 1,
      restoredTransfers: counts.total,
      undecided: counts.undecided,
      cryptoBackend: describeBackend(cfg.cryptoBackend ?? DEFAULT_BACKEND),
    });
    return { info, stop: () => shutdown.stop('beacon') };
  } catch (e) {
    await shutdown.abort();
    throw e;
  }
}
