// Shared by the listing and backup tests: real nodes in this process, keys
// written over HTTP, listings walked page by page over HTTP.
import pino from 'pino';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/index.js';
import { waitFor } from '../helpers/cluster.js';
import { TEST_PEER_SECRETS } from '../helpers/secret.js';

export const quiet = pino({ level: 'silent' });

export const BASE = {
  peerSecrets: TEST_PEER_SECRETS,
  auth: { required: false },
  logger: quiet,
  // The default request timeout (5 s): these tests write thousands of keys on a machine shared with other work.
  node: { gossipIntervalMs: 100, requestTimeoutMs: 5_000 },
} satisfies Partial<ServerOptions>;

export function start(id: string, dataDir: string, seeds: string[], port = 0, extra: Partial<ServerOptions> = {}): Promise<RunningServer> {
  return startServer({ ...BASE, ...extra, nodeId: id, port, dataDir, seeds });
}

/** Waits until every node sees `count` valid members on one ring, each owning partitions. */
export async function converged(nodes: RunningServer[], count: number, timeoutMs = 20_000): Promise<void> {
  await waitFor(() => {
    const digests = new Set(nodes.map((n) => String((n.node.status().ring as { digest: string }).digest)));
    return digests.size === 1 && nodes.every((n) => Object.values(n.node.clusterState.members).filter((m) => m.status === 'valid').length === count && new Set(n.node.clusterState.ring.owners).size === count);
  }, timeoutMs, `${count} nodes on one ring`);
}

/** PUTs (or DELETEs, value null) many keys, `parallel` at a time; throws on the first failure. */
export async function writeAll(address: string, items: Array<{ bucket: string; key: string; value: string | null }>, parallel = 16): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const { bucket, key, value } = items[next++]!;
      const url = `http://${address}/kv/${encodeURIComponent(bucket)}/${encodeURIComponent(key)}`;
      // A delete with the context of a read (a blind one would stand beside the value as a sibling).
      const context = value === null ? ((await fetch(url, { signal: AbortSignal.timeout(10_000) }).then(async (r) => (await r.arrayBuffer(), r.headers.get('x-ringkv-context')))) ?? '') : '';
      const res = await fetch(url, { method: value === null ? 'DELETE' : 'PUT', body: value ?? undefined, headers: context ? { 'x-ringkv-context': context } : {}, signal: AbortSignal.timeout(10_000) });
      if (res.status !== 204) throw new Error(`${value === null ? 'DELETE' : 'PUT'} ${bucket}/${key}: ${res.status} ${await res.text()}`);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

export interface KeysDoc {
  keys: Array<string | { base64url: string }>;
  cursor: string | null;
}

/** One keys page over HTTP; retries a 503 (a replica failing mid-listing) a bounded number of times. */
export async function keysPage(address: string, bucket: string, cursor: string | null, limit: number, extra = ''): Promise<KeysDoc> {
  for (let attempt = 0; ; attempt++) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (cursor !== null) q.set('cursor', cursor);
    const res = await fetch(`http://${address}/buckets/${encodeURIComponent(bucket)}/keys?${q}${extra}`, { signal: AbortSignal.timeout(30_000) });
    if (res.status === 503 && attempt < 20) {
      await res.text();
      await new Promise((r) => setTimeout(r, 250));
      continue;
    }
    if (res.status !== 200) throw new Error(`keys page: ${res.status} ${await res.text()}`);
    return (await res.json()) as KeysDoc;
  }
}

/** The key names of a keys page (UTF-8 keys as they are, others as `b64:<base64url>`). */
export function names(doc: KeysDoc): string[] {
  return doc.keys.map((k) => (typeof k === 'string' ? k : `b64:${k.base64url}`));
}

/** Every key of a listing, page by page to the end (bounded: 10,000 pages). */
export async function listAllKeys(address: string, bucket: string, limit: number, extra = ''): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | null = null;
  for (let i = 0; i === 0 || cursor !== null; i++) {
    if (i >= 10_000) throw new Error('listing did not end within 10,000 pages');
    const doc = await keysPage(address, bucket, cursor, limit, extra);
    out.push(...names(doc));
    cursor = doc.cursor;
  }
  return out;
}
