// Worker thread: verifies batches of ML-DSA signatures for the node's main thread.
import { parentPort, workerData } from 'node:worker_threads';
import { getBackend, type BackendName, type SchemeName } from '@qnexus/crypto';

/** What VerifyPool gives each worker: the chain's scheme and the process's backend. */
export interface VerifyWorkerData {
  scheme: SchemeName;
  backend: BackendName;
}

export interface VerifyRequest {
  id: number;
  items: { publicKey: Uint8Array; message: Uint8Array; signature: Uint8Array }[];
}

const data = workerData as VerifyWorkerData;
// The main thread checked that the backend loads before starting the pool; if it still fails
// here, the worker's 'error' fails the pending requests (VerifyPool.failAll).
const backend = getBackend(data.scheme, data.backend);
parentPort!.on('message', (req: VerifyRequest) => {
  const ok = req.items.map((it) => backend.verify(it.publicKey, it.message, it.signature));
  parentPort!.postMessage({ id: req.id, ok });
});
