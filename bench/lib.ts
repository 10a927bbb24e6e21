// Shared by the benchmarks (bench.ts, defi.ts): argument readers and the --smoke overrides,
// percentiles and rounding for the result files, and pre-signing on worker threads (signing is
// never what a benchmark measures).
import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';
import { backendAvailable } from '@qnexus/crypto';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** The p-th percentile of `xs` sorted ascending (NaN for none). */
export const pct = (xs: number[], p: number) => (xs.length ? xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN);
export const median = (xs: number[]) => pct([...xs].sort((a, b) => a - b), 50);
export const r1 = (x: number) => (Number.isFinite(x) ? Number(x.toFixed(1)) : null);
export const r2 = (x: number) => (Number.isFinite(x) ? Number(x.toFixed(2)) : null);
export const r3 = (x: number) => (Number.isFinite(x) ? Number(x.toFixed(3)) : null);
export const rnd = (x: number) => (Number.isFinite(x) ? Math.round(x) : null);

/** Number and boolean readers of parsed string options (`--k 12`, `--k false|0|no|off`). */
export function argReaders<A extends Record<string, unknown>>(args: A) {
  return {
    num(k: keyof A & string): number {
      const v = Number(args[k]);
      if (!Number.isFinite(v)) throw new Error(`--${k} must be a number, got ${JSON.stringify(args[k])}`);
      return v;
    },
    bool: (k: keyof A & string): boolean => !/^(false|0|no|off)$/i.test(String(args[k])),
  };
}

/** --smoke: take `smoke`'s value for every option the command line did not give. */
export function applySmoke<A extends Record<string, unknown>>(args: A, smoke: Partial<Record<keyof A, string>>): void {
  const given = new Set(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')[0]!));
  for (const [k, v] of Object.entries(smoke)) if (!given.has(k)) (args as Record<string, unknown>)[k] = v;
}

/** Pre-signing is not what is measured: the fastest backend here (nodes accept both). */
export const SIGN_BACKEND = backendAvailable('pqclean') ? 'pqclean' : 'noble';

export interface SignJob {
  chainId: string;
  scheme: string;
  backend: string;
  publicKey: Uint8Array;
  secretKey: Uint8Array;
  /** Any module's message (kind + bytes) with its nonce; fee 1. */
  txs: { kind: number; msg: Uint8Array; nonce: number }[];
}

export interface Signed {
  raw: Uint8Array;
  hash: string;
}

export interface PresignOptions {
  /**
   * Sign keyless (the sender named by address, no public key: 1,292 fewer bytes per ML-DSA-44
   * transaction) every transaction but an account's first (nonce 0), which carries the key
   * and registers it. Nodes admit a keyless transaction only once the sender's key is in their
   * head state, i.e. once its nonce-0 transaction is final: send those first and wait. Default false.
   */
  keylessAfterFirst?: boolean;
}

/** Sign every job's messages with the SDK's signTx on one worker thread per core; results in job order. */
export async function presign(jobs: SignJob[], opts: PresignOptions = {}): Promise<Signed[][]> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import('@qnexus/sdk').then(({ signTx }) => {
      parentPort.postMessage(workerData.jobs.map((j) => j.txs.map((t) => {
        const keyless = workerData.keylessAfterFirst && t.nonce > 0;
        const s = signTx({ key: { publicKey: j.publicKey, secretKey: j.secretKey, scheme: j.scheme, backend: j.backend }, chainId: j.chainId, fee: 1n, nonce: BigInt(t.nonce), keyless }, { kind: t.kind, msg: t.msg });
        return { raw: s.raw, hash: s.hash };
      })));
    });`;
  const nWorkers = Math.max(1, cpus().length);
  const parts: SignJob[][] = Array.from({ length: nWorkers }, () => []);
  jobs.forEach((j, i) => parts[i % nWorkers]!.push(j));
  const results = await Promise.all(
    parts.map(
      (js) =>
        new Promise<Signed[][]>((resolve, reject) => {
          if (js.length === 0) return resolve([]);
          const w = new Worker(code, { eval: true, workerData: { jobs: js, keylessAfterFirst: opts.keylessAfterFirst === true } });
          w.once('message', (m: Signed[][]) => {
            resolve(m);
            void w.terminate();
          });
          w.once('error', reject);
        }),
    ),
  );
  const out: Signed[][] = new Array(jobs.length);
  results.forEach((r, wi) => r.forEach((txs, k) => (out[wi + k * nWorkers] = txs)));
  return out;
}
