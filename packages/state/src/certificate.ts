import { bytesEqual, formatAddress } from '@qnexus/crypto';
import { isQuorum } from '@qnexus/consensus';
import { QnexusError, blockHash, certificateVoteBody, voteSigningBytes, type BlockHeader, type Certificate, type CertificateVote } from '@qnexus/types';

/** A committee member as a certificate check needs it. */
export interface CertifyingMember {
  publicKey: Uint8Array;
  stake: bigint;
}

/** Bounds a certificate check can apply when the caller knows them. */
export interface CertificateLimits {
  /** Members in the committee: a certificate with more votes is refused before any of them is looked at. */
  committeeSize?: number;
  /** Latest round a certificate may carry (e.g. the current slot): a later one is refused. */
  maxRound?: number;
}

/** A certificate vote whose signer is a member, as `checkCertificateStructure` found it. */
export interface CertificateSigner {
  address: string;
  member: CertifyingMember;
  vote: CertificateVote;
}

/**
 * The checks of a finality certificate that need neither the committee nor a
 * signature: it names this block (height, hash), its round is not before the
 * block's slot (nor after `limits.maxRound`), it carries no more votes than
 * `limits.committeeSize`, and no signer appears twice. Throws QnexusError
 * BAD_CERTIFICATE.
 */
export function checkCertificateShape(
  cert: Certificate,
  header: BlockHeader,
  /** `blockHash(header)` when the caller has it already (computed from this very header). */
  headerHash: Uint8Array = blockHash(header),
  limits: CertificateLimits = {},
): void {
  const fail = (m: string): never => {
    throw new QnexusError('BAD_CERTIFICATE', m);
  };
  if (cert.height !== header.height) fail(`certificate is for height ${cert.height}, block is ${header.height}`);
  if (!bytesEqual(cert.blockHash, headerHash)) fail('certificate is for a different block');
  if (cert.round < header.slot) fail('certificate round precedes the block slot');
  if (limits.maxRound !== undefined && cert.round > limits.maxRound) fail(`certificate round ${cert.round} is beyond the current slot ${limits.maxRound}`);
  if (limits.committeeSize !== undefined && cert.votes.length > limits.committeeSize) {
    fail(`certificate carries ${cert.votes.length} votes; the committee has ${limits.committeeSize} members`);
  }
  const seen = new Set<string>();
  for (const v of cert.votes) {
    const address = formatAddress(v.validator);
    if (seen.has(address)) fail(`duplicate certificate vote from ${address}`);
    seen.add(address);
  }
}

/**
 * Every check of a finality certificate that needs no signature work, in the
 * order of their cost: `checkCertificateShape`, then every signer is a member
 * and the signers' stake is more than 2/3 of `totalStake`. Returns the
 * signers, whose signatures are all that is left to check. Throws QnexusError
 * BAD_CERTIFICATE; a certificate refused here costs no signature verification
 * (a thousand copies of one vote are refused at the second).
 */
export function checkCertificateStructure(
  cert: Certificate,
  header: BlockHeader,
  member: (address: string) => CertifyingMember | undefined,
  totalStake: bigint,
  /** `blockHash(header)` when the caller has it already (computed from this very header). */
  headerHash: Uint8Array = blockHash(header),
  limits: CertificateLimits = {},
): CertificateSigner[] {
  checkCertificateShape(cert, header, headerHash, limits);
  let stake = 0n;
  const signers: CertificateSigner[] = [];
  for (const vote of cert.votes) {
    const address = formatAddress(vote.validator);
    const m = member(address);
    if (!m) throw new QnexusError('BAD_CERTIFICATE', `certificate vote from non-member ${address}`);
    signers.push({ address, member: m, vote });
    stake += m.stake;
  }
  if (!isQuorum(stake, totalStake)) throw new QnexusError('BAD_CERTIFICATE', `certificate carries ${stake} of ${totalStake} stake; more than 2/3 is required`);
  return signers;
}

/**
 * Check a finality certificate for a header: > 2/3 of `totalStake` from
 * distinct members, each signature valid over the certificate vote body.
 * Shared by shard nodes (sync imports) and the beacon (2PC reports); the
 * caller supplies the committee lookup and the signature check (cached or not).
 * Every structural check (`checkCertificateStructure`) runs before the first
 * signature is verified. Throws QnexusError BAD_CERTIFICATE.
 */
export function checkCertificate(
  cert: Certificate,
  header: BlockHeader,
  member: (address: string) => CertifyingMember | undefined,
  totalStake: bigint,
  verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean,
  /** `blockHash(header)` when the caller has it already (computed from this very header). */
  headerHash: Uint8Array = blockHash(header),
  limits: CertificateLimits = {},
): void {
  for (const s of checkCertificateStructure(cert, header, member, totalStake, headerHash, limits)) {
    const body = certificateVoteBody(cert, header.chainId, header.shard, s.vote.validator);
    if (!verify(s.member.publicKey, voteSigningBytes(body), s.vote.signature)) throw new QnexusError('BAD_CERTIFICATE', `bad signature from ${s.address}`);
  }
}
