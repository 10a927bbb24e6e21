/**
 * Peer exchange: how a process that knows one bootstrap address finds the rest
 * of the network it needs (its shard's peers, the beacon).
 *
 * A peer asks a connected peer "who do you know that subscribes to these
 * topics, and where are these peer ids?"; the answer lists peer ids with the
 * addresses the responder learned through identify (their listen or announce
 * addresses). The asker dials what it lacks. Nothing here is trusted: an
 * address is only a hint, and Noise proves the peer id on dial.
 *
 * Why not gossip (e.g. @libp2p/pubsub-peer-discovery): our gossip ids are
 * content hashes, so a peer's periodic, identical self-announcement is a
 * duplicate every relay drops for the seen-cache TTL; a newcomer could wait
 * minutes to hear of a peer. A request answers at once, from the responder's
 * own view.
 *
 * The wire format is small, strictly validated JSON (nothing here is hashed
 * or signed, so it needs no canonical encoding).
 */

/** Bounds of one exchange: anything beyond them is malformed. */
export const DISCOVERY_LIMITS = {
  topics: 16,
  topicChars: 256,
  wantPeers: 8,
  peers: 32,
  addrsPerPeer: 8,
  addrChars: 256,
  peerIdChars: 128,
  requestBytes: 8 * 1024,
  responseBytes: 64 * 1024,
} as const;

export interface DiscoveryRequest {
  /** Topics the asker wants peers for. */
  topics: string[];
  /** Specific peers the asker wants addresses of (e.g. the beacon). */
  peers: string[];
}

export interface DiscoveredPeer {
  id: string;
  addrs: string[];
}

export interface DiscoveryResponse {
  peers: DiscoveredPeer[];
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

function parseObject(b: Uint8Array, what: string, keys: readonly string[]): Record<string, unknown> {
  let j: unknown;
  try {
    j = JSON.parse(dec.decode(b));
  } catch {
    throw new Error(`${what}: not UTF-8 JSON`);
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new Error(`${what}: not a JSON object`);
  for (const k of Object.keys(j)) if (!keys.includes(k)) throw new Error(`${what}: unknown field ${JSON.stringify(k)}`);
  return j as Record<string, unknown>;
}

function stringList(v: unknown, what: string, max: number, maxChars: number): string[] {
  if (!Array.isArray(v) || v.length > max) throw new Error(`${what}: expected an array of at most ${max} strings`);
  for (const s of v) if (typeof s !== 'string' || s.length === 0 || s.length > maxChars) throw new Error(`${what}: entries must be strings of 1..${maxChars} characters`);
  return v as string[];
}

export function encodeDiscoveryRequest(r: DiscoveryRequest): Uint8Array {
  return enc.encode(JSON.stringify({ topics: r.topics.slice(0, DISCOVERY_LIMITS.topics), peers: r.peers.slice(0, DISCOVERY_LIMITS.wantPeers) }));
}

export function decodeDiscoveryRequest(b: Uint8Array): DiscoveryRequest {
  if (b.length > DISCOVERY_LIMITS.requestBytes) throw new Error('discovery request: too large');
  const o = parseObject(b, 'discovery request', ['topics', 'peers']);
  return {
    topics: stringList(o['topics'], 'discovery request topics', DISCOVERY_LIMITS.topics, DISCOVERY_LIMITS.topicChars),
    peers: stringList(o['peers'], 'discovery request peers', DISCOVERY_LIMITS.wantPeers, DISCOVERY_LIMITS.peerIdChars),
  };
}

export function encodeDiscoveryResponse(r: DiscoveryResponse): Uint8Array {
  const peers = r.peers.slice(0, DISCOVERY_LIMITS.peers).map((p) => ({ id: p.id, addrs: p.addrs.slice(0, DISCOVERY_LIMITS.addrsPerPeer) }));
  return enc.encode(JSON.stringify({ peers }));
}

export function decodeDiscoveryResponse(b: Uint8Array): DiscoveryResponse {
  if (b.length > DISCOVERY_LIMITS.responseBytes) throw new Error('discovery response: too large');
  const o = parseObject(b, 'discovery response', ['peers']);
  const list = o['peers'];
  if (!Array.isArray(list) || list.length > DISCOVERY_LIMITS.peers) throw new Error(`discovery response: peers must be an array of at most ${DISCOVERY_LIMITS.peers}`);
  const peers: DiscoveredPeer[] = [];
  for (const p of list) {
    if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new Error('discovery response: a peer is not an object');
    for (const k of Object.keys(p)) if (k !== 'id' && k !== 'addrs') throw new Error(`discovery response: unknown peer field ${JSON.stringify(k)}`);
    const { id, addrs } = p as { id?: unknown; addrs?: unknown };
    if (typeof id !== 'string' || id.length === 0 || id.length > DISCOVERY_LIMITS.peerIdChars) throw new Error('discovery response: bad peer id');
    peers.push({ id, addrs: stringList(addrs, 'discovery response addrs', DISCOVERY_LIMITS.addrsPerPeer, DISCOVERY_LIMITS.addrChars) });
  }
  return { peers };
}

/** Whether a multiaddr string points at a loopback or unspecified host (useless to a peer on another machine). */
export function isLocalOnlyAddr(addr: string): boolean {
  return /^\/ip4\/(127\.|0\.0\.0\.0\/)/.test(addr) || /^\/ip6\/(::1?|0:0:0:0:0:0:0:[01])\//.test(addr);
}
