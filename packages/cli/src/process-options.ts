import { Option, type Command } from 'commander';
import { BACKEND_CHOICES, DEFAULT_BACKEND, backendStatus, resolveBackend, type BackendChoice } from '@qnexus/crypto';
import type { LogFormat, LogLevel, ProcessConfig } from '@qnexus/runtime';
import { CliError } from './errors.js';
import { parsePublicHost, publicMultiaddr } from './devnet.js';
import { installPeerKey, readTopology, type Topology } from './topology.js';
import { collectList, intParser, note, parseMultiaddr } from './util.js';

// The node package is imported lazily (it loads libp2p): these mirror its DEFAULT_API_RATE_LIMIT / _BURST,
// the request costs of admin.ts requestCost and METRICS_RATE_LIMIT, and DEFAULT_HTTP_LIMITS / HTTP_LIMIT_RANGES.
const DEFAULT_API_RATE_LIMIT = 500;
const DEFAULT_API_RATE_BURST = 1000;
const DEFAULT_API_MAX_CONNECTIONS = 512;
const DEFAULT_API_MAX_CONNECTIONS_PER_IP = 64;
const DEFAULT_API_HEADERS_TIMEOUT_MS = 5_000;
const DEFAULT_API_REQUEST_TIMEOUT_MS = 10_000;

/** Options every long-running process (`qnexus node`, `qnexus beacon`) takes: networking, API, logs. */
export interface ProcessOpts {
  dataDir: string;
  genesis: string;
  listen?: string[];
  p2pPort?: number;
  announce?: string[];
  publicHost?: string;
  bootstrap?: string[];
  bootstrapFile?: string;
  peerKey?: string;
  apiHost: string;
  apiPort: number;
  logFormat?: LogFormat;
  logLevel: LogLevel;
  apiRateLimit?: number;
  apiRateBurst?: number;
  apiMaxConnections?: number;
  apiMaxConnectionsPerIp?: number;
  apiHeadersTimeoutMs?: number;
  apiRequestTimeoutMs?: number;
  cryptoBackend: BackendChoice;
  stopOnStdinClose?: boolean;
  /** App modules under development to load into this process (`--module <file.js>`). */
  module?: string[];
}

/** The options of addProcessOptions (and --passphrase-file) holding paths: relative ones in a config file resolve against its directory. */
export const PROCESS_PATH_OPTIONS = ['dataDir', 'genesis', 'bootstrapFile', 'peerKey', 'passphraseFile', 'module'];

/** What differs between the node and the beacon in those options. */
export interface ProcessOptionHelp {
  defaultListen: string;
  defaultApiPort: number;
  bootstrap: string;
  bootstrapFile: string;
}

/** Add the shared options (after the command's own required ones). */
export function addProcessOptions(cmd: Command, h: ProcessOptionHelp): Command {
  return cmd
    .option('--listen <multiaddr>', `libp2p listen address; repeatable or comma-separated (default ${h.defaultListen})`, collectList(parseMultiaddr))
    .option('--p2p-port <port>', 'shorthand for --listen /ip4/127.0.0.1/tcp/<port>', intParser(0, 65535))
    .option('--announce <multiaddr>', 'address to announce to peers instead of the listen addresses; repeatable or comma-separated', collectList(parseMultiaddr))
    .option(
      '--public-host <ip-or-name>',
      'be reachable from other machines at this address: listen on every interface (/ip4/0.0.0.0/tcp/<port>, the port of --p2p-port or --listen, else the default) and announce /ip4/<ip>/tcp/<port> (/dns4/<name>/… for a name); the API stays on --api-host',
      parsePublicHost,
    )
    .option('--bootstrap <multiaddr>', h.bootstrap, collectList(parseMultiaddr))
    .option('--bootstrap-file <topology.json>', h.bootstrapFile)
    .option('--peer-key <file>', 'libp2p key made in advance (qnexus devnet init: <dir>/nodes/<name>/peer.key): copied to <data-dir>/peer.key unless that exists (it must then be the same key)')
    .option('--api-host <host>', 'HTTP API bind address', '127.0.0.1')
    .option('--api-port <port>', 'HTTP API port (0 picks a free port, see node-info.json)', intParser(0, 65535), h.defaultApiPort)
    .option(
      '--api-rate-limit <tokens/s>',
      `per-client (IP) API rate in tokens a second: a request takes 1, a block 2, a transaction 4, evidence 8 (/metrics has a bucket of its own, 10/s); 0 disables (default ${DEFAULT_API_RATE_LIMIT})`,
      intParser(0, 10_000_000),
    )
    .option('--api-rate-burst <tokens>', `per-client (IP) API burst in tokens; 0 disables (default ${DEFAULT_API_RATE_BURST})`, intParser(0, 10_000_000))
    .option('--api-max-connections <n>', `open API connections, all clients together; beyond it new ones are closed at once (default ${DEFAULT_API_MAX_CONNECTIONS})`, intParser(1, 1_000_000))
    .option('--api-max-connections-per-ip <n>', `open API connections from one client IP; beyond it its new ones are closed at once (default ${DEFAULT_API_MAX_CONNECTIONS_PER_IP})`, intParser(1, 1_000_000))
    .option('--api-headers-timeout-ms <ms>', `a request's headers must arrive within this, else 408 and the connection is closed (default ${DEFAULT_API_HEADERS_TIMEOUT_MS})`, intParser(100, 3_600_000))
    .option('--api-request-timeout-ms <ms>', `a whole request, body included, must arrive within this; at least --api-headers-timeout-ms (default ${DEFAULT_API_REQUEST_TIMEOUT_MS})`, intParser(100, 3_600_000))
    .option(
      '--module <file.js>',
      "load an app module under development: an ES module whose default export is (keepers) => Module; repeatable or comma-separated. Every process of a chain must load the same modules (the genesis names them; a process that differs refuses to start)",
      collectList((v) => v),
    )
    .addOption(new Option('--log-format <format>', 'log format (default: pretty on a terminal, else json)').choices(['json', 'pretty']))
    .addOption(new Option('--log-level <level>', 'log level').choices(['debug', 'info', 'warn', 'error']).default('info'))
    .addOption(
      new Option('--crypto-backend <name>', 'ML-DSA implementation that verifies and signs: auto (pqclean where it loads, else noble), noble (pure JS) or pqclean (native, optional package; start fails if it is not installed)')
        .choices([...BACKEND_CHOICES])
        .default(DEFAULT_BACKEND),
    );
}

/**
 * Fail before anything else (the genesis, a keystore's scrypt) when --crypto-backend names a
 * backend that cannot load here: code CRYPTO_BACKEND_UNAVAILABLE, exit 1, no silent fallback.
 */
export function checkCryptoBackend(choice: BackendChoice): void {
  // `auto` always resolves to one that loads.
  const name = resolveBackend(choice);
  const st = backendStatus(name);
  if (!st.available) throw new CliError('CRYPTO_BACKEND_UNAVAILABLE', `--crypto-backend ${name}: ${st.detail}; use --crypto-backend noble, or install it`);
}

/** The config fields those options give (BeaconConfig and NodeConfig share them). */
type SharedConfig = Omit<ProcessConfig, 'dataDir' | 'genesis'>;

/**
 * Resolve the shared options: install a pre-made peer key, build the listen list, add the
 * bootstrap peers `fromTopology` picks out of --bootstrap-file.
 */
export async function processConfig(o: ProcessOpts, defaultListen: string, fromTopology: (t: Topology) => string[]): Promise<SharedConfig> {
  const headersMs = o.apiHeadersTimeoutMs ?? DEFAULT_API_HEADERS_TIMEOUT_MS;
  const requestMs = o.apiRequestTimeoutMs ?? DEFAULT_API_REQUEST_TIMEOUT_MS;
  if (headersMs > requestMs) {
    throw new CliError('BAD_CONFIG', `--api-headers-timeout-ms ${headersMs} exceeds --api-request-timeout-ms ${requestMs}: the headers are part of the request; raise the request timeout too`);
  }
  if (o.peerKey !== undefined) await installPeerKey(o.dataDir, o.peerKey);
  const listen = [...(o.listen ?? [])];
  const announce = [...(o.announce ?? [])];
  if (o.publicHost !== undefined) {
    // Reachable from elsewhere: the p2p port on every interface, announced at the public host.
    const port = o.p2pPort ?? tcpPort(listen[0]) ?? tcpPort(defaultListen);
    if (port === undefined || port === 0) throw new CliError('BAD_CONFIG', '--public-host needs a fixed p2p port (--p2p-port <port>): peers elsewhere dial the announced one');
    if (o.p2pPort !== undefined || listen.length === 0) listen.push(`/ip4/0.0.0.0/tcp/${port}`);
    announce.push(publicMultiaddr(o.publicHost, port));
  } else if (o.p2pPort !== undefined) listen.push(`/ip4/127.0.0.1/tcp/${o.p2pPort}`);
  if (listen.length === 0) listen.push(defaultListen);
  const cfg: SharedConfig = {
    listen,
    bootstrap: [...(o.bootstrap ?? []), ...(o.bootstrapFile !== undefined ? fromTopology(await readTopology(o.bootstrapFile)) : [])],
    apiHost: o.apiHost,
    apiPort: o.apiPort,
    logFormat: o.logFormat ?? (process.stdout.isTTY ? 'pretty' : 'json'),
    logLevel: o.logLevel,
  };
  if (announce.length > 0) cfg.announce = announce;
  if (o.apiRateLimit !== undefined) cfg.apiRateLimit = o.apiRateLimit;
  if (o.apiRateBurst !== undefined) cfg.apiRateBurst = o.apiRateBurst;
  if (o.apiMaxConnections !== undefined) cfg.apiMaxConnections = o.apiMaxConnections;
  if (o.apiMaxConnectionsPerIp !== undefined) cfg.apiMaxConnectionsPerIp = o.apiMaxConnectionsPerIp;
  if (o.apiHeadersTimeoutMs !== undefined) cfg.apiHeadersTimeoutMs = o.apiHeadersTimeoutMs;
  if (o.apiRequestTimeoutMs !== undefined) cfg.apiRequestTimeoutMs = o.apiRequestTimeoutMs;
  cfg.cryptoBackend = o.cryptoBackend;
  return cfg;
}

/** The TCP port of a `/ip4|ip6|dns4|dns6/<host>/tcp/<port>…` multiaddr, if it has one. */
function tcpPort(ma: string | undefined): number | undefined {
  const m = ma === undefined ? null : /\/tcp\/(\d+)/.exec(ma);
  return m ? Number(m[1]) : undefined;
}

/**
 * Install the --module files into this process's app (before anything reads it: the genesis check,
 * the chain), and say which modules were loaded. Every later `app` read sees them.
 */
export async function loadModules(files: readonly string[] | undefined, opts: { quiet?: boolean } = {}): Promise<void> {
  if (!files?.length) return;
  const a = await import('@qnexus/app');
  const before = new Set(a.app.modules.map((m) => m.name));
  const { installModules } = a;
  const sm = await installModules(files);
  const added = sm.modules.filter((m) => !before.has(m.name));
  if (!opts.quiet) note(`loaded module${added.length === 1 ? '' : 's'} ${added.map((m) => `${m.name} (id ${m.id})`).join(', ')} from ${files.join(', ')}`);
}
