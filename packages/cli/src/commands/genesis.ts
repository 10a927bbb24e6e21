import { Option, type Command } from 'commander';
import { existsSync } from 'node:fs';
import { DEFAULT_SCHEME, type SchemeName } from '@qnexus/crypto';
import type { GenesisAccount } from '@qnexus/types';
import { CliError } from '../errors.js';
import { DEFAULT_VALIDATOR_STAKE, buildGenesis, genesisFileText, genesisHashHex, parseAccountSpec, parseValidatorSpec, type ValidatorSpec } from '../genesis.js';
import { readKeystoreFile } from '../keystore.js';
import { collect, intParser, note, out, parseChainId, parseScheme, parseU64, writeNewFile } from '../util.js';

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
  force?: boolean;
  json?: boolean;
}

export function genesisCommand(parent: Command): Command {
  return parent
    .command('genesis')
    .description('write a canonical genesis file (same flags → byte-identical file)')
    .requiredOption('-o, --out <file>', 'genesis file to write')
    .requiredOption('--chain-id <id>', 'chain id, [a-z0-9][a-z0-9-]{0,63}', parseChainId)
    .requiredOption(
      '--validator <keystore.json[:stake[:shard]]>',
      `validator keystore (only its public part is read; no passphrase) with optional stake (default ${DEFAULT_VALIDATOR_STAKE}) and shard (default: round-robin over --shard-count in flag order); repeatable`,
      collect(parseValidatorSpec),
    )
    .option('--account <address:balance>', 'funded account; repeatable', collect(parseAccountSpec))
    .option('--scheme <scheme>', 'ML-DSA parameter set of the chain: ml-dsa-44, ml-dsa-65 or ml-dsa-87', parseScheme, DEFAULT_SCHEME)
    .option('--slot-ms <ms>', 'slot (round) length in milliseconds', intParser(50, 600_000), 1000)
    .option('--epoch-length <slots>', 'slots per epoch', intParser(1, 1_000_000), 32)
    .option('--genesis-time <unix-ms>', 'start of slot 0 in Unix milliseconds (default: now, rounded down to the second)', intParser(0, 8.64e15))
    .addOption(new Option('--min-fee <n>', 'smallest fee a transaction may pay').argParser(parseU64).default(1n, '1'))
    .option('--max-block-txs <n>', 'most transactions per block', intParser(1, 10_000), 2000)
    .option('--shard-count <n>', 'number of shards', intParser(1, 64), 1)
    .option('-f, --force', 'overwrite an existing file')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nExample:\n' +
        '  qnexus genesis --out genesis.json --chain-id qnexus-devnet --genesis-time 1767225600000 \\\n' +
        '    --validator v0.json --validator v1.json:2000000 --account qn0123…:1000000000',
    )
    .action(async (o: GenesisOpts) => {
      const chainId = o.chainId;
      if (!o.force && existsSync(o.out)) throw new CliError('FILE_EXISTS', `genesis file ${o.out} already exists (pass --force to overwrite it)`);
      const genesisTime = o.genesisTime ?? Math.floor(Date.now() / 1000) * 1000;
      const validators = [];
      for (const [i, v] of o.validator.entries()) {
        const keystore = await readKeystoreFile(v.keystore);
        validators.push({ keystore, source: v.keystore, stake: v.stake ?? DEFAULT_VALIDATOR_STAKE, shard: v.shard ?? i % o.shardCount });
      }
      const g = buildGenesis({
        chainId,
        scheme: o.scheme,
        genesisTime,
        slotMs: o.slotMs,
        epochLength: o.epochLength,
        shardCount: o.shardCount,
        minFee: o.minFee,
        maxBlockTxs: o.maxBlockTxs,
        validators,
        accounts: o.account ?? [],
      });
      await writeNewFile(o.out, genesisFileText(g), { force: o.force ?? false, what: 'genesis file' });
      const hash = genesisHashHex(g);
      if (o.genesisTime === undefined) {
        note(`note: no --genesis-time given; used the current time rounded down to the second: ${genesisTime} (${new Date(genesisTime).toISOString()})`);
      }
      if (o.json) {
        out(JSON.stringify({ file: o.out, chainId: g.chainId, genesisHash: hash, genesisTime: g.genesisTime, validators: g.validators.length, accounts: g.accounts.length }));
        return;
      }
      let stake = 0n;
      for (const v of g.validators) stake += v.stake;
      let supply = 0n;
      for (const a of g.accounts) supply += a.balance;
      out(`file          ${o.out}`);
      out(`chain id      ${g.chainId} (${g.scheme}, ${g.shardCount} shard${g.shardCount === 1 ? '' : 's'})`);
      out(`genesis hash  ${hash}`);
      out(`genesis time  ${g.genesisTime} (${new Date(g.genesisTime).toISOString()})`);
      out(`validators    ${g.validators.length} (total stake ${stake})`);
      out(`accounts      ${g.accounts.length} (total balance ${supply})`);
    });
}
