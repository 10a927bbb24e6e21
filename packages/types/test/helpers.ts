// Shared fixtures for the @qnexus/types tests.
import assert from 'node:assert/strict';
import { addressFromPublicKey, generateKeyPair, getBackend, sha256, utf8, type KeyPair } from '@qnexus/crypto';
import { QnexusError, Writer, txSigningBytes, type ErrorCode, type KeyedTxBody, type KeylessTxBody, type SignedTx, type TxBody, type TxMsg } from '@qnexus/types';

export const CHAIN = 'qn-test';

const keyCache = new Map<number, KeyPair>();
/** Deterministic ML-DSA-44 key pair number n. */
export function key(n: number): KeyPair {
  let k = keyCache.get(n);
  if (!k) {
    k = generateKeyPair('ml-dsa-44', sha256(utf8(`types-test-key-${n}`)));
    keyCache.set(n, k);
  }
  return k;
}

export function addr(n: number): Uint8Array {
  return addressFromPublicKey(key(n).publicKey);
}

export function hash(label: string): Uint8Array {
  return sha256(utf8(label));
}

/** Kind of the default message: module 1 (bank), type 1 (transfer). The envelope never reads it. */
export const MSG_KIND = 0x0101;

/** An opaque message of `kind`: transfer-shaped bytes (recipient, u64 amount), which only a module would decode. */
export function opaqueMsg(to: Uint8Array = addr(2), amount = 12345n, kind = MSG_KIND): TxMsg {
  return { kind, msg: new Writer().fixed(to, 20).u64(amount).finish() };
}

export function txBody(over: Partial<KeyedTxBody> = {}): KeyedTxBody {
  return {
    chainId: CHAIN,
    nonce: 3n,
    fee: 10n,
    publicKey: key(1).publicKey,
    payload: opaqueMsg(),
    ...over,
  };
}

/** txBody's fields with the signer named by address (key 1's unless `over.address`): the keyless form. */
export function keylessBody(over: Partial<KeylessTxBody> = {}): KeylessTxBody {
  return {
    chainId: CHAIN,
    nonce: 3n,
    fee: 10n,
    address: addr(1),
    payload: opaqueMsg(),
    ...over,
  };
}

export function signTx(body: TxBody, signer: KeyPair = key(1)): SignedTx {
  return { body, signature: getBackend('ml-dsa-44').sign(signer.secretKey, txSigningBytes(body)) };
}

/** Assert that fn throws a QnexusError with the given code. */
export function throwsCode(fn: () => unknown, code: ErrorCode, msg?: string): void {
  assert.throws(
    fn,
    (e: unknown) => {
      assert.ok(e instanceof QnexusError, `${msg ?? ''} expected QnexusError, got ${String(e)}`);
      assert.equal(e.code, code, `${msg ?? ''}: ${e.message}`);
      return true;
    },
    msg,
  );
}

export function withTrailing(b: Uint8Array, extra = [0]): Uint8Array {
  return new Uint8Array([...b, ...extra]);
}
