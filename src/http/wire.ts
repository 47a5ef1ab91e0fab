// How objects and errors look on the HTTP wire: the opaque context header,
// sibling documents, percent-decoded binary names and the error-code → status
// table. Shared by the server and the client library.
import { randomBytes } from 'node:crypto';
import { parseMultipart } from '@remix-run/multipart-parser';
import { bufferView } from '../util/bytes.js';
import { DEFAULT_BUCKET_PROPS, type ClusterState } from '../core/membership.js';
import { DEFAULT_CONTENT_TYPE, type Sibling } from '../record/codec.js';

/** Response and request header carrying the opaque causal context. */
export const CONTEXT_HEADER = 'x-ringkv-context';
/** Last-modified time (ms since the epoch) of a single-valued object. */
export const LAST_MODIFIED_HEADER = 'x-ringkv-last-modified';
/** Request and response headers `x-ringkv-meta-<name>`: a value's user metadata (docs/http.md "Content type and metadata"). */
export const META_HEADER_PREFIX = 'x-ringkv-meta-';
/** A part of a multipart/mixed 300 that is a tombstone (a delete concurrent with the other values). */
export const DELETED_HEADER = 'x-ringkv-deleted';
/** Response header: the version of the ring the answering node holds (a client routing by an older ring refreshes it). */
export const RING_VERSION_HEADER = 'x-ringkv-ring-version';

/** GET /ring: what a client needs to compute a key's preference list exactly as the nodes do. */
export interface RingDocument {
  partitionBits: number;
  version: number;
  claimant: string;
  /** Owner node id of each partition, in partition order. */
  owners: string[];
  /** False while the answering node has not joined its cluster (its ring is a private one). */
  joined: boolean;
  /** Every member: its HTTP address (`host:port`), zone (null when none), status, and whether it is draining (clients route around it). */
  members: Array<{ id: string; address: string; zone: string | null; status: string; draining?: boolean }>;
  /** `n` of every bucket with its own properties; the others use `defaultN`. */
  buckets: Record<string, { n: number }>;
  defaultN: number;
}

/** The GET /ring document of a node's cluster state. */
export function ringDocument(state: ClusterState, joined: boolean): RingDocument {
  const { ring } = state;
  return {
    partitionBits: state.partitionBits,
    version: ring.version,
    claimant: ring.claimant,
    owners: [...ring.owners],
    joined,
    members: Object.values(state.members).map((m) => ({ id: m.id, address: m.address, zone: m.zone ?? null, status: m.status, ...(m.draining === true ? { draining: true } : {}) })),
    buckets: Object.fromEntries(Object.entries(state.buckets).map(([name, entry]) => [name, { n: entry.props.n }])),
    defaultN: DEFAULT_BUCKET_PROPS.n,
  };
}

/** A 300 Multiple Choices body: every sibling, values base64-encoded, with its content type and metadata (names in order). */
export interface SiblingsDocument {
  context: string;
  siblings: Array<{ value: string | null; deleted: boolean; lastModified: number; contentType: string; meta: Record<string, string> }>;
}

/** One sibling as the HTTP wire shows it (both sides of the wire). */
export interface WireSibling {
  /** null for a tombstone */
  value: Buffer | null;
  lastModified: number;
  contentType: string;
  /** Ascending by name. */
  meta: Array<[string, string]>;
}

export function wireSibling(s: Sibling): WireSibling {
  return {
    value: s.tombstone ? null : Buffer.from(s.value),
    lastModified: s.timestamp,
    contentType: s.attrs?.contentType ?? DEFAULT_CONTENT_TYPE,
    meta: (s.attrs?.meta ?? []).map(([n, v]) => [n, v]),
  };
}

/** The headers that carry a value's attributes: content-type and one x-ringkv-meta-<name> each. */
export function attributeHeaders(s: WireSibling): Record<string, string> {
  const out: Record<string, string> = { 'content-type': s.contentType };
  for (const [name, value] of s.meta) out[META_HEADER_PREFIX + name] = value;
  return out;
}

/** Does an Accept header ask for multipart/mixed (a 300 then lists the siblings as parts, as Riak does)? */
export function acceptsMultipart(accept: string): boolean {
  return /(^|[\s,])multipart\/mixed\s*(;|,|$)/i.test(accept);
}

const CRLF = '\r\n';

/**
 * A multipart/mixed body (RFC 2046) of siblings: one part each, with its
 * content type, metadata and last-modified headers (and x-ringkv-deleted for
 * a tombstone, whose part is empty). Returns the body and its content-type.
 */
export function encodeMultipartSiblings(siblings: readonly WireSibling[]): { body: Buffer; contentType: string } {
  const bodies = siblings.map((s) => s.value ?? Buffer.alloc(0));
  let boundary: string;
  // A random boundary is all but certain to be absent from the values; checked anyway.
  do boundary = `ringkv-${randomBytes(12).toString('hex')}`;
  while (bodies.some((b) => b.includes(boundary)));
  const chunks: Buffer[] = [];
  siblings.forEach((s, i) => {
    const headers = { ...attributeHeaders(s), [LAST_MODIFIED_HEADER]: String(s.lastModified), ...(s.value === null ? { [DELETED_HEADER]: 'true' } : {}) };
    const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}${CRLF}`).join('');
    chunks.push(Buffer.from(`--${boundary}${CRLF}${head}${CRLF}`, 'latin1'), bodies[i]!, Buffer.from(CRLF, 'latin1'));
  });
  chunks.push(Buffer.from(`--${boundary}--${CRLF}`, 'latin1'));
  return { body: Buffer.concat(chunks), contentType: `multipart/mixed; boundary=${boundary}` };
}

/** The parts of a multipart/mixed 300 as siblings; TypeError when the body is not one. */
export function parseMultipartSiblings(body: Uint8Array, contentType: string, maxValueBytes = 16 * 1024 * 1024): WireSibling[] {
  const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!boundary) throw new TypeError(`not a multipart body with a boundary: ${contentType}`);
  const out: WireSibling[] = [];
  const parts = parseMultipart(body, { boundary: boundary[1] ?? boundary[2]!, maxFileSize: maxValueBytes, maxTotalSize: body.length + 1, maxParts: 0x10000 });
  for (const part of parts) {
    const meta: Array<[string, string]> = [];
    let lastModified = 0;
    let deleted = false;
    let type = DEFAULT_CONTENT_TYPE;
    // The parser lower-cases names and trims values (as HTTP does: stored values never have surrounding spaces).
    for (const [lower, value] of Object.entries(part.headers)) {
      if (value === undefined) continue;
      if (lower.startsWith(META_HEADER_PREFIX)) meta.push([lower.slice(META_HEADER_PREFIX.length), value]);
      else if (lower === 'content-type') type = value;
      else if (lower === LAST_MODIFIED_HEADER) lastModified = Number(value);
      else if (lower === DELETED_HEADER) deleted = value === 'true';
    }
    meta.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    out.push({ value: deleted ? null : Buffer.from(part.bytes), lastModified, contentType: type, meta });
  }
  return out;
}

export interface ErrorDocument {
  error: string;
  message: string;
  [detail: string]: unknown;
}

export function encodeContextHeader(context: Uint8Array): string {
  return bufferView(context).toString('base64url');
}

/** Decodes the header strictly: Buffer's base64url decoder skips bad characters silently. */
export function decodeContextHeader(header: string): Buffer | null {
  if (header === '') return null;
  if (!/^[A-Za-z0-9_-]+$/.test(header) || header.length % 4 === 1) throw new TypeError('context header is not base64url');
  return Buffer.from(header, 'base64url');
}

/** Percent-decodes a URL path segment to raw bytes (keys may be binary). */
export function percentDecode(segment: string): Buffer {
  // Most names are plain ASCII without escapes: one copy, no per-byte array.
  let plain = true;
  for (let i = 0; i < segment.length && plain; i++) {
    const c = segment.charCodeAt(i);
    plain = c !== 0x25 && c < 0x80;
  }
  if (plain) return Buffer.from(segment, 'latin1');
  const out: number[] = [];
  for (let i = 0; i < segment.length; i++) {
    const c = segment.charCodeAt(i);
    if (c === 0x25 /* % */) {
      const hex = segment.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new TypeError(`bad percent escape at ${i}`);
      out.push(parseInt(hex, 16));
      i += 2;
    } else if (c < 0x80) {
      out.push(c);
    } else {
      out.push(...Buffer.from(segment[i]!, 'utf8'));
    }
  }
  return Buffer.from(out);
}

/** 1 for the bytes a path segment carries unescaped (RFC 3986 unreserved). */
const UNRESERVED = new Uint8Array(256);
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-') UNRESERVED[ch.charCodeAt(0)] = 1;

/** Percent-encodes raw bytes for a URL path segment. */
export function percentEncode(bytes: Uint8Array): string {
  // Most names need no escape at all: return them as they are.
  if (bytes.every((b) => UNRESERVED[b] === 1)) return bufferView(bytes).toString('latin1');
  let out = '';
  for (const b of bytes) {
    const ch = String.fromCharCode(b);
    out += /[A-Za-z0-9._~-]/.test(ch) ? ch : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** HTTP status for each error code: the caller's fault is 4xx, the cluster's 5xx. */
export const STATUS_OF_ERROR: Record<string, number> = {
  BAD_REQUEST: 400,
  BAD_CONTEXT: 400,
  /** A content type or x-ringkv-meta-* header over a limit (docs/http.md "Content type and metadata"). */
  METADATA_TOO_LARGE: 400,
  /** A malformed content type or x-ringkv-meta-* header. */
  BAD_METADATA: 400,
  KEY_TOO_LARGE: 400,
  INVALID_BUCKET_PROPS: 400,
  INVALID_TOKEN_GRANT: 400,
  /** No valid bearer token (missing, malformed, unknown or revoked). */
  UNAUTHORIZED: 401,
  /** The token is valid but its role or bucket does not cover the route. */
  FORBIDDEN: 403,
  UNKNOWN_TOKEN: 404,
  UNKNOWN_MEMBER: 404,
  /** A forget or replace that needs the operator's confirmation (`force`). */
  FORCE_REQUIRED: 409,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  TOO_MANY_SIBLINGS: 409,
  CLUSTER_MISMATCH: 409,
  NOT_A_SET: 409,
  TOO_MANY_TOKENS: 409,
  BUCKET_IS_A_SET: 409,
  /** A repair job is running on the node already (one at a time). */
  REPAIR_RUNNING: 409,
  VALUE_TOO_LARGE: 413,
  BODY_TOO_LARGE: 413,
  INTERNAL: 500,
  QUORUM_FAILED: 503,
  TIMEOUT: 503,
  UNAVAILABLE: 503,
  /** The node is shutting down: the request was not acted on (the client asks another node). */
  NODE_STOPPING: 503,
  /** The node is draining (docs/cluster.md "Drain"): it did not act on the request; the body names other nodes. */
  NODE_DRAINING: 503,
};

/** Set (to "1") on a 503 NODE_STOPPING or NODE_DRAINING: the request was not acted on, so any client may send it to another node. */
export const STOPPING_HEADER = 'x-ringkv-stopping';
/** On a 503 NODE_DRAINING: comma-separated `host:port` of members that are not draining, to send the request to instead. */
export const TRY_NODES_HEADER = 'x-ringkv-try-nodes';
