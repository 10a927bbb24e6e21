import { createBackup, openLevel, type BackupIdentity, type BackupOptions, type BackupResult, type LevelHandle } from '@qnexus/db';
import { bytesEqual, formatAddress, fromHex, parseAddress, toHex } from '@qnexus/crypto';
import {
  MAX_PUBLIC_KEY_BYTES,
  QnexusError,
  Writer,
  decodeEpochAnnouncement,
  decodeWith,
  encodeXferInfo,
  genesisHash,
  readValidatorInfo,
  readXferInfo,
  writeValidatorInfo,
  type Genesis,
} from '@qnexus/types';
import type { Outcome, XferEntry } from './coordinator.js';
import { frozenFromAnnouncement, validatorInfo, type ParticipationBucket, type RegistryChanges, type RegistryMeta, type RegistryState, type ValidatorRecord } from './registry.js';

/**
 * The beacon's database (classic-level, `<data-dir>/db`):
 *   x  32-byte transfer id -> encoded coordinator log entry; once compacted, its tombstone (the
 *                            same without the signed entries, and the slot it is forgotten at),
 *                            deleted when forgotten
 *   e  u64be epoch         -> the signed announcement of a frozen epoch (written once, at freeze)
 *   v  20-byte address     -> validator record
 *   p  u64be epoch ‖ u32be shard -> participation bucket (until that epoch's rewards are computed)
 *   k  evidence key (utf8) -> processed evidence (empty value)
 *   m  'genesis'           -> genesis hash (binds the data dir to its chain)
 *      'registry'          -> the genesis validator set (public key, stake) it was started with
 *      'staking'           -> registry meta (totals, freeze/start/reward cursors)
 * Every multi-key write is one batch written with `sync: true`.
 */

type Bytes = Uint8Array;
const SUB_OPTS = { keyEncoding: 'view', valueEncoding: 'view' } as const;
const ENTRY_VERSION = 1;
/** A compacted entry: version 1's fields (its signed entries empty), then u64 the slot it is forgotten at. */
const TOMBSTONE_VERSION = 2;
const MAX_SYSTEM_TX = 16 * 1024;
const utf8 = (s: string): Bytes => new TextEncoder().encode(s);
/** LevelDB hands out Buffers; callers get plain Uint8Arrays (prototype-sensitive comparisons, subarrays). */
const plain = (b: Bytes): Bytes => (Object.getPrototypeOf(b) === Uint8Array.prototype ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength));

const OUTCOME_CODE: Record<Outcome, number> = { commit: 1, abort: 2 };
function outcomeOf(c: number): Outcome {
  if (c === 1) return 'commit';
  if (c === 2) return 'abort';
  throw new QnexusError('MALFORMED', `bad outcome code ${c}`);
}

export function encodeEntry(e: XferEntry): Bytes {
  const w = new Writer(512 + (e.prepareTx?.length ?? 0) + (e.decisionTx?.length ?? 0)).u8(e.compacted ? TOMBSTONE_VERSION : ENTRY_VERSION).u64(e.seq);
  encodeXferInfo(w, e.info);
  if (e.sourcePrepared) w.u8(1).u64(e.sourcePrepared.height);
  else w.u8(0);
  if (e.destination) w.u8(e.destination.accepted ? 1 : 2).u64(e.destination.height).string(e.destination.reason);
  else w.u8(0);
  if (e.decision) w.u8(OUTCOME_CODE[e.decision.outcome]).u64(e.decision.slot).string(e.decision.reason);
  else w.u8(0);
  for (const a of [e.sourceApplied, e.destinationApplied]) {
    if (a) w.u8(OUTCOME_CODE[a.outcome]).u64(a.height);
    else w.u8(0);
  }
  w.bytes(e.prepareTx ?? new Uint8Array(0)).bytes(e.decisionTx ?? new Uint8Array(0));
  if (e.compacted) w.u64(e.compacted.until);
  return w.finish();
}

export function decodeEntry(b: Bytes): XferEntry {
  return decodeWith(b, 'transfer log entry', (r) => {
    const v = r.u8('entry version');
    if (v !== ENTRY_VERSION && v !== TOMBSTONE_VERSION) throw new QnexusError('MALFORMED', `unsupported transfer log entry version ${v}`);
    const seq = r.u64n('seq');
    const info = readXferInfo(r);
    const sourcePrepared = r.u8('source flag') ? { height: r.u64n('height') } : null;
    const d = r.u8('destination flag');
    const destination = d ? { accepted: d === 1, height: r.u64n('height'), reason: r.string(256, 'reason') } : null;
    const dc = r.u8('decision flag');
    const decision = dc ? { outcome: outcomeOf(dc), slot: r.u64n('slot'), reason: r.string(256, 'reason') } : null;
    const applied = () => {
      const c = r.u8('applied flag');
      return c ? { outcome: outcomeOf(c), height: r.u64n('height') } : null;
    };
    const sourceApplied = applied();
    const destinationApplied = applied();
    const p = r.bytes(MAX_SYSTEM_TX, 'prepare tx');
    const t = r.bytes(MAX_SYSTEM_TX, 'decision tx');
    const compacted = v === TOMBSTONE_VERSION ? { compacted: { until: r.u64n('forget slot'), dropped: false } } : {};
    return {
      id: toHex(info.id),
      seq,
      info,
      sourcePrepared,
      destination,
      decision,
      sourceApplied,
      destinationApplied,
      prepareTx: p.length ? p : null,
      decisionTx: t.length ? t : null,
      sent: { prepare: -Infinity, source: -Infinity, destination: -Infinity },
      ...compacted,
    };
  });
}

function encodeRegistry(g: Genesis): Bytes {
  const w = new Writer(g.validators.length * (g.validators[0]?.publicKey.length ?? 0) + 64).u32(g.validators.length);
  for (const v of g.validators) w.bytes(v.publicKey).u64(v.stake);
  return w.finish();
}

function u64be(n: number): Bytes {
  return new Writer(8).u64(n).finish();
}

/** Version of the stored validator records and registry meta (2: the record starts with the snapshot's entry). */
const RECORD_VERSION = 2;

/** The registry entry as snapshots carry it (`writeValidatorInfo`), then the key and the beacon's own bookkeeping. */
export function encodeValidatorRecord(v: ValidatorRecord): Bytes {
  const w = new Writer(256 + v.publicKey.length).u8(RECORD_VERSION);
  writeValidatorInfo(w, validatorInfo(v)).bytes(v.publicKey).u32(v.releaseAttempt);
  if (v.release) w.u8(1).fixed(fromHex(v.release), 32);
  else w.u8(0);
  return w.u64(v.seq).finish();
}

export function decodeValidatorRecord(b: Bytes): ValidatorRecord {
  return decodeWith(b, 'validator record', (r) => {
    const ver = r.u8('record version');
    if (ver !== RECORD_VERSION) throw new QnexusError('MALFORMED', `unsupported validator record version ${ver}`);
    const { address, ...shown } = readValidatorInfo(r);
    const publicKey = r.bytes(MAX_PUBLIC_KEY_BYTES, 'public key');
    const releaseAttempt = r.u32('release attempt');
    const release = r.u8('release flag') ? toHex(r.fixed(32, 'release id')) : null;
    const seq = r.u64n('seq');
    return { address: formatAddress(address), publicKey, ...shown, releaseAttempt, release, seq };
  });
}

function encodeMeta(m: RegistryMeta): Bytes {
  return new Writer(128)
    .u8(RECORD_VERSION)
    .u64(m.stakedIn)
    .u64(m.feesIn)
    .u64(m.minted)
    .u64(m.slashed)
    .u64(m.released)
    .u64(m.frozenNext)
    .u64(m.startedEpoch + 1)
    .u64(m.rewardedNext)
    .u64(m.nextSeq)
    .finish();
}

function decodeMeta(b: Bytes): RegistryMeta {
  return decodeWith(b, 'registry meta', (r) => {
    const ver = r.u8('meta version');
    if (ver !== RECORD_VERSION) throw new QnexusError('MALFORMED', `unsupported registry meta version ${ver}`);
    return {
      stakedIn: r.u64('staked in'),
      feesIn: r.u64('fees in'),
      minted: r.u64('minted'),
      slashed: r.u64('slashed'),
      released: r.u64('released'),
      frozenNext: r.u64n('frozen next'),
      startedEpoch: r.u64n('started epoch') - 1,
      rewardedNext: r.u64n('rewarded next'),
      nextSeq: r.u64n('next seq'),
    };
  });
}

function encodeBucket(b: ParticipationBucket): Bytes {
  const w = new Writer(64 + b.heights.size * 8 + b.signed.size * 28).u32(b.heights.size);
  for (const h of [...b.heights].sort((x, y) => x - y)) w.u64(h);
  w.u32(b.signed.size);
  for (const [a, n] of [...b.signed].sort(([x], [y]) => (x < y ? -1 : 1))) w.fixed(parseAddress(a), 20).u64(n);
  return w.finish();
}

function decodeBucket(b: Bytes): ParticipationBucket {
  return decodeWith(b, 'participation bucket', (r) => {
    const heights = new Set<number>();
    const nh = r.count(1 << 24, 'heights');
    for (let i = 0; i < nh; i++) heights.add(r.u64n('height'));
    const signed = new Map<string, number>();
    const ns = r.count(1 << 20, 'signers');
    for (let i = 0; i < ns; i++) signed.set(formatAddress(r.fixed(20, 'signer')), r.u64n('signed'));
    return { heights, signed };
  });
}

const bucketKey = (epoch: number, shard: number): Bytes => new Writer(12).u64(epoch).u32(shard).finish();

/** Registry changes and the signed announcements of the epochs they froze: written with the log entries, in one batch. */
export interface RegistryWrite {
  changes: RegistryChanges;
  /** Signed announcement bytes of each newly frozen epoch (keyed by epoch). */
  announcements: Map<number, Bytes>;
}

export class BeaconStore {
  private readonly xfers;
  private readonly epochs;
  private readonly meta;

  private readonly dir: string;

  private constructor(private readonly handle: LevelHandle) {
    const db = handle.db;
    this.dir = handle.dir;
    this.xfers = db.sublevel<Bytes, Bytes>('x', SUB_OPTS);
    this.epochs = db.sublevel<Bytes, Bytes>('e', SUB_OPTS);
    this.meta = db.sublevel<Bytes, Bytes>('m', SUB_OPTS);
    this.vals = db.sublevel<Bytes, Bytes>('v', SUB_OPTS);
    this.parts = db.sublevel<Bytes, Bytes>('p', SUB_OPTS);
    this.evid = db.sublevel<Bytes, Bytes>('k', SUB_OPTS);
  }

  private readonly vals;
  private readonly parts;
  private readonly evid;

  static async open(dir: string): Promise<BeaconStore> {
    return new BeaconStore(await openLevel(dir, 'beacon'));
  }

  close(): Promise<void> {
    return this.handle.close();
  }

  /**
   * Write a consistent snapshot of this store into the new directory `dir`
   * (absolute, absent or empty) while the beacon keeps running (@qnexus/db createBackup).
   */
  backup(dir: string, opts: BackupOptions = {}): Promise<BackupResult> {
    return createBackup(this.handle, dir, { ...opts, describe: (copy) => BeaconStore.describeBackup(copy) });
  }

  /** A beacon database's identity as a backup manifest records it: genesis hash, newest stored epoch announcement. */
  static async describeBackup(h: LevelHandle): Promise<BackupIdentity> {
    const s = new BeaconStore(h);
    const genesis = await s.meta.get(utf8('genesis'));
    if (!genesis) throw new QnexusError('BAD_REQUEST', 'the database is not a beacon database (no genesis hash): nothing to back up');
    let chainId: string | null = null;
    let epoch: number | null = null;
    for await (const v of s.epochs.values({ reverse: true, limit: 1 })) {
      const a = decodeEpochAnnouncement(plain(v)).body;
      chainId = a.chainId;
      epoch = a.epoch;
    }
    return { kind: 'beacon', chainId, genesisHash: toHex(plain(genesis)), shard: null, height: null, epoch };
  }

  /**
   * Bind a fresh data dir to this genesis (hash and registry in one batch), or
   * check that an existing one belongs to it.
   */
  async initGenesis(g: Genesis): Promise<void> {
    const hash = genesisHash(g);
    const stored = await this.meta.get(utf8('genesis'));
    if (stored) {
      if (!bytesEqual(stored, hash)) {
        throw new QnexusError('BAD_CONFIG', `data dir ${this.dir} belongs to genesis ${toHex(stored).slice(0, 16)}…, not ${toHex(hash).slice(0, 16)}…; use another --data-dir`);
      }
      return;
    }
    const batch = this.handle.db.batch();
    batch.put(utf8('registry'), encodeRegistry(g), { sublevel: this.meta });
    batch.put(utf8('genesis'), hash, { sublevel: this.meta });
    await batch.write({ sync: true });
  }

  /**
   * Write coordinator log entries (a compacted one as its tombstone, a forgotten one deleted)
   * and registry changes (with the signed announcements of newly frozen epochs), all or none,
   * durably.
   */
  async putEntries(entries: Iterable<XferEntry>, reg?: RegistryWrite): Promise<void> {
    const batch = this.handle.db.batch();
    let n = 0;
    for (const e of entries) {
      if (e.compacted?.dropped) batch.del(fromHex(e.id), { sublevel: this.xfers });
      else batch.put(fromHex(e.id), encodeEntry(e), { sublevel: this.xfers });
      n++;
    }
    if (reg) {
      const c = reg.changes;
      for (const v of c.validators) batch.put(parseAddress(v.address), encodeValidatorRecord(v), { sublevel: this.vals });
      if (c.meta) batch.put(utf8('staking'), encodeMeta(c.meta), { sublevel: this.meta });
      for (const b of c.buckets) batch.put(bucketKey(b.epoch, b.shard), encodeBucket(b.bucket), { sublevel: this.parts });
      for (const b of c.deletedBuckets) batch.del(bucketKey(b.epoch, b.shard), { sublevel: this.parts });
      for (const k of c.evidence) batch.put(utf8(k), new Uint8Array(0), { sublevel: this.evid });
      for (const fe of c.frozen) {
        const bytes = reg.announcements.get(fe.epoch);
        if (!bytes) throw new Error(`no signed announcement for frozen epoch ${fe.epoch}`);
        batch.put(u64be(fe.epoch), bytes, { sublevel: this.epochs });
      }
      n += c.validators.length + (c.meta ? 1 : 0) + c.buckets.length + c.deletedBuckets.length + c.evidence.length + c.frozen.length;
    }
    if (n === 0) {
      await batch.close();
      return;
    }
    await batch.write({ sync: true });
  }

  async getEntry(idHex: string): Promise<XferEntry | undefined> {
    const v = await this.xfers.get(fromHex(idHex));
    return v ? decodeEntry(plain(v)) : undefined;
  }

  /** The log: entries and tombstones (`compacted` set). */
  async loadEntries(): Promise<XferEntry[]> {
    const out: XferEntry[] = [];
    for await (const v of this.xfers.values()) out.push(decodeEntry(plain(v)));
    return out;
  }

  /**
   * The registry as last written, or undefined for a data dir that has none
   * yet (a fresh one, or one from before staking: the genesis registry applies).
   */
  async loadRegistry(): Promise<RegistryState | undefined> {
    const m = await this.meta.get(utf8('staking'));
    if (!m) return undefined;
    const meta = decodeMeta(plain(m));
    const validators: ValidatorRecord[] = [];
    for await (const v of this.vals.values()) validators.push(decodeValidatorRecord(plain(v)));
    const epochs = [];
    for await (const [k, v] of this.epochs.iterator()) {
      const a = decodeEpochAnnouncement(plain(v));
      if (a.body.epoch !== epochOfKey(plain(k))) throw new QnexusError('MALFORMED', 'stored announcement under the wrong epoch');
      if (a.body.epoch < meta.frozenNext) epochs.push(frozenFromAnnouncement(a.body));
    }
    const buckets = [];
    for await (const [k, v] of this.parts.iterator()) {
      const kk = plain(k);
      const dv = new DataView(kk.buffer, kk.byteOffset, kk.byteLength);
      buckets.push({ epoch: Number(dv.getBigUint64(0)), shard: dv.getUint32(8), bucket: decodeBucket(plain(v)) });
    }
    const evidence: string[] = [];
    for await (const k of this.evid.keys()) evidence.push(new TextDecoder().decode(k));
    return { meta, validators, epochs, buckets, evidence };
  }

  /** Record an epoch's assignment the first time it is announced; later announcements of it change nothing. */
  async putEpochIfAbsent(epoch: number, announcement: Bytes): Promise<boolean> {
    const k = u64be(epoch);
    if (await this.epochs.get(k)) return false;
    const batch = this.handle.db.batch();
    batch.put(k, announcement, { sublevel: this.epochs });
    await batch.write({ sync: true });
    return true;
  }

  async epochAnnouncement(epoch: number): Promise<Bytes | undefined> {
    const v = await this.epochs.get(u64be(epoch));
    return v && plain(v);
  }
}

/** The big-endian u64 epoch of an `e` key. */
function epochOfKey(b: Bytes): number {
  return Number(new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(0));
}
