// Shared fixtures for node tests: a unit-test genesis, beacon-signed epoch announcements, an in-memory announcement store, a capturing logger.
import { Writable } from 'node:stream';
import { addressFromPublicKey, formatAddress, getBackend, type KeyPair } from '@qnexus/crypto';
import { epochSeed } from '@qnexus/consensus';
import {
  encodeEpochAnnouncement,
  epochAnnouncementSigningBytes,
  genesisHash,
  makeGenesis,
  type EpochAnnouncement,
  type Genesis,
} from '@qnexus/types';
import type { AnnouncementStore } from '../src/epochs.js';
import { Logger } from '../src/log.js';

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
