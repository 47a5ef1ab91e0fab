// The client's HTTP exchange: undici's `request` through one keep-alive
// Agent shared by every RingkvClient in the process (a pool of connections
// per node, reused across requests). Global fetch runs on undici too, but
// its WHATWG layer (Request/Response/Headers objects, web streams) costs
// two to three times the client CPU per request; the answer here offers
// just what the client reads.
import { Pool } from 'undici';

/**
 * How the client checks a node's certificate on https:// URLs: against `ca`
 * (PEM; the cluster's CA), or Node's trusted roots without it. The server's
 * host name or IP must match the certificate either way.
 */
export interface ClientTls {
  ca?: string | Buffer;
}

/**
 * One keep-alive connection pool per node (origin), shared by every
 * RingkvClient in the process; asking a pool directly skips the agent's
 * per-request URL parsing and origin lookup. Idle connections are unref'd by
 * undici, so the pools never keep a process alive.
 */
const pools = new Map<string, Pool>();
/**
 * Largest answer header block the client reads. A context may cover 1024
 * actors of up to 255 bytes each (1 + 1024 * (1 + 255 + 8) bytes, ~361 KB as
 * base64url in `x-ringkv-context`); undici's default of 16 KiB refused a
 * 1024-actor context with "Headers Overflow Error" (issue 9, finding 6).
 */
export const MAX_HEADER_BYTES = 1024 * 1024;
/** A node's base URL ('http://host:port', maybe with a path prefix) and TLS options → its origin's pool and the prefix. */
const bases = new Map<string, { pool: Pool; prefix: string }>();
/** Each distinct ClientTls gets its own pools: a connection verified against one CA is never reused for a client trusting another. */
const tlsIds = new WeakMap<ClientTls, number>();
let nextTlsId = 1;

function target(base: string, tls: ClientTls | undefined): { pool: Pool; prefix: string } {
  let tlsId = 0;
  if (tls !== undefined) {
    tlsId = tlsIds.get(tls) ?? nextTlsId++;
    tlsIds.set(tls, tlsId);
  }
  const key = `${tlsId} ${base}`;
  let t = bases.get(key);
  if (t === undefined) {
    const url = new URL(base);
    const poolKey = `${tlsId} ${url.origin}`;
    let pool = pools.get(poolKey);
    if (pool === undefined) {
      pool = new Pool(url.origin, {
        keepAliveTimeout: 4_000,
        maxHeaderSize: MAX_HEADER_BYTES,
        ...(url.protocol === 'https:' && tls?.ca !== undefined ? { connect: { ca: tls.ca, rejectUnauthorized: true } } : {}),
      });
      pools.set(poolKey, pool);
    }
    t = { pool, prefix: url.pathname.replace(/\/+$/, '') };
    bases.set(key, t);
  }
  return t;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: { get(name: string): string | null; entries(): Array<[string, string]> };
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

/**
 * Sends one request to the node at `base` ('http://host:port') for `path`
 * (with its query); rejects (like fetch) only when no answer arrived:
 * connection failure or timeout (see isTimeoutError).
 */
export async function send(base: string, path: string, req: HttpRequest, tls?: ClientTls): Promise<HttpAnswer> {
  const { pool, prefix } = target(base, tls);
  const res = await pool.request({
    method: req.method as 'GET',
    path: prefix + path,
    headers: req.headers,
    body: req.body,
    headersTimeout: req.timeoutMs,
    bodyTimeout: req.timeoutMs,
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
      /** Every header, names lower-cased (undici's), repeated ones joined. */
      entries(): Array<[string, string]> {
        return Object.entries(headers).flatMap(([name, v]) => (v === undefined ? [] : [[name, Array.isArray(v) ? v.join(', ') : v] as [string, string]]));
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
