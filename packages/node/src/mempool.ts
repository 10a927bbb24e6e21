import { ADDRESS_BYTES, ADDRESS_PREFIX } from '@qnexus/crypto';
import { QnexusError, XPREPARE_KIND, isSystemKind, type AnyErrorCode, type TxEnvelope } from '@qnexus/types';
import { Branch, MODULE_IDS, type Account, type BlockContext } from '@qnexus/state';
import type { Chain } from './chain.js';
import { signedTxId, type TxVerdict, type TxVerifier } from './verifier.js';

export interface MempoolLimits {
  /** Most transactions held at once. */
  maxTxs: number;
  /** How far past the account's next nonce a transaction may be queued. */
  maxNonceGap: number;
  /** Most bytes of transactions (their encodings) held at once; default DEFAULT_MEMPOOL_MAX_BYTES. */
  maxBytes?: number;
}

/**
 * Default bound on the bytes of pending transactions. The count alone (20,000) let a pool of
 * large transactions (a stake is up to 16 KiB) hold 320 MB, and an overloaded node's memory grew
 * with its backlog: 32 MiB is ≈ 13,000 keyless ML-DSA-44 transfers, a minute of a shard's
 * saturated rate, and keeps a node under load near its memory target (docs/performance.md).
 */
export const DEFAULT_MEMPOOL_MAX_BYTES = 32 * 1024 * 1024;

/**
 * Block context for "would this beacon entry apply on the head?": the next height and slot. The
 * proposer only receives fee tips, and beacon entries carry no fee, so any address will do.
 */
const NO_PROPOSER = new Uint8Array(ADDRESS_BYTES);

export const DEFAULT_MEMPOOL_LIMITS: MempoolLimits = { maxTxs: 20_000, maxNonceGap: 64 };
/** Senders whose head account the pool remembers at once (a flood of new senders only clears it). */
const ACCOUNT_MEMO_MAX = 4096;

/** How a transaction's cost is made up, for error messages. */
function costWhat(env: TxEnvelope, cost: bigint): string {
  return cost === env.tx.body.fee ? 'the fee' : 'amount + fee';
}

function keyUnknown(env: TxEnvelope): QnexusError {
  return new QnexusError('TX_KEY_UNKNOWN', `${env.fromStr} has no registered public key: send the public key with the account's first transaction`);
}

interface Entry {
  env: TxEnvelope;
  cost: bigint;
}

export type AdmitResult = 'added' | 'known';

export interface RejectedInfo {
  env: TxEnvelope;
  code: AnyErrorCode;
  message: string;
}

/**
 * Pending transactions, per sender ordered by nonce. Admission runs every
 * check a block would (stateless rules, the signature once, nonce window,
 * funds including the sender's other pending spends), so nothing invalid is
 * ever gossiped on.
 */
export class Mempool {
  private readonly byHash = new Map<string, Entry>();
  /** Bytes of the transactions in byHash (their encodings). */
  private bytes = 0;
  /** sender hex -> nonce -> entry */
  private readonly bySender = new Map<string, Map<bigint, Entry>>();
  /** Recently dropped transactions, so GET /v1/txs can say why (bounded). */
  private readonly rejected = new Map<string, RejectedInfo>();
  /**
   * Signature checks in flight, so concurrent copies of one tx are verified once. Keyed by
   * the tx id and the digest of its signature bytes: the id does not cover the signature, so
   * a forged copy in flight must neither lend its verdict to the genuine one nor borrow it.
   */
  private readonly verifying = new Map<string, Promise<TxVerdict>>();
  /**
   * Beacon entries (cross-shard prepare requests and decisions) waiting for a
   * block. They have no sender nonce; each applies at most once, which the
   * state's transfer records enforce.
   */
  private readonly system = new Map<string, TxEnvelope>();
  /** Told when a beacon entry arrives for a transfer phase already recorded here (the beacon missed our report). */
  onStaleSystem: ((env: TxEnvelope, code: AnyErrorCode) => void) | null = null;
  /** Told when a transaction leaves the pool (final, stale or dropped): the admission journal forgets it. */
  onRemoved: ((hashHex: string) => void) | null = null;

  private readonly maxGap: bigint;
  private committed = 0;
  /** Senders' accounts read at the head state of `accountsVersion` (null: no account); see account(). */
  private readonly accounts = new Map<string, Account | null>();
  private accountsVersion = -2;

  constructor(
    private readonly chain: Chain,
    private readonly verifier: TxVerifier,
    private readonly limits: MempoolLimits = DEFAULT_MEMPOOL_LIMITS,
  ) {
    this.maxGap = BigInt(limits.maxNonceGap);
  }

  /** Whether an account transaction is pending here. */
  has(hashHex: string): boolean {
    return this.byHash.has(hashHex);
  }

  /**
   * Transactions of finalized blocks since start (monotonic): how fast the chain drains the
   * pool, which the API's admission control measures (node.ts, LoadMonitor.addQueue).
   */
  get committedTotal(): number {
    return this.committed;
  }

  get size(): number {
    return this.byHash.size + this.system.size;
  }

  /** MEMPOOL_FULL when one more transaction of `size` bytes would pass a limit. */
  private checkRoom(size: number): void {
    if (this.byHash.size >= this.limits.maxTxs) throw new QnexusError('MEMPOOL_FULL', `mempool holds ${this.limits.maxTxs} transactions; retry later`);
    const maxBytes = this.limits.maxBytes ?? DEFAULT_MEMPOOL_MAX_BYTES;
    if (this.bytes + size > maxBytes) throw new QnexusError('MEMPOOL_FULL', `mempool holds ${this.bytes} bytes of transactions (at most ${maxBytes}); retry later`);
  }

  get(hashHex: string): TxEnvelope | undefined {
    return this.byHash.get(hashHex)?.env ?? this.system.get(hashHex);
  }

  rejection(hashHex: string): RejectedInfo | undefined {
    return this.rejected.get(hashHex);
  }

  /** Next nonce for the sender counting its contiguous pending transactions. */
  pendingNonce(senderHex: string): bigint {
    let n = this.account(senderHex)?.nonce ?? 0n;
    const q = this.bySender.get(senderHex);
    while (q?.has(n)) n++;
    return n;
  }

  /**
   * Transactions past the cheap checks whose signature is being verified, by id: a proposal
   * naming one waits for its verdict (settled) instead of fetching it again from a peer.
   * Bounded by the admissions in flight, which the gossip, direct and API limits bound.
   */
  private readonly admitting = new Map<string, Promise<unknown>>();

  /**
   * Settles when the admission of `hashHex` in flight (if any) has its signature verdict —
   * after that admission, which awaited the verdict first, has added the transaction or
   * refused it; undefined when none is in flight.
   */
  settled(hashHex: string): Promise<void> | undefined {
    const p = this.admitting.get(hashHex);
    return p?.then(
      () => undefined,
      () => undefined,
    );
  }

  /**
   * Full admission. Throws QnexusError with the specific code when the
   * transaction is not admissible. Cheap checks run first so a transaction
   * that fails anyway costs no signature verification; state checks run
   * again after the (asynchronous) verification, against the state then.
   */
  async admit(env: TxEnvelope): Promise<AdmitResult> {
    if (isSystemKind(env.tx.body.payload.kind)) return this.admitSystem(env);
    if (this.byHash.has(env.hashHex)) return 'known';
    this.chain.app.checkStateless(env, this.chain.params);
    this.checkState(env);
    this.trial(env);
    // A full pool refuses before the signature work, and again after it (others got in meanwhile).
    this.checkRoom(env.raw.length);
    // Both signatures of a stake (the funder's and the validator key's consent) are checked here, once.
    const verifying = this.verifyOnce(env);
    const first = !this.admitting.has(env.hashHex);
    if (first) this.admitting.set(env.hashHex, verifying);
    let verdict: Awaited<typeof verifying>;
    try {
      verdict = await verifying;
    } finally {
      if (first) this.admitting.delete(env.hashHex);
    }
    if (verdict === 'TX_BAD_SIGNATURE') {
      throw new QnexusError('TX_BAD_SIGNATURE', env.publicKey ? 'signature does not verify for the included public key' : "signature does not verify for the sender's registered public key");
    }
    if (verdict === 'TX_KEY_UNKNOWN') throw keyUnknown(env);
    if (verdict === 'STAKE_BAD_CONSENT') {
      throw new QnexusError('STAKE_BAD_CONSENT', "the validator key's consent signature does not verify for this funder and chain");
    }
    if (verdict !== 'ok') throw new QnexusError(verdict, 'a signature the message carries does not verify');
    if (this.byHash.has(env.hashHex)) return 'known';
    const entry = this.checkState(env);
    this.checkRoom(env.raw.length);
    const sender = senderHex(env);
    const q = this.bySender.get(sender);
    this.byHash.set(env.hashHex, entry);
    this.bytes += env.raw.length;
    if (q) q.set(env.tx.body.nonce, entry);
    else this.bySender.set(sender, new Map([[env.tx.body.nonce, entry]]));
    this.rejected.delete(env.hashHex);
    return 'added';
  }

  private async admitSystem(env: TxEnvelope): Promise<AdmitResult> {
    if (this.system.has(env.hashHex)) return 'known';
    this.chain.app.checkStateless(env, this.chain.params);
    // Beacon entries are few: authenticate before looking at state, so a forgery is always
    // reported (and penalised) as one, whatever transfer it names.
    if ((await this.verifyOnce(env)) !== 'ok') throw new QnexusError('XS_UNAUTHORIZED', 'beacon signature does not verify');
    if (this.system.has(env.hashHex)) return 'known';
    try {
      this.checkSystemState(env);
    } catch (e) {
      // An authentic commit can overtake its prepare to a node a block behind: keep it until the
      // prepare is final here (the builder skips it meanwhile) instead of waiting for a re-send.
      if (!(e instanceof QnexusError && e.code === 'XS_NOT_PREPARED')) throw e;
    }
    this.system.set(env.hashHex, env);
    this.rejected.delete(env.hashHex);
    return 'added';
  }

  /** Would the entry apply on top of the head? A replayed phase tells the caller so it can re-report. */
  private checkSystemState(env: TxEnvelope): void {
    try {
      this.chain.app.applyTx(new Branch(this.chain.state.kv), env, this.chain.params, this.nextBlock());
    } catch (e) {
      if (e instanceof QnexusError && (e.code === 'XS_ALREADY_DECIDED' || e.code === 'XS_DUPLICATE')) this.onStaleSystem?.(env, e.code);
      throw e;
    }
  }

  private nextBlock(): BlockContext {
    return { height: this.chain.headHeight + 1, slot: this.chain.headSlot + 1, proposer: NO_PROPOSER };
  }

  private verifyOnce(env: TxEnvelope): Promise<TxVerdict> {
    // A stake's consent signature is inside the signed body, so the id covers it already. The
    // signature's digest is computed once per envelope (shared with the verifier's cache).
    const key = signedTxId(env);
    let p = this.verifying.get(key);
    if (!p) {
      p = this.verifier.checkAsync(env);
      this.verifying.set(key, p);
      void p.finally(() => this.verifying.delete(key)).catch(() => undefined);
    }
    return p;
  }

  /**
   * A module message (anything but the bank's plain sends, the hot path, whose checks are the
   * nonce and funds above) that is its sender's next transaction is applied to a throwaway branch
   * of the head state, so a swap past its deadline, an order off the tick or a drip inside the
   * cooldown is refused now with the module's code instead of being left out of every block
   * later. It runs before the signature check: a handler's work is bounded, a signature is not
   * cheap. A transaction behind others of its sender is checked when it is built into a block.
   */
  private trial(env: TxEnvelope): void {
    if (env.tx.body.payload.kind >> 8 === MODULE_IDS.bank) return;
    const sender = senderHex(env);
    if (this.bySender.has(sender) || env.tx.body.nonce !== (this.account(sender)?.nonce ?? 0n)) return;
    this.chain.app.applyTx(new Branch(this.chain.state.kv), env, this.chain.params, this.nextBlock());
  }

  /**
   * A sender's account in the head state, read once per head: admission reads it before and after
   * the signature check, and a busy sender's transactions arrive many to a block. Keyed by the
   * state's version, which every commit (block, sync or snapshot) moves.
   */
  private account(sender: string): Account | undefined {
    const version = this.chain.state.version;
    if (this.accountsVersion !== version || this.accounts.size >= ACCOUNT_MEMO_MAX) {
      this.accountsVersion = version;
      this.accounts.clear();
    }
    let a = this.accounts.get(sender);
    if (a === undefined) this.accounts.set(sender, (a = this.chain.state.account(sender) ?? null));
    return a ?? undefined;
  }
  /** Nonce window, nonce collisions and funds (including the sender's pending spends). */
  private checkState(env: TxEnvelope): Entry {
    const sender = senderHex(env);
    const acct = this.account(sender);
    // A keyless transaction is checked against the key the head state registers: refused before
    // any signature work when there is none (the account's first transaction must carry it).
    if (env.publicKey === null && !acct?.publicKey) throw keyUnknown(env);
    const next = acct?.nonce ?? 0n;
    const nonce = env.tx.body.nonce;
    if (nonce < next) throw new QnexusError('TX_NONCE_STALE', `nonce ${nonce} already used; the account's next nonce is ${next}`);
    if (nonce - next > this.maxGap) {
      throw new QnexusError('TX_NONCE_FUTURE', `nonce ${nonce} is more than ${this.limits.maxNonceGap} ahead of the account's next nonce ${next}`);
    }
    const q = this.bySender.get(sender);
    if (q?.has(nonce)) throw new QnexusError('TX_NONCE_TAKEN', `another pending transaction from this account already uses nonce ${nonce}`);
    // What the sender gives up: amount + fee for transfers and stakes, the fee alone for an unstake.
    const cost = this.chain.app.cost(env);
    let pending = 0n;
    if (q) for (const e of q.values()) pending += e.cost;
    const balance = acct?.balance ?? 0n;
    if (balance < pending + cost) {
      throw new QnexusError('TX_INSUFFICIENT_FUNDS', `balance ${balance} cannot cover ${costWhat(env, cost)} = ${cost}${pending ? ` after ${pending} of pending spends` : ''}`);
    }
    return { env, cost };
  }

  /**
   * Candidates for the next block: for each sender the run of consecutive
   * nonces starting at its account nonce, senders taken round-robin so one
   * busy account cannot crowd the others out.
   */
  select(max: number): TxEnvelope[] {
    // Beacon entries first (they unblock cross-shard transfers), prepares before decisions.
    const sys = [...this.system.values()].sort((a, b) => (a.tx.body.payload.kind === b.tx.body.payload.kind ? 0 : a.tx.body.payload.kind === XPREPARE_KIND ? -1 : 1));
    const out: TxEnvelope[] = sys.slice(0, Math.min(max, 512));
    const runs: TxEnvelope[][] = [];
    for (const [sender, q] of this.bySender) {
      const run: TxEnvelope[] = [];
      let n = this.account(sender)?.nonce ?? 0n;
      for (let e = q.get(n); e && run.length < max; e = q.get(++n)) run.push(e.env);
      if (run.length) runs.push(run);
    }
    for (let i = 0; out.length < max; i++) {
      let any = false;
      for (const r of runs) {
        if (i < r.length) {
          out.push(r[i]!);
          any = true;
          if (out.length >= max) break;
        }
      }
      if (!any) break;
    }
    return out;
  }

  /** Every pending transaction: beacon entries, then each sender's by nonce (the order that re-admits cleanly). */
  pending(): TxEnvelope[] {
    const out = [...this.system.values()];
    for (const q of this.bySender.values()) out.push(...[...q.values()].sort((a, b) => (a.env.tx.body.nonce < b.env.tx.body.nonce ? -1 : 1)).map((e) => e.env));
    return out;
  }

  /** After a block is finalized: drop its transactions and any that can no longer apply. */
  onCommit(committed: readonly TxEnvelope[]): void {
    this.committed += committed.length;
    const touched = new Set<string>();
    let sawSystem = false;
    for (const env of committed) {
      this.verifier.forget(env.hashHex);
      if (isSystemKind(env.tx.body.payload.kind)) {
        if (this.system.delete(env.hashHex)) this.onRemoved?.(env.hashHex);
        sawSystem = true;
        continue;
      }
      const sender = senderHex(env);
      touched.add(sender);
      const e = this.byHash.get(env.hashHex);
      if (e) this.remove(sender, e);
    }
    // A committed beacon entry can make another one moot (a decision overtaking a prepare).
    if (sawSystem) {
      for (const env of [...this.system.values()]) {
        try {
          this.chain.app.applyTx(new Branch(this.chain.state.kv), env, this.chain.params, this.nextBlock());
        } catch (e) {
          if (!(e instanceof QnexusError)) throw e;
          this.system.delete(env.hashHex);
          if (e.code !== 'XS_NOT_PREPARED') {
            this.onRemoved?.(env.hashHex);
            this.markRejected(env, e.code, e.message);
          } else this.system.set(env.hashHex, env); // still pending: to the back of the queue, as before
        }
      }
    }
    for (const sender of touched) {
      const q = this.bySender.get(sender);
      if (!q) continue;
      const acct = this.account(sender);
      const next = acct?.nonce ?? 0n;
      let budget = acct?.balance ?? 0n;
      for (const [nonce, e] of [...q].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
        if (nonce < next) {
          this.remove(sender, e);
          this.markRejected(e.env, 'TX_NONCE_STALE', `another transaction with nonce ${nonce} was finalized first`);
        } else if (e.cost > budget) {
          // The balance moved under it (another spend was finalized): it can never apply now.
          this.remove(sender, e);
          this.markRejected(e.env, 'TX_INSUFFICIENT_FUNDS', `balance no longer covers ${costWhat(e.env, e.cost)} = ${e.cost}`);
        } else {
          budget -= e.cost;
        }
      }
    }
  }

  private remove(sender: string, e: Entry): void {
    if (this.byHash.delete(e.env.hashHex)) this.bytes -= e.env.raw.length;
    this.onRemoved?.(e.env.hashHex);
    const q = this.bySender.get(sender);
    q?.delete(e.env.tx.body.nonce);
    if (q && q.size === 0) this.bySender.delete(sender);
  }

  markRejected(env: TxEnvelope, code: AnyErrorCode, message: string): void {
    if (this.rejected.size >= 10_000) {
      const first = this.rejected.keys().next();
      if (!first.done) this.rejected.delete(first.value);
    }
    this.rejected.set(env.hashHex, { env, code, message });
  }
}

/** The sender's address hex: its formatted address without the prefix (already made by openTx, so no second hex encoding per check). */
function senderHex(env: TxEnvelope): string {
  return env.fromStr.slice(ADDRESS_PREFIX.length);
}
