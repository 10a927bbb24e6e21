import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BACKEND_CHOICES, DEFAULT_SCHEME, formatAddress, type BackendChoice, type SchemeName } from '@qnexus/crypto';
import { moduleAccount } from '@qnexus/state';
import type { LogFormat } from '@qnexus/runtime';
import { QnexusClient } from '@qnexus/sdk';
import {
  DEVNET_DEFAULTS,
  MAX_DEVNET_NODES,
  MAX_DEVNET_SHARDS,
  describeExit,
  devnetJoinArgs,
  parsePublicHost,
  publicMultiaddr,
  readDevnetManifest,
  requestDevnetRestart,
  shellWord,
  startDevnet,
  type Devnet,
  type DevnetEvent,
} from '../devnet.js';
import { initDevnetConfig } from '../devnet-init.js';
import { DEFAULT_EMPTY_BLOCK_INTERVAL } from './node.js';
import { CliError, EXIT, usageError } from '../errors.js';
import type { HostMode } from '../topology.js';
import { collectList, displayPath, intParser, note, out, parseChainId, parseScheme, table } from '../util.js';

interface DevnetCmdOpts {
  shards: number;
  validators: number;
  fullNodes: number;
  xferTimeoutSlots: number;
  dir: string;
  reset?: boolean;
  basePort: number;
  slotMs: number;
  scheme: SchemeName;
  accounts: number;
  chainId: string;
  logFormat: LogFormat;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  cryptoBackend?: BackendChoice;
  emptyBlockInterval?: number;
  readyTimeout: number;
  epochLength: number;
  unbondingEpochs?: number;
  churnLimit?: number;
  hostMode: HostMode;
  genesisDelay?: number;
  publicHost?: string;
  supervise: boolean;
  json?: boolean;
  follow?: boolean;
  lines: number;
  module?: string[];
}

/** Balances to show in the summary: read from the nodes when resuming (the genesis ones are long gone), else the genesis ones. */
type Balances = { source: 'now' | 'genesis'; of: Map<string, string> };

function printSummary(d: Devnet, balances: Balances, supervised: boolean): void {
  const m = d.manifest;
  const g = d.genesis;
  const P = displayPath(m.passphraseFile);
  out(
    `Quantum Nexus devnet ${d.resumed ? 'resumed' : 'created'}: chain ${m.chainId} (${g.scheme}, ${g.shardCount} shard${g.shardCount === 1 ? '' : 's'}, ` +
      `slot ${g.slotMs} ms, cross-shard timeout ${g.xferTimeoutSlots} slots)`,
  );
  out(`  directory   ${displayPath(d.dir)}`);
  out(`  genesis     ${displayPath(m.genesis)} (hash ${m.genesisHash}, slot 0 at ${new Date(g.genesisTime).toISOString()})`);
  out(`  passphrase  ${P} (unlocks every devnet keystore; they use scrypt N=2^${Math.log2(d.scryptN)})`);
  out(`  manifest    ${displayPath(d.manifestPath)}`);
  if (m.modules?.length) out(`  modules     ${m.modules.map(displayPath).join(', ')} (loaded by every process)`);
  out('');
  const shardTitles = Array.from({ length: g.shardCount }, (_, k) => `shard ${k}`);
  // With a public host the P2P column shows what other machines dial.
  const nodeRows = m.processes.map((p) => ({ group: p.shard === null ? 'beacon' : `shard ${p.shard}`, row: [p.name, p.role, String(p.pid ?? '-'), p.apiUrl, p.multiaddrs.at(-1) ?? p.multiaddr] }));
  out(`  processes (the beacon coordinates cross-shard transfers; each shard's validators are the committee the genesis assigns it)`);
  for (const line of groupedTable(['beacon', ...shardTitles], ['NAME', 'ROLE', 'PID', 'API', 'P2P'], nodeRows)) out(line);
  out(`    logs: ${displayPath(join(d.dir, 'logs'))}/<name>.log   (npx qnexus devnet logs <name> -f${found(d) ? '' : ` --dir ${displayPath(d.dir)}`})`);
  // The explorer: the beacon's network page, and one node's per shard (at the public host when there is one).
  const at = (p: { apiUrl: string; apiPort: number }) => (m.publicHost ? `http://${m.publicHost}:${p.apiPort}` : p.apiUrl);
  out(`  explorer    ${at(m.beacon)}/explorer   (network: every shard's head, lag, cross-shard flows)`);
  for (let k = 0; k < g.shardCount; k++) {
    const node = m.processes.find((p) => p.shard === k);
    if (node) out(`              ${at(node)}/explorer   (shard ${k}: search, blocks, txs, accounts)`);
  }
  // The devnet's on-ramp: any address (of any shard) can ask the faucet through any node.
  const faucet = formatAddress(moduleAccount('faucet'));
  if (g.accounts.some((a) => a.address === faucet)) {
    out(`  faucet      npx qnexus faucet <address>   (coins for any address, through any node; rate-limited per address; also the explorer's Faucet button)`);
  }
  out('');
  if (m.publicHost) printJoin(d);
  const beacon = m.processes.find((p) => p.role === 'beacon');
  if (m.accounts.length > 0) {
    out(`  funded accounts by home shard (send an account's transactions to a node of its shard; keystores unlock with ${P})`);
    const accountRows = m.accounts.map((a) => ({ group: `shard ${a.shard}`, row: [a.address, balances.of.get(a.address) ?? `${a.balance} (genesis)`, displayPath(a.keystore)] }));
    const balanceTitle = balances.source === 'now' ? 'BALANCE (NOW)' : 'BALANCE (GENESIS)';
    for (const line of groupedTable(shardTitles, ['ADDRESS', balanceTitle, 'KEYSTORE'], accountRows)) out(line);
    out('');
    // A node and two accounts of one shard (the first with two accounts, else the first with one),
    // and an account of another shard for a cross-shard transfer.
    const of = (k: number) => m.accounts.filter((a) => a.shard === k);
    const shards = [...new Set(m.accounts.map((a) => a.shard))].sort((a, b) => a - b);
    const k = shards.find((x) => of(x).length >= 2) ?? shards[0]!;
    const [from, to = from] = of(k);
    const other = m.accounts.find((a) => a.shard !== k);
    const api = m.processes.find((p) => p.shard === k)?.apiUrl ?? '';
    // In the repository with the default --dir the CLI finds this devnet by itself (its manifest:
    // a node of the keystore's home shard, the devnet's passphrase); elsewhere it needs them named.
    const here = found(d);
    out(`  try (\`npx qnexus\` runs this repository's CLI; accounts of shard ${k}${here ? '; it finds this devnet by itself' : ''})`);
    out(`    npx qnexus status${here ? '' : ` --node ${api}`}`);
    const common = here ? `--keystore ${displayPath(from!.keystore)}` : `--node ${api} --keystore ${displayPath(from!.keystore)} --passphrase-file ${P}`;
    out(`    npx qnexus tx transfer ${common} --to ${to!.address} --amount 1000 --wait`);
    if (other) out(`    npx qnexus tx xtransfer ${common} --to ${other.address} --amount 1000${here ? '' : ` --beacon ${beacon?.apiUrl ?? ''}`} --wait`);
    if (beacon) out(`    curl -s ${beacon.apiUrl}/v1/xtransfers?limit=5`);
    if (beacon) out(`    npx qnexus validators${here ? '' : ` --node ${beacon.apiUrl}`}          # stake, status, shard, rewards (staking: devnet/README.md)`);
    out('');
  }
  out(
    supervised
      ? 'Ctrl-C stops every process; a process that exits on its own is restarted (with backoff). From another terminal: npx qnexus devnet status|logs <name>|restart <name>'
      : 'Ctrl-C stops every process.',
  );
}

/** The lines another machine needs to join: copy the genesis, then one `qnexus node` per shard. */
function printJoin(d: Devnet): void {
  const m = d.manifest;
  const host = m.publicHost!;
  out(`  join from another machine (this one is ${host}; a clone of this repository there, after npm ci):`);
  out(`    scp ${host}:${m.genesis} genesis.json        # or copy ${displayPath(m.genesis)} there any other way`);
  for (const f of m.modules ?? []) out(`    scp ${host}:${f} .        # the chain's module (--module): every node runs it`);
  for (let k = 0; k < d.genesis.shardCount; k++) {
    out(`    npx qnexus node ${devnetJoinArgs(m, k).map(shellWord).join(' ')}`);
  }
  out(`  add --public-host <its address> to let others dial it too; APIs: http://${host}:<port> (e.g. http://${host}:${m.beacon.apiPort} for the beacon)`);
  out(`  beacon p2p: ${publicMultiaddr(host, m.beacon.p2pPort)}/p2p/${m.beacon.peerId}`);
  out('');
}

/** Current balances, each from a node of the account's home shard; an account that cannot be read keeps its genesis balance (marked). */
async function currentBalances(d: Devnet): Promise<Balances> {
  const m = d.manifest;
  if (!d.resumed) return { source: 'genesis', of: new Map(m.accounts.map((a) => [a.address, a.balance])) };
  const of = new Map<string, string>();
  await Promise.all(
    m.accounts.map(async (a) => {
      const node = m.processes.find((p) => p.shard === a.shard && p.pid !== null);
      if (!node) return;
      try {
        of.set(a.address, (await new QnexusClient(node.apiUrl, { timeoutMs: 3000 }).account(a.address)).balance);
      } catch {
        // shown with its genesis balance, marked as such
      }
    }),
  );
  return { source: 'now', of };
}

/** A table under group headings (`beacon`, `shard <k>`…), its header under the first; the columns line up across the groups. */
function groupedTable(groups: string[], header: string[], rows: { group: string; row: string[] }[]): string[] {
  const ordered = groups.flatMap((g) => rows.filter((r) => r.group === g));
  const lines = table([header, ...ordered.map((r) => r.row)], '      ');
  const head = lines.shift()!;
  const res: string[] = [];
  for (const [n, g] of groups.entries()) {
    res.push(`    ${g}`);
    if (n === 0) res.push(head);
    let any = false;
    ordered.forEach((r, i) => {
      if (r.group !== g) return;
      res.push(lines[i]!);
      any = true;
    });
    if (!any) res.push('      (none)');
  }
  return res;
}

export function devnetCommand(parent: Command): Command {
  const cmd = parent
    .command('devnet')
    .argument('[action]', 'init: only create the configuration (keys, genesis, libp2p keys, topology.json) in --dir, start nothing; status, restart <name>, logs <name>: a running devnet')
    .argument('[name]', 'the process of restart and logs (validator-0, s1-full-0, beacon…)')
    .description('run a local multi-process devnet: a beacon plus validators and full nodes per shard, each its own OS process')
    .option('--shards <n>', 'shards, each with its own validators, full nodes and accounts', intParser(1, MAX_DEVNET_SHARDS), DEVNET_DEFAULTS.shards)
    .option('--validators <n>', 'validators per shard (its committee)', intParser(1, MAX_DEVNET_NODES), DEVNET_DEFAULTS.validators)
    .option('--full-nodes <n>', 'full nodes per shard', intParser(0, MAX_DEVNET_NODES), DEVNET_DEFAULTS.fullNodes)
    .option('--xfer-timeout-slots <n>', 'slots within which a cross-shard transfer must be decided, else the beacon aborts it', intParser(2, 1_000_000), DEVNET_DEFAULTS.xferTimeoutSlots)
    .option('--accounts <n>', 'funded test accounts per shard', intParser(0, 10_000), DEVNET_DEFAULTS.accounts)
    .option('--dir <dir>', 'devnet directory (keys, genesis, node data, logs, manifest)', DEVNET_DEFAULTS.dir)
    .option('--reset', 'delete the devnet directory first and create a new devnet')
    .option('--base-port <port>', 'node i gets p2p port base+i and API port base+100+i (i counts shard by shard, validators first); the beacon base+99 and base+199', intParser(1, 65335), DEVNET_DEFAULTS.basePort)
    .option('--slot-ms <ms>', 'slot (round) length', intParser(50, 600_000), DEVNET_DEFAULTS.slotMs)
    .option('--epoch-length <slots>', 'slots per epoch (committees change and rewards are paid at epoch boundaries)', intParser(2, 1_000_000), DEVNET_DEFAULTS.epochLength)
    .option('--unbonding-epochs <n>', 'genesis staking.unbondingEpochs: epochs an unstaked validator waits for its funds', intParser(0, 1_000_000))
    .option('--churn-limit <n>', 'genesis staking.churnLimit: validators joining plus leaving the committees per epoch', intParser(1, 1024))
    .option('--scheme <scheme>', 'ML-DSA parameter set', parseScheme, DEFAULT_SCHEME)
    .option('--chain-id <id>', 'chain id', parseChainId, DEVNET_DEFAULTS.chainId)
    .addOption(new Option('--log-format <format>', 'format of the node and beacon log files').choices(['pretty', 'json']).default(DEVNET_DEFAULTS.logFormat))
    .addOption(new Option('--log-level <level>', 'node and beacon log level').choices(['debug', 'info', 'warn', 'error']).default(DEVNET_DEFAULTS.logLevel))
    .addOption(
      new Option('--crypto-backend <name>', 'ML-DSA implementation of every node and the beacon (--crypto-backend of qnexus node/beacon; default auto: pqclean where it loads, else noble); pqclean must be installed when named').choices([...BACKEND_CHOICES]),
    )
    .option('--empty-block-interval <slots>', `every node's --empty-block-interval: an idle shard proposes an empty block only this often and is quiet in between; 1: a block every slot (default: the nodes' own, ${DEFAULT_EMPTY_BLOCK_INTERVAL})`, intParser(1, 1_000))
    .addOption(new Option('--ready-timeout <seconds>', 'how long each process may take to answer /v1/status').argParser(intParser(1, 3600)).default(30))
    .addHelpText(
      'after',
      `
Starts one beacon (the coordinator of cross-shard transfers, named beacon) and S shards of
--validators validators and --full-nodes full nodes each; every process is a separate OS
process. Defaults: ${DEVNET_DEFAULTS.shards} shards × (${DEVNET_DEFAULTS.validators} validators + ${DEVNET_DEFAULTS.fullNodes} full node) + the beacon.

If <dir>/genesis.json exists the devnet is resumed (same keys, genesis, shards, data and ports;
--shards/--validators/--full-nodes/--accounts/--xfer-timeout-slots/--scheme/--chain-id/--slot-ms,
--epoch-length/--unbonding-epochs/--churn-limit are then ignored). Otherwise it creates the beacon's keystore and libp2p key (nodes/beacon/),
S × --validators validator keys, --accounts funded accounts per shard whose home shard it is
(random passphrase in <dir>/passphrase, mode 0600; scrypt N=2^14 because devnet keys are
throwaway), a genesis (stake ${DEVNET_DEFAULTS.validatorStake} per validator, ${DEVNET_DEFAULTS.accountBalance} per account, slot 0 about 2 s
after the start) and nodes/<name>/ data dirs. The genesis assigns the validators to the shard
committees (equal stakes: --validators each); the i-th validator (by address) of shard k is
s<k>-validator-<i> (keys/s<k>-validator-<i>.json) and runs with --shard k, as do s<k>-full-<j>;
accounts are keys/s<k>-account-<i>.json. With --shards 1 the names are validator-<i>, full-<j>
and keys/account-<i>.json. Every node bootstraps from the beacon and its shard's other nodes.

The beacon starts first. Each process logs to <dir>/logs/<name>.log; the console only shows the
summary, unexpected exits and restarts. A process that exits on its own is restarted after 1 s,
doubling to 30 s while it keeps failing within 60 s of starting; after 5 such failures in a row it
is left down (--no-supervise: never restarted). <dir>/manifest.json describes the processes; a
manifest whose launcherPid is not alive is read as stopped. Ctrl-C, SIGTERM or SIGHUP stops them
all (SIGKILL after 10 s) and exits 0. At most 99 shard nodes in all (S × (validators + full nodes)).

--public-host <ip-or-name> hosts a devnet other machines can join: every p2p and API socket
listens on 0.0.0.0 and announces that address; the summary prints the join command (a launch
option: give it again when resuming). Without it everything is on 127.0.0.1.

Against a running devnet (another terminal; --dir as when it was started):
  qnexus devnet status [--json]       each process: alive/stopped/exited, pid, API, height, restarts
  qnexus devnet logs <name> [-n N] [-f]   its log file (the last N lines, then follow)
  qnexus devnet restart <name>        the launcher restarts it (also one it gave up on)

\`qnexus devnet init --dir <dir> [--host-mode compose|local]\` only creates the configuration (the
same keys, genesis and nodes/<name>/peer.key) plus <dir>/topology.json (every process's name, role,
shard, peer id, ports and the multiaddr its peers dial) and starts nothing; an existing topology.json
is kept. Start each process by hand with
  qnexus node --data-dir <data> --peer-key <dir>/nodes/<name>/peer.key --bootstrap-file <dir>/topology.json …
(docker-compose.yml does exactly that; docs/devnet.md).`,
    )
    .addOption(new Option('--host-mode <mode>', 'init: how peers reach each process: compose (container = service name, /dns4/<name>/tcp/<port>) or local (127.0.0.1)').choices(['compose', 'local']).default('local'))
    .option('--public-host <ip-or-name>', "host a devnet other machines can join: every p2p and API socket listens on 0.0.0.0 and announces this address (this machine's, as they reach it); the summary prints the join command", parsePublicHost)
    .option('--no-supervise', 'do not restart a process that exits on its own')
    .option(
      '--module <file.js>',
      'load an app module under development into every process (an ES module whose default export is (keepers) => Module); repeatable or comma-separated; the genesis names it and the manifest keeps it for resume and restart',
      collectList((v) => v),
    )
    .option('--json', 'status: print JSON')
    .option('-f, --follow', 'logs: keep printing what is appended')
    .option('-n, --lines <n>', 'logs: how many last lines to print first', intParser(0, 100_000), 40)
    .option('--genesis-delay <seconds>', 'slot 0 starts this long after the configuration is made (default 2; with init 10, time for the processes to start)', intParser(0, 86_400))
    .action(async (action: string | undefined, name: string | undefined, o: DevnetCmdOpts) => {
      if (action === 'init') return devnetInit(o);
      if (action === 'status') return devnetStatus(o);
      if (action === 'restart' || action === 'logs') {
        if (name === undefined) throw usageError(`devnet ${action} needs a process name (devnet status lists them)`);
        return action === 'restart' ? devnetRestart(o, name) : devnetLogs(o, name);
      }
      if (action !== undefined) throw usageError(`unknown devnet action ${JSON.stringify(action)} (expected init, status, restart <name>, logs <name>, or nothing to run a devnet)`);
      if (name !== undefined) throw usageError(`unexpected argument ${JSON.stringify(name)}`);
      const abort = new AbortController();
      let devnet: Devnet | undefined;
      let signals = 0;
      let shutdown: (() => void) | undefined;
      const onSignal = () => {
        signals++;
        if (signals > 1) {
          note('second interrupt: killing every process');
          if (devnet) for (const p of devnet.manifest.processes) if (p.pid !== null) devnet.kill(p.name, 'SIGKILL').catch(() => undefined);
          setTimeout(() => process.exit(EXIT.INTERRUPTED), 500).unref();
          return;
        }
        abort.abort();
        shutdown?.();
      };
      // A closed terminal (SIGHUP) stops the devnet like Ctrl-C; a reader of stdout that went
      // away (`npm run devnet | tee log`, then Ctrl-C) must not crash the launcher with EPIPE
      // before it has stopped the processes and recorded that in the manifest.
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      process.on('SIGHUP', onSignal);
      const onStdoutError = () => undefined;
      process.stdout.on('error', onStdoutError);
      // Whatever else ends this process (an uncaught error…), the manifest must not claim that
      // processes run: they stop by themselves once our stdin pipe to them closes.
      const onExit = () => devnet?.markGoneSync();
      process.on('exit', onExit);
      let serving = Promise.resolve();
      const onRestartRequest = () => {
        serving = serving.then(async () => {
          if (!devnet) return;
          try {
            const names = await devnet.serveRestartRequests();
            for (const n of names) note(`${n} restarted on request (pid ${devnet.process(n).pid ?? '-'})`);
          } catch (e) {
            note(`a requested restart failed: ${(e as Error).message.split('\n')[0]}`);
          }
        });
      };
      process.on('SIGUSR2', onRestartRequest);

      const allDown = () => devnet !== undefined && devnet.manifest.processes.every((p) => p.pid === null) && devnet.pendingRestarts().length === 0;
      // An exit and the restart it schedules come in the same tick: one line, e.g.
      // "s0-validator-2 was killed by SIGKILL; restarting in 1 s (restart 1); log: …".
      const exitLines = new Map<string, { text: string; log: string }>();
      const onEvent = (e: DevnetEvent) => {
        switch (e.type) {
          case 'exit': {
            if (e.expected) return;
            exitLines.set(e.name, { text: `${e.name} ${describeExit(e)}`, log: displayPath(e.logFile) });
            queueMicrotask(() => {
              const x = exitLines.get(e.name);
              if (!x) return;
              exitLines.delete(e.name);
              note(`${x.text}; log: ${x.log}`);
              if (allDown()) {
                note('every process has exited; stopping the devnet');
                shutdown?.();
              }
            });
            return;
          }
          case 'restart-scheduled': {
            const x = exitLines.get(e.name);
            exitLines.delete(e.name);
            note(x ? `${x.text}; restarting in ${formatDelay(e.delayMs)} (restart ${e.restart}); log: ${x.log}` : `restarting ${e.name} in ${formatDelay(e.delayMs)} (restart ${e.restart})`);
            return;
          }
          case 'restarted':
            note(`${e.name} is back (pid ${e.pid}, restart ${e.restart})`);
            return;
          case 'restart-failed':
            note(`restart of ${e.name} failed: ${e.error}`);
            return;
          case 'gave-up': {
            const x = exitLines.get(e.name);
            exitLines.delete(e.name);
            if (x) note(`${x.text}; log: ${x.log}`);
            note(
              `${e.name} failed ${e.failures} times in a row within ${formatDelay(e.quickFailureMs)} of starting: not restarting it again ` +
                `(see its log; npx qnexus devnet restart ${e.name} tries again)`,
            );
            break;
          }
          default:
            return;
        }
        if (allDown()) {
          note('every process has exited; stopping the devnet');
          shutdown?.();
        }
      };

      note(`starting devnet in ${displayPath(o.dir)}…`);
      devnet = await startDevnet({
        dir: o.dir,
        ...creation(o),
        reset: o.reset ?? false,
        logFormat: o.logFormat,
        logLevel: o.logLevel,
        ...(o.cryptoBackend !== undefined ? { cryptoBackend: o.cryptoBackend } : {}),
        ...(o.emptyBlockInterval !== undefined ? { emptyBlockInterval: o.emptyBlockInterval } : {}),
        readyTimeoutMs: o.readyTimeout * 1000,
        ...(o.genesisDelay !== undefined ? { genesisDelayMs: o.genesisDelay * 1000 } : {}),
        signal: abort.signal,
        onEvent,
        supervise: o.supervise,
        ...(o.publicHost !== undefined ? { publicHost: o.publicHost } : {}),
      });
      if (devnet.resumed) note('resuming the existing devnet (creation options are ignored)');
      printSummary(devnet, await currentBalances(devnet), o.supervise);

      const crashed = await new Promise<boolean>((resolveRun) => {
        shutdown = () => resolveRun(signals === 0);
        if (abort.signal.aborted) resolveRun(false);
      });
      note('stopping the devnet…');
      await devnet.stop();
      note('devnet stopped');
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onSignal);
      process.off('SIGUSR2', onRestartRequest);
      process.off('exit', onExit);
      process.stdout.off('error', onStdoutError);
      if (crashed) throw new CliError('DEVNET_DOWN', 'every node exited; see the logs above');
    });
  return cmd;
}

/** What a new devnet is made of: the flags `devnet` and `devnet init` share (ignored when resuming). */
function creation(o: DevnetCmdOpts) {
  return {
    shards: o.shards,
    validators: o.validators,
    fullNodes: o.fullNodes,
    accounts: o.accounts,
    xferTimeoutSlots: o.xferTimeoutSlots,
    basePort: o.basePort,
    slotMs: o.slotMs,
    epochLength: o.epochLength,
    staking: {
      ...(o.unbondingEpochs !== undefined ? { unbondingEpochs: o.unbondingEpochs } : {}),
      ...(o.churnLimit !== undefined ? { churnLimit: o.churnLimit } : {}),
    },
    scheme: o.scheme,
    chainId: o.chainId,
    ...(o.module?.length ? { modules: o.module } : {}),
  };
}

/** `qnexus devnet init`: the configuration of a devnet (what the compose `init` service runs), nothing started. */
async function devnetInit(o: DevnetCmdOpts): Promise<void> {
  if (o.reset) throw usageError('devnet init keeps an existing configuration; delete the directory to make a new one');
  const r = await initDevnetConfig({
    out: o.dir,
    hostMode: o.hostMode,
    ...creation(o),
    genesisDelayMs: (o.genesisDelay ?? 10) * 1000,
  });
  const t = r.topology;
  if (!r.created) note(`${displayPath(r.topologyPath)} exists: keeping that configuration (chain ${t.chainId}, genesis ${t.genesisHash})`);
  else out(`created devnet configuration in ${displayPath(o.dir)}: chain ${t.chainId}, ${t.shardCount} shard${t.shardCount === 1 ? '' : 's'}, genesis ${t.genesisHash}`);
  for (const line of table([['NAME', 'ROLE', 'SHARD', 'API', 'P2P'], ...t.processes.map((p) => [p.name, p.role, p.shard === null ? '-' : String(p.shard), p.apiUrl, p.multiaddr])], '  ')) out(line);
}

/** The devnet is in the default directory, where the CLI finds it without --dir / --node. */
function found(d: Devnet): boolean {
  return resolve(d.dir) === resolve(DEVNET_DEFAULTS.dir);
}

function formatDelay(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

/** `qnexus devnet status`: every process of the devnet in --dir, alive or not, with its height from its own /v1/status. */
async function devnetStatus(o: DevnetCmdOpts): Promise<void> {
  const { manifest: m, launcherAlive } = await readDevnetManifest(o.dir);
  const rows = await Promise.all(
    m.processes.map(async (p) => {
      let height: number | null = null;
      let answer: string | null = null;
      if (p.pid !== null) {
        const c = new QnexusClient(p.apiUrl, { timeoutMs: 2000 });
        try {
          if (p.role === 'beacon') height = (await c.beaconStatus()).slot;
          else height = (await c.status()).height;
        } catch (e) {
          answer = (e as Error).message.split('\n')[0]!;
        }
      }
      return { name: p.name, role: p.role, shard: p.shard, state: p.state, alive: p.pid !== null, pid: p.pid, api: p.apiUrl, height, apiError: answer, restarts: p.restarts ?? 0, logFile: p.logFile };
    }),
  );
  if (o.json) {
    out(JSON.stringify({ dir: o.dir, launcherPid: m.launcherPid, running: launcherAlive, publicHost: m.publicHost ?? null, processes: rows }, null, 2));
    return;
  }
  out(launcherAlive ? `devnet in ${displayPath(o.dir)}: running (launcher pid ${m.launcherPid}${m.publicHost ? `, public host ${m.publicHost}` : ''})` : `devnet in ${displayPath(o.dir)}: not running (start it with npm run devnet)`);
  const cells = rows.map((r) => [
    r.name,
    r.role,
    r.shard === null ? '-' : String(r.shard),
    r.alive ? 'alive' : r.state,
    String(r.pid ?? '-'),
    r.api,
    r.height !== null ? `${r.role === 'beacon' ? 'slot ' : ''}${r.height}` : r.apiError !== null ? `no answer (${r.apiError})` : '-',
    String(r.restarts),
  ]);
  for (const line of table([['NAME', 'ROLE', 'SHARD', 'STATE', 'PID', 'API', 'HEIGHT', 'RESTARTS'], ...cells], '  ')) out(line);
}

/** `qnexus devnet restart <name>`: the running launcher restarts it; wait until a new process answers. */
async function devnetRestart(o: DevnetCmdOpts, name: string): Promise<void> {
  const before = (await readDevnetManifest(o.dir)).manifest.processes.find((p) => p.name === name)?.pid ?? null;
  const launcher = await requestDevnetRestart(o.dir, name);
  note(`asked the launcher (pid ${launcher}) to restart ${name}…`);
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 300));
    const { manifest, launcherAlive } = await readDevnetManifest(o.dir);
    if (!launcherAlive) throw new CliError('DEVNET_NOT_RUNNING', 'the launcher stopped before the restart was done');
    const p = manifest.processes.find((x) => x.name === name)!;
    if (p.pid === null || p.pid === before) continue;
    const c = new QnexusClient(p.apiUrl, { timeoutMs: 2000 });
    try {
      if (p.role === 'beacon') await c.beaconStatus();
      else await c.status();
    } catch {
      continue;
    }
    out(`${name} restarted: pid ${p.pid}, ${p.apiUrl}`);
    return;
  }
  throw new CliError('TIMEOUT', `${name} did not answer within 90 s after the restart request; see npx qnexus devnet logs ${name}`);
}

/** `qnexus devnet logs <name> [-n N] [-f]`: the last lines of its log file; with -f what is appended, until Ctrl-C. */
async function devnetLogs(o: DevnetCmdOpts, name: string): Promise<void> {
  const { manifest } = await readDevnetManifest(o.dir);
  const p = manifest.processes.find((x) => x.name === name);
  if (!p) throw new CliError('DEVNET_UNKNOWN_NODE', `no devnet process named ${JSON.stringify(name)} (have: ${manifest.processes.map((x) => x.name).join(', ')})`);
  if (!existsSync(p.logFile)) throw new CliError('NOT_FOUND', `${name} has no log yet (${displayPath(p.logFile)})`);
  // The tail comes from at most the last 4 MiB: enough for any -n a person reads.
  const fh = await open(p.logFile, 'r');
  let pos: number;
  try {
    const { size } = await fh.stat();
    const len = Math.min(size, 4 << 20);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    const lines = buf.toString('utf8').split('\n');
    if (lines.at(-1) === '') lines.pop();
    if (o.lines > 0) process.stdout.write(`${lines.slice(-o.lines).join('\n')}\n`);
    pos = size;
  } finally {
    await fh.close();
  }
  if (!o.follow) return;
  let stopped = false;
  const onSig = () => (stopped = true);
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  process.stdout.on('error', onSig); // the reader went away (| head)
  while (!stopped) {
    await new Promise((r) => setTimeout(r, 250));
    let size: number;
    try {
      size = (await stat(p.logFile)).size;
    } catch {
      continue; // rotated or deleted: wait for it to come back
    }
    if (size < pos) pos = 0; // truncated
    if (size === pos) continue;
    const f = await open(p.logFile, 'r');
    try {
      const len = Math.min(size - pos, 1 << 20);
      const buf = Buffer.alloc(len);
      const { bytesRead } = await f.read(buf, 0, len, pos);
      pos += bytesRead;
      process.stdout.write(buf.subarray(0, bytesRead));
    } finally {
      await f.close();
    }
  }
  process.off('SIGINT', onSig);
  process.off('SIGTERM', onSig);
}
