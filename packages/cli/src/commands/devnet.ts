import { Command, Option } from 'commander';
import { join } from 'node:path';
import { DEFAULT_SCHEME, type SchemeName } from '@qnexus/crypto';
import type { LogFormat } from '@qnexus/node';
import { DEVNET_DEFAULTS, MAX_DEVNET_SHARDS, startDevnet, type Devnet, type DevnetEvent } from '../devnet.js';
import { CliError, EXIT } from '../errors.js';
import { displayPath, intParser, note, out, parseChainId, parseScheme, table } from '../util.js';

interface DevnetCmdOpts {
  shards: number;
  validators: number;
  fullNodes: number;
  dir: string;
  reset?: boolean;
  basePort: number;
  slotMs: number;
  scheme: SchemeName;
  accounts: number;
  chainId: string;
  logFormat: LogFormat;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  readyTimeout: number;
}

function printSummary(d: Devnet): void {
  const m = d.manifest;
  const g = d.genesis;
  out(`Quantum Nexus devnet ${d.resumed ? 'resumed' : 'created'}: chain ${m.chainId} (${g.scheme}, slot ${g.slotMs} ms)`);
  out(`  directory   ${displayPath(d.dir)}`);
  out(`  genesis     ${displayPath(m.genesis)} (hash ${m.genesisHash}, slot 0 at ${new Date(g.genesisTime).toISOString()})`);
  out(`  passphrase  ${displayPath(m.passphraseFile)} (unlocks every devnet keystore; they use scrypt N=2^${Math.log2(d.scryptN)})`);
  out(`  manifest    ${displayPath(d.manifestPath)}`);
  out('');
  const sharded = g.shardCount > 1;
  const nodeRows = m.processes.map((p) => ({ shard: p.shard, row: [p.name, p.role, String(p.pid ?? '-'), p.apiUrl, p.multiaddr] }));
  if (!sharded) {
    out('  nodes');
    for (const line of table([['NAME', 'ROLE', 'PID', 'API', 'P2P'], ...nodeRows.map((r) => r.row)], '    ')) out(line);
  } else {
    out(`  nodes (${g.shardCount} shards; a shard's validators are its committee, every node keeps only its shard's chain and state)`);
    for (const line of shardTable(g.shardCount, ['NAME', 'ROLE', 'PID', 'API', 'P2P'], nodeRows)) out(line);
  }
  out(`    logs: ${displayPath(join(d.dir, 'logs'))}/<name>.log`);
  out('');
  if (m.accounts.length > 0) {
    const accountRows = m.accounts.map((a) => ({ shard: a.shard, row: [a.address, a.balance, displayPath(a.keystore)] }));
    if (!sharded) {
      out(`  funded accounts (keystores unlock with ${displayPath(m.passphraseFile)})`);
      for (const line of table(accountRows.map((r) => r.row), '    ')) out(line);
    } else {
      out(`  funded accounts by home shard (send an account's transactions to a node of its shard; keystores unlock with ${displayPath(m.passphraseFile)})`);
      for (const line of shardTable(g.shardCount, null, accountRows)) out(line);
    }
    out('');
    // A node and two accounts of one shard (the first with two accounts, else the first with one).
    const of = (k: number) => m.accounts.filter((a) => a.shard === k);
    const shards = [...new Set(m.accounts.map((a) => a.shard))].sort((a, b) => a - b);
    const k = shards.find((x) => of(x).length >= 2) ?? shards[0]!;
    const [from, to = from] = of(k);
    const api = m.processes.find((p) => p.shard === k)?.apiUrl ?? m.processes[0]?.apiUrl ?? '';
    out(`  try (from the repository; \`npm run qnexus --\` runs the CLI${sharded ? `; a node and accounts of shard ${k}` : ''})`);
    out(`    npm run qnexus -- status --node ${api}`);
    out(
      `    npm run qnexus -- tx transfer --node ${api} --keystore ${displayPath(from!.keystore)} ` +
        `--passphrase-file ${displayPath(m.passphraseFile)} --to ${to!.address} --amount 1000 --wait`,
    );
    out('');
  }
  out('Ctrl-C stops every node.');
}

/** A table grouped under `shard <k>` headings; the columns line up across the groups. */
function shardTable(shardCount: number, header: string[] | null, rows: { shard: number; row: string[] }[]): string[] {
  const ordered = [...rows].sort((a, b) => a.shard - b.shard); // stable: keeps the order within a shard
  const lines = table([...(header ? [header] : []), ...ordered.map((r) => r.row)], '      ');
  const head = header ? lines.shift()! : null;
  const out: string[] = [];
  for (let k = 0; k < shardCount; k++) {
    out.push(`    shard ${k}`);
    if (head !== null) out.push(head);
    let any = false;
    ordered.forEach((r, i) => {
      if (r.shard !== k) return;
      out.push(lines[i]!);
      any = true;
    });
    if (!any) out.push('      (none)');
  }
  return out;
}

export function devnetCommand(parent: Command): Command {
  return parent
    .command('devnet')
    .description('run a local multi-process devnet: validators and full nodes, each its own OS process')
    .option('--shards <n>', 'shards, each with its own validators, full nodes and accounts', intParser(1, MAX_DEVNET_SHARDS), DEVNET_DEFAULTS.shards)
    .option('--validators <n>', 'validators per shard', intParser(1, 100), DEVNET_DEFAULTS.validators)
    .option('--full-nodes <n>', 'full nodes per shard', intParser(0, 99), DEVNET_DEFAULTS.fullNodes)
    .option('--accounts <n>', 'funded test accounts per shard', intParser(0, 10_000), DEVNET_DEFAULTS.accounts)
    .option('--dir <dir>', 'devnet directory (keys, genesis, node data, logs, manifest)', DEVNET_DEFAULTS.dir)
    .option('--reset', 'delete the devnet directory first and create a new devnet')
    .option('--base-port <port>', 'node i gets p2p port base+i and API port base+100+i (i counts shard by shard, validators first)', intParser(1, 65335), DEVNET_DEFAULTS.basePort)
    .option('--slot-ms <ms>', 'slot (round) length', intParser(50, 600_000), DEVNET_DEFAULTS.slotMs)
    .option('--scheme <scheme>', 'ML-DSA parameter set', parseScheme, DEFAULT_SCHEME)
    .option('--chain-id <id>', 'chain id', parseChainId, DEVNET_DEFAULTS.chainId)
    .addOption(new Option('--log-format <format>', 'format of the node log files').choices(['pretty', 'json']).default(DEVNET_DEFAULTS.logFormat))
    .addOption(new Option('--log-level <level>', 'node log level').choices(['debug', 'info', 'warn', 'error']).default(DEVNET_DEFAULTS.logLevel))
    .addOption(new Option('--ready-timeout <seconds>', 'how long each node may take to answer /v1/status').argParser(intParser(1, 3600)).default(30))
    .addHelpText(
      'after',
      `
If <dir>/genesis.json exists the devnet is resumed (same keys, genesis, shards, data and ports;
--shards/--validators/--full-nodes/--accounts/--scheme/--chain-id/--slot-ms are then ignored).
Otherwise it creates keys/validator-<i>.json and keys/account-<i>.json (random passphrase
in <dir>/passphrase, mode 0600; scrypt N=2^14 because devnet keys are throwaway), a genesis
(stake ${DEVNET_DEFAULTS.validatorStake} per validator, ${DEVNET_DEFAULTS.accountBalance} per account, slot 0 about 2 s after
the start) and nodes/<name>/ data dirs. Each node logs to <dir>/logs/<name>.log; the
console only shows the summary and unexpected exits. <dir>/manifest.json describes the
running processes. Ctrl-C or SIGTERM stops all nodes (SIGKILL after 10 s) and exits 0.

With --shards S > 1 the genesis has S shards; shard k gets --validators validators (its
committee), --full-nodes full nodes, all run with --shard k and named s<k>-validator-<i> and
s<k>-full-<j>, and --accounts funded accounts whose home shard is k (keys/s<k>-account-<i>.json).
The shards are independent chains for now: send a transaction to a node of its sender's shard.
At most 100 nodes in all (S × (validators + full nodes)).`,
    )
    .action(async (o: DevnetCmdOpts) => {
      const abort = new AbortController();
      let devnet: Devnet | undefined;
      let signals = 0;
      let shutdown: (() => void) | undefined;
      const onSignal = () => {
        signals++;
        if (signals > 1) {
          note('second interrupt: killing every node');
          if (devnet) for (const p of devnet.manifest.processes) if (p.pid !== null) devnet.kill(p.name, 'SIGKILL').catch(() => undefined);
          setTimeout(() => process.exit(EXIT.INTERRUPTED), 500).unref();
          return;
        }
        abort.abort();
        shutdown?.();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);

      const onEvent = (e: DevnetEvent) => {
        if (e.type !== 'exit' || e.expected) return;
        note(`${e.name} exited unexpectedly (${e.signal ? `signal ${e.signal}` : `code ${e.code}`}); log: ${displayPath(e.logFile)}`);
        if (devnet && devnet.manifest.processes.every((p) => p.pid === null)) {
          note('every node has exited; stopping the devnet');
          shutdown?.();
        }
      };

      note(`starting devnet in ${displayPath(o.dir)}…`);
      devnet = await startDevnet({
        dir: o.dir,
        shards: o.shards,
        validators: o.validators,
        fullNodes: o.fullNodes,
        accounts: o.accounts,
        reset: o.reset ?? false,
        basePort: o.basePort,
        slotMs: o.slotMs,
        scheme: o.scheme,
        chainId: o.chainId,
        logFormat: o.logFormat,
        logLevel: o.logLevel,
        readyTimeoutMs: o.readyTimeout * 1000,
        signal: abort.signal,
        onEvent,
      });
      if (devnet.resumed) note('resuming the existing devnet (creation options are ignored)');
      printSummary(devnet);

      const crashed = await new Promise<boolean>((resolveRun) => {
        shutdown = () => resolveRun(signals === 0);
        if (abort.signal.aborted) resolveRun(false);
      });
      note('stopping the devnet…');
      await devnet.stop();
      note('devnet stopped');
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (crashed) throw new CliError('DEVNET_DOWN', 'every node exited; see the logs above');
    });
}
