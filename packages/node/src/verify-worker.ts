// Worker thread: verifies batches of ML-DSA signatures for the node's main thread.
import { parentPort, workerData } from 'node:worker_threads';
import { getBackend, type SchemeName } from '@qnexus/crypto';

export interface VerifyRequest {
  id: number;
  items: { publicKey: Uint8Array; message: Uint8Array; signature: Uint8Array }[];
}

const backend = getBackend((workerData as { scheme: SchemeName }).scheme);
parentPort!.on('message', (req: VerifyRequest) => {
  const ok = req.items.map((it) => backend.verify(it.publicKey, it.message, it.signature));
  parentPort!.postMessage({ id: req.id, ok });
});
