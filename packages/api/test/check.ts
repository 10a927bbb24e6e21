// What the OpenAPI tests of the node, the beacon and the definitions share: validating a document with a real
// OpenAPI 3.1 validator, finding the routes a running server actually routes, and checking an answer against its
// route's schema (exactly: a field the server sends without its definition fails).
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Value } from '@sinclair/typebox/value';
import type { TSchema } from '@sinclair/typebox';
import type { AnyRouteDef, OpenApiDocument } from '../src/index.js';

/**
 * Validate a document: its structure against the OpenAPI 3.1 schema (swagger-parser), then what
 * that schema cannot say and swagger-parser checks only for 2.0/3.0: operationIds unique, every
 * `{param}` of a path declared as a required path parameter, and every schema in it a valid
 * JSON Schema 2020-12 (compiled by Ajv, strict about unknown keywords).
 */
export async function assertValidOpenApi(doc: unknown): Promise<void> {
  // validate() dereferences in place: give it a copy.
  await SwaggerParser.validate(structuredClone(doc) as never);
  const d = doc as OpenApiDocument;
  const ids = new Set<string>();
  const ajv = new Ajv2020({ strict: true, allErrors: false });
  // OpenAPI's own annotation keywords inside schemas.
  ajv.addVocabulary(['example', 'discriminator', 'xml', 'externalDocs']);
  const compile = (schema: unknown, where: string) => {
    try {
      ajv.compile(schema as object);
    } catch (e) {
      throw new Error(`${where}: not a valid JSON Schema 2020-12: ${(e as Error).message}`);
    }
  };
  for (const [name, s] of Object.entries(d.components?.schemas ?? {})) compile(s, `#/components/schemas/${name}`);
  const local = (s: unknown): unknown => JSON.parse(JSON.stringify(s).replaceAll('"#/components/schemas/', '"#/$defs/'));
  const defs = local(d.components?.schemas ?? {});
  for (const [path, ops] of Object.entries(d.paths)) {
    const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
    for (const [method, op] of Object.entries(ops)) {
      const where = `${method.toUpperCase()} ${path}`;
      if (ids.has(op.operationId)) throw new Error(`${where}: operationId ${op.operationId} is used twice`);
      ids.add(op.operationId);
      const params = (op.parameters ?? []) as { name: string; in: string; required?: boolean; schema?: unknown }[];
      for (const n of names) {
        if (!params.some((p) => p.in === 'path' && p.name === n && p.required === true)) throw new Error(`${where}: path parameter {${n}} is not declared`);
      }
      for (const p of params) {
        if (p.in === 'path' && !names.includes(p.name)) throw new Error(`${where}: declares path parameter ${p.name} its path lacks`);
        if (p.schema) compile(p.schema, `${where} parameter ${p.name}`);
      }
      const bodies = [
        ...Object.entries(((op.requestBody as { content?: Record<string, { schema?: unknown }> } | undefined)?.content ?? {})).map(([ct, c]) => [`request ${ct}`, c.schema] as const),
        ...Object.entries(op.responses as Record<string, { content?: Record<string, { schema?: unknown }> }>).flatMap(([st, r]) =>
          Object.entries(r.content ?? {}).map(([ct, c]) => [`response ${st} ${ct}`, c.schema] as const),
        ),
      ];
      for (const [what, schema] of bodies) if (schema !== undefined) compile({ ...(local(schema) as object), $defs: defs }, `${where} ${what}`);
    }
  }
}

export async function fetchOpenApi(baseUrl: string): Promise<OpenApiDocument> {
  const r = await fetch(`${baseUrl}/v1/openapi.json`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  return (await r.json()) as OpenApiDocument;
}

/** The routes the server listening at `baseUrl` (in this process) routes, as the front registered them. */
export function servedAt(baseUrl: string, apis: () => { server: { address(): unknown }; routes: readonly AnyRouteDef[] }[]): readonly AnyRouteDef[] {
  const port = Number(new URL(baseUrl).port);
  const api = apis().find((a) => (a.server.address() as AddressInfo | null)?.port === port);
  assert.ok(api, `no JSON API of this process listens on port ${port}`);
  return api.routes;
}

/** A concrete path for a definition's path: every `{param}` filled with a harmless value. */
export const samplePath = (path: string): string => path.replace(/\{[^}]+\}/g, 'x');

/**
 * Every route the server routes is in the document (with its method, and its aliases), and every
 * operation of the document reaches a handler on the server: its method and path are neither
 * "no such endpoint" nor "method not allowed" there. With `adminToken` the admin operations are
 * probed past authentication too (bodiless: each refuses before acting).
 */
export async function assertRoutesDocumented(baseUrl: string, doc: OpenApiDocument, served: readonly AnyRouteDef[], adminToken?: string): Promise<void> {
  assert.ok(served.length > 3, 'the server routes more than its front');
  for (const def of served) {
    for (const path of [def.path, ...(def.aliases ?? [])]) {
      const op = doc.paths[path]?.[def.method.toLowerCase()];
      assert.ok(op, `${def.method} ${path} (${def.id}) is routed but not in /v1/openapi.json`);
    }
  }
  let operations = 0;
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const method of Object.keys(ops)) {
      operations++;
      const headers: Record<string, string> = adminToken !== undefined && path.startsWith('/v1/admin/') ? { authorization: `Bearer ${adminToken}` } : {};
      const r = await fetch(baseUrl + samplePath(path), { method: method.toUpperCase(), headers });
      if (adminToken !== undefined && path.startsWith('/v1/admin/')) assert.notEqual(r.status, 401, `${method} ${path}: the token is accepted`);
      const text = await r.text();
      const body = r.headers.get('content-type')?.startsWith('application/json') ? (JSON.parse(text) as { error?: { code?: string; message?: string } }) : null;
      const code = body?.error?.code;
      const unrouted = code === 'METHOD_NOT_ALLOWED' || (code === 'NOT_FOUND' && /no such (admin )?endpoint/.test(body?.error?.message ?? ''));
      assert.ok(!unrouted, `${method.toUpperCase()} ${path} is in the document but the server does not route it (${r.status} ${text.slice(0, 200)})`);
    }
  }
  assert.equal(operations, served.reduce((n, d) => n + 1 + (d.aliases?.length ?? 0), 0), 'the document has exactly the routed operations');
}

/** Assert `value` is exactly what `schema` allows, naming the first mismatches. */
export function assertMatches(schema: TSchema, value: unknown, what: string): void {
  if (Value.Check(schema, value)) return;
  const errors = [...Value.Errors(schema, value)].slice(0, 5).map((e) => `${e.path || '/'}: ${e.message} (${JSON.stringify(e.value)?.slice(0, 80)})`);
  assert.fail(`${what} does not match its definition:\n  ${errors.join('\n  ')}`);
}

/** Call a route and check its answer: the definition's success status and schema, or (expecting an error) the error envelope. */
export async function call(
  baseUrl: string,
  def: AnyRouteDef,
  path: string,
  init: RequestInit & { expect?: number } = {},
): Promise<unknown> {
  const r = await fetch(baseUrl + path, init);
  const body = (await r.json()) as unknown;
  const expect = init.expect ?? def.status ?? 200;
  assert.equal(r.status, expect, `${def.method} ${path}: ${JSON.stringify(body).slice(0, 300)}`);
  return body;
}
