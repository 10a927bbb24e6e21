// Deterministic chain fixture shared by the db tests and the crash-writer child process.
// Not a test file itself (mocha only picks up *.test.ts).
import { ZERO_HASH, sha256, toHex, utf8 } from '@qnexus/crypto';
import { blockHash, encodeBlock, encodeCertificate, encodeXferRecord, txRoot, type BlockHeader, type XferRecord } from '@qnexus/types';
import { encodeAccount, encodeCounters, type Counters } from '@qnexus/state';
import type { BlockCommit } from '@qnexus/db';

export const CHAIN = 'qn-db-test';
export const GENESIS_HASH = sha256(utf8('qn-db-test genesis'));
/** Accounts touched by the loop: acct 0 every block, acct 1 + (h % 5) at h. */
export const ACCOUNTS = 6;
export const TXS_PER_BLOCK = 12;
export const TX_BYTES = 700;

export function accountHex(k: number): string {
  return toHex(sha256(utf8(`db-account-${k}`)).slice(0, 20));
}

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

/** Account value written at height h for account k, if any. */
function accountAt(h: number): Map<string, Uint8Array> {
  const m = new Map<string, Uint8Array>();
  m.set(accountHex(0), encodeAccount({ balance: BigInt(h), nonce: BigInt(h), publicKey: null }));
  if (h === 0) {
    for (let k = 1; k < ACCOUNTS; k++) m.set(accountHex(k), encodeAccount({ balance: 0n, nonce: 0n, publicKey: null }));
  } else {
    m.set(accountHex(1 + (h % (ACCOUNTS - 1))), encodeAccount({ balance: BigInt(h) * 1000n, nonce: 1n, publicKey: null }));
  }
  return m;
}

export function burnedAt(h: number): bigint {
  return 3n * BigInt(h);
}

/** State counters written at height h (every commit writes all of them). */
export function countersAt(h: number): Counters {
  const b = BigInt(h);
  return { burned: burnedAt(h), escrow: b % 7n, exported: 2n * b, imported: b, fees: 5n * b, feeEpoch: Math.floor(h / 4) };
}

/** Pending proposer fees: PROPOSERS addresses; height h >= 1 sets proposer h % PROPOSERS to pendingFeeAt(h) (0 = deleted). */
export const PROPOSERS = 3;

export function proposerHex(k: number): string {
  return toHex(sha256(utf8(`db-proposer-${k}`)).slice(0, 20));
}

/** Every 4th height sends the proposer's fees away (0 deletes the entry); otherwise a new amount. */
export function pendingFeeAt(h: number): bigint {
  return h % 4 === 0 ? 0n : BigInt(h) * 10n;
}

function pendingFeesAt(h: number): Map<string, bigint> {
  if (h === 0) return new Map();
  return new Map([[proposerHex(h % PROPOSERS), pendingFeeAt(h)]]);
}

/** Transfer records: XFER_IDS ids; height h >= 1 rewrites record h % XFER_IDS (so records are both added and updated). */
export const XFER_IDS = 4;

export function xferIdHex(k: number): string {
  return toHex(sha256(utf8(`db-xfer-${k}`)));
}

/** The record for id k as written at height h. */
export function xferRecordAt(k: number, h: number): XferRecord {
  return {
    role: k % 2 ? 'source' : 'destination',
    info: {
      kind: k === 3 ? 'stake' : 'transfer',
      id: sha256(utf8(`db-xfer-${k}`)),
      srcShard: k % 2 ? 0 : 1,
      dstShard: k % 2 ? 1 : 0,
      from: sha256(utf8(`from-${k}`)).slice(0, 20),
      to: sha256(utf8(`to-${k}`)).slice(0, 20),
      amount: BigInt(100 + k),
      deadlineSlot: 1000 + k,
      data: k === 3 ? new Uint8Array(1312).fill(k) : new Uint8Array(0),
    },
    prepare: 'accepted',
    reason: '',
    decision: h % 3 === 0 ? 'commit' : 'none',
    preparedHeight: h,
    decidedHeight: h % 3 === 0 ? h : 0,
  };
}

function xfersAt(h: number): Map<string, Uint8Array> {
  if (h === 0) return new Map();
  const k = h % XFER_IDS;
  return new Map([[xferIdHex(k), encodeXferRecord(xferRecordAt(k, h))]]);
}

export function commitFor(h: number): BlockCommit {
  return {
    height: h,
    hash: hashOf(h),
    block: blockBytes(h),
    certificate: h === 0 ? null : certificateBytes(h),
    txHashes: Array.from({ length: TXS_PER_BLOCK }, (_, i) => txHash(h, i)),
    accounts: accountAt(h),
    xfers: xfersAt(h),
    pendingFees: pendingFeesAt(h),
    counters: encodeCounters(countersAt(h)),
    ...(h === 0 ? { genesisHash: GENESIS_HASH } : {}),
  };
}

/**
 * The state the loop must have produced once heights 0..H are committed
 * (computed in closed form, independently of commitFor), sorted by address.
 */
export function expectedState(H: number): { accounts: [string, string][]; xfers: string[]; pendingFees: [string, bigint][]; counters: Counters } {
  const accounts: [string, string][] = [[accountHex(0), toHex(encodeAccount({ balance: BigInt(H), nonce: BigInt(H), publicKey: null }))]];
  const n = ACCOUNTS - 1;
  for (let k = 1; k < ACCOUNTS; k++) {
    // last height h in 1..H with 1 + h % n === k
    let last = -1;
    for (let h = H; h >= Math.max(1, H - n); h--) {
      if (1 + (h % n) === k) {
        last = h;
        break;
      }
    }
    const acc = last > 0 ? { balance: BigInt(last) * 1000n, nonce: 1n, publicKey: null } : { balance: 0n, nonce: 0n, publicKey: null };
    accounts.push([accountHex(k), toHex(encodeAccount(acc))]);
  }
  accounts.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  // the last height h in 1..H with h % XFER_IDS === k wrote record k
  const xfers: [string, string][] = [];
  for (let k = 0; k < XFER_IDS; k++) {
    const last = H - ((((H - k) % XFER_IDS) + XFER_IDS) % XFER_IDS);
    if (last < 1) continue;
    xfers.push([xferIdHex(k), toHex(encodeXferRecord(xferRecordAt(k, last)))]);
  }
  // stored by id: returned in id order
  xfers.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  // the last height h in 1..H with h % PROPOSERS === k wrote proposer k (absent if never, or if it wrote 0)
  const pendingFees: [string, bigint][] = [];
  for (let k = 0; k < PROPOSERS; k++) {
    const last = H - ((((H - k) % PROPOSERS) + PROPOSERS) % PROPOSERS);
    if (last < 1 || pendingFeeAt(last) === 0n) continue;
    pendingFees.push([proposerHex(k), pendingFeeAt(last)]);
  }
  pendingFees.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return { accounts, xfers: xfers.map(([, r]) => r), pendingFees, counters: countersAt(H) };
}
