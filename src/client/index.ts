// The TypeScript client for ringkv's HTTP API (docs/http.md, openapi.yaml).
//
// Routing 'server' (the default): requests go round-robin over the
// configured nodes, and the receiving node coordinates (or forwards a write
// to a primary). Routing 'client' (Dynamo §6.4): the client keeps the ring
// (GET /ring, refreshed every 10 s and after a routing error) and sends each
// key's request straight to a node of its preference list; without a fresh
// ring it routes as 'server'. A connection failure (no answer: refused, reset
// answer) moves on to the next node, up to every node once; an HTTP error
// answer is final and thrown as a RingkvError. The causal context is opaque:
// pass back what a read returned.
import { bufferView } from '../util/bytes.js';
import type { AaeStatus, NodeStatus, RepairJob, RepairRequest } from '../api-types.js';
import type { BucketProps } from '../core/membership.js';
import { CONTEXT_HEADER, LAST_MODIFIED_HEADER, META_HEADER_PREFIX, RING_VERSION_HEADER, STOPPING_HEADER, parseMultipartSiblings, percentEncode, type RingDocument, type SiblingsDocument } from '../http/wire.js';
import { RingkvError } from './errors.js';
import { isTimeoutError, send, type ClientTls, type HttpAnswer } from './http.js';

export type { ClientTls } from './http.js';
import { baseUrl, keyPreference, parseRingDocument, routeTargets, type ClientRing, type RequestKind } from './routing.js';

export { RingkvError, type ClientErrorCode } from './errors.js';
export type { BucketProps } from '../core/membership.js';

/** A bucket or key: a string (UTF-8) or raw bytes. */
export type Name = string | Uint8Array;

export interface RingkvClientOptions {
  /** Node addresses: 'host:port' or 'http://host:port'. */
  nodes: string[];
  /** Client-side deadline of each request in ms (default 10000). */
  timeoutMs?: number;
  /**
   * 'server' (default): round-robin over `nodes`; the receiving node coordinates.
   * 'client': each key's request goes to a node of its preference list, by a ring
   * the client refreshes (call `close()` to stop the refresh timer).
   */
  routing?: 'client' | 'server';
  /** With routing 'client': how often the ring is refreshed, in ms (default 10000). */
  ringRefreshMs?: number;
  /**
   * HTTPS: 'host:port' addresses (given and from the ring) become https://,
   * and each node's certificate is verified against `ca` (the cluster's CA,
   * PEM) or, without it, Node's trusted roots. Given an https:// node
   * address, the client uses https for the ring's members too.
   */
  tls?: ClientTls;
  /** A client token (`rkv_…`), sent as `Authorization: Bearer` on every request (docs/security.md). */
  token?: string;
}

/** A client token as GET /admin/tokens lists it (never the token itself). */
export interface TokenInfo {
  id: string;
  role: 'metrics' | 'read' | 'write' | 'admin';
  bucket: string | null;
  label: string | null;
  createdAtMs: number;
  revokedAtMs: number | null;
}

export interface ReadOptions {
  r?: number;
  n?: number;
  /** Server-side deadline (the `timeout` parameter); the client waits this plus a second. */
  timeoutMs?: number;
  /** Ask for siblings as multipart/mixed (one part each, Riak's form) instead of the JSON document; the result is the same. */
  multipart?: boolean;
  /** The bucket's read_fanout for this read (`?fanout=`; `get` only): `all` replicas asked, or `quorum` (docs/cluster.md "Read fan-out"). */
  fanout?: 'all' | 'quorum';
}

export interface WriteOptions {
  /** The value's content type (default application/octet-stream); ignored by delete. */
  contentType?: string;
  /**
   * User metadata stored with the value, sent as `x-ringkv-meta-<name>`
   * headers: names a lower-case HTTP token of 1..64 bytes, values printable
   * ASCII without surrounding spaces; at most 32 entries and 8 KiB in all
   * (docs/http.md). Ignored by delete.
   */
  meta?: Record<string, string>;
  /** The context a read returned; null or absent for a blind write. */
  context?: string | null;
  w?: number;
  dw?: number;
  n?: number;
  timeoutMs?: number;
}

export type DeleteOptions = WriteOptions;

export interface Sibling {
  /** The value, or null for a tombstone. */
  value: Buffer | null;
  deleted: boolean;
  /** Write time, ms since the epoch. */
  lastModified: number;
  /** The content type it was written with (application/octet-stream when none was given). */
  contentType: string;
  /** Its user metadata, by name. */
  meta: Record<string, string>;
}

export interface GetResult {
  /** At least one live value. */
  found: boolean;
  /** The key exists only as tombstones (a 404 that carries a context). */
  deleted: boolean;
  /** The live sibling values (one unless there are concurrent writes). */
  values: Buffer[];
  /** Every sibling, tombstones included. */
  siblings: Sibling[];
  /** The context to send with the next write of this key, null when the key never existed. */
  context: string | null;
}

export interface ResolvedResult {
  value: Buffer | null;
  context: string | null;
  /** Siblings were merged and the merge written back. */
  merged: boolean;
}

export interface UpdateOptions extends ReadOptions {
  /** Combines concurrent sibling values into one; without it, siblings make `update` throw SIBLINGS_UNRESOLVED. */
  merge?: (values: Buffer[]) => Buffer;
  w?: number;
  dw?: number;
  /** The written value's content type; default: the current value's (see `carriedAttributes`). */
  contentType?: string;
  /** The written value's user metadata; default: the current value's. */
  meta?: Record<string, string>;
}

/**
 * The content type and metadata a read-modify-write keeps when the caller
 * names none: the current value's, or with siblings the most recently
 * modified live one's (what the reader saw last). None for an absent or
 * deleted key (the server's defaults then).
 */
export function carriedAttributes(siblings: readonly Sibling[]): Pick<WriteOptions, 'contentType' | 'meta'> {
  let newest: Sibling | undefined;
  for (const s of siblings) if (!s.deleted && s.value !== null && (newest === undefined || s.lastModified > newest.lastModified)) newest = s;
  return newest === undefined ? {} : { contentType: newest.contentType, meta: newest.meta };
}

/** GET /ring: the owner table, members' addresses and zones, and each bucket's n. */
export type RingInfo = RingDocument;

/** GET /status, as the node builds it (one definition: src/api-types.ts). */
export type { AaeStatus, NodeStatus, NodeStatusMember as MemberStatus, PartitionAaeRecord, RepairJob, RepairRequest } from '../api-types.js';

/** A set element: a string (UTF-8) or raw bytes. */
export type Element = string | Uint8Array;

export interface SetValue {
  /** The elements, ascending by bytes. */
  elements: Buffer[];
  /** The set's causal context: pass it to `setUpdate` so removes take only what this read saw. */
  context: string;
}

export interface SetUpdate {
  add?: Element[];
  remove?: Element[];
  /** The context of an earlier `setGet`: removes then spare adds that read did not see. */
  context?: string | null;
}

export interface SetWriteOptions extends ReadOptions {
  w?: number;
  dw?: number;
}

/** Options of a listing (listKeys, listBuckets, listObjects). */
export interface ListOptions {
  /** Items per page (the server's default and maximum apply). */
  pageSize?: number;
  /** Replicas read per partition (default: the bucket's n − w + 1). */
  r?: number;
  /** Ask this node only (default: round-robin, failing over). */
  node?: string;
  /** Tries of one page that answers 503 before giving up (default 10, with backoff up to 2 s). */
  pageAttempts?: number;
  timeoutMs?: number;
}

/** One object of an export: its full record (siblings and causal context, docs/engine.md's encoding). */
export interface ListedObject {
  bucket: Buffer;
  key: Buffer;
  record: Buffer;
}

/** Targets one node (an address as in `nodes`) instead of the round-robin choice. */
export interface NodeTarget {
  node?: string;
}

interface CallOptions {
  method: string;
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  timeoutMs?: number;
  /** Send only to this base URL (no failover). */
  node?: string;
  /** The key the request is about, for client-driven routing. */
  route?: KeyRoute;
  /** Return a 404 answer instead of throwing. */
  notFoundIsAnswer?: boolean;
}

/** A POST of a JSON body to an admin route. */
function adminPost(path: string, body: Record<string, unknown>): { method: string; path: string; headers: Record<string, string>; body: string } {
  return { method: 'POST', path, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

interface KeyRoute {
  bucket: Name;
  key: Name;
  /** The request's own n (else the bucket's). */
  n?: number;
  kind: RequestKind;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_RING_REFRESH_MS = 10_000;
/** A ring not refreshed for this many refresh periods is stale: requests route as 'server' until a refresh succeeds. */
const STALE_AFTER_PERIODS = 3;
/** A node whose connection failed is tried last for this long. */
const DOWN_MS = 2_000;
const RING_FETCH_TIMEOUT_MS = 2_000;
const ON_DEMAND_REFRESH_MS = 250;
/** Extra client-side wait beyond a server-side deadline, so the server's TIMEOUT answer arrives first. */
const SERVER_DEADLINE_GRACE_MS = 1_000;

export class RingkvClient {
  readonly nodes: readonly string[];
  private readonly tls: ClientTls | undefined;
  /** https when TLS is on: also for the ring's member addresses. */
  private readonly scheme: 'http' | 'https';
  readonly timeoutMs: number;
  readonly routing: 'client' | 'server';
  readonly ringRefreshMs: number;
  private cursor = 0;
  /** Client-driven routing state: the ring, when it was fetched, nodes recently unreachable. */
  private clientRing: ClientRing | null = null;
  private ringFetchedAt = 0;
  private refreshing: Promise<boolean> | null = null;
  private refreshTimer: NodeJS.Timeout | null = null;
  private lastOnDemandRefresh = 0;
  private closed = false;
  private readonly downUntil = new Map<string, number>();
  private spread = 0;
  /** `{ authorization: 'Bearer …' }`, or empty without a token. */
  private readonly authHeaders: Record<string, string>;

  constructor(opts: RingkvClientOptions) {
    if (!Array.isArray(opts.nodes) || opts.nodes.length === 0) throw new TypeError('RingkvClient needs at least one node address');
    this.tls = opts.tls;
    this.scheme = opts.tls !== undefined || opts.nodes.some((n) => /^\s*https:\/\//i.test(String(n))) ? 'https' : 'http';
    this.nodes = opts.nodes.map((n) => baseUrl(n, this.scheme));
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isFinite(this.timeoutMs) || this.timeoutMs <= 0) throw new TypeError('timeoutMs must be a positive number');
    this.routing = opts.routing ?? 'server';
    if (this.routing !== 'client' && this.routing !== 'server') throw new TypeError(`routing must be 'client' or 'server', got ${String(opts.routing)}`);
    if (opts.token !== undefined && (typeof opts.token !== 'string' || !/^[\x21-\x7e]+$/.test(opts.token))) {
      throw new TypeError('token must be a non-empty string of printable ASCII (a token ringkv made: rkv_…)');
    }
    this.authHeaders = opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` };
    this.ringRefreshMs = opts.ringRefreshMs ?? DEFAULT_RING_REFRESH_MS;
    if (!Number.isFinite(this.ringRefreshMs) || this.ringRefreshMs <= 0) throw new TypeError('ringRefreshMs must be a positive number');
    if (this.routing === 'client') {
      this.refreshTimer = setInterval(() => void this.refreshRing(), this.ringRefreshMs);
      // The timer alone must not keep a process alive.
      this.refreshTimer.unref();
      void this.refreshRing();
    }
  }

  /** Stops the ring refresh timer (routing 'client') and drops the ring: requests still work, routed as 'server'. */
  close(): void {
    this.closed = true;
    if (this.refreshTimer !== null) clearInterval(this.refreshTimer);
    this.refreshTimer = null;
    this.clientRing = null;
  }

  /** The ring version client-driven routing uses, or null while it has none (or it is stale). */
  get routingRingVersion(): number | null {
    return this.freshRing()?.ring.version ?? null;
  }

  /**
   * Fetches the ring now (one fetch at a time; concurrent callers share it),
   * from `preferred` ('host:port' or a URL) first, then the configured nodes and the ring's members.
   * Resolves true when a ring was taken. Never throws: routing falls back to
   * 'server' while there is no ring.
   */
  refreshRing(preferred?: string): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    this.refreshing ??= this.fetchRing(preferred).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  // -------------------------------------------------------------------------
  // Objects

  async get(bucket: Name, key: Name, opts: ReadOptions = {}): Promise<GetResult> {
    const res = await this.call({
      method: 'GET',
      path: objectPath(bucket, key),
      query: { r: opts.r, n: opts.n, timeout: opts.timeoutMs, fanout: opts.fanout },
      headers: opts.multipart ? { accept: 'multipart/mixed, application/json' } : undefined,
      timeoutMs: opts.timeoutMs,
      notFoundIsAnswer: true,
      route: { bucket, key, n: opts.n, kind: 'read' },
    });
    const context = res.headers.get(CONTEXT_HEADER) || null;
    if (res.status === 200) {
      const value = Buffer.from(await res.arrayBuffer());
      const lastModified = Number(res.headers.get(LAST_MODIFIED_HEADER) ?? 0);
      const meta = Object.fromEntries(
        res.headers.entries().filter(([name]) => name.startsWith(META_HEADER_PREFIX)).map(([name, v]) => [name.slice(META_HEADER_PREFIX.length), v]).sort((x, y) => (x[0]! < y[0]! ? -1 : 1)),
      );
      const contentType = res.headers.get('content-type') ?? 'application/octet-stream';
      return { found: true, deleted: false, values: [value], siblings: [{ value, deleted: false, lastModified, contentType, meta }], context };
    }
    if (res.status === 300 && /^multipart\/mixed/i.test(res.headers.get('content-type') ?? '')) {
      let parts;
      try {
        parts = parseMultipartSiblings(Buffer.from(await res.arrayBuffer()), res.headers.get('content-type')!);
      } catch (err) {
        throw new RingkvError(300, 'BAD_RESPONSE', `300 answer with a malformed multipart body: ${(err as Error).message}`);
      }
      const siblings: Sibling[] = parts.map((p) => ({ value: p.value, deleted: p.value === null, lastModified: p.lastModified, contentType: p.contentType, meta: Object.fromEntries(p.meta) }));
      const values = siblings.filter((s) => !s.deleted && s.value !== null).map((s) => s.value!);
      return { found: values.length > 0, deleted: values.length === 0, values, siblings, context };
    }
    if (res.status === 300) {
      const doc = (await res.json()) as SiblingsDocument;
      if (!doc || !Array.isArray(doc.siblings)) throw new RingkvError(300, 'BAD_RESPONSE', '300 answer without a siblings list', doc);
      const siblings: Sibling[] = doc.siblings.map((s) => ({
        value: s.value === null ? null : Buffer.from(s.value, 'base64'),
        deleted: s.deleted,
        lastModified: s.lastModified,
        contentType: s.contentType ?? 'application/octet-stream',
        meta: s.meta ?? {},
      }));
      const values = siblings.filter((s) => !s.deleted && s.value !== null).map((s) => s.value!);
      return { found: values.length > 0, deleted: values.length === 0, values, siblings, context: context ?? doc.context ?? null };
    }
    if (res.status === 404) {
      const body = (await res.json().catch(() => null)) as { deleted?: unknown } | null;
      return { found: false, deleted: body?.deleted === true || context !== null, values: [], siblings: [], context };
    }
    throw new RingkvError(res.status, 'BAD_RESPONSE', `unexpected status ${res.status}`, await res.text().catch(() => null));
  }

  async put(bucket: Name, key: Name, value: Uint8Array | string, opts: WriteOptions = {}): Promise<{ context: string }> {
    const body = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    return this.write(bucket, key, 'PUT', body, opts);
  }

  async delete(bucket: Name, key: Name, opts: DeleteOptions = {}): Promise<{ context: string }> {
    return this.write(bucket, key, 'DELETE', undefined, opts);
  }

  /**
   * Reads a key; when it holds more than one live sibling, merges them with
   * `merge` and writes the result back with the read's context, so the
   * siblings collapse into one (with the content type and metadata of the
   * newest sibling unless `opts` names them: `carriedAttributes`).
   */
  async getResolved(bucket: Name, key: Name, merge: (values: Buffer[]) => Buffer, opts: ReadOptions & Omit<WriteOptions, 'context'> = {}): Promise<ResolvedResult> {
    const read = await this.get(bucket, key, opts);
    if (read.values.length <= 1) return { value: read.values[0] ?? null, context: read.context, merged: false };
    const value = merge(read.values);
    const { context } = await this.put(bucket, key, value, { ...carriedAttributes(read.siblings), ...definedOnly(opts), context: read.context });
    return { value: Buffer.from(value), context, merged: true };
  }

  /**
   * Read-modify-write: reads the key, calls `fn` with the current value (null
   * when absent or deleted) and writes its result with the read's context,
   * keeping the current content type and metadata unless `opts` names them.
   */
  async update(bucket: Name, key: Name, fn: (current: Buffer | null) => Buffer | Uint8Array | string, opts: UpdateOptions = {}): Promise<{ value: Buffer; context: string }> {
    const read = await this.get(bucket, key, opts);
    let current: Buffer | null = read.values[0] ?? null;
    if (read.values.length > 1) {
      if (!opts.merge) {
        throw new RingkvError(300, 'SIBLINGS_UNRESOLVED', `${read.values.length} concurrent values and no merge function`, {
          siblings: read.siblings,
          context: read.context,
        });
      }
      current = Buffer.from(opts.merge(read.values));
    }
    const next = fn(current);
    const value = typeof next === 'string' ? Buffer.from(next, 'utf8') : Buffer.from(next);
    const attributes = { ...carriedAttributes(read.siblings), ...definedOnly({ contentType: opts.contentType, meta: opts.meta }) };
    const { context } = await this.put(bucket, key, value, { ...attributes, w: opts.w, dw: opts.dw, n: opts.n, timeoutMs: opts.timeoutMs, context: read.context });
    return { value, context };
  }

  // -------------------------------------------------------------------------
  // Sets (buckets with the property type 'set')

  /** The elements of a set; an absent key is the empty set. */
  async setGet(bucket: Name, key: Name, opts: ReadOptions = {}): Promise<SetValue> {
    const res = await this.expectOk({
      method: 'GET',
      path: setPath(bucket, key),
      query: { r: opts.r, n: opts.n, timeout: opts.timeoutMs },
      timeoutMs: opts.timeoutMs,
      route: { bucket, key, n: opts.n, kind: 'read' },
    });
    return parseSetValue(res.status, await res.json());
  }

  async setAdd(bucket: Name, key: Name, ...elements: Element[]): Promise<SetValue> {
    return this.setUpdate(bucket, key, { add: elements });
  }

  async setRemove(bucket: Name, key: Name, ...elements: Element[]): Promise<SetValue> {
    return this.setUpdate(bucket, key, { remove: elements });
  }

  /** Removes, then adds, in one read-modify-write on the server; answers the set after it. */
  async setUpdate(bucket: Name, key: Name, update: SetUpdate, opts: SetWriteOptions = {}): Promise<SetValue> {
    const body: Record<string, unknown> = {
      add: (update.add ?? []).map(elementBase64),
      remove: (update.remove ?? []).map(elementBase64),
      encoding: 'base64',
    };
    if (update.context) body.context = update.context;
    const res = await this.expectOk({
      method: 'POST',
      path: setPath(bucket, key),
      query: { r: opts.r, w: opts.w, dw: opts.dw, n: opts.n, timeout: opts.timeoutMs },
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      timeoutMs: opts.timeoutMs,
      route: { bucket, key, n: opts.n, kind: 'write' },
    });
    return parseSetValue(res.status, await res.json());
  }

  // -------------------------------------------------------------------------
  // Buckets and cluster

  async bucketProps(bucket: Name, target: NodeTarget = {}): Promise<BucketProps> {
    const res = await this.expectOk({ method: 'GET', path: `/buckets/${encodeName(bucket)}/props`, node: target.node });
    return ((await res.json()) as { props: BucketProps }).props;
  }

  async setBucketProps(bucket: Name, props: Partial<BucketProps>, target: NodeTarget = {}): Promise<BucketProps> {
    const res = await this.expectOk({
      method: 'PUT',
      path: `/buckets/${encodeName(bucket)}/props`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ props }),
      node: target.node,
    });
    return ((await res.json()) as { props: BucketProps }).props;
  }

  // -------------------------------------------------------------------------
  // Listings (docs/listing.md): pages from an opaque cursor, each page retried
  // on another node when one is unavailable (a page is a read: safe to repeat).

  /** Every live key of a bucket, each once, in the cluster's (partition, disk-key) order. */
  async *listKeys(bucket: Name, opts: ListOptions = {}): AsyncGenerator<Buffer> {
    const path = `/buckets/${encodeName(bucket)}/keys`;
    for await (const doc of this.pages<{ keys: string[] }>(path, { limit: opts.pageSize, r: opts.r, encoding: 'base64url' }, opts)) {
      for (const k of doc.keys) yield Buffer.from(k, 'base64url');
    }
  }

  /** Every bucket holding a live key, in byte order (each page scans every object of the cluster). */
  async *listBuckets(opts: Omit<ListOptions, 'r'> = {}): AsyncGenerator<Buffer> {
    for await (const doc of this.pages<{ buckets: string[] }>('/buckets', { limit: opts.pageSize, encoding: 'base64url' }, opts)) {
      for (const b of doc.buckets) yield Buffer.from(b, 'base64url');
    }
  }

  /**
   * Every live object of a bucket (or of every bucket: null) with its full
   * record (siblings and causal context, the engine's encoding): for export.
   * `onPage` sees each page's cursor after its objects were yielded (to checkpoint).
   */
  async *listObjects(
    bucket: Name | null,
    opts: ListOptions & { cursor?: string | null; tombstones?: boolean; onPage?: (cursor: string | null) => void | Promise<void> } = {},
  ): AsyncGenerator<ListedObject> {
    const path = bucket === null ? '/objects' : `/buckets/${encodeName(bucket)}/objects`;
    const query = { limit: opts.pageSize, r: opts.r, tombstones: opts.tombstones === true ? 'true' : undefined };
    for await (const doc of this.pages<{ objects: Array<{ bucket: string; key: string; record: string }> }>(path, query, opts, opts.cursor ?? null, opts.onPage)) {
      for (const o of doc.objects) yield { bucket: Buffer.from(o.bucket, 'base64url'), key: Buffer.from(o.key, 'base64url'), record: Buffer.from(o.record, 'base64url') };
    }
  }

  /**
   * Merges whole records (as listObjects returns them) into their keys'
   * primaries (POST /admin/merge, admin token): the cluster keeps what is
   * newer, concurrent versions become siblings. `failed` lists the objects
   * too few primaries merged (by index; safe to send again).
   */
  async mergeRecords(objects: readonly ListedObject[], target: NodeTarget = {}): Promise<{ merged: number; failed: Array<{ index: number; error: string; message: string }> }> {
    const body = JSON.stringify({ objects: objects.map((o) => ({ bucket: o.bucket.toString('base64url'), key: o.key.toString('base64url'), record: o.record.toString('base64url') })) });
    const res = await this.expectOk({ method: 'POST', path: '/admin/merge', headers: { 'content-type': 'application/json' }, body, node: target.node, timeoutMs: 60_000 });
    return (await res.json()) as { merged: number; failed: Array<{ index: number; error: string; message: string }> };
  }

  private async *pages<T>(
    path: string,
    query: Record<string, string | number | undefined>,
    opts: ListOptions,
    start: string | null = null,
    onPage?: (cursor: string | null) => void | Promise<void>,
  ): AsyncGenerator<T> {
    let cursor: string | null = start;
    const attempts = opts.pageAttempts ?? 10;
    for (;;) {
      let doc: (T & { cursor: string | null }) | null = null;
      for (let attempt = 1; doc === null; attempt++) {
        try {
          const res = await this.expectOk({ method: 'GET', path, query: { ...query, cursor: cursor ?? undefined }, node: opts.node, timeoutMs: opts.timeoutMs });
          doc = (await res.json()) as T & { cursor: string | null };
        } catch (err) {
          // Unavailable (a replica failed, a ring changing): the same page again, after a pause.
          const retriable = err instanceof RingkvError && (err.status === 503 || err.code === 'UNREACHABLE');
          if (!retriable || attempt >= attempts) throw err;
          await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * 2 ** (attempt - 1))));
        }
      }
      yield doc as Awaited<T>;
      cursor = doc.cursor;
      await onPage?.(cursor);
      if (cursor === null) return;
    }
  }

  /** One node's view of the cluster: the given node, or the round-robin choice. */
  async status(node?: string): Promise<NodeStatus> {
    const res = await this.expectOk({ method: 'GET', path: '/status', node });
    return (await res.json()) as NodeStatus;
  }

  async ring(target: NodeTarget = {}): Promise<RingInfo> {
    const res = await this.expectOk({ method: 'GET', path: '/ring', node: target.node });
    return (await res.json()) as RingInfo;
  }

  /** Makes a node (`target.node`, or the round-robin choice) join the cluster `seed` ('host:port') belongs to. */
  async join(seed: string, target: NodeTarget = {}): Promise<NodeStatus> {
    const res = await this.expectOk({
      method: 'POST',
      path: '/admin/join',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ seed }),
      node: target.node,
    });
    return (await res.json()) as NodeStatus;
  }

  /** Starts the departure of node id `node` (default: the node that receives the request). */
  async leave(node?: string, target: NodeTarget = {}): Promise<NodeStatus> {
    const res = await this.expectOk({
      method: 'POST',
      path: '/admin/leave',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(node === undefined ? {} : { node }),
      node: target.node,
    });
    return (await res.json()) as NodeStatus;
  }

  /**
   * Drains a node (docs/cluster.md "Drain"; needs an admin token): it stops
   * coordinating client requests, finishes those in flight, delivers its
   * hints and flushes; with `exit` it then stops (its process exits 0).
   * Resolves with its report once drained; `cancel` ends a drain.
   */
  async drain(node: string, opts: { exit?: boolean; cancel?: boolean; timeoutS?: number } = {}): Promise<Record<string, unknown>> {
    const res = await this.expectOk({ ...adminPost('/admin/drain', opts), node, timeoutMs: ((opts.timeoutS ?? 60) + 5) * 1000 });
    return (await res.json()) as Record<string, unknown>;
  }

  /** Forgets a member that left or is gone for good (docs/cluster.md "Forget"); `force` when it still owns partitions. */
  async forget(member: string, opts: { force?: boolean; timeoutS?: number } = {}, target: NodeTarget = {}): Promise<{ node: string; forgotten: boolean; partitionsOwned: number }> {
    const res = await this.expectOk({ ...adminPost('/admin/forget', { node: member, ...opts }), node: target.node, timeoutMs: ((opts.timeoutS ?? 30) + 5) * 1000 });
    return (await res.json()) as { node: string; forgotten: boolean; partitionsOwned: number };
  }

  /** Hands a dead member's partitions to `replacement` one-for-one (docs/cluster.md "Replace"). */
  async replace(dead: string, replacement: string, opts: { force?: boolean; timeoutS?: number } = {}, target: NodeTarget = {}): Promise<{ replaced: boolean; partitions: number }> {
    const res = await this.expectOk({ ...adminPost('/admin/replace', { dead, replacement, ...opts }), node: target.node, timeoutMs: ((opts.timeoutS ?? 30) + 5) * 1000 });
    return (await res.json()) as { replaced: boolean; partitions: number };
  }

  /** Makes a client token (needs an admin token); the answer is the only place the token is ever shown. */
  async createToken(grant: { role: TokenInfo['role']; bucket?: string; label?: string }, target: NodeTarget = {}): Promise<{ id: string; token: string }> {
    const res = await this.expectOk({
      method: 'POST',
      path: '/admin/tokens',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(grant),
      node: target.node,
    });
    const doc = (await res.json()) as { id: string; token: string };
    return { id: doc.id, token: doc.token };
  }

  /** Every client token of the cluster, revoked ones included (needs an admin token). */
  async listTokens(target: NodeTarget = {}): Promise<TokenInfo[]> {
    const res = await this.expectOk({ method: 'GET', path: '/admin/tokens', node: target.node });
    return ((await res.json()) as { tokens: TokenInfo[] }).tokens;
  }

  /** Revokes a token by id, for good (needs an admin token). */
  async revokeToken(id: string, target: NodeTarget = {}): Promise<void> {
    const res = await this.expectOk({ method: 'DELETE', path: `/admin/tokens/${encodeURIComponent(id)}`, node: target.node });
    await res.arrayBuffer();
  }

  /** Starts a repair job on a node (`target.node`, or the round-robin choice; needs an admin token). */
  async startRepair(request: RepairRequest = {}, target: NodeTarget = {}): Promise<RepairJob> {
    const res = await this.expectOk({ method: 'POST', path: '/admin/repair', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request), node: target.node });
    return (await res.json()) as RepairJob;
  }

  /** A repair job's progress, from the node that runs it. */
  async repairJob(id: string, target: NodeTarget = {}): Promise<RepairJob> {
    const res = await this.expectOk({ method: 'GET', path: `/admin/repair/${encodeURIComponent(id)}`, node: target.node });
    return (await res.json()) as RepairJob;
  }

  /** A node's anti-entropy per partition (needs an admin token). */
  async aaeStatus(target: NodeTarget = {}): Promise<AaeStatus> {
    const res = await this.expectOk({ method: 'GET', path: '/admin/aae', node: target.node });
    return (await res.json()) as AaeStatus;
  }

  /** Changes a node's log level while it runs (needs an admin token); answers the level before. */
  async setLogLevel(level: string, target: NodeTarget = {}): Promise<{ level: string; previous: string }> {
    const res = await this.expectOk({
      method: 'POST',
      path: '/admin/log-level',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ level }),
      node: target.node,
    });
    return (await res.json()) as { level: string; previous: string };
  }

  /** True when a node (the given address, or the round-robin choice) answers `pong`. */
  async ping(node?: string): Promise<boolean> {
    const res = await this.expectOk({ method: 'GET', path: '/ping', node });
    return (await res.text()) === 'pong';
  }

  // -------------------------------------------------------------------------

  private async write(bucket: Name, key: Name, method: 'PUT' | 'DELETE', body: Uint8Array | undefined, opts: WriteOptions): Promise<{ context: string }> {
    const headers: Record<string, string> = {};
    if (opts.context) headers[CONTEXT_HEADER] = opts.context;
    if (body !== undefined) {
      // A header carries printable ASCII intact and nothing else (the server would see other bytes dropped, not refused).
      const texts = [opts.contentType ?? '', ...Object.values(opts.meta ?? {})];
      if (!texts.every((t) => /^[\x20-\x7e]*$/.test(t))) throw new RingkvError(0, 'BAD_METADATA', 'the content type and metadata values must be printable ASCII', null);
      headers['content-type'] = opts.contentType ?? 'application/octet-stream';
      for (const [name, value] of Object.entries(opts.meta ?? {})) headers[META_HEADER_PREFIX + name.toLowerCase()] = value;
    }
    const res = await this.expectOk({
      method,
      path: objectPath(bucket, key),
      query: { w: opts.w, dw: opts.dw, n: opts.n, timeout: opts.timeoutMs },
      headers,
      body,
      timeoutMs: opts.timeoutMs,
      route: { bucket, key, n: opts.n, kind: 'write' },
    });
    await res.arrayBuffer();
    const context = res.headers.get(CONTEXT_HEADER);
    if (!context) throw new RingkvError(res.status, 'BAD_RESPONSE', `write answered without ${CONTEXT_HEADER}`);
    return { context };
  }

  private withAuth(headers: Record<string, string> | undefined): Record<string, string> | undefined {
    if (this.authHeaders.authorization === undefined) return headers;
    return headers === undefined ? this.authHeaders : { ...headers, ...this.authHeaders };
  }

  /** A call whose only success is 2xx; anything else becomes a RingkvError. */
  private async expectOk(opts: CallOptions): Promise<HttpAnswer> {
    const res = await this.call(opts);
    if (res.status < 200 || res.status > 299) throw RingkvError.fromResponse(res.status, await res.text());
    return res;
  }

  /**
   * Sends one request, trying the nodes in round-robin order until one
   * answers. Answers with 200, 204, 300 and (for reads) 404 are returned;
   * other statuses become a RingkvError.
   */
  private async call(opts: CallOptions): Promise<HttpAnswer> {
    const targets = this.targets(opts);
    // Most requests carry no parameters: no URLSearchParams for them.
    let query: URLSearchParams | null = null;
    for (const [name, v] of Object.entries(opts.query ?? {})) if (v !== undefined) (query ??= new URLSearchParams()).set(name, String(v));
    const search = query ? query.toString() : '';
    const path = search ? `${opts.path}?${search}` : opts.path;
    const deadline = opts.timeoutMs !== undefined ? Math.max(this.timeoutMs, opts.timeoutMs + SERVER_DEADLINE_GRACE_MS) : this.timeoutMs;
    const failures: Array<{ node: string; error: string }> = [];
    for (const base of targets) {
      let res: HttpAnswer;
      try {
        res = await send(base, path, { method: opts.method, headers: this.withAuth(opts.headers), body: opts.body, timeoutMs: deadline }, this.tls);
      } catch (err) {
        if (isTimeoutError(err)) {
          throw new RingkvError(0, 'CLIENT_TIMEOUT', `${opts.method} ${opts.path}: no answer from ${base} within ${deadline} ms`, { node: base }, { cause: err });
        }
        failures.push({ node: base, error: describe(err) });
        this.routingError(base);
        continue;
      }
      this.checkRingVersion(res, base);
      if (res.status === 503 && res.headers.get(STOPPING_HEADER) === '1') {
        // The node is shutting down and did not act on the request: another node may.
        await res.text().catch(() => undefined);
        failures.push({ node: base, error: 'stopping' });
        this.routingError(base);
        continue;
      }
      if (res.status === 200 || res.status === 204 || res.status === 300) return res;
      // For an object read, 404 is an answer (not found, or deleted); anywhere else it is an error.
      if (res.status === 404 && opts.notFoundIsAnswer) return res;
      if (res.status >= 200 && res.status < 300) return res;
      throw RingkvError.fromResponse(res.status, await res.text());
    }
    throw new RingkvError(
      0,
      'UNREACHABLE',
      `${opts.method} ${opts.path}: no node answered (${failures.map((f) => `${f.node}: ${f.error}`).join('; ')})`,
      { failures },
    );
  }

  /** The nodes to try for a request, in order. */
  private targets(opts: CallOptions): string[] {
    if (opts.node !== undefined) return [baseUrl(opts.node, this.scheme)];
    const route = opts.route;
    const cr = this.routing === 'client' && route !== undefined ? this.freshRing() : null;
    if (cr === null || route === undefined) return this.rotation();
    const pl = keyPreference(cr, nameBytes(route.bucket), nameBytes(route.key), route.n);
    if (pl === null) return this.rotation();
    const now = Date.now();
    const spread = this.spread++;
    if (this.spread >= Number.MAX_SAFE_INTEGER) this.spread = 0;
    const routed = routeTargets(cr, pl, route.kind, spread, (url) => (this.downUntil.get(url) ?? 0) > now);
    // The configured nodes last: a ring member's advertised address may be unreachable from here.
    return [...new Set([...routed, ...this.nodes])];
  }

  /** The ring, unless there is none or it has not been refreshed for STALE_AFTER_PERIODS periods. */
  private freshRing(now = Date.now()): ClientRing | null {
    if (this.clientRing === null || now - this.ringFetchedAt > STALE_AFTER_PERIODS * this.ringRefreshMs) return null;
    return this.clientRing;
  }

  /** A connection to `base` failed: try it last for a while, and (routing 'client') look for a newer ring. */
  private routingError(base: string): void {
    if (this.routing !== 'client') return;
    this.downUntil.set(base, Date.now() + DOWN_MS);
    this.refreshSoon();
  }

  /** A refresh prompted by a request, at most one per ON_DEMAND_REFRESH_MS (a cluster that cannot give a ring is not asked on every request). */
  private refreshSoon(preferred?: string): void {
    const now = Date.now();
    if (this.refreshing !== null || now - this.lastOnDemandRefresh < ON_DEMAND_REFRESH_MS) return;
    this.lastOnDemandRefresh = now;
    void this.refreshRing(preferred);
  }

  /** An answer from a node holding a newer ring than ours (or while we have none) triggers a refresh from that node. */
  private checkRingVersion(res: HttpAnswer, base: string): void {
    if (this.routing !== 'client') return;
    this.downUntil.delete(base);
    const cr = this.freshRing();
    const header = res.headers.get(RING_VERSION_HEADER);
    if (cr === null || (header !== null && Number(header) > cr.ring.version)) this.refreshSoon(base);
  }

  private async fetchRing(preferred?: string): Promise<boolean> {
    const now = Date.now();
    const known = [...(preferred !== undefined ? [baseUrl(preferred, this.scheme)] : []), ...this.nodes, ...(this.clientRing?.urls.values() ?? [])];
    const sources = [...new Set(known)].sort((a, b) => Number((this.downUntil.get(a) ?? 0) > now) - Number((this.downUntil.get(b) ?? 0) > now));
    for (const base of sources) {
      try {
        const res = await send(base, '/ring', { method: 'GET', headers: this.withAuth(undefined), timeoutMs: Math.min(this.timeoutMs, RING_FETCH_TIMEOUT_MS) }, this.tls);
        if (res.status !== 200) {
          await res.arrayBuffer();
          continue;
        }
        const fetched = parseRingDocument(await res.json(), this.scheme);
        if (this.closed) return false;
        // A node behind ours (gossip has not reached it yet) confirms ours is current; a stale ring is replaced by any.
        if (this.freshRing() === null || fetched.ring.version >= this.clientRing!.ring.version) this.clientRing = fetched;
        this.ringFetchedAt = Date.now();
        return true;
      } catch {
        // Unreachable, not joined, or a bad document: ask the next node.
      }
    }
    return false;
  }

  /** Every node once, starting with the next in round-robin order. */
  private rotation(): string[] {
    const start = this.cursor++ % this.nodes.length;
    if (this.cursor >= Number.MAX_SAFE_INTEGER) this.cursor = 0;
    return [...this.nodes.slice(start), ...this.nodes.slice(0, start)];
  }
}

function nameBytes(name: Name): Uint8Array {
  return typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
}

function encodeName(name: Name): string {
  const bytes = nameBytes(name);
  // An empty path segment would address no route at all.
  if (bytes.byteLength === 0) throw new TypeError('bucket and key names must not be empty');
  return percentEncode(bytes);
}

function objectPath(bucket: Name, key: Name): string {
  return `/kv/${encodeName(bucket)}/${encodeName(key)}`;
}

function setPath(bucket: Name, key: Name): string {
  return `/sets/${encodeName(bucket)}/${encodeName(key)}`;
}

function elementBase64(e: Element): string {
  return (typeof e === 'string' ? Buffer.from(e, 'utf8') : bufferView(e)).toString('base64');
}

function parseSetValue(status: number, doc: unknown): SetValue {
  const d = doc as { elements?: unknown; context?: unknown } | null;
  if (!d || !Array.isArray(d.elements) || !d.elements.every((e) => typeof e === 'string') || typeof d.context !== 'string') {
    throw new RingkvError(status, 'BAD_RESPONSE', 'a set answer without elements and context', doc);
  }
  return { elements: (d.elements as string[]).map((e) => Buffer.from(e, 'base64')), context: d.context };
}

function describe(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } } | null;
  if (typeof e?.code === 'string' && /^E[A-Z]+$/.test(e.code)) return e.code;
  const cause = e?.cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  if (cause && typeof cause.message === 'string') return cause.message;
  return typeof e?.message === 'string' ? e.message : String(err);
}

/** `o` without its undefined entries (so a spread does not override a default with undefined). */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
