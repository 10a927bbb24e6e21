import { concatBytes, utf8 } from './bytes.js';

/**
 * Every signature in Quantum Nexus is over `domainTag(chainId, kind) || body`.
 * The tag lives inside the signed bytes instead of ML-DSA's context parameter
 * so that backends without a context (PQClean) verify the same signatures.
 * The tag is length-prefixed (u16 BE) so no tag is a prefix of another.
 */
export type SignedKind =
  | 'tx'
  | 'block'
  | 'proposal'
  | 'vote'
  /** Beacon-authored objects: epoch announcements, cross-shard prepare requests and decisions. */
  | 'beacon'
  /** A validator's statement binding its libp2p peer id to its ML-DSA key. */
  | 'binding'
  /** A validator key's consent to be staked by a funding account. */
  | 'stake';

const CHAIN_ID_RE = /^[a-z0-9][a-z0-9-]{0,63}$/;

export function isValidChainId(chainId: string): boolean {
  return CHAIN_ID_RE.test(chainId);
}

export function domainTag(chainId: string, kind: SignedKind): Uint8Array {
  if (!isValidChainId(chainId)) throw new TypeError(`invalid chain id: ${JSON.stringify(chainId)}`);
  const tag = utf8(`qnexus/${chainId}/${kind}`);
  const out = new Uint8Array(2 + tag.length);
  new DataView(out.buffer).setUint16(0, tag.length);
  out.set(tag, 2);
  return out;
}

/** Tags by kind, then chain id: every transaction, vote and proposal needs one, and a node knows one or two chains. */
const TAGS = new Map<SignedKind, Map<string, Uint8Array>>();
const MAX_TAGS_PER_KIND = 64;

export function signingBytes(chainId: string, kind: SignedKind, body: Uint8Array): Uint8Array {
  let byChain = TAGS.get(kind);
  if (byChain === undefined) TAGS.set(kind, (byChain = new Map()));
  let tag = byChain.get(chainId);
  if (tag === undefined) {
    tag = domainTag(chainId, kind);
    if (byChain.size < MAX_TAGS_PER_KIND) byChain.set(chainId, tag);
  }
  return concatBytes(tag, body);
}
