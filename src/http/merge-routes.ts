// POST /admin/merge (docs/backup.md "Restore"): whole records merged into
// the cluster through the ordinary replica merge (src/node/restore.ts), in
// batches, for `ringkv restore`. Admin role only: a record can carry any
// causal context, so whoever may send one may write anything.
import type { MergeItem, RecordMerger } from '../node/restore.js';
import { MAX_RESTORE_BATCH } from '../node/restore.js';
import { NodeError } from '../node/errors.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from '../transport/uws.js';

/** Largest POST /admin/merge body: restore sends batches of about 8 MiB of records (base64url in JSON). */
export const MAX_MERGE_BODY_BYTES = 32 * 1024 * 1024;

interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** What the API lends the route: its handler wrapper and its bounded body reader. */
export interface MergeRouteDeps {
  handle(res: HttpResponse, run: () => Promise<Reply>): void;
  bodyLength(req: HttpRequest): number;
  readBody(res: HttpResponse, max: number, declared: number): Promise<Buffer>;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function bytesField(o: Record<string, unknown>, name: string, index: number): Buffer {
  const v = o[name];
  if (typeof v !== 'string' || !B64URL.test(v) || v.length % 4 === 1) throw new NodeError('BAD_REQUEST', `objects[${index}].${name} must be base64url`);
  return Buffer.from(v, 'base64url');
}

/** The body `{"objects": [{"bucket", "key", "record"}]}`, each field base64url. */
export function parseMergeBody(body: Buffer): MergeItem[] {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new NodeError('BAD_REQUEST', `body must be JSON: ${(err as Error).message}`);
  }
  const objects = (doc as { objects?: unknown } | null)?.objects;
  if (!Array.isArray(objects)) throw new NodeError('BAD_REQUEST', 'body must be {"objects": [{"bucket", "key", "record"}, ...]}');
  if (objects.length > MAX_RESTORE_BATCH) throw new NodeError('BAD_REQUEST', `at most ${MAX_RESTORE_BATCH} objects per request`);
  return objects.map((o: unknown, i) => {
    if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new NodeError('BAD_REQUEST', `objects[${i}] must be an object`);
    const item = o as Record<string, unknown>;
    return { bucket: bytesField(item, 'bucket', i), key: bytesField(item, 'key', i), record: bytesField(item, 'record', i) };
  });
}

export function registerMergeRoutes(app: TemplatedApp, records: RecordMerger, deps: MergeRouteDeps): void {
  app.post('/admin/merge', (res, req) => {
    const declared = deps.bodyLength(req);
    deps.handle(res, async () => {
      const items = parseMergeBody(await deps.readBody(res, MAX_MERGE_BODY_BYTES, declared));
      const outcome = await records.mergeAll(items);
      return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(outcome) };
    });
  });
}

export const MERGE_ROUTE_METHODS: Readonly<Record<string, readonly string[]>> = { '/admin/merge': ['POST'] };
