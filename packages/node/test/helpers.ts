// Shared fixtures for node tests: a unit-test genesis, beacon-signed epoch announcements, an in-memory announcement store, a capturing logger,
// the HTTP API over a real chain.
import { Writable } from 'node:stream';
import { addressFromPublicKey, formatAddress, getBackend, type KeyPair } from '@qnexus/crypto';
import { epochSeed } from '@qnexus/consensus';
import { app } from '@qnexus/app';
import { fees as stakingFees } from '@qnexus/module-staking';
import { NATIVE_DENOM, type WorldState } from '@qnexus/state';
import {
  certificateVoteBody,
  encodeEpochAnnouncement,
  epochAnnouncementSigningBytes,
  genesisHash,
  makeGenesis,
  voteSigningBytes,
  type Certificate,
  type EpochAnnouncement,
  type Genesis,
} from '@qnexus/types';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { P2PNode } from '@qnexus/p2p';
import { startApi, type ApiContext } from '../src/api.js';
import type { Chain } from '../src/chain.js';
import type { Engine } from '../src/engine.js';
import type { AnnouncementStore } from '../src/epochs.js';
import { RecentXfers } from '../src/explorer-index.js';
import { Logger } from '@qnexus/runtime';
import { Mempool } from '../src/mempool.js';
import type { Metrics } from '../src/metrics.js';
import type { TxGossip } from '../src/txgossip.js';
import type { TxVerifier } from '../src/verifier.js';
import type { XShard } from '../src/xshard.js';
import type { NodeConfig } from '../src/config.js';

/** An embedded node for tests: shard 0, full node, loopback p2p and API on free ports, quiet logs; `over` changes the rest. */
export function embeddedNodeConfig(dataDir: string, genesis: Genesis, over: Partial<NodeConfig> = {}): NodeConfig {
  return {
    dataDir,
    genesis,
    shard: 0,
    validatorKey: null,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: [],
    apiHost: '127.0.0.1',
    apiPort: 0,
    logFormat: 'json',
    logLevel: 'error',
    ...over,
  };
}

/** A genesis for unit tests: ML-DSA-44, one shard, 1 s slots, `validators` with stake 100 each, the given beacon key; `over` changes the rest. */
export function unitGenesis(validators: readonly KeyPair[], beacon: KeyPair, over: Partial<Parameters<typeof makeGenesis>[0]> = {}): Genesis {
  return makeGenesis({
    chainId: 'unit',
    scheme: 'ml-dsa-44',
    genesisTime: 0,
    slotMs: 1000,
    epochLength: 32,
    shardCount: 1,
    minFee: 1n,
    maxBlockTxs: 100,
    xferTimeoutSlots: 16,
    beacon: { publicKey: beacon.publicKey, peerId: '12D3KooWJWEKvSFbben74C7H4YtKjhPMTDxd7gP7zxWSUEeF27st' },
    accounts: [],
    validators: validators.map((k) => ({ address: formatAddress(addressFromPublicKey(k.publicKey)), publicKey: k.publicKey, stake: 100n })),
    ...over,
  });
}

/** The body the beacon would announce for `epoch`: `committees[k]` lists shard k's members (each with `stake`). */
export function announcementBody(g: Genesis, epoch: number, committees: KeyPair[][], stake = 100n, issuedSlot = 0): EpochAnnouncement {
  return {
    chainId: g.chainId,
    epoch,
    startSlot: epoch * g.epochLength,
    seed: epochSeed(g.chainId, genesisHash(g), epoch),
    committees: committees.map((ks, shard) => ({ shard, members: ks.map((k) => ({ publicKey: k.publicKey, stake })) })),
    issuedSlot,
  };
}

/** Sign and encode an announcement body (with the beacon key unless another signer is given). */
export function signAnnouncement(g: Genesis, body: EpochAnnouncement, signer: KeyPair): Uint8Array {
  return encodeEpochAnnouncement({ body, signature: getBackend(g.scheme).sign(signer.secretKey, epochAnnouncementSigningBytes(body)) });
}

export function announce(g: Genesis, signer: KeyPair, epoch: number, committees: KeyPair[][], stake = 100n, issuedSlot = 0): Uint8Array {
  return signAnnouncement(g, announcementBody(g, epoch, committees, stake, issuedSlot), signer);
}

/** What a ChainStore persists of announcements, in memory. */
export class MemoryAnnouncements implements AnnouncementStore {
  readonly map = new Map<number, Uint8Array>();
  async putAnnouncement(epoch: number, raw: Uint8Array): Promise<void> {
    this.map.set(epoch, raw);
  }
  async loadAnnouncements(): Promise<Map<number, Uint8Array>> {
    return new Map(this.map);
  }
}

/** A JSON logger whose records are kept for assertions. */
export function capturingLogger(level: 'debug' | 'info' | 'warn' | 'error' = 'info'): { log: Logger; records: { level: string; msg: string; [k: string]: unknown }[] } {
  const records: { level: string; msg: string; [k: string]: unknown }[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) records.push(JSON.parse(line) as { level: string; msg: string });
      cb();
    },
  });
  return { log: new Logger('json', level, {}, out), records };
}

/**
 * The node's HTTP API on a free port over a real chain, as a full node that is not syncing; the
 * engine, p2p, gossip and load monitor are inert stand-ins. `xshard` supplies what the test needs
 * of it (at least `registry`); the other fields can be replaced through `over`.
 */
export async function startTestApi(
  parts: { chain: Chain; verifier: TxVerifier; metrics: Metrics; log: Logger; xshard: Partial<XShard> },
  over: Partial<ApiContext> = {},
): Promise<{ server: Server; url: string; ctx: ApiContext }> {
  const ctx = {
    chain: parts.chain,
    engine: { evidence: [], included: new Map(), newestKnownHeight: 0, core: { round: 0, step: 'propose' } } as unknown as Engine,
    mempool: new Mempool(parts.chain, parts.verifier),
    p2p: { peerId: 'test', connectedPeers: () => [] } as unknown as P2PNode,
    syncer: { progress: { syncing: false } },
    txGossip: { publish: () => undefined } as unknown as TxGossip,
    load: { overloaded: false, lagMs: 0 },
    metrics: parts.metrics,
    log: parts.log,
    role: 'full',
    validator: null,
    xshard: parts.xshard as XShard,
    verifier: parts.verifier,
    recentXfers: RecentXfers.fromRecords(parts.chain.state.xferRecords()),
    ...over,
  } as ApiContext;
  const server = await startApi(ctx, '127.0.0.1', 0);
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, ctx };
}

/**
 * The native denom's supply terms in the shape the API's /v1/supply shows
 * (module accounts reported as `fees`), and the staking module's pending tips.
 */
export function nativeCounters(state: WorldState): { burned: bigint; escrow: bigint; exported: bigint; imported: bigint; fees: bigint; feeEpoch: number } {
  const t = state.denomTotals().find((d) => d.denom === NATIVE_DENOM)!;
  return { burned: t.burned, escrow: t.escrow, exported: t.exported, imported: t.imported, fees: app.nativeSplit(state).modules, feeEpoch: stakingFees.epoch(state) };
}

export function userBalances(state: WorldState): bigint {
  return app.nativeSplit(state).users;
}

export function pendingFees(state: WorldState): [string, bigint][] {
  return stakingFees.allPending(state);
}

/** A finality certificate for block `height` / `blockHash` certified in `round`, with a real precommit of each of `signers`. */
export function certify(g: Genesis, shard: number, height: number, round: number, blockHash: Uint8Array, signers: readonly KeyPair[]): Certificate {
  const b = getBackend(g.scheme);
  const cert: Certificate = { height, round, blockHash, votes: [] };
  for (const k of signers) {
    const validator = addressFromPublicKey(k.publicKey);
    cert.votes.push({ validator, signature: b.sign(k.secretKey, voteSigningBytes(certificateVoteBody(cert, g.chainId, shard, validator))) });
  }
  return cert;
}
