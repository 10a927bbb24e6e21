// @qnexus/api: every HTTP route of the shard node and the beacon, defined once (method, path, params,
// request body, response schema), and the OpenAPI 3.1 document generated from those definitions.
// The servers implement the definitions (@qnexus/runtime's implement()); the SDK takes its types from them.
export {};
