// Issue 15 item 3, on a real 3-node cluster at (3,2,2) (native engines, uWS,
// real sockets): a bucket with read_fanout 'quorum' reads through a
// coordinator that is a replica with one peer kv.get per GET (its own copy and
// one other), sees a write made just before through another node, and with a
// stale replica still answers with the newest version and repairs the stale
// copy. Bad values of the prop and of ?fanout= are 400 with a JSON code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient } from '../../src/client/index.js';
import { decodeRecord, recordContextBytes } from '../../src/record/index.js';
import { startCluster, waitFor, type TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;
let via: RingkvClient[];
const BUCKET = 'fan';
const B = Buffer.from(BUCKET);

beforeAll(async () => {
  // The speculative retry far off (but below the deadline): every extra kv.get counted below comes from the read's rules, not a slow machine.
  cluster = await startCluster(3, { node: { gossipIntervalMs: 100, requestTimeoutMs: 4_000, readRetryAfterMs: 3_000 } });
  via = cluster.nodes.map((n) => new RingkvClient({ nodes: [n.address] }));
  await via[0]!.setBucketProps(BUCKET, { read_fanout: 'quorum' });
  // Partitions still moving to n2 and n3 after they joined: a replica still receiving answers together with its giver (one more kv.get, not the fan-out's).
  await waitFor(() => cluster.nodes.every((n) => n.node.transfers.receiving().length === 0 && n.node.transfers.status().length === 0), 30_000, 'transfers done');
});
afterAll(async () => {
  await cluster?.close();
});

/** kv.get requests served as a replica, summed over the nodes other than n1. */
async function replicaGets(): Promise<number> {
  let sum = 0;
  for (const n of cluster.nodes.slice(1)) {
    const v = (await n.node.metrics.replicaRequests.get()).values.find((x) => x.labels.type === 'kv.get');
    sum += v?.value ?? 0;
  }
  return sum;
}

async function counter(i: number, name: 'transferReads' | 'readRepairs'): Promise<number> {
  return (await cluster.nodes[i]!.node.metrics[name].get()).values.reduce((s, v) => s + v.value, 0);
}

/** The values n's engine holds for `key` (null: none). */
async function held(i: number, key: string): Promise<string[] | null> {
  const rec = await cluster.nodes[i]!.engine.get(B, Buffer.from(key));
  return rec ? decodeRecord(rec).siblings.map((s) => s.value.toString()) : null;
}

/** Waits until every node's engine holds exactly `value` for `key`. */
async function everywhere(key: string, value: string): Promise<void> {
  await waitFor(async () => {
    for (let i = 0; i < cluster.nodes.length; i++) if (JSON.stringify(await held(i, key)) !== JSON.stringify([value])) return false;
    return true;
  }, 5_000, `${key}=${value} on every replica`);
}

describe('read fan-out quorum at (3,2,2)', () => {
  it('every node has the prop; bad values of the prop and of ?fanout= are 400 with a JSON code', async () => {
    for (const n of cluster.nodes) expect(n.node.bucketProps(BUCKET).read_fanout).toBe('quorum');
    for (const bad of ['one', 'QUORUM', 3, ['quorum']]) {
      const res = await fetch(`${cluster.url(1)}/buckets/${BUCKET}/props`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ props: { read_fanout: bad } }) });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: 'INVALID_BUCKET_PROPS', fields: ['read_fanout'] });
    }
    const res = await fetch(`${cluster.url(0)}/kv/${BUCKET}/k?fanout=some`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'BAD_REQUEST', message: expect.stringMatching(/fanout must be all or quorum/) });
    for (const n of cluster.nodes) expect(n.node.bucketProps(BUCKET).read_fanout).toBe('quorum');
  });

  it('a GET through n1 (a replica) sends one peer kv.get; ?fanout=all sends two', async () => {
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    for (const k of keys) await via[0]!.put(BUCKET, k, `v-${k}`);
    for (const k of keys) await everywhere(k, `v-${k}`);
    const before = await replicaGets();
    const transferReads = await counter(0, 'transferReads');
    for (const k of keys) expect((await via[0]!.get(BUCKET, k)).values.map(String)).toEqual([`v-${k}`]);
    const quorumGets = (await replicaGets()) - before;
    for (const k of keys) await via[0]!.get(BUCKET, k, { fanout: 'all' });
    const allGets = (await replicaGets()) - before - quorumGets;
    expect({ quorumGets, allGets }).toEqual({ quorumGets: keys.length, allGets: 2 * keys.length });
    expect(await counter(0, 'transferReads')).toBe(transferReads);
  });

  it('a write through n2, then a read through n1, sees it', async () => {
    let context: string | null = null;
    for (let i = 0; i < 10; i++) {
      await via[1]!.put(BUCKET, 'ryw', `v${i}`, { w: 2, context });
      const got = await via[0]!.get(BUCKET, 'ryw');
      expect(got.values.map(String)).toEqual([`v${i}`]);
      context = got.context;
    }
  });

  it('with n1 stale, a read through n1 answers the newest version and repairs n1', async () => {
    await via[0]!.put(BUCKET, 'stale', 'old');
    await everywhere('stale', 'old');
    // A newer version on n2 and n3 only (made by n2's engine over the old one, merged into n3): n1 missed it.
    const old = (await cluster.nodes[1]!.engine.get(B, Buffer.from('stale')))!;
    const newer = await cluster.nodes[1]!.engine.coordinate({ bucket: B, key: Buffer.from('stale'), context: recordContextBytes(old), value: Buffer.from('new'), now: Date.now(), mode: 'siblings', durable: false });
    await cluster.nodes[2]!.engine.merge({ bucket: B, key: Buffer.from('stale'), record: newer, mode: 'siblings', durable: false });
    // r = 1: n1 asks only itself, and answers its stale copy (no other copy read, nothing to compare).
    expect((await via[0]!.get(BUCKET, 'stale', { r: 1 })).values.map(String)).toEqual(['old']);
    // r = 2: n1's copy and one of n2, n3 differ, so the third is asked too; the answer is the newest, and n1 is repaired.
    expect((await via[0]!.get(BUCKET, 'stale')).values.map(String)).toEqual(['new']);
    await waitFor(async () => JSON.stringify(await held(0, 'stale')) === '["new"]', 5_000, 'n1 repaired');
    expect(await held(0, 'stale')).toEqual(await held(1, 'stale'));
  });
});
