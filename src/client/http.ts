// The client's HTTP exchange: undici's `request` through one keep-alive
// Agent shared by every RingkvClient in the process (a pool of connections
// per node, reused across requests). Global fetch runs on undici too, but
// its WHATWG layer (Request/Response/Headers objects, web streams) costs
// two to three times the client CPU per request; the answer here offers
// just what the client reads.
import { Agent, request } from 'undici';

/** Idle connections are unref'd by undici, so the shared agent never keeps a process alive. */
const agent = new Agent({ keepAliveTimeout: 4_000 });

export interface HttpAnswer {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  arrayBuffer(): Promise<ArrayBuffer>;
  json(): Promise<unknown>;
  text(): Promise<string>;
}

export interface HttpRequest {
  method: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  /**
   * Deadline in ms for the answer's headers, and for each pause while its
   * body arrives: undici's own timers, not an AbortSignal per request (whose
   * timer and event plumbing cost ~5% of the client's CPU under load).
   */
  timeoutMs: number;
}

/** Sends one request; rejects (like fetch) only when no answer arrived: connection failure or timeout (see isTimeoutError). */
export async function send(url: string, req: HttpRequest): Promise<HttpAnswer> {
  const res = await request(url, {
    method: req.method as 'GET',
    headers: req.headers,
    body: req.body,
    headersTimeout: req.timeoutMs,
    bodyTimeout: req.timeoutMs,
    dispatcher: agent,
  });
  const headers = res.headers;
  return {
    status: res.statusCode,
    headers: {
      get(name: string): string | null {
        const v = headers[name.toLowerCase()];
        if (v === undefined) return null;
        return Array.isArray(v) ? v.join(', ') : v;
      },
    },
    arrayBuffer: () => res.body.arrayBuffer(),
    json: () => res.body.json(),
    text: () => res.body.text(),
  };
}

/** The answer did not come in time (undici's headers or body timeout). */
export function isTimeoutError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
}
