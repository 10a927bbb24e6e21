import { generateKeyPairOnShard, getBackend, isAddressString } from '@qnexus/crypto';
import { QnexusError, encodeTx, openTx, txSigningBytes, type TxEnvelope } from '@qnexus/types';
import { RateLimiter } from '@qnexus/runtime';
import type { StateMachine } from '@qnexus/state';
import type { Chain } from './chain.js';

/** Requests one client IP may make: one every 2 s, 4 at once (the faucet's own limits are in its state). */
export const FAUCET_IP_RATE_PER_SEC = 0.5;
export const FAUCET_IP_BURST = 4;
/**
 * Requests the node signs per second from all clients together. Each costs a key generation and
 * an ML-DSA signature on the event loop, so many addresses each within their own limit must not
 * add up to more: about what the faucet can pay (its default is 8 drips a block of 1 s).
 */
export const FAUCET_NODE_RATE_PER_SEC = 8;
export const FAUCET_NODE_BURST = 16;
/** Drip requests this node signed that may wait in its mempool at once: beyond it, NODE_BUSY. */
export const FAUCET_MAX_PENDING = 32;
/** Fresh keys tried for one whose address lives on this shard (each try succeeds with 1/shardCount). */
const MAX_KEY_TRIES = 256;

/**
 * `POST /v1/faucet/{address}`: the node asks the faucet module for coins on a client's behalf.
 * The request is an ordinary transaction, `faucet/faucet-drip {to}`, feeless (the faucet's
 * limits bound how often one can apply), signed by a throwaway key whose home shard is this
 * node's, so it enters this shard's mempool and gossip like any other; when the faucet lives on
 * another shard the module carries it there through the 2PC path. Nothing secret is held: the
 * key is discarded once the transaction is signed. The requests are rate-limited per client IP
 * and for the node as a whole before any key is made, and the node keeps at most
 * FAUCET_MAX_PENDING of its own requests pending.
 */
export class FaucetRequests {
  private readonly perIp: RateLimiter;
  private readonly all: RateLimiter;
  private readonly pending = new Set<string>();

  constructor(
    private readonly chain: Chain,
    private readonly app: StateMachine,
    /** Whether a transaction is still pending here (the mempool's view). */
    private readonly isPending: (hashHex: string) => boolean,
    /** The limiters' clock in ms (tests freeze it; default Date.now). */
    now: () => number = Date.now,
  ) {
    this.perIp = new RateLimiter({ ratePerSec: FAUCET_IP_RATE_PER_SEC, burst: FAUCET_IP_BURST, now });
    this.all = new RateLimiter({ ratePerSec: FAUCET_NODE_RATE_PER_SEC, burst: FAUCET_NODE_BURST, maxClients: 1, now });
  }

  /** The signed request for `address`, after the per-IP and pending limits; admission is the caller's. */
  build(address: string, clientIp: string): TxEnvelope {
    if (!isAddressString(address)) throw new QnexusError('BAD_REQUEST', 'address must be qn followed by 40 lowercase hex characters');
    const d = this.perIp.take(clientIp);
    if (!d.ok) throw new QnexusError('RATE_LIMITED', `one faucet request every ${1 / FAUCET_IP_RATE_PER_SEC} s per client (burst ${FAUCET_IP_BURST}); retry after ${d.retryAfterMs} ms`);
    const n = this.all.take('all');
    if (!n.ok) throw new QnexusError('RATE_LIMITED', `this node takes ${FAUCET_NODE_RATE_PER_SEC} faucet requests a second from all clients; retry after ${n.retryAfterMs} ms`);
    for (const h of this.pending) if (!this.isPending(h)) this.pending.delete(h);
    if (this.pending.size >= FAUCET_MAX_PENDING) throw new QnexusError('NODE_BUSY', `${this.pending.size} faucet requests made through this node are still pending; retry in a few slots`);
    // Throws TX_UNKNOWN_KIND when this chain's app has no faucet module.
    const msg = this.app.buildMsg('faucet', 'faucet-drip', { to: address });
    const { scheme, shardCount, chainId } = this.chain.genesis;
    const key = generateKeyPairOnShard(scheme, this.chain.shard, shardCount, MAX_KEY_TRIES);
    if (!key) throw new QnexusError('INTERNAL', `no key of shard ${this.chain.shard} in ${MAX_KEY_TRIES} tries`);
    const body = { chainId, nonce: 0n, fee: 0n, publicKey: key.publicKey, payload: msg };
    const signature = getBackend(scheme).sign(key.secretKey, txSigningBytes(body));
    return openTx(encodeTx({ body, signature }));
  }

  /** Count a request this node admitted until it leaves the mempool. */
  admitted(env: TxEnvelope): void {
    this.pending.add(env.hashHex);
  }
}
