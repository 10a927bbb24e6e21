import { Command, Option } from 'commander';
import type { UnlockedKey } from '@qnexus/crypto';
import type { LogFormat, LogLevel, NodeConfig } from '@qnexus/node';
import { CliError, usageError } from '../errors.js';
import { assignedShard, loadGenesisFile } from '../genesis.js';
import { unlockKeystoreFile } from '../keystore.js';
import { addPassphraseOptions, getPassphrase, hasPassphraseSource, type PassphraseOptions } from '../passphrase.js';
import { runUntilStopped } from '../run.js';
import { installPeerKey, readTopology, topologyBootstrap } from '../topology.js';
import { collect, intParser, note, parseMultiaddr } from '../util.js';

// The node package is imported lazily (it loads libp2p): these mirror its DEFAULT_API_RATE_LIMIT / _BURST.
const DEFAULT_API_RATE_LIMIT = 2000;
const DEFAULT_API_RATE_BURST = 4000;

interface NodeOpts extends PassphraseOptions {
  dataDir: string;
  genesis: string;
  shard?: number;
  validator?: string;
  listen?: string[];
  p2pPort?: number;
  announce?: string[];
  bootstrap?: string[];
  bootstrapFile?: string;
  peerKey?: string;
  apiHost: string;
  apiPort: number;
  logFormat?: LogFormat;
  logLevel: LogLevel;
  apiRateLimit?: number;
  apiRateBurst?: number;
  stopOnStdinClose?: boolean;
}

export const DEFAULT_LISTEN = '/ip4/0.0.0.0/tcp/7000';

export function nodeCommand(parent: Command): Command {
  const cmd = parent
    .command('node')
    .description('run a node (validator with --validator, otherwise a full node) until SIGINT/SIGTERM')
    .requiredOption('--data-dir <dir>', 'node directory: database, libp2p key (peer.key), node-info.json')
    .requiredOption('--genesis <file>', 'genesis file')
    .option('--shard <n>', "shard to run (default: a genesis validator's shard committee, else 0; a staked validator runs the shard the beacon assigns it)", intParser(0, 63))
    .option('--validator <keystore>', 'validator keystore: propose and vote with this key (needs a passphrase)')
    .option('--listen <multiaddr>', `libp2p listen address; repeatable (default ${DEFAULT_LISTEN})`, collect(parseMultiaddr))
    .option('--p2p-port <port>', 'shorthand for --listen /ip4/127.0.0.1/tcp/<port>', intParser(0, 65535))
    .option('--announce <multiaddr>', 'address to announce to peers instead of the listen addresses; repeatable', collect(parseMultiaddr))
    .option('--bootstrap <multiaddr>', 'peer to dial, with /p2p/<peerId>; repeatable', collect(parseMultiaddr))
    .option('--bootstrap-file <topology.json>', 'also dial the peers a devnet topology file (qnexus devnet init) lists for this process: the beacon and every node of --shard')
    .option('--peer-key <file>', 'libp2p key made in advance (qnexus devnet init: <dir>/nodes/<name>/peer.key): copied to <data-dir>/peer.key unless that exists (it must then be the same key)')
    .option('--api-host <host>', 'HTTP API bind address', '127.0.0.1')
    .option('--api-port <port>', 'HTTP API port (0 picks a free port, see node-info.json)', intParser(0, 65535), 8545)
    .option('--api-rate-limit <req/s>', `per-client (IP) API requests per second, /metrics exempt; 0 disables (default ${DEFAULT_API_RATE_LIMIT})`, intParser(0, 10_000_000))
    .option('--api-rate-burst <n>', `per-client (IP) API burst; 0 disables (default ${DEFAULT_API_RATE_BURST})`, intParser(0, 10_000_000))
    .addOption(new Option('--log-format <format>', 'log format (default: pretty on a terminal, else json)').choices(['json', 'pretty']))
    .addOption(new Option('--log-level <level>', 'log level').choices(['debug', 'info', 'warn', 'error']).default('info'))
    .addOption(new Option('--stop-on-stdin-close', 'stop when stdin reaches end of file (used by the devnet launcher)').hideHelp());
  return addPassphraseOptions(cmd)
    .addHelpText(
      'after',
      '\nThe validator keystore passphrase comes from --passphrase-env, --passphrase-file or a terminal prompt.\n' +
        'Example:\n  qnexus node --data-dir data/v0 --genesis genesis.json --validator v0.json --passphrase-file pass \\\n' +
        '    --p2p-port 7000 --api-port 8545 --bootstrap /ip4/127.0.0.1/tcp/7001/p2p/12D3KooW…',
    )
    .action(async (o: NodeOpts) => {
      await runUntilStopped(async () => {
        const cfg = await nodeConfig(o);
        const { startNode } = await import('@qnexus/node');
        return startNode(cfg);
      }, o);
    });
}

/** Turn the command line into a NodeConfig (reads the genesis, unlocks the validator key). */
export async function nodeConfig(o: NodeOpts): Promise<NodeConfig> {
  if (!o.validator && hasPassphraseSource(o)) throw usageError('--passphrase-env/--passphrase-file only apply with --validator');
  const genesis = await loadGenesisFile(o.genesis);
  if (o.peerKey !== undefined) await installPeerKey(o.dataDir, o.peerKey);
  if (o.shard !== undefined && o.shard >= genesis.shardCount) {
    throw new CliError('BAD_CONFIG', `--shard ${o.shard} does not exist: the genesis has ${genesis.shardCount} shard${genesis.shardCount === 1 ? '' : 's'}`);
  }
  let validatorKey: UnlockedKey | null = null;
  let shard = o.shard ?? 0;
  if (o.validator) {
    const pass = await getPassphrase(o, { what: `passphrase for ${o.validator}` });
    const { file, key } = await unlockKeystoreFile(o.validator, pass);
    if (file.scheme !== genesis.scheme) {
      throw new CliError('BAD_CONFIG', `validator keystore ${o.validator} is ${file.scheme} but the chain uses ${genesis.scheme}`);
    }
    validatorKey = key;
    // Committees are assigned by the genesis: a validator runs the shard it serves.
    const assigned = assignedShard(genesis, file.address);
    if (assigned !== undefined && o.shard !== undefined && o.shard !== assigned) {
      throw new CliError('BAD_CONFIG', `validator ${file.address} serves shard ${assigned} (the genesis committees), not --shard ${o.shard}: run it with --shard ${assigned} or without --shard`);
    }
    if (assigned === undefined) {
      note(
        `note: ${file.address} is not a genesis validator: it follows shard ${o.shard ?? 0} and starts proposing and voting once the beacon activates its stake ` +
          `(qnexus tx stake; qnexus validators ${file.address} shows its status and shard)${o.shard === undefined ? '; pass --shard k to run the shard the beacon assigns it' : ''}`,
      );
    }
    shard = o.shard ?? assigned ?? 0;
  }
  const listen = [...(o.listen ?? [])];
  if (o.p2pPort !== undefined) listen.push(`/ip4/127.0.0.1/tcp/${o.p2pPort}`);
  if (listen.length === 0) listen.push(DEFAULT_LISTEN);
  const cfg: NodeConfig = {
    dataDir: o.dataDir,
    genesis,
    shard,
    validatorKey,
    listen,
    bootstrap: [...(o.bootstrap ?? []), ...(o.bootstrapFile !== undefined ? topologyBootstrap(await readTopology(o.bootstrapFile), { role: 'node', shard }) : [])],
    apiHost: o.apiHost,
    apiPort: o.apiPort,
    logFormat: o.logFormat ?? (process.stdout.isTTY ? 'pretty' : 'json'),
    logLevel: o.logLevel,
  };
  if (o.announce && o.announce.length > 0) cfg.announce = o.announce;
  if (o.apiRateLimit !== undefined) cfg.apiRateLimit = o.apiRateLimit;
  if (o.apiRateBurst !== undefined) cfg.apiRateBurst = o.apiRateBurst;
  return cfg;
}
