// Sets on a real 3-node cluster (native engines, uWS, real sockets), through
// the HTTP API and the client: concurrent adds through every node, removes,
// add-wins, forwarding from a non-replica, limits and errors, and a removed
// element that must not come back when a stale replica's concurrent version
// meets the remove.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient, RingkvError } from '../../src/client/index.js';
import * as orset from '../../src/core/orset.js';
import { partitionOf } from '../../src/core/ring.js';
import { decodeRecord, recordContextBytes } from '../../src/record/codec.js';
import { stateOfRecord } from '../../src/node/sets.js';
import { startCluster, waitFor, type TestCluster } from '../helpers/cluster.js';

const MAX_VALUE = 128 * 1024;
let cluster: TestCluster;
let client: RingkvClient;
/** One client per node, so a request goes through that node. */
let via: RingkvClient[];

beforeAll(async () => {
  cluster = await startCluster(3, { limits: { maxValueBytes: MAX_VALUE } });
  const addresses = cluster.nodes.map((n) => n.address);
  client = new RingkvClient({ nodes: addresses });
  via = addresses.map((a) => new RingkvClient({ nodes: [a] }));
  await client.setBucketProps('carts', { type: 'set' });
  await waitFor(() => cluster.nodes.every((n) => n.node.bucketProps('carts').type === 'set'), 10_000, 'set props gossiped');
});
afterAll(async () => {
  await cluster?.close();
});

const text = (v: { elements: Buffer[] }): string[] => v.elements.map((e) => e.toString('utf8'));
const B = Buffer.from('carts');

async function replicaState(i: number, key: string): Promise<orset.OrSet> {
  return stateOfRecord(await cluster.nodes[i]!.engine.get(B, Buffer.from(key)));
}

async function error(p: Promise<unknown>): Promise<RingkvError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(RingkvError);
    return err as RingkvError;
  }
  throw new Error('expected an error');
}

describe('sets on a 3-node cluster', () => {
  it('answers the empty set for an absent key', async () => {
    const got = await client.setGet('carts', 'nobody');
    expect(got.elements).toEqual([]);
    expect(got.context).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it('keeps every add made concurrently through different nodes', async () => {
    const adds = via.flatMap((c, i) => Array.from({ length: 10 }, (_, j) => c.setAdd('carts', 'concurrent', `n${i}-item${j}`)));
    await Promise.all(adds);
    const got = await client.setGet('carts', 'concurrent', { r: 3 });
    expect(got.elements).toHaveLength(30);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 10; j++) expect(text(got)).toContain(`n${i}-item${j}`);
    // A later update collapses whatever siblings the concurrency left.
    await client.setAdd('carts', 'concurrent', 'last');
    await waitFor(async () => {
      const record = await cluster.nodes[0]!.engine.get(B, Buffer.from('concurrent'));
      return record !== null && decodeRecord(record).siblings.length === 1;
    }, 5_000, 'siblings collapse');
    expect(text(await client.setGet('carts', 'concurrent', { r: 3 }))).toHaveLength(31);
  });

  it('adds and removes, binary elements included; a remove of an absent element is a no-op', async () => {
    const bin = Buffer.from([0, 255, 10, 0x22]);
    let s = await client.setUpdate('carts', 'basic', { add: ['apple', 'pear', bin] });
    expect(s.elements.map((e) => e.toString('hex'))).toEqual([bin, Buffer.from('apple'), Buffer.from('pear')].map((e) => e.toString('hex')));
    s = await via[1]!.setRemove('carts', 'basic', 'pear', bin);
    expect(text(s)).toEqual(['apple']);
    s = await via[2]!.setRemove('carts', 'basic', 'never-there');
    expect(text(s)).toEqual(['apple']);
    for (let i = 0; i < 3; i++) expect(text(await via[i]!.setGet('carts', 'basic', { r: 3 }))).toEqual(['apple']);
    // The HTTP body takes UTF-8 strings by default.
    const res = await fetch(`${cluster.url(0)}/sets/carts/basic?w=3`, { method: 'POST', body: JSON.stringify({ add: ['ünïcode'], remove: ['apple'] }) });
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { elements: string[]; context: string };
    expect(doc.elements.map((e) => Buffer.from(e, 'base64').toString('utf8'))).toEqual(['ünïcode']);
  });

  it('lets an add win over a concurrent remove that did not see it', async () => {
    await client.setAdd('carts', 'addwins', 'x');
    const seen = await via[0]!.setGet('carts', 'addwins', { r: 3 });
    // Meanwhile another client adds x again through another node: a new dot.
    await via[1]!.setAdd('carts', 'addwins', 'x');
    // The remove carries what its client saw: the re-add is not in it.
    let s = await via[2]!.setUpdate('carts', 'addwins', { remove: ['x'], context: seen.context });
    expect(text(s)).toEqual(['x']);
    // A remove that saw everything takes it.
    s = await via[2]!.setUpdate('carts', 'addwins', { remove: ['x'], context: (await client.setGet('carts', 'addwins', { r: 3 })).context });
    expect(text(s)).toEqual([]);
  });

  it('does not resurrect a removed element when a stale replica’s concurrent version meets the remove', async () => {
    // The Dynamo cart: milk and eggs on every replica.
    const key = 'partitioned';
    await via[0]!.setUpdate('carts', key, { add: ['milk', 'eggs'] }, { w: 3 });
    const stale = await cluster.nodes[2]!.engine.get(B, Buffer.from(key));
    expect(orset.elements(stateOfRecord(stale)).map(String)).toEqual(['eggs', 'milk']);

    // n1 removes eggs (all replicas acknowledge).
    await via[0]!.setRemove('carts', key, 'eggs');

    // Meanwhile n3, cut off, took an update on its stale copy: what its set
    // store would do coordinating alone (r = w = 1) — its local record (the
    // stale version, still holding eggs), plus bread under n3's actor,
    // written through its engine with the stale version's context. Written
    // after the remove, that context does not cover the remove: the new
    // version is concurrent with it, exactly as a partitioned write is.
    const n3 = cluster.nodes[2]!.engine;
    const partitioned = orset.add(stateOfRecord(stale), n3.actor, Buffer.from('bread'));
    await n3.coordinate({ bucket: B, key: Buffer.from(key), context: recordContextBytes(stale!), value: orset.encode(partitioned), now: Date.now(), mode: 'siblings', durable: false });
    const atN3 = decodeRecord((await n3.get(B, Buffer.from(key)))!);
    expect(atN3.siblings).toHaveLength(2);
    // A union of the siblings' elements (the application-level merge Dynamo
    // suggested) would bring eggs back.
    const union = new Set(atN3.siblings.flatMap((s) => orset.elements(orset.decode(s.value)).map(String)));
    expect([...union].sort()).toEqual(['bread', 'eggs', 'milk']);

    // The partition heals: a read with r = 3 through n2 sees both versions.
    const got = await via[1]!.setGet('carts', key, { r: 3 });
    expect(text(got)).toEqual(['bread', 'milk']);

    // Read repair hands both versions to n1 and n2; no replica shows eggs.
    await waitFor(async () => {
      for (let i = 0; i < 3; i++) {
        const record = await cluster.nodes[i]!.engine.get(B, Buffer.from(key));
        if (!record || decodeRecord(record).siblings.length !== 2) return false;
      }
      return true;
    }, 5_000, 'read repair');
    for (let i = 0; i < 3; i++) expect(orset.elements(await replicaState(i, key)).map(String)).toEqual(['bread', 'milk']);

    // The next update collapses the siblings, still without eggs.
    const after = await via[2]!.setAdd('carts', key, 'jam');
    expect(text(after)).toEqual(['bread', 'jam', 'milk']);
    expect(text(await client.setGet('carts', key, { r: 3 }))).toEqual(['bread', 'jam', 'milk']);
  });

  it('forwards an update from a node that holds no replica to one that does', async () => {
    // With n = 2 one of the three nodes is not a replica of the key.
    const key = 'forwarded';
    const n0 = cluster.nodes[0]!.node;
    const ring = n0.clusterState.ring;
    const { primaries } = n0.preferenceListOf(partitionOf(ring, n0.engine.hashKey(B, Buffer.from(key))), 2);
    const outsider = cluster.nodes.findIndex((n) => !primaries.includes(n.node.id));
    expect(outsider).toBeGreaterThanOrEqual(0);
    const s = await via[outsider]!.setUpdate('carts', key, { add: ['a', 'b'] }, { n: 2, w: 2 });
    expect(text(s)).toEqual(['a', 'b']);
    expect(await cluster.nodes[outsider]!.engine.get(B, Buffer.from(key))).toBeNull();
    for (const [i, n] of cluster.nodes.entries()) {
      if (i === outsider) continue;
      const state = await replicaState(i, key);
      expect(orset.elements(state).map(String)).toEqual(['a', 'b']);
      // The dots belong to a replica's actor, never to the outsider's.
      expect([...state.clock.keys()].every((a) => primaries.some((p) => a.startsWith(`${p}:`)))).toBe(true);
      void n;
    }
    expect(text(await via[outsider]!.setGet('carts', key, { n: 2, r: 2 }))).toEqual(['a', 'b']);
  });

  it('refuses set operations on other buckets, and /kv on a set bucket', async () => {
    let e = await error(client.setAdd('plain', 'k', 'x'));
    expect(e.status).toBe(409);
    expect(e.code).toBe('NOT_A_SET');
    expect((e.body as { hint: string }).hint).toMatch(/"type":"set"/);
    e = await error(client.setGet('plain', 'k'));
    expect(e.code).toBe('NOT_A_SET');

    await client.setAdd('carts', 'kv', 'x');
    for (const method of ['GET', 'PUT', 'POST', 'DELETE']) {
      const res = await fetch(`${cluster.url(1)}/kv/carts/kv`, { method, body: method === 'PUT' || method === 'POST' ? 'raw' : undefined });
      expect(res.status, method).toBe(409);
      expect(((await res.json()) as { error: string }).error).toBe('BUCKET_IS_A_SET');
    }
    expect(text(await client.setGet('carts', 'kv'))).toEqual(['x']);
    const res = await fetch(`${cluster.url(0)}/sets/carts/kv`, { method: 'PUT', body: '{}' });
    expect(res.status).toBe(405);
  });

  it('checks limits and the request body', async () => {
    const post = async (body: unknown, query = ''): Promise<{ status: number; error: string }> => {
      const res = await fetch(`${cluster.url(0)}/sets/carts/limits${query}`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });
      const doc = (await res.json()) as { error: string };
      return { status: res.status, error: doc.error };
    };
    expect(await post({ add: Array.from({ length: 1001 }, (_, i) => `e${i}`) })).toEqual({ status: 400, error: 'BAD_REQUEST' });
    expect(await post({ add: ['x'.repeat(1025)] })).toEqual({ status: 400, error: 'BAD_REQUEST' });
    expect(await post({ add: ['x'], remove: ['x'] })).toEqual({ status: 400, error: 'BAD_REQUEST' });
    expect(await post({})).toEqual({ status: 400, error: 'BAD_REQUEST' });
    expect(await post({ add: [1] })).toEqual({ status: 400, error: 'BAD_REQUEST' });
    expect(await post({ add: ['not base64!'], encoding: 'base64' })).toEqual({ status: 400, error: 'BAD_REQUEST' });
    expect(await post({ add: ['x'], encoding: 'latin1' })).toEqual({ status: 400, error: 'BAD_REQUEST' });
    expect(await post({ add: ['x'], colour: 'red' })).toEqual({ status: 400, error: 'BAD_REQUEST' });
    expect(await post({ remove: ['x'], context: 'AQAB' })).toEqual({ status: 400, error: 'BAD_CONTEXT' });
    expect(await post({ remove: ['x'], context: 'not*base64url' })).toEqual({ status: 400, error: 'BAD_CONTEXT' });
    expect(await post('[1,2]')).toEqual({ status: 400, error: 'BAD_REQUEST' });
    expect(await post({ add: ['x'] }, '?returnbody=true')).toEqual({ status: 400, error: 'BAD_REQUEST' });
    expect((await post({ add: ['x'.repeat(1024)] })).status).toBe(200);
    // The whole set is bounded by the value limit (128 KiB here).
    const big = (from: number): string[] => Array.from({ length: 100 }, (_, i) => `${from + i}`.padEnd(1000, '.'));
    expect((await post({ add: big(0) })).status).toBe(200);
    expect(await post({ add: big(100) })).toEqual({ status: 413, error: 'VALUE_TOO_LARGE' });
    expect(orset.size(await replicaState(0, 'limits'))).toBe(101);
  });
});
