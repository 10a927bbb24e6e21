// The devnet topology file (`qnexus devnet init --dir <dir>` writes <dir>/topology.json): every process of a
// devnet whose keys, genesis and libp2p identities were made before any process runs, with the
// address its peers dial. `qnexus node|beacon --bootstrap-file` reads it, so a static
// docker-compose.yml can start nodes whose peer ids it cannot know.
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { CliError } from './errors.js';
import { readText } from './util.js';

export const TOPOLOGY_FILE = 'topology.json';
export const TOPOLOGY_VERSION = 1;

/**
 * Where the processes are reached: `compose` (every process is a container whose hostname is its
 * name: `/dns4/<name>/tcp/<p2pPort>`), `local` (127.0.0.1, like `qnexus devnet`).
 */
export type HostMode = 'compose' | 'local';

export interface TopologyProcess {
  name: string;
  role: 'beacon' | 'validator' | 'full';
  /** null for the beacon. */
  shard: number | null;
  peerId: string;
  /** Host its peers dial: the container (service) name in compose mode, 127.0.0.1 in local mode. */
  host: string;
  p2pPort: number;
  apiPort: number;
  /** `/dns4/<host>/tcp/<p2pPort>/p2p/<peerId>` (compose) or `/ip4/127.0.0.1/tcp/<p2pPort>/p2p/<peerId>` (local). */
  multiaddr: string;
  /** `http://<host>:<apiPort>` */
  apiUrl: string;
  /** Its libp2p key, relative to the topology file's directory (`qnexus node|beacon --peer-key`). */
  peerKey: string;
  /** Validator keystore (the beacon's keystore for the beacon), relative; null for full nodes. */
  keystore: string | null;
  /** Validator address; null for full nodes and the beacon. */
  validator: string | null;
}

export interface Topology {
  version: number;
  hostMode: HostMode;
  chainId: string;
  genesisHash: string;
  shardCount: number;
  /** Relative to the topology file's directory. */
  genesis: string;
  passphraseFile: string;
  /** The beacon first, then the shard nodes shard by shard (validators, then full nodes). */
  processes: TopologyProcess[];
  /** Funded accounts; keystores relative. */
  accounts: { address: string; keystore: string; balance: string; shard: number }[];
}

export function topologyMultiaddr(hostMode: HostMode, host: string, p2pPort: number, peerId: string): string {
  return `/${hostMode === 'compose' ? 'dns4' : 'ip4'}/${host}/tcp/${p2pPort}/p2p/${peerId}`;
}

/** Read and check a topology file. */
export async function readTopology(path: string): Promise<Topology> {
  let json: unknown;
  try {
    json = JSON.parse(await readText(path, 'topology file'));
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError('BAD_CONFIG', `topology file ${path} is not JSON: ${(e as Error).message}`);
  }
  const bad = (why: string): never => {
    throw new CliError('BAD_CONFIG', `topology file ${path} is unusable (${why}); create it with qnexus devnet init`);
  };
  if (typeof json !== 'object' || json === null) bad('not a JSON object');
  const t = json as Partial<Topology>;
  if (t.version !== TOPOLOGY_VERSION) bad(`version ${String(t.version)}, expected ${TOPOLOGY_VERSION}`);
  if (!Array.isArray(t.processes)) bad('no processes');
  for (const p of t.processes!) {
    const ok =
      typeof p === 'object' &&
      p !== null &&
      typeof p.name === 'string' &&
      (p.role === 'beacon' || p.role === 'validator' || p.role === 'full') &&
      (p.role === 'beacon' ? p.shard === null : typeof p.shard === 'number') &&
      typeof p.multiaddr === 'string' &&
      p.multiaddr.includes('/p2p/');
    if (!ok) bad(`bad process entry ${JSON.stringify((p as { name?: unknown } | null)?.name)}`);
  }
  return t as Topology;
}

/**
 * The multiaddrs a process bootstraps from, by the devnet's rule: a shard node dials the beacon
 * and every node of its shard (its own entry is skipped by peer id when dialing); the beacon dials
 * every validator.
 */
export function topologyBootstrap(t: Topology, who: { role: 'beacon' } | { role: 'node'; shard: number }): string[] {
  return t.processes
    .filter((p) => (who.role === 'beacon' ? p.role === 'validator' : p.role === 'beacon' || p.shard === who.shard))
    .map((p) => p.multiaddr);
}

/** Resolve a path of the topology (relative to its directory). */
export function topologyPath(topologyFile: string, rel: string): string {
  return isAbsolute(rel) ? rel : resolve(dirname(topologyFile), rel);
}

/**
 * `--peer-key <file>`: give a data dir the libp2p identity made for it in advance. Copies the key
 * to `<dataDir>/peer.key` if that does not exist yet; if it does, it must be the same key.
 */
export async function installPeerKey(dataDir: string, keyFile: string): Promise<void> {
  const dest = join(dataDir, 'peer.key');
  let want: Buffer;
  try {
    want = await readFile(keyFile);
  } catch (e) {
    throw new CliError('BAD_CONFIG', `cannot read --peer-key ${keyFile}: ${(e as Error).message}`);
  }
  if (existsSync(dest)) {
    const have = await readFile(dest);
    if (!have.equals(want)) throw new CliError('BAD_CONFIG', `${dest} exists and is not the key of --peer-key ${keyFile}: this data dir belongs to another node`);
    return;
  }
  await mkdir(dataDir, { recursive: true });
  await copyFile(keyFile, dest);
}
