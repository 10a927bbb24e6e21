import { ADDRESS_BYTES, sha256, utf8 } from '@qnexus/crypto';
import { Writer } from '@qnexus/types';

/**
 * Ids of the 2PC records the state machine and the beacon create themselves
 * (no transaction to take an id from). Domain-separated per chain and kind,
 * so they never collide with a transaction id or with each other.
 */

/** Id of the `fees` record of one proposer's fees accrued in `epoch` on `shard`: SHA-256(`qnexus/<chainId>/fees` ‖ u32 shard ‖ u64 epoch ‖ address). */
export function feesRecordId(chainId: string, shard: number, epoch: number, address: Uint8Array): Uint8Array {
  const tag = utf8(`qnexus/${chainId}/fees`);
  return sha256(new Writer(tag.length + 32).fixed(tag, tag.length).u32(shard).u64(epoch).fixed(address, ADDRESS_BYTES).finish());
}

/** Id of the `attempt`-th release of a validator's funds: SHA-256(`qnexus/<chainId>/release` ‖ address ‖ u32 attempt). */
export function releaseId(chainId: string, validator: Uint8Array, attempt: number): Uint8Array {
  const tag = utf8(`qnexus/${chainId}/release`);
  return sha256(new Writer(tag.length + 24).fixed(tag, tag.length).fixed(validator, ADDRESS_BYTES).u32(attempt).finish());
}
