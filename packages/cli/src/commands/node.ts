import { Command, InvalidArgumentError, Option } from 'commander';
import type { UnlockedKey } from '@qnexus/crypto';
import type { NodeConfig } from '@qnexus/node';
import { CliError, usageError } from '../errors.js';
import { assignedShard, loadGenesisFile } from '../genesis.js';
import { unlockKeystoreFile } from '../keystore.js';
import { addPassphraseOptions, getPassphrase, hasPassphraseSource, type PassphraseOptions } from '../passphrase.js';
import { runUntilStopped } from '../run.js';
import { addConfigSupport, printEffectiveConfig, type ConfigOptions } from '../config-file.js';
import { addProcessOptions, checkCryptoBackend, loadModules, PROCESS_PATH_OPTIONS, processConfig, type ProcessOpts } from '../process-options.js';
import { topologyBootstrap } from '../topology.js';
import { intParser, note } from '../util.js';

interface NodeOpts extends PassphraseOptions, ProcessOpts, ConfigOptions {
  shard?: number;
  validator?: string;
  verifyWorkers?: number;
  verifyCacheSize?: number;
  txGossipBatch: number;
  txGossipFlushMs?: number;
  emptyBlockInterval?: number;
  admissionJournal?: boolean;
  sync?: 'snapshot' | 'blocks';
  snapshotThreshold?: number;
  snapshotChunkItems?: number;
  stateRetention?: number;
  stateCacheMb?: number;
}

/** `--admission-journal true|false` (a value, so QNEXUS_ADMISSION_JOURNAL and config files can say false). */
function parseOnOff(v: string): boolean {
  if (v === 'true' || v === 'on' || v === '1') return true;
  if (v === 'false' || v === 'off' || v === '0') return false;
  throw new InvalidArgumentError('expected true or false.');
}

// Mirrors of the node package's defaults (it is imported lazily: it loads libp2p).
const MAX_TX_BATCH = 64;
const DEFAULT_VERIFY_CACHE_SIZE = 200_000;
const DEFAULT_TX_GOSSIP_FLUSH_MS = 100;
export const DEFAULT_EMPTY_BLOCK_INTERVAL = 8;
const DEFAULT_SNAPSHOT_THRESHOLD = 500;
const DEFAULT_STATE_RETENTION = 1000;
const DEFAULT_STATE_CACHE_MB = 48;

export const DEFAULT_LISTEN = '/ip4/0.0.0.0/tcp/7000';

export function nodeCommand(parent: Command): Command {
  const cmd = parent
    .command('node')
    .description('run a node (validator with --validator, otherwise a full node) until SIGINT/SIGTERM')
    .requiredOption('--data-dir <dir>', 'node directory: database, libp2p key (peer.key), node-info.json')
    .requiredOption('--genesis <file>', 'genesis file')
    .option('--shard <n>', "shard to run (default: a genesis validator's shard committee, else 0; a staked validator runs the shard the beacon assigns it)", intParser(0, 63))
    .option('--validator <keystore>', 'validator keystore: propose and vote with this key (needs a passphrase)');
  addProcessOptions(cmd, {
    defaultListen: DEFAULT_LISTEN,
    defaultApiPort: 8545,
    bootstrap: 'peer to dial, with /p2p/<peerId>; repeatable or comma-separated',
    bootstrapFile: 'also dial the peers a devnet topology file (qnexus devnet init) lists for this process: the beacon and every node of --shard',
  })
    .option('--verify-workers <n>', 'worker threads verifying transaction signatures; 0 verifies on the event loop (default: one per core but one, at least 1)', intParser(0, 256))
    .option('--verify-cache-size <n>', `entries of the verify-once cache of transaction signatures; 0 disables it, so every check verifies (default ${DEFAULT_VERIFY_CACHE_SIZE})`, intParser(0, 100_000_000))
    .option('--tx-gossip-batch <n>', 'most transactions per outbound gossip message', intParser(1, MAX_TX_BATCH), MAX_TX_BATCH)
    .option('--tx-gossip-flush-ms <ms>', `longest wait for more transactions before publishing a gossip batch (default ${DEFAULT_TX_GOSSIP_FLUSH_MS})`, intParser(0, 10_000))
    .option(
      '--empty-block-interval <slots>',
      `with nothing to propose, a validator proposes an empty block only once the head is this many slots old, and rounds without a proposal carry no votes (an idle shard is quiet in between); 1: a block every slot (default ${DEFAULT_EMPTY_BLOCK_INTERVAL})`,
      intParser(1, 1_000),
    )
    .option(
      '--admission-journal <on>',
      'journal every acknowledged transaction durably (fsync, group-committed) before the 202, so a crash of this node loses none; false only to measure its cost (default true)',
      parseOnOff,
    )
    .addOption(
      new Option(
        '--sync <mode>',
        `how a node at genesis catches up: snapshot (download and verify the state of a recent certified height from peers, then sync blocks from there) when the best peer is more than --snapshot-threshold heights ahead, else blocks; blocks always replays every block from genesis (default snapshot)`,
      ).choices(['snapshot', 'blocks']),
    )
    .option('--snapshot-threshold <heights>', `join by snapshot only when the best peer's head is more than this many heights above ours (default ${DEFAULT_SNAPSHOT_THRESHOLD})`, intParser(0, 1_000_000_000))
    .option('--state-retention <heights>', `state versions kept behind the head, for the snapshots served to peers and proofs at recent heights (default ${DEFAULT_STATE_RETENTION})`, intParser(1, 1_000_000_000))
    .option('--state-cache-mb <MiB>', `memory for the state's caches (trie nodes and values read from disk); the state itself stays on disk, so this bounds its memory whatever the number of accounts (default ${DEFAULT_STATE_CACHE_MB})`, intParser(1, 1_000_000))
    .addOption(new Option('--snapshot-chunk-items <n>', 'snapshot items asked per chunk request (tests)').argParser(intParser(1, 4096)).hideHelp())
    .addOption(new Option('--stop-on-stdin-close', 'stop when stdin reaches end of file (used by the devnet launcher)').hideHelp());
  addPassphraseOptions(cmd, { envDefaults: false }).addHelpText(
    'after',
    '\nThe validator keystore passphrase comes from --passphrase-env, --passphrase-file or a terminal prompt.\n' +
      'Example:\n  qnexus node --data-dir data/v0 --genesis genesis.json --validator v0.json --passphrase-file pass \\\n' +
      '    --p2p-port 7000 --api-port 8545 --bootstrap /ip4/127.0.0.1/tcp/7001/p2p/12D3KooW…',
  );
  return addConfigSupport(cmd, { paths: [...PROCESS_PATH_OPTIONS, 'validator'] })
    .action(async (o: NodeOpts) => {
      if (o.printConfig) return printEffectiveConfig(cmd);
      await runUntilStopped(async () => {
        const cfg = await nodeConfig(o);
        const { startNode } = await import('@qnexus/node');
        return startNode(cfg);
      }, o);
    });
}

/** Turn the command line into a NodeConfig (reads the genesis, unlocks the validator key). */
export async function nodeConfig(o: NodeOpts): Promise<NodeConfig> {
  checkCryptoBackend(o.cryptoBackend);
  await loadModules(o.module);
  if (!o.validator && hasPassphraseSource(o)) throw usageError('--passphrase-env/--passphrase-file only apply with --validator');
  const genesis = await loadGenesisFile(o.genesis);
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
  const shared = await processConfig(o, DEFAULT_LISTEN, (t) => topologyBootstrap(t, { role: 'node', shard }));
  const cfg: NodeConfig = { dataDir: o.dataDir, genesis, shard, validatorKey, ...shared, txGossipBatch: o.txGossipBatch };
  if (o.verifyWorkers !== undefined) cfg.verifyWorkers = o.verifyWorkers;
  if (o.verifyCacheSize !== undefined) cfg.verifyCacheSize = o.verifyCacheSize;
  if (o.txGossipFlushMs !== undefined) cfg.txGossipFlushMs = o.txGossipFlushMs;
  if (o.emptyBlockInterval !== undefined) cfg.emptyBlockInterval = o.emptyBlockInterval;
  if (o.admissionJournal !== undefined) cfg.admissionJournal = o.admissionJournal;
  if (o.sync !== undefined) cfg.sync = o.sync;
  if (o.snapshotThreshold !== undefined) cfg.snapshotThreshold = o.snapshotThreshold;
  if (o.snapshotChunkItems !== undefined) cfg.snapshotChunkItems = o.snapshotChunkItems;
  if (o.stateRetention !== undefined) cfg.stateRetention = o.stateRetention;
  if (o.stateCacheMb !== undefined) cfg.stateCacheMb = o.stateCacheMb;
  return cfg;
}
