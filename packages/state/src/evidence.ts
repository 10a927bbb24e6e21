import { addressFromPublicKey, bytesEqual } from '@qnexus/crypto';
import { QnexusError, voteSigningBytes, type VoteBody, type VoteEvidence } from '@qnexus/types';

/**
 * Check that `e` proves equivocation by the holder of `publicKey`: two votes
 * on chain `chainId` for the same shard, height, round and step by the same
 * validator (whose address is that of `publicKey`), for different blocks
 * (a nil vote and a block vote differ), both signatures valid. Pure: the
 * caller supplies the signature check and decides whether the validator was
 * a committee member of that shard in the round's epoch.
 * Throws QnexusError EVIDENCE_INVALID.
 */
export function verifyVoteEvidence(
  e: VoteEvidence,
  chainId: string,
  publicKey: Uint8Array,
  verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean,
): void {
  const fail = (m: string): never => {
    throw new QnexusError('EVIDENCE_INVALID', m);
  };
  const a: VoteBody = e.first.body;
  const b: VoteBody = e.second.body;
  if (a.chainId !== chainId || b.chainId !== chainId) fail(`evidence votes must be for chain ${JSON.stringify(chainId)}`);
  if (a.shard !== b.shard || a.height !== b.height || a.round !== b.round || a.step !== b.step) {
    fail('evidence votes must be for the same shard, height, round and step');
  }
  if (!bytesEqual(a.validator, b.validator)) fail('evidence votes are by different validators');
  if (!bytesEqual(a.validator, addressFromPublicKey(publicKey))) fail('the public key is not the voting validator');
  const same = a.blockHash === null || b.blockHash === null ? a.blockHash === b.blockHash : bytesEqual(a.blockHash, b.blockHash);
  if (same) fail('evidence votes are for the same block: no equivocation');
  if (!verify(publicKey, voteSigningBytes(a), e.first.signature)) fail('bad signature on the first vote');
  if (!verify(publicKey, voteSigningBytes(b), e.second.signature)) fail('bad signature on the second vote');
}
