export * from './types.js';
export * from './errors.js';
export * from './client.js';
export * from './tx.js';
export * from './verify.js';
export * from './faucet.js';
export * from './defi.js';
