// Shared helpers for the multi-process end-to-end tests: every node (and the
// beacon) is a real OS process on 127.0.0.1 started by the devnet launcher.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BEACON_NAME, startDevnet, unlockKeystoreFile, type Devnet, type DevnetOptions } from '@qnexus/cli';
import {
  buildTransfer,
  buildXTransfer,
  type BeaconXTransferInfo,
  type BuiltTx,
  type QnexusClient,
  type SigningKey,
  type StakingTotals,
  type StatusInfo,
  type SupplyInfo,
  type XTransferInfo,
} from '@qnexus/sdk';
import { addressFromPublicKey, formatAddress, generateKeyPair, homeShard, parseAddress } from '@qnexus/crypto';

export interface TestAccount {
  address: string;
  key: SigningKey;
  /** The account's home shard: its transactions go to a node of this shard. */
  shard: number;
}

export interface TestNet {
  devnet: Devnet;
  /** Every funded account, shard by shard. */
  accounts: TestAccount[];
  /** `accountsByShard[k]`: the funded accounts whose home shard is k. */
  accountsByShard: TestAccount[][];
  shardCount: number;
  chainId: string;
  cleanup(): Promise<void>;
}

/**
 * startDevnet's options (the devnet's defaults apply: 2 shards × (4 validators + 1 full node),
 * and always a beacon; pass `shards: 1` for a single shard, `xferTimeoutSlots` for the
 * cross-shard deadline). The test net lives in a fresh temporary directory on random ports.
 */
export type TestNetOptions = DevnetOptions;

/**
 * A random base port for a test cluster (it uses base … base + 199). The ranges stay below
 * Linux's ephemeral ports (32768+): there, outgoing connections of other processes can take a
 * port between our free-port check and the node binding it (seen as ADDRESS_IN_USE in CI).
 */
export function randomBasePort(): number {
  return 20_000 + Math.floor(Math.random() * 126) * 100;
}

/**
 * Environment of a test net's processes unless a test sets its own: a block every slot, even
 * on an idle shard (`--empty-block-interval 1`), since many tests wait for heights without
 * sending transactions. The default (quiet rounds, an empty block every 8 slots) has its own
 * test, `quiet.e2e.test.ts`.
 */
export const TEST_NODE_ENV: Record<string, string> = { QNEXUS_EMPTY_BLOCK_INTERVAL: '1' };

export async function startTestNet(opts: TestNetOptions = {}): Promise<TestNet> {
  const dir = mkdtempSync(join(tmpdir(), 'qnexus-e2e-'));
  let devnet: Devnet | undefined;
  let lastErr: unknown;
  // A random port range can still be taken; try a few.
  for (let attempt = 0; attempt < 3 && !devnet; attempt++) {
    try {
      devnet = await startDevnet({ dir: join(dir, 'devnet'), basePort: randomBasePort(), logFormat: 'json', reset: true, ...opts, env: { ...TEST_NODE_ENV, ...opts.env } });
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
    accounts.push({ address: a.address, shard: a.shard, key: { publicKey: key.publicKey, secretKey: key.secretKey, scheme: key.scheme } });
  }
  const d = devnet;
  const shardCount = d.genesis.shardCount;
  return {
    devnet: d,
    accounts,
    accountsByShard: Array.from({ length: shardCount }, (_, k) => accounts.filter((a) => a.shard === k)),
    shardCount,
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

/** A fresh (unfunded) address whose home shard is `shard`. */
export function freshAddressOn(net: TestNet, shard: number, seedByte = 240): string {
  for (let i = 0; i < 10_000; i++) {
    const seed = new Uint8Array(32).fill(seedByte);
    seed[0] = i & 0xff;
    seed[1] = i >> 8;
    const a = formatAddress(addressFromPublicKey(generateKeyPair('ml-dsa-44', seed).publicKey));
    if (homeShard(parseAddress(a), net.shardCount) === shard) return a;
  }
  throw new Error(`no address of shard ${shard} found`);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- shards, beacon, cross-shard transfers

/** The beacon's API client. */
export function beaconClient(net: TestNet): QnexusClient {
  return net.devnet.client(BEACON_NAME);
}

/** Names of the nodes of a shard (validators first, then full nodes); `running` keeps those whose process runs. */
export function shardNodes(net: TestNet, shard: number, opts: { running?: boolean } = {}): string[] {
  return net.devnet.manifest.processes.filter((p) => p.shard === shard && (!opts.running || net.devnet.isRunning(p.name))).map((p) => p.name);
}

/** A client of the first running node of a shard. */
export function shardClient(net: TestNet, shard: number): QnexusClient {
  const name = shardNodes(net, shard, { running: true })[0];
  if (name === undefined) throw new Error(`no node of shard ${shard} is running`);
  return net.devnet.client(name);
}

/**
 * Sign a cross-shard transfer from `from` to `to` (an address of another shard) and submit it to
 * a running node of the sender's shard (or `opts.node`); returns its id (the transaction hash).
 * The nonce defaults to the sender's pendingNonce on that node.
 */
export async function xtransfer(
  net: TestNet,
  from: TestAccount,
  to: string,
  amount: bigint,
  opts: { fee?: bigint; nonce?: bigint; node?: string } = {},
): Promise<string> {
  const c = opts.node !== undefined ? net.devnet.client(opts.node) : shardClient(net, from.shard);
  const nonce = opts.nonce ?? BigInt((await c.account(from.address)).pendingNonce);
  const tx = buildXTransfer({ key: from.key, chainId: net.chainId, to, amount, fee: opts.fee ?? 1n, nonce, shardCount: net.shardCount });
  const r = await c.submitTx(tx.raw);
  if (r.hash !== tx.hash) throw new Error(`node reports hash ${r.hash}, locally ${tx.hash}`);
  return tx.hash;
}

/** Sign (not submit) a cross-shard transfer with an explicit nonce, like `transfer`. */
export function signXTransfer(net: TestNet, from: TestAccount, to: string, amount: bigint, nonce: bigint, fee = 1n): BuiltTx {
  return buildXTransfer({ key: from.key, chainId: net.chainId, to, amount, fee, nonce, shardCount: net.shardCount });
}

export interface XferDone {
  id: string;
  decision: 'commit' | 'abort';
  /** The beacon's record, `done` (applied on both shards). */
  beacon: BeaconXTransferInfo;
  /** The source and destination nodes' records, each `committed` or `aborted`. */
  source: XTransferInfo;
  destination: XTransferInfo;
}

/**
 * Wait until the beacon reports the transfer done (decided and applied on both shards), then
 * until a running node of each shard reports the decision applied; checks that all three agree.
 * The beacon must be running (restart it first if a test killed it).
 */
export async function waitXferDone(net: TestNet, id: string, timeoutMs = 120_000): Promise<XferDone> {
  const end = Date.now() + timeoutMs;
  const left = () => Math.max(1, end - Date.now());
  const beacon = await beaconClient(net).waitForBeaconXTransfer(id, { until: 'applied', timeoutMs: left() });
  const decision = beacon.decision;
  if (decision === null) throw new Error(`transfer ${id} is done without a decision: ${JSON.stringify(beacon)}`);
  const [source, destination] = await Promise.all(
    [beacon.sourceShard, beacon.destinationShard].map((k) => shardClient(net, k).waitForXTransfer(id, { until: 'applied', timeoutMs: left() })),
  );
  for (const x of [source!, destination!]) {
    if (x.decision !== decision) throw new Error(`shard ${x.role === 'source' ? x.sourceShard : x.destinationShard} applied ${x.decision}, the beacon decided ${decision} (transfer ${id})`);
  }
  return { id, decision, beacon, source: source!, destination: destination! };
}

export interface SupplyAcrossShards {
  /** `/v1/supply` of one running node per shard, index = shard. */
  shards: SupplyInfo[];
  /** The beacon's staking totals (what it holds: stake and unpaid rewards). */
  beacon: StakingTotals;
  /** Σ of the genesis account balances. */
  genesisTotal: bigint;
  /** Per-shard figures added up. */
  sum: { balances: bigint; burned: bigint; fees: bigint; escrow: bigint; exported: bigint; imported: bigint; genesisSupply: bigint };
  /** Every shard's identity holds: balances + burned + fees + escrow + exported − imported = its genesis supply. */
  perShardOk: boolean;
  /**
   * Nothing decided is still in flight: what the shards exported minus what they imported is
   * exactly what the beacon took in (stake, fees) minus what it released, so every transfer
   * between shards is credited and every beacon decision applied.
   */
  settled: boolean;
  /** settled, and Σ (balances + burned + fees + escrow) + held at the beacon = genesis accounts + genesis stake + minted − slashed. */
  globalOk: boolean;
  /** What does not add up (empty when perShardOk and globalOk). */
  problems: string[];
}

/**
 * Read every shard's supply and the beacon's totals and check the identities (docs/staking.md,
 * "Beacon supply"): each shard's `total` equals its genesis supply, and once nothing is in
 * flight all balances, burned fees, pending proposer fees and escrows plus what the beacon
 * holds equal the genesis accounts + genesis stake + minted rewards − slashed stake. Shards are
 * read one after the other, so while transfers are in flight `settled` may be false: poll with
 * waitFor(…, (s) => s.globalOk).
 */
export async function supplyAcrossShards(net: TestNet): Promise<SupplyAcrossShards> {
  const shards: SupplyInfo[] = [];
  const beacon = await beaconClient(net).beaconSupply();
  for (let k = 0; k < net.shardCount; k++) shards.push(await shardClient(net, k).supply());
  const genesisTotal = net.devnet.genesis.accounts.reduce((s, a) => s + a.balance, 0n);
  const sum = { balances: 0n, burned: 0n, fees: 0n, modules: 0n, escrow: 0n, exported: 0n, imported: 0n, genesisSupply: 0n };
  const problems: string[] = [];
  for (const s of shards) {
    const v = {
      balances: BigInt(s.balances),
      burned: BigInt(s.burned),
      fees: BigInt(s.fees),
      modules: BigInt(s.modules ?? '0'),
      escrow: BigInt(s.escrow),
      exported: BigInt(s.exported),
      imported: BigInt(s.imported),
      genesisSupply: BigInt(s.genesisSupply),
    };
    for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += v[k];
    const total = v.balances + v.burned + v.fees + v.modules + v.escrow + v.exported - v.imported;
    if (total !== v.genesisSupply || BigInt(s.total) !== v.genesisSupply) {
      problems.push(
        `shard ${s.shard} at height ${s.height}: balances ${v.balances} + burned ${v.burned} + fees ${v.fees} + modules ${v.modules} + escrow ${v.escrow} + exported ${v.exported} − imported ${v.imported} = ${total} (node says ${s.total}) ≠ genesis supply ${v.genesisSupply}`,
      );
    }
  }
  const perShardOk = problems.length === 0;
  if (sum.genesisSupply !== genesisTotal) problems.push(`the shards' genesis supplies add up to ${sum.genesisSupply}, the genesis total is ${genesisTotal}`);
  const b = { stakedIn: BigInt(beacon.stakedIn), feesIn: BigInt(beacon.feesIn), released: BigInt(beacon.released), held: BigInt(beacon.held), minted: BigInt(beacon.minted), slashed: BigInt(beacon.slashed), genesisStake: BigInt(beacon.genesisStake) };
  if (b.held !== b.genesisStake + b.stakedIn + b.feesIn + b.minted - b.slashed - b.released) problems.push(`beacon: held ${b.held} ≠ genesisStake + stakedIn + feesIn + minted − slashed − released`);
  const settled = sum.exported - sum.imported === b.stakedIn + b.feesIn - b.released;
  const circulating = sum.balances + sum.burned + sum.fees + sum.modules + sum.escrow + b.held;
  const expected = genesisTotal + b.genesisStake + b.minted - b.slashed;
  const globalOk = settled && problems.length === 0 && circulating === expected;
  if (settled && circulating !== expected) problems.push(`Σ balances + burned + fees + modules + escrow + held = ${circulating} ≠ genesis accounts + genesis stake + minted − slashed = ${expected}`);
  return { shards, beacon, genesisTotal, sum, perShardOk, settled, globalOk, problems };
}

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

/** The JSON lines of a process's log file (`--log-format json`), in order; other lines are skipped. */
export function jsonLogLines(file: string): { msg: string; [k: string]: unknown }[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg: string; [k: string]: unknown });
}

/** The built CLI binary the e2e tests drive. */
export const CLI = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run the `qnexus` binary to completion with nothing from the caller's QNEXUS_* environment
 * (only `env` may set those), killed after `timeoutMs`.
 */
export function qnexusCli(args: string[], o: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliRun> {
  const cleared = Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('QNEXUS_')).map((k) => [k, '']));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...cleared, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
