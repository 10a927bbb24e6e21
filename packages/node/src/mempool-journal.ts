import { copyFileSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { MAX_TX_BYTES, QnexusError, Reader, Writer, decodeWith, type TxEnvelope } from '@qnexus/types';

/**
 * The admission journal: a 202 from `POST /v1/txs` is a durable promise. Every transaction the
 * API acknowledges is appended to `<data-dir>/admission.journal` and the append is on disk
 * (fdatasync) before the answer goes out. Admissions that arrive while a write is in flight
 * wait for the next one and share it (group commit), so the cost per transaction falls
 * as the load rises. Entries die when their transaction leaves the mempool (final, stale or
 * dropped); the file is rewritten with the live set (write, fsync, rename) once the dead
 * records outnumber the live ones, and at a clean stop, when it takes the whole mempool (also
 * what gossip brought), so a clean restart loses nothing either. At start every record is
 * re-admitted through the normal checks (a transaction final or invalid by now drops out) and
 * gossiped again.
 *
 * Format: an 8-byte header (magic "QNAJ", version, 3 zero bytes), then records of
 * `u32le length, u32le crc32(payload), payload` where the payload is a transaction's wire
 * encoding. A crash can leave a torn last record: reading stops at the first record that is
 * incomplete or fails its checksum and keeps what came before. A file with a foreign header is
 * moved aside to `<path>.corrupt` with a warning; a checksum failure inside the file keeps the
 * good prefix and leaves a copy of the whole file there too. Neither stops the node.
 *
 * Transactions received by gossip are not journaled on arrival: another node acknowledged them
 * and holds them in its own journal.
 */
export const ADMISSION_JOURNAL_FILE = 'admission.journal';

const MAGIC = 0x514e414a; // "QNAJ"
const VERSION = 1;
const HEADER_BYTES = 8;
const RECORD_OVERHEAD = 8;
/** Default bound on the admissions waiting for the next write: beyond it the API sheds (NODE_BUSY). */
export const DEFAULT_JOURNAL_MAX_PENDING = 4096;
/** Dead records tolerated before compaction, however few the live ones. */
const MIN_DEAD_FOR_COMPACTION = 256;

function header(): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  b.writeUInt32BE(MAGIC, 0);
  b.writeUInt8(VERSION, 4);
  return b;
}

/** One record: length, checksum, transaction bytes. */
export function encodeJournalRecord(raw: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(RECORD_OVERHEAD + raw.length);
  b.writeUInt32LE(raw.length, 0);
  b.writeUInt32LE(crc32(raw), 4);
  b.set(raw, RECORD_OVERHEAD);
  return b;
}

/** A whole journal file holding `txs`. */
export function encodeAdmissionJournal(txs: readonly Uint8Array[]): Buffer {
  return Buffer.concat([header(), ...txs.map(encodeJournalRecord)]);
}

export interface DecodedJournal {
  txs: Uint8Array[];
  /** Bytes after the last good record (a torn write, or corruption). */
  tailBytes: number;
  /** Set when the tail is not just a torn write: a complete record failed its checksum or had an impossible length. */
  corrupt?: string;
}

/** Decode a journal file: every good record up to the first bad one. Throws RangeError on a foreign header. */
export function decodeAdmissionJournal(b: Uint8Array): DecodedJournal {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length < HEADER_BYTES || buf.readUInt32BE(0) !== MAGIC) throw new RangeError('not an admission journal');
  const v = buf.readUInt8(4);
  if (v !== VERSION) throw new RangeError(`unknown admission journal version ${v}`);
  const txs: Uint8Array[] = [];
  let at = HEADER_BYTES;
  let corrupt: string | undefined;
  while (at + RECORD_OVERHEAD <= buf.length) {
    const len = buf.readUInt32LE(at);
    if (len === 0 || len > MAX_TX_BYTES) {
      corrupt = `record at byte ${at} claims ${len} bytes`;
      break;
    }
    if (at + RECORD_OVERHEAD + len > buf.length) break; // torn: the write never completed
    const payload = buf.subarray(at + RECORD_OVERHEAD, at + RECORD_OVERHEAD + len);
    if (crc32(payload) !== buf.readUInt32LE(at + 4)) {
      corrupt = `record at byte ${at} fails its checksum`;
      break;
    }
    txs.push(new Uint8Array(payload)); // a copy: the file's buffer is not kept alive by one entry
    at += RECORD_OVERHEAD + len;
  }
  return { txs, tailBytes: buf.length - at, ...(corrupt !== undefined ? { corrupt } : {}) };
}

/**
 * Read the journal at `path` (nothing when absent). A foreign or unreadable file is moved aside
 * to `<path>.corrupt`; a corrupt record keeps the records before it and a copy of the file there.
 * `warning` says what happened, for the log.
 */
export function readAdmissionJournal(path: string): { txs: Uint8Array[]; warning?: string; tailBytes: number } {
  if (!existsSync(path)) return { txs: [], tailBytes: 0 };
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    renameSync(path, `${path}.corrupt`);
    return { txs: [], tailBytes: 0, warning: `unreadable, moved aside: ${(e as Error).message}` };
  }
  let d: DecodedJournal;
  try {
    d = decodeAdmissionJournal(bytes);
  } catch (e) {
    renameSync(path, `${path}.corrupt`);
    return { txs: [], tailBytes: bytes.length, warning: `${(e as Error).message}; moved aside` };
  }
  if (d.corrupt !== undefined) {
    copyFileSync(path, `${path}.corrupt`);
    return { txs: d.txs, tailBytes: d.tailBytes, warning: `${d.corrupt}; kept the ${d.txs.length} records before it, a copy of the file is at ${path}.corrupt` };
  }
  return { txs: d.txs, tailBytes: d.tailBytes };
}

export interface AdmissionJournalOptions {
  /** Most live entries (the mempool's bound): an append beyond it is refused MEMPOOL_FULL. */
  maxEntries: number;
  /** Most admissions waiting for the next write; `saturated` beyond it (the API sheds). */
  maxPending?: number;
  /** Where the journal's metrics register (none: no metrics). */
  registry?: Registry;
}

interface Live {
  raw: Uint8Array;
  /** Settles when the record is on disk. */
  durable: Promise<void>;
  written: boolean;
}

interface Queued {
  hashHex: string;
  raw: Uint8Array;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** Counters of the journal's work (also exported as metrics): tests count fsyncs here. */
export interface JournalStats {
  /** fdatasync calls: one per group write, and the fsyncs of compactions. */
  fsyncs: number;
  /** Group writes, and the records they carried. */
  groups: number;
  records: number;
  compactions: number;
}

/**
 * The append side of the admission journal (see the file comment). One writer loop: a group
 * write or a compaction at a time, never both, so the file is always a header plus whole
 * records except for a torn tail after a crash.
 */
export class AdmissionJournal {
  readonly stats: JournalStats = { fsyncs: 0, groups: 0, records: 0, compactions: 0 };
  private readonly live = new Map<string, Live>();
  private queue: Queued[] = [];
  private fh: FileHandle | null = null;
  private running: Promise<void> | null = null;
  private closed = false;
  /** `open` ran: until then the file on disk is the previous run's, and only `open` may replace it. */
  private opened = false;
  /** Records in the file (live or dead) and how many of them are still live. */
  private fileRecords = 0;
  private writtenLive = 0;
  private fileBytes = 0;
  private readonly maxPending: number;
  private readonly m: { fsyncs: Counter; group: Histogram; bytes: Gauge; entries: Gauge; compactions: Counter } | null;

  constructor(
    readonly path: string,
    private readonly opts: AdmissionJournalOptions,
  ) {
    this.maxPending = opts.maxPending ?? DEFAULT_JOURNAL_MAX_PENDING;
    const r = opts.registry;
    this.m = r
      ? {
          fsyncs: new Counter({ name: 'qnexus_admission_journal_fsyncs_total', help: 'fdatasync calls of the admission journal (one per group write; file and directory fsyncs of compactions)', registers: [r] }),
          group: new Histogram({
            name: 'qnexus_admission_journal_group_entries',
            help: 'Admissions made durable by one journal write (group commit)',
            buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024],
            registers: [r],
          }),
          bytes: new Gauge({ name: 'qnexus_admission_journal_bytes', help: 'Size of the admission journal file', registers: [r] }),
          entries: new Gauge({ name: 'qnexus_admission_journal_entries', help: 'Live entries of the admission journal (acknowledged, not yet final or dropped)', registers: [r] }),
          compactions: new Counter({ name: 'qnexus_admission_journal_compactions_total', help: 'Rewrites of the admission journal with its live entries', registers: [r] }),
        }
      : null;
  }

  /** Live entries (acknowledged, not yet final or dropped). */
  get size(): number {
    return this.live.size;
  }

  /** Admissions waiting for the next write. */
  get backlog(): number {
    return this.queue.length;
  }

  /** Too many admissions wait for the disk: the API sheds instead of queueing more. */
  get saturated(): boolean {
    return this.queue.length >= this.maxPending;
  }

  /** Start a fresh file holding `initial` (what start-up re-admitted), then accept appends. */
  async open(initial: readonly TxEnvelope[]): Promise<void> {
    for (const env of initial) this.live.set(env.hashHex, { raw: env.raw, durable: Promise.resolve(), written: true });
    await this.rewrite();
    this.opened = true;
  }

  /**
   * Make an admitted transaction durable: resolves once its record is on disk (at once if it
   * already is). Throws MEMPOOL_FULL at the bound and UNAVAILABLE once closed.
   */
  append(env: TxEnvelope): Promise<void> {
    const have = this.live.get(env.hashHex);
    if (have) return have.durable;
    if (this.closed || !this.opened) return Promise.reject(new QnexusError('UNAVAILABLE', 'the admission journal is not open (the node is starting or stopping); retry shortly'));
    if (this.live.size >= this.opts.maxEntries) return Promise.reject(new QnexusError('MEMPOOL_FULL', `admission journal holds ${this.opts.maxEntries} transactions; retry later`));
    let q!: Queued;
    const durable = new Promise<void>((resolve, reject) => {
      q = { hashHex: env.hashHex, raw: env.raw, resolve, reject };
    });
    this.live.set(env.hashHex, { raw: env.raw, durable, written: false });
    this.queue.push(q);
    this.kick();
    return durable;
  }

  /** The transaction left the mempool (final, stale, dropped): its record is dead. */
  remove(hashHex: string): void {
    const e = this.live.get(hashHex);
    if (!e) return;
    this.live.delete(hashHex);
    if (e.written) this.writtenLive--;
    this.m?.entries.set(this.live.size);
    if (this.wantsCompaction()) this.kick();
  }

  /**
   * Clean stop: wait for the writes in flight, then rewrite the file with `snapshot` (the whole
   * mempool: also what gossip brought) and close. Later appends are refused.
   */
  async close(snapshot: readonly TxEnvelope[]): Promise<void> {
    this.closed = true;
    // A start that failed before `open` must not replace the previous run's journal.
    if (!this.opened) return;
    await this.idle();
    this.live.clear();
    for (const env of snapshot) this.live.set(env.hashHex, { raw: env.raw, durable: Promise.resolve(), written: true });
    try {
      await this.rewrite();
    } finally {
      await this.fh?.close();
      this.fh = null;
    }
  }

  /** Resolves when no write or compaction is in flight. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private wantsCompaction(): boolean {
    const dead = this.fileRecords - this.writtenLive;
    return dead >= MIN_DEAD_FOR_COMPACTION && dead > this.writtenLive;
  }

  private kick(): void {
    if (this.running) return;
    // Start after the current turn of the event loop: the admissions of every request read in
    // this turn share the first group's write, instead of the first one going alone.
    this.running = new Promise<void>((r) => setImmediate(r)).then(() => this.loop()).finally(() => {
      this.running = null;
      // An append or a removal may have come in while the loop was finishing.
      if (this.queue.length > 0 || (!this.closed && this.wantsCompaction())) this.kick();
    });
  }

  private async loop(): Promise<void> {
    for (;;) {
      if (this.queue.length > 0) {
        // Everything queued so far shares one write and one fsync; what arrives meanwhile forms the next group.
        const group = this.queue;
        this.queue = [];
        await this.writeGroup(group);
      } else if (!this.closed && this.wantsCompaction()) {
        await this.rewrite().catch(() => undefined); // kept for the next attempt; appends still go to the old file
      } else {
        return;
      }
    }
  }

  private async writeGroup(group: Queued[]): Promise<void> {
    const buf = Buffer.concat(group.map((q) => encodeJournalRecord(q.raw)));
    try {
      if (!this.fh) throw new Error('admission journal is not open');
      await this.fh.write(buf, 0, buf.length, null);
      // A separate fdatasync, not an O_DSYNC file: the longer a write is in flight, the more
      // admissions arriving meanwhile share the next one (with O_DSYNC, 24 concurrent API
      // admissions could each get a write of their own).
      await this.fh.datasync();
    } catch (e) {
      // The file may now end in a partial record, which would hide every later one: start a
      // fresh file from the durable live set before the next group.
      const err = new QnexusError('UNAVAILABLE', `could not make the admission durable: ${(e as Error).message}`);
      for (const q of group) {
        const e = this.live.get(q.hashHex);
        if (e && !e.written) this.live.delete(q.hashHex); // not durable: a resubmission journals it again
        q.reject(err);
      }
      await this.rewrite().catch(() => undefined);
      return;
    }
    this.count(1);
    this.stats.groups++;
    this.stats.records += group.length;
    this.m?.group.observe(group.length);
    this.fileRecords += group.length;
    this.fileBytes += buf.length;
    for (const q of group) {
      const e = this.live.get(q.hashHex);
      if (e && !e.written) {
        e.written = true;
        this.writtenLive++;
      }
      q.resolve();
    }
    this.m?.bytes.set(this.fileBytes);
    this.m?.entries.set(this.live.size);
  }

  /** Replace the file with the written live set: write a temporary file, fsync, rename, fsync the directory. */
  private async rewrite(): Promise<void> {
    const kept: Uint8Array[] = [];
    for (const e of this.live.values()) if (e.written) kept.push(e.raw);
    const bytes = encodeAdmissionJournal(kept);
    const tmp = `${this.path}.tmp`;
    const t = await open(tmp, 'w', 0o600);
    try {
      await t.write(bytes, 0, bytes.length, 0);
      await t.datasync();
    } finally {
      await t.close();
    }
    renameSync(tmp, this.path);
    await syncDir(dirname(this.path));
    this.count(2);
    await this.fh?.close();
    this.fh = this.closed ? null : await open(this.path, 'a', 0o600);
    this.stats.compactions++;
    this.m?.compactions.inc();
    this.fileRecords = kept.length;
    this.writtenLive = kept.length;
    this.fileBytes = bytes.length;
    this.m?.bytes.set(this.fileBytes);
    this.m?.entries.set(this.live.size);
  }

  private count(fsyncs: number): void {
    this.stats.fsyncs += fsyncs;
    this.m?.fsyncs.inc(fsyncs);
  }
}

/** fsync a directory so a rename in it survives a power cut (not supported everywhere: best effort). */
async function syncDir(dir: string): Promise<void> {
  let d: FileHandle | null = null;
  try {
    d = await open(dir, 'r');
    await d.sync();
  } catch {
    // e.g. Windows cannot open directories: the rename is still atomic, only its durability is weaker
  } finally {
    await d?.close();
  }
}

// ---------------------------------------------------------------- the earlier clean-stop file

/**
 * Before the admission journal, a clean stop wrote the whole mempool to `mempool.journal`. A
 * node upgraded across that change re-admits it once at its first start (`takeMempoolJournal`).
 */
export const MEMPOOL_JOURNAL_FILE = 'mempool.journal';

const LEGACY_MAGIC = 0x514e4d4a; // "QNMJ"
const LEGACY_VERSION = 1;
const MAX_ENTRIES = 1_000_000;

export function encodeMempoolJournal(txs: readonly Uint8Array[]): Uint8Array {
  const w = new Writer(64 + txs.reduce((n, t) => n + t.length + 4, 0)).u32(LEGACY_MAGIC).u8(LEGACY_VERSION).u32(txs.length);
  for (const t of txs) w.bytes(t);
  return w.finish();
}

export function decodeMempoolJournal(b: Uint8Array): Uint8Array[] {
  return decodeWith(b, 'mempool journal', (r: Reader) => {
    if (r.u32('magic') !== LEGACY_MAGIC) throw new RangeError('not a mempool journal');
    const v = r.u8('version');
    if (v !== LEGACY_VERSION) throw new RangeError(`unknown mempool journal version ${v}`);
    const n = r.count(MAX_ENTRIES, 'entries');
    const out: Uint8Array[] = [];
    for (let i = 0; i < n; i++) out.push(r.bytes(MAX_TX_BYTES, 'transaction'));
    return out;
  });
}

/** Write a file in the earlier format (tests of the upgrade path). */
export function saveMempoolJournal(path: string, pending: readonly TxEnvelope[]): number {
  if (pending.length === 0) {
    rmSync(path, { force: true });
    return 0;
  }
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, encodeMempoolJournal(pending.map((e) => e.raw)), { mode: 0o600 });
  renameSync(tmp, path);
  return pending.length;
}

/**
 * Read and remove a file in the earlier format. A malformed one is moved aside to
 * `<path>.corrupt` (kept for inspection) and yields nothing.
 */
export function takeMempoolJournal(path: string): { txs: Uint8Array[]; error?: string } {
  if (!existsSync(path)) return { txs: [] };
  try {
    const txs = decodeMempoolJournal(readFileSync(path));
    rmSync(path, { force: true });
    return { txs };
  } catch (e) {
    renameSync(path, `${path}.corrupt`);
    return { txs: [], error: (e as Error).message };
  }
}
