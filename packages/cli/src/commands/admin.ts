import { Argument, type Command } from 'commander';
import { join } from 'node:path';
import { QnexusClient, type AdminLogLevel } from '@qnexus/sdk';
import { CliError, usageError } from '../errors.js';
import { NODE_OPTION_HELP, out, readText, resolveNode, table, type NodeTarget } from '../util.js';

/** Mirrors ADMIN_TOKEN_FILE of @qnexus/runtime (not imported: that package loads libp2p). */
export const ADMIN_TOKEN_FILE = 'admin.token';

/** Where an admin command finds its token (shared with `qnexus db backup --node`). */
export interface AdminTokenOpts {
  dataDir?: string;
  tokenFile?: string;
}

interface AdminOpts extends AdminTokenOpts {
  node?: string;
  json?: boolean;
}

/**
 * The admin token: from --token-file, else <data-dir>/admin.token (the process writes it there at
 * first start), else from the data dir of the local devnet's process at `target` (the node the
 * command talks to, when it is one of the devnet's).
 */
export async function adminToken(o: AdminTokenOpts, target?: NodeTarget): Promise<string> {
  const dataDir = o.dataDir ?? target?.process?.dataDir;
  if (o.tokenFile === undefined && dataDir === undefined) {
    throw usageError(
      `admin commands need the node's token: pass --data-dir <dir> (reads <dir>/${ADMIN_TOKEN_FILE}) or --token-file <file>` +
        (target === undefined ? '' : ` (${target.url} is not a process of a local devnet, whose token would be found)`),
    );
  }
  const path = o.tokenFile ?? join(dataDir!, ADMIN_TOKEN_FILE);
  const token = (await readText(path, 'admin token file')).trim();
  if (!/^[0-9a-f]{64}$/.test(token)) throw new CliError('BAD_TOKEN', `${path} does not hold an admin token (64 hex digits)`);
  return token;
}

async function client(o: AdminOpts): Promise<QnexusClient> {
  const target = await resolveNode(o, { role: 'any' });
  return new QnexusClient(target.url, { adminToken: await adminToken(o, target) });
}

/** The options every admin subcommand takes. */
function withAdminOptions(cmd: Command): Command {
  return cmd
    .option('--node <url>', `${NODE_OPTION_HELP}; a shard node or the beacon`)
    .option('--data-dir <dir>', `the node's data directory, to read its admin token (${ADMIN_TOKEN_FILE}); default: the local devnet's, for one of its nodes`)
    .option('--token-file <file>', `read the admin token from this file instead of <data-dir>/${ADMIN_TOKEN_FILE}`)
    .option('--json', 'print the raw JSON answer');
}

export function adminCommand(parent: Command): Command {
  const admin = parent
    .command('admin')
    .description("operate a running node or beacon through its admin API (/v1/admin/, bearer token from the data dir's admin.token)")
    .addHelpText(
      'after',
      `
The token is created by the node or beacon at its first start in <data-dir>/${ADMIN_TOKEN_FILE}
(mode 0600); anyone who can read that file can administer the process.
Against a local devnet (npm run devnet) the token is found in the data dir of the node asked.
Examples:
  npx qnexus admin peers                                    # the local devnet's first node
  npx qnexus admin peers --node http://127.0.0.1:7199       # the devnet's beacon
  qnexus admin peers --node http://10.0.0.2:8545 --data-dir data/v0
  qnexus admin connect /ip4/10.0.0.2/tcp/7000/p2p/12D3KooW… --data-dir data/v0
  qnexus admin log-level debug --data-dir data/v0`,
    );

  withAdminOptions(admin.command('peers').description('list connected peers and their addresses')).action(async (o: AdminOpts) => {
    const r = await (await client(o)).adminPeers();
    if (o.json) return out(JSON.stringify(r, null, 2));
    if (r.peers.length === 0) return out('no connected peers');
    for (const line of table([['PEER ID', 'DIRECTION', 'ADDRESS'], ...r.peers.map((p) => [p.peerId, [...new Set(p.directions)].join(','), p.addrs.join(' ')])])) out(line);
  });

  withAdminOptions(admin.command('connect').description('dial a peer').argument('<multiaddr>', 'address to dial, e.g. /ip4/10.0.0.2/tcp/7000/p2p/12D3KooW…')).action(
    async (multiaddr: string, o: AdminOpts) => {
      const r = await (await client(o)).adminConnect(multiaddr);
      if (o.json) return out(JSON.stringify(r, null, 2));
      out(`dialled ${r.dialed}${r.peerId ? ` (peer ${r.peerId}${r.connected ? ', connected' : ''})` : ''}; ${r.peers} peer${r.peers === 1 ? '' : 's'} connected`);
    },
  );

  withAdminOptions(admin.command('disconnect').description('hang up on a connected peer').argument('<peerId>', 'the peer id (see qnexus admin peers)')).action(
    async (peerId: string, o: AdminOpts) => {
      const r = await (await client(o)).adminDisconnect(peerId);
      if (o.json) return out(JSON.stringify(r, null, 2));
      out(`disconnected ${r.peerId}; ${r.peers} peer${r.peers === 1 ? '' : 's'} connected`);
    },
  );

  withAdminOptions(
    admin
      .command('log-level')
      .description("print the running process's log level, or change it")
      .addArgument(new Argument('[level]', 'new level').choices(['debug', 'info', 'warn', 'error'])),
  ).action(async (level: AdminLogLevel | undefined, o: AdminOpts) => {
    const c = await client(o);
    const r = level === undefined ? await c.adminLogLevel() : await c.adminSetLogLevel(level);
    if (o.json) return out(JSON.stringify(r, null, 2));
    out(r.previous !== undefined ? `log level ${r.level} (was ${r.previous})` : `log level ${r.level}`);
  });

  return admin;
}
