// Worker thread: verifies batches of ML-DSA signatures for the node's main thread, and makes the
// validator's own consensus signatures (votes, proposals) when it was given the signing key.
import { parentPort, workerData } from 'node:worker_threads';
import { getBackend, type BackendName, type SchemeName } from '@qnexus/crypto';

/** What VerifyPool gives each worker: the chain's scheme and the process's backend. */
export interface VerifyWorkerData {
  scheme: SchemeName;
  backend: BackendName;
  /**
   * The validator's ML-DSA secret key, given once when the worker starts (never per job), so
   * sign jobs carry only the message. Absent on full nodes: a sign job then fails.
   */
  secretKey?: Uint8Array;
}

/**
 * One batch: every item's public key, message and signature packed one after
 * another in `data` (its buffer is transferred, not copied), with their
 * lengths in `lengths` (three per item, in that order).
 */
export interface VerifyRequest {
  kind: 'verify';
  id: number;
  data: Uint8Array;
  lengths: number[];
}

/** Sign `message` with the worker's secret key. */
export interface SignRequest {
  kind: 'sign';
  id: number;
  message: Uint8Array;
}

export type WorkerRequest = VerifyRequest | SignRequest;

/** A verify batch's verdicts, a signature, or why a sign job failed. */
export type WorkerResponse = { id: number; ok: boolean[] } | { id: number; signature: Uint8Array } | { id: number; error: string };

const data = workerData as VerifyWorkerData;
// The main thread checked that the backend loads before starting the pool; if it still fails
// here, the worker's 'error' fails the pending requests (VerifyPool.failAll).
const backend = getBackend(data.scheme, data.backend);
const post = (m: WorkerResponse): void => parentPort!.postMessage(m);
parentPort!.on('message', (req: WorkerRequest) => {
  if (req.kind === 'sign') {
    if (!data.secretKey) return post({ id: req.id, error: 'this verify pool has no signing key' });
    let signature: Uint8Array;
    try {
      signature = backend.sign(data.secretKey, req.message);
    } catch (e) {
      return post({ id: req.id, error: (e as Error).message });
    }
    // Copied, not transferred: a backend may return a view of a pooled buffer (2.4 KB is cheap to copy).
    return post({ id: req.id, signature });
  }
  const { data: d, lengths } = req;
  const ok: boolean[] = [];
  let o = 0;
  for (let i = 0; i + 2 < lengths.length; i += 3) {
    const publicKey = d.subarray(o, (o += lengths[i]!));
    const message = d.subarray(o, (o += lengths[i + 1]!));
    const signature = d.subarray(o, (o += lengths[i + 2]!));
    ok.push(backend.verify(publicKey, message, signature));
  }
  post({ id: req.id, ok });
});
