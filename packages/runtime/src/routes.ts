import type { IncomingMessage } from 'node:http';
import type { AnyRouteDef, PathParamNames, RouteDef } from '@qnexus/api';
import type { Static, TSchema } from '@sinclair/typebox';
import { RawBody, queryParams, type JsonRoute } from './http.js';

/**
 * The server side of the route definitions (@qnexus/api): `implement(def, handler)` turns one
 * definition and its handler into a route of the JSON front. The handler is typed by the
 * definition: its path parameters and declared query parameters by name, and its answer must be
 * `Static<typeof def.response>` (an HTML or text route answers a RawBody), so the server cannot
 * drift from what the SDK and the OpenAPI document say without failing to compile.
 */

/** The declared query parameter names of a definition. */
export type QueryNames<D> = D extends RouteDef<string, TSchema, infer Q> ? Q : never;

/** What a handler gets besides its context: the request as the definition names it. */
export interface RouteRequest<D extends AnyRouteDef> {
  /** Path parameters, percent-decoded. */
  params: { [K in PathParamNames<D['path']>]: string };
  /** Declared query parameters (absent ones undefined). */
  query: { [K in QueryNames<D>]?: string };
  req: IncomingMessage;
  url: URL;
}

/** A JSON route's answer is its response schema's type; a route whose answer is a string (an HTML page, text) may answer a RawBody. */
export type RouteResult<D extends AnyRouteDef> = Static<D['response']> extends string ? RawBody | Static<D['response']> : Static<D['response']>;

export type RouteHandler<C, D extends AnyRouteDef> = (ctx: C, r: RouteRequest<D>) => RouteResult<D> | Promise<RouteResult<D>>;

const escapeRe = (s: string) => s.replace(/[.*+?^$()|[\]\\]/g, '\\$&');

/** The path pattern of a definition (and of its aliases): `{name}` matches one path segment. */
export function routePattern(def: AnyRouteDef): RegExp {
  const one = (p: string) => escapeRe(p).replace(/\\?\{[^}]+\\?\}/g, '([^/]+)');
  for (const a of def.aliases ?? []) {
    if (a.includes('{')) throw new Error(`route ${def.id}: an alias path cannot have parameters (${a})`);
  }
  const paths = [def.path, ...(def.aliases ?? [])];
  return new RegExp(paths.length === 1 ? `^${one(def.path)}$` : `^(?:${one(def.path)}|${(def.aliases ?? []).map(escapeRe).join('|')})$`);
}

/** The route of the JSON front that serves `def` with `handler`. */
export function implement<C, D extends AnyRouteDef>(def: D, handler: RouteHandler<C, D>): JsonRoute<C> {
  const names = [...def.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
  const queryNames = def.query ? Object.keys(def.query) : null;
  const status = def.status ?? 200;
  return {
    def,
    method: def.method,
    re: routePattern(def),
    name: def.id,
    h: async (ctx, values, req, url) => {
      const params: Record<string, string> = {};
      names.forEach((n, i) => (params[n] = values[i]!));
      const query: Record<string, string | undefined> = {};
      if (queryNames) {
        if (def.looseQuery) for (const k of queryNames) query[k] = url.searchParams.get(k) ?? undefined;
        else for (const [k, v] of queryParams(url, queryNames)) query[k] = v;
      }
      const body = await handler(ctx, { params, query, req, url } as RouteRequest<D>);
      return [status, body];
    },
  };
}

/** The definitions a list of routes serves, in routing order. */
export function routeDefs<C>(routes: readonly JsonRoute<C>[]): AnyRouteDef[] {
  return routes.map((r) => r.def);
}

export { RawBody };

/**
 * The routes a module contributes (its queries), checked to live under `/v1/<module>/…` and to be
 * tagged with the module's name, so modules cannot shadow the host's routes or each other's. The
 * app hands the result to the process's API (appended to its routes: matched after the host's),
 * and the OpenAPI document lists them like any other (it is generated from the routes served).
 */
export function moduleRoutes<C>(module: string, routes: readonly JsonRoute<C>[]): JsonRoute<C>[] {
  if (!/^[a-z][a-z0-9-]*$/.test(module)) throw new Error(`module name ${JSON.stringify(module)}: lowercase letters, digits and dashes`);
  const prefix = `/v1/${module}/`;
  for (const r of routes) {
    for (const p of [r.def.path, ...(r.def.aliases ?? [])]) {
      if (!p.startsWith(prefix)) throw new Error(`module ${module}: route ${r.def.id} (${p}) must live under ${prefix}`);
    }
    if (r.def.tag !== module) throw new Error(`module ${module}: route ${r.def.id} must be tagged ${JSON.stringify(module)}`);
  }
  return [...routes];
}
