import { QnexusError, decodeTxBatch, encodeTxBatch, openTx, MAX_TX_BATCH, MAX_TX_BATCH_BYTES, type ErrorCode } from '@qnexus/types';
import type { P2PNode, ValidationResult } from '@qnexus/p2p';
import type { Mempool } from './mempool.js';
import type { Metrics } from './metrics.js';

/** Admission failures that prove the relaying peer misbehaved (it must have checked before relaying). */
const PEER_FAULT: ReadonlySet<ErrorCode> = new Set([
  'TX_MALFORMED',
  'TX_TOO_LARGE',
  'TX_BAD_SIGNATURE',
  'TX_WRONG_CHAIN',
  'TX_WRONG_SCHEME',
  'TX_UNKNOWN_KIND',
  'TX_BAD_AMOUNT',
  'TX_FEE_TOO_LOW',
  'TX_SELF_TRANSFER',
  'TX_WRONG_SHARD',
  'TX_CROSS_SHARD',
  'TX_SAME_SHARD',
  // Stake rules a relayer checks statelessly (consent signature, minimum, key length).
  'STAKE_BAD_CONSENT',
  'STAKE_TOO_LOW',
  // A beacon entry not signed by the beacon, or for another shard: the relayer had to check.
  'XS_UNAUTHORIZED',
  'XS_WRONG_SHARD',
]);

/**
 * Default wait for more transactions before publishing a batch. Gossip costs every process of
 * the mesh ~0.2–0.5 ms of CPU per message whatever its size, so at tens of transactions per
 * second per node a short window sends nearly one message per transaction. 100 ms (a tenth of
 * a default slot) fills batches at those rates and costs a transaction at most that much
 * latency, against a block interval of a whole slot.
 */
export const DEFAULT_TX_GOSSIP_FLUSH_MS = 100;

/**
 * Transaction gossip in batches. Outbound: transactions admitted through the
 * API are collected for up to `flushMs` (`--tx-gossip-flush-ms`) or `maxBatch` ( default and at most
 * MAX_TX_BATCH; `--tx-gossip-batch`) and published as one message. Inbound: each transaction in a batch goes through full admission;
 * the batch is rejected (not relayed, sender penalised) if any transaction is
 * invalid in a way the relayer must have noticed, accepted if it brought at
 * least one new transaction, ignored otherwise.
 */
export class TxGossip {
  private pending: Uint8Array[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly p2p: P2PNode,
    private readonly topic: string,
    private readonly mempool: Mempool,
    private readonly metrics: Metrics,
    private readonly onPublishError: (e: Error) => void,
    /** Most transactions per outbound message, 1..MAX_TX_BATCH (inbound batches may always hold MAX_TX_BATCH). */
    readonly maxBatch: number = MAX_TX_BATCH,
    /** Longest wait (ms) for more transactions before publishing a partial batch. */
    readonly flushMs: number = DEFAULT_TX_GOSSIP_FLUSH_MS,
  ) {
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > MAX_TX_BATCH) throw new RangeError(`tx gossip batch must be 1..${MAX_TX_BATCH}, not ${maxBatch}`);
  }

  subscribe(): void {
    this.p2p.subscribe(this.topic, { maxBytes: MAX_TX_BATCH_BYTES, validate: (d) => this.validate(d) });
  }

  /** Queue an admitted transaction for the next outbound batch. */
  publish(raw: Uint8Array): void {
    this.pending.push(raw);
    if (this.pending.length >= this.maxBatch) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.pending.length) {
      const batch = this.pending.splice(0, this.maxBatch);
      this.p2p.publish(this.topic, encodeTxBatch(batch)).catch((e: Error) => this.onPublishError(e));
    }
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending = [];
  }

  private async validate(data: Uint8Array): Promise<ValidationResult> {
    let raws: Uint8Array[];
    try {
      raws = decodeTxBatch(data);
    } catch {
      this.metrics.txAdmission.inc({ source: 'gossip', result: 'TX_MALFORMED' });
      return 'reject';
    }
    let added = 0;
    let fault = false;
    // Signatures are checked on the verify pool; the batch's transactions go through together.
    await Promise.all(
      raws.map(async (raw) => {
        try {
          const r = await this.mempool.admit(openTx(raw));
          this.metrics.txAdmission.inc({ source: 'gossip', result: r === 'added' ? 'accepted' : 'known' });
          if (r === 'added') added++;
        } catch (e) {
          const code: ErrorCode = e instanceof QnexusError ? e.code : 'TX_MALFORMED';
          this.metrics.txAdmission.inc({ source: 'gossip', result: code });
          // State-dependent failures (nonce races, funds, a full pool) are not the relayer's fault.
          if (PEER_FAULT.has(code)) fault = true;
        }
      }),
    );
    this.metrics.mempoolSize.set(this.mempool.size);
    if (fault) return 'reject';
    return added > 0 ? 'accept' : 'ignore';
  }
}
