import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { adminCommand } from './commands/admin.js';
import { beaconCommand } from './commands/beacon.js';
import { dbCommand } from './commands/db.js';
import { devnetCommand } from './commands/devnet.js';
import { faucetCommand } from './commands/faucet.js';
import { genesisCommand } from './commands/genesis.js';
import { keysCommand } from './commands/keys.js';
import { nodeCommand } from './commands/node.js';
import { queryCommand } from './commands/query.js';
import { accountCommand } from './commands/account.js';
import { statusCommand } from './commands/status.js';
import { txCommand } from './commands/tx.js';
import { validatorsCommand } from './commands/validators.js';
import { EXIT, reportError } from './errors.js';
import { loadModules } from './process-options.js';
import { explainUnreachable, repoRoot } from './util.js';

/**
 * The repository's version (its root package.json) when the CLI runs from a checkout, else the
 * CLI package's own: `qnexus --version` names the release of the whole repo, nodes included.
 */
export function version(): string {
  const root = repoRoot();
  for (const url of [root === null ? null : pathToFileURL(join(root, 'package.json')), new URL('../package.json', import.meta.url)]) {
    if (url === null) continue;
    try {
      const pkg = JSON.parse(readFileSync(url, 'utf8')) as { version?: unknown };
      if (typeof pkg.version === 'string') return pkg.version;
    } catch {
      // next
    }
  }
  return '0.0.0';
}

const EXIT_HELP = `
Exit codes: 0 ok, 1 error (also: tx xtransfer --wait saw the transfer aborted),
2 usage error, 3 timeout (--wait), 130 interrupted.
Errors are printed to stderr as "error [CODE]: message".`;

/** The `qnexus` command tree. */
export function buildProgram(): Command {
  const program = new Command('qnexus')
    .description('Quantum Nexus: a sharded proof-of-stake devnet signed end to end with ML-DSA (FIPS 204)')
    .version(version(), '-V, --version')
    .showSuggestionAfterError(true)
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({
      // Commander's own usage errors, in our "error [CODE]: message" form.
      outputError: (str, write) => write(str.replace(/^error: /, 'error [USAGE]: ')),
    })
    .exitOverride()
    .addHelpText('after', EXIT_HELP);
  // Subcommands created with .command() inherit the output and exit settings above.
  keysCommand(program);
  genesisCommand(program);
  nodeCommand(program);
  beaconCommand(program);
  statusCommand(program);
  adminCommand(program);
  dbCommand(program);
  txCommand(program);
  queryCommand(program);
  accountCommand(program);
  validatorsCommand(program);
  faucetCommand(program);
  devnetCommand(program);
  return program;
}

/** Run the CLI on `argv` (as process.argv) and return the exit code; prints errors itself. */
export async function run(argv: string[]): Promise<number> {
  try {
    // `tx` and `query` are built from the app's modules: load --module files first, so their
    // messages and queries exist as subcommands when the command line is parsed.
    await loadModules(clientModuleFiles(argv.slice(2)), { quiet: true });
    await buildProgram().parseAsync(argv);
    return EXIT.OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Already printed by commander (help, version or a usage error).
      return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    // An unreachable default node gets a what-to-do (is the devnet running? where are its nodes?).
    return reportError(explainUnreachable(e));
  }
}

/**
 * The --module files of a `tx` or `query` command line (flag anywhere after the command, or
 * $QNEXUS_MODULE, comma-separated), which the generic commands need before parsing. Other
 * commands (node, beacon, devnet) load theirs when they start.
 */
export function clientModuleFiles(args: readonly string[]): string[] {
  if (args[0] !== 'tx' && args[0] !== 'query') return [];
  const files: string[] = [];
  for (let i = 1; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (a === '--module' && i + 1 < args.length) files.push(args[++i]!);
    else if (a.startsWith('--module=')) files.push(a.slice('--module='.length));
  }
  if (files.length === 0 && process.env.QNEXUS_MODULE) files.push(process.env.QNEXUS_MODULE);
  return files.flatMap((f) => f.split(',')).map((f) => f.trim()).filter((f) => f !== '');
}
