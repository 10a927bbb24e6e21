// Shared fixtures for node tests: beacon-signed epoch announcements, an in-memory announcement store, a capturing logger.
import { Writable } from 'node:stream';
import { getBackend, type KeyPair } from '@qnexus/crypto';
import { epochSeed } from '@qnexus/consensus';
import {
  encodeEpochAnnouncement,
  epochAnnouncementSigningBytes,
  genesisHash,
  type EpochAnnouncement,
  type Genesis,
} from '@qnexus/types';
import type { AnnouncementStore } from '../src/epochs.js';
import { Logger } from '../src/log.js';

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
