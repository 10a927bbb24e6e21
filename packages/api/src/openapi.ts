import type { TSchema } from '@sinclair/typebox';
import { ERROR_HTTP_STATUS, type ErrorCode } from '@qnexus/types';
import { ErrorBody, type AnyRouteDef } from './route.js';

export interface OpenApiInfo {
  title: string;
  version: string;
  description?: string;
}

/** The parts of an OpenAPI 3.1 document this generator writes (enough for tests to walk it). */
export interface OpenApiDocument {
  openapi: '3.1.0';
  info: OpenApiInfo;
  jsonSchemaDialect: string;
  tags: { name: string; description?: string }[];
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
}

export interface OpenApiOperation {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  deprecated?: boolean;
  parameters?: unknown[];
  requestBody?: unknown;
  responses: Record<string, unknown>;
  security?: Record<string, string[]>[];
}

const TAGS: Record<string, string> = {
  node: "A shard node's chain, accounts, transactions, validators and cross-shard transfers",
  beacon: "The beacon's registry, committees and cross-shard coordination",
  explorer: 'What the explorer pages read',
  operations: 'Metrics and this document',
  admin: 'Operator endpoints: Authorization: Bearer <data-dir>/admin.token',
};

/** A TypeBox schema as plain JSON Schema 2020-12 (TypeBox's own markers are symbols, which JSON drops). */
function plain(s: TSchema): unknown {
  return JSON.parse(JSON.stringify(s));
}

function errorResponses(codes: readonly ErrorCode[]): Record<string, unknown> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const c of codes) {
    const st = ERROR_HTTP_STATUS[c];
    byStatus.set(st, [...(byStatus.get(st) ?? []), c]);
  }
  const out: Record<string, unknown> = {};
  for (const [st, cs] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    out[String(st)] = { description: cs.join(', '), content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorBody' } } } };
  }
  return out;
}

function operation(def: AnyRouteDef, operationId: string, deprecated: boolean): OpenApiOperation {
  const params: unknown[] = [];
  for (const m of def.path.matchAll(/\{([^}]+)\}/g)) {
    const name = m[1]!;
    const description = (def.params as Record<string, string> | undefined)?.[name];
    params.push({ name, in: 'path', required: true, schema: { type: 'string' }, ...(description ? { description } : {}) });
  }
  for (const [name, description] of Object.entries((def.query ?? {}) as Record<string, string>)) {
    params.push({ name, in: 'query', required: false, schema: { type: 'string' }, description });
  }
  const op: OpenApiOperation = {
    operationId,
    summary: def.summary,
    ...(def.description ? { description: def.description } : {}),
    tags: [def.tag],
    ...(deprecated ? { deprecated: true } : {}),
    ...(params.length ? { parameters: params } : {}),
    responses: {},
  };
  if (def.body) {
    const content: Record<string, unknown> = {};
    if (def.body.json) content['application/json'] = { schema: plain(def.body.json) };
    if (def.body.octetStream !== undefined) content['application/octet-stream'] = { schema: { type: 'string', contentMediaType: 'application/octet-stream', description: def.body.octetStream } };
    op.requestBody = { required: true, content };
  }
  const ct = def.contentType ?? 'application/json';
  op.responses[String(def.status ?? 200)] = { description: def.summary, content: { [ct]: { schema: plain(def.response) } } };
  Object.assign(op.responses, errorResponses(def.errors ?? []));
  op.responses['default'] = {
    description: 'Any other error (e.g. 429 RATE_LIMITED with Retry-After, 503 with Retry-After, 500 INTERNAL): the error envelope.',
    content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorBody' } } },
  };
  if (def.admin) op.security = [{ adminToken: [] }];
  return op;
}

/**
 * The OpenAPI 3.1 document of a process's routes, generated from their definitions alone (so it
 * cannot list a route the server does not serve, nor miss one it does: the server's route table
 * is built from the same list). Schemas are JSON Schema 2020-12, OpenAPI 3.1's own dialect.
 */
export function openApiDocument(info: OpenApiInfo, defs: readonly AnyRouteDef[]): OpenApiDocument {
  const paths: OpenApiDocument['paths'] = {};
  const usedIds = new Set<string>();
  const tags = new Set<string>();
  const add = (path: string, def: AnyRouteDef, deprecated: boolean) => {
    // OpenAPI paths use {name} as the definitions do.
    const ops = (paths[path] ??= {});
    const method = def.method.toLowerCase();
    if (ops[method]) throw new Error(`two definitions of ${def.method} ${path} (${ops[method]!.operationId}, ${def.id})`);
    let id = deprecated ? `${def.id}-legacy` : def.id;
    if (usedIds.has(id)) id = `${id}-${method}`;
    usedIds.add(id);
    ops[method] = operation(def, id, deprecated);
  };
  for (const def of defs) {
    tags.add(def.tag);
    add(def.path, def, false);
    for (const alias of def.aliases ?? []) add(alias, def, true);
  }
  return {
    openapi: '3.1.0',
    info,
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    tags: [...tags].map((name) => (TAGS[name] ? { name, description: TAGS[name] } : { name })),
    paths,
    components: {
      schemas: { ErrorBody: plain(ErrorBody) },
      securitySchemes: { adminToken: { type: 'http', scheme: 'bearer', description: 'The 64 hex digits of <data-dir>/admin.token.' } },
    },
  };
}
