import { bytesEqual, concatBytes, formatAddress, sha256, toHex } from '@qnexus/crypto';
import { isQuorum } from '@qnexus/consensus';
import { verifyXferProof } from '@qnexus/state';
import {
  QnexusError,
  blockHash,
  certificateVoteBody,
  decodeBeaconRequest,
  encodePeerBinding,
  epochOf,
  peerBindingSigningBytes,
  peerBindingValidator,
  voteSigningBytes,
  type BeaconRequest,
  type BlockHeader,
  type Certificate,
  type ErrorCode,
  type SignedPeerBinding,
  type XferRecord,
} from '@qnexus/types';
import type { Registry } from './registry.js';

export type Admission =
  | { ok: false; code: ErrorCode; message: string }
  | { ok: true; type: 'hello'; validator: string; shard: number }
  | { ok: true; type: 'report'; validator: string; shard: number; height: number; records: XferRecord[] };

/** Insertion-ordered set that forgets its oldest members beyond `max`. */
class BoundedSet {
  private readonly items = new Set<string>();
  constructor(private readonly max: number) {}
  has(k: string): boolean {
    return this.items.has(k);
  }
  add(k: string): void {
    if (this.items.has(k)) return;
    if (this.items.size >= this.max) this.items.delete(this.items.values().next().value!);
    this.items.add(k);
  }
}

class Refused extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Who may speak on the beacon's 2PC stream, and whether what they say is
 * proven: a current committee member, through the peer it bound itself to,
 * about a block its shard finalized (certificate), with records in that
 * block's state (Merkle proofs). Signature checks are cached (bindings by
 * their bytes, certificates by block hash) so the members of a committee
 * reporting the same block cost one certificate verification.
 */
export class Admitter {
  private readonly bindings = new BoundedSet(4096);
  private readonly blocks = new BoundedSet(1024);
  /** Signature verifications performed (for metrics and tests). */
  verifications = 0;

  constructor(private readonly registry: Registry) {}

  admit(raw: Uint8Array, remotePeer: string, epoch: number): Admission {
    let req: BeaconRequest;
    try {
      req = decodeBeaconRequest(raw);
    } catch (e) {
      return { ok: false, code: 'MALFORMED', message: e instanceof Error ? e.message : String(e) };
    }
    try {
      const binding = req.type === 'hello' ? req.binding : req.report.binding;
      const { validator, shard } = this.checkBinding(binding, remotePeer, epoch);
      this.registry.bind(validator, shard, remotePeer, binding);
      if (req.type === 'hello') return { ok: true, type: 'hello', validator, shard };
      const { header, certificate, items } = req.report;
      if (header.chainId !== binding.binding.chainId || header.shard !== shard) {
        throw new Refused('XS_UNAUTHORIZED', `a member of shard ${shard} reported a block of ${header.chainId}/shard ${header.shard}`);
      }
      this.checkCertificate(certificate, header);
      const records: XferRecord[] = [];
      for (const [i, item] of items.entries()) {
        const rec = verifyXferProof(header.stateRoot, item);
        if (!rec) throw new Refused('XS_BAD_PROOF', `item ${i}: the record is not in the state of block ${header.height}`);
        const own = rec.role === 'source' ? rec.info.srcShard : rec.info.dstShard;
        if (own !== header.shard) throw new Refused('XS_BAD_PROOF', `item ${i}: a ${rec.role} record of shard ${own} in a block of shard ${header.shard}`);
        records.push(rec);
      }
      return { ok: true, type: 'report', validator, shard, height: header.height, records };
    } catch (e) {
      if (e instanceof Refused) return { ok: false, code: e.code, message: e.message };
      if (e instanceof QnexusError) return { ok: false, code: e.code, message: e.message };
      throw e;
    }
  }

  private checkBinding(sb: SignedPeerBinding, remotePeer: string, epoch: number): { validator: string; shard: number } {
    const b = sb.binding;
    const g = this.registry.genesis;
    const no = (m: string): never => {
      throw new Refused('XS_UNAUTHORIZED', m);
    };
    if (b.chainId !== g.chainId) no(`binding is for chain ${JSON.stringify(b.chainId)}, this is ${JSON.stringify(g.chainId)}`);
    if (b.peerId !== remotePeer) no(`binding names peer ${b.peerId}, the stream comes from ${remotePeer}`);
    const validator = peerBindingValidator(b);
    const m = this.registry.membership(epoch, validator);
    if (!m || m.shard !== b.shard) no(`${validator} is not a member of shard ${b.shard}'s committee in epoch ${epoch}`);
    const key = toHex(sha256(concatBytes(encodePeerBinding(b), sb.signature)));
    if (!this.bindings.has(key)) {
      this.verifications++;
      if (!this.registry.backend.verify(b.publicKey, peerBindingSigningBytes(b), sb.signature)) no(`bad binding signature from ${validator}`);
      this.bindings.add(key);
    }
    return { validator, shard: b.shard };
  }

  /** As `Chain.verifyCertificate` on the shard nodes, against the committee of the certifying round's epoch. */
  private checkCertificate(cert: Certificate, header: BlockHeader): void {
    const bad = (m: string): never => {
      throw new Refused('XS_BAD_PROOF', `certificate: ${m}`);
    };
    const hash = blockHash(header);
    if (cert.height !== header.height) bad(`it is for height ${cert.height}, the block is ${header.height}`);
    if (!bytesEqual(cert.blockHash, hash)) bad('it is for a different block');
    const hashHex = toHex(hash);
    if (this.blocks.has(hashHex)) return;
    if (cert.round < header.slot) bad('its round precedes the block slot');
    const epoch = epochOf(this.registry.genesis, cert.round);
    const committee = this.registry.committees(epoch)[header.shard];
    if (!committee) bad(`shard ${header.shard} does not exist`);
    let stake = 0n;
    const seen = new Set<string>();
    for (const v of cert.votes) {
      const addr = formatAddress(v.validator);
      const m = this.registry.membership(epoch, addr);
      if (!m || m.shard !== header.shard) bad(`vote from non-member ${addr}`);
      if (seen.has(addr)) bad(`duplicate vote from ${addr}`);
      seen.add(addr);
      const pk = this.registry.validator(addr)!.publicKey;
      this.verifications++;
      const body = certificateVoteBody(cert, header.chainId, header.shard, v.validator);
      if (!this.registry.backend.verify(pk, voteSigningBytes(body), v.signature)) bad(`bad signature from ${addr}`);
      stake += m!.stake;
    }
    if (!isQuorum(stake, committee!.totalStake)) bad(`it carries ${stake} of ${committee!.totalStake} stake; more than 2/3 is required`);
    this.blocks.add(hashHex);
  }
}
