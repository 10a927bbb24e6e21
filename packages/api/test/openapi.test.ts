// The route definitions themselves: the documents generated from them are valid OpenAPI 3.1 (checked by a real
// validator, which is shown to catch a broken one), every definition is well formed, and a response schema is exact.
import assert from 'node:assert/strict';
import { Value } from '@sinclair/typebox/value';
import { adminRoutes, beaconRoutes, front, node, nodeRoutes, openApiDocument, type AnyRouteDef } from '../src/index.js';
import { assertMatches, assertValidOpenApi } from './check.js';

const processes: [string, AnyRouteDef[]][] = [
  ['node', [front.metrics, front.openapi, ...adminRoutes, ...Object.values(nodeRoutes)]],
  ['beacon', [front.metrics, front.openapi, ...adminRoutes, ...Object.values(beaconRoutes)]],
];

describe('api: route definitions and the OpenAPI document', () => {
  for (const [name, defs] of processes) {
    it(`the ${name}'s document is valid OpenAPI 3.1 and lists every definition, aliases as deprecated`, async () => {
      const doc = openApiDocument({ title: name, version: '0.1.0' }, defs);
      assert.equal(doc.openapi, '3.1.0');
      await assertValidOpenApi(doc);
      for (const d of defs) {
        const op = doc.paths[d.path]?.[d.method.toLowerCase()];
        assert.ok(op, `${d.method} ${d.path}`);
        assert.ok(op.responses[String(d.status ?? 200)], `${d.id}: its success status`);
        assert.ok(op.responses['default'], `${d.id}: the error envelope`);
        for (const a of d.aliases ?? []) assert.equal(doc.paths[a]?.[d.method.toLowerCase()]?.deprecated, true, a);
        if (d.admin) assert.deepEqual(op.security, [{ adminToken: [] }]);
      }
      // The JSON is what is served: no TypeBox markers or functions survive in it.
      assert.deepEqual(JSON.parse(JSON.stringify(doc)), doc);
    });
  }

  it('the validator is real: a broken structure, an undeclared path parameter, a reused operationId or an invalid schema is refused', async () => {
    const doc = openApiDocument({ title: 't', version: '1' }, [node.block, node.status]);
    await assertValidOpenApi(doc);
    type Doc = { paths: Record<string, Record<string, Record<string, unknown> & { parameters: { in: string }[]; responses: Record<string, { content: Record<string, { schema: unknown }> }> }>> };
    const broken = (f: (d: Doc) => void) => {
      const d = structuredClone(doc) as unknown as Doc;
      f(d);
      return assertValidOpenApi(d);
    };
    await assert.rejects(broken((d) => (d.paths['/v1/blocks/{id}']!['get']!['responses'] = 'none' as never)), /responses must be object/);
    await assert.rejects(broken((d) => (d.paths['/v1/blocks/{id}']!['get']!.parameters[0]!.in = 'body')), /must be equal to one of the allowed/);
    await assert.rejects(broken((d) => delete (d.paths['/v1/blocks/{id}']!['get'] as Record<string, unknown>)['parameters']), /path parameter \{id\} is not declared/);
    await assert.rejects(broken((d) => (d.paths['/v1/status']!['get']!['operationId'] = 'block')), /operationId block is used twice/);
    await assert.rejects(
      broken((d) => (d.paths['/v1/status']!['get']!.responses['200']!.content['application/json']!.schema = { type: 'nope' })),
      /not a valid JSON Schema/,
    );
  });

  it('every definition is well formed: unique method and path, described path parameters, declared errors', () => {
    for (const [, defs] of processes) {
      const seen = new Set<string>();
      for (const d of defs) {
        for (const p of [d.path, ...(d.aliases ?? [])]) {
          const k = `${d.method} ${p}`;
          assert.ok(!seen.has(k), `two definitions of ${k}`);
          seen.add(k);
        }
        const names = [...d.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
        assert.deepEqual(Object.keys(d.params ?? {}).sort(), [...names].sort(), `${d.id}: path parameters described`);
        assert.ok(d.summary.length > 10, d.id);
      }
    }
  });

  it('a response schema is exact: a field the server adds without its definition, or a wrong type, fails', () => {
    const status = {
      chainId: 'c',
      shard: 0,
      genesisHash: 'ab'.repeat(32),
      version: '0.1.0',
      role: 'full',
      validator: null,
      peerId: 'p',
      peers: 0,
      height: 1,
      finalizedHeight: 1,
      networkHeight: 1,
      round: 0,
      step: 'propose',
      epoch: 0,
      committee: null,
      mempoolSize: 0,
      syncing: false,
      eventLoopLagMs: 0,
      overloaded: false,
      stateRoot: 'cd'.repeat(32),
      cryptoBackend: 'noble',
      modules: [{ name: 'bank', id: 1 }],
      beacon: {
        peerId: 'b',
        connected: false,
        reachable: true,
        lastSnapshotSlot: null,
        lastHeardAt: null,
        silentMs: null,
        committeeKnown: true,
        committeesKnownThrough: 0,
        finalizesThroughSlot: 31,
      },
    };
    assertMatches(node.NodeStatus, status, 'a status');
    assert.equal(Value.Check(node.NodeStatus, { ...status, newField: 1 }), false);
    assert.equal(Value.Check(node.NodeStatus, { ...status, beacon: { ...status.beacon, extra: true } }), false);
    assert.equal(Value.Check(node.NodeStatus, { ...status, height: '1' }), false);
    const { networkHeight: _, ...missing } = status;
    assert.equal(Value.Check(node.NodeStatus, missing), false);
    // The error envelope allows details beside code and message (ACCOUNT_WRONG_SHARD's homeShard).
    assertMatches(front.metrics.response, 'text', 'metrics text');
  });
});
