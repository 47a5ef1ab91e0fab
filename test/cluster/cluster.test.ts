// A real 3-node cluster on 127.0.0.1 with (N,R,W) = (3,2,2): quorum reads and
// writes, a stopped node, siblings from concurrent writes and their
// reconciliation, and read repair verified on the stale replica itself.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRecord } from '../../src/record/codec.js';
import { CONTEXT_HEADER } from '../../src/http/wire.js';
import { startCluster, waitFor, type TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startCluster(3);
});
afterAll(async () => {
  await cluster?.close();
});

const put = (node: number, path: string, value: string, context?: string | null, query = '') =>
  fetch(`${cluster.url(node)}/kv/${path}${query}`, {
    method: 'PUT',
    body: value,
    headers: context ? { [CONTEXT_HEADER]: context } : {},
  });
const get = (node: number, path: string, query = '') => fetch(`${cluster.url(node)}/kv/${path}${query}`);

/** The values one replica holds for a key, read from its engine directly. */
async function replicaValues(node: number, bucket: string, key: string): Promise<string[]> {
  const record = await cluster.nodes[node]!.engine.get(Buffer.from(bucket), Buffer.from(key));
  return record ? decodeRecord(record).siblings.filter((s) => !s.tombstone).map((s) => s.value.toString()).sort() : [];
}

describe('3-node cluster, N=3 R=2 W=2', () => {
  it('every key lands on all three replicas and reads back from any node', async () => {
    for (let i = 0; i < 20; i++) {
      const res = await put(i % 3, `users/u${i}`, `v${i}`);
      expect(res.status).toBe(204);
    }
    for (let i = 0; i < 20; i++) {
      const res = await get((i + 1) % 3, `users/u${i}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(`v${i}`);
    }
    // W=2 returns before the third ack; all three replicas converge right after.
    await waitFor(async () => (await Promise.all([0, 1, 2].map((n) => replicaValues(n, 'users', 'u7')))).every((v) => v.join() === 'v7'), 5_000, 'replication');
  });

  it('concurrent writes with the same stale context become siblings; a write with their context reconciles', async () => {
    expect((await put(0, 'cart/alice', 'milk')).status).toBe(204);
    const first = await get(1, 'cart/alice');
    const stale = first.headers.get(CONTEXT_HEADER)!;
    expect(stale).toBeTruthy();
    await Promise.all([put(1, 'cart/alice', 'milk,eggs', stale), put(2, 'cart/alice', 'milk,bread', stale)]);

    const both = await get(0, 'cart/alice', '?r=3');
    expect(both.status).toBe(300);
    const doc = (await both.json()) as { context: string; siblings: Array<{ value: string }> };
    const values = doc.siblings.map((s) => Buffer.from(s.value, 'base64').toString()).sort();
    expect(values).toEqual(['milk,bread', 'milk,eggs']);

    expect((await put(2, 'cart/alice', 'milk,eggs,bread', doc.context)).status).toBe(204);
    const merged = await get(1, 'cart/alice', '?r=3');
    expect(merged.status).toBe(200);
    expect(await merged.text()).toBe('milk,eggs,bread');
  });

  it('a bucket in lww mode keeps one value: the write with the latest timestamp', async () => {
    const props = await fetch(`${cluster.url(0)}/buckets/sessions/props`, { method: 'PUT', body: JSON.stringify({ mode: 'lww' }) });
    expect(props.status).toBe(200);
    // Bucket properties travel by gossip: wait until every node has them.
    await waitFor(() => cluster.nodes.every((n) => n.node.bucketProps('sessions').mode === 'lww'), 5_000, 'props gossip');
    await put(0, 'sessions/s1', 'first');
    await new Promise((r) => setTimeout(r, 5));
    await Promise.all([put(1, 'sessions/s1', 'second'), put(2, 'sessions/s1', 'third')]);
    const res = await get(0, 'sessions/s1', '?r=3');
    expect(res.status).toBe(200);
    expect(['second', 'third']).toContain(await res.text());
  });

  it('a read repairs a stale replica (checked on that replica)', async () => {
    expect((await put(0, 'repair/k', 'old', null, '?w=3')).status).toBe(204);
    // Make n3 stale: a newer version reaches n1 and n2 only, through their engines.
    const [n1, n2] = [cluster.nodes[0]!.engine, cluster.nodes[1]!.engine];
    const stored = await n1.get(Buffer.from('repair'), Buffer.from('k'));
    const newer = await n1.coordinate({
      bucket: Buffer.from('repair'), key: Buffer.from('k'), context: stored!.subarray(0, 0), value: Buffer.from('new'),
      now: Date.now(), mode: 'siblings', durable: false,
    });
    await n2.merge({ bucket: Buffer.from('repair'), key: Buffer.from('k'), record: newer, mode: 'siblings', durable: false });
    expect(await replicaValues(2, 'repair', 'k')).toEqual(['old']);

    const res = await get(2, 'repair/k', '?r=3');
    expect(res.status).toBe(300); // the blind engine write was concurrent with 'old'
    await waitFor(async () => (await replicaValues(2, 'repair', 'k')).join() === 'new,old', 3_000, 'read repair of n3');
    const repairs = await (await fetch(`${cluster.url(2)}/metrics`)).text();
    expect(repairs).toMatch(/ringkv_read_repairs_total\{node="n3"\} [1-9]/);
  });

  it('with one node stopped, quorum writes and reads still succeed', async () => {
    await cluster.nodes[2]!.close(500);
    for (let i = 0; i < 10; i++) {
      const res = await put(i % 2, `down/k${i}`, `v${i}`);
      expect(res.status, await res.clone().text()).toBe(204);
    }
    for (let i = 0; i < 10; i++) {
      const res = await get((i + 1) % 2, `down/k${i}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(`v${i}`);
    }
    // All three replicas are required with w=3: refused with a JSON 503, not hung.
    const strict = await put(0, 'down/strict', 'x', null, '?w=3&timeout=1000');
    expect(strict.status).toBe(503);
    expect(((await strict.json()) as { error: string }).error).toMatch(/QUORUM_FAILED|TIMEOUT/);
  });
});
