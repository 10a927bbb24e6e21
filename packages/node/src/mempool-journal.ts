import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { MAX_TX_BYTES, Reader, Writer, decodeWith, type TxEnvelope } from '@qnexus/types';

/**
 * The mempool survives a graceful stop: on shutdown (after the API and the
 * engine stopped, so nothing changes any more) the pending transactions are
 * written to `<data-dir>/mempool.journal`; the next start re-admits them
 * through the normal checks (a transaction committed meanwhile, or no longer
 * valid, is dropped then) and gossips them again. A transaction the node
 * answered 202 for is therefore not lost by a restart, even if it never left
 * this node. A crash (SIGKILL) loses the mempool as before: the file is
 * written only on a clean stop, and removed once read.
 */
export const MEMPOOL_JOURNAL_FILE = 'mempool.journal';

const MAGIC = 0x514e4d4a; // "QNMJ"
const VERSION = 1;
const MAX_ENTRIES = 1_000_000;

export function encodeMempoolJournal(txs: readonly Uint8Array[]): Uint8Array {
  const w = new Writer(64 + txs.reduce((n, t) => n + t.length + 4, 0)).u32(MAGIC).u8(VERSION).u32(txs.length);
  for (const t of txs) w.bytes(t);
  return w.finish();
}

export function decodeMempoolJournal(b: Uint8Array): Uint8Array[] {
  return decodeWith(b, 'mempool journal', (r: Reader) => {
    if (r.u32('magic') !== MAGIC) throw new RangeError('not a mempool journal');
    const v = r.u8('version');
    if (v !== VERSION) throw new RangeError(`unknown mempool journal version ${v}`);
    const n = r.count(MAX_ENTRIES, 'entries');
    const out: Uint8Array[] = [];
    for (let i = 0; i < n; i++) out.push(r.bytes(MAX_TX_BYTES, 'transaction'));
    return out;
  });
}

/** Write the journal in one rename (a reader never sees half a file). Returns how many were saved. */
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
 * Read and remove the journal. A malformed one is moved aside to
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
