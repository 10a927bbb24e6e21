import { Type, type TUnsafe } from '@sinclair/typebox';
import { Nat, Obj, defineRoute, type RouteDef } from './route.js';
import { PROOF_QUERY, StateProof } from './proof.js';

/**
 * The route definition of one module query (`QueryDef` in @qnexus/state, which this package must
 * not import: the SDK imports it without server code). A query named `inbox` of module `note` with
 * params `['address']` is `GET /v1/note/inbox/{address}`, tagged `note`, its answer described by the
 * query's own JSON Schema (an open object when it gives none), so the OpenAPI document lists module
 * queries like the host's routes.
 */
export interface ModuleQueryShape {
  name: string;
  summary: string;
  params: readonly string[];
  response?: Readonly<Record<string, unknown>>;
  /** Present when the query reads single keys only (`QueryDef.proofKeys`): its route takes `?proof=true`. */
  proofKeys?: unknown;
}

/** A module's query answer: whatever its schema says (the module owns the type). */
export type ModuleQueryResponse = TUnsafe<unknown>;

export function moduleQueryRoute(module: string, q: ModuleQueryShape): RouteDef<string, ModuleQueryResponse, string> {
  if (!/^[a-z][a-z0-9-]{0,63}$/.test(q.name)) throw new Error(`module ${module}: query name ${JSON.stringify(q.name)} must be lowercase letters, digits and dashes`);
  for (const p of q.params) if (!/^[a-zA-Z][a-zA-Z0-9]{0,31}$/.test(p)) throw new Error(`module ${module}: query ${q.name}: parameter name ${JSON.stringify(p)} is invalid`);
  const path = `/v1/${module}/${q.name}${q.params.map((p) => `/{${p}}`).join('')}`;
  const provable = typeof q.proofKeys === 'function';
  const schema: Record<string, unknown> = { ...(q.response ?? { type: 'object', additionalProperties: true }) };
  // A provable answer may carry `proof` (with ?proof=true) beside the module's own fields.
  if (provable) schema.properties = { ...((schema.properties as Record<string, unknown> | undefined) ?? {}), proof: StateProof };
  return defineRoute({
    id: `${module}.${q.name}`,
    method: 'GET',
    path,
    tag: module,
    summary: q.summary,
    params: Object.fromEntries(q.params.map((p) => [p, `${p} (the module checks its form; BAD_REQUEST or a module error otherwise)`])) as never,
    // Declared on every query so that `proof=true` on a range query is refused (BAD_REQUEST), never answered unproven.
    query: PROOF_QUERY,
    looseQuery: true,
    response: Type.Unsafe<unknown>(schema),
    errors: provable ? ['BAD_REQUEST', 'STATE_PRUNED', 'NOT_FOUND', 'UNAVAILABLE'] : ['BAD_REQUEST'],
  });
}

/** One module of a process's app, as `/v1/status` shows it. */
export const ModuleRef = Obj({ name: Type.String(), id: Nat('The module id: first byte of its state keys and message kinds.') }, { title: 'ModuleRef' });
