import { fromHex, schemeLengths, toHex } from '@qnexus/crypto';
import { QnexusError, Reader, Writer, decodeBlock, decodeCertificate, type BlockHeader, type Certificate, type Genesis } from '@qnexus/types';
import { P2PRequestError, type P2PNode, type ServeBudget, type Topics } from '@qnexus/p2p';
import type { Logger } from '@qnexus/runtime';
import { Counter, Gauge } from 'prom-client';
import { MAX_BLOCK_WIRE_BYTES, candidateFromBlock, type Candidate, type VerifiedSignatures } from './chain.js';
import type { Metrics } from './metrics.js';
import { syncFrameLimit } from './sync.js';
import { SnapshotReporter, type ReporterOptions } from './sync-progress.js';

/**
 * State sync: a node joins at a recent certified height by downloading the
 * state trie of that height from peers, verified item by item against the
 * state root its finality certificate signs, instead of replaying every block.
 *
 * One request/response protocol per shard (`topics().snapshotProtocol`),
 * two requests:
 * - offer `u8 1 ‖ u64 height` (0: the latest): one frame
 *   `u64 head ‖ u64 base ‖ bytes block ‖ bytes certificate` of that height,
 *   or no frame when the server does not hold its block, certificate and state;
 * - chunk `u8 2 ‖ u64 height ‖ u16 nibbles ‖ packed path ‖ u32 maxItems ‖ u32 maxBytes`:
 *   the subtree at that start path of the state trie at that height, in DFS
 *   pre-order, one snapshot item per frame (`MerkleTrie.exportSubtree`), at most
 *   what the server allows per response; no frame when it no longer has that
 *   version (pruned) or the path is not a subtree of it.
 */

/** Largest snapshot item accepted or served: a leaf of a key of MAX_SNAPSHOT_KEY_BYTES and a value up to 4 MiB. */
export const MAX_SNAPSHOT_ITEM_BYTES = 4 * 1024 * 1024 + 2048;
/** Longest state key (the trie's MAX_KEY_BYTES): a subtree's start path has at most twice as many nibbles. */
export const MAX_SNAPSHOT_KEY_BYTES = 1024;
export const MAX_SNAPSHOT_PATH_NIBBLES = 2 * MAX_SNAPSHOT_KEY_BYTES;
/** Most items and bytes one chunk response carries (a single larger item is still sent alone). */
export const MAX_SNAPSHOT_CHUNK_ITEMS = 4096;
export const MAX_SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** Items asked per chunk request by default. */
export const DEFAULT_SNAPSHOT_CHUNK_ITEMS = 2048;
/** Default `--snapshot-threshold`: heights the best peer must be ahead of a node at genesis before it joins by snapshot. */
export const DEFAULT_SNAPSHOT_THRESHOLD = 500;

const OFFER = 1;
const CHUNK = 2;
const MAX_REQUEST_BYTES = 1 + 8 + 2 + MAX_SNAPSHOT_PATH_NIBBLES / 2 + 4 + 4;
const STREAM_LIMITS = { maxInboundStreams: 8, maxOutboundStreams: 16 };
/**
 * What one peer, and all together, may pull. A joining node asks a few chunks at a time; 8 MiB/s
 * per peer serves a 10^6-entry state (≈ 150 MB of items) in well under a minute from a few peers,
 * while the global bound keeps the exports (synchronous trie reads) a small share of the loop.
 */
const SNAPSHOT_BUDGET: ServeBudget = {
  // Deep in a big trie most pending subtrees are small (a few hundred entries), so a joining node makes many small
  // requests: the byte budgets below bound the work, the request rate only the stream churn.
  requestsPerSec: 100,
  requestBurst: 200,
  bytesPerSec: 8 * 1024 * 1024,
  byteBurst: 16 * 1024 * 1024,
  globalBytesPerSec: 16 * 1024 * 1024,
  globalByteBurst: 32 * 1024 * 1024,
};
const OFFER_TIMEOUT_MS = 5_000;
const CHUNK_TIMEOUT_MS = 30_000;
const IDLE_MS = 5_000;
/** Chunk requests in flight, in all and per peer. */
const PARALLEL = 4;
const PARALLEL_PER_PEER = 2;
/** Peers asked for an offer per round, and offers wanted before choosing (a single peer is enough after OFFER_GRACE_MS). */
const MAX_OFFER_PEERS = 8;
const WANT_OFFERS = 3;
const OFFER_GRACE_MS = 3_000;
/** How long a node at genesis looks for peers to take a snapshot from before it falls back to block sync. */
const FIND_PEERS_MS = 20_000;
/** A peer that refuses (e.g. over its serving budget) rests this long times its refusals in a row, and is dropped after MAX_REFUSALS of them. */
const REST_MS = 500;
const MAX_REFUSALS = 8;
/** Snapshot heights tried before giving up (each after the last one's peers all failed). */
const MAX_ATTEMPTS = 4;
/** Codes of what a peer sent that an honest peer never sends (penalised, like sync's LIES); timeouts and stalls are too. */
const LIES = new Set(['MALFORMED', 'BAD_BLOCK', 'BAD_CERTIFICATE', 'BAD_SNAPSHOT', 'EPOCH_UNKNOWN', 'FRAME_TOO_LARGE', 'TOO_MANY_FRAMES', 'TOO_MANY_BYTES']);

/** What a snapshot chunk import yields: trie nodes to store and the (key, value) entries they prove. */
export interface SnapshotPart {
  puts: [Uint8Array, Uint8Array][];
  entries: [string, Uint8Array][];
}

/** The trie importer (`TrieImporter` of @qnexus/state): verifies items top-down against the certified root. */
export interface SnapshotImporter {
  pending(): string[];
  /** Throws QnexusError BAD_SNAPSHOT (keeping nothing of the call) on any item that does not verify. */
  add(path: string, items: Uint8Array[]): SnapshotPart;
  readonly done: boolean;
  readonly received: number;
  readonly total: number;
}

/** What snapshot serving and syncing use of the node's chain (the Chain class). */
export interface SnapshotChain {
  readonly genesis: Genesis;
  readonly shard: number;
  readonly headHeight: number;
  /** Lowest height whose block this node holds (0, or the height it joined at by snapshot). */
  readonly baseHeight: number;
  readonly epochs: { ensure(epoch: number, preferPeer?: string): Promise<boolean> };
  epochOf(round: number): number;
  latestPlausibleRound(): number;
  preverifyCertificate(cert: Certificate, header: BlockHeader, hash: Uint8Array): Promise<VerifiedSignatures>;
  verifyCertificate(cert: Certificate, header: BlockHeader, verified?: VerifiedSignatures, headerHash?: Uint8Array): void;
  readonly state: { exportSubtree(version: number, path: string, maxItems: number, maxBytes: number): Uint8Array[] };
  readonly store: {
    certifiedRange(from: number, to: number): Promise<{ height: number; block: Uint8Array; certificate: Uint8Array }[]>;
    writeSnapshotPart(puts: [Uint8Array, Uint8Array][], entries: [string, Uint8Array][]): Promise<void>;
  };
  resetForSnapshot(height: number, root: Uint8Array): Promise<void>;
  adoptSnapshot(candidate: Candidate, cert: Certificate, certBytes: Uint8Array, verified?: VerifiedSignatures): Promise<void>;
}

export type SyncMode = 'snapshot' | 'blocks';

export interface SnapshotOptions {
  /** Builds the verifying importer for a certified root at a height (`new TrieImporter(root, height)`). */
  importer: (root: Uint8Array, height: number) => SnapshotImporter;
  /** Items asked per chunk request (default DEFAULT_SNAPSHOT_CHUNK_ITEMS; servers send at most MAX_SNAPSHOT_CHUNK_ITEMS). */
  chunkItems?: number;
  /** Where the progress bar / lines go (tests replace it). */
  reporter?: ReporterOptions;
  /** See FIND_PEERS_MS (tests lower it). */
  findPeersMs?: number;
}

/** The snapshot metrics (registered on the node's registry). */
function snapshotMetrics(m: Metrics) {
  const r = [m.registry];
  return {
    bytes: new Counter({ name: 'qnexus_snapshot_bytes_total', help: 'Bytes of snapshot items received (state sync)', registers: r }),
    items: new Counter({ name: 'qnexus_snapshot_items_total', help: 'Snapshot items received and verified (trie nodes and leaves)', registers: r }),
    badItems: new Counter({ name: 'qnexus_snapshot_bad_items_total', help: 'Snapshot chunks refused because an item did not verify against the certified state root (sender penalised)', registers: r }),
    failures: new Counter({ name: 'qnexus_snapshot_failures_total', help: 'Snapshot exchanges (offer or chunk) that failed, by reason', labelNames: ['reason'], registers: r }),
    duration: new Gauge({ name: 'qnexus_snapshot_duration_seconds', help: 'Duration of the last completed snapshot sync', registers: r }),
    height: new Gauge({ name: 'qnexus_snapshot_height', help: 'Height of the state snapshot this node joined at (0: it did not join by snapshot)', registers: r }),
    active: new Gauge({ name: 'qnexus_snapshot_active', help: '1 while the node downloads a state snapshot, else 0', registers: r }),
    servedBytes: new Counter({ name: 'qnexus_snapshot_served_bytes_total', help: 'Bytes of snapshot items served to peers', registers: r }),
  };
}

/** A trie start path (hex nibbles) packed like a node key's path: u16 nibbles ‖ nibbles, high first, an odd one padded with 0. */
export function encodePath(w: Writer, path: string): Writer {
  if (path.length > MAX_SNAPSHOT_PATH_NIBBLES || !/^[0-9a-f]*$/.test(path)) throw new QnexusError('MALFORMED', `bad snapshot path ${path.slice(0, 32)}`);
  w.u16(path.length);
  return w.fixed(fromHex(path.length % 2 ? `${path}0` : path), (path.length + 1) >> 1);
}

export function decodePath(r: Reader): string {
  const n = r.u16('path length');
  if (n > MAX_SNAPSHOT_PATH_NIBBLES) throw new QnexusError('MALFORMED', `snapshot path of ${n} nibbles (at most ${MAX_SNAPSHOT_PATH_NIBBLES})`);
  const hex = toHex(r.fixed((n + 1) >> 1, 'path'));
  if (n % 2 && hex[n] !== '0') throw new QnexusError('MALFORMED', 'snapshot path padding is not zero');
  return hex.slice(0, n);
}

export function encodeOfferRequest(height: number): Uint8Array {
  return new Writer(9).u8(OFFER).u64(height).finish();
}

export function encodeChunkRequest(height: number, path: string, maxItems: number, maxBytes: number): Uint8Array {
  const w = new Writer(32 + path.length).u8(CHUNK).u64(height);
  return encodePath(w, path).u32(maxItems).u32(maxBytes).finish();
}

/** A peer's offer, decoded and checked (before any signature work) on arrival. */
export interface Offer {
  peer: string;
  head: number;
  base: number;
  height: number;
  raw: Uint8Array;
  candidate: Candidate;
  cert: Certificate;
  certRaw: Uint8Array;
  /** The certificate's vote signatures that verified (set by verifyOffer; adoptSnapshot takes them). */
  verified?: VerifiedSignatures;
}

/** Why a snapshot sync did not run (or the height it adopted). */
export type SnapshotOutcome = { adopted: number } | { skipped: string };

/**
 * Serves snapshots to peers and joins by one (see the protocol above).
 *
 * Serving: each request is bounded before any work (request size, path
 * depth, items and bytes per response, the per-peer and global ServeBudget);
 * a malformed request is penalised; a height or path the server does not
 * hold gets an empty response.
 *
 * Joining (`join`): offers are asked of the connected peers; the height taken
 * is the highest that at least two offers reach (a lone offer only after a
 * grace period), recent enough to be worth it, its block's certificate
 * verified against the committee of its round's epoch (the epoch book trusts
 * only the genesis and beacon-signed announcements). The state on disk is
 * dropped and marked as a snapshot in progress (a restart starts over), then
 * the trie is downloaded top-down from the peers that offered that height or
 * above, a few chunks in parallel, every item verified by the importer
 * against the hash its parent names; each accepted part is written at once.
 * A peer whose chunk fails verification (or that sends more than asked, or
 * stalls) is penalised and dropped, and the path is asked of another one. The
 * block, its certificate and the head are written last (`adoptSnapshot`);
 * block sync and gossip take the node on from there.
 */
export class SnapshotService {
  private readonly m: ReturnType<typeof snapshotMetrics>;
  private readonly frameLimit: number;
  private stopped = false;
  /** Peers that lied during this process's snapshot sync: never asked again by it. */
  private readonly liars = new Set<string>();

  constructor(
    private readonly chain: SnapshotChain,
    private readonly p2p: P2PNode,
    private readonly t: Topics,
    metrics: Metrics,
    private readonly log: Logger,
    private readonly opts: SnapshotOptions,
  ) {
    this.m = snapshotMetrics(metrics);
    // An offer frame: head and base, then what a sync frame carries (a block and its certificate).
    this.frameLimit = 16 + syncFrameLimit(schemeLengths(chain.genesis.scheme).signature);
  }

  /** Serve snapshots (once this node holds a whole state). */
  async serve(): Promise<void> {
    await this.p2p.handle(this.t.snapshotProtocol, { ...STREAM_LIMITS, maxRequestBytes: MAX_REQUEST_BYTES, timeoutMs: CHUNK_TIMEOUT_MS, budget: SNAPSHOT_BUDGET }, (req, peer) => this.answer(req, peer));
  }

  stop(): void {
    this.stopped = true;
  }

  private async *answer(req: Uint8Array, peer: string): AsyncIterable<Uint8Array> {
    let kind: number;
    let height: number;
    let path = '';
    let maxItems = 0;
    let maxBytes = 0;
    try {
      const r = new Reader(req);
      kind = r.u8('kind');
      height = r.u64n('height');
      if (kind === CHUNK) {
        path = decodePath(r);
        maxItems = Math.min(r.u32('maxItems'), MAX_SNAPSHOT_CHUNK_ITEMS);
        maxBytes = Math.min(r.u32('maxBytes'), MAX_SNAPSHOT_CHUNK_BYTES);
      } else if (kind !== OFFER) throw new QnexusError('MALFORMED', `unknown snapshot request ${kind}`);
      r.end('snapshot request');
    } catch (e) {
      // Bytes no honest peer sends: penalised like any other malformed request.
      this.p2p.penalize(peer, `snapshot: ${(e as Error).message}`);
      return;
    }
    if (kind === OFFER) {
      const frame = await this.offerFrame(height);
      if (frame) yield frame;
      return;
    }
    if (maxItems < 1 || maxBytes < 1 || height < this.chain.baseHeight || height > this.chain.headHeight) return;
    let items: Uint8Array[];
    try {
      items = this.chain.state.exportSubtree(height, path, maxItems, maxBytes);
    } catch (e) {
      // Pruned (STATE_PRUNED) or a path that is no subtree (NOT_FOUND): nothing to send.
      if (!(e instanceof QnexusError)) this.log.warn('snapshot export failed', { height, path: path.slice(0, 32), error: (e as Error).message });
      return;
    }
    for (const item of items) {
      this.m.servedBytes.inc(item.length);
      yield item;
    }
  }

  /** The offer of a height this node holds whole (block, certificate, state), or null. */
  private async offerFrame(height: number): Promise<Uint8Array | null> {
    const head = this.chain.headHeight;
    const base = this.chain.baseHeight;
    // The latest: the head, or a height just below it while the head's batch is still being written.
    const heights = height === 0 ? [head, head - 1, head - 2] : [height];
    for (const h of heights) {
      // A node that joined by snapshot holds its base block (and certificate) and the state there; block 0 has no certificate.
      if (h < Math.max(1, base) || h > head) continue;
      try {
        this.chain.state.exportSubtree(h, '', 1, 1);
      } catch {
        continue;
      }
      const [row] = await this.chain.store.certifiedRange(h, h);
      if (!row) continue;
      return new Writer(row.block.length + row.certificate.length + 32).u64(head).u64(base).bytes(row.block).bytes(row.certificate).finish();
    }
    return null;
  }

  // ------------------------------------------------------------------ joining

  /**
   * Whether this node starts from a snapshot: with `--sync snapshot`, at genesis, when a peer is
   * more than `threshold` heights ahead. (A snapshot cut short by a stop or crash left its mark on
   * disk: `Chain.open` put the genesis state back, so the node is at genesis again and decides
   * anew.) Returns the height adopted, or why it did not run (then block sync runs as before).
   * Throws SNAPSHOT_UNAVAILABLE once the state was dropped and no snapshot completed.
   */
  async join(mode: SyncMode, threshold: number): Promise<SnapshotOutcome> {
    if (mode === 'blocks') return { skipped: '--sync blocks' };
    if (this.chain.headHeight > 0) return { skipped: 'the node already holds blocks' };
    // No chain can be more than a block per slot long: a young chain is replayed.
    if (this.chain.latestPlausibleRound() <= this.chain.headHeight + threshold) return { skipped: 'the chain is shorter than the snapshot threshold' };
    const minHeight = this.chain.headHeight + threshold + 1;
    this.log.info('snapshot: asking peers for a snapshot above the threshold', { threshold, minHeight });
    let lastError: unknown = null;
    let reset = false;
    for (let attempt = 0; attempt < MAX_ATTEMPTS && !this.stopped; attempt++) {
      const findMs = this.opts.findPeersMs ?? FIND_PEERS_MS;
      const offer = await this.chooseOffer(minHeight, attempt === 0 ? findMs : Math.min(findMs, OFFER_GRACE_MS * 2));
      if (!offer) {
        if (!reset) return { skipped: 'no peer offers a snapshot above the threshold' };
        lastError = new QnexusError('SNAPSHOT_UNAVAILABLE', 'no peer offers a snapshot');
        continue;
      }
      reset = true;
      try {
        await this.download(offer.chosen, offer.servers);
        return { adopted: offer.chosen.height };
      } catch (e) {
        lastError = e;
        this.log.warn('snapshot: attempt failed', { height: offer.chosen.height, attempt: attempt + 1, error: (e as Error).message });
      }
    }
    if (this.stopped) throw new QnexusError('SNAPSHOT_UNAVAILABLE', 'stopped during the snapshot sync');
    const why = lastError instanceof Error ? lastError.message : 'no peer offers a snapshot';
    throw new QnexusError('SNAPSHOT_UNAVAILABLE', `no snapshot could be completed after ${MAX_ATTEMPTS} attempts (${why}); the next start tries again`);
  }

  private judge(peer: string, e: unknown, what: string): void {
    const code = e instanceof QnexusError || e instanceof P2PRequestError ? e.code : 'INTERNAL';
    if (code !== 'DIAL_FAILED') this.m.failures.inc({ reason: code });
    if (LIES.has(code) || code === 'TIMEOUT' || code === 'STALLED') {
      if (LIES.has(code)) this.liars.add(peer);
      this.p2p.penalize(peer, `snapshot: ${code}`);
      this.log.warn(`snapshot: ${what} from peer failed`, { peer, code, error: (e as Error).message });
    } else {
      this.log.debug(`snapshot: ${what} from peer failed`, { peer, code, error: (e as Error).message });
    }
  }

  private async askOffer(peer: string, height: number): Promise<Offer | null> {
    try {
      const opts = { timeoutMs: OFFER_TIMEOUT_MS, idleTimeoutMs: IDLE_MS, maxResponseFrameBytes: this.frameLimit, maxFrames: 1 };
      for await (const f of this.p2p.request(peer, this.t.snapshotProtocol, encodeOfferRequest(height), opts)) {
        return this.decodeOffer(peer, f, height);
      }
    } catch (e) {
      this.judge(peer, e, 'offer');
    }
    return null;
  }

  /** Decode an offer and check what needs no signature: chain, shard, a height the slot clock allows, the certificate naming this block. */
  private decodeOffer(peer: string, frame: Uint8Array, asked: number): Offer {
    const r = new Reader(frame);
    const head = r.u64n('head');
    const base = r.u64n('base');
    const raw = r.bytes(MAX_BLOCK_WIRE_BYTES, 'block');
    const certRaw = r.bytes(this.frameLimit, 'certificate');
    r.end('snapshot offer');
    const block = decodeBlock(raw);
    const cert = decodeCertificate(certRaw);
    const h = block.header;
    const bad = (m: string): never => {
      throw new QnexusError('BAD_BLOCK', `snapshot offer: ${m}`);
    };
    if (h.chainId !== this.chain.genesis.chainId || h.shard !== this.chain.shard) bad('block of another chain or shard');
    if (asked !== 0 && h.height !== asked) bad(`block ${h.height} offered where ${asked} was asked`);
    if (h.height < 1 || h.height > head || base > h.height) bad(`block ${h.height} outside the offered range [${base}, ${head}]`);
    const maxRound = this.chain.latestPlausibleRound();
    if (head > maxRound || h.slot > maxRound || cert.round > maxRound) bad(`head ${head} or slot ${h.slot} beyond the current slot ${maxRound}`);
    const candidate = candidateFromBlock(block, raw);
    if (cert.height !== h.height || toHex(cert.blockHash) !== candidate.hashHex) throw new QnexusError('BAD_CERTIFICATE', 'snapshot offer: the certificate is for another block');
    return { peer, head, base, height: h.height, raw, candidate, cert, certRaw };
  }

  /** Verify an offer's certificate against the committee of its round's epoch (fetched from the beacon's announcements). */
  private async verifyOffer(o: Offer): Promise<void> {
    const epoch = this.chain.epochOf(o.cert.round);
    if (!(await this.chain.epochs.ensure(epoch, o.peer)) && !(await this.chain.epochs.ensure(epoch, o.peer))) {
      throw new QnexusError('EPOCH_UNKNOWN', `cannot verify the snapshot offer of height ${o.height}: the committee of epoch ${epoch} is not available`);
    }
    // Votes verified once, on the verify pool; adoptSnapshot checks the structure again but not these.
    o.verified = await this.chain.preverifyCertificate(o.cert, o.candidate.block.header, o.candidate.hash);
    this.chain.verifyCertificate(o.cert, o.candidate.block.header, o.verified, o.candidate.hash);
  }

  /**
   * Collect offers until enough peers answered (or `waitMs` passed), then take the highest
   * height that two offers reach (one, if only one peer answered), at least `minHeight`, with
   * a verified certificate. The servers are the peers whose offered head reaches that height.
   */
  private async chooseOffer(minHeight: number, waitMs: number): Promise<{ chosen: Offer; servers: string[] } | null> {
    const t0 = Date.now();
    const offers = new Map<string, Offer>();
    const asked = new Set<string>();
    while (!this.stopped) {
      const peers = this.p2p
        .connectedPeers()
        .filter((p) => !asked.has(p) && !this.liars.has(p) && !this.p2p.isBanned(p))
        .slice(0, MAX_OFFER_PEERS);
      for (const p of peers) asked.add(p);
      const got = await Promise.all(peers.map((p) => this.askOffer(p, 0)));
      for (const o of got) if (o) offers.set(o.peer, o);
      const elapsed = Date.now() - t0;
      if (offers.size >= WANT_OFFERS || (offers.size > 0 && elapsed >= OFFER_GRACE_MS) || elapsed >= waitMs) break;
      await new Promise((r) => setTimeout(r, 500));
      // Peers that had nothing may have it later: ask the ones without an offer again once in a while.
      if (elapsed >= OFFER_GRACE_MS) for (const p of asked) if (!offers.has(p)) asked.delete(p);
    }
    for (let tries = 0; tries < MAX_OFFER_PEERS && !this.stopped; tries++) {
      const ranked = [...offers.values()].sort((a, b) => b.height - a.height);
      if (!ranked.length) return null;
      // The second-highest offer: a single peer cannot pull the node to a height of its choosing.
      const pick = ranked[Math.min(1, ranked.length - 1)]!;
      if (pick.height < minHeight) {
        this.log.info('snapshot: no peer is far enough ahead', { best: ranked[0]!.height, needed: minHeight });
        return null;
      }
      try {
        await this.verifyOffer(pick);
      } catch (e) {
        this.judge(pick.peer, e, 'offer');
        offers.delete(pick.peer);
        continue;
      }
      const servers = ranked.filter((o) => o.head >= pick.height && o.base <= pick.height).map((o) => o.peer);
      return { chosen: pick, servers };
    }
    return null;
  }

  /** Download, verify and write the state of `offer`, then adopt its block as the head. */
  private async download(offer: Offer, servers: string[]): Promise<void> {
    const H = offer.height;
    const root = offer.candidate.block.header.stateRoot;
    this.log.info('snapshot: joining at a certified height', { height: H, stateRoot: toHex(root).slice(0, 16), peers: servers.length });
    await this.chain.resetForSnapshot(H, root);
    const importer = this.opts.importer(root, H);
    const report = new SnapshotReporter(this.log, H, this.opts.reporter);
    const chunkItems = Math.max(1, Math.min(this.opts.chunkItems ?? DEFAULT_SNAPSHOT_CHUNK_ITEMS, MAX_SNAPSHOT_CHUNK_ITEMS));
    const live = servers.filter((p) => !this.liars.has(p));
    const load = new Map<string, number>(live.map((p) => [p, 0]));
    const inflight = new Map<string, Promise<void>>();
    let bytes = 0;
    let failure: unknown = null;
    this.m.active.set(1);
    this.m.height.set(0);

    /** Requests so far per peer: the least loaded peer is asked, ties going to the one asked least, so every server takes a share. */
    const asked = new Map<string, number>();
    const pickPeer = (): string | undefined => {
      let best: string | undefined;
      const now = Date.now();
      for (const p of live) {
        const n = load.get(p) ?? 0;
        if (n >= PARALLEL_PER_PEER || (resting.get(p) ?? 0) > now) continue;
        if (best === undefined || n < load.get(best)! || (n === load.get(best)! && (asked.get(p) ?? 0) < (asked.get(best) ?? 0))) best = p;
      }
      if (best !== undefined) asked.set(best, (asked.get(best) ?? 0) + 1);
      return best;
    };
    const drop = (peer: string) => {
      const i = live.indexOf(peer);
      if (i >= 0) live.splice(i, 1);
    };
    /** Refusals in a row per peer, and until when a refusing peer rests. */
    const refusals = new Map<string, number>();
    const resting = new Map<string, number>();

    /** Fetch one path's chunk from `peer`, verify it and write it; a peer at fault is judged and dropped, our own failure stops the sync. */
    const fetchPath = async (path: string, peer: string): Promise<void> => {
      const items: Uint8Array[] = [];
      let part: SnapshotPart;
      try {
        let got = 0;
        const req = encodeChunkRequest(H, path, chunkItems, MAX_SNAPSHOT_CHUNK_BYTES);
        const opts = {
          timeoutMs: CHUNK_TIMEOUT_MS,
          idleTimeoutMs: IDLE_MS,
          maxResponseFrameBytes: MAX_SNAPSHOT_ITEM_BYTES,
          maxFrames: chunkItems,
          maxResponseBytes: MAX_SNAPSHOT_CHUNK_BYTES + MAX_SNAPSHOT_ITEM_BYTES,
        };
        try {
          for await (const item of this.p2p.request(peer, this.t.snapshotProtocol, req, opts)) {
            if (this.stopped || failure) return;
            items.push(item);
            got += item.length;
          }
        } finally {
          bytes += got;
          this.m.bytes.inc(got);
        }
        if (!items.length) {
          // Not a lie (it may have pruned the height meanwhile), but it cannot help with this snapshot.
          this.m.failures.inc({ reason: 'SNAPSHOT_UNAVAILABLE' });
          this.log.info('snapshot: peer no longer serves this height; not asked again', { peer, height: H, path: path.slice(0, 32) });
          drop(peer);
          return;
        }
        try {
          part = importer.add(path, items);
        } catch (e) {
          // Anything but BAD_SNAPSHOT is the importer's own trouble, not the peer's.
          if (!(e instanceof QnexusError) || e.code !== 'BAD_SNAPSHOT') {
            failure ??= e;
            return;
          }
          this.m.badItems.inc();
          throw e;
        }
      } catch (e) {
        this.judge(peer, e, 'chunk');
        const code = e instanceof QnexusError || e instanceof P2PRequestError ? e.code : 'INTERNAL';
        if (LIES.has(code) || code === 'TIMEOUT' || code === 'STALLED') {
          drop(peer);
          return;
        }
        // A refusal (its serving budget resets the stream) or a broken stream: not a fault. The peer rests
        // a moment and is asked again, unless it keeps refusing.
        const n = (refusals.get(peer) ?? 0) + 1;
        refusals.set(peer, n);
        if (n >= MAX_REFUSALS) {
          this.log.warn('snapshot: peer keeps refusing; not asked again', { peer, code, refusals: n });
          drop(peer);
        } else resting.set(peer, Date.now() + REST_MS * n);
        return;
      }
      refusals.delete(peer);
      this.m.items.inc(items.length);
      try {
        await this.chain.store.writeSnapshotPart(part.puts, part.entries);
      } catch (e) {
        failure ??= e; // our disk: the snapshot cannot go on
        return;
      }
      report.update(importer.received, importer.total, bytes);
    };

    try {
      // Each turn waits for a request to end; every request either adds verified items or drops its peer, so this ends.
      while (!importer.done && !this.stopped) {
        if (failure) throw failure;
        for (const path of importer.pending()) {
          if (inflight.size >= PARALLEL) break;
          if (inflight.has(path)) continue;
          const peer = pickPeer();
          if (peer === undefined) break;
          load.set(peer, (load.get(peer) ?? 0) + 1);
          const task = fetchPath(path, peer).finally(() => {
            inflight.delete(path);
            load.set(peer, (load.get(peer) ?? 1) - 1);
          });
          inflight.set(path, task);
        }
        if (!inflight.size) {
          if (importer.done) break;
          if (!live.length) throw new QnexusError('SNAPSHOT_UNAVAILABLE', `no peer left to serve the snapshot of height ${H} (${importer.received}/${importer.total} entries)`);
          // Every live peer is resting after a refusal: wait for the first to be due.
          const due = Math.min(...live.map((p) => resting.get(p) ?? 0));
          await new Promise((r) => setTimeout(r, Math.max(10, due - Date.now())));
          continue;
        }
        await Promise.race(inflight.values());
      }
      await Promise.all(inflight.values());
      if (failure) throw failure;
      if (this.stopped) throw new QnexusError('SNAPSHOT_UNAVAILABLE', 'stopped during the snapshot sync');
      await this.chain.adoptSnapshot(offer.candidate, offer.cert, offer.certRaw, offer.verified);
      report.update(importer.received, importer.total, bytes);
      report.finish(true);
      this.m.duration.set(report.elapsedMs / 1000);
      this.m.height.set(H);
      this.log.info('snapshot adopted', { height: H, entries: importer.total, bytes, seconds: Math.round(report.elapsedMs / 100) / 10 });
    } catch (e) {
      await Promise.allSettled(inflight.values());
      report.finish(false, (e as Error).message);
      throw e;
    } finally {
      this.m.active.set(0);
    }
  }
}
