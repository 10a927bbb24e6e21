/**
 * A signal that aborts after `ms`, or when `parent` aborts, whichever comes first.
 *
 * This is what `AbortSignal.any([AbortSignal.timeout(ms), parent])` promises, but on Node 20 that
 * composite holds its timeout signal only weakly: once the timeout signal is garbage-collected
 * (nothing else references it) its timer is cleared and the composite never aborts, even while
 * it is itself held and listened to (nodejs/node#57736; reproduced on 20.20.2 with one forced
 * GC). A dial or stream guarded that way can wait forever. Here the timer holds the controller
 * strongly, so the deadline fires whatever the collector does.
 *
 * Call `clear()` once the guarded operation has settled: it stops the timer and detaches from
 * `parent`, so neither outlives the operation.
 */
import { setMaxListeners } from 'node:events';

export interface Deadline {
  readonly signal: AbortSignal;
  clear(): void;
}

export function deadlineSignal(ms: number, parent?: AbortSignal): Deadline {
  const ac = new AbortController();
  if (parent?.aborted) {
    ac.abort(parent.reason);
    return { signal: ac.signal, clear: () => undefined };
  }
  const onParent = (): void => ac.abort(parent?.reason);
  const timer = setTimeout(() => ac.abort(new DOMException(`timed out after ${ms} ms`, 'TimeoutError')), ms);
  parent?.addEventListener('abort', onParent, { once: true });
  return {
    signal: ac.signal,
    clear: () => {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParent);
    },
  };
}

/**
 * A controller whose signal takes any number of listeners without Node's leak warning: for a
 * parent that every deadline in flight listens to (one per concurrent dial or request).
 */
export function withoutListenerCap(ac: AbortController): AbortController {
  setMaxListeners(Infinity, ac.signal);
  return ac;
}
