import { writeFileSync, renameSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { formatAddress, toHex } from '@qnexus/crypto';
import { QnexusError, genesisHash, openTx, type ErrorCode } from '@qnexus/types';
import { ChainStore } from '@qnexus/db';
import { createP2PNode, type ValidationResult } from '@qnexus/p2p';
import { startApi } from './api.js';
import { Chain } from './chain.js';
import type { NodeConfig, NodeInfo, RunningNode } from './config.js';
import { Engine } from './engine.js';
import { Logger } from './log.js';
import { Mempool } from './mempool.js';
import { createMetrics } from './metrics.js';
import { Syncer } from './sync.js';
import { topics } from './topics.js';
import { TxVerifier } from './verifier.js';

/** Admission failures that prove the forwarding peer misbehaved (it must have validated before relaying). */
const PEER_FAULT: ReadonlySet<ErrorCode> = new Set([
  'TX_MALFORMED',
  'TX_TOO_LARGE',
  'TX_BAD_SIGNATURE',
  'TX_WRONG_CHAIN',
  'TX_WRONG_SCHEME',
  'TX_UNKNOWN_KIND',
  'TX_BAD_AMOUNT',
  'TX_FEE_TOO_LOW',
  'TX_SELF_TRANSFER',
]);

function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** Start a shard node (validator when cfg.validatorKey is set): store, state, p2p, consensus, sync, API. */
export async function startNode(cfg: NodeConfig): Promise<RunningNode> {
  const g = cfg.genesis;
  if (cfg.shard < 0 || cfg.shard >= g.shardCount) throw new QnexusError('BAD_CONFIG', `shard ${cfg.shard} does not exist (genesis has ${g.shardCount})`);
  mkdirSync(cfg.dataDir, { recursive: true });
  const validator = cfg.validatorKey ? formatAddress(cfg.validatorKey.address) : null;
  const log = new Logger(cfg.logFormat, cfg.logLevel, { shard: cfg.shard, ...(validator ? { validator: validator.slice(0, 10) } : {}) });
  const metrics = createMetrics();
  const verifier = new TxVerifier(g.scheme, metrics);
  const store = await ChainStore.open(join(cfg.dataDir, 'db'));
  const cleanup: (() => Promise<void> | void)[] = [() => store.close()];
  try {
    const chain = await Chain.open(store, g, cfg.shard, verifier, log);
    const mempool = new Mempool(chain, verifier);
    const t = topics(g.chainId, cfg.shard);
    const p2p = await createP2PNode({
      peerKeyPath: join(cfg.dataDir, 'peer.key'),
      listen: cfg.listen,
      announce: cfg.announce,
      bootstrap: cfg.bootstrap,
      scoringProfile: 'devnet',
      maxMessageBytes: 4 * 1024 * 1024,
      log: (level, msg, fields) => log.log(level, `p2p: ${msg}`, fields),
    });
    cleanup.unshift(() => p2p.stop());
    const engine = new Engine(chain, mempool, p2p, verifier, cfg.validatorKey ?? null, t, metrics, log);
    p2p.subscribe(t.tx, {
      maxBytes: 8192,
      validate: (data): ValidationResult => {
        try {
          const r = mempool.admit(openTx(data));
          metrics.txAdmission.inc({ source: 'gossip', result: r === 'added' ? 'accepted' : 'known' });
          metrics.mempoolSize.set(mempool.size);
          return r === 'added' ? 'accept' : 'ignore';
        } catch (e) {
          const code: ErrorCode = e instanceof QnexusError ? e.code : 'TX_MALFORMED';
          metrics.txAdmission.inc({ source: 'gossip', result: code });
          // State-dependent failures (nonce races, funds, a full pool) are not the relayer's fault.
          return PEER_FAULT.has(code) ? 'reject' : 'ignore';
        }
      },
    });
    await engine.start();
    cleanup.unshift(() => engine.stop());
    const syncer = new Syncer(chain, engine, p2p, t, metrics, log);
    await syncer.start();
    cleanup.unshift(() => syncer.stop());
    const role = engine.self ? 'validator' : 'full';
    const server = await startApi({ chain, engine, mempool, p2p, syncer, metrics, log, role, validator }, cfg.apiHost, cfg.apiPort);
    cleanup.unshift(
      () =>
        new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        }),
    );
    const port = (server.address() as AddressInfo).port;
    const info: NodeInfo = {
      pid: process.pid,
      role,
      shard: cfg.shard,
      chainId: g.chainId,
      peerId: p2p.peerId,
      multiaddrs: p2p.multiaddrs(),
      apiUrl: `http://${cfg.apiHost.includes(':') ? `[${cfg.apiHost}]` : cfg.apiHost}:${port}`,
      validator,
      dataDir: cfg.dataDir,
    };
    writeAtomic(join(cfg.dataDir, 'node-info.json'), JSON.stringify(info, null, 2) + '\n');
    log.info('node started', {
      role,
      chainId: g.chainId,
      genesisHash: toHex(genesisHash(g)).slice(0, 16),
      peerId: p2p.peerId,
      api: info.apiUrl,
      listen: info.multiaddrs,
      height: chain.headHeight,
    });
    let stopping: Promise<void> | null = null;
    return {
      info,
      stop: () => {
        stopping ??= (async () => {
          log.info('stopping node');
          for (const f of cleanup) {
            try {
              await f();
            } catch (e) {
              log.warn('error during shutdown', { error: (e as Error).message });
            }
          }
        })();
        return stopping;
      },
    };
  } catch (e) {
    for (const f of cleanup) await Promise.resolve(f()).catch(() => undefined);
    throw e;
  }
}
