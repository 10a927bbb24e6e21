/**
 * Node 20 compatibility for the libp2p 2 dependency tree.
 *
 * Recent patch releases pulled in by libp2p 2.10 (it-queue 1.1 via mortice →
 * @libp2p/peer-store, and abort-error) call `Promise.withResolvers`, which only
 * exists from Node 22. Without it the peer store throws on its first write lock
 * (e.g. during identify or stop). We install the standard ES2024 semantics if missing.
 */
interface Resolvers<T> {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
}

const P = Promise as unknown as { withResolvers?: <T>() => Resolvers<T> };
if (typeof P.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    enumerable: false,
    value: function withResolvers<T>(this: PromiseConstructor): Resolvers<T> {
      let resolve!: Resolvers<T>['resolve'];
      let reject!: Resolvers<T>['reject'];
      const promise = new this<T>((res, rej) => { resolve = res; reject = rej; });
      return { promise, resolve, reject };
    },
  });
}

export {};
