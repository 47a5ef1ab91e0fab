// Issue 9 finding 5, on a real 3-node cluster (native engines, uWS, real
// sockets): bucket properties that would strand data are refused, and a
// props change is in force on every reachable member when the call returns.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient, RingkvError } from '../../src/client/index.js';
import { startCluster, waitFor, type TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;
/** One client per node, so a request goes through that node. */
let via: RingkvClient[];

beforeAll(async () => {
  cluster = await startCluster(3);
  via = cluster.nodes.map((n) => new RingkvClient({ nodes: [n.address] }));
});
afterAll(async () => {
  await cluster?.close();
});

async function error(p: Promise<unknown>): Promise<RingkvError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RingkvError) return e;
    throw e;
  }
  throw new Error('expected a RingkvError');
}

async function rawProps(i: number, bucket: string, body: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${cluster.url(i)}/buckets/${bucket}/props`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

describe('finding 5: bucket properties that strand data', () => {
  it('finding 5: type set is refused on a bucket holding objects, and the objects stay readable', async () => {
    await via[0]!.put('cart', 'k1', 'v1');
    await via[0]!.put('cart', 'k2', 'v2');
    // Every node holds every key (n=3 on 3 nodes); wait until the first one surely has both.
    const B = Buffer.from('cart');
    await waitFor(
      async () => (await cluster.nodes[0]!.engine.get(B, Buffer.from('k1'))) !== null && (await cluster.nodes[0]!.engine.get(B, Buffer.from('k2'))) !== null,
      5_000,
      'objects on n1',
    );
    const refused = await rawProps(0, 'cart', { type: 'set' });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).toContain('INVALID_BUCKET_PROPS');
    expect(JSON.stringify(refused.body)).toMatch(/holds plain objects/);
    for (const n of cluster.nodes) expect(n.node.bucketProps('cart').type).toBeUndefined();
    for (const c of via) {
      expect((await c.get('cart', 'k1')).values.map(String)).toEqual(['v1']);
      expect((await c.get('cart', 'k2')).values.map(String)).toEqual(['v2']);
    }
    // Other changes of that bucket still go through.
    expect((await via[0]!.setBucketProps('cart', { w: 3 })).w).toBe(3);
  });

  it("finding 5: {mode:'lww', type:'set'} is refused with 400 INVALID_BUCKET_PROPS", async () => {
    const refused = await rawProps(1, 'lwwset', { mode: 'lww', type: 'set' });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).toContain('INVALID_BUCKET_PROPS');
    expect(JSON.stringify(refused.body)).toMatch(/cannot be 'lww' with type 'set'/);
    const e = await error(via[1]!.setBucketProps('lwwset', { mode: 'lww', type: 'set' }));
    expect(e.status).toBe(400);
    for (const n of cluster.nodes) expect(n.node.bucketProps('lwwset')).toEqual({ n: 3, r: 2, w: 2, dw: 0, mode: 'siblings' });
  });

  it('finding 5: {type:null} takes an empty set bucket back to plain', async () => {
    await via[0]!.setBucketProps('undo', { type: 'set' });
    const back = await rawProps(0, 'undo', { type: null });
    expect(back.status).toBe(200);
    for (const n of cluster.nodes) expect(n.node.bucketProps('undo').type).toBeUndefined();
    await via[2]!.put('undo', 'k', 'v');
    expect((await via[1]!.get('undo', 'k')).values.map(String)).toEqual(['v']);
  });

  it('finding 5: props set through n1, then a set add through n2 succeeds at once (5 of 5)', async () => {
    for (let i = 0; i < 5; i++) {
      const bucket = `fresh-set-${i}`;
      await via[0]!.setBucketProps(bucket, { type: 'set' });
      for (const n of cluster.nodes) expect(n.node.bucketProps(bucket).type).toBe('set');
      const added = await via[1]!.setAdd(bucket, 'k', `e${i}`);
      expect(added.elements.map(String)).toEqual([`e${i}`]);
    }
  });
});
