// `qnexus devnet init --dir <dir>`: create a devnet's configuration (keys, passphrase, genesis, every node's
// libp2p key) without starting anything, plus <dir>/topology.json naming every process, its
// peer id and the address its peers dial. docker-compose.yml's one-shot `init` service runs it
// into the shared `config` volume; test/compose.e2e.test.ts runs the same command locally.
import { existsSync } from 'node:fs';
import { relative } from 'node:path';
import { join } from 'node:path';
import { prepareDevnet, type DevnetOptions } from './devnet.js';
import { CliError } from './errors.js';
import { TOPOLOGY_FILE, TOPOLOGY_VERSION, topologyMultiaddr, readTopology, type HostMode, type Topology } from './topology.js';
import { writeFileAtomic } from './util.js';

export interface DevnetInitOptions extends Omit<DevnetOptions, 'dir' | 'checkPorts' | 'nodeCommand' | 'signal' | 'onEvent' | 'reset'> {
  out: string;
  hostMode: HostMode;
}

export interface DevnetInitResult {
  topology: Topology;
  topologyPath: string;
  /** false: <out> already held a configuration, which was kept. */
  created: boolean;
}

/**
 * Create the configuration in `out` (idempotent: an existing <out>/topology.json is kept, so a
 * restarted compose `init` service does not replace the chain).
 */
export async function initDevnetConfig(o: DevnetInitOptions): Promise<DevnetInitResult> {
  const topologyPath = join(o.out, TOPOLOGY_FILE);
  if (existsSync(topologyPath)) return { topology: await readTopology(topologyPath), topologyPath, created: false };
  if (existsSync(join(o.out, 'genesis.json'))) {
    throw new CliError('DEVNET_NOT_A_DEVNET', `${o.out} holds a devnet (genesis.json) but no ${TOPOLOGY_FILE}; use an empty directory`);
  }
  const { out, hostMode, ...devnetOpts } = o;
  // The processes of a compose devnet run in containers: their ports need not be free here.
  const d = await prepareDevnet({ ...devnetOpts, dir: out, checkPorts: hostMode === 'local' });
  const m = d.manifest;
  const rel = (p: string) => relative(d.dir, p);
  const topology: Topology = {
    version: TOPOLOGY_VERSION,
    hostMode,
    chainId: m.chainId,
    genesisHash: m.genesisHash,
    shardCount: d.genesis.shardCount,
    genesis: rel(m.genesis),
    passphraseFile: rel(m.passphraseFile),
    processes: m.processes.map((p) => {
      const host = hostMode === 'compose' ? p.name : '127.0.0.1';
      return {
        name: p.name,
        role: p.role,
        shard: p.shard,
        peerId: p.peerId,
        host,
        p2pPort: p.p2pPort,
        apiPort: p.apiPort,
        multiaddr: topologyMultiaddr(hostMode, host, p.p2pPort, p.peerId),
        apiUrl: `http://${host}:${p.apiPort}`,
        peerKey: rel(join(p.dataDir, 'peer.key')),
        keystore: p.keystore === null ? null : rel(p.keystore),
        validator: p.validator,
      };
    }),
    accounts: m.accounts.map((a) => ({ address: a.address, keystore: rel(a.keystore), balance: a.balance, shard: a.shard })),
  };
  await writeFileAtomic(topologyPath, `${JSON.stringify(topology, null, 2)}\n`);
  return { topology, topologyPath, created: true };
}
