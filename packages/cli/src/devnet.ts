import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, open, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { constants as osConstants } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  addressFromPublicKey,
  backendStatus,
  BACKEND_CHOICES,
  DEFAULT_SCHEME,
  encryptKeystore,
  formatAddress,
  fromHex,
  generateKeyPair,
  homeShard,
  isBackendChoice,
  resolveBackend,
  isValidChainId,
  parseAddress,
  randomSeed,
  type BackendChoice,
  type KeystoreFile,
  type SchemeName,
} from '@qnexus/crypto';
import { QnexusError, type Genesis, type GenesisStaking } from '@qnexus/types';
import { moduleAccount } from '@qnexus/state';
import type { LogFormat, LogLevel } from '@qnexus/runtime';
import { ApiError, QnexusClient, type ClientOptions } from '@qnexus/sdk';
import { withoutConfigEnv } from './config-file.js';
import { CliError, EXIT, usageError } from './errors.js';
import { buildGenesis, genesisCommittees, genesisFileText, genesisHashHex, loadGenesisFile } from './genesis.js';
import { createKeystoreFile, keystoreText, readKeystoreFile } from './keystore.js';
import { readText, writeFileAtomic, writeNewFile } from './util.js';

// ---------------------------------------------------------------- public types

export interface DevnetOptions {
  /** Devnet directory. Default `devnet/data` (relative to the cwd). */
  dir?: string;
  /**
   * Shards (genesis `shardCount`; ignored when resuming). Default 2, at most MAX_DEVNET_SHARDS.
   * Each shard gets its own validators, full nodes and funded accounts (the counts below are per
   * shard). One beacon process coordinates cross-shard transfers (always started, also with one shard).
   */
  shards?: number;
  /**
   * Validators per shard to create (ignored when resuming). Default 4. All get the same stake, so
   * the genesis committee assignment gives every shard exactly this many.
   */
  validators?: number;
  /** Full nodes per shard to create (ignored when resuming). Default 1. */
  fullNodes?: number;
  /** Genesis `xferTimeoutSlots`: slots within which a cross-shard transfer must be decided (ignored when resuming). Default 20. */
  xferTimeoutSlots?: number;
  /** Funded test accounts per shard to create, each with that shard as its home shard (ignored when resuming). Default 4. */
  accounts?: number;
  /** Delete the directory first (only if it is empty or holds a devnet). */
  reset?: boolean;
  /**
   * Node i uses p2p port base+i and API port base+API_PORT_OFFSET+i, where i counts the nodes
   * shard by shard, validators before full nodes (see planDevnet); the beacon uses
   * i = BEACON_INDEX (the last one: base+99 / base+199). Default 7000.
   */
  basePort?: number;
  /** Genesis staking parameters (ignored when resuming); unset ones take the genesis defaults. */
  staking?: Partial<GenesisStaking>;
  /** Default 1000. */
  slotMs?: number;
  /** Default 32. */
  epochLength?: number;
  /** Default ml-dsa-44. */
  scheme?: SchemeName;
  /** Default `qnexus-devnet`. */
  chainId?: string;
  /** Format of the node (and beacon) log files. Default `pretty`. */
  logFormat?: LogFormat;
  /** Default `info`. */
  logLevel?: LogLevel;
  /**
   * ML-DSA backend of every node and the beacon (`--crypto-backend`; a launch option like the
   * log options: not in the manifest, give it again when resuming). Unset: the processes'
   * default (auto: pqclean where it loads, else noble), or `QNEXUS_CRYPTO_BACKEND` of `env`. A named `pqclean` must load in this process,
   * else startDevnet throws CRYPTO_BACKEND_UNAVAILABLE before creating anything.
   */
  cryptoBackend?: BackendChoice;
  /**
   * Every node's `--empty-block-interval` (a launch option like cryptoBackend). Unset: the nodes'
   * default (8: an idle shard makes an empty block every 8 slots, quiet rounds in between), or
   * `QNEXUS_EMPTY_BLOCK_INTERVAL` of `env`.
   */
  emptyBlockInterval?: number;
  /** Default 1 000 000. */
  validatorStake?: bigint;
  /** Default 1 000 000 000 000. */
  accountBalance?: bigint;
  /** Genesis balance of the faucet's module account (on its home shard), default 10 000 000 000 000; 0: no faucet funds. */
  faucetBalance?: bigint;
  /** Default 1. */
  minFee?: bigint;
  /** Default 2000. */
  maxBlockTxs?: number;
  /** Genesis time = now + this, rounded up to the second. Default 2000 ms. */
  genesisDelayMs?: number;
  /** How long a node may take until `/v1/status` answers. Default 30 000 ms. */
  readyTimeoutMs?: number;
  /** How long a node may take to exit after SIGTERM before it is SIGKILLed. Default 10 000 ms. */
  stopTimeoutMs?: number;
  /** scrypt N of the devnet keystores. Default 2^14 (lower than `keys new`: devnet keys are throwaway). */
  scryptN?: number;
  /** Extra environment variables for the node and beacon processes. */
  env?: Record<string, string>;
  /**
   * Check that the ports are free on 127.0.0.1 before creating a devnet. Default true; false for a
   * configuration that runs elsewhere (`qnexus devnet init --host-mode compose`: containers).
   */
  checkPorts?: boolean;
  /**
   * What runs `<args…> node --data-dir …` for each node (and `<args…> beacon --data-dir …` for
   * the beacon). Default: this CLI's bin with `process.execPath` (`dist/bin.js`, or `src/bin.ts`
   * through tsx).
   */
  nodeCommand?: { command: string; args: string[] };
  /** Aborting during startup stops the nodes started so far; startDevnet then throws INTERRUPTED. */
  signal?: AbortSignal;
  /**
   * Host a devnet other machines can join: every process listens (p2p and API) on all interfaces
   * (0.0.0.0) and announces `/ip4/<publicHost>/tcp/<p2pPort>` (`/dns4/…` for a name) to its peers.
   * A launch option like the log options: not fixed at creation, give it again when resuming.
   * Unset: everything on 127.0.0.1, as always.
   */
  publicHost?: string;
  /**
   * Restart a process that exits without being asked to, with exponential backoff (the `qnexus
   * devnet` command turns it on; off by default so that tests which crash nodes on purpose see
   * them stay down). `true` takes SUPERVISE_DEFAULTS.
   */
  supervise?: boolean | Partial<SuperviseOptions>;
  /** Lifecycle notifications (the launcher itself prints nothing). */
  onEvent?: (e: DevnetEvent) => void;
  /**
   * App modules under development (`--module <file.js>`, ES modules whose default export is
   * `(keepers) => Module`): loaded into this process (the genesis names them), passed to every
   * process, recorded in the manifest so a resumed devnet and `devnet restart` keep them (ignored
   * when resuming: the manifest's list applies).
   */
  modules?: string[];
}

/** The supervisor's restart policy. */
export interface SuperviseOptions {
  /** Delay before the first restart after a quick failure; doubles with each further one. */
  initialDelayMs: number;
  /** Longest delay between two restarts. */
  maxDelayMs: number;
  /** A process that ran less than this before exiting failed quickly (and the backoff grows); one that ran longer starts the backoff over. */
  quickFailureMs: number;
  /** After this many quick failures in a row the process is left down (and the supervisor says so). */
  maxQuickFailures: number;
}

export const SUPERVISE_DEFAULTS: SuperviseOptions = { initialDelayMs: 1000, maxDelayMs: 30_000, quickFailureMs: 60_000, maxQuickFailures: 5 };

export type DevnetRole = 'validator' | 'full' | 'beacon';
/** The roles of shard nodes (what planDevnet lays out and addNode adds). */
export type DevnetNodeRole = 'validator' | 'full';
export type DevnetProcessState = 'running' | 'stopped' | 'exited';

/** One process (a shard node or the beacon) as recorded in `<dir>/manifest.json`. */
export interface DevnetProcess {
  name: string;
  role: DevnetRole;
  /** The shard a node runs (`--shard`); null for the beacon. */
  shard: number | null;
  peerId: string;
  /** `/ip4/127.0.0.1/tcp/<p2pPort>/p2p/<peerId>` */
  multiaddr: string;
  /** Every address it listens on, with /p2p/<peerId> (today just `multiaddr`). */
  multiaddrs: string[];
  apiUrl: string;
  /** null while not running. */
  pid: number | null;
  dataDir: string;
  logFile: string;
  /** Validator address, null for full nodes and the beacon. */
  validator: string | null;
  /** Validator keystore (the beacon's keystore for the beacon), null for full nodes. */
  keystore: string | null;
  p2pPort: number;
  apiPort: number;
  /** `stopped`: by the launcher; `exited`: on its own (crash). */
  state: DevnetProcessState;
  exitCode: number | null;
  exitSignal: string | null;
  /** Times the supervisor restarted it since the launcher started (absent in manifests of older launchers). */
  restarts?: number;
}

export interface DevnetAccount {
  address: string;
  keystore: string;
  balance: string;
  /** The account's home shard (`homeShard(address, shardCount)`): send its transactions to a node of this shard. */
  shard: number;
}

/** `<dir>/manifest.json`. All paths are absolute. */
export interface DevnetManifest {
  chainId: string;
  genesis: string;
  genesisHash: string;
  createdAt: string;
  basePort: number;
  /** The beacon first, then the shard nodes shard by shard (validators, then full nodes). */
  processes: DevnetProcess[];
  /** The beacon's entry (the same as in `processes`). */
  beacon: DevnetProcess;
  accounts: DevnetAccount[];
  passphraseFile: string;
  /** pid of the launcher while it runs, else null. A pid that is not alive means stopped too (see readDevnetManifest). */
  launcherPid: number | null;
  /**
   * The address announced to other machines (`--public-host`) while the launcher runs with one:
   * the processes then listen on 0.0.0.0 and `multiaddrs` holds the public address after the
   * loopback one. null or absent: everything on 127.0.0.1.
   */
  publicHost?: string | null;
  /** Absolute paths of the `--module` files every process loads (absent: none). */
  modules?: string[];
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export type DevnetEvent =
  | { type: 'spawn'; name: string; pid: number }
  | { type: 'ready'; name: string }
  | { type: 'exit'; name: string; code: number | null; signal: NodeJS.Signals | null; expected: boolean; logFile: string }
  /** The supervisor will restart an unexpectedly exited process after `delayMs` (its `restart`-th restart). */
  | { type: 'restart-scheduled'; name: string; delayMs: number; restart: number; quickFailures: number }
  /** A restarted process answers its API again. */
  | { type: 'restarted'; name: string; pid: number; restart: number }
  /** A restart did not get the process ready (it is tried again unless the supervisor gives up). */
  | { type: 'restart-failed'; name: string; error: string }
  /** The supervisor leaves a process down after `failures` quick failures in a row. */
  | { type: 'gave-up'; name: string; failures: number; quickFailureMs: number };

export interface Devnet {
  readonly dir: string;
  readonly manifestPath: string;
  /** Kept current (pids, states); also written to manifestPath on every change. */
  readonly manifest: DevnetManifest;
  readonly genesis: Genesis;
  readonly genesisHash: string;
  /** true when an existing devnet directory was reused. */
  readonly resumed: boolean;
  readonly passphraseFile: string;
  readonly scryptN: number;
  /** The manifest entry of a node or of the beacon (`beacon`); throws on an unknown name. */
  process(name: string): DevnetProcess;
  /** An SDK client for a node's API (for `beacon`: the beacon's API, see the client's beacon… methods). */
  client(name: string, opts?: ClientOptions): QnexusClient;
  isRunning(name: string): boolean;
  /**
   * Send a signal to a node. For terminating signals (default SIGTERM) resolves once it
   * has exited (SIGKILL after `stopTimeoutMs` unless the signal was SIGKILL). SIGSTOP /
   * SIGCONT / SIGTSTP are just sent (freeze / thaw a node) and resolve to null.
   */
  kill(name: string, signal?: NodeJS.Signals): Promise<ExitInfo | null>;
  /**
   * Stop the node (or the beacon) if it runs (SIGTERM), then start it again with the same
   * arguments, ports and data dir; resolves once its API answers.
   */
  restart(name: string): Promise<DevnetProcess>;
  /**
   * Start a new full node of `shard` (default 0) from an empty data dir, bootstrapping from its
   * shard's nodes and the beacon; resolves once its API answers. Default name: the first free `full-<j>`
   * (`s<shard>-full-<j>` in a multi-shard devnet). A `validator` needs `keystore` (encrypted with
   * the devnet passphrase), typically of a key staked in later.
   */
  addNode(opts: { role: DevnetNodeRole; name?: string; shard?: number; keystore?: string }): Promise<DevnetProcess>;
  /** Resolves when the node exits next (immediately if it is not running). */
  waitForExit(name: string): Promise<ExitInfo>;
  /** SIGTERM every node and the beacon, SIGKILL what is left after `stopTimeoutMs`, record them as stopped. Idempotent. */
  stop(): Promise<void>;
  /** Names of the processes the supervisor will restart (a restart is scheduled or under way). */
  pendingRestarts(): string[];
  /**
   * Carry out the restart requests `requestDevnetRestart` left in `<dir>/control/` (the launcher
   * calls this on SIGUSR2); resolves with the names restarted.
   */
  serveRestartRequests(): Promise<string[]>;
  /**
   * Record synchronously that the launcher is going away (launcherPid null, every process
   * stopped): for a `process.on('exit')` hook, when there is no time left for stop(). The
   * children stop by themselves once their stdin (the launcher's pipe) closes.
   */
  markGoneSync(): void;
}

export const DEVNET_DEFAULTS = {
  dir: 'devnet/data',
  shards: 2,
  validators: 4,
  fullNodes: 1,
  xferTimeoutSlots: 20,
  accounts: 4,
  basePort: 7000,
  slotMs: 1000,
  epochLength: 32,
  chainId: 'qnexus-devnet',
  logFormat: 'pretty' as LogFormat,
  logLevel: 'info' as LogLevel,
  validatorStake: 1_000_000n,
  accountBalance: 1_000_000_000_000n,
  faucetBalance: 10_000_000_000_000n,
  minFee: 1n,
  maxBlockTxs: 2000,
  genesisDelayMs: 2000,
  readyTimeoutMs: 30_000,
  stopTimeoutMs: 10_000,
  scryptN: 1 << 14,
} as const;

/**
 * API port = basePort + API_PORT_OFFSET + node index; so at most this many processes in a devnet
 * (all shards together, including nodes added later, and the beacon).
 */
export const API_PORT_OFFSET = 100;
/** The beacon's node index: the last one (p2p port base+99, API port base+199). */
export const BEACON_INDEX = API_PORT_OFFSET - 1;
/** Most shard nodes in a devnet (every index but the beacon's). */
export const MAX_DEVNET_NODES = API_PORT_OFFSET - 1;
/** The beacon's process name. */
export const BEACON_NAME = 'beacon';
/** Most shards `startDevnet` creates (each is a full committee of OS processes on this machine). */
export const MAX_DEVNET_SHARDS = 8;
const MARKER = '.qnexus-devnet';

/**
 * Start (or resume) a local devnet: the beacon (`qnexus beacon`) and every shard node
 * (`qnexus node`), each its own OS process. The beacon starts first.
 */
export async function startDevnet(opts: DevnetOptions = {}): Promise<Devnet> {
  const d = new DevnetImpl(opts);
  await d.start();
  return d;
}

/**
 * Create (or load, to resume) the devnet directory exactly as startDevnet does — keys, genesis,
 * node data dirs and identities, manifest — but start no node (`restart(name)` starts one,
 * `stop()` stops what runs). For tests and tools that inspect the layout.
 */
export async function prepareDevnet(opts: DevnetOptions = {}): Promise<Devnet> {
  const d = new DevnetImpl(opts);
  await d.prepare();
  return d;
}

// ---------------------------------------------------------------- layout (pure)

/** One node of a devnet layout, as planned before anything is created. */
export interface DevnetNodePlan {
  name: string;
  role: DevnetNodeRole;
  shard: number;
  /** Node index across all shards: p2p port basePort+index, API port basePort+API_PORT_OFFSET+index. */
  index: number;
  p2pPort: number;
  apiPort: number;
  /**
   * File name of the validator keystore under `keys/`; null for full nodes. Which key it holds
   * is decided by the genesis committees: the i-th validator (by address) of shard k's committee.
   */
  keyFile: string | null;
}

/** A manifest entry for a process not started yet (it listens on 127.0.0.1; setAddresses adds a public host). */
function processEntry(
  dir: string,
  p: { name: string; role: DevnetProcess['role']; shard: number | null; peerId: string; dataDir: string; p2pPort: number; apiPort: number; validator?: string | null; keystore?: string | null },
): DevnetProcess {
  const multiaddr = `/ip4/127.0.0.1/tcp/${p.p2pPort}/p2p/${p.peerId}`;
  return {
    name: p.name,
    role: p.role,
    shard: p.shard,
    peerId: p.peerId,
    multiaddr,
    multiaddrs: [multiaddr],
    apiUrl: `http://127.0.0.1:${p.apiPort}`,
    pid: null,
    dataDir: p.dataDir,
    logFile: join(dir, 'logs', `${p.name}.log`),
    validator: p.validator ?? null,
    keystore: p.keystore ?? null,
    p2pPort: p.p2pPort,
    apiPort: p.apiPort,
    state: 'stopped',
    exitCode: null,
    exitSignal: null,
  };
}

/**
 * Name of the `i`-th node of a role in a shard: `validator-<i>` / `full-<i>` in a single-shard
 * devnet (as always), `s<shard>-validator-<i>` / `s<shard>-full-<i>` when there are several shards.
 */
export function devnetNodeName(shardCount: number, shard: number, role: DevnetNodeRole, i: number): string {
  const base = `${role}-${i}`;
  return shardCount > 1 ? `s${shard}-${base}` : base;
}

/** File name of the `i`-th funded account's keystore of a shard: `account-<i>.json`, or `s<shard>-account-<i>.json`. */
export function devnetAccountKeyFile(shardCount: number, shard: number, i: number): string {
  return shardCount > 1 ? `s${shard}-account-${i}.json` : `account-${i}.json`;
}

/**
 * The node layout of a new devnet: shard by shard, each shard's `validators` validators then its
 * `fullNodes` full nodes; the node index (hence the ports) counts across all shards. With one
 * shard this is validator-0…, full-0… on base+0, base+1, … as it always was.
 */
export function planDevnet(o: { shards: number; validators: number; fullNodes: number; basePort: number }): DevnetNodePlan[] {
  const plan: DevnetNodePlan[] = [];
  for (let k = 0; k < o.shards; k++) {
    const add = (role: DevnetNodeRole, i: number) => {
      const index = plan.length;
      const name = devnetNodeName(o.shards, k, role, i);
      plan.push({
        name,
        role,
        shard: k,
        index,
        p2pPort: o.basePort + index,
        apiPort: o.basePort + API_PORT_OFFSET + index,
        keyFile: role === 'validator' ? `${name}.json` : null,
      });
    };
    for (let i = 0; i < o.validators; i++) add('validator', i);
    for (let j = 0; j < o.fullNodes; j++) add('full', j);
  }
  return plan;
}

/** The beacon's ports: p2p base+BEACON_INDEX, API base+API_PORT_OFFSET+BEACON_INDEX. */
export function devnetBeaconPorts(basePort: number): { index: number; p2pPort: number; apiPort: number } {
  return { index: BEACON_INDEX, p2pPort: basePort + BEACON_INDEX, apiPort: basePort + API_PORT_OFFSET + BEACON_INDEX };
}

/**
 * Name the validators of a new devnet from the genesis committees: plan entry `s<k>-validator-<i>`
 * gets the i-th member (sorted by address) of shard k's committee. `committees[k]` lists the
 * addresses serving shard k; every shard must have exactly as many as the plan has validators
 * for it. Returns plan name → validator address.
 */
export function assignDevnetValidators(plan: readonly DevnetNodePlan[], committees: readonly (readonly string[])[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let k = 0; k < committees.length; k++) {
    const slots = plan.filter((p) => p.role === 'validator' && p.shard === k);
    const members = [...committees[k]!].sort();
    if (members.length !== slots.length) {
      throw new CliError('DEVNET_START_FAILED', `the genesis assigns ${members.length} validators to shard ${k}, the devnet planned ${slots.length} (validators must have equal stakes)`);
    }
    slots.forEach((p, i) => out.set(p.name, members[i]!));
  }
  if (plan.some((p) => p.role === 'validator' && !out.has(p.name))) throw new CliError('DEVNET_START_FAILED', 'the plan has validators of shards the genesis does not have');
  return out;
}

/**
 * Draw items until each of `shards` shards holds `perShard` of them: an item goes to
 * `shardOf(item)` unless that shard is full, else it is discarded. Returns the items per shard,
 * in draw order. Throws after `maxDraws` draws (a generator that never reaches some shard).
 */
export function fillShards<T>(shards: number, perShard: number, draw: () => T, shardOf: (item: T) => number, maxDraws = 1000 * shards * perShard + 1000): T[][] {
  const out: T[][] = Array.from({ length: shards }, () => []);
  let missing = shards * perShard;
  for (let n = 0; missing > 0; n++) {
    if (n >= maxDraws) throw new Error(`could not fill ${shards} shards with ${perShard} items each in ${maxDraws} draws`);
    const item = draw();
    const bucket = out[shardOf(item)];
    if (bucket === undefined || bucket.length >= perShard) continue;
    bucket.push(item);
    missing--;
  }
  return out;
}

// ---------------------------------------------------------------- public host, joining

/**
 * Check a `--public-host`: an IPv4 address or a DNS name (what a libp2p `/ip4/` or `/dns4/`
 * multiaddr holds). Loopback and wildcard addresses are refused: other machines cannot dial them.
 */
export function parsePublicHost(value: string): string {
  const v = value.trim();
  const ipv4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(v);
  if (ipv4) {
    if (ipv4.slice(1).some((o) => Number(o) > 255)) throw usageError(`--public-host ${JSON.stringify(value)}: not an IPv4 address`);
    if (ipv4[1] === '127' || v === '0.0.0.0') throw usageError(`--public-host ${v}: other machines cannot dial a loopback or wildcard address; give this machine's address on their network`);
    return v;
  }
  if (v === 'localhost' || !/^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(v) || /^[\d.]+$/.test(v)) {
    throw usageError(`--public-host ${JSON.stringify(value)}: expected this machine's IPv4 address or DNS name as other machines reach it (not localhost)`);
  }
  return v;
}

/** `/ip4/<host>/tcp/<port>` for an IPv4 address, `/dns4/<host>/tcp/<port>` for a name. */
export function publicMultiaddr(host: string, port: number): string {
  return `/${/^[\d.]+$/.test(host) ? 'ip4' : 'dns4'}/${host}/tcp/${port}`;
}

/**
 * The `qnexus node` arguments (after `node`) that join shard `shard` of a devnet hosted with a
 * public host, from another machine: the genesis file (copied there as `genesisFile`), that
 * shard, and the public multiaddrs of the beacon and of the shard's nodes as bootstrap peers.
 * A joining node only dials out, so it needs no public address of its own; `--public-host <its
 * address>` lets other machines dial it too.
 */
export function devnetJoinArgs(m: DevnetManifest, shard: number, genesisFile = 'genesis.json'): string[] {
  const host = m.publicHost;
  if (!host) throw usageError('the devnet runs without a public host: start it with --public-host <address> to let other machines join');
  const args = ['--genesis', genesisFile, '--data-dir', `qnexus-s${shard}`, '--shard', String(shard)];
  for (const e of m.processes) {
    if (e.role === 'beacon' || e.shard === shard) args.push('--bootstrap', `${publicMultiaddr(host, e.p2pPort)}/p2p/${e.peerId}`);
  }
  // The joiner must run the chain's modules too (the genesis names them): copied beside the genesis file.
  for (const f of m.modules ?? []) args.push('--module', basename(f));
  return args;
}

/** Quote a word for a POSIX shell (only when needed). */
export function shellWord(w: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

// ---------------------------------------------------------------- a running devnet, from outside

/** What readDevnetManifest found. */
export interface DevnetRunState {
  manifest: DevnetManifest;
  manifestPath: string;
  /** The launcher's pid is alive: processes marked running are supervised. */
  launcherAlive: boolean;
}

/**
 * Read `<dir>/manifest.json` as the truth today: a launcher that died without updating it
 * (SIGKILL, a crash) leaves entries saying `running`, so when its pid is not alive every process
 * is read as stopped (their stdin was the launcher's pipe: they stop once it closes), and a
 * process whose own pid is gone is read as exited.
 */
export async function readDevnetManifest(dir: string = DEVNET_DEFAULTS.dir): Promise<DevnetRunState> {
  const manifestPath = join(resolve(dir), 'manifest.json');
  if (!existsSync(manifestPath)) throw new CliError('DEVNET_NOT_FOUND', `no devnet in ${dir} (no manifest.json): start one with npm run devnet, or pass --dir`);
  let json: unknown;
  try {
    json = JSON.parse(await readText(manifestPath, 'devnet manifest'));
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError('DEVNET_CORRUPT', `devnet manifest ${manifestPath} is not JSON: ${(e as Error).message}`);
  }
  const manifest = parseManifest(json, manifestPath);
  const launcherAlive = manifest.launcherPid !== null && pidAlive(manifest.launcherPid);
  if (!launcherAlive) manifest.launcherPid = null;
  for (const p of manifest.processes) {
    if (p.pid !== null && launcherAlive && pidAlive(p.pid)) continue;
    if (p.pid !== null || p.state === 'running') {
      p.state = launcherAlive ? 'exited' : 'stopped';
      p.pid = null;
    }
  }
  return { manifest, manifestPath, launcherAlive };
}

const CONTROL_DIR = 'control';

/**
 * Ask a running launcher to restart one of its processes: a request file in `<dir>/control/`, then
 * SIGUSR2 to the launcher (which restarts it, also one the supervisor gave up on). Resolves with
 * the launcher's pid; throws DEVNET_NOT_RUNNING when no launcher runs.
 */
export async function requestDevnetRestart(dir: string, name: string): Promise<number> {
  const { manifest, launcherAlive } = await readDevnetManifest(dir);
  if (!manifest.processes.some((p) => p.name === name)) {
    throw new CliError('DEVNET_UNKNOWN_NODE', `no devnet process named ${JSON.stringify(name)} (have: ${manifest.processes.map((p) => p.name).join(', ')})`);
  }
  if (!launcherAlive) throw new CliError('DEVNET_NOT_RUNNING', `the devnet in ${dir} is not running (no live launcher); start it with npm run devnet`);
  const control = join(resolve(dir), CONTROL_DIR);
  await mkdir(control, { recursive: true });
  await writeFile(join(control, `restart-${name}`), `${new Date().toISOString()}\n`);
  process.kill(manifest.launcherPid!, 'SIGUSR2');
  return manifest.launcherPid!;
}

// ---------------------------------------------------------------- helpers

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const NON_TERMINATING: ReadonlySet<string> = new Set(['SIGSTOP', 'SIGCONT', 'SIGTSTP']);

/**
 * Node.js flags for every node and beacon process (the devnet launcher's, and the image's
 * NODE_OPTIONS in the Dockerfile). V8 grows each isolate's young generation to two 16 MiB
 * semi-spaces, and an idle node already holds them committed: at 8 MiB a node under load
 * peaks about 20 MB lower (218 → 196 MB mean at 300 tx/s offered), with the same GC time per
 * transaction; 4 MiB saved 29 MB but cost 50 % more GC time per transaction (docs/performance.md).
 * One V8 helper thread instead of four: a devnet runs nine busy processes on a few cores, and a
 * scavenge that hands work to helpers waits for the ones the kernel has not scheduled (15–35 ms
 * pauses to copy 1 MB). At 1,200 tx/s offered, 1,077–1,141 finalized in five runs against
 * 895–1,062 in three, GC 0.105–0.126 ms per transaction against 0.148–0.18.
 */
export const NODE_PROCESS_FLAGS: readonly string[] = ['--max-semi-space-size=8', '--v8-pool-size=1'];

/**
 * Environment of every node and beacon process (the devnet launcher's; the image sets the same
 * with ENV in the Dockerfile). glibc malloc serves a block of 128 KiB or more with its own mmap,
 * but raises that threshold (up to 32 MiB) each time such a block is freed; from then on large
 * buffers (LevelDB write batches, stream and batch buffers) come from the main heap, fragment it,
 * and the process never gives the memory back. A fixed threshold keeps them mmapped: at 400 tx/s
 * for 45 s, mean peak RSS per validator 221.8 → 196.5 and 222.8 → 184.0 MB, the highest 250 → 229
 * and 276 → 199, with p50 latency and CPU no worse (docs/performance.md). A value in the
 * launcher's own environment wins. It must be in the
 * environment the process starts with: glibc reads it once, at start-up.
 */
export const NODE_PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '131072' };

function defaultNodeCommand(): { command: string; args: string[] } {
  const here = dirname(fileURLToPath(import.meta.url));
  const js = join(here, 'bin.js');
  if (existsSync(js)) return { command: process.execPath, args: [...NODE_PROCESS_FLAGS, js] };
  const ts = join(here, 'bin.ts');
  if (existsSync(ts)) {
    let tsx: string;
    try {
      tsx = import.meta.resolve('tsx');
    } catch {
      throw new CliError('DEVNET_START_FAILED', `running from source (${ts}) needs tsx, which cannot be resolved; build with npm run build`);
    }
    return { command: process.execPath, args: [...NODE_PROCESS_FLAGS, '--import', tsx, ts] };
  }
  throw new CliError('DEVNET_START_FAILED', `cannot find the qnexus bin next to ${here}`);
}

export function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => res(true)));
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Last lines of a log file, indented, for error messages. */
async function logTail(path: string, lines = 15): Promise<string> {
  try {
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      const len = Math.min(size, 8192);
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, size - len);
      const tail = buf.toString('utf8').split('\n').filter((l) => l.trim().length > 0).slice(-lines);
      return tail.length === 0 ? '\n  (the log is empty)' : `\n  last log lines:\n${tail.map((l) => `  | ${l}`).join('\n')}`;
    } finally {
      await fh.close();
    }
  } catch {
    return '';
  }
}

/**
 * How a process ended, for people: `killed by SIGKILL`, `exited with code 1`. Our processes
 * stop cleanly with code 0 on SIGTERM/SIGINT, so a code 0 the launcher did not ask for is
 * almost always such a signal from someone else: say so rather than call it a crash.
 */
export function describeExit(e: ExitInfo): string {
  if (e.signal) return `was killed by ${e.signal}`;
  // 128 + n: the shell's (and many programs') way of saying "ended by signal n".
  const bySignal = e.code !== null && e.code > 128 ? Object.entries(osConstants.signals).find(([, n]) => n === e.code! - 128)?.[0] : undefined;
  if (bySignal) return `was stopped by ${bySignal} (exit code ${e.code})`;
  if (e.code === 0) return 'stopped with code 0 although the launcher did not ask (a SIGTERM or SIGINT sent to it directly)';
  if (e.code === null) return 'could not be started';
  return `exited with code ${e.code}`;
}

async function loadPeerIdFn(): Promise<(path: string) => Promise<string>> {
  try {
    const p2p = await import('@qnexus/p2p');
    return p2p.peerIdFromKeyFile;
  } catch (e) {
    throw new CliError('DEVNET_START_FAILED', `cannot load @qnexus/p2p to create node keys (is it built? run npm run build): ${(e as Error).message}`);
  }
}

/** Load module files into this process's app (the launcher builds the genesis from it). */
async function installDevnetModules(files: readonly string[] | undefined): Promise<void> {
  if (!files?.length) return;
  const { installModules } = await import('@qnexus/app');
  try {
    await installModules(files);
  } catch (e) {
    if (e instanceof QnexusError) throw new CliError('BAD_CONFIG', e.message);
    throw e;
  }
}

function parseManifest(json: unknown, path: string): DevnetManifest {
  const bad = (why: string): never => {
    throw new CliError('DEVNET_CORRUPT', `devnet manifest ${path} is unusable (${why}); pass --reset to start a new devnet`);
  };
  if (typeof json !== 'object' || json === null) bad('not a JSON object');
  const m = json as Partial<DevnetManifest>;
  if (typeof m.chainId !== 'string' || typeof m.genesis !== 'string' || typeof m.passphraseFile !== 'string') bad('missing chainId/genesis/passphraseFile');
  if (typeof m.basePort !== 'number' || !Array.isArray(m.processes) || !Array.isArray(m.accounts)) bad('missing basePort/processes/accounts');
  for (const p of m.processes!) {
    if (typeof p !== 'object' || p === null) bad('bad process entry');
    const ok =
      typeof p.name === 'string' &&
      (p.role === 'validator' || p.role === 'full' || p.role === 'beacon') &&
      typeof p.dataDir === 'string' &&
      typeof p.logFile === 'string' &&
      typeof p.p2pPort === 'number' &&
      typeof p.apiPort === 'number' &&
      (p.role === 'beacon' ? p.shard === null : typeof p.shard === 'number') &&
      (p.role === 'full' || typeof p.keystore === 'string');
    if (!ok) bad(`bad process entry ${JSON.stringify(p.name)}`);
  }
  const beacon = m.processes!.find((p) => p.role === 'beacon');
  if (!beacon) bad('it has no beacon: it was created by an older qnexus, before cross-shard transfers');
  if (m.modules !== undefined && (!Array.isArray(m.modules) || m.modules.length > 64 || m.modules.some((f) => typeof f !== 'string'))) bad('modules must be a list of module file paths');
  m.beacon = beacon; // one object, in `processes` and here
  return m as DevnetManifest;
}

// ---------------------------------------------------------------- implementation

interface Proc {
  entry: DevnetProcess;
  child: ChildProcess | null;
  /** Settles when the current child exits. */
  exit: Promise<ExitInfo> | null;
  /** Set by kill/stop so the exit is not reported as a crash. */
  expectExit: boolean;
  /** When the current child was spawned (ms): how long it ran decides whether an exit was a quick failure. */
  startedAt?: number;
  /** Quick failures in a row (the supervisor's backoff exponent). */
  quickFailures?: number;
  /** A scheduled supervisor restart, or one under way. */
  restartTimer?: NodeJS.Timeout;
  restarting?: boolean;
}

class DevnetImpl implements Devnet {
  readonly dir: string;
  readonly manifestPath: string;
  readonly passphraseFile: string;
  readonly scryptN: number;
  resumed = false;
  manifest!: DevnetManifest;
  genesis!: Genesis;
  genesisHash = '';

  private readonly o: DevnetOptions;
  private readonly procs = new Map<string, Proc>();
  private cmd: { command: string; args: string[] } | undefined;
  private saving: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | undefined;
  private peerIdOf: ((path: string) => Promise<string>) | undefined;
  private readonly supervise: SuperviseOptions | null;
  private readonly publicHost: string | null;

  constructor(o: DevnetOptions) {
    this.o = o;
    this.supervise = o.supervise === true ? SUPERVISE_DEFAULTS : o.supervise ? { ...SUPERVISE_DEFAULTS, ...o.supervise } : null;
    this.publicHost = o.publicHost !== undefined ? parsePublicHost(o.publicHost) : null;
    this.dir = resolve(o.dir ?? DEVNET_DEFAULTS.dir);
    this.manifestPath = join(this.dir, 'manifest.json');
    this.passphraseFile = join(this.dir, 'passphrase');
    this.scryptN = o.scryptN ?? DEVNET_DEFAULTS.scryptN;
  }

  // ------------------------------------------------------------ startup

  /** Create or load the devnet directory; starts nothing. */
  async prepare(): Promise<void> {
    this.validateOptions();
    this.cmd = this.o.nodeCommand ?? defaultNodeCommand();
    if (this.o.reset) await this.wipe();
    if (existsSync(join(this.dir, 'genesis.json'))) await this.resume();
    else await this.create();
  }

  async start(): Promise<void> {
    await this.prepare();
    try {
      await this.launchAll();
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  private validateOptions(): void {
    const o = this.o;
    const int = (v: number | undefined, name: string, min: number, max: number) => {
      if (v !== undefined && (!Number.isSafeInteger(v) || v < min || v > max)) throw usageError(`${name} must be an integer in [${min}, ${max}]`);
    };
    int(o.shards, 'shards', 1, MAX_DEVNET_SHARDS);
    int(o.validators, 'validators', 1, MAX_DEVNET_NODES);
    int(o.fullNodes, 'fullNodes', 0, MAX_DEVNET_NODES);
    int(o.accounts, 'accounts', 0, 10_000);
    int(o.basePort, 'basePort', 1, 65535 - 2 * API_PORT_OFFSET);
    int(o.slotMs, 'slotMs', 50, 600_000);
    int(o.xferTimeoutSlots, 'xferTimeoutSlots', 2, 1_000_000);
    int(o.emptyBlockInterval, 'emptyBlockInterval', 1, 1_000);
    const shards = o.shards ?? DEVNET_DEFAULTS.shards;
    if (shards * ((o.validators ?? DEVNET_DEFAULTS.validators) + (o.fullNodes ?? DEVNET_DEFAULTS.fullNodes)) > MAX_DEVNET_NODES) {
      throw usageError(`at most ${MAX_DEVNET_NODES} shard nodes besides the beacon (${shards > 1 ? 'shards × (validators + full nodes)' : 'validators + full nodes'})`);
    }
    if (o.chainId !== undefined && !isValidChainId(o.chainId)) throw usageError(`invalid chain id ${JSON.stringify(o.chainId)}: expected [a-z0-9][a-z0-9-]{0,63}`);
    if (o.cryptoBackend !== undefined) {
      if (!isBackendChoice(o.cryptoBackend)) throw usageError(`unknown crypto backend ${JSON.stringify(o.cryptoBackend)}: expected ${BACKEND_CHOICES.join(', ')}`);
      // The nodes would each fail to start: say it once, before anything is created.
      const st = backendStatus(resolveBackend(o.cryptoBackend));
      if (!st.available) throw new CliError('CRYPTO_BACKEND_UNAVAILABLE', `--crypto-backend ${o.cryptoBackend}: ${st.detail}; use --crypto-backend noble, or install it`);
    }
  }

  /** Delete the devnet directory, but only if it is empty or clearly a devnet. */
  private async wipe(): Promise<void> {
    if (!existsSync(this.dir)) return;
    const entries = await readdir(this.dir);
    const ours = entries.length === 0 || entries.includes(MARKER) || entries.includes('manifest.json') || entries.includes('genesis.json');
    if (!ours) throw new CliError('DEVNET_NOT_A_DEVNET', `refusing to delete ${this.dir}: it does not look like a devnet directory`);
    await this.refuseIfRunning();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Refuse to touch a devnet whose nodes are still running (from another launcher). */
  private async refuseIfRunning(): Promise<void> {
    if (!existsSync(this.manifestPath)) return;
    let m: DevnetManifest;
    try {
      m = parseManifest(JSON.parse(await readText(this.manifestPath, 'devnet manifest')), this.manifestPath);
    } catch {
      return;
    }
    for (const p of m.processes) {
      if (p.pid === null || p.pid === process.pid || !pidAlive(p.pid)) continue;
      try {
        const s = await new QnexusClient(p.apiUrl, { timeoutMs: 1000 }).status();
        if (s.peerId === p.peerId) {
          throw new CliError('DEVNET_RUNNING', `the devnet in ${this.dir} is running (${p.name} has pid ${p.pid}); stop it first (Ctrl-C in its terminal, or kill ${m.launcherPid ?? p.pid})`);
        }
      } catch (e) {
        if (e instanceof CliError) throw e;
      }
    }
  }

  private async resume(): Promise<void> {
    this.resumed = true;
    if (!existsSync(this.manifestPath)) {
      throw new CliError('DEVNET_CORRUPT', `${this.dir} has genesis.json but no manifest.json; pass --reset to start a new devnet`);
    }
    await this.refuseIfRunning();
    this.manifest = parseManifest(JSON.parse(await readText(this.manifestPath, 'devnet manifest')), this.manifestPath);
    await installDevnetModules(this.manifest.modules);
    try {
      this.genesis = await loadGenesisFile(join(this.dir, 'genesis.json'));
    } catch (e) {
      if (!(e instanceof QnexusError)) throw e;
      throw new CliError('DEVNET_CORRUPT', `${e.message}; pass --reset to start a new devnet`);
    }
    this.genesisHash = genesisHashHex(this.genesis);
    if (!existsSync(this.passphraseFile)) throw new CliError('DEVNET_CORRUPT', `${this.passphraseFile} is missing; pass --reset to start a new devnet`);
    this.manifest.genesis = join(this.dir, 'genesis.json');
    this.manifest.genesisHash = this.genesisHash;
    this.manifest.passphraseFile = this.passphraseFile;
    this.manifest.publicHost = this.publicHost;
    // The layout (shards, nodes, ports) comes from the manifest and genesis, not from the options.
    // Manifests written before accounts had a shard get it from the address.
    for (const a of this.manifest.accounts) {
      if (typeof a.shard !== 'number') a.shard = homeShard(parseAddress(a.address), this.genesis.shardCount);
    }
    const beacon = this.manifest.processes.find((e) => e.role === 'beacon')!;
    const beaconPeerId = await this.peerId(beacon.dataDir);
    if (beaconPeerId !== this.genesis.beacon.peerId) {
      throw new CliError('DEVNET_CORRUPT', `the beacon's ${join(beacon.dataDir, 'peer.key')} is peer ${beaconPeerId}, the genesis names ${this.genesis.beacon.peerId}; pass --reset to start a new devnet`);
    }
    for (const e of this.manifest.processes) {
      // The key files are the truth: refresh peer ids (a deleted key gets a new id).
      e.peerId = await this.peerId(e.dataDir);
      this.setAddresses(e);
      e.pid = null;
      e.restarts = 0;
      this.procs.set(e.name, { entry: e, child: null, exit: null, expectExit: false });
    }
    await this.checkPorts(this.manifest.processes);
  }

  private async create(): Promise<void> {
    const o = this.o;
    const shards = o.shards ?? DEVNET_DEFAULTS.shards;
    const nV = o.validators ?? DEVNET_DEFAULTS.validators;
    const nF = o.fullNodes ?? DEVNET_DEFAULTS.fullNodes;
    const nA = o.accounts ?? DEVNET_DEFAULTS.accounts;
    const basePort = o.basePort ?? DEVNET_DEFAULTS.basePort;
    const scheme = o.scheme ?? DEFAULT_SCHEME;
    const chainId = o.chainId ?? DEVNET_DEFAULTS.chainId;

    if (existsSync(this.dir)) {
      const entries = await readdir(this.dir);
      if (entries.includes(MARKER)) await rm(this.dir, { recursive: true, force: true }); // an unfinished earlier attempt
      else if (entries.length > 0) {
        throw new CliError('DEVNET_NOT_A_DEVNET', `${this.dir} exists, is not empty and holds no devnet; pick another --dir (or --reset if it is safe to delete)`);
      }
    }

    // Layout first, so port clashes fail before any work.
    const plan = planDevnet({ shards, validators: nV, fullNodes: nF, basePort });
    const beaconPorts = devnetBeaconPorts(basePort);
    if (o.checkPorts !== false) await this.checkPorts([{ name: BEACON_NAME, ...beaconPorts }, ...plan]);

    await mkdir(this.dir, { recursive: true });
    await writeFile(join(this.dir, MARKER), 'This directory is a Quantum Nexus devnet (qnexus devnet). It may be deleted by --reset.\n');
    for (const sub of ['keys', 'nodes', 'logs']) await mkdir(join(this.dir, sub), { recursive: true });

    const passphrase = randomBytes(24).toString('base64url');
    await writeFile(this.passphraseFile, `${passphrase}\n`, { mode: 0o600 });
    await chmod(this.passphraseFile, 0o600);

    // The beacon: its ML-DSA keystore and its libp2p key live in its data dir; the genesis names both.
    const beaconDir = join(this.dir, 'nodes', BEACON_NAME);
    await mkdir(beaconDir, { recursive: true });
    const beaconKeyPath = join(beaconDir, 'beacon-key.json');
    const beaconKey = await createKeystoreFile(beaconKeyPath, scheme, passphrase, { scryptN: this.scryptN });
    const beaconPeerId = await this.peerId(beaconDir);
    const beaconEntry = processEntry(this.dir, { name: BEACON_NAME, role: 'beacon', shard: null, peerId: beaconPeerId, dataDir: beaconDir, keystore: beaconKeyPath, ...beaconPorts });

    // Validator keys first (in memory); the genesis committees then decide which shard, hence
    // which name and key file, each one gets.
    const validatorKeys: KeystoreFile[] = [];
    for (let n = 0; n < shards * nV; n++) validatorKeys.push((await encryptKeystore(scheme, passphrase, undefined, { scryptN: this.scryptN })).file);

    // Funded accounts: random keys until every shard has nA whose home shard it is (keys of an
    // already full shard are dropped before anything is encrypted). One shard takes every key.
    const drawn = fillShards(
      shards,
      nA,
      () => {
        const seed = randomSeed();
        return { seed, address: addressFromPublicKey(generateKeyPair(scheme, seed).publicKey) };
      },
      (k) => homeShard(k.address, shards),
    );
    const accounts: DevnetAccount[] = [];
    const balance = o.accountBalance ?? DEVNET_DEFAULTS.accountBalance;
    for (let k = 0; k < shards; k++) {
      for (const [i, key] of drawn[k]!.entries()) {
        const path = join(this.dir, 'keys', devnetAccountKeyFile(shards, k, i));
        const f = await createKeystoreFile(path, scheme, passphrase, { scryptN: this.scryptN, seed: key.seed });
        if (f.address !== formatAddress(key.address)) throw new Error(`keystore ${path} does not hold the drawn key`);
        accounts.push({ address: f.address, keystore: path, balance: balance.toString(), shard: k });
      }
    }

    // The genesis names the app's modules (buildGenesis reads this process's app): load the --module files first.
    const modules = (o.modules ?? []).map((f) => resolve(f));
    await installDevnetModules(modules);
    const delay = o.genesisDelayMs ?? DEVNET_DEFAULTS.genesisDelayMs;
    this.genesis = buildGenesis({
      chainId,
      scheme,
      genesisTime: Math.ceil((Date.now() + delay) / 1000) * 1000,
      slotMs: o.slotMs ?? DEVNET_DEFAULTS.slotMs,
      epochLength: o.epochLength ?? DEVNET_DEFAULTS.epochLength,
      shardCount: shards,
      minFee: o.minFee ?? DEVNET_DEFAULTS.minFee,
      maxBlockTxs: o.maxBlockTxs ?? DEVNET_DEFAULTS.maxBlockTxs,
      xferTimeoutSlots: o.xferTimeoutSlots ?? DEVNET_DEFAULTS.xferTimeoutSlots,
      ...(o.staking ? { staking: o.staking } : {}),
      beacon: { publicKey: fromHex(beaconKey.publicKey), scheme: beaconKey.scheme, peerId: beaconPeerId, source: beaconKeyPath },
      validators: validatorKeys.map((k, n) => ({ keystore: k, source: `validator key ${n}`, stake: o.validatorStake ?? DEVNET_DEFAULTS.validatorStake })),
      // The faucet's module account is a genesis account like any other, so the genesis supply counts it.
      accounts: [...accounts.map((a) => ({ address: a.address, balance: BigInt(a.balance) })), ...faucetFunds(o.faucetBalance ?? DEVNET_DEFAULTS.faucetBalance)],
    });
    this.genesisHash = genesisHashHex(this.genesis);

    // s<k>-validator-<i> is the i-th validator (by address) the genesis assigns to shard k.
    const assigned = assignDevnetValidators(
      plan,
      genesisCommittees(this.genesis).map((c) => c.validators.map((v) => v.address)),
    );
    const keyOf = new Map(validatorKeys.map((k) => [k.address, k]));
    const processes: DevnetProcess[] = [beaconEntry];
    for (const p of plan) {
      const dataDir = join(this.dir, 'nodes', p.name);
      await mkdir(dataDir, { recursive: true });
      const peerId = await this.peerId(dataDir);
      const { p2pPort, apiPort } = p;
      let validator: string | null = null;
      let keystore: string | null = null;
      if (p.keyFile !== null) {
        validator = assigned.get(p.name)!;
        keystore = join(this.dir, 'keys', p.keyFile);
        await writeNewFile(keystore, keystoreText(keyOf.get(validator)!), { mode: 0o600, what: 'keystore' });
      }
      processes.push(processEntry(this.dir, { name: p.name, role: p.role, shard: p.shard, peerId, dataDir, validator, keystore, p2pPort, apiPort }));
    }

    const genesisPath = join(this.dir, 'genesis.json');
    this.manifest = {
      chainId,
      genesis: genesisPath,
      genesisHash: this.genesisHash,
      createdAt: new Date().toISOString(),
      basePort,
      processes,
      beacon: beaconEntry,
      accounts,
      passphraseFile: this.passphraseFile,
      launcherPid: null,
      publicHost: this.publicHost,
      ...(modules.length ? { modules } : {}),
    };
    for (const e of processes) this.setAddresses(e);
    for (const e of processes) this.procs.set(e.name, { entry: e, child: null, exit: null, expectExit: false });
    await this.saveManifest();
    // genesis.json last: its presence means "complete devnet, resume it".
    await writeFileAtomic(genesisPath, genesisFileText(this.genesis));
  }

  /**
   * Loopback addresses always (the devnet's own processes dial each other there); with a public
   * host also the address other machines dial, after the loopback one in `multiaddrs`.
   */
  private setAddresses(e: DevnetProcess): void {
    e.multiaddr = `/ip4/127.0.0.1/tcp/${e.p2pPort}/p2p/${e.peerId}`;
    e.multiaddrs = this.publicHost ? [e.multiaddr, `${publicMultiaddr(this.publicHost, e.p2pPort)}/p2p/${e.peerId}`] : [e.multiaddr];
  }

  private async peerId(dataDir: string): Promise<string> {
    this.peerIdOf ??= await loadPeerIdFn();
    return this.peerIdOf(join(dataDir, 'peer.key'));
  }

  private async checkPorts(list: { name: string; p2pPort: number; apiPort: number }[]): Promise<void> {
    for (const p of list) {
      // With a public host they bind every interface: the port must be free on all of them.
      const host = this.publicHost ? '0.0.0.0' : '127.0.0.1';
      for (const [kind, port] of [['p2p', p.p2pPort], ['API', p.apiPort]] as const) {
        if (!(await portFree(port, host))) {
          throw new CliError('PORT_IN_USE', `${kind} port ${port} of ${p.name} is in use on ${host} (another devnet or node running? stop it or choose another --base-port)`);
        }
      }
    }
  }

  /** The beacon first (every node bootstraps from it), then every shard node at once. */
  private async launchAll(): Promise<void> {
    this.manifest.launcherPid = process.pid;
    const beacon = this.get(BEACON_NAME);
    this.spawnProc(beacon);
    await this.saveManifest();
    await this.waitReady(beacon);
    const nodes = [...this.procs.values()].filter((p) => p !== beacon);
    for (const p of nodes) this.spawnProc(p);
    await this.saveManifest();
    await Promise.all(nodes.map((p) => this.waitReady(p)));
  }

  // ------------------------------------------------------------ processes

  private nodeArgs(e: DevnetProcess): string[] {
    if (e.role === 'beacon') return this.beaconArgs(e);
    const args = [
      'node',
      '--data-dir', e.dataDir,
      '--genesis', this.manifest.genesis,
      '--shard', String(e.shard),
      ...this.netArgs(e),
      '--log-format', this.o.logFormat ?? DEVNET_DEFAULTS.logFormat,
      '--log-level', this.o.logLevel ?? DEVNET_DEFAULTS.logLevel,
      ...this.backendArgs(),
      ...(this.o.emptyBlockInterval !== undefined ? ['--empty-block-interval', String(this.o.emptyBlockInterval)] : []),
      ...this.moduleArgs(),
      '--stop-on-stdin-close',
    ];
    // A node bootstraps from the beacon and from every other node of its shard; the shards
    // meet only at the beacon (and their per-shard gossip topics keep them apart anyway).
    for (const other of this.manifest.processes) {
      if (other.name !== e.name && (other.role === 'beacon' || other.shard === e.shard)) args.push('--bootstrap', other.multiaddr);
    }
    if (e.role === 'validator') args.push('--validator', e.keystore!, '--passphrase-file', this.passphraseFile);
    return args;
  }

  /**
   * Where a process listens and what it announces: 127.0.0.1 only, or with a public host every
   * interface (p2p and API) and the public address as its only announced one (the loopback
   * bootstrap addresses of the devnet's own processes still work: 0.0.0.0 includes loopback).
   */
  private netArgs(e: DevnetProcess): string[] {
    if (!this.publicHost) return ['--p2p-port', String(e.p2pPort), '--api-host', '127.0.0.1', '--api-port', String(e.apiPort)];
    return ['--listen', `/ip4/0.0.0.0/tcp/${e.p2pPort}`, '--announce', publicMultiaddr(this.publicHost, e.p2pPort), '--api-host', '0.0.0.0', '--api-port', String(e.apiPort)];
  }

  /** `--crypto-backend` only when given: without it a `QNEXUS_CRYPTO_BACKEND` of `env` still applies (a flag would beat it). */
  private backendArgs(): string[] {
    return this.o.cryptoBackend !== undefined ? ['--crypto-backend', this.o.cryptoBackend] : [];
  }

  /** Every process runs the devnet's modules (the genesis names them; one that differs refuses to start). */
  private moduleArgs(): string[] {
    return (this.manifest.modules ?? []).flatMap((f) => ['--module', f]);
  }

  private beaconArgs(e: DevnetProcess): string[] {
    const args = [
      'beacon',
      '--data-dir', e.dataDir,
      '--genesis', this.manifest.genesis,
      '--key', e.keystore!,
      '--passphrase-file', this.passphraseFile,
      ...this.netArgs(e),
      '--log-format', this.o.logFormat ?? DEVNET_DEFAULTS.logFormat,
      '--log-level', this.o.logLevel ?? DEVNET_DEFAULTS.logLevel,
      ...this.backendArgs(),
      ...this.moduleArgs(),
      '--stop-on-stdin-close',
    ];
    // The nodes dial the beacon; it dials every validator too, so that after a restart it is
    // back in each shard's gossip at once (nodes re-dial their bootstrap list only while isolated).
    for (const other of this.manifest.processes) if (other.role === 'validator') args.push('--bootstrap', other.multiaddr);
    return args;
  }

  private spawnProc(p: Proc): void {
    const e = p.entry;
    const cmd = this.cmd!;
    // The child writes straight into its log file; it also keeps its stdin pipe
    // open and stops by itself when the launcher goes away (--stop-on-stdin-close).
    // Own process group (detached): a terminal Ctrl-C reaches only the launcher,
    // which then stops every node with a single SIGTERM.
    const fd = openSync(e.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(cmd.command, [...cmd.args, ...this.nodeArgs(e)], {
        stdio: ['pipe', fd, fd],
        detached: true,
        // The launcher passes every setting as a flag; a QNEXUS_* variable of the user's shell
        // (e.g. QNEXUS_CONFIG) must not reach the processes and change what it set up.
        env: { ...NODE_PROCESS_ENV, ...withoutConfigEnv(process.env), ...this.o.env },
      });
    } finally {
      closeSync(fd);
    }
    child.stdin?.on('error', () => undefined);
    p.child = child;
    p.expectExit = false;
    p.startedAt = Date.now();
    e.pid = child.pid ?? null;
    e.state = 'running';
    e.exitCode = null;
    e.exitSignal = null;
    p.exit = new Promise<ExitInfo>((resolveExit) => {
      let done = false;
      const finish = (info: ExitInfo) => {
        if (done) return;
        done = true;
        if (p.child === child) {
          p.child = null;
          e.pid = null;
          e.state = p.expectExit ? 'stopped' : 'exited';
          e.exitCode = info.code;
          e.exitSignal = info.signal;
          void this.saveManifest();
          this.emit({ type: 'exit', name: e.name, code: info.code, signal: info.signal, expected: p.expectExit, logFile: e.logFile });
          if (!p.expectExit) this.scheduleRestart(p);
        }
        resolveExit(info);
      };
      child.once('exit', (code, signal) => finish({ code, signal }));
      child.once('error', () => {
        if (child.pid === undefined) finish({ code: null, signal: null }); // spawn failed
      });
    });
    if (child.pid !== undefined) this.emit({ type: 'spawn', name: e.name, pid: child.pid });
  }

  // ------------------------------------------------------------ supervisor

  /**
   * After an unexpected exit: restart after a delay that doubles with each quick failure in a
   * row (a process that ran longer than quickFailureMs starts over at initialDelayMs), or leave it
   * down after maxQuickFailures of them, saying so.
   */
  private scheduleRestart(p: Proc): void {
    const sv = this.supervise;
    if (!sv || this.stopping || p.restartTimer) return;
    const ranMs = Date.now() - (p.startedAt ?? 0);
    const quick = (ranMs < sv.quickFailureMs ? (p.quickFailures ?? 0) : 0) + 1;
    p.quickFailures = quick;
    if (quick > sv.maxQuickFailures) {
      p.restarting = false;
      this.emit({ type: 'gave-up', name: p.entry.name, failures: quick - 1, quickFailureMs: sv.quickFailureMs });
      return;
    }
    const delayMs = Math.min(sv.maxDelayMs, sv.initialDelayMs * 2 ** (quick - 1));
    const restart = (p.entry.restarts ?? 0) + 1;
    p.restarting = true;
    p.restartTimer = setTimeout(() => void this.supervisedRestart(p, restart), delayMs);
    this.emit({ type: 'restart-scheduled', name: p.entry.name, delayMs, restart, quickFailures: quick });
  }

  private async supervisedRestart(p: Proc, restart: number): Promise<void> {
    p.restartTimer = undefined;
    if (this.stopping || p.child) {
      p.restarting = false;
      return;
    }
    p.entry.restarts = restart;
    try {
      this.spawnProc(p);
      await this.saveManifest();
      await this.waitReady(p);
      p.restarting = false;
      this.emit({ type: 'restarted', name: p.entry.name, pid: p.entry.pid ?? -1, restart });
    } catch (err) {
      // An exit before it was ready has already scheduled the next try.
      p.restarting = p.restartTimer !== undefined;
      if (this.stopping) return;
      this.emit({ type: 'restart-failed', name: p.entry.name, error: err instanceof Error ? err.message.split('\n')[0]! : String(err) });
      // Exited before it was ready: its exit already scheduled the next try. Still running but
      // never answering: stop it and count that as a failure too.
      if (p.child) {
        await this.terminate(p, 'SIGTERM');
        this.scheduleRestart(p);
      }
    }
  }

  private cancelRestart(p: Proc): void {
    if (p.restartTimer) clearTimeout(p.restartTimer);
    p.restartTimer = undefined;
    p.restarting = false;
  }

  private async waitReady(p: Proc): Promise<void> {
    const e = p.entry;
    const timeoutMs = this.o.readyTimeoutMs ?? DEVNET_DEFAULTS.readyTimeoutMs;
    const client = new QnexusClient(e.apiUrl, { timeoutMs: 2000 });
    const deadline = Date.now() + timeoutMs;
    const exited: { info: ExitInfo | null } = { info: null };
    const exit = p.exit!;
    void exit.then((info) => (exited.info = info));
    let last = 'no answer yet';
    for (;;) {
      if (exited.info) {
        throw new CliError('DEVNET_START_FAILED', `${e.name} ${describeExit(exited.info)} before its API answered\n  log: ${e.logFile}${await logTail(e.logFile)}`);
      }
      if (this.o.signal?.aborted) throw new CliError('INTERRUPTED', 'interrupted while starting the devnet', EXIT.INTERRUPTED);
      try {
        const s = e.role === 'beacon' ? await client.beaconStatus() : await client.status();
        if (s.peerId !== e.peerId || s.chainId !== this.manifest.chainId) {
          throw new CliError(
            'DEVNET_START_FAILED',
            `${e.apiUrl} is answered by another node (chain ${s.chainId}, peer id ${s.peerId}; expected ${this.manifest.chainId}, ${e.peerId}): is another devnet running? choose another --base-port`,
          );
        }
        this.emit({ type: 'ready', name: e.name });
        return;
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        last = `${err.code}: ${err.message}`;
      }
      if (Date.now() >= deadline) {
        throw new CliError('DEVNET_START_FAILED', `${e.name} did not answer ${e.apiUrl}/v1/status within ${timeoutMs / 1000} s (${last})\n  log: ${e.logFile}${await logTail(e.logFile)}`);
      }
      await Promise.race([sleep(200), exit]);
    }
  }

  /** Send a terminating signal and wait for the exit (SIGKILL after stopTimeoutMs). */
  private async terminate(p: Proc, signal: NodeJS.Signals): Promise<ExitInfo> {
    const child = p.child;
    const exit = p.exit;
    if (!child || !exit) return { code: p.entry.exitCode, signal: (p.entry.exitSignal as NodeJS.Signals | null) ?? null };
    p.expectExit = true;
    child.kill(signal);
    if (signal === 'SIGKILL') return exit;
    child.kill('SIGCONT'); // a frozen (SIGSTOPped) node must run to handle SIGTERM
    const timeoutMs = this.o.stopTimeoutMs ?? DEVNET_DEFAULTS.stopTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([exit.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs)))]);
    clearTimeout(timer);
    if (timedOut) child.kill('SIGKILL');
    return exit;
  }

  private get(name: string): Proc {
    const p = this.procs.get(name);
    if (!p) throw new CliError('DEVNET_UNKNOWN_NODE', `no devnet node named ${JSON.stringify(name)} (have: ${[...this.procs.keys()].join(', ')})`);
    return p;
  }

  private emit(e: DevnetEvent): void {
    try {
      this.o.onEvent?.(e);
    } catch {
      // a listener's failure must not break process supervision
    }
  }

  private saveManifest(): Promise<void> {
    const text = `${JSON.stringify(this.manifest, null, 2)}\n`;
    // Serialized; a failed write (disk full…) must not take the launcher down.
    this.saving = this.saving.then(() => writeFileAtomic(this.manifestPath, text)).catch(() => undefined);
    return this.saving;
  }

  // ------------------------------------------------------------ public API

  process(name: string): DevnetProcess {
    return this.get(name).entry;
  }

  client(name: string, opts?: ClientOptions): QnexusClient {
    return new QnexusClient(this.get(name).entry.apiUrl, opts);
  }

  isRunning(name: string): boolean {
    return this.get(name).child !== null;
  }

  async kill(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<ExitInfo | null> {
    const p = this.get(name);
    if (!p.child) throw new CliError('DEVNET_NOT_RUNNING', `${name} is not running`);
    if (NON_TERMINATING.has(signal)) {
      p.child.kill(signal);
      return null;
    }
    return this.terminate(p, signal);
  }

  async waitForExit(name: string): Promise<ExitInfo> {
    const p = this.get(name);
    if (!p.child || !p.exit) return { code: p.entry.exitCode, signal: (p.entry.exitSignal as NodeJS.Signals | null) ?? null };
    return p.exit;
  }

  async restart(name: string): Promise<DevnetProcess> {
    const p = this.get(name);
    if (this.stopping) throw new CliError('DEVNET_STOPPED', 'the devnet has been stopped');
    // Asked for: the supervisor's pending try and its backoff give way.
    this.cancelRestart(p);
    p.quickFailures = 0;
    if (p.child) await this.terminate(p, 'SIGTERM');
    await this.checkPorts([p.entry]);
    await this.launch(p);
    return p.entry;
  }

  /** Start one node, record it, and wait for its API; a node that never gets ready is stopped again. */
  private async launch(p: Proc): Promise<void> {
    this.spawnProc(p);
    await this.saveManifest();
    try {
      await this.waitReady(p);
    } catch (e) {
      await this.terminate(p, 'SIGTERM');
      throw e;
    }
  }

  /**
   * Start one more shard node. A `validator` needs a keystore encrypted with the devnet
   * passphrase (`passphraseFile`), typically of a key that is not in the genesis and stakes in
   * with `tx stake`: it follows the chain and starts voting once the beacon activates it.
   */
  async addNode(opts: { role: 'full' | 'validator'; name?: string; shard?: number; keystore?: string }): Promise<DevnetProcess> {
    if (opts.role !== 'full' && opts.role !== 'validator') throw usageError('only full nodes and validators can be added (there is one beacon)');
    if (opts.role === 'validator' && opts.keystore === undefined) throw usageError('a validator node needs its keystore');
    if (this.stopping) throw new CliError('DEVNET_STOPPED', 'the devnet has been stopped');
    const shard = opts.shard ?? 0;
    if (!Number.isSafeInteger(shard) || shard < 0 || shard >= this.genesis.shardCount) throw usageError(`shard ${shard} does not exist in this genesis`);
    let name = opts.name;
    if (name === undefined) {
      let j = 0;
      while (this.procs.has(devnetNodeName(this.genesis.shardCount, shard, opts.role, j))) j++;
      name = devnetNodeName(this.genesis.shardCount, shard, opts.role, j);
    }
    if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw usageError(`invalid node name ${JSON.stringify(name)}`);
    if (this.procs.has(name)) throw usageError(`a node named ${name} already exists`);
    const base = this.manifest.basePort;
    const used = new Set(this.manifest.processes.map((e) => e.p2pPort - base));
    let index = 0;
    while (used.has(index)) index++;
    if (index >= API_PORT_OFFSET) throw usageError(`at most ${MAX_DEVNET_NODES} shard nodes in a devnet`);
    const p2pPort = base + index;
    const apiPort = base + API_PORT_OFFSET + index;
    await this.checkPorts([{ name, p2pPort, apiPort }]);
    const dataDir = join(this.dir, 'nodes', name);
    await rm(dataDir, { recursive: true, force: true }); // a fresh node starts empty
    await mkdir(dataDir, { recursive: true });
    await mkdir(join(this.dir, 'logs'), { recursive: true });
    const peerId = await this.peerId(dataDir);
    let validator: string | null = null;
    if (opts.keystore !== undefined) validator = (await readKeystoreFile(opts.keystore)).address;
    const entry = processEntry(this.dir, { name, role: opts.role, shard, peerId, dataDir, p2pPort, apiPort, validator, keystore: opts.keystore ?? null });
    const p: Proc = { entry, child: null, exit: null, expectExit: false };
    this.manifest.processes.push(entry);
    this.procs.set(name, p);
    await this.launch(p);
    return entry;
  }

  pendingRestarts(): string[] {
    return [...this.procs.values()].filter((p) => p.restarting === true).map((p) => p.entry.name);
  }

  async serveRestartRequests(): Promise<string[]> {
    const control = join(this.dir, CONTROL_DIR);
    let files: string[];
    try {
      files = (await readdir(control)).filter((f) => f.startsWith('restart-'));
    } catch {
      return [];
    }
    const done: string[] = [];
    for (const f of files) {
      await rm(join(control, f), { force: true });
      const name = f.slice('restart-'.length);
      if (!this.procs.has(name) || this.stopping) continue;
      await this.restart(name);
      done.push(name);
    }
    return done;
  }

  markGoneSync(): void {
    if (!this.manifest) return;
    this.manifest.launcherPid = null;
    for (const e of this.manifest.processes) {
      if (e.pid !== null || e.state === 'running') {
        e.pid = null;
        e.state = 'stopped';
      }
    }
    try {
      const tmp = `${this.manifestPath}.${process.pid}.exit.tmp`;
      writeFileSync(tmp, `${JSON.stringify(this.manifest, null, 2)}\n`);
      renameSync(tmp, this.manifestPath);
    } catch {
      // nothing more can be done while exiting
    }
  }

  stop(): Promise<void> {
    for (const p of this.procs.values()) this.cancelRestart(p);
    this.stopping ??= (async () => {
      await Promise.all([...this.procs.values()].map((p) => this.terminate(p, 'SIGTERM')));
      if (this.manifest) {
        this.manifest.launcherPid = null;
        await this.saveManifest();
      }
    })();
    return this.stopping;
  }
}

/** The faucet's genesis account (its module account, on that account's home shard), or none for 0. */
function faucetFunds(balance: bigint): { address: string; balance: bigint }[] {
  return balance > 0n ? [{ address: formatAddress(moduleAccount('faucet')), balance }] : [];
}
