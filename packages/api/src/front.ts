import { Type } from '@sinclair/typebox';
import { Literals, Nat, Nullable, Obj, defineRoute } from './route.js';

/**
 * The routes the JSON HTTP front itself serves on every process (runtime's http.ts): the
 * Prometheus scrape, the OpenAPI document, and the admin endpoints behind the bearer token.
 */

export const metrics = defineRoute({
  id: 'metrics',
  method: 'GET',
  path: '/metrics',
  tag: 'operations',
  summary: 'Prometheus metrics (text exposition format; rendered at most once a second)',
  contentType: 'text/plain',
  response: Type.String(),
});

export const openapi = defineRoute({
  id: 'openapi',
  method: 'GET',
  path: '/v1/openapi.json',
  tag: 'operations',
  summary: "This process's API as an OpenAPI 3.1 document, generated from the same route definitions the server implements",
  response: Type.Object({ openapi: Type.String(), info: Type.Object({}), paths: Type.Object({}) }, { additionalProperties: true, title: 'OpenApiDocument' }),
});

export const LogLevel = Literals(['debug', 'info', 'warn', 'error']);

export const AdminPeers = Obj(
  {
    peers: Type.Array(Obj({ peerId: Type.String(), addrs: Type.Array(Type.String()), directions: Type.Array(Literals(['inbound', 'outbound'])) })),
    count: Nat(),
  },
  { title: 'AdminPeers' },
);

export const adminPeers = defineRoute({
  id: 'admin-peers',
  method: 'GET',
  path: '/v1/admin/peers',
  tag: 'admin',
  admin: true,
  summary: 'Connected peers with the remote address of each connection',
  response: AdminPeers,
  errors: ['UNAUTHORIZED'],
});

export const AdminConnect = Obj(
  { dialed: Type.String(), peerId: Nullable(Type.String({ description: "From the multiaddr's /p2p/ part." })), connected: Nullable(Type.Boolean()), peers: Nat() },
  { title: 'AdminConnect' },
);

export const adminConnect = defineRoute({
  id: 'admin-peers',
  method: 'POST',
  path: '/v1/admin/peers',
  tag: 'admin',
  admin: true,
  summary: 'Dial a peer by multiaddr',
  body: { json: Obj({ multiaddr: Type.String({ description: 'e.g. /ip4/10.0.0.2/tcp/7000/p2p/12D3KooW…' }) }) },
  response: AdminConnect,
  errors: ['UNAUTHORIZED', 'BAD_REQUEST', 'UNKNOWN_FIELD', 'UNAVAILABLE'],
});

export const AdminDisconnect = Obj({ peerId: Type.String(), disconnected: Type.Boolean(), peers: Nat() }, { title: 'AdminDisconnect' });

export const adminDisconnect = defineRoute({
  id: 'admin-peer',
  method: 'DELETE',
  path: '/v1/admin/peers/{peerId}',
  tag: 'admin',
  admin: true,
  summary: 'Hang up on a connected peer',
  params: { peerId: 'The libp2p peer id.' },
  response: AdminDisconnect,
  errors: ['UNAUTHORIZED', 'BAD_REQUEST', 'NOT_FOUND'],
});

export const AdminLogLevel = Obj({ level: LogLevel, previous: Type.Optional(LogLevel) }, { title: 'AdminLogLevel' });

export const adminLogLevel = defineRoute({
  id: 'admin-log-level',
  method: 'GET',
  path: '/v1/admin/log-level',
  tag: 'admin',
  admin: true,
  summary: "The running process's log level",
  response: AdminLogLevel,
  errors: ['UNAUTHORIZED'],
});

export const adminSetLogLevel = defineRoute({
  id: 'admin-log-level',
  method: 'PUT',
  path: '/v1/admin/log-level',
  tag: 'admin',
  admin: true,
  summary: "Change the running process's log level (answers with the previous one too)",
  body: { json: Obj({ level: LogLevel }) },
  response: AdminLogLevel,
  errors: ['UNAUTHORIZED', 'BAD_REQUEST', 'UNKNOWN_FIELD'],
});

export const BackupManifest = Obj(
  {
    format: Nat(),
    kind: Literals(['node', 'beacon']),
    chainId: Nullable(Type.String()),
    genesisHash: Nullable(Type.String()),
    shard: Nullable(Nat()),
    height: Nullable(Nat()),
    epoch: Nullable(Nat()),
    keys: Nat(),
    bytes: Nat(),
    sha256: Type.String({ description: 'Hex SHA-256 over every (key, value) in key order; restore checks it.' }),
    createdAt: Type.String(),
    qnexusVersion: Type.String(),
    excludes: Type.Array(Type.String()),
  },
  { title: 'BackupManifest' },
);
export const AdminBackup = Obj({ dir: Type.String(), manifest: BackupManifest, ms: Type.Number({ minimum: 0 }) }, { title: 'AdminBackup' });

export const adminBackup = defineRoute({
  id: 'admin-backup',
  method: 'POST',
  path: '/v1/admin/backup',
  tag: 'admin',
  admin: true,
  summary: 'Write a consistent snapshot of the database into a directory on the process\'s machine',
  body: { json: Obj({ dir: Type.String({ description: 'An absolute path that does not exist yet, or an empty directory.' }) }) },
  response: AdminBackup,
  errors: ['UNAUTHORIZED', 'BAD_REQUEST', 'UNKNOWN_FIELD', 'UNAVAILABLE'],
});

/** The admin routes (served only when the process has an admin token, i.e. an ApiGuard). */
export const adminRoutes = [adminPeers, adminConnect, adminDisconnect, adminLogLevel, adminSetLogLevel, adminBackup] as const;
