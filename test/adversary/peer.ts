// TEST-ONLY: the adversary's libp2p peer. Built directly from the stock libp2p 2 modules the
// repository depends on (not through @qnexus/p2p, whose limits and scoring would get in the way of
// attacking), it speaks the devnet's transport (TCP + Noise + Yamux + identify) and then whatever
// bytes an attack wants: raw gossipsub RPC frames on a /meshsub/1.1.0 stream, the shard's sync
// protocols as a (lying) server, range requests as a client. Nothing under packages/ imports it.
//
// By default it dials from ATTACKER_IP (127.0.0.2; Linux routes all of 127/8 over lo), so a node's
// per-IP limits can tell it from the devnet, which lives on 127.0.0.1. `localAddress: null` gives an
// ordinary peer on 127.0.0.1: what the tests use as the honest newcomer.
// Node 20: the libp2p 2 tree calls Promise.withResolvers; @qnexus/p2p installs the standard
// polyfill when loaded (packages/p2p/src/polyfills.ts). Of its API only the deadline helpers are
// used here: every dial and request is bounded by a deadline that fires even after a GC.
import { deadlineSignal, withoutListenerCap } from '@qnexus/p2p';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { RPC } from '@chainsafe/libp2p-gossipsub/message';
import { generateKeyPair as generatePeerKey } from '@libp2p/crypto/keys';
import { identify } from '@libp2p/identify';
import type { Connection, PrivateKey, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import * as lp from 'it-length-prefixed';
import { createLibp2p, type Libp2p } from 'libp2p';

export const ATTACKER_IP = '127.0.0.2';
export const MESHSUB = '/meshsub/1.1.0';
/** A request whose stream has not ended this long after its deadline's abort is abandoned. */
const ABANDON_AFTER_MS = 2000;
/** How long `stop()` waits for libp2p to close its connections. */
const STOP_TIMEOUT_MS = 10_000;

export interface AttackerPeerOptions {
  /** Source address of its dials. Default ATTACKER_IP; null: the OS default (127.0.0.1). */
  localAddress?: string | null;
  /**
   * Accept the node's own gossip stream to us and read it to the end, like a real gossip peer
   * (a sybil does: with flood publishing the node sends it everything). Default true.
   */
  drainGossip?: boolean;
}

/** How a node got rid of an attacker: it closed our connection, or refused what we asked. */
export interface CutOff {
  at: number;
  how: 'disconnected' | 'refused' | 'penalised';
  detail: string;
}

/** Earliest of several cut-offs (null when none happened). */
export function earliestCutOff(...cs: (CutOff | null | undefined)[]): CutOff | null {
  let best: CutOff | null = null;
  for (const c of cs) if (c && (best === null || c.at < best.at)) best = c;
  return best;
}

/**
 * A bounded FIFO the stream's sink pulls from: `push` resolves once the sink took the frame
 * (handed it to the muxer), so a writer awaiting it never piles up more than one frame.
 */
class FrameQueue {
  private readonly buf: { v: Uint8Array; taken: (ok: boolean) => void }[] = [];
  private wake: (() => void) | null = null;
  private ended = false;

  push(v: Uint8Array): Promise<boolean> {
    if (this.ended) return Promise.resolve(false);
    return new Promise((taken) => {
      this.buf.push({ v, taken });
      this.wake?.();
    });
  }

  end(): void {
    this.ended = true;
    for (const x of this.buf.splice(0)) x.taken(false);
    this.wake?.();
  }

  async *frames(): AsyncGenerator<Uint8Array> {
    for (;;) {
      const x = this.buf.shift();
      if (x) {
        yield x.v;
        x.taken(true);
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = null;
    }
  }
}

/** A raw gossipsub RPC writer on one /meshsub/1.1.0 stream (frames: unsigned-varint length-prefixed protobuf). */
export class RpcWriter {
  private readonly q = new FrameQueue();
  private readonly done: Promise<void>;
  /** Set when the stream failed or was closed by the other side. */
  error: string | null = null;
  closedAt: number | null = null;
  framesSent = 0;
  bytesSent = 0;

  constructor(readonly stream: Stream) {
    this.done = stream.sink(lp.encode(this.q.frames())).then(
      () => undefined,
      (e: unknown) => {
        this.error = e instanceof Error ? e.message : String(e);
        this.closedAt ??= Date.now();
        this.q.end();
      },
    );
  }

  /** Queue one RPC; resolves false once the stream is gone. */
  async send(rpc: Partial<RPC>): Promise<boolean> {
    const bytes = RPC.encode({ subscriptions: [], messages: [], ...rpc });
    return this.sendEncoded(bytes);
  }

  async sendEncoded(bytes: Uint8Array): Promise<boolean> {
    const ok = await this.q.push(bytes);
    if (ok) {
      this.framesSent++;
      this.bytesSent += bytes.length;
    }
    return ok;
  }

  get open(): boolean {
    return this.error === null && this.stream.status === 'open';
  }

  async close(): Promise<void> {
    this.q.end();
    await Promise.race([this.done, new Promise((r) => setTimeout(r, 1000))]);
    this.stream.abort(new Error('attack over'));
  }
}

export interface RequestOutcome {
  frames: number;
  bytes: number;
  /** null: the server ended the response normally. */
  error: string | null;
  ms: number;
}

/** One request of the shard's request/response protocols (packages/p2p/src/reqresp.ts framing). */
export interface ServeHandler {
  (request: Uint8Array, from: string, signal: AbortSignal): AsyncIterable<Uint8Array>;
}

export class AttackerPeer {
  /** Time of the first connection closed while we did not mean to close it. */
  remoteCloseAt: number | null = null;
  remoteCloses = 0;
  /** Time of the first dial the node refused (gater, reset, protocol refused). */
  refusedAt: number | null = null;
  refusals = 0;
  gossipBytesReceived = 0;
  private stopping = false;
  private readonly abort = withoutListenerCap(new AbortController());

  private constructor(readonly node: Libp2p) {
    node.addEventListener('connection:close', () => {
      if (this.stopping) return;
      this.remoteCloses++;
      this.remoteCloseAt ??= Date.now();
    });
  }

  static async create(o: AttackerPeerOptions = {}): Promise<AttackerPeer> {
    const localAddress = o.localAddress === undefined ? ATTACKER_IP : o.localAddress;
    // @libp2p/crypto's declarations name @libp2p/interface 3's key type; at runtime it is the very
    // object libp2p 2 uses (packages/p2p/src/keys.ts re-types it the same way).
    const privateKey = (await generatePeerKey('Ed25519')) as unknown as PrivateKey;
    // TCPSocketOptions declares a subset of net.connect's options; the transport passes them all
    // through, localAddress included.
    const dialOpts = localAddress === null ? undefined : ({ localAddress } as NonNullable<Parameters<typeof tcp>[0]>['dialOpts']);
    const node = await createLibp2p({
      privateKey,
      addresses: { listen: [] },
      transports: [tcp(dialOpts ? { dialOpts } : {})],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: { maxConnections: 256, dialTimeout: 10_000 },
      services: { identify: identify() },
    });
    const p = new AttackerPeer(node);
    if (o.drainGossip !== false) {
      await node.handle(
        MESHSUB,
        ({ stream }) => {
          void (async () => {
            try {
              for await (const chunk of stream.source) p.gossipBytesReceived += chunk.byteLength;
            } catch {
              // the node reset it: nothing to drain
            }
          })();
        },
        { maxInboundStreams: 8 },
      );
    }
    return p;
  }

  private noteRefusal(): void {
    this.refusals++;
    this.refusedAt ??= Date.now();
  }

  get id(): string {
    return this.node.peerId.toString();
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** Dial; false (and a refusal recorded) if the node does not take the connection. */
  async connect(addr: string, timeoutMs = 10_000): Promise<boolean> {
    const { signal, clear } = deadlineSignal(timeoutMs, this.abort.signal);
    try {
      await this.node.dial(multiaddr(addr), { signal });
      return true;
    } catch {
      // A dial that merely timed out (a node too busy to finish the handshake) is not a refusal.
      if (!signal.aborted) this.noteRefusal();
      return false;
    } finally {
      clear();
    }
  }

  connections(peerId: string): Connection[] {
    return this.node.getConnections(peerIdFromString(peerId)).filter((c) => c.status === 'open');
  }

  isConnected(peerId: string): boolean {
    return this.connections(peerId).length > 0;
  }

  /** Open our gossip stream to a connected node. */
  async gossip(peerId: string, timeoutMs = 10_000): Promise<RpcWriter | null> {
    const { signal, clear } = deadlineSignal(timeoutMs, this.abort.signal);
    try {
      const s = await this.node.dialProtocol(peerIdFromString(peerId), MESHSUB, { signal });
      return new RpcWriter(s);
    } catch {
      if (!signal.aborted) this.noteRefusal();
      return null;
    } finally {
      clear();
    }
  }

  /**
   * One request on a stream protocol: write the request frame, read (and count, then drop) the
   * response frames until the server closes, `maxFrameBytes` is exceeded or `timeoutMs` passes.
   */
  async request(peerId: string, protocol: string, req: Uint8Array, o: { timeoutMs: number; maxFrameBytes?: number; onFrame?: (f: Uint8Array) => void }): Promise<RequestOutcome> {
    const t0 = Date.now();
    const { signal, clear } = deadlineSignal(o.timeoutMs, this.abort.signal);
    let frames = 0;
    let bytes = 0;
    let stream: Stream | undefined;
    const exchange = (async (): Promise<RequestOutcome> => {
      try {
        stream = await this.node.dialProtocol(peerIdFromString(peerId), protocol, { signal });
        const s = stream;
        const onAbort = () => s.abort(new Error('request timed out'));
        signal.addEventListener('abort', onAbort, { once: true });
        // The deadline may have passed while the stream opened: its abort event is gone by now.
        if (signal.aborted) onAbort();
        try {
          const writing = s.sink([lp.encode.single(req)]).catch(() => undefined);
          for await (const f of lp.decode(s.source, { maxDataLength: o.maxFrameBytes ?? 16 * 1024 * 1024 })) {
            frames++;
            bytes += f.byteLength;
            o.onFrame?.(f.subarray());
          }
          await writing;
        } finally {
          signal.removeEventListener('abort', onAbort);
        }
        return { frames, bytes, error: null, ms: Date.now() - t0 };
      } catch (e) {
        stream?.abort(new Error('request failed'));
        return { frames, bytes, error: signal.aborted ? 'timeout' : e instanceof Error ? e.message : String(e), ms: Date.now() - t0 };
      }
    })();
    // Aborting the stream ends the exchange; should it still not settle, the request is abandoned
    // shortly after its deadline all the same. An attack's loop must never outlive its window
    // (CI once waited out its 90 minutes on one that did).
    let late: NodeJS.Timeout | undefined;
    const abandoned = new Promise<RequestOutcome>((r) => {
      signal.addEventListener('abort', () => {
        late = setTimeout(() => r({ frames, bytes, error: 'timeout', ms: Date.now() - t0 }), ABANDON_AFTER_MS);
      }, { once: true });
    });
    try {
      return await Promise.race([exchange, abandoned]);
    } finally {
      clear();
      clearTimeout(late);
    }
  }

  /** Serve a stream protocol: read one request frame, stream the handler's frames (until `stop()`). */
  async serve(protocol: string, fn: ServeHandler): Promise<void> {
    await this.node.handle(
      protocol,
      ({ stream, connection }) => {
        void (async () => {
          const signal = this.abort.signal;
          const onAbort = () => stream.abort(new Error('attack over'));
          signal.addEventListener('abort', onAbort, { once: true });
          try {
            let req: Uint8Array | undefined;
            for await (const f of lp.decode(stream.source, { maxDataLength: 1024 * 1024 })) {
              req = f.subarray();
              break;
            }
            await stream.sink(lp.encode(fn(req ?? new Uint8Array(0), connection.remotePeer.toString(), signal)));
            await stream.close().catch(() => undefined);
          } catch {
            stream.abort(new Error('serving failed'));
          } finally {
            signal.removeEventListener('abort', onAbort);
          }
        })();
      },
      { maxInboundStreams: 64, maxOutboundStreams: 64 },
    );
  }

  /** Close everything (what happens from now on is not the node's doing). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    // Bounded like every request: a libp2p stop stuck on a connection must not hold the test.
    let late: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.resolve(this.node.stop()).catch(() => undefined),
      new Promise<void>((r) => { late = setTimeout(r, STOP_TIMEOUT_MS); }),
    ]);
    clearTimeout(late);
  }
}

/** Start `n` fresh identities (sybils), `batch` at a time. */
export async function createPeers(n: number, o: AttackerPeerOptions = {}, batch = 16): Promise<AttackerPeer[]> {
  const out: AttackerPeer[] = [];
  for (let i = 0; i < n; i += batch) out.push(...(await Promise.all(Array.from({ length: Math.min(batch, n - i) }, () => AttackerPeer.create(o)))));
  return out;
}

export async function stopPeers(peers: AttackerPeer[]): Promise<void> {
  await Promise.all(peers.map((p) => p.stop()));
}

/** Earliest remote close or refusal over a set of attacker peers. */
export function peersCutOff(peers: AttackerPeer[]): CutOff | null {
  const cs: CutOff[] = [];
  for (const p of peers) {
    if (p.remoteCloseAt !== null) cs.push({ at: p.remoteCloseAt, how: 'disconnected', detail: `the node closed the connection of ${p.id}` });
    if (p.refusedAt !== null) cs.push({ at: p.refusedAt, how: 'refused', detail: `the node refused a dial or stream of ${p.id}` });
  }
  return earliestCutOff(...cs);
}

/**
 * Can a fresh identity from 127.0.0.1 (what a restarting validator looks like) still connect to
 * the node and be served? It dials, asks the shard's status protocol and must get the node's
 * head (a u64 height and a 32-byte hash) back.
 */
export async function honestPeerCheck(addr: string, statusProtocol: string, timeoutMs = 8_000): Promise<{ ok: boolean; detail: string }> {
  const p = await AttackerPeer.create({ localAddress: null, drainGossip: false });
  try {
    const t0 = Date.now();
    if (!(await p.connect(addr, timeoutMs))) return { ok: false, detail: 'dial refused or timed out' };
    const peerId = multiaddr(addr).getPeerId()!;
    let frame: Uint8Array | undefined;
    const r = await p.request(peerId, statusProtocol, new Uint8Array(0), { timeoutMs: Math.max(1000, timeoutMs - (Date.now() - t0)), maxFrameBytes: 64, onFrame: (f) => (frame ??= f) });
    // u64 head ‖ 32-byte head hash, then (nodes since snapshot sync) u64 base height
    if (!frame || (frame.length !== 40 && frame.length !== 48)) return { ok: false, detail: `status request: ${r.error ?? `answer of ${frame?.length ?? 0} bytes`}` };
    return { ok: true, detail: `connected and served in ${Date.now() - t0} ms` };
  } finally {
    await p.stop();
  }
}
