import { bytesEqual, getBackend, type SignatureBackend } from '@qnexus/crypto';
import {
  MAX_ANNOUNCEMENT_BYTES,
  MAX_SIGNATURE_BYTES,
  QnexusError,
  Reader,
  Writer,
  beaconTopics,
  decodeEpochAnnouncement,
  epochOf,
  slotAt,
  type Genesis,
  type SignedEpochAnnouncement,
} from '@qnexus/types';
import { checkEpochAnnouncement, genesisEpoch, type EpochCommittees } from '@qnexus/state';
import type { P2PNode, ServeBudget, ValidationResult } from '@qnexus/p2p';
import type { Logger } from '@qnexus/runtime';

/** Where verified announcements persist (ChainStore implements it; tests may use memory). */
export interface AnnouncementStore {
  putAnnouncement(epoch: number, raw: Uint8Array): Promise<void>;
  loadAnnouncements(): Promise<Map<number, Uint8Array>>;
}

/**
 * Outcome of offering announcement bytes to the book:
 * - `accepted`: new epoch, verified and stored;
 * - `known`: the epoch is known with exactly these committees (a re-announcement);
 * - `implausible`: an epoch beyond the next one by our clock, which the beacon cannot have
 *   frozen yet (it freezes an epoch F slots before its start): refused unverified;
 * - `malformed` / `bad-signature`: not a valid beacon announcement;
 * - `conflict`: validly signed, but its committees differ from the ones already
 *   stored for that epoch. The beacon never does that, so it means a compromised
 *   or broken beacon key: the first announcement stays, the second is refused.
 */
export type AnnouncementResult = 'accepted' | 'known' | 'implausible' | 'malformed' | 'bad-signature' | 'conflict';

/** Counts by outcome (plus fetch/serve activity) for metrics; plain numbers, cumulative. */
export interface EpochBookCounters {
  accepted: number;
  known: number;
  implausible: number;
  malformed: number;
  badSignature: number;
  conflict: number;
  /** Announcements obtained through `ensure` (also counted in `accepted`). */
  fetched: number;
  /** `ensure` attempts that ended without the epoch. */
  fetchFailed: number;
  /** Fetch requests we answered with an announcement. */
  served: number;
}

/** A fetch response is one signed announcement; bound the frame to the largest possible one. */
const MAX_SIGNED_ANNOUNCEMENT_BYTES = MAX_ANNOUNCEMENT_BYTES + MAX_SIGNATURE_BYTES + 16;
/** Per-peer bound on one fetch (dial included). */
const FETCH_TIMEOUT_MS = 3_000;
/** Peers asked per `ensure` attempt (beacon and preferred peer included): bounds one attempt's duration. */
const MAX_FETCH_PEERS = 6;

/**
 * What one peer may fetch from us per second (p2p `ServeBudget`). Honest askers: `ensure`, at
 * most once per epoch per slot, and sync, one fetch per epoch its ranges cross (a range is at
 * most 256 blocks; allow 20 ranges a second). Announcements are small on a devnet (≈ 1.3 KB
 * a member) and at most MAX_SIGNED_ANNOUNCEMENT_BYTES.
 */
export function epochFetchBudget(g: Genesis): ServeBudget {
  const requestsPerSec = Math.max(20, 20 * (Math.ceil(256 / g.epochLength) + 1));
  return { requestsPerSec, requestBurst: 4 * requestsPerSec, bytesPerSec: 16 * 1024 * 1024 };
}

export interface EpochBookOptions {
  /** Wall clock (ms), for the once-per-slot fetch limit and the "epoch could exist" bound. Default Date.now. */
  now?: () => number;
  /** Verifies the beacon's announcements. Default noble; Chain.open passes the node's (its verifier's) backend. */
  backend?: SignatureBackend;
}

/** u64 BE epoch: the fetch request. */
export function encodeEpochRequest(epoch: number): Uint8Array {
  return new Writer(8).u64(epoch).finish();
}

function decodeEpochRequest(b: Uint8Array): number {
  const r = new Reader(b);
  const e = r.u64n('epoch');
  r.end('epoch request');
  return e;
}

/** Same seed and, per shard, the same members (address, stake) in the same order. */
export function sameCommittees(a: EpochCommittees, b: EpochCommittees): boolean {
  if (a.epoch !== b.epoch || !bytesEqual(a.seed, b.seed) || a.shards.length !== b.shards.length) return false;
  return a.shards.every((s, k) => {
    const o = b.shards[k]!;
    const va = s.committee.validators;
    const vb = o.committee.validators;
    if (va.length !== vb.length || s.committee.totalStake !== o.committee.totalStake) return false;
    return va.every((v, i) => v.address === vb[i]!.address && v.stake === vb[i]!.stake);
  });
}

/**
 * The verified committees of every epoch this node knows. Epoch 0 is the
 * genesis assignment; every later epoch comes from the beacon's signed
 * announcement (checked with the genesis beacon key by
 * `checkEpochAnnouncement`), learnt from gossip, from the data dir, or fetched
 * from the beacon and peers on demand. The first verified announcement of an
 * epoch is final: the book never replaces committees it has handed out, so
 * whatever was verified against them stays verified.
 *
 * Lookups are synchronous (the consensus core and block validation need them
 * synchronously); only `ensure` does I/O.
 */
export class EpochBook {
  /** Called once for each newly verified epoch (never for epoch 0). */
  readonly listeners: ((e: EpochCommittees) => void)[] = [];
  readonly counters: EpochBookCounters = { accepted: 0, known: 0, implausible: 0, malformed: 0, badSignature: 0, conflict: 0, fetched: 0, fetchFailed: 0, served: 0 };
  /** Optional hook for a labelled metric (node.ts wires `qnexus_beacon_announcements_total{result}`). */
  onCount: ((result: string) => void) | null = null;

  private readonly epochs = new Map<number, EpochCommittees>();
  private readonly raw = new Map<number, Uint8Array>();
  private latest = 0;
  private readonly inflight = new Map<number, Promise<boolean>>();
  /** Per epoch, the slot of the last fetch attempt and the peers asked in it (one attempt per epoch per slot). */
  private readonly attempted = new Map<number, { slot: number; asked: Set<string> }>();
  private p2p: P2PNode | null = null;
  private stopped = false;
  private readonly topics: ReturnType<typeof beaconTopics>;
  private readonly now: () => number;
  private readonly backend: SignatureBackend;

  private constructor(
    readonly genesis: Genesis,
    readonly genesisHash: Uint8Array,
    private readonly store: AnnouncementStore,
    private readonly log: Logger,
    opts: EpochBookOptions,
  ) {
    this.topics = beaconTopics(genesis.chainId);
    this.now = opts.now ?? Date.now;
    this.backend = opts.backend ?? getBackend(genesis.scheme);
    this.epochs.set(0, genesisEpoch(genesis, genesisHash));
  }

  /**
   * A book with epoch 0 and every stored announcement, each verified again
   * (a data dir is not trusted more than the network: a bad entry is logged and skipped).
   */
  static async open(genesis: Genesis, genesisHash: Uint8Array, store: AnnouncementStore, log: Logger, opts: EpochBookOptions = {}): Promise<EpochBook> {
    const book = new EpochBook(genesis, genesisHash, store, log, opts);
    const stored = await store.loadAnnouncements();
    for (const [epoch, raw] of [...stored].sort((a, b) => a[0] - b[0])) {
      const r = book.verify(raw);
      if (!r.ok || r.committees.epoch !== epoch || epoch === 0) {
        log.error('stored epoch announcement does not verify; ignoring it', { epoch, reason: r.ok ? 'wrong epoch' : r.result });
        continue;
      }
      book.insert(r.committees, raw);
    }
    if (book.latest > 0) log.info('loaded epoch announcements', { epochs: book.epochs.size - 1, latest: book.latest });
    return book;
  }

  // ------------------------------------------------------------------ lookups

  get(epoch: number): EpochCommittees | undefined {
    return this.epochs.get(epoch);
  }

  has(epoch: number): boolean {
    return this.epochs.has(epoch);
  }

  /** The stored signed announcement bytes of an epoch (undefined for epoch 0 and unknown epochs). */
  signed(epoch: number): Uint8Array | undefined {
    return this.raw.get(epoch);
  }

  /** Decoded signed announcement of an epoch, for APIs. */
  announcement(epoch: number): SignedEpochAnnouncement | undefined {
    const raw = this.raw.get(epoch);
    return raw ? decodeEpochAnnouncement(raw) : undefined;
  }

  /** Highest known epoch (0 before any announcement). */
  latestEpoch(): number {
    return this.latest;
  }

  /** Epoch of the current wall-clock slot (0 before genesis time). */
  currentEpoch(): number {
    return epochOf(this.genesis, Math.max(0, slotAt(this.genesis, this.now())));
  }

  // ------------------------------------------------------------------ adding

  /**
   * Offer announcement bytes (from gossip, a fetch or a test): verify, and
   * store a new epoch. Memory is updated before the write, so lookups see the
   * epoch at once (the bytes are self-verifying: a lost write only means fetching it again).
   */
  async add(raw: Uint8Array, source: string): Promise<AnnouncementResult> {
    const pre = this.precheck(raw);
    if (pre) return this.count(pre, source);
    const r = this.verify(raw);
    if (!r.ok) return this.count(r.result, source);
    const c = r.committees;
    const have = this.epochs.get(c.epoch);
    if (have) return this.count(sameCommittees(have, c) ? 'known' : 'conflict', source, c.epoch);
    this.insert(c, raw);
    this.log.info('beacon announced epoch', { epoch: c.epoch, source, committees: c.shards.map((s) => s.committee.validators.length) });
    for (const l of this.listeners) {
      try {
        l(c);
      } catch (e) {
        this.log.error('epoch listener failed', { error: (e as Error).stack ?? String(e) });
      }
    }
    try {
      await this.store.putAnnouncement(c.epoch, raw);
    } catch (e) {
      this.log.error('could not persist epoch announcement', { epoch: c.epoch, error: (e as Error).message });
    }
    return this.count('accepted', source, c.epoch);
  }

  /**
   * Cheap paths before the signature check: an epoch beyond the next one cannot have been
   * announced yet (`implausible`); and, for the beacon's periodic re-announcements, a known
   * epoch whose committees equal ours is `known` (we neither store nor relay it, so its
   * signature does not matter). Returns null when the full check is needed.
   */
  private precheck(raw: Uint8Array): AnnouncementResult | null {
    let a: SignedEpochAnnouncement;
    try {
      a = decodeEpochAnnouncement(raw);
    } catch {
      return 'malformed';
    }
    if (a.body.epoch > this.currentEpoch() + 1) return 'implausible';
    const have = this.epochs.get(a.body.epoch);
    if (!have || a.body.chainId !== this.genesis.chainId || !bytesEqual(a.body.seed, have.seed) || a.body.committees.length !== have.shards.length) return null;
    const storedRaw = this.raw.get(a.body.epoch);
    if (!storedRaw) return null;
    // Compare keys and stakes with the stored announcement (keys bind addresses).
    const mine = decodeEpochAnnouncement(storedRaw).body;
    const same = a.body.committees.every((c, i) => {
      const m = mine.committees[i];
      return (
        m !== undefined &&
        m.shard === c.shard &&
        m.members.length === c.members.length &&
        c.members.every((x, j) => x.stake === m.members[j]!.stake && bytesEqual(x.publicKey, m.members[j]!.publicKey))
      );
    });
    return same && a.body.startSlot === mine.startSlot ? 'known' : null;
  }

  private verify(raw: Uint8Array): { ok: true; committees: EpochCommittees } | { ok: false; result: 'malformed' | 'bad-signature' } {
    let signed: SignedEpochAnnouncement;
    try {
      signed = decodeEpochAnnouncement(raw);
    } catch {
      return { ok: false, result: 'malformed' };
    }
    const backend = this.backend;
    try {
      return { ok: true, committees: checkEpochAnnouncement(signed, this.genesis, this.genesisHash, (pk, msg, sig) => backend.verify(pk, msg, sig)) };
    } catch (e) {
      const code = e instanceof QnexusError ? e.code : 'MALFORMED';
      return { ok: false, result: code === 'XS_UNAUTHORIZED' ? 'bad-signature' : 'malformed' };
    }
  }

  private insert(c: EpochCommittees, raw: Uint8Array): void {
    this.epochs.set(c.epoch, c);
    this.raw.set(c.epoch, raw);
    if (c.epoch > this.latest) this.latest = c.epoch;
    this.attempted.delete(c.epoch);
  }

  private count(result: AnnouncementResult, source: string, epoch?: number): AnnouncementResult {
    if (result === 'bad-signature') this.counters.badSignature++;
    else this.counters[result]++;
    this.onCount?.(result);
    if (result === 'conflict') {
      // Two different validly signed committees for one epoch: the beacon key signed both.
      this.log.error('CONFLICTING beacon announcement: the beacon key signed different committees for an epoch we already know; keeping the first', {
        epoch,
        source,
      });
    } else if (result === 'malformed' || result === 'bad-signature' || result === 'implausible') {
      this.log.warn('rejected beacon epoch announcement', { reason: result, source });
    }
    return result;
  }

  // ------------------------------------------------------------------ network

  /** Subscribe to the beacon's announcements and serve stored ones to peers. */
  async start(p2p: P2PNode): Promise<void> {
    this.p2p = p2p;
    p2p.subscribe(this.topics.epochs, {
      maxBytes: MAX_SIGNED_ANNOUNCEMENT_BYTES,
      validate: (d, from) => this.validateGossip(d, from),
    });
    await p2p.handle(this.topics.epochFetch, { maxInboundStreams: 8, maxOutboundStreams: 8, maxRequestBytes: 8, timeoutMs: 5_000, budget: epochFetchBudget(this.genesis) }, (req) =>
      this.serve(req),
    );
  }

  stop(): void {
    this.stopped = true;
    if (this.p2p) this.p2p.unsubscribe(this.topics.epochs);
  }

  /**
   * Every shard node relays the first verified copy of a new epoch on the beacon's topic, so
   * a node that lost its link to the beacon still hears of it from its shard peers (and
   * `ensure` fetches it from them if that copy was missed too). Later copies of a known epoch
   * are not relayed: their signatures are not checked.
   */
  private async validateGossip(data: Uint8Array, from: string): Promise<ValidationResult> {
    const r = await this.add(data, `gossip:${from}`);
    return r === 'accepted' ? 'accept' : r === 'known' ? 'ignore' : 'reject';
  }

  /** Request: u64 BE epoch. Response: one frame with the stored signed announcement, or no frame if unknown. */
  private async *serve(req: Uint8Array): AsyncIterable<Uint8Array> {
    const raw = this.raw.get(decodeEpochRequest(req));
    if (raw) {
      this.counters.served++;
      yield raw;
    }
  }

  /**
   * Make sure the committees of `epoch` are known, fetching the announcement if
   * needed: from `preferPeer` (e.g. the peer whose blocks need it), the beacon,
   * then connected peers, trusted ones (committee members) and our mesh on the
   * beacon's topic first, so neither a lost beacon link nor a crowd of unknown
   * peers keeps it from us. One fetch per epoch at a time (callers share it)
   * and at most one attempt per epoch per slot — except that a preferred peer
   * not asked yet in this slot is still asked (alone): sync names the peer
   * whose certified blocks need the epoch, which has it. Epochs beyond the next
   * one cannot have been announced yet and are not asked for. Resolves whether the epoch is known.
   */
  ensure(epoch: number, preferPeer?: string): Promise<boolean> {
    if (this.epochs.has(epoch)) return Promise.resolve(true);
    const running = this.inflight.get(epoch);
    if (running) return running;
    if (this.stopped || !this.p2p || !Number.isSafeInteger(epoch) || epoch < 0 || epoch > this.currentEpoch() + 1) return Promise.resolve(false);
    const slot = slotAt(this.genesis, this.now());
    const last = this.attempted.get(epoch);
    let peers: string[];
    if (last?.slot === slot) {
      if (!preferPeer || last.asked.has(preferPeer)) return Promise.resolve(false);
      peers = [preferPeer];
    } else {
      const p2p = this.p2p;
      const connected = p2p.connectedPeers();
      const mesh = new Set(p2p.meshPeers(this.topics.epochs));
      const rank = (x: string) => (p2p.isTrusted(x) ? 0 : mesh.has(x) ? 1 : 2);
      const others = connected.map((x, i) => ({ x, r: rank(x), i })).sort((a, b) => a.r - b.r || a.i - b.i).map((o) => o.x);
      const all = [...(preferPeer ? [preferPeer] : []), this.genesis.beacon.peerId, ...others];
      peers = [...new Set(all)].filter((x) => x !== p2p.peerId).slice(0, MAX_FETCH_PEERS);
      if (this.attempted.size > 1024) this.attempted.clear();
      this.attempted.set(epoch, { slot, asked: new Set() });
    }
    const asked = this.attempted.get(epoch)!.asked;
    for (const x of peers) asked.add(x);
    const p = this.fetch(epoch, this.p2p, peers).finally(() => this.inflight.delete(epoch));
    this.inflight.set(epoch, p);
    return p;
  }

  private async fetch(epoch: number, p2p: P2PNode, peers: string[]): Promise<boolean> {
    for (const peer of peers) {
      if (this.stopped) break;
      let raw: Uint8Array | null = null;
      try {
        for await (const frame of p2p.request(peer, this.topics.epochFetch, encodeEpochRequest(epoch), { timeoutMs: FETCH_TIMEOUT_MS, maxResponseFrameBytes: MAX_SIGNED_ANNOUNCEMENT_BYTES, maxFrames: 1 })) {
          raw = frame;
        }
      } catch (e) {
        this.log.debug('epoch fetch failed', { epoch, peer, error: (e as Error).message });
        continue;
      }
      // No frame (or an empty one): the peer does not know the epoch either.
      if (!raw || raw.length === 0) continue;
      const r = await this.add(raw, `fetch:${peer}`);
      if (r === 'malformed' || r === 'bad-signature') p2p.penalize(peer, `epoch fetch: ${r}`);
      if (this.epochs.has(epoch)) {
        if (r === 'accepted') this.counters.fetched++;
        return true;
      }
      if (r === 'accepted' || r === 'known') {
        // A valid announcement of another epoch than we asked for: useful, but not this one.
        this.log.debug('peer answered an epoch fetch with another epoch', { asked: epoch, peer });
      }
    }
    this.counters.fetchFailed++;
    this.onCount?.('fetch-failed');
    this.log.debug('could not fetch epoch announcement', { epoch, peers: peers.length });
    return false;
  }
}
