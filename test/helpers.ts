// Shared helpers for the multi-process end-to-end tests: every node is a real
// OS process on 127.0.0.1 started by the devnet launcher.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevnet, unlockKeystoreFile, type Devnet, type DevnetOptions } from '@qnexus/cli';
import { buildTransfer, type BuiltTx, type QnexusClient, type SigningKey, type StatusInfo } from '@qnexus/sdk';
import { addressFromPublicKey, formatAddress, generateKeyPair } from '@qnexus/crypto';

export interface TestAccount {
  address: string;
  key: SigningKey;
}

export interface TestNet {
  devnet: Devnet;
  accounts: TestAccount[];
  chainId: string;
  cleanup(): Promise<void>;
}

/** A random base port in a range unlikely to collide with a developer's devnet (7000+). */
function randomBasePort(): number {
  return 20_000 + Math.floor(Math.random() * 400) * 100;
}

export async function startTestNet(opts: DevnetOptions = {}): Promise<TestNet> {
  const dir = mkdtempSync(join(tmpdir(), 'qnexus-e2e-'));
  let devnet: Devnet | undefined;
  let lastErr: unknown;
  // A random port range can still be taken; try a few.
  for (let attempt = 0; attempt < 3 && !devnet; attempt++) {
    try {
      devnet = await startDevnet({ dir: join(dir, 'devnet'), basePort: randomBasePort(), logFormat: 'json', reset: true, ...opts });
    } catch (e) {
      lastErr = e;
      if (!/PORT_IN_USE/.test(String((e as { code?: string }).code ?? e))) break;
    }
  }
  if (!devnet) throw lastErr;
  const pass = readFileSync(devnet.passphraseFile, 'utf8').trim();
  const accounts: TestAccount[] = [];
  for (const a of devnet.manifest.accounts) {
    const { key } = await unlockKeystoreFile(a.keystore, pass);
    accounts.push({ address: a.address, key: { publicKey: key.publicKey, secretKey: key.secretKey, scheme: key.scheme } });
  }
  const d = devnet;
  return {
    devnet: d,
    accounts,
    chainId: d.genesis.chainId,
    cleanup: async () => {
      await d.stop();
      if (!process.env.QNEXUS_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
      else console.log(`kept ${dir}`);
    },
  };
}

export function freshAddress(seedByte: number): string {
  return formatAddress(addressFromPublicKey(generateKeyPair('ml-dsa-44', new Uint8Array(32).fill(seedByte)).publicKey));
}

export function transfer(net: TestNet, from: TestAccount, to: string, amount: bigint, nonce: bigint, fee = 1n): BuiltTx {
  return buildTransfer({ key: from.key, chainId: net.chainId, to, amount, fee, nonce });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll until `pred` holds (bounded in time); returns the last value. */
export async function waitFor<T>(what: string, fn: () => Promise<T>, pred: (v: T) => boolean, timeoutMs: number, pollMs = 250): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastErr: unknown;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (pred(last)) return last;
    } catch (e) {
      lastErr = e;
    }
    await sleep(pollMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value ${JSON.stringify(last)}${lastErr ? `; last error ${String(lastErr)}` : ''}`);
}

export async function finalized(c: QnexusClient): Promise<number> {
  return (await c.status()).finalizedHeight;
}

export async function statuses(net: TestNet, names: string[]): Promise<StatusInfo[]> {
  return Promise.all(names.map((n) => net.devnet.client(n).status()));
}

/** All named nodes have finalized at least `h`. */
export async function waitAllFinalized(net: TestNet, names: string[], h: number, timeoutMs = 60_000): Promise<void> {
  await waitFor(`${names.join(',')} to finalize height ${h}`, () => statuses(net, names), (ss) => ss.every((s) => s.finalizedHeight >= h), timeoutMs);
}

/** Block hash and state root at each height 1..h, as one node reports them. */
export async function chainView(c: QnexusClient, from: number, to: number): Promise<string[]> {
  const out: string[] = [];
  for (let h = from; h <= to; h++) {
    const b = await c.block(h);
    out.push(`${b.height}:${b.hash}:${b.stateRoot}`);
  }
  return out;
}

/** Run async jobs with bounded concurrency. */
export async function pool<T, R>(items: T[], limit: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}
