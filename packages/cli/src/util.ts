import { InvalidArgumentError } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { homeShard, isAddressString, isSchemeName, isValidChainId, parseAddress, type SchemeName } from '@qnexus/crypto';
// Types only: devnet.ts imports this module, so its code is loaded lazily (see findDevnet).
import type { DevnetManifest, DevnetProcess } from './devnet.js';
import { CliError } from './errors.js';

export const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** commander parser: a decimal u64 as bigint. */
export function parseU64(value: string): bigint {
  if (!/^(0|[1-9][0-9]*)$/.test(value)) throw new InvalidArgumentError('expected a non-negative decimal integer.');
  const v = BigInt(value);
  if (v > U64_MAX) throw new InvalidArgumentError('exceeds the u64 maximum 18446744073709551615.');
  return v;
}

/** commander parser factory: a safe integer in [min, max]. */
export function intParser(min: number, max: number = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string) => {
    if (!/^-?[0-9]+$/.test(value)) throw new InvalidArgumentError('expected an integer.');
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer in [${min}, ${max}].`);
    return n;
  };
}

/** commander parser: a positive number of seconds (fractions allowed). */
export function parseSeconds(value: string): number {
  const n = Number(value);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(value) || !(n > 0)) throw new InvalidArgumentError('expected a positive number of seconds.');
  return n;
}

/** commander parser: `ml-dsa-44|65|87`, also accepting the bare `44|65|87`. */
export function parseScheme(value: string): SchemeName {
  const v = value.toLowerCase();
  const s = /^(44|65|87)$/.test(v) ? `ml-dsa-${v}` : v;
  if (!isSchemeName(s)) throw new InvalidArgumentError('expected ml-dsa-44, ml-dsa-65 or ml-dsa-87.');
  return s;
}

export function parseChainId(value: string): string {
  if (!isValidChainId(value)) throw new InvalidArgumentError('expected [a-z0-9][a-z0-9-]{0,63}.');
  return value;
}

/** commander parser for repeatable options. */
export function collect<T>(parse: (v: string) => T): (value: string, previous: T[] | undefined) => T[] {
  return (value, previous) => [...(previous ?? []), parse(value)];
}

const LIST_PARSERS = new WeakSet<object>();

/**
 * commander parser for repeatable list options: each use (and an environment variable) may
 * also hold several values separated by commas or whitespace; an empty value adds nothing.
 * Config files give such options a JSON array (see isListParser).
 */
export function collectList<T>(parse: (v: string) => T): (value: string, previous: T[] | undefined) => T[] {
  const f = (value: string, previous: T[] | undefined): T[] => [
    ...(previous ?? []),
    ...value
      .split(/[\s,]+/)
      .filter((v) => v !== '')
      .map(parse),
  ];
  LIST_PARSERS.add(f);
  return f;
}

/** Whether an option's parser came from collectList (the option takes a list). */
export function isListParser(f: unknown): boolean {
  return typeof f === 'function' && LIST_PARSERS.has(f);
}

export function parseMultiaddr(value: string): string {
  if (!value.startsWith('/') || value.includes(' ')) throw new InvalidArgumentError('expected a multiaddr such as /ip4/127.0.0.1/tcp/7000.');
  return value;
}

/** Read a text file with friendly errors naming what it is. */
export async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CliError('FILE_NOT_FOUND', `${what} ${path} does not exist`);
    if (code === 'EACCES' || code === 'EPERM') throw new CliError('PERMISSION_DENIED', `cannot read ${what} ${path}: permission denied`);
    if (code === 'EISDIR') throw new CliError('IS_A_DIRECTORY', `${what} ${path} is a directory`);
    throw e;
  }
}

/**
 * Write a new file, creating parent directories. Refuses to replace an
 * existing file unless `force` (code FILE_EXISTS).
 */
export async function writeNewFile(path: string, data: string, opts: { force?: boolean; mode?: number; what?: string } = {}): Promise<void> {
  await mkdir(dirname(resolve(path)), { recursive: true });
  try {
    await writeFile(path, data, { flag: opts.force ? 'w' : 'wx', mode: opts.mode ?? 0o644 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new CliError('FILE_EXISTS', `${opts.what ?? 'file'} ${path} already exists (pass --force to overwrite it)`);
    }
    throw e;
  }
  if (opts.mode !== undefined) await chmod(path, opts.mode);
}

/** Write a file atomically (temp file + rename). */
export async function writeFileAtomic(path: string, data: string, mode = 0o644): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode });
  await rename(tmp, path);
}

/** A path for display: relative to the cwd when it is below it. */
export function displayPath(p: string): string {
  const rel = relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : p;
}

export function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

export function note(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Left-aligned columns. */
export function table(rows: string[][], indent = ''): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
}


// ---------------------------------------------------------------- defaults: the local devnet and its nodes

/**
 * The repository root this CLI runs from (packages/cli/{dist,src}/ → ../../..), or null when the
 * CLI does not sit in a checkout of it (no quantum-nexus package.json there).
 */
export function repoRoot(): string | null {
  const root = resolve(fileURLToPath(new URL('../../../', import.meta.url)));
  try {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name?: unknown };
    return pkg.name === 'quantum-nexus' ? root : null;
  } catch {
    return null;
  }
}

/** Where `npm run devnet` keeps its devnet, relative to the repository root (or the cwd). */
export const DEVNET_DIR = join('devnet', 'data');

/** The first node of a default `npm run devnet` (base port 7000 + API offset 100): the default without a manifest. */
export const FALLBACK_NODE = 'http://127.0.0.1:7100';

/** The `--node` help of every client command. */
export const NODE_OPTION_HELP = `node HTTP API URL (default: $QNEXUS_NODE, else a node of the local devnet from its manifest, else ${FALLBACK_NODE})`;
/** The `--node` help of commands that ask the local devnet's beacon by default (resolveNode role `beacon`). */
export const BEACON_NODE_OPTION_HELP = `node or beacon HTTP API URL (default: $QNEXUS_NODE, else the local devnet's beacon from its manifest, else ${FALLBACK_NODE})`;

/**
 * Where a local devnet may be: $QNEXUS_DEVNET_DIR alone when set; else ./devnet/data, then
 * <repo>/devnet/data (so `npx qnexus` finds `npm run devnet`'s from any directory of the checkout).
 */
export function devnetDirCandidates(): string[] {
  const env = process.env.QNEXUS_DEVNET_DIR;
  if (env) return [resolve(env)];
  const dirs = [resolve(DEVNET_DIR)];
  const root = repoRoot();
  if (root !== null && !dirs.includes(join(root, DEVNET_DIR))) dirs.push(join(root, DEVNET_DIR));
  return dirs;
}

/** A local devnet read from its manifest. */
export interface LocalDevnet {
  dir: string;
  manifest: DevnetManifest;
  /** Its launcher runs (else every process is read as stopped). */
  launcherAlive: boolean;
  /** Genesis shardCount (what home shards are computed with). */
  shardCount: number;
}

let devnetLookup: Promise<LocalDevnet | null> | undefined;

/**
 * The local devnet (see devnetDirCandidates), read once per command; null when there is none
 * (also for a $QNEXUS_DEVNET_DIR without a manifest: the "is the devnet running?" hint names it).
 * An unusable manifest is an error in $QNEXUS_DEVNET_DIR (it was asked for), and skipped with a
 * note in a default place.
 */
export function findDevnet(): Promise<LocalDevnet | null> {
  devnetLookup ??= (async () => {
    // devnet.ts and genesis.ts import this module: load them only when needed.
    const { readDevnetManifest } = await import('./devnet.js');
    const { loadGenesisFile } = await import('./genesis.js');
    const explicit = Boolean(process.env.QNEXUS_DEVNET_DIR);
    for (const dir of devnetDirCandidates()) {
      if (!existsSync(join(dir, 'manifest.json'))) continue;
      try {
        const { manifest, launcherAlive } = await readDevnetManifest(dir);
        const shardNodes = manifest.processes.filter((p) => p.shard !== null);
        let shardCount = Math.max(1, ...shardNodes.map((p) => p.shard! + 1));
        try {
          shardCount = (await loadGenesisFile(manifest.genesis)).shardCount;
        } catch {
          // A genesis gone from under a manifest: the processes' shards are the next best count.
        }
        return { dir, manifest, launcherAlive, shardCount };
      } catch (e) {
        if (explicit) throw e;
        note(`note: ignoring the devnet in ${displayPath(dir)}: ${(e as Error).message}`);
      }
    }
    return null;
  })();
  return devnetLookup;
}

/** Forget the devnet read by findDevnet (tests run several commands in one process). */
export function forgetDevnet(): void {
  devnetLookup = undefined;
  lastTarget = undefined;
}

/** Where a command's node URL came from. */
export type NodeSource = 'flag' | 'env' | 'devnet' | 'default';

/** What a command wants to talk to. */
export interface NodeWant {
  /** An account (qn…) whose home shard's nodes are wanted: the sender or signer of a transaction. */
  address?: string;
  /**
   * `shard` (default): a shard node (of the address's shard if given); `beacon`: the beacon (the
   * current validator registry, every cross-shard transfer); `any`: a shard node, and `others`
   * lists every shard's nodes (for a question any of them may answer, like a tx hash).
   */
  role?: 'shard' | 'beacon' | 'any';
}

/** The node a command talks to, and what a failure should tell the user. */
export interface NodeTarget {
  url: string;
  source: NodeSource;
  /** The devnet process answering at `url` (also when --node names one of the local devnet's). */
  process: DevnetProcess | null;
  /** More API URLs of the devnet that can answer the same question (running ones first): failover, asking by hash. */
  others: string[];
  /** Home shard of `want.address` (null: no address, or no shard count known). */
  shard: number | null;
  devnet: LocalDevnet | null;
}

let lastTarget: NodeTarget | undefined;

function trimUrl(u: string): string {
  return u.replace(/\/+$/, '');
}

/**
 * The one place a client command decides which node to ask: `--node`, else $QNEXUS_NODE, else
 * a node of the local devnet (a running one of the address's home shard when an address is
 * given), else http://127.0.0.1:7100. Remembered so that explainUnreachable can tell the user
 * what to do when it does not answer.
 */
export async function resolveNode(opts: { node?: string }, want: NodeWant = {}): Promise<NodeTarget> {
  if (want.address !== undefined && !isAddressString(want.address)) throw new CliError('USAGE', `invalid address ${JSON.stringify(want.address)}`, 2);
  const explicit = opts.node ?? (process.env.QNEXUS_NODE || undefined);
  const source: NodeSource = opts.node !== undefined ? 'flag' : explicit !== undefined ? 'env' : 'devnet';
  const devnet = await findDevnet();
  const shard = want.address !== undefined && devnet !== null ? homeShard(parseAddress(want.address), devnet.shardCount) : null;
  const running = (ps: DevnetProcess[]) => [...ps.filter((p) => p.state === 'running'), ...ps.filter((p) => p.state !== 'running')];
  let candidates: DevnetProcess[] = [];
  if (devnet !== null) {
    const ps = devnet.manifest.processes;
    if (want.role === 'beacon') candidates = [devnet.manifest.beacon];
    else if (shard !== null) candidates = running(ps.filter((p) => p.shard === shard));
    else candidates = running(ps.filter((p) => p.shard !== null));
  }
  let target: NodeTarget;
  if (explicit !== undefined) {
    const url = trimUrl(explicit);
    const proc = devnet?.manifest.processes.find((p) => trimUrl(p.apiUrl) === url) ?? null;
    // Others of the named process's own shard: it is the one the user chose.
    const peers = proc === null || devnet === null ? [] : running(devnet.manifest.processes.filter((p) => p !== proc && p.shard === proc.shard && (want.role === 'any' || p.shard !== null)));
    target = { url, source, process: proc, others: peers.map((p) => trimUrl(p.apiUrl)), shard, devnet };
  } else if (candidates.length > 0) {
    const [first, ...rest] = candidates as [DevnetProcess, ...DevnetProcess[]];
    target = { url: trimUrl(first.apiUrl), source: 'devnet', process: first, others: rest.map((p) => trimUrl(p.apiUrl)), shard, devnet };
  } else {
    target = { url: FALLBACK_NODE, source: 'default', process: null, others: [], shard, devnet };
  }
  lastTarget = target;
  return target;
}

/** Up to `max` items and how many more. */
function someOf(items: string[], max = 6): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}

/**
 * An UNAVAILABLE error about the node resolveNode chose, rewritten to say what to do: is the
 * devnet running, where its nodes are, how to point the CLI elsewhere. Anything else unchanged.
 */
export function explainUnreachable(e: unknown): unknown {
  const t = lastTarget;
  if (t === undefined || !(e instanceof Error) || (e as { code?: unknown }).code !== 'UNAVAILABLE' || !e.message.includes(t.url)) return e;
  const d = t.devnet;
  const nodesOf = (dv: LocalDevnet) => {
    const line = (p: DevnetProcess) => `${p.name} ${p.apiUrl}${p.state === 'running' ? '' : ` (${p.state})`}`;
    const ps = dv.manifest.processes.filter((p) => p.shard !== null && (t.shard === null || p.shard === t.shard));
    return `${someOf(ps.map(line))}; its beacon is at ${line(dv.manifest.beacon).replace(/^\S+ /, '')}`;
  };
  if (t.source === 'flag' || t.source === 'env') {
    // The user chose the node: keep the SDK's message, and say where the local devnet's nodes are.
    if (d === null) return e;
    return new CliError('UNAVAILABLE', `${e.message} (${t.source === 'flag' ? '--node' : '$QNEXUS_NODE'}); the local devnet's nodes${t.shard !== null ? ` of shard ${t.shard}` : ''} are at ${nodesOf(d)}`);
  }
  // The SDK's message is `cannot reach node at <url> (<request>): <cause>`.
  const cause = /\): (.*)$/s.exec(e.message)?.[1] ?? e.message;
  let what: string;
  if (d !== null) {
    const state = d.launcherAlive ? `its launcher (pid ${d.manifest.launcherPid}) runs` : 'its launcher is not running';
    what = `is the devnet in ${displayPath(d.dir)} running (\`npm run devnet\`)? ${state}; its nodes${t.shard !== null ? ` of shard ${t.shard}` : ''} are at ${nodesOf(d)}`;
  } else {
    what = `is the devnet running (\`npm run devnet\`)? no devnet manifest found (looked in ${devnetDirCandidates().map(displayPath).join(', ')}); pass --node <url> or set QNEXUS_NODE for another node`;
  }
  return new CliError('UNAVAILABLE', `no node reachable at ${t.url}${t.process !== null ? ` (${t.process.name})` : ''} (${cause}): ${what}`);
}
