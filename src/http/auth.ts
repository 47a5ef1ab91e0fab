// Who may call which HTTP route (issue 11, item 3; docs/security.md
// "Clients, tokens and roles"). Every route the API registers goes through
// `guardRoutes`, which looks the route up in ROUTE_ACCESS and refuses to
// register one that has no entry: a new route cannot be left open by
// accident. A request names its token as `Authorization: Bearer rkv_…`; the
// check runs synchronously in the uWS handler (the request object lives only
// that long) against this node's copy of the cluster's token table, so a
// revocation takes effect on a node as soon as gossip brings it there.
import { createHash, timingSafeEqual } from 'node:crypto';
import { Counter, type Registry } from 'prom-client';
import { type Role, type TokenEntry, type TokenTable, findToken, roleCovers } from '../core/tokens.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from '../transport/uws.js';
import { percentDecode } from './wire.js';

export interface AuthOptions {
  /**
   * Check tokens on every route but the open ones (default true). Only the
   * explicit insecure loopback development mode turns it off; then every
   * route is open and tokens are not looked at.
   */
  required: boolean;
}

/**
 * What a route needs. `open`: nothing. Otherwise a live token whose role
 * covers `role`, and by `scope`: `bucket` — a cluster-wide token, or one
 * scoped to the bucket named by the route's first parameter; `cluster` — a
 * cluster-wide token; `any` — any token, bucket-scoped ones included.
 */
export type Access = 'open' | { readonly role: Role; readonly scope: 'bucket' | 'cluster' | 'any' };

const data = (role: Role): Access => ({ role, scope: 'bucket' });
const cluster = (role: Role): Access => ({ role, scope: 'cluster' });

/**
 * Every route of the API (`METHOD pattern` as registered with uWS) and what
 * it needs. openapi.yaml states the same per operation (`x-ringkv-role`);
 * test/http/auth-routes.test.ts checks every operation there against a node.
 */
export const ROUTE_ACCESS: Readonly<Record<string, Access>> = {
  'GET /ping': 'open',
  'GET /kv/:bucket/:key': data('read'),
  'PUT /kv/:bucket/:key': data('write'),
  'POST /kv/:bucket/:key': data('write'),
  'DELETE /kv/:bucket/:key': data('write'),
  'GET /sets/:bucket/:key': data('read'),
  'POST /sets/:bucket/:key': data('write'),
  'GET /buckets/:bucket/props': data('read'),
  'PUT /buckets/:bucket/props': cluster('admin'),
  // Listings (docs/listing.md): a bucket's keys and objects with a token for the bucket; bucket names and every object cluster-wide only.
  'GET /buckets': cluster('read'),
  'GET /buckets/:bucket/keys': data('read'),
  'GET /buckets/:bucket/objects': data('read'),
  'GET /objects': cluster('read'),
  // Cluster views a client needs to route (the ring) or to see health; bucket-scoped tokens too.
  'GET /status': { role: 'read', scope: 'any' },
  'GET /ring': { role: 'read', scope: 'any' },
  'GET /metrics': cluster('metrics'),
  'POST /admin/join': cluster('admin'),
  'POST /admin/leave': cluster('admin'),
  'POST /admin/drain': cluster('admin'),
  'POST /admin/forget': cluster('admin'),
  'POST /admin/replace': cluster('admin'),
  'GET /admin/tokens': cluster('admin'),
  'POST /admin/tokens': cluster('admin'),
  'DELETE /admin/tokens/:id': cluster('admin'),
  'POST /admin/repair': cluster('admin'),
  'GET /admin/repair/:id': cluster('admin'),
  'GET /admin/aae': cluster('admin'),
  'GET /admin/log-level': cluster('admin'),
  'POST /admin/log-level': cluster('admin'),
  // The dashboard's page and assets hold no data: every call it makes goes to the routes above, with a token.
  'GET /ui': 'open',
  'GET /ui/': 'open',
  'GET /ui/assets/:file': 'open',
  // Restore (docs/backup.md): a record carries any causal context, so merging one is an admin's act.
  'POST /admin/merge': cluster('admin'),
};

/**
 * Catch-all handlers (`app.any`) answer 404 or 405 and act on nothing; they
 * need a valid token (any role) so that a stranger learns nothing but 401.
 */
const FALLBACK_ACCESS: Access = { role: 'metrics', scope: 'any' };

const METHODS = { get: 'GET', put: 'PUT', post: 'POST', del: 'DELETE', patch: 'PATCH', head: 'HEAD', options: 'OPTIONS', connect: 'CONNECT', trace: 'TRACE', any: 'ANY' } as const;

export type AuthFailure = { status: 401 | 403; code: 'UNAUTHORIZED' | 'FORBIDDEN'; message: string; details?: Record<string, unknown> };

/** SHA-256 hex of a presented token (node:crypto: the same digest as core/tokens.ts's tokenHash, faster). */
const hashOf = (token: string): string => createHash('sha256').update(token).digest('hex');
const equalHashes = (a: string, b: string): boolean => {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
};

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: string): string | null {
  const m = /^Bearer +([^\s]+) *$/i.exec(header);
  return m ? m[1]! : null;
}

/**
 * Checks one request: null when it may proceed, else why not. `bucket` is
 * the route's first parameter as sent (percent-encoded), for bucket scope.
 */
export function checkAccess(tokens: TokenTable, access: Access, authorization: string, bucketSegment: string | undefined): AuthFailure | null {
  if (access === 'open') return null;
  if (authorization === '') return unauthorized('this route needs a token: send "Authorization: Bearer <token>"');
  const entry = verifiedEntry(tokens, authorization);
  if (entry === null) return unauthorized('the token is unknown, malformed or revoked');
  return forbiddenReason(entry, access, bucketSegment);
}

/**
 * Headers already verified against one token table, by table: a table is
 * replaced (never changed) whenever a token is made or revoked or gossip
 * merges, so a revocation empties the cache of the table it belongs to. Only
 * successes are kept (a stranger cannot fill it), at most MAX_VERIFIED.
 * Saves the hash and the table lookup on every request of a known client.
 */
const verified = new WeakMap<TokenTable, Map<string, TokenEntry & { id: string }>>();
const MAX_VERIFIED = 4096;

function verifiedEntry(tokens: TokenTable, authorization: string): (TokenEntry & { id: string }) | null {
  let cache = verified.get(tokens);
  if (cache === undefined) {
    cache = new Map();
    verified.set(tokens, cache);
  }
  const hit = cache.get(authorization);
  if (hit !== undefined) return hit;
  const token = bearerToken(authorization);
  const entry = token === null ? null : findToken(tokens, token, hashOf, equalHashes);
  if (entry !== null && cache.size < MAX_VERIFIED) cache.set(authorization, entry);
  return entry;
}

function forbiddenReason(entry: TokenEntry & { id: string }, access: Exclude<Access, 'open'>, bucketSegment: string | undefined): AuthFailure | null {
  if (!roleCovers(entry.role, access.role)) {
    return forbidden(`this route needs role '${access.role}' (the token has '${entry.role}')`, { role: access.role });
  }
  if (entry.bucket === undefined || access.scope === 'any') return null;
  if (access.scope === 'cluster') return forbidden(`this route needs a cluster-wide token (the token is for bucket '${entry.bucket}')`, { role: access.role });
  let bucket: Buffer | null = null;
  try {
    bucket = percentDecode(bucketSegment ?? '');
  } catch {
    // A name that does not decode is no bucket the token names.
  }
  if (bucket === null || !bucket.equals(Buffer.from(entry.bucket, 'utf8'))) {
    return forbidden(`the token grants bucket '${entry.bucket}' only`, { role: access.role, bucket: entry.bucket });
  }
  return null;
}

const unauthorized = (message: string): AuthFailure => ({ status: 401, code: 'UNAUTHORIZED', message });
const forbidden = (message: string, details: Record<string, unknown>): AuthFailure => ({ status: 403, code: 'FORBIDDEN', message, details });

export interface GuardContext {
  auth: AuthOptions;
  /** The node's current token table (read on every request: a revocation counts at once); the same object while unchanged. */
  tokens: () => TokenTable;
  /** Where the refusal counter goes. */
  registry?: Registry;
}

/**
 * `app` with every route registration wrapped in its access check; a
 * registration with no ROUTE_ACCESS entry throws (catch-alls excepted: they
 * need any valid token). With `auth.required` false, routes are registered
 * as they are.
 */
export function guardRoutes(app: TemplatedApp, ctx: GuardContext): TemplatedApp {
  const refused = ctx.registry
    ? new Counter({
        name: 'ringkv_http_auth_refused_total',
        help: 'HTTP requests refused by the token check, by reason (missing/invalid token: 401, forbidden: 403)',
        labelNames: ['reason'],
        registers: [ctx.registry],
      })
    : null;
  const guarded: TemplatedApp = new Proxy(app, {
    get(target, prop, receiver) {
      const method = typeof prop === 'string' ? (METHODS as Record<string, string>)[prop] : undefined;
      const original = Reflect.get(target, prop, receiver) as unknown;
      if (method === undefined || typeof original !== 'function') {
        return typeof original === 'function' ? (original as (...a: unknown[]) => unknown).bind(target) : original;
      }
      return (pattern: string, handler: (res: HttpResponse, req: HttpRequest) => void) => {
        const access = method === 'ANY' ? (ROUTE_ACCESS[`ANY ${pattern}`] ?? FALLBACK_ACCESS) : ROUTE_ACCESS[`${method} ${pattern}`];
        if (access === undefined) throw new Error(`route ${method} ${pattern} has no entry in ROUTE_ACCESS (src/http/auth.ts): say who may call it`);
        const bucketScoped = access !== 'open' && access.scope === 'bucket';
        const wrapped = !ctx.auth.required || access === 'open'
          ? handler
          : (res: HttpResponse, req: HttpRequest) => {
              const failure = checkAccess(ctx.tokens(), access, req.getHeader('authorization'), bucketScoped ? req.getParameter(0) : undefined);
              if (failure === null) return handler(res, req);
              refused?.inc({ reason: failure.status === 403 ? 'forbidden' : req.getHeader('authorization') === '' ? 'missing' : 'invalid' });
              // A body the handler will never read: close rather than drain it.
              const hasBody = req.getHeader('transfer-encoding') !== '' || Number(req.getHeader('content-length') || 0) > 0;
              refuse(res, failure, hasBody);
            };
        (original as (p: string, h: typeof handler) => unknown).call(target, pattern, wrapped);
        return guarded;
      };
    },
  });
  return guarded;
}

function refuse(res: HttpResponse, failure: AuthFailure, close: boolean): void {
  const body = JSON.stringify({ error: failure.code, message: failure.message, ...failure.details });
  res.cork(() => {
    res.writeStatus(failure.status === 401 ? '401 Unauthorized' : '403 Forbidden');
    res.writeHeader('content-type', 'application/json');
    // RFC 6750 §3: the scheme a 401 wants; a 403 says the token lacks scope.
    res.writeHeader('www-authenticate', failure.status === 401 ? 'Bearer realm="ringkv"' : 'Bearer realm="ringkv", error="insufficient_scope"');
    res.end(body, close);
  });
}
