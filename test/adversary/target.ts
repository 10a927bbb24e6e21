// What the adversary knows about the devnet it attacks: only what any outsider of a devnet on this
// machine can read (its manifest and genesis files, the public APIs) plus the funded test accounts,
// whose keys the tests own. Built the same way from a TestNet (the e2e test) and from a devnet the
// measurement script spawned from another git tree, so one attack runs unchanged against both.
import { readFileSync } from 'node:fs';
import type { SchemeName } from '@qnexus/crypto';
import type { SigningKey } from '@qnexus/sdk';

export interface NodeTarget {
  name: string;
  role: 'validator' | 'full' | 'beacon';
  /** null for the beacon. */
  shard: number | null;
  peerId: string;
  /** `/ip4/127.0.0.1/tcp/<port>/p2p/<peerId>` */
  multiaddr: string;
  apiUrl: string;
  pid: number;
  logFile: string;
  dataDir: string;
}

export interface FundedAccount {
  address: string;
  key: SigningKey;
  shard: number;
}

export interface Target {
  chainId: string;
  scheme: SchemeName;
  genesisTime: number;
  slotMs: number;
  epochLength: number;
  /** The shard every attack aims at (the devnets here have one). */
  shard: number;
  /** Every process, the beacon included. */
  nodes: NodeTarget[];
  /** Funded accounts of `shard`: the genuine transactions come from them. */
  accounts: FundedAccount[];
}

/** The manifest fields the adversary reads (`<dir>/manifest.json`, DevnetManifest of @qnexus/cli). */
export interface ManifestLike {
  chainId: string;
  genesis: string;
  processes: {
    name: string;
    role: 'validator' | 'full' | 'beacon';
    shard: number | null;
    peerId: string;
    multiaddr: string;
    apiUrl: string;
    pid: number | null;
    logFile: string;
    dataDir: string;
  }[];
}

interface GenesisFileLike {
  chainId: string;
  scheme: SchemeName;
  genesisTime: number;
  slotMs: number;
  epochLength: number;
}

/** A Target from a devnet's manifest (its genesis file is read for the clock) and unlocked accounts. */
export function targetFromManifest(m: ManifestLike, accounts: FundedAccount[], shard = 0): Target {
  const g = JSON.parse(readFileSync(m.genesis, 'utf8')) as GenesisFileLike;
  const nodes: NodeTarget[] = m.processes.map((p) => {
    if (p.pid === null) throw new Error(`devnet process ${p.name} is not running`);
    return { name: p.name, role: p.role, shard: p.shard, peerId: p.peerId, multiaddr: p.multiaddr, apiUrl: p.apiUrl, pid: p.pid, logFile: p.logFile, dataDir: p.dataDir };
  });
  return {
    chainId: m.chainId,
    scheme: g.scheme,
    genesisTime: Number(g.genesisTime),
    slotMs: Number(g.slotMs),
    epochLength: Number(g.epochLength),
    shard,
    nodes,
    accounts: accounts.filter((a) => a.shard === shard),
  };
}

export function shardNodes(t: Target): NodeTarget[] {
  return t.nodes.filter((n) => n.shard === t.shard);
}

export function validators(t: Target): NodeTarget[] {
  return shardNodes(t).filter((n) => n.role === 'validator');
}

export function nodeByName(t: Target, name: string): NodeTarget {
  const n = t.nodes.find((x) => x.name === name);
  if (!n) throw new Error(`no devnet process named ${name}`);
  return n;
}

/** The shard's first full node, else its last validator. */
export function fullNode(t: Target): NodeTarget {
  const s = shardNodes(t);
  return s.find((n) => n.role === 'full') ?? s[s.length - 1]!;
}

/** The shard's gossip topics and stream protocols (as packages/p2p/src/topics.ts names them). */
export function shardProtocols(chainId: string, shard: number) {
  const base = `/qnexus/${chainId}/shard/${shard}`;
  return {
    tx: `${base}/tx`,
    block: `${base}/block`,
    vote: `${base}/vote`,
    status: `${base}/status/1.0.0`,
    blocks: `${base}/blocks/1.0.0`,
    txs: `${base}/txs/1.0.0`,
  };
}

/** Is the process alive (and not a zombie)? */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
