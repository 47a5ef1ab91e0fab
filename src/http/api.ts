// The client-facing HTTP API on uWebSockets.js (docs/http.md, openapi.yaml).
// Handlers read everything they need from the request synchronously (uWS
// requests live only for the handler's first tick), then await the node and
// answer corked, unless the client went away meanwhile.
import { canonicalAttributes, decodeRecord, recordContextBytes, type DecodedRecord, type WriteAttributes } from '../record/codec.js';
import { EngineError } from '../engine/types.js';
import { NodeError } from '../node/errors.js';
import { SetError, type SetOps, type SetResult } from '../node/sets.js';
import { randomBytes } from 'node:crypto';
import type { BucketProps } from '../core/membership.js';
import { TOKEN_SECRET_BYTES, TokenError, issueToken, revokeToken, type TokenGrant } from '../core/tokens.js';
import type { RequestOptions, RingkvNode } from '../node/node.js';
import { TransportError } from '../transport/types.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from '../transport/uws.js';
import {
  CONTEXT_HEADER,
  LAST_MODIFIED_HEADER,
  META_HEADER_PREFIX,
  acceptsMultipart,
  attributeHeaders,
  encodeMultipartSiblings,
  wireSibling,
  STATUS_OF_ERROR,
  STOPPING_HEADER,
  TRY_NODES_HEADER,
  decodeContextHeader,
  encodeContextHeader,
  percentDecode,
  ringDocument,
  RING_VERSION_HEADER,
  type ErrorDocument,
  type SiblingsDocument,
} from './wire.js';
import { type AuthOptions, guardRoutes } from './auth.js';
import { HttpError, type Reply, type RouteKit, json } from './route-kit.js';
import { registerRepairRoutes } from './repair-routes.js';
import { type LogLevelControl, registerAdminRoutes } from './admin-routes.js';
import { registerUiRoutes } from './ui-routes.js';
import { type OpsHooks, registerOpsRoutes } from './ops-routes.js';
import { LISTING_ROUTE_METHODS, registerListingRoutes } from './listing-routes.js';
import { MERGE_ROUTE_METHODS, registerMergeRoutes } from './merge-routes.js';

export interface ApiLimits {
  /** Largest PUT body (an object's value). */
  maxValueBytes: number;
  /** Largest JSON body (bucket properties, admin). */
  maxJsonBytes: number;
  /** Longest key (the engine's limit). Checked here because a read of an over-long key would otherwise fail at every replica and answer 503. */
  maxKeyBytes?: number;
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 201: 'Created', 204: 'No Content', 300: 'Multiple Choices', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  409: 'Conflict', 413: 'Payload Too Large', 500: 'Internal Server Error', 503: 'Service Unavailable',
};


const STOPPING: Reply = {
  ...json(503, { error: 'NODE_STOPPING', message: 'this node is stopping and did not act on the request: send it to another node' }, { [STOPPING_HEADER]: '1' }),
  close: true,
};

/**
 * Registers every route on `app`; `inflight.count` tracks requests being
 * handled (for a graceful stop). Once `inflight.stopping` is set, every new
 * request gets 503 NODE_STOPPING and its connection is closed: a stopped
 * listen socket takes no new connections, but keep-alive connections a
 * client already holds would otherwise reach a node whose engine is closed.
 */
export function registerApi(
  app: TemplatedApp,
  node: RingkvNode,
  limits: ApiLimits,
  inflight: { count: number; stopping?: boolean } = { count: 0 },
  /** Extra /status sections from services beside the node (transfers in progress). */
  statusExtras: () => Record<string, unknown> = () => ({}),
  /** Token checks (src/http/auth.ts): on unless the node runs in the insecure loopback development mode. */
  auth: AuthOptions = { required: true },
  /** The node's logger, for /admin/log-level (src/http/admin-routes.ts; startServer always gives it). */
  logLevel?: LogLevelControl,
  /** Drain (src/http/ops-routes.ts); without it POST /admin/drain answers 400. */
  ops?: OpsHooks,
): void {
  // Every route below is registered through the access check (ROUTE_ACCESS).
  const noTokens = {};
  app = guardRoutes(app, { auth, tokens: () => node.clusterState.tokens ?? noTokens, registry: node.metrics.registry });
  const handle = (res: HttpResponse, run: () => Promise<Reply>): void => {
    if (inflight.stopping) {
      respond(res, async () => STOPPING, () => node.clusterState.ring.version);
      return;
    }
    inflight.count++;
    // Every answer carries the node's ring version: a client routing by an older ring refreshes it.
    respond(res, () => run().finally(() => inflight.count--), () => node.clusterState.ring.version);
  };
  // Client reads and writes: refused while the node drains (docs/cluster.md "Drain"), naming nodes to ask instead.
  const handleData = (res: HttpResponse, run: () => Promise<Reply>): void => {
    if (node.isDraining && !inflight.stopping) respond(res, async () => drainingReply(node), () => node.clusterState.ring.version);
    else handle(res, run);
  };

  app.get('/kv/:bucket/:key', (res, req) => {
    const { bucket, key } = names(req, limits);
    const opts = requestOptions(req, ['r', 'pr', 'n', 'timeout', 'fanout']);
    const multipart = acceptsMultipart(req.getHeader('accept'));
    handleData(res, async () => {
      refuseSetBucket(node, bucket());
      return readObject(node, bucket(), key(), shrinkToN(node, bucket(), opts()), multipart);
    });
  });

  const write = (res: HttpResponse, req: HttpRequest, isDelete: boolean) => {
    const { bucket, key } = names(req, limits);
    const opts = requestOptions(req, ['w', 'dw', 'pw', 'n', 'timeout', 'returnbody']);
    const contextHeader = req.getHeader(CONTEXT_HEADER);
    const declared = bodyLength(req);
    const given = isDelete ? {} : writeAttributes(req);
    const multipart = acceptsMultipart(req.getHeader('accept'));
    handleData(res, async () => {
      refuseSetBucket(node, bucket());
      const context = parseContext(contextHeader);
      // Checked here too (the engine's limits and codes): a refused write is not forwarded.
      const attrs = canonicalAttributes(given.contentType, given.meta);
      const value = isDelete ? null : await readBody(res, limits.maxValueBytes, declared);
      const result = await node.put(bucket(), key(), context, value, shrinkToN(node, bucket(), opts()), attrs ?? {});
      const headers = { [CONTEXT_HEADER]: encodeContextHeader(recordContextBytes(result.record)) };
      if (!isDelete && opts.returnBody) return objectReply(result.record, headers, undefined, multipart);
      return { status: 204, headers };
    });
  };
  app.put('/kv/:bucket/:key', (res, req) => write(res, req, false));
  app.post('/kv/:bucket/:key', (res, req) => write(res, req, false));
  app.del('/kv/:bucket/:key', (res, req) => write(res, req, true));

  app.get('/buckets/:bucket/props', (res, req) => {
    const bucket = req.getParameter(0) ?? '';
    handle(res, async () => {
      const name = bucketName(bucket);
      return json(200, { bucket: name, props: node.bucketProps(name) });
    });
  });
  app.put('/buckets/:bucket/props', (res, req) => {
    const bucket = req.getParameter(0) ?? '';
    const declared = bodyLength(req);
    handle(res, async () => {
      const body = parseJson(await readBody(res, limits.maxJsonBytes, declared));
      const change = ((body as { props?: unknown }).props ?? body) as Partial<BucketProps>;
      const name = bucketName(bucket);
      const props = await node.setBucketProps(name, change);
      return json(200, { bucket: name, props });
    });
  });

  // Sets (docs/http.md "Sets"): buckets with the property type 'set'.
  const sets = node.sets;
  app.get('/sets/:bucket/:key', (res, req) => {
    const { bucket, key } = names(req, limits);
    const opts = requestOptions(req, SET_READ_QUERY);
    handleData(res, async () => setReply(await sets.setGet(bucket(), key(), shrinkToN(node, bucket(), opts()))));
  });
  app.post('/sets/:bucket/:key', (res, req) => {
    const { bucket, key } = names(req, limits);
    const opts = requestOptions(req, SET_UPDATE_QUERY);
    const declared = bodyLength(req);
    handleData(res, async () => {
      const b = bucket();
      const k = key();
      const o = shrinkToN(node, b, opts());
      sets.checkBucket(b);
      // The elements of one update must fit a value: twice the value limit leaves room for base64 and JSON.
      const ops = parseSetOps(parseJson(await readBody(res, Math.max(2 * limits.maxValueBytes, limits.maxJsonBytes), declared)));
      return setReply(await sets.setUpdate(b, k, ops, o));
    });
  });

  // The dashboard's static files (docs/dashboard.md): open, no data in them.
  registerUiRoutes(app, () => inflight.stopping === true);

  app.get('/ping', (res) => handle(res, async () => ({ status: 200, headers: { 'content-type': 'text/plain' }, body: 'pong' })));
  app.get('/status', (res) => handle(res, async () => json(200, { ...node.status(), ...statusExtras() })));
  app.get('/ring', (res) =>
    handle(res, async () => {
      return json(200, ringDocument(node.clusterState, node.hasJoined));
    }),
  );
  app.get('/metrics', (res) =>
    handle(res, async () => ({
      status: 200,
      headers: { 'content-type': node.metrics.registry.contentType },
      body: await node.metrics.exposition(),
    })),
  );

  const kit: RouteKit = {
    app,
    handle,
    jsonBody: (res, req) => {
      const declared = bodyLength(req);
      return async () => {
        const raw = await readBody(res, limits.maxJsonBytes, declared);
        return (raw.length ? parseJson(raw) : {}) as Record<string, unknown>;
      };
    },
  };
  registerRepairRoutes(kit, node);

  app.post('/admin/join', (res, req) => {
    const declared = bodyLength(req);
    handle(res, async () => {
      const body = parseJson(await readBody(res, limits.maxJsonBytes, declared)) as { seed?: unknown };
      if (typeof body.seed !== 'string' || !/^[^\s:]+:\d{1,5}$/.test(body.seed)) throw new HttpError('BAD_REQUEST', 'body must be {"seed": "host:port"}');
      await node.join(body.seed);
      return json(200, node.status());
    });
  });
  app.post('/admin/leave', (res, req) => {
    const declared = bodyLength(req);
    handle(res, async () => {
      const raw = await readBody(res, limits.maxJsonBytes, declared);
      const body = (raw.length ? parseJson(raw) : {}) as { node?: unknown };
      if (body.node !== undefined && typeof body.node !== 'string') throw new HttpError('BAD_REQUEST', 'node must be a string');
      await node.leave(body.node ?? node.id);
      return json(200, node.status());
    });
  });

  // Client tokens (docs/security.md "Clients, tokens and roles"): the token itself is shown once, here.
  app.get('/admin/tokens', (res) =>
    handle(res, async () => {
      const tokens = Object.entries(node.clusterState.tokens ?? {}).map(([id, e]) => ({
        id,
        role: e.role,
        bucket: e.bucket ?? null,
        label: e.label ?? null,
        createdAtMs: e.createdAtMs,
        revokedAtMs: e.revokedAtMs ?? null,
      }));
      return json(200, { tokens });
    }),
  );
  app.post('/admin/tokens', (res, req) => {
    const declared = bodyLength(req);
    handle(res, async () => {
      const body = parseJson(await readBody(res, limits.maxJsonBytes, declared)) as Record<string, unknown>;
      for (const field of Object.keys(body)) {
        if (!['role', 'bucket', 'label'].includes(field)) throw new HttpError('BAD_REQUEST', `unknown field '${field}' (allowed: role, bucket, label)`);
      }
      const grant = body as unknown as TokenGrant;
      const issued = await node.changeTokens((table, nowMs) => {
        const made = issueToken(table, grant, randomBytes(TOKEN_SECRET_BYTES), nowMs);
        return { table: made.table, result: made };
      });
      return json(201, { id: issued.id, token: issued.token, role: grant.role, bucket: grant.bucket ?? null, label: grant.label ?? null });
    });
  });
  app.del('/admin/tokens/:id', (res, req) => {
    const id = req.getParameter(0) ?? '';
    handle(res, async () => {
      await node.changeTokens((table, nowMs) => ({ table: revokeToken(table, id, nowMs), result: undefined }));
      const entry = node.clusterState.tokens?.[id];
      return json(200, { id, revokedAtMs: entry?.revokedAtMs ?? null });
    });
  });

  if (logLevel) registerAdminRoutes(kit, logLevel);
  registerOpsRoutes(app, node, ops, {
    handle,
    bodyLength,
    json: (status, doc) => json(status, doc),
    badRequest: (message) => new HttpError('BAD_REQUEST', message),
    readJson: async (res, declared) => {
      const raw = await readBody(res, limits.maxJsonBytes, declared);
      return (raw.length === 0 ? {} : parseJson(raw)) as Record<string, unknown>;
    },
  });
  registerListingRoutes(app, node.listing, handle);
  registerMergeRoutes(app, node.records, { handle, bodyLength, readBody });

  // A 405 names the methods the path has (RFC 9110 §15.5.6: `Allow`). This
  // uWS build's `any` covers only the nine standard methods (GET POST HEAD PUT
  // DELETE CONNECT OPTIONS TRACE PATCH): a request with any other method
  // (QUERY, PROPFIND, FOO, lower-case `get`) matches no route, and uWS closes
  // the connection without an answer (docs/http.md, "Malformed requests").
  for (const [pattern, methods] of Object.entries(ROUTE_METHODS)) app.any(pattern, notAllowed(handle, methods));
  app.any('/*', (res, req) => {
    const url = req.getUrl();
    const head = req.getCaseSensitiveMethod() === 'HEAD';
    handle(res, async () => {
      // `/kv/b/` or `/sets/b/`: a key of zero bytes, which no key may be.
      const reply = /^\/(kv|sets)\/[^/]+\/$/.test(url)
        ? errorReply(new HttpError('BAD_REQUEST', 'key must be 1..maxKeyBytes bytes (got an empty key)'))
        : errorReply(new HttpError('NOT_FOUND', `no route ${url}`));
      return head ? { ...reply, body: '' } : reply;
    });
  });
}

/** The methods each route serves (openapi.yaml's paths; test/http/methods.test.ts checks they agree). Others get 405. */
export const ROUTE_METHODS: Readonly<Record<string, readonly string[]>> = {
  '/kv/:bucket/:key': ['GET', 'PUT', 'POST', 'DELETE'],
  '/sets/:bucket/:key': ['GET', 'POST'],
  '/buckets/:bucket/props': ['GET', 'PUT'],
  '/ping': ['GET'],
  '/status': ['GET'],
  '/ring': ['GET'],
  '/metrics': ['GET'],
  '/admin/join': ['POST'],
  '/admin/leave': ['POST'],
  '/admin/drain': ['POST'],
  '/admin/forget': ['POST'],
  '/admin/replace': ['POST'],
  '/admin/tokens': ['GET', 'POST'],
  '/admin/tokens/:id': ['DELETE'],
  '/admin/repair': ['POST'],
  '/admin/repair/:id': ['GET'],
  '/admin/aae': ['GET'],
  '/admin/log-level': ['GET', 'POST'],
  '/ui': ['GET'],
  '/ui/': ['GET'],
  '/ui/assets/:file': ['GET'],
  ...LISTING_ROUTE_METHODS,
  ...MERGE_ROUTE_METHODS,
};

function notAllowed(handle: (res: HttpResponse, run: () => Promise<Reply>) => void, methods: readonly string[]) {
  const allow = methods.join(', ');
  const use = methods.length === 1 ? methods[0]! : `${methods.slice(0, -1).join(', ')} or ${methods.at(-1)!}`;
  return (res: HttpResponse, req: HttpRequest): void => {
    // An answer to HEAD has no body: one here would be read as the start of the next answer on the connection.
    const head = req.getCaseSensitiveMethod() === 'HEAD';
    handle(res, async () => {
      const reply = errorReply(new HttpError('METHOD_NOT_ALLOWED', `use ${use}`, { allow: [...methods] }));
      return { ...reply, headers: { ...reply.headers, allow }, ...(head ? { body: '' } : {}) };
    });
  };
}

// ---------------------------------------------------------------------------

/** 503 NODE_DRAINING: not acted on; the members to send it to instead (valid, not draining, not this node). */
function drainingReply(node: RingkvNode): Reply {
  const others = Object.values(node.clusterState.members)
    .filter((m) => m.id !== node.id && m.status === 'valid' && m.draining !== true)
    .map((m) => m.address);
  return {
    ...json(
      503,
      { error: 'NODE_DRAINING', message: `${node.id} is draining and did not act on the request: send it to another node`, nodes: others },
      { [STOPPING_HEADER]: '1', [TRY_NODES_HEADER]: others.join(',') },
    ),
    // A body it will not read is not drained; and a client holding a connection here should move on.
    close: true,
  };
}

const SET_READ_QUERY = ['r', 'n', 'timeout'];
const SET_UPDATE_QUERY = ['r', 'w', 'dw', 'n', 'timeout'];

/** /kv on a set bucket: its values are set states, read and written only through /sets. */
function refuseSetBucket(node: RingkvNode, bucket: Buffer): void {
  const name = bucket.toString('utf8');
  if (node.bucketProps(name).type === 'set') {
    throw new HttpError('BUCKET_IS_A_SET', `bucket '${name}' holds sets: use /sets/${name}/{key}`, { hint: 'GET /sets/{bucket}/{key} reads a set, POST adds and removes elements' });
  }
}

function setReply(result: SetResult): Reply {
  return json(200, { elements: result.elements.map((e) => e.toString('base64')), context: encodeContextHeader(result.context) });
}

/** `{"add": [...], "remove": [...], "encoding": "utf8" | "base64", "context": "..."}`; unknown fields are refused. */
function parseSetOps(body: unknown): SetOps {
  const doc = body as Record<string, unknown>;
  for (const field of Object.keys(doc)) {
    if (!['add', 'remove', 'encoding', 'context'].includes(field)) throw new HttpError('BAD_REQUEST', `unknown field '${field}' (allowed: add, remove, encoding, context)`);
  }
  const encoding = doc.encoding ?? 'utf8';
  if (encoding !== 'utf8' && encoding !== 'base64') throw new HttpError('BAD_REQUEST', "encoding must be 'utf8' or 'base64'");
  const list = (field: 'add' | 'remove'): Buffer[] => {
    const v = doc[field];
    if (v === undefined) return [];
    if (!Array.isArray(v) || !v.every((e) => typeof e === 'string')) throw new HttpError('BAD_REQUEST', `${field} must be a list of strings`);
    return v.map((e: string) => {
      if (encoding === 'utf8') return Buffer.from(e, 'utf8');
      const bytes = Buffer.from(e, 'base64');
      // Buffer's decoder skips bad characters silently: insist on canonical base64.
      if (bytes.toString('base64') !== e) throw new HttpError('BAD_REQUEST', `${field} holds an element that is not padded standard base64`);
      return bytes;
    });
  };
  let context: Buffer | null = null;
  if (doc.context !== undefined && doc.context !== null) {
    if (typeof doc.context !== 'string') throw new HttpError('BAD_CONTEXT', 'context must be the string a set read returned');
    context = parseContext(doc.context);
  }
  return { add: list('add'), remove: list('remove'), context };
}

async function readObject(node: RingkvNode, bucket: Buffer, key: Buffer, opts: RequestOptions, multipart: boolean): Promise<Reply> {
  const { record, decoded } = await node.get(bucket, key, opts);
  if (!record || !decoded) return json(404, { error: 'NOT_FOUND', message: 'no such key' });
  return objectReply(record, {}, decoded, multipart);
}

/**
 * A write's content type and `x-ringkv-meta-*` headers, read now (uWS
 * requests live for the handler's first tick); checked later, in the handler.
 * A header given twice is one value joined with ", " (RFC 9110 §5.3).
 */
function writeAttributes(req: HttpRequest): WriteAttributes {
  const meta = new Map<string, string>();
  let contentType: string | undefined;
  req.forEach((name, value) => {
    // uWS hands header names lower-cased.
    if (name === 'content-type') contentType = contentType === undefined ? value.trim() : `${contentType}, ${value.trim()}`;
    else if (name.startsWith(META_HEADER_PREFIX)) {
      const key = name.slice(META_HEADER_PREFIX.length);
      const prev = meta.get(key);
      meta.set(key, prev === undefined ? value.trim() : `${prev}, ${value.trim()}`);
    }
  });
  return { contentType, meta: [...meta] };
}

/**
 * 200 with the value (its content type and metadata as headers), 300 with
 * every sibling (JSON, or multipart/mixed when the client accepts it), 404
 * (with context) when every sibling is a tombstone.
 */
function objectReply(record: Buffer, extra: Record<string, string>, decoded: DecodedRecord = decodeRecord(record), multipart = false): Reply {
  const context = encodeContextHeader(recordContextBytes(record));
  const headers = { ...extra, [CONTEXT_HEADER]: context };
  const live = decoded.siblings.filter((s) => !s.tombstone);
  if (live.length === 0) return json(404, { error: 'NOT_FOUND', message: 'deleted', deleted: true }, headers);
  if (decoded.siblings.length === 1) {
    const only = wireSibling(decoded.siblings[0]!);
    return {
      status: 200,
      headers: { ...headers, ...attributeHeaders(only), [LAST_MODIFIED_HEADER]: String(only.lastModified) },
      body: only.value!,
    };
  }
  const siblings = decoded.siblings.map(wireSibling);
  if (multipart) {
    const { body, contentType } = encodeMultipartSiblings(siblings);
    return { status: 300, headers: { ...headers, 'content-type': contentType }, body };
  }
  const doc: SiblingsDocument = {
    context,
    siblings: siblings.map((s) => ({
      value: s.value === null ? null : s.value.toString('base64'),
      deleted: s.value === null,
      lastModified: s.lastModified,
      contentType: s.contentType,
      meta: Object.fromEntries(s.meta),
    })),
  };
  return json(300, doc, headers);
}

/** Reads bucket and key parameters now; decoding (which may fail) happens inside the handler. */
function names(req: HttpRequest, limits: ApiLimits): { bucket: () => Buffer; key: () => Buffer } {
  const bucket = req.getParameter(0) ?? '';
  const key = req.getParameter(1) ?? '';
  const decodeKey = (): Buffer => {
    const bytes = decodeName(key);
    if (limits.maxKeyBytes !== undefined && bytes.length > limits.maxKeyBytes) {
      throw new HttpError('KEY_TOO_LARGE', `key is longer than ${limits.maxKeyBytes} bytes`);
    }
    return bytes;
  };
  return { bucket: () => decodeName(bucket), key: decodeKey };
}

function decodeName(segment: string): Buffer {
  try {
    return percentDecode(segment);
  } catch (err) {
    throw new HttpError('BAD_REQUEST', `bad URL escape: ${(err as Error).message}`);
  }
}

/** A bucket name for the properties routes: 1..255 bytes without 0x00 (as the engine requires of buckets). */
function bucketName(segment: string): string {
  const bytes = decodeName(segment);
  if (bytes.length === 0 || bytes.length > 255) throw new HttpError('BAD_REQUEST', 'bucket name must be 1..255 bytes');
  if (bytes.includes(0)) throw new HttpError('BAD_REQUEST', 'bucket contains a 0x00 byte');
  return bytes.toString('utf8');
}

function parseContext(header: string): Buffer | null {
  try {
    return decodeContextHeader(header);
  } catch {
    throw new HttpError('BAD_CONTEXT', `${CONTEXT_HEADER} must be the base64url context a read returned`);
  }
}

type ParsedOptions = (() => RequestOptions) & { returnBody: boolean };

/**
 * `?n=` without r, w or dw: the bucket's r, w and dw shrink to the request's
 * n, as they do for a cluster smaller than n (issue 9, finding 7). An r, w or
 * dw given explicitly is kept and checked against n by the node.
 */
function shrinkToN(node: RingkvNode, bucket: Buffer, o: RequestOptions): RequestOptions {
  if (o.n === undefined) return o;
  const props = node.bucketProps(bucket.toString('utf8'));
  const out = { ...o };
  if (out.r === undefined && props.r > o.n) out.r = o.n;
  if (out.w === undefined && props.w > o.n) out.w = o.n;
  if (out.dw === undefined && props.dw > (out.w ?? props.w)) out.dw = out.w ?? props.w;
  return out;
}

/** Query parameters as request options; unknown parameters are refused so typos do not pass silently. */
function requestOptions(req: HttpRequest, allowed: string[]): ParsedOptions {
  const raw = req.getQuery();
  // Most requests carry no parameters.
  if (!raw) return Object.assign(() => ({}), { returnBody: false });
  const query = new URLSearchParams(raw);
  const parse = (): RequestOptions => {
    const out: RequestOptions = {};
    for (const [name, raw] of query) {
      if (!allowed.includes(name)) throw new HttpError('BAD_REQUEST', `unknown query parameter '${name}' (allowed: ${allowed.join(', ')})`);
      if (name === 'returnbody') {
        if (raw !== 'true' && raw !== 'false') throw new HttpError('BAD_REQUEST', `returnbody must be true or false (got '${raw}')`);
        continue;
      }
      if (name === 'fanout') {
        // The bucket's read_fanout for this read (docs/cluster.md "Read fan-out").
        if (raw !== 'all' && raw !== 'quorum') throw new HttpError('BAD_REQUEST', `fanout must be all or quorum (got '${raw}')`);
        out.readFanout = raw;
        continue;
      }
      if (!/^\d{1,7}$/.test(raw)) throw new HttpError('BAD_REQUEST', `${name} must be a non-negative integer`);
      const v = Number(raw);
      if (name === 'timeout') out.timeoutMs = v;
      else out[name as 'n' | 'r' | 'w' | 'dw' | 'pr' | 'pw'] = v;
    }
    return out;
  };
  return Object.assign(parse, { returnBody: query.get('returnbody') === 'true' });
}

function parseJson(body: Buffer): unknown {
  try {
    const v: unknown = JSON.parse(body.toString('utf8'));
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v;
  } catch (err) {
    throw new HttpError('BAD_REQUEST', `body must be a JSON object: ${(err as Error).message}`);
  }
}

/** Declared body length: a number, or -1 for a chunked body of unknown length. */
function bodyLength(req: HttpRequest): number {
  if (req.getHeader('transfer-encoding')) return -1;
  const n = Number(req.getHeader('content-length') || 0);
  return Number.isFinite(n) && n >= 0 ? n : -1;
}

/** Collects the request body, refusing it as soon as it passes `max` bytes. */
function readBody(res: HttpResponse, max: number, declared: number): Promise<Buffer> {
  if (declared === 0) return Promise.resolve(Buffer.alloc(0));
  if (declared > max) return Promise.reject(new HttpError('BODY_TOO_LARGE', `body of ${declared} bytes is over the limit of ${max}`, { limit: max }));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    res.onData((chunk, isLast) => {
      if (done) return;
      size += chunk.byteLength;
      if (size > max) {
        done = true;
        reject(new HttpError('BODY_TOO_LARGE', `body is over the limit of ${max} bytes`, { limit: max }));
        return;
      }
      // uWS reuses the chunk's memory after this callback: copy it.
      chunks.push(Buffer.from(Buffer.from(chunk)));
      if (isLast) {
        done = true;
        resolve(Buffer.concat(chunks, size));
      }
    });
  });
}

/** Runs a handler and writes its reply (or its error as JSON), unless the client aborted. */
function respond(res: HttpResponse, run: () => Promise<Reply>, ringVersion: () => number): void {
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  run().then(
    (reply) => send(res, reply, () => aborted, ringVersion()),
    (err: unknown) => send(res, errorReply(err), () => aborted, ringVersion()),
  );
}

function send(res: HttpResponse, reply: Reply, aborted: () => boolean, ringVersion: number): void {
  if (aborted()) return;
  res.cork(() => {
    res.writeStatus(`${reply.status} ${STATUS_TEXT[reply.status] ?? ''}`);
    for (const [k, v] of Object.entries(reply.headers ?? {})) res.writeHeader(k, v);
    res.writeHeader(RING_VERSION_HEADER, String(ringVersion));
    // Closing after an oversize body means the unread rest never has to be drained.
    res.end(reply.body ?? '', reply.status === 413 || reply.close === true);
  });
}

function transportErrorCode(err: TransportError): string {
  if (err.code === 'REMOTE' && err.remoteCode !== undefined && STATUS_OF_ERROR[err.remoteCode] !== undefined) return err.remoteCode;
  return err.code === 'TIMEOUT' ? 'TIMEOUT' : 'UNAVAILABLE';
}

function errorReply(err: unknown): Reply {
  let doc: ErrorDocument;
  if (err instanceof HttpError || err instanceof NodeError || err instanceof SetError || err instanceof TokenError) doc = { error: err.code, message: err.message, ...err.details };
  else if (err instanceof EngineError) doc = { error: err.code === 'INVALID_ARGUMENT' ? 'BAD_REQUEST' : err.code, message: err.message };
  // A peer request that escaped the node (e.g. an admin join): the cluster's fault, not a server bug.
  else if (err instanceof TransportError) doc = { error: transportErrorCode(err), message: err.message };
  else doc = { error: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
  return json(STATUS_OF_ERROR[doc.error] ?? 500, doc);
}
