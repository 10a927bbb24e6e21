import { Option, type Command } from 'commander';
import { existsSync } from 'node:fs';
import { DEFAULT_SCHEME, fromHex, isHex, type SchemeName } from '@qnexus/crypto';
import { DEFAULT_STAKING, type GenesisAccount, type GenesisStaking } from '@qnexus/types';
import { CliError, usageError } from '../errors.js';
import {
  DEFAULT_VALIDATOR_STAKE,
  DEFAULT_XFER_TIMEOUT_SLOTS,
  buildGenesis,
  genesisCommittees,
  genesisFileText,
  genesisHashHex,
  parseAccountSpec,
  parsePeerId,
  parseValidatorSpec,
  type BeaconSpec,
  type ValidatorSpec,
} from '../genesis.js';
import { readKeystoreFile } from '../keystore.js';
import { collect, intParser, note, out, parseChainId, parseScheme, parseU64, table, writeNewFile } from '../util.js';

interface GenesisOpts {
  out: string;
  chainId: string;
  scheme: SchemeName;
  slotMs: number;
  epochLength: number;
  genesisTime?: number;
  minFee: bigint;
  maxBlockTxs: number;
  validator: ValidatorSpec[];
  account?: GenesisAccount[];
  shardCount: number;
  beacon?: string;
  beaconPublicKey?: string;
  beaconPeerId?: string;
  beaconPeerKey?: string;
  xferTimeoutSlots: number;
  minStake?: bigint;
  unbondingEpochs?: number;
  churnLimit?: number;
  slashBps?: number;
  feeBurnBps?: number;
  rewardPerEpoch?: bigint;
  halvingEpochs?: number;
  force?: boolean;
  json?: boolean;
}

/** The beacon's public key and peer id from the command line (exactly one source of each). */
async function beaconSpec(o: GenesisOpts): Promise<BeaconSpec> {
  if (o.beacon !== undefined && o.beaconPublicKey !== undefined) throw usageError('pass only one of --beacon and --beacon-public-key');
  if (o.beacon === undefined && o.beaconPublicKey === undefined) {
    throw usageError('the genesis needs the beacon: pass --beacon <keystore.json> (or --beacon-public-key <hex>) and --beacon-peer-id <id> (or --beacon-peer-key <file>)');
  }
  if (o.beaconPeerId !== undefined && o.beaconPeerKey !== undefined) throw usageError('pass only one of --beacon-peer-id and --beacon-peer-key');
  if (o.beaconPeerId === undefined && o.beaconPeerKey === undefined) {
    throw usageError("the genesis needs the beacon's libp2p peer id: pass --beacon-peer-id <id> or --beacon-peer-key <file> (the beacon's <data-dir>/peer.key)");
  }
  let publicKey: Uint8Array;
  let scheme: SchemeName | undefined;
  let source: string;
  if (o.beacon !== undefined) {
    const ks = await readKeystoreFile(o.beacon);
    publicKey = fromHex(ks.publicKey);
    scheme = ks.scheme;
    source = o.beacon;
  } else {
    const hex = o.beaconPublicKey!.toLowerCase().replace(/^0x/, '');
    if (!isHex(hex)) throw usageError('--beacon-public-key must be hex');
    publicKey = fromHex(hex);
    source = '--beacon-public-key';
  }
  let peerId: string;
  if (o.beaconPeerId !== undefined) peerId = o.beaconPeerId;
  else {
    const { peerIdFromKeyFile } = await import('@qnexus/p2p');
    const created = !existsSync(o.beaconPeerKey!);
    peerId = await peerIdFromKeyFile(o.beaconPeerKey!);
    if (created) note(`created the beacon's libp2p key ${o.beaconPeerKey} (peer id ${peerId}); start the beacon with the directory holding it as --data-dir (it must be named peer.key there)`);
  }
  return scheme === undefined ? { publicKey, peerId, source } : { publicKey, scheme, peerId, source };
}

export function genesisCommand(parent: Command): Command {
  return parent
    .command('genesis')
    .description('write a canonical genesis file (same flags → byte-identical file)')
    .requiredOption('-o, --out <file>', 'genesis file to write')
    .requiredOption('--chain-id <id>', 'chain id, [a-z0-9][a-z0-9-]{0,63}', parseChainId)
    .requiredOption(
      '--validator <keystore.json[:stake]>',
      `validator keystore (only its public part is read; no passphrase) with optional stake (default ${DEFAULT_VALIDATOR_STAKE}); repeatable. The genesis assigns each validator its shard committee (printed below)`,
      collect(parseValidatorSpec),
    )
    .option('--beacon <keystore.json>', "the beacon's keystore (only its public part is read): its key signs prepare requests and decisions")
    .option('--beacon-public-key <hex>', "the beacon's ML-DSA public key, instead of --beacon")
    .option('--beacon-peer-id <id>', "the beacon's libp2p peer id (12D3KooW…): shard validators talk 2PC to this peer only", parsePeerId)
    .option('--beacon-peer-key <file>', "instead of --beacon-peer-id: the beacon's libp2p key file (<beacon data dir>/peer.key), created if missing")
    .option('--xfer-timeout-slots <n>', 'slots after the source block within which a cross-shard transfer must be decided (else the beacon aborts it)', intParser(2, 1_000_000), DEFAULT_XFER_TIMEOUT_SLOTS)
    .option('--account <address:balance>', 'funded account; repeatable', collect(parseAccountSpec))
    .option('--min-stake <n>', `smallest stake one transaction may bond (default ${DEFAULT_STAKING.minStake})`, parseU64)
    .option('--unbonding-epochs <n>', `epochs between leaving the committees and the stake returning home (default ${DEFAULT_STAKING.unbondingEpochs})`, intParser(0, 1_000_000))
    .option('--churn-limit <n>', `most validators joining plus leaving the committees per epoch (default ${DEFAULT_STAKING.churnLimit})`, intParser(1, 1024))
    .option('--slash-bps <n>', `stake taken for proven equivocation, in basis points (default ${DEFAULT_STAKING.slashBps})`, intParser(0, 10_000))
    .option('--fee-burn-bps <n>', `part of each fee burned, in basis points; the rest goes to the proposer (default ${DEFAULT_STAKING.feeBurnBps})`, intParser(0, 10_000))
    .option('--reward-per-epoch <n>', `QFC minted per epoch for validators before halvings (default ${DEFAULT_STAKING.rewardPerEpoch})`, parseU64)
    .option('--halving-epochs <n>', `the epoch reward halves every this many epochs, 0 = never (default ${DEFAULT_STAKING.halvingEpochs})`, intParser(0, 1_000_000))
    .option('--scheme <scheme>', 'ML-DSA parameter set of the chain: ml-dsa-44, ml-dsa-65 or ml-dsa-87', parseScheme, DEFAULT_SCHEME)
    .option('--slot-ms <ms>', 'slot (round) length in milliseconds', intParser(50, 600_000), 1000)
    .option('--epoch-length <slots>', 'slots per epoch', intParser(1, 1_000_000), 32)
    .option('--genesis-time <unix-ms>', 'start of slot 0 in Unix milliseconds (default: now, rounded down to the second)', intParser(0, 8.64e15))
    .addOption(new Option('--min-fee <n>', 'smallest fee a transaction may pay').argParser(parseU64).default(1n, '1'))
    .option('--max-block-txs <n>', 'most transactions per block', intParser(1, 10_000), 2000)
    .option('--shard-count <n>', 'number of shards (at least one validator each)', intParser(1, 64), 1)
    .option('-f, --force', 'overwrite an existing file')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
The beacon (one of --beacon / --beacon-public-key, and one of --beacon-peer-id /
--beacon-peer-key) coordinates cross-shard transfers; the beacon process must run with that
key (qnexus beacon --key) and that libp2p identity (<data-dir>/peer.key).
Validators carry no shard: the committees of the --shard-count shards are drawn from the
genesis (stake-balanced; with equal stakes and n × shards validators each shard gets n).
The output lists which validator serves which shard: run it with qnexus node --shard <k>.

Example:
  qnexus genesis --out genesis.json --chain-id qnexus-devnet --genesis-time 1767225600000 \\
    --shard-count 2 --validator v0.json --validator v1.json:2000000 --validator v2.json --validator v3.json \\
    --beacon beacon.json --beacon-peer-key beacon-data/peer.key --account qn0123…:1000000000`,
    )
    .action(async (o: GenesisOpts) => {
      const chainId = o.chainId;
      if (!o.force && existsSync(o.out)) throw new CliError('FILE_EXISTS', `genesis file ${o.out} already exists (pass --force to overwrite it)`);
      const genesisTime = o.genesisTime ?? Math.floor(Date.now() / 1000) * 1000;
      const validators = [];
      for (const v of o.validator) {
        const keystore = await readKeystoreFile(v.keystore);
        validators.push({ keystore, source: v.keystore, stake: v.stake ?? DEFAULT_VALIDATOR_STAKE });
      }
      const beacon = await beaconSpec(o);
      const g = buildGenesis({
        chainId,
        scheme: o.scheme,
        genesisTime,
        slotMs: o.slotMs,
        epochLength: o.epochLength,
        shardCount: o.shardCount,
        minFee: o.minFee,
        maxBlockTxs: o.maxBlockTxs,
        xferTimeoutSlots: o.xferTimeoutSlots,
        staking: stakingFromOptions(o),
        beacon,
        validators,
        accounts: o.account ?? [],
      });
      const committees = genesisCommittees(g);
      await writeNewFile(o.out, genesisFileText(g), { force: o.force ?? false, what: 'genesis file' });
      const hash = genesisHashHex(g);
      if (o.genesisTime === undefined) {
        note(`note: no --genesis-time given; used the current time rounded down to the second: ${genesisTime} (${new Date(genesisTime).toISOString()})`);
      }
      if (o.json) {
        out(
          JSON.stringify({
            file: o.out,
            chainId: g.chainId,
            genesisHash: hash,
            genesisTime: g.genesisTime,
            shardCount: g.shardCount,
            validators: g.validators.length,
            accounts: g.accounts.length,
            beaconPeerId: g.beacon.peerId,
            xferTimeoutSlots: g.xferTimeoutSlots,
            committees: committees.map((c) => ({ shard: c.shard, validators: c.validators.map((v) => v.address) })),
          }),
        );
        return;
      }
      let stake = 0n;
      for (const v of g.validators) stake += v.stake;
      let supply = 0n;
      for (const a of g.accounts) supply += a.balance;
      const source = new Map(validators.map((v) => [v.keystore.address, v.source]));
      out(`file          ${o.out}`);
      out(`chain id      ${g.chainId} (${g.scheme}, ${g.shardCount} shard${g.shardCount === 1 ? '' : 's'})`);
      out(`genesis hash  ${hash}`);
      out(`genesis time  ${g.genesisTime} (${new Date(g.genesisTime).toISOString()})`);
      out(`validators    ${g.validators.length} (total stake ${stake})`);
      out(`accounts      ${g.accounts.length} (total balance ${supply})`);
      out(`beacon        peer ${g.beacon.peerId} (key ${beacon.source})`);
      out(`xfer timeout  ${g.xferTimeoutSlots} slots`);
      out('committees (run each validator with qnexus node --shard <shard>)');
      const rows = committees.flatMap((c) => c.validators.map((v) => [`shard ${c.shard}`, v.address, String(v.stake), source.get(v.address) ?? '']));
      for (const line of table(rows, '  ')) out(line);
    });
}

/** The staking parameters given on the command line (the rest take genesis defaults). */
export function stakingFromOptions(o: Partial<Record<keyof GenesisStaking, bigint | number | undefined>>): Partial<GenesisStaking> {
  const out: Record<string, bigint | number> = {};
  for (const k of Object.keys(DEFAULT_STAKING) as (keyof GenesisStaking)[]) {
    const v = o[k];
    if (v !== undefined) out[k] = v;
  }
  return out as Partial<GenesisStaking>;
}
