// Worker thread: verifies batches of ML-DSA signatures for the node's main thread.
import { parentPort, workerData } from 'node:worker_threads';
import { getBackend, type BackendName, type SchemeName } from '@qnexus/crypto';

/** What VerifyPool gives each worker: the chain's scheme and the process's backend. */
export interface VerifyWorkerData {
  scheme: SchemeName;
  backend: BackendName;
}

/**
 * One batch: every item's public key, message and signature packed one after
 * another in `data` (its buffer is transferred, not copied), with their
 * lengths in `lengths` (three per item, in that order).
 */
export interface VerifyRequest {
  id: number;
  data: Uint8Array;
  lengths: number[];
}

const data = workerData as VerifyWorkerData;
// The main thread checked that the backend loads before starting the pool; if it still fails
// here, the worker's 'error' fails the pending requests (VerifyPool.failAll).
const backend = getBackend(data.scheme, data.backend);
parentPort!.on('message', (req: VerifyRequest) => {
  const { data: d, lengths } = req;
  const ok: boolean[] = [];
  let o = 0;
  for (let i = 0; i + 2 < lengths.length; i += 3) {
    const publicKey = d.subarray(o, (o += lengths[i]!));
    const message = d.subarray(o, (o += lengths[i + 1]!));
    const signature = d.subarray(o, (o += lengths[i + 2]!));
    ok.push(backend.verify(publicKey, message, signature));
  }
  parentPort!.postMessage({ id: req.id, ok });
});
