export * from './bytes.js';
export * from './hash.js';
export * from './domain.js';
export * from './mldsa.js';
export * from './noble-verify.js';
export * from './address.js';
export * from './keystore.js';
