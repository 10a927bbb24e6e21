import { openLevel, type LevelHandle } from '@qnexus/db';
import { bytesEqual, fromHex, toHex } from '@qnexus/crypto';
import { QnexusError, Writer, decodeWith, encodeXferInfo, genesisHash, readXferInfo, type Genesis } from '@qnexus/types';
import type { Outcome, XferEntry } from './coordinator.js';

/**
 * The beacon's database (classic-level, `<data-dir>/db`):
 *   x  32-byte transfer id -> encoded coordinator log entry
 *   e  u64be epoch         -> the first signed epoch announcement of that epoch
 *   m  'genesis'           -> genesis hash (binds the data dir to its chain)
 *      'registry'          -> the validator registry (public key, stake) it was started with
 * Every multi-key write is one batch written with `sync: true`.
 */

type Bytes = Uint8Array;
const SUB_OPTS = { keyEncoding: 'view', valueEncoding: 'view' } as const;
const ENTRY_VERSION = 1;
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
  const w = new Writer(512 + (e.prepareTx?.length ?? 0) + (e.decisionTx?.length ?? 0)).u8(ENTRY_VERSION).u64(e.seq);
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
  return w.finish();
}

export function decodeEntry(b: Bytes): XferEntry {
  return decodeWith(b, 'transfer log entry', (r) => {
    const v = r.u8('entry version');
    if (v !== ENTRY_VERSION) throw new QnexusError('MALFORMED', `unsupported transfer log entry version ${v}`);
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
  }

  static async open(dir: string): Promise<BeaconStore> {
    return new BeaconStore(await openLevel(dir, 'beacon'));
  }

  close(): Promise<void> {
    return this.handle.close();
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

  /** Write coordinator log entries, all or none, durably. */
  async putEntries(entries: Iterable<XferEntry>): Promise<void> {
    const batch = this.handle.db.batch();
    let n = 0;
    for (const e of entries) {
      batch.put(fromHex(e.id), encodeEntry(e), { sublevel: this.xfers });
      n++;
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

  async loadEntries(): Promise<XferEntry[]> {
    const out: XferEntry[] = [];
    for await (const v of this.xfers.values()) out.push(decodeEntry(plain(v)));
    return out;
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
