// Listing routes (docs/listing.md): GET /buckets, GET /buckets/:bucket/keys,
// GET /buckets/:bucket/objects and GET /objects, each a page from an opaque
// cursor. The walking is the node's (src/node/listing.ts); this file reads
// the query, checks it and writes the JSON page.
import type { ListingService, PageRequest } from '../node/listing.js';
import { LISTING_LIMITS } from '../node/listing.js';
import { NodeError } from '../node/errors.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from '../transport/uws.js';
import { percentDecode } from './wire.js';

/** What the routes answer with (the API's reply shape). */
export interface ListingReply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

type Handle = (res: HttpResponse, run: () => Promise<ListingReply>) => void;

/** A key or bucket name on the wire: the string when it is UTF-8, else its bytes in base64url. */
export type WireName = string | { base64url: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** `encoding=utf8` (default): names that are valid UTF-8 as strings, others as {"base64url": …}; `base64url`: every name base64url. */
export function wireName(bytes: Buffer, encoding: 'utf8' | 'base64url'): WireName {
  if (encoding === 'base64url') return bytes.toString('base64url');
  try {
    return utf8.decode(bytes);
  } catch {
    return { base64url: bytes.toString('base64url') };
  }
}

const json = (doc: unknown): ListingReply => ({ status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(doc) });

interface ListingQuery {
  page: PageRequest;
  encoding: 'utf8' | 'base64url';
}

/** Reads the query now (uWS requests live one tick); checks it when the handler runs. */
function listingQuery(req: HttpRequest, kind: 'keys' | 'objects' | 'buckets'): () => ListingQuery {
  const raw = req.getQuery() ?? '';
  return () => {
    const limits = LISTING_LIMITS[kind];
    const allowed = kind === 'buckets' ? ['limit', 'cursor', 'encoding'] : kind === 'keys' ? ['limit', 'cursor', 'r', 'encoding'] : ['limit', 'cursor', 'r', 'tombstones'];
    const query = new URLSearchParams(raw);
    const out: ListingQuery = { page: { limit: limits.default, cursor: null }, encoding: 'utf8' };
    const seen = new Set<string>();
    for (const [name, value] of query) {
      if (!allowed.includes(name)) throw new NodeError('BAD_REQUEST', `unknown query parameter '${name}' (allowed: ${allowed.join(', ')})`);
      if (seen.has(name)) throw new NodeError('BAD_REQUEST', `query parameter '${name}' given twice`);
      seen.add(name);
      if (name === 'cursor') {
        // An empty cursor is the start, as a missing one.
        out.page.cursor = value === '' ? null : value;
      } else if (name === 'tombstones') {
        if (value !== 'true' && value !== 'false') throw new NodeError('BAD_REQUEST', `tombstones must be true or false (got '${value}')`);
        out.page.tombstones = value === 'true';
      } else if (name === 'encoding') {
        if (value !== 'utf8' && value !== 'base64url') throw new NodeError('BAD_REQUEST', `encoding must be utf8 or base64url (got '${value}')`);
        out.encoding = value;
      } else {
        if (!/^\d{1,6}$/.test(value)) throw new NodeError('BAD_REQUEST', `${name} must be a positive integer`);
        const v = Number(value);
        if (name === 'limit') {
          if (v < 1 || v > limits.max) throw new NodeError('BAD_REQUEST', `limit must be 1..${limits.max}`);
          out.page.limit = v;
        } else {
          out.page.r = v;
        }
      }
    }
    return out;
  };
}

function bucketOf(segment: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = percentDecode(segment);
  } catch (err) {
    throw new NodeError('BAD_REQUEST', `bad URL escape: ${(err as Error).message}`);
  }
  if (bytes.length === 0 || bytes.length > 255) throw new NodeError('BAD_REQUEST', 'bucket name must be 1..255 bytes');
  if (bytes.includes(0)) throw new NodeError('BAD_REQUEST', 'bucket contains a 0x00 byte');
  return bytes;
}

/** Registers the listing routes (each has its ROUTE_ACCESS entry in src/http/auth.ts). */
export function registerListingRoutes(app: TemplatedApp, listing: ListingService, handle: Handle): void {
  app.get('/buckets', (res, req) => {
    const query = listingQuery(req, 'buckets');
    handle(res, async () => {
      const q = query();
      const page = await listing.listBuckets(q.page);
      return json({ buckets: page.buckets.map((b) => wireName(b, q.encoding)), cursor: page.cursor });
    });
  });
  app.get('/buckets/:bucket/keys', (res, req) => {
    const segment = req.getParameter(0) ?? '';
    const query = listingQuery(req, 'keys');
    handle(res, async () => {
      const bucket = bucketOf(segment);
      const q = query();
      const page = await listing.listKeys(bucket, q.page);
      return json({ keys: page.keys.map((k) => wireName(k, q.encoding)), cursor: page.cursor });
    });
  });
  const objects = (res: HttpResponse, req: HttpRequest, scoped: boolean) => {
    const segment = scoped ? (req.getParameter(0) ?? '') : null;
    const query = listingQuery(req, 'objects');
    handle(res, async () => {
      const bucket = segment === null ? null : bucketOf(segment);
      const page = await listing.listObjects(bucket, query().page);
      return json({
        objects: page.objects.map((o) => ({ bucket: o.bucket.toString('base64url'), key: o.key.toString('base64url'), record: o.record.toString('base64url') })),
        cursor: page.cursor,
      });
    });
  };
  app.get('/buckets/:bucket/objects', (res, req) => objects(res, req, true));
  app.get('/objects', (res, req) => objects(res, req, false));
}

/** The methods of the listing routes (merged into ROUTE_METHODS). */
export const LISTING_ROUTE_METHODS: Readonly<Record<string, readonly string[]>> = {
  '/buckets': ['GET'],
  '/buckets/:bucket/keys': ['GET'],
  '/buckets/:bucket/objects': ['GET'],
  '/objects': ['GET'],
};
