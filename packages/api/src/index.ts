// @qnexus/api: every HTTP route of the shard node and the beacon, defined once (method, path, params,
// request body, response schema), and the OpenAPI 3.1 document generated from those definitions.
// The servers implement the definitions (@qnexus/runtime's implement()); the SDK takes its types from them.
export * from './route.js';
export * from './module.js';
export * from './schemas.js';
export * from './openapi.js';
export * as node from './node.js';
export * as beacon from './beacon.js';
export * as front from './front.js';
export * as schemas from './schemas.js';
export { nodeRoutes } from './node.js';
export { beaconRoutes } from './beacon.js';
export { adminRoutes } from './front.js';
export { Type, type Static, type TSchema } from '@sinclair/typebox';
export { Value } from '@sinclair/typebox/value';
