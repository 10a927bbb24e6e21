export * from './errors.js';
export * from './codec.js';
export * from './merkle.js';
export * from './objects.js';
export * from './genesis.js';
export * from './xshard.js';
