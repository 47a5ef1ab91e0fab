// Key and bucket listing on a real 3-node cluster (native engine, uWS,
// sockets): every live key exactly once across pages, deleted keys not
// listed, bucket names, the client's iterators, bad cursors refused, and a
// cursor that outlives the node that made it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server/index.js';
import { RingkvClient } from '../../src/client/index.js';
import { startOnStablePort } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';
import { converged, keysPage, names, start, writeAll } from './helpers.js';

const dir = tempDir('ringkv-listing-');
const nodes: RunningServer[] = [];
const ids = ['n1', 'n2', 'n3'];
const PER_BUCKET = 1_000;
const BUCKETS = ['alpha', 'beta', 'gamma'];
/** alpha's keys that are deleted after being written. */
const deleted = new Set(Array.from({ length: 100 }, (_, i) => `k${i * 7}`));
/** A key that is not UTF-8 (0xff), written to alpha. */
const BINARY_KEY = Buffer.from([0x6b, 0xff, 0x00, 0x01]);

beforeAll(async () => {
  // n3 restarts on its port and data directory (the cursor test).
  nodes.push(await start('n1', `${dir.path}/n1`, []));
  nodes.push(await start('n2', `${dir.path}/n2`, [nodes[0]!.address]));
  nodes.push(await startOnStablePort((port) => start('n3', `${dir.path}/n3`, [nodes[0]!.address], port)));
  await converged(nodes, 3);
  const items = BUCKETS.flatMap((bucket) => Array.from({ length: PER_BUCKET }, (_, i) => ({ bucket, key: `k${i}`, value: `${bucket}-${i}` })));
  await writeAll(nodes[0]!.address, items);
  await writeAll(nodes[1]!.address, [...deleted].map((key) => ({ bucket: 'alpha', key, value: null })));
  const res = await fetch(`http://${nodes[0]!.address}/kv/alpha/${[...BINARY_KEY].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')}`, { method: 'PUT', body: 'bin' });
  expect(res.status).toBe(204);
}, 90_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.close(500)));
  dir.remove();
});

const liveAlpha = () => [...Array.from({ length: PER_BUCKET }, (_, i) => `k${i}`).filter((k) => !deleted.has(k)), `b64:${BINARY_KEY.toString('base64url')}`];

async function listAll(addressOf: (page: number) => string, bucket: string, limit: number): Promise<{ keys: string[]; pages: number }> {
  const keys: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const doc = await keysPage(addressOf(pages), bucket, cursor, limit);
    expect(doc.keys.length).toBeLessThanOrEqual(limit);
    keys.push(...names(doc));
    cursor = doc.cursor;
    pages++;
    expect(pages).toBeLessThan(10_000);
  } while (cursor !== null);
  return { keys, pages };
}

describe('key listing on 3 nodes', () => {
  it('lists every live key of a bucket exactly once across pages, through any node, and no deleted key', async () => {
    const { keys, pages } = await listAll((p) => nodes[p % 3]!.address, 'alpha', 97);
    expect(pages).toBeGreaterThan(9);
    expect(keys.length).toBe(new Set(keys).size);
    expect(keys.sort()).toEqual(liveAlpha().sort());
    // The other buckets' keys stay out of it.
    const beta = await listAll(() => nodes[1]!.address, 'beta', 1_000);
    expect(beta.keys.sort()).toEqual(Array.from({ length: PER_BUCKET }, (_, i) => `k${i}`).sort());
  }, 60_000);

  it('returns non-UTF-8 keys as base64url, and every key so with encoding=base64url', async () => {
    const keys: Buffer[] = [];
    let cursor: string | null = null;
    for (let i = 0; i === 0 || (cursor !== null && i < 1_000); i++) {
      const doc = await keysPage(nodes[0]!.address, 'alpha', cursor, 10_000, '&encoding=base64url');
      keys.push(...doc.keys.map((k) => Buffer.from(k as string, 'base64url')));
      cursor = doc.cursor;
    }
    expect(keys.length).toBe(liveAlpha().length);
    expect(keys.some((k) => k.equals(BINARY_KEY))).toBe(true);
    expect(keys.some((k) => k.toString() === 'k1')).toBe(true);
  }, 30_000);

  it('the client iterates keys and buckets; an empty or unknown bucket lists nothing', async () => {
    const client = new RingkvClient({ nodes: nodes.map((n) => n.address) });
    try {
      const keys: string[] = [];
      for await (const k of client.listKeys('gamma', { pageSize: 333 })) keys.push(k.toString());
      expect(keys.length).toBe(PER_BUCKET);
      expect(new Set(keys).size).toBe(PER_BUCKET);
      const buckets: string[] = [];
      for await (const b of client.listBuckets({ pageSize: 2 })) buckets.push(b.toString());
      expect(buckets).toEqual(BUCKETS);
      const none: Buffer[] = [];
      for await (const k of client.listKeys('nothing-here')) none.push(k);
      expect(none).toEqual([]);
    } finally {
      client.close();
    }
  }, 60_000);

  it('lists bucket names in pages with a cursor', async () => {
    const first = (await (await fetch(`http://${nodes[2]!.address}/buckets?limit=2`)).json()) as { buckets: string[]; cursor: string | null };
    expect(first.buckets).toEqual(['alpha', 'beta']);
    expect(first.cursor).not.toBeNull();
    const second = (await (await fetch(`http://${nodes[0]!.address}/buckets?limit=2&cursor=${first.cursor}`)).json()) as { buckets: string[]; cursor: string | null };
    expect(second).toEqual({ buckets: ['gamma'], cursor: null });
  }, 60_000);

  it('refuses a garbled cursor, another listing\'s cursor and bad parameters with 400 and a JSON error', async () => {
    const page = await keysPage(nodes[0]!.address, 'alpha', null, 10);
    const cursor = page.cursor!;
    const flipped = cursor.slice(0, 10) + (cursor[10] === 'A' ? 'B' : 'A') + cursor.slice(11);
    const bad = [
      `/buckets/alpha/keys?cursor=${flipped}`,
      `/buckets/alpha/keys?cursor=${cursor.slice(0, -4)}`,
      `/buckets/alpha/keys?cursor=not*base64`,
      `/buckets/beta/keys?cursor=${cursor}`,
      `/buckets/alpha/objects?cursor=${cursor}`,
      `/buckets?cursor=${cursor}`,
      '/buckets/alpha/keys?limit=0',
      '/buckets/alpha/keys?limit=10001',
      '/buckets/alpha/keys?limit=ten',
      '/buckets/alpha/keys?r=4',
      '/buckets/alpha/keys?encoding=hex',
      '/buckets/alpha/keys?colour=blue',
      '/buckets/alpha/objects?limit=1001',
    ];
    for (const path of bad) {
      const res = await fetch(`http://${nodes[1]!.address}${path}`);
      expect(res.status, path).toBe(400);
      const doc = (await res.json()) as { error: string; message: string };
      expect(doc.error, path).toBe('BAD_REQUEST');
      expect(doc.message, path).toBeTruthy();
    }
    // Still serving.
    expect((await keysPage(nodes[1]!.address, 'alpha', cursor, 10)).keys.length).toBe(10);
  }, 30_000);

  it('a cursor outlives a restart of the node that made it', async () => {
    const seen: string[] = [];
    const first = await keysPage(nodes[2]!.address, 'beta', null, 400);
    seen.push(...names(first));
    const port = nodes[2]!.port;
    await nodes[2]!.close(500);
    nodes[2] = await start('n3', `${dir.path}/n3`, [nodes[0]!.address], port);
    await converged(nodes, 3);
    let cursor = first.cursor;
    // On the restarted node itself, then on another.
    for (let i = 0; cursor !== null && i < 100; i++) {
      const doc = await keysPage(nodes[i === 0 ? 2 : 0]!.address, 'beta', cursor, 400);
      seen.push(...names(doc));
      cursor = doc.cursor;
    }
    expect(cursor).toBeNull();
    expect(seen.length).toBe(PER_BUCKET);
    expect(new Set(seen).size).toBe(PER_BUCKET);
  }, 60_000);
});
