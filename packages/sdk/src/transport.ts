import http from 'node:http';
import https from 'node:https';

/** What {@link httpRequest} hands back: the parts of a response the client reads. */
export interface HttpAnswer {
  status: number;
  statusText: string;
  /** A response header by lower-case name, or null. */
  header(name: string): string | null;
  text: string;
}

/** The request ran past its deadline (named like fetch's, so callers can tell it from a refusal). */
class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

/**
 * One HTTP request over node:http(s) and their global keep-alive agents.
 *
 * Why not `fetch`: undici's fetch costs ≈ 0.4 ms of CPU per request on our hosts (a 2.5 KB POST
 * to a local server: 0.45 ms with fetch against 0.1 ms with http.request, client and server
 * together), which made a client submitting transactions one per request cost more CPU than
 * a validator's main thread spends on each of them. Node 20's global agents keep connections
 * alive, honour the server's `Keep-Alive: timeout` hint and never keep the process running.
 *
 * `timeoutMs` bounds the whole exchange, like `AbortSignal.timeout` did. An idempotent request
 * (not a POST) that fails with a reset on a *reused* connection before any answer is sent once
 * more on a new one: most likely the server closed that idle connection as the request went
 * out (Node's documented pattern for keep-alive clients). A POST is never resent here: the
 * server may have acted on it, and callers such as the CLI then ask by hash instead.
 */
export function httpRequest(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | Uint8Array | undefined,
  timeoutMs: number,
): Promise<HttpAnswer> {
  const deadline = Date.now() + timeoutMs;
  const attempt = (retry: boolean): Promise<HttpAnswer> =>
    new Promise<HttpAnswer>((resolve, reject) => {
      const h: Record<string, string | number> = { ...headers };
      const data = typeof body === 'string' ? Buffer.from(body) : body;
      if (data !== undefined) h['content-length'] = data.byteLength;
      const lib = url.protocol === 'https:' ? https : http;
      let answered = false;
      const req = lib.request(url, { method, headers: h }, (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('end', () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            statusText: res.statusMessage ?? '',
            header: (name) => {
              const v = res.headers[name.toLowerCase()];
              return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
            },
            text,
          });
        });
      });
      const timer = setTimeout(() => req.destroy(new TimeoutError(`no answer within ${timeoutMs} ms`)), Math.max(0, deadline - Date.now()));
      function fail(e: Error): void {
        clearTimeout(timer);
        const code = (e as { code?: unknown }).code;
        if (retry && !answered && req.reusedSocket && code === 'ECONNRESET' && Date.now() < deadline) resolve(attempt(false));
        else reject(e);
      }
      req.on('error', fail);
      req.end(data);
    });
  return attempt(method !== 'POST');
}
