import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { toHex } from '@qnexus/crypto';
import type { BeaconConfig } from '@qnexus/beacon';
import type { LogFormat, LogLevel } from '@qnexus/beacon';
import { CliError } from '../errors.js';
import { loadGenesisFile } from '../genesis.js';
import { unlockKeystoreFile } from '../keystore.js';
import { addPassphraseOptions, getPassphrase, type PassphraseOptions } from '../passphrase.js';
import { runUntilStopped } from '../run.js';
import { installPeerKey, readTopology, topologyBootstrap } from '../topology.js';
import { collect, intParser, parseMultiaddr } from '../util.js';

// The node package is imported lazily (it loads libp2p): these mirror its DEFAULT_API_RATE_LIMIT / _BURST.
const DEFAULT_API_RATE_LIMIT = 2000;
const DEFAULT_API_RATE_BURST = 4000;

interface BeaconOpts extends PassphraseOptions {
  dataDir: string;
  genesis: string;
  key: string;
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
  resendSlots?: number;
  stopOnStdinClose?: boolean;
}

export const DEFAULT_BEACON_LISTEN = '/ip4/0.0.0.0/tcp/7099';
export const DEFAULT_BEACON_API_PORT = 8546;

export function beaconCommand(parent: Command): Command {
  const cmd = parent
    .command('beacon')
    .description('run the beacon (the coordinator of cross-shard transfers) until SIGINT/SIGTERM')
    .requiredOption('--data-dir <dir>', 'beacon directory: database, libp2p key (peer.key, must match the genesis beacon peer id), node-info.json')
    .requiredOption('--genesis <file>', 'genesis file')
    .requiredOption('--key <keystore>', "the beacon's keystore: its public key must be the genesis beacon key (needs a passphrase)")
    .option('--listen <multiaddr>', `libp2p listen address; repeatable (default ${DEFAULT_BEACON_LISTEN})`, collect(parseMultiaddr))
    .option('--p2p-port <port>', 'shorthand for --listen /ip4/127.0.0.1/tcp/<port>', intParser(0, 65535))
    .option('--announce <multiaddr>', 'address to announce to peers instead of the listen addresses; repeatable', collect(parseMultiaddr))
    .option('--bootstrap <multiaddr>', 'shard node to dial, with /p2p/<peerId>; repeatable', collect(parseMultiaddr))
    .option('--bootstrap-file <topology.json>', 'also dial the peers a devnet topology file (qnexus devnet init) lists for this process: every validator')
    .option('--peer-key <file>', 'libp2p key made in advance (qnexus devnet init: <dir>/nodes/<name>/peer.key): copied to <data-dir>/peer.key unless that exists (it must then be the same key)')
    .option('--api-host <host>', 'HTTP API bind address', '127.0.0.1')
    .option('--api-port <port>', 'HTTP API port (0 picks a free port, see node-info.json)', intParser(0, 65535), DEFAULT_BEACON_API_PORT)
    .option('--api-rate-limit <req/s>', `per-client (IP) API requests per second, /metrics exempt; 0 disables (default ${DEFAULT_API_RATE_LIMIT})`, intParser(0, 10_000_000))
    .option('--api-rate-burst <n>', `per-client (IP) API burst; 0 disables (default ${DEFAULT_API_RATE_BURST})`, intParser(0, 10_000_000))
    .addOption(new Option('--log-format <format>', 'log format (default: pretty on a terminal, else json)').choices(['json', 'pretty']))
    .addOption(new Option('--log-level <level>', 'log level').choices(['debug', 'info', 'warn', 'error']).default('info'))
    .option('--resend-slots <n>', 're-send a prepare request or decision not yet acted on after this many slots (default: the beacon’s)', intParser(1, 1_000_000))
    .addOption(new Option('--stop-on-stdin-close', 'stop when stdin reaches end of file (used by the devnet launcher)').hideHelp());
  return addPassphraseOptions(cmd)
    .addHelpText(
      'after',
      `
The keystore passphrase comes from --passphrase-env, --passphrase-file or a terminal prompt.
<data-dir>/peer.key must be the libp2p key whose peer id the genesis names (see
qnexus genesis --beacon-peer-key). API: GET /v1/status, /v1/validators, /v1/committees,
/v1/xtransfers/{id}, /v1/xtransfers?limit=N, /metrics; admin (qnexus admin):
/v1/admin/peers, /v1/admin/log-level with the bearer token in <data-dir>/admin.token.
Example:
  qnexus beacon --data-dir data/beacon --genesis genesis.json --key beacon.json --passphrase-file pass \\
    --p2p-port 7099 --api-port 8546 --bootstrap /ip4/127.0.0.1/tcp/7000/p2p/12D3KooW…`,
    )
    .action(async (o: BeaconOpts) => {
      await runUntilStopped(async () => {
        const cfg = await beaconConfig(o);
        const { startBeacon } = await import('@qnexus/beacon');
        return startBeacon(cfg);
      }, o);
    });
}

/** Turn the command line into a BeaconConfig (reads the genesis, checks the identities, unlocks the key). */
export async function beaconConfig(o: BeaconOpts): Promise<BeaconConfig> {
  const genesis = await loadGenesisFile(o.genesis);
  // The libp2p identity must be the genesis one; never create a new key here (it could not match).
  if (o.peerKey !== undefined) await installPeerKey(o.dataDir, o.peerKey);
  const peerKey = join(o.dataDir, 'peer.key');
  if (!existsSync(peerKey)) {
    throw new CliError(
      'BAD_CONFIG',
      `${peerKey} does not exist: the beacon must run with the libp2p key whose peer id the genesis names (${genesis.beacon.peerId}); copy that key there (qnexus genesis --beacon-peer-key creates one)`,
    );
  }
  const { peerIdFromKeyFile } = await import('@qnexus/p2p');
  const peerId = await peerIdFromKeyFile(peerKey);
  if (peerId !== genesis.beacon.peerId) {
    throw new CliError('BAD_CONFIG', `${peerKey} is peer ${peerId}, but the genesis beacon is peer ${genesis.beacon.peerId}`);
  }
  const pass = await getPassphrase(o, { what: `passphrase for ${o.key}` });
  const { file, key } = await unlockKeystoreFile(o.key, pass);
  if (file.scheme !== genesis.scheme) throw new CliError('BAD_CONFIG', `beacon keystore ${o.key} is ${file.scheme} but the chain uses ${genesis.scheme}`);
  if (file.publicKey !== toHex(genesis.beacon.publicKey)) {
    throw new CliError('BAD_CONFIG', `beacon keystore ${o.key} (${file.address}) does not hold the genesis beacon key`);
  }
  const listen = [...(o.listen ?? [])];
  if (o.p2pPort !== undefined) listen.push(`/ip4/127.0.0.1/tcp/${o.p2pPort}`);
  if (listen.length === 0) listen.push(DEFAULT_BEACON_LISTEN);
  const cfg: BeaconConfig = {
    dataDir: o.dataDir,
    genesis,
    beaconKey: key,
    listen,
    bootstrap: [...(o.bootstrap ?? []), ...(o.bootstrapFile !== undefined ? topologyBootstrap(await readTopology(o.bootstrapFile), { role: 'beacon' }) : [])],
    apiHost: o.apiHost,
    apiPort: o.apiPort,
    logFormat: o.logFormat ?? (process.stdout.isTTY ? 'pretty' : 'json'),
    logLevel: o.logLevel,
  };
  if (o.announce && o.announce.length > 0) cfg.announce = o.announce;
  if (o.apiRateLimit !== undefined) cfg.apiRateLimit = o.apiRateLimit;
  if (o.apiRateBurst !== undefined) cfg.apiRateBurst = o.apiRateBurst;
  if (o.resendSlots !== undefined) cfg.resendSlots = o.resendSlots;
  return cfg;
}
