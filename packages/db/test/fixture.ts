// Deterministic chain fixture shared by the db tests and the crash-writer child process.
// Not a test file itself (mocha only picks up *.test.ts).
import { ZERO_HASH, sha256, toHex, utf8 } from '@qnexus/crypto';
import { Writer, blockHash, encodeBlock, encodeCertificate, txRoot, type BlockHeader } from '@qnexus/types';
import type { BlockCommit } from '@qnexus/db';

export const CHAIN = 'qn-db-test';
export const GENESIS_HASH = sha256(utf8('qn-db-test genesis'));
/** Accounts touched by the loop: acct 0 every block, acct 1 + (h % 5) at h. */
export const ACCOUNTS = 6;
export const TXS_PER_BLOCK = 12;
export const TX_BYTES = 700;

export function txBytes(h: number, i: number): Uint8Array {
  const seed = sha256(utf8(`tx-${h}-${i}`));
  const out = new Uint8Array(TX_BYTES);
  for (let j = 0; j < TX_BYTES; j++) out[j] = seed[j % 32]! ^ (j & 0xff);
  return out;
}

export function txHash(h: number, i: number): Uint8Array {
  return sha256(txBytes(h, i));
}

const hashes: Uint8Array[] = [];

export function header(h: number): BlockHeader {
  return { ...headerNoParent(h), parentHash: h === 0 ? ZERO_HASH : hashOf(h - 1) };
}

/** Block hash at height h (iterative memo so deep heights don't recurse). */
export function hashOf(h: number): Uint8Array {
  for (let i = hashes.length; i <= h; i++) {
    hashes.push(blockHash({ ...headerNoParent(i), parentHash: i === 0 ? ZERO_HASH : hashes[i - 1]! }));
  }
  return hashes[h]!;
}

function headerNoParent(h: number): Omit<BlockHeader, 'parentHash'> {
  const txHashes = Array.from({ length: TXS_PER_BLOCK }, (_, i) => txHash(h, i));
  return {
    chainId: CHAIN,
    shard: 0,
    height: h,
    slot: 2 * h,
    stateRoot: sha256(utf8(`state-${h}`)),
    txRoot: txRoot(txHashes),
    proposer: sha256(utf8(`proposer-${h % 3}`)).slice(0, 20),
    txCount: TXS_PER_BLOCK,
  };
}

export function blockBytes(h: number): Uint8Array {
  return encodeBlock({
    header: header(h),
    signature: new Uint8Array(2420).fill(h & 0xff),
    txs: Array.from({ length: TXS_PER_BLOCK }, (_, i) => txBytes(h, i)),
  });
}

export function certificateBytes(h: number): Uint8Array {
  return encodeCertificate({
    height: h,
    round: h % 3,
    blockHash: hashOf(h),
    votes: [0, 1, 2].map((v) => ({ validator: sha256(utf8(`val-${v}`)).slice(0, 20), signature: new Uint8Array(2420).fill(v + h) })),
  });
}

/*
 * State writes: the db stores raw keys and values and never interprets them,
 * so the fixture's values are opaque bytes of varied lengths under keys shaped
 * like the state's (u8 module id ‖ module key), with overwrites, deletions and
 * keys that come back after a deletion.
 */
const key = (module: number, tag: number, id: Uint8Array) => toHex(new Uint8Array([module, tag, ...id]));

/** Accounts touched by the loop: acct 0 every block, acct 1 + (h % 5) at h >= 1; all of them at h = 0. */
export function accountKey(k: number): string {
  return key(1, 0x61, sha256(utf8(`db-account-${k}`)).slice(0, 20));
}

/** The value of account k as written at height h (its length varies with h: 8 to 39 bytes). */
export function accountValue(k: number, h: number): Uint8Array {
  return sha256(utf8(`acct-${k}-${h}`)).slice(0, 8 + (h % 32));
}

/** One entry rewritten by every commit (like a running total). */
export const TOTAL_KEY = key(1, 0x74, utf8('qfc'));

export function totalValue(h: number): Uint8Array {
  return new Writer(8).u64(3n * BigInt(h)).finish();
}

/** Pending-fee-like entries: height h >= 1 writes proposer h % PROPOSERS, and deletes it when h % 4 === 0. */
export const PROPOSERS = 3;

export function proposerKey(k: number): string {
  return key(3, 0x70, sha256(utf8(`db-proposer-${k}`)).slice(0, 20));
}

/** Value written for the proposer of height h, or null: the entry is deleted (it comes back when a later height writes it). */
export function proposerValueAt(h: number): Uint8Array | null {
  return h % 4 === 0 ? null : new Writer(8).u64(BigInt(h) * 10n).finish();
}

/** Transfer-record-like entries: XFER_IDS ids; height h >= 1 rewrites id h % XFER_IDS (so entries are both added and updated). */
export const XFER_IDS = 4;

export function xferKey(k: number): string {
  return key(2, 0x72, sha256(utf8(`db-xfer-${k}`)));
}

/** Record k as written at height h; record 3 is large (a stake record carries a public key). */
export function xferValueAt(k: number, h: number): Uint8Array {
  const out = new Uint8Array(k === 3 ? 1400 : 150 + k);
  const seed = sha256(utf8(`xfer-${k}-${h}`));
  for (let i = 0; i < out.length; i++) out[i] = seed[i % 32]! ^ (i & 0xff);
  return out;
}

function writesAt(h: number): Map<string, Uint8Array | null> {
  const m = new Map<string, Uint8Array | null>();
  m.set(accountKey(0), accountValue(0, h));
  if (h === 0) {
    for (let k = 1; k < ACCOUNTS; k++) m.set(accountKey(k), accountValue(k, 0));
  } else {
    const k = 1 + (h % (ACCOUNTS - 1));
    m.set(accountKey(k), accountValue(k, h));
    m.set(xferKey(h % XFER_IDS), xferValueAt(h % XFER_IDS, h));
    m.set(proposerKey(h % PROPOSERS), proposerValueAt(h));
  }
  m.set(TOTAL_KEY, totalValue(h));
  return m;
}

/**
 * Trie nodes: opaque to the db like the values. Height h puts one node of its
 * own version and marks the node of h - 1 stale (what a trie version does),
 * so pruning has something to delete.
 */
export function trieNodeKey(h: number): Uint8Array {
  return new Writer(12).u32(0x7472).u64(h).finish();
}

function trieNodesAt(h: number): BlockCommit['trie'] {
  return { version: h, puts: [[trieNodeKey(h), sha256(utf8(`node-${h}`))]], dels: [], stale: h > 0 ? [trieNodeKey(h - 1)] : [] };
}

/**
 * State writes for the state-trie tests (real trie nodes, not opaque ones):
 * height h touches 24 of TRIE_KEYS bank-shaped keys (and a few that extend
 * others), setting most and deleting some, so keys come, change, go and
 * come back. Deterministic in h: the expected state of any height is
 * recomputed from scratch by replaying 0..h into a map (trieModelAt).
 */
export const TRIE_KEYS = 400;

export function trieKey(i: number): string {
  const base = key(1, i % 3 === 0 ? 0x61 : 0x62, sha256(utf8(`trie-key-${i % 300}`)).slice(0, 20));
  return i >= 300 ? base + toHex(utf8(`d${i}`)) : base;
}

export function trieWritesAt(h: number): Map<string, Uint8Array | null> {
  const m = new Map<string, Uint8Array | null>();
  const seed = sha256(utf8(`trie-height-${h}`));
  const n = h === 0 ? TRIE_KEYS : 24;
  for (let j = 0; j < n; j++) {
    const i = h === 0 ? j : (seed[j % 32]! * 7 + seed[(j + 5) % 32]! + j * 131) % TRIE_KEYS;
    const del = h > 0 && (seed[(j + 11) % 32]! + j) % 4 === 0;
    m.set(trieKey(i), del ? null : sha256(utf8(`trie-${i}-${h}`)).slice(0, 1 + ((i + h) % 32)));
  }
  return m;
}

/** The state after heights 0..H of trieWritesAt. */
export function trieModelAt(H: number): Map<string, Uint8Array> {
  const m = new Map<string, Uint8Array>();
  for (let h = 0; h <= H; h++) {
    for (const [k, v] of trieWritesAt(h)) {
      if (v) m.set(k, v);
      else m.delete(k);
    }
  }
  return m;
}

export function commitFor(h: number): BlockCommit {
  return {
    height: h,
    hash: hashOf(h),
    block: blockBytes(h),
    certificate: h === 0 ? null : certificateBytes(h),
    txHashes: Array.from({ length: TXS_PER_BLOCK }, (_, i) => txHash(h, i)),
    writes: writesAt(h),
    trie: trieNodesAt(h),
    ...(h === 0 ? { genesisHash: GENESIS_HASH } : {}),
  };
}

/** The last height in 1..H whose `h % n` is `k`, or -1. */
function lastWith(H: number, n: number, k: number): number {
  const last = H - ((((H - k) % n) + n) % n);
  return last >= 1 ? last : -1;
}

/**
 * The state the loop must have produced once heights 0..H are committed
 * (computed in closed form, independently of commitFor), as [key hex, value
 * hex] in key order: what loadState returns.
 */
export function expectedState(H: number): [string, string][] {
  const out: [string, string][] = [[accountKey(0), toHex(accountValue(0, H))], [TOTAL_KEY, toHex(totalValue(H))]];
  for (let k = 1; k < ACCOUNTS; k++) {
    // the last height h in 1..H with 1 + h % (ACCOUNTS - 1) === k
    let last = -1;
    for (let h = H; h >= Math.max(1, H - ACCOUNTS); h--) {
      if (1 + (h % (ACCOUNTS - 1)) === k) {
        last = h;
        break;
      }
    }
    out.push([accountKey(k), toHex(accountValue(k, last > 0 ? last : 0))]);
  }
  for (let k = 0; k < XFER_IDS; k++) {
    const last = lastWith(H, XFER_IDS, k);
    if (last > 0) out.push([xferKey(k), toHex(xferValueAt(k, last))]);
  }
  for (let k = 0; k < PROPOSERS; k++) {
    const last = lastWith(H, PROPOSERS, k);
    const v = last > 0 ? proposerValueAt(last) : null;
    if (v) out.push([proposerKey(k), toHex(v)]);
  }
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}
