// Signed 2PC requests as shard validators build them: peer bindings, certified headers, proven records.
import { addressFromPublicKey, getBackend, toHex, type KeyPair } from '@qnexus/crypto';
import { WorldState, xferRecordKey } from '@qnexus/state';
import {
  blockHash,
  certificateVoteBody,
  encodeBeaconRequest,
  encodeXferRecord,
  peerBindingSigningBytes,
  voteSigningBytes,
  type BlockHeader,
  type Certificate,
  type Genesis,
  type SignedPeerBinding,
  type XferRecord,
} from '@qnexus/types';

const backend = getBackend('ml-dsa-44');

export function binding(g: Genesis, k: KeyPair, shard: number, peerId: string): SignedPeerBinding {
  const b = { chainId: g.chainId, shard, publicKey: k.publicKey, peerId };
  return { binding: b, signature: backend.sign(k.secretKey, peerBindingSigningBytes(b)) };
}

export function hello(g: Genesis, k: KeyPair, shard: number, peerId: string): Uint8Array {
  return encodeBeaconRequest({ type: 'hello', binding: binding(g, k, shard, peerId) });
}

export interface CertifiedBlock {
  header: BlockHeader;
  certificate: Certificate;
  state: WorldState;
}

/** A block of `shard` whose state holds `records`, certified by `signers`. */
export function certifiedBlock(g: Genesis, shard: number, height: number, slot: number, records: XferRecord[], signers: KeyPair[]): CertifiedBlock {
  const state = WorldState.fromEntries(records.map((r) => [toHex(xferRecordKey(r.info.id)), encodeXferRecord(r)]));
  const header: BlockHeader = {
    chainId: g.chainId,
    shard,
    height,
    slot,
    parentHash: new Uint8Array(32),
    stateRoot: state.root(),
    txRoot: new Uint8Array(32),
    proposer: addressFromPublicKey(signers[0]!.publicKey),
    txCount: 0,
  };
  const cert: Certificate = { height, round: slot, blockHash: blockHash(header), votes: [] };
  for (const k of signers) {
    const validator = addressFromPublicKey(k.publicKey);
    cert.votes.push({ validator, signature: backend.sign(k.secretKey, voteSigningBytes(certificateVoteBody(cert, g.chainId, shard, validator))) });
  }
  return { header, certificate: cert, state };
}

export function report(g: Genesis, reporter: KeyPair, peerId: string, block: CertifiedBlock, idHexes: string[]): Uint8Array {
  return encodeBeaconRequest({
    type: 'report',
    report: { binding: binding(g, reporter, block.header.shard, peerId), header: block.header, certificate: block.certificate, items: block.state.proveXfers(idHexes) },
  });
}
