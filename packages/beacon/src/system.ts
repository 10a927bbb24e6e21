import { getBackend, type KeyPair, type SchemeName, type SignatureBackend } from '@qnexus/crypto';
import { encodeTx, encodeXDecision, encodeXPrepare, txSigningBytes, type TxBody, type XferInfo } from '@qnexus/types';
import type { SystemTxSigner } from './coordinator.js';

/**
 * Signs the beacon's system entries with the genesis beacon key: nonce and fee
 * 0, the beacon's public key, a signature over the `qnexus/<chainId>/beacon`
 * domain (see `txSigningBytes`), made with `backend` (default: noble's of `scheme`).
 */
export function beaconTxSigner(
  chainId: string,
  scheme: SchemeName,
  key: Pick<KeyPair, 'publicKey' | 'secretKey'>,
  backend: SignatureBackend = getBackend(scheme),
): SystemTxSigner {
  const sign = (payload: TxBody['payload']): Uint8Array => {
    const body: TxBody = { chainId, nonce: 0n, fee: 0n, publicKey: key.publicKey, payload };
    return encodeTx({ body, signature: backend.sign(key.secretKey, txSigningBytes(body)) });
  };
  return {
    prepare: (xfer: XferInfo) => sign(encodeXPrepare(xfer)),
    decision: (xfer: XferInfo, commit: boolean) => sign(encodeXDecision(xfer, commit)),
  };
}
