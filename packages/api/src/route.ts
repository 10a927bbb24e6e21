import { Type, type ObjectOptions, type Static, type TObject, type TProperties, type TLiteral, type TSchema, type TUnion } from '@sinclair/typebox';
import type { ErrorCode } from '@qnexus/types';

/**
 * One HTTP route, defined once: what the server implements (runtime's `implement(def, handler)`,
 * which makes the handler's return type `Static<typeof def.response>`), what the SDK's types are
 * derived from, and what the OpenAPI document describes. A definition carries no server code, so
 * the SDK imports it without importing a node.
 */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** `'/v1/blocks/{id}'` → `'id'`: the path's parameter names. */
export type PathParamNames<P extends string> = P extends `${string}{${infer N}}${infer R}` ? N | PathParamNames<R> : never;

/** How a route answers on success: JSON (validated by `response`), an HTML page or plain text. */
export type ResponseContentType = 'application/json' | 'text/html' | 'text/plain';

export interface RouteDef<Path extends string = string, Res extends TSchema = TSchema, Q extends string = string> {
  /** The operation's id: OpenAPI's operationId and the `route` label of `qnexus_api_requests_total`. */
  readonly id: string;
  readonly method: HttpMethod;
  /** With `{name}` for each path parameter (one path segment, percent-decoded). */
  readonly path: Path;
  /** Older paths still served by the same handler (documented as deprecated). */
  readonly aliases?: readonly string[];
  readonly summary: string;
  readonly description?: string;
  /** Groups the operations of the document (`node`, `beacon`, `explorer`, `admin`, later one per module). */
  readonly tag: string;
  /** Descriptions of the path parameters (all are strings on the wire; the handler checks their form). */
  readonly params?: { readonly [K in PathParamNames<Path>]: string };
  /**
   * The query parameters a route reads, name → description. Declared: any other parameter, or one
   * given twice, is refused with BAD_REQUEST before the handler runs (unless `looseQuery`).
   * Not declared: the route reads none and ignores whatever is sent (as it always has).
   */
  readonly query?: { readonly [K in Q]: string };
  /** Unknown query parameters are ignored and the first of a repeated one wins (routes that always behaved so). */
  readonly looseQuery?: boolean;
  /** The request body, read by the handler itself (its own error codes): a JSON schema and/or raw bytes. */
  readonly body?: { readonly json?: TSchema; readonly octetStream?: string };
  /** The success status (200 unless said). */
  readonly status?: 200 | 202;
  readonly contentType?: ResponseContentType;
  /** The success body: a JSON Schema value that is also the TypeScript type of the answer. */
  readonly response: Res;
  /** The error codes this route answers with besides those every route can (rate limit, internal). */
  readonly errors?: readonly ErrorCode[];
  /** Needs `Authorization: Bearer <admin token>`. */
  readonly admin?: boolean;
}

/** Keep the literal types of a definition (path, query names) so handlers and clients are typed by it. */
export function defineRoute<const Path extends string, Res extends TSchema, const Q extends string = never>(def: RouteDef<Path, Res, Q>): RouteDef<Path, Res, Q> {
  return def;
}

/** The success body's type of a route. */
export type RouteResponse<D extends RouteDef> = Static<D['response']>;
/** The JSON request body's type of a route (never when it takes none). */
export type RouteBody<D extends RouteDef> = D['body'] extends { json: infer S extends TSchema } ? Static<S> : never;

/** Any route definition, whatever its literal types (what lists of routes hold). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRouteDef = RouteDef<string, TSchema, any>;

// ---------------------------------------------------------------- schema helpers

/** An object whose server is exact: no property beyond those listed (a field added without its definition fails validation). */
export const Obj = <T extends TProperties>(props: T, opts: ObjectOptions = {}): TObject<T> => Type.Object(props, { additionalProperties: false, ...opts });
export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
export const Int = (description?: string) => Type.Integer(description ? { description } : {});
/** A non-negative integer. */
export const Nat = (description?: string) => Type.Integer({ minimum: 0, ...(description ? { description } : {}) });
/** A u64 amount or nonce as a decimal string (JSON numbers lose precision past 2^53). */
export const Amount = (description?: string) => Type.String({ pattern: '^[0-9]+$', ...(description ? { description } : {}) });
/** Lowercase hex without 0x; `bytes` fixes the length. */
export const Hex = (bytes?: number, description?: string) =>
  Type.String({ pattern: bytes === undefined ? '^([0-9a-f]{2})*$' : `^[0-9a-f]{${bytes * 2}}$`, ...(description ? { description } : {}) });
export const Hash = (description?: string) => Hex(32, description);
/** An account or validator address: `qn` and 40 lowercase hex digits. */
export const Address = (description?: string) => Type.String({ pattern: '^qn[0-9a-f]{40}$', ...(description ? { description } : {}) });
/** One of the given strings (an enum of literals, typed as their union). */
export function Literals<const T extends readonly [string, ...string[]]>(values: T, description?: string): TUnion<{ -readonly [K in keyof T]: TLiteral<T[K]> }> {
  return Type.Union(
    values.map((v) => Type.Literal(v)),
    description ? { description } : {},
  ) as unknown as TUnion<{ -readonly [K in keyof T]: TLiteral<T[K]> }>;
}

/** Every error answer: `{"error":{"code","message", …details}}` with the code's HTTP status. */
export const ErrorBody = Obj(
  {
    error: Type.Object(
      {
        code: Type.String({ description: 'A stable error code (packages/types/src/errors.ts), e.g. BAD_REQUEST, TX_UNKNOWN.' }),
        message: Type.String(),
      },
      { additionalProperties: true, description: 'Some codes carry details beside code and message (e.g. ACCOUNT_WRONG_SHARD: homeShard, shard).' },
    ),
  },
  { title: 'ErrorBody' },
);
export type ErrorBodyJson = Static<typeof ErrorBody>;
