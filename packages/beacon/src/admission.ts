import { concatBytes, formatAddress, sha256, toHex } from '@qnexus/crypto';
import { checkCertificate, verifyXferProof } from '@qnexus/state';
import {
  QnexusError,
  blockHash,
  decodeBeaconRequest,
  encodePeerBinding,
  epochOf,
  peerBindingSigningBytes,
  peerBindingValidator,
  type BeaconRequest,
  type BlockHeader,
  type Certificate,
  type AnyErrorCode, type ErrorCode,
  type SignedPeerBinding,
  type VoteEvidence,
  type XferRecord,
} from '@qnexus/types';
import type { Registry } from './registry.js';

export type Admission =
  /**
   * `fault`: the request proves its sender misbehaved (undecodable, a binding that is not its
   * own or does not verify, a report that does not prove what it claims), so the peer is
   * penalised. Not a fault: what an honest node can send while its view differs from ours
   * for a moment (membership at an epoch boundary, an epoch we have not frozen yet).
   */
  | { ok: false; code: AnyErrorCode; message: string; fault: boolean }
  | { ok: true; type: 'hello'; validator: string; shard: number }
  | {
      ok: true;
      type: 'report';
      validator: string;
      shard: number;
      height: number;
      records: XferRecord[];
      /** The verified certificate's round and signers (participation). */
      round: number;
      signers: string[];
      /** The certified block's hash and slot (the shard's head as the beacon knows it). */
      blockHash: Uint8Array;
      slot: number;
    }
  /** Evidence is self-authenticating: decoded here, verified by the registry. */
  | { ok: true; type: 'evidence'; evidence: VoteEvidence };

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
    readonly fault = true,
  ) {
    super(message);
  }
}

/** Certificate votes whose signatures verified, remembered (bounded) across reports. */
const MAX_CACHED_VOTES = 16_384;

/**
 * Who may speak on the beacon's 2PC stream, and whether what they say is
 * proven: a committee member (hello: of a frozen epoch from the previous to
 * the next ones, see helloEpochs; report: of the report's shard in the current epoch or the
 * certificate's epoch), through the peer it bound itself to, about a block its
 * shard finalized (certificate, checked against the frozen committee of
 * epochOf(cert.round); EPOCH_UNKNOWN if not frozen), with records in that
 * block's state (Merkle proofs). Reports may carry no items (a proposer's
 * certificate, for participation). Signature checks are cached by what was
 * verified, signature bytes included (bindings by their bytes, certificate
 * votes by signed message and signature), so the members of a committee
 * reporting the same block cost one verification per vote, and a certificate
 * that names a cached block with other (forged) votes is verified again.
 */
export class Admitter {
  private readonly bindings = new BoundedSet(4096);
  private readonly votes = new BoundedSet(MAX_CACHED_VOTES);
  /** Signature verifications performed (for metrics and tests). */
  verifications = 0;

  constructor(private readonly registry: Registry) {}

  admit(raw: Uint8Array, remotePeer: string, epoch: number): Admission {
    let req: BeaconRequest;
    try {
      req = decodeBeaconRequest(raw);
    } catch (e) {
      return { ok: false, code: 'MALFORMED', message: e instanceof Error ? e.message : String(e), fault: true };
    }
    if (req.type === 'evidence') return { ok: true, type: 'evidence', evidence: req.evidence };
    try {
      const binding = req.type === 'hello' ? req.binding : req.report.binding;
      const epochs = req.type === 'hello' ? this.helloEpochs(epoch) : [epoch, epochOf(this.registry.genesis, req.report.certificate.round)];
      const { validator, shard } = this.checkBinding(binding, remotePeer, epochs);
      this.registry.bind(validator, shard, remotePeer, binding);
      if (req.type === 'hello') return { ok: true, type: 'hello', validator, shard };
      const { header, certificate, items } = req.report;
      if (header.chainId !== binding.binding.chainId || header.shard !== shard) {
        throw new Refused('XS_UNAUTHORIZED', `a member of shard ${shard} reported a block of ${header.chainId}/shard ${header.shard}`);
      }
      const hash = this.checkCertificate(certificate, header);
      const records: XferRecord[] = [];
      for (const [i, item] of items.entries()) {
        const rec = verifyXferProof(header.stateRoot, item);
        if (!rec) throw new Refused('XS_BAD_PROOF', `item ${i}: the record is not in the state of block ${header.height}`);
        const own = rec.role === 'source' ? rec.info.srcShard : rec.info.dstShard;
        if (own !== header.shard) throw new Refused('XS_BAD_PROOF', `item ${i}: a ${rec.role} record of shard ${own} in a block of shard ${header.shard}`);
        records.push(rec);
      }
      return {
        ok: true,
        type: 'report',
        validator,
        shard,
        height: header.height,
        records,
        round: certificate.round,
        signers: certificate.votes.map((v) => formatAddress(v.validator)),
        blockHash: hash,
        slot: header.slot,
      };
    } catch (e) {
      if (e instanceof Refused) return { ok: false, code: e.code, message: e.message, fault: e.fault };
      if (e instanceof QnexusError) return { ok: false, code: e.code, message: e.message, fault: true };
      throw e;
    }
  }

  /**
   * Whose hello we admit: a member of any committee we have actually frozen around the
   * wall-clock epoch — the previous one (a validator whose clock is just behind ours), the
   * current one and those frozen ahead (one restarted at an epoch boundary already speaks for
   * the next). At most 4 epochs, so the check stays cheap.
   */
  private helloEpochs(epoch: number): number[] {
    const out: number[] = [];
    const last = Math.min(epoch + 2, Math.max(epoch + 1, this.registry.frozenNext - 1));
    for (let e = Math.max(0, epoch - 1); e <= last; e++) out.push(e);
    return out;
  }

  private checkBinding(sb: SignedPeerBinding, remotePeer: string, epochs: readonly number[]): { validator: string; shard: number } {
    const b = sb.binding;
    const g = this.registry.genesis;
    const no = (m: string): never => {
      throw new Refused('XS_UNAUTHORIZED', m);
    };
    if (b.chainId !== g.chainId) no(`binding is for chain ${JSON.stringify(b.chainId)}, this is ${JSON.stringify(g.chainId)}`);
    if (b.peerId !== remotePeer) no(`binding names peer ${b.peerId}, the stream comes from ${remotePeer}`);
    const validator = peerBindingValidator(b);
    if (!epochs.some((e) => this.registry.membership(e, validator)?.shard === b.shard)) {
      // Checked before the signature (cheap); an honest member whose clock is across an epoch
      // boundary from ours can be refused here, so it is not held against the peer.
      throw new Refused('XS_UNAUTHORIZED', `${validator} is not a member of shard ${b.shard}'s committee in epoch ${[...new Set(epochs)].join(' or ')}`, false);
    }
    const key = toHex(sha256(concatBytes(encodePeerBinding(b), sb.signature)));
    if (!this.bindings.has(key)) {
      this.verifications++;
      if (!this.registry.backend.verify(b.publicKey, peerBindingSigningBytes(b), sb.signature)) no(`bad binding signature from ${validator}`);
      this.bindings.add(key);
    }
    return { validator, shard: b.shard };
  }

  /**
   * The shard nodes' certificate check (`checkCertificate`), against the committee of the
   * certifying round's epoch. Everything but the signatures first (members, duplicates,
   * quorum): a certificate that fails anyway costs no verification. Then each vote's
   * signature, unless that exact vote (message and signature bytes) verified before.
   * Returns the block's hash.
   */
  private checkCertificate(cert: Certificate, header: BlockHeader): Uint8Array {
    const hash = blockHash(header);
    const epoch = epochOf(this.registry.genesis, cert.round);
    const fe = this.registry.epoch(epoch);
    // Not the sender's fault: its shard finalized in an epoch we have not frozen yet (our clock or store lags).
    if (!fe) throw new Refused('EPOCH_UNKNOWN', `certificate of round ${cert.round}: the committees of epoch ${epoch} are not frozen yet`, false);
    const s = fe.shards[header.shard];
    if (!s) throw new Refused('XS_BAD_PROOF', `certificate: shard ${header.shard} does not exist`);
    const member = (addr: string) => s.members.get(addr);
    try {
      checkCertificate(cert, header, member, s.committee.totalStake, () => true, hash);
      checkCertificate(
        cert,
        header,
        member,
        s.committee.totalStake,
        (pk, msg, sig) => {
          const k = toHex(sha256(concatBytes(msg, sig)));
          if (this.votes.has(k)) return true;
          this.verifications++;
          if (!this.registry.backend.verify(pk, msg, sig)) return false;
          // The message names the validator, whose address binds its key: (message, signature) is the whole fact.
          this.votes.add(k);
          return true;
        },
        hash,
      );
    } catch (e) {
      if (e instanceof QnexusError) throw new Refused('XS_BAD_PROOF', e.message);
      throw e;
    }
    return hash;
  }
}
