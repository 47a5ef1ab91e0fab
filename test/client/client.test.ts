// The client library against a real 3-node cluster on 127.0.0.1.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient, RingkvError } from '../../src/client/index.js';
import { decodeContext, encodeContext } from '../../src/record/codec.js';
import { closedPort, startCluster, waitFor, type TestNode } from '../helpers/server.js';

let nodes: TestNode[] = [];
let client: RingkvClient;

beforeAll(async () => {
  nodes = await startCluster(['a', 'b', 'c']);
  client = new RingkvClient({ nodes: nodes.map((n) => n.address), timeoutMs: 10_000 });
});

afterAll(async () => {
  await Promise.allSettled(nodes.map((n) => n.close()));
});

/** Union of comma-separated sets, sorted: a merge that loses nothing. */
const union = (values: Buffer[]): Buffer =>
  Buffer.from([...new Set(values.flatMap((v) => v.toString('utf8').split(',')).filter(Boolean))].sort().join(','));

describe('RingkvClient', () => {
  it('sees the whole cluster from every node', async () => {
    for (const n of nodes) {
      const status = await client.status(n.address);
      expect(status.members.map((m) => m.id).sort()).toEqual(['a', 'b', 'c']);
    }
    const ring = await client.ring();
    expect(ring.owners).toHaveLength(2 ** ring.partitionBits);
    expect(new Set(ring.owners)).toEqual(new Set(['a', 'b', 'c']));
    expect(await client.ping()).toBe(true);
  });

  it('round-trips a put and a get, from every node', async () => {
    const { context } = await client.put('users', 'alice', 'hello');
    expect(context).toMatch(/^[A-Za-z0-9_-]+$/);
    for (const n of nodes) {
      const got = await client.get('users', 'alice', { r: 3 });
      expect(got.found).toBe(true);
      expect(got.deleted).toBe(false);
      expect(got.values.map(String)).toEqual(['hello']);
      expect(got.siblings).toHaveLength(1);
      expect(got.siblings[0]!.lastModified).toBeGreaterThan(0);
      expect(got.context).toBe(context);
      void n;
    }
    const missing = await client.get('users', 'nobody');
    expect(missing).toEqual({ found: false, deleted: false, values: [], siblings: [], context: null });
  });

  it('round-trips binary keys and values byte-exactly', async () => {
    const key = Buffer.from([0x00, 0xff, 0x2f, 0x25, 0x3f, 0x23, 0x20, 0xc3, 0x28, 0x0a, 0x7f]);
    const value = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await client.put('bin', key, value, { w: 3 });
    const got = await client.get('bin', new Uint8Array(key), { r: 3 });
    expect(got.found).toBe(true);
    expect(Buffer.compare(got.values[0]!, value)).toBe(0);
    // A different byte string is a different key.
    expect((await client.get('bin', key.subarray(0, 10))).found).toBe(false);
  });

  it('turns concurrent writes into siblings and getResolved collapses them', async () => {
    const { context } = await client.put('carts', 'bob', 'milk', { w: 3 });
    await Promise.all([
      client.put('carts', 'bob', 'milk,eggs', { context, w: 3 }),
      client.put('carts', 'bob', 'bread,milk', { context, w: 3 }),
    ]);
    const conflicted = await client.get('carts', 'bob', { r: 3 });
    expect(conflicted.found).toBe(true);
    expect(conflicted.values.map(String).sort()).toEqual(['bread,milk', 'milk,eggs']);
    expect(conflicted.siblings).toHaveLength(2);

    const resolved = await client.getResolved('carts', 'bob', union, { r: 3, w: 3 });
    expect(resolved.merged).toBe(true);
    expect(String(resolved.value)).toBe('bread,eggs,milk');

    const fresh = await client.get('carts', 'bob', { r: 3 });
    expect(fresh.values.map(String)).toEqual(['bread,eggs,milk']);
    expect(fresh.siblings).toHaveLength(1);

    const again = await client.getResolved('carts', 'bob', union);
    expect(again.merged).toBe(false);
    expect(String(again.value)).toBe('bread,eggs,milk');
  });

  it('deletes with a context: the key reads as deleted, with a context to write over the tombstone', async () => {
    await client.put('users', 'carol', 'x', { w: 3 });
    const read = await client.get('users', 'carol', { r: 3 });
    await client.delete('users', 'carol', { context: read.context, w: 3 });
    const gone = await client.get('users', 'carol', { r: 3 });
    expect(gone.found).toBe(false);
    expect(gone.deleted).toBe(true);
    expect(gone.values).toEqual([]);
    expect(gone.context).not.toBeNull();
    await client.put('users', 'carol', 'back', { context: gone.context, w: 3 });
    expect((await client.get('users', 'carol', { r: 3 })).values.map(String)).toEqual(['back']);
  });

  it('update does read-modify-write and refuses unresolved siblings without a merge function', async () => {
    const inc = (cur: Buffer | null) => Buffer.from(String(Number(cur?.toString() ?? '0') + 1));
    for (let i = 0; i < 5; i++) await client.update('counters', 'hits', inc, { w: 3, r: 3 });
    expect(String((await client.get('counters', 'hits', { r: 3 })).values[0])).toBe('5');

    const { context } = await client.put('counters', 'split', '1', { w: 3 });
    await Promise.all([client.put('counters', 'split', '10', { context, w: 3 }), client.put('counters', 'split', '20', { context, w: 3 })]);
    const err = await client.update('counters', 'split', inc, { r: 3 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RingkvError);
    expect((err as RingkvError).code).toBe('SIBLINGS_UNRESOLVED');

    const max = (values: Buffer[]) => Buffer.from(String(Math.max(...values.map(Number))));
    const updated = await client.update('counters', 'split', inc, { merge: max, r: 3, w: 3 });
    expect(String(updated.value)).toBe('21');
    const after = await client.get('counters', 'split', { r: 3 });
    expect(after.values.map(String)).toEqual(['21']);
  });

  it('update and getResolved keep the content type and metadata unless told otherwise', async () => {
    const json = { contentType: 'application/json', meta: { owner: 'dana', schema: 'v2' } };
    await client.put('docs', 'd1', '{"n":1}', { ...json, w: 3 });
    const bump = (cur: Buffer | null) => JSON.stringify({ n: (JSON.parse(String(cur)) as { n: number }).n + 1 });
    await client.update('docs', 'd1', bump, { r: 3, w: 3 });
    const kept = await client.get('docs', 'd1', { r: 3 });
    expect(kept.siblings.map(({ value, contentType, meta }) => ({ value: String(value), contentType, meta }))).toEqual([{ value: '{"n":2}', ...json }]);
    // Named in the options: those win.
    await client.update('docs', 'd1', bump, { r: 3, w: 3, contentType: 'text/plain', meta: { owner: 'eve' } });
    const changed = (await client.get('docs', 'd1', { r: 3 })).siblings[0]!;
    expect([changed.contentType, changed.meta]).toEqual(['text/plain', { owner: 'eve' }]);

    // Siblings: the merge is written with the newest sibling's attributes.
    const { context } = await client.put('docs', 'd2', 'a', { contentType: 'text/plain', w: 3 });
    await client.put('docs', 'd2', 'b', { context, contentType: 'text/csv', meta: { rows: '1' }, w: 3 });
    await new Promise((r) => setTimeout(r, 5)); // a later lastModified (ms) for the next sibling
    await client.put('docs', 'd2', 'c', { context, contentType: 'text/markdown', meta: { rows: '2' }, w: 3 });
    const split = await client.get('docs', 'd2', { r: 3 });
    expect(split.siblings).toHaveLength(2);
    const newest = split.siblings.reduce((a, b) => (b.lastModified > a.lastModified ? b : a));
    const resolved = await client.getResolved('docs', 'd2', (vs) => Buffer.from(vs.map(String).sort().join('')), { r: 3, w: 3 });
    expect(resolved.merged).toBe(true);
    const merged = (await client.get('docs', 'd2', { r: 3 })).siblings;
    expect(merged.map(({ value, contentType, meta }) => ({ value: String(value), contentType, meta }))).toEqual([{ value: 'bc', contentType: newest.contentType, meta: newest.meta }]);
  });

  it('reads and changes bucket properties', async () => {
    expect(await client.bucketProps('fresh')).toEqual({ n: 3, r: 2, w: 2, dw: 0, mode: 'siblings' });
    const props = await client.setBucketProps('lwwbucket', { mode: 'lww', r: 1 }, { node: nodes[0]!.address });
    expect(props).toMatchObject({ mode: 'lww', r: 1, n: 3 });
    expect(await client.bucketProps('lwwbucket', { node: nodes[0]!.address })).toMatchObject({ mode: 'lww', r: 1 });
    // The change reaches the other nodes by gossip.
    await waitFor(async () => {
      const all = await Promise.all(nodes.map((n) => client.bucketProps('lwwbucket', { node: n.address })));
      return all.every((p) => p.mode === 'lww' && p.r === 1);
    }, 15_000, 'bucket props on every node');
  });

  it('throws RingkvError with the server code for bad requests', async () => {
    const codeOf = async (p: Promise<unknown>) => {
      const e = await p.then(() => null, (x: unknown) => x);
      expect(e).toBeInstanceOf(RingkvError);
      return e as RingkvError;
    };
    const ctx = await codeOf(client.put('users', 'dave', 'v', { context: 'not base64!' }));
    expect(ctx).toMatchObject({ status: 400, code: 'BAD_CONTEXT' });
    expect((ctx.body as { error: string }).error).toBe('BAD_CONTEXT');

    expect(await codeOf(client.get('users', 'dave', { r: 9 }))).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
    expect(await codeOf(client.put('users', 'k'.repeat(1025), 'v'))).toMatchObject({ status: 400, code: 'KEY_TOO_LARGE' });
    const props = await codeOf(client.setBucketProps('users', { nope: 1 } as never));
    expect(props).toMatchObject({ status: 400, code: 'INVALID_BUCKET_PROPS' });
    expect((props.body as { fields: string[] }).fields).toEqual(['nope']);
    expect(await codeOf(client.join('not-an-address'))).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
  });

  it('fails over to the next node when a node is unreachable', async () => {
    const dead = `127.0.0.1:${await closedPort()}`;
    const failover = new RingkvClient({ nodes: [dead, `http://${nodes[1]!.address}/`], timeoutMs: 5_000 });
    // Every call starts the rotation one further; each must land on the live node.
    for (let i = 0; i < 4; i++) {
      await failover.put('fo', `k${i}`, `v${i}`);
      expect((await failover.get('fo', `k${i}`)).values.map(String)).toEqual([`v${i}`]);
    }
    expect(await failover.ping()).toBe(true);

    const allDead = new RingkvClient({ nodes: [dead], timeoutMs: 5_000 });
    const err = await allDead.ping().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RingkvError);
    expect(err).toMatchObject({ status: 0, code: 'UNREACHABLE' });
  });

  it('does not retry HTTP errors on another node, and times out on a silent one', async () => {
    const hits = [0, 0];
    const servers = [0, 1].map((i) =>
      http.createServer((req, res) => {
        hits[i]!++;
        if (req.url?.startsWith('/slow')) return; // never answers
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'UNAVAILABLE', message: 'try later' }));
      }),
    );
    try {
      const ports = await Promise.all(
        servers.map((s) => new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)))),
      );
      const c = new RingkvClient({ nodes: ports.map((p) => `127.0.0.1:${p}`), timeoutMs: 300 });
      await expect(c.get('b', 'k')).rejects.toMatchObject({ status: 503, code: 'UNAVAILABLE', body: { message: 'try later' } });
      expect(hits).toEqual([1, 0]);
      await expect(c.status()).rejects.toMatchObject({ status: 503, code: 'UNAVAILABLE' });
      expect(hits).toEqual([1, 1]);
      const slow = await c.ping(`127.0.0.1:${ports[0]}/slow`).catch((e: unknown) => e);
      expect(slow).toMatchObject({ status: 0, code: 'CLIENT_TIMEOUT' });
    } finally {
      for (const s of servers) s.closeAllConnections();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    }
  });
});

describe('finding 6: every documented limit works end to end through the client', () => {
  /**
   * A context of 1021 actors of `actorBytes` bytes each: each of the three
   * nodes adds its own entry when it coordinates a write (the client sends
   * round-robin), so the context a read answers covers up to 1024 actors,
   * the maximum a stored context may have and a client may send back.
   */
  const fullContext = (actorBytes: number): string => {
    const entries = Array.from({ length: 1021 }, (_, i) => {
      const actor = Buffer.alloc(actorBytes, 0x61);
      actor.writeUInt16BE(0x6000 + i, 0); // distinct and ascending
      return { actor, counter: 1 };
    });
    return encodeContext(entries).toString('base64url');
  };

  it('finding 6: reads a key written with a 1024-actor context (a header over 16 KiB)', async () => {
    const context = fullContext(8);
    expect(context.length).toBeGreaterThan(16 * 1024);
    await client.put('limits', 'ctx', 'v', { context, w: 3 });
    const got = await client.get('limits', 'ctx', { r: 3 });
    expect(got.values.map(String)).toEqual(['v']);
    expect(got.context!.length).toBeGreaterThan(16 * 1024);
    // The context the client read can be written back.
    await client.put('limits', 'ctx', 'w', { context: got.context, w: 3 });
    expect((await client.get('limits', 'ctx', { r: 3 })).values.map(String)).toEqual(['w']);
  });

  it('a context covering 1024 actors, the maximum, is refused (the coordinator\'s own entry would make 1025), so every context a read returns can be written back', async () => {
    const entries = Array.from({ length: 1024 }, (_, i) => ({ actor: Buffer.from(`c${String(i).padStart(4, '0')}`), counter: 1 }));
    const full = encodeContext(entries).toString('base64url');
    const refused = (await client.put('limits', 'full', 'v', { context: full, w: 3 }).catch((e: unknown) => e)) as RingkvError;
    expect(refused).toBeInstanceOf(RingkvError);
    expect([refused.status, refused.code]).toEqual([400, 'BAD_CONTEXT']);
    expect(refused.message).toMatch(/context is full/);
    expect((await client.get('limits', 'full', { r: 3 })).found).toBe(false); // nothing stored
    // 1021 actors: round-robin writes through the three nodes each add that
    // node's entry, up to 1024; every context a read returns is written back.
    await client.put('limits', 'full', 'v0', { context: encodeContext(entries.slice(3)).toString('base64url'), w: 3 });
    for (let i = 1; i <= 6; i++) {
      const read = await client.get('limits', 'full', { r: 3 });
      expect(read.values.map(String)).toEqual([`v${i - 1}`]);
      await client.put('limits', 'full', `v${i}`, { context: read.context, w: 3 });
    }
    const last = await client.get('limits', 'full', { r: 3 });
    expect(last.values.map(String)).toEqual(['v6']);
    expect(decodeContext(Buffer.from(last.context!, 'base64url'))).toHaveLength(1024);
  });

  it('finding 6: the largest key and the largest value round-trip', async () => {
    const key = Buffer.alloc(1024, 0xfe);
    const value = Buffer.alloc(1024 * 1024, 7);
    await client.put('limits', key, value, { w: 3 });
    const got = await client.get('limits', key, { r: 3 });
    expect(got.values).toHaveLength(1);
    expect(Buffer.compare(got.values[0]!, value)).toBe(0);
    const over = await client.put('limits', Buffer.alloc(1025, 0xfe), 'x').catch((e: unknown) => e);
    expect((over as RingkvError).code).toBe('KEY_TOO_LARGE');
  });

  it('finding 6: 100 siblings (the maximum) with a 1024-actor context are read in full', async () => {
    const context = fullContext(8);
    const value = Buffer.alloc(8 * 1024, 3);
    for (let i = 0; i < 100; i++) await client.put('limits', 'sibs', Buffer.concat([Buffer.from(`${i}:`), value]), { context, w: 3 });
    const got = await client.get('limits', 'sibs', { r: 3 });
    expect(got.siblings).toHaveLength(100);
    expect(new Set(got.values.map((v) => v.subarray(0, v.indexOf(0x3a)).toString())).size).toBe(100);
  });
});
