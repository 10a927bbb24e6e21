import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { toHex } from '@qnexus/crypto';
import type { BeaconConfig } from '@qnexus/beacon';
import { CliError } from '../errors.js';
import { loadGenesisFile } from '../genesis.js';
import { unlockKeystoreFile } from '../keystore.js';
import { addPassphraseOptions, getPassphrase, type PassphraseOptions } from '../passphrase.js';
import { runUntilStopped } from '../run.js';
import { addConfigSupport, printEffectiveConfig, type ConfigOptions } from '../config-file.js';
import { addProcessOptions, checkCryptoBackend, loadModules, PROCESS_PATH_OPTIONS, processConfig, type ProcessOpts } from '../process-options.js';
import { topologyBootstrap } from '../topology.js';
import { intParser } from '../util.js';

interface BeaconOpts extends PassphraseOptions, ProcessOpts, ConfigOptions {
  key: string;
  resendSlots?: number;
}

export const DEFAULT_BEACON_LISTEN = '/ip4/0.0.0.0/tcp/7099';
export const DEFAULT_BEACON_API_PORT = 8546;

export function beaconCommand(parent: Command): Command {
  const cmd = parent
    .command('beacon')
    .description('run the beacon (the coordinator of cross-shard transfers) until SIGINT/SIGTERM')
    .requiredOption('--data-dir <dir>', 'beacon directory: database, libp2p key (peer.key, must match the genesis beacon peer id), node-info.json')
    .requiredOption('--genesis <file>', 'genesis file')
    .requiredOption('--key <keystore>', "the beacon's keystore: its public key must be the genesis beacon key (needs a passphrase)");
  addProcessOptions(cmd, {
    defaultListen: DEFAULT_BEACON_LISTEN,
    defaultApiPort: DEFAULT_BEACON_API_PORT,
    bootstrap: 'shard node to dial, with /p2p/<peerId>; repeatable or comma-separated',
    bootstrapFile: 'also dial the peers a devnet topology file (qnexus devnet init) lists for this process: every validator',
  })
    .option('--resend-slots <n>', 're-send a prepare request or decision not yet acted on after this many slots (default: the beacon’s)', intParser(1, 1_000_000))
    .addOption(new Option('--stop-on-stdin-close', 'stop when stdin reaches end of file (used by the devnet launcher)').hideHelp());
  addPassphraseOptions(cmd, { envDefaults: false }).addHelpText(
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
  );
  return addConfigSupport(cmd, { paths: [...PROCESS_PATH_OPTIONS, 'key'] })
    .action(async (o: BeaconOpts) => {
      if (o.printConfig) return printEffectiveConfig(cmd);
      await runUntilStopped(async () => {
        const cfg = await beaconConfig(o);
        const { startBeacon } = await import('@qnexus/beacon');
        return startBeacon(cfg);
      }, o);
    });
}

/** Turn the command line into a BeaconConfig (reads the genesis, checks the identities, unlocks the key). */
export async function beaconConfig(o: BeaconOpts): Promise<BeaconConfig> {
  checkCryptoBackend(o.cryptoBackend);
  await loadModules(o.module);
  const genesis = await loadGenesisFile(o.genesis);
  // Installs a pre-made --peer-key first: the libp2p identity must be the genesis one, and a new
  // key is never created here (it could not match).
  const shared = await processConfig(o, DEFAULT_BEACON_LISTEN, (t) => topologyBootstrap(t, { role: 'beacon' }));
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
  const cfg: BeaconConfig = { dataDir: o.dataDir, genesis, beaconKey: key, ...shared };
  if (o.resendSlots !== undefined) cfg.resendSlots = o.resendSlots;
  return cfg;
}
