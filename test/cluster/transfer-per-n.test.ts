// Partition transfers per bucket n (docs/cluster.md "Partition transfer"),
// on real in-process nodes (native engine, real sockets on 127.0.0.1): a
// join copies a bucket's keys to exactly the nodes that became their
// replicas for that bucket's n — no stray copy past a small n, and the
// replicas past the default n for a large one. Anti-entropy is off and no
// key is read or written after the join, so only transfers move data. And
// transfer state saved before plans were made per n still resumes.
import { afterAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { partitionOf } from '../../src/core/ring.js';
import { NativeEngine } from '../../src/engine/native/index.js';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/index.js';
import { waitFor } from '../helpers/cluster.js';
import { startOnStablePort } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';
import { TEST_PEER_SECRETS } from '../helpers/secret.js';

const running = new Set<RunningServer>();
const dirs: Array<{ remove(): void }> = [];
afterAll(async () => {
  await Promise.all([...running].map((s) => s.close(500)));
  dirs.forEach((d) => d.remove());
});

const base = (transfers: Record<string, number> = {}): Partial<ServerOptions> => ({
  peerSecrets: TEST_PEER_SECRETS,
  auth: { required: false },
  logger: pino({ level: 'silent' }),
  // 64 partitions: 300 keys still land on partitions of every kind, and a join's plan is small.
  partitionBits: 6,
  node: { gossipIntervalMs: 100, requestTimeoutMs: 2_000 },
  antiEntropy: { intervalMs: 1e9 }, // only transfers may fill a new replica
  transfers: { intervalMs: 20, catchUpAfterMs: 500, receiveCheckMs: 500, ...transfers },
});

async function start(dir: string, id: string, seed?: RunningServer, extra: Partial<ServerOptions> = {}, port = 0): Promise<RunningServer> {
  const s = await startServer({ ...base(), nodeId: id, port, dataDir: `${dir}/${id}`, seeds: seed ? [seed.address] : [], ...extra } as ServerOptions);
  running.add(s);
  return s;
}

async function stop(s: RunningServer): Promise<void> {
  running.delete(s);
  await s.close(500);
}

/** Writes `count` keys to `bucket` through the nodes' HTTP API (bounded: each write once, 8 at a time); all must be acknowledged. */
async function write(servers: RunningServer[], bucket: string, count: number): Promise<string[]> {
  const keys = Array.from({ length: count }, (_, i) => `k${i}`);
  for (let i = 0; i < keys.length; i += 8) {
    await Promise.all(keys.slice(i, i + 8).map(async (key, j) => {
      const res = await fetch(`http://${servers[(i + j) % servers.length]!.address}/kv/${bucket}/${key}`, { method: 'PUT', body: `${bucket}-${key}`, signal: AbortSignal.timeout(5_000) });
      expect(res.status, `PUT ${bucket}/${key}`).toBe(204);
    }));
  }
  return keys;
}

const settled = (servers: RunningServer[], owners: number) =>
  servers.every((s) => new Set(s.node.clusterState.ring.owners).size === owners && s.transfers.status().length === 0 && s.transfers.receiving().length === 0);

/** For every key of `bucket`: whether `node`'s engine holds it, and whether `node` is among its first `n` primaries. */
async function placement(node: RunningServer, bucket: string, keys: string[], n: number): Promise<{ held: number; replica: number; stray: string[]; missing: string[] }> {
  const out = { held: 0, replica: 0, stray: [] as string[], missing: [] as string[] };
  for (const key of keys) {
    const b = Buffer.from(bucket);
    const k = Buffer.from(key);
    const p = partitionOf(node.node.clusterState.ring, node.engine.hashKey(b, k));
    const replica = node.node.preferenceListOf(p, n).primaries.includes(node.node.id);
    const held = (await node.engine.get(b, k)) !== null;
    if (held) out.held++;
    if (replica) out.replica++;
    if (held && !replica) out.stray.push(`${key} (p${p})`);
    if (!held && replica) out.missing.push(`${key} (p${p})`);
  }
  return out;
}

async function setN(servers: RunningServer[], bucket: string, n: number): Promise<void> {
  await servers[0]!.node.setBucketProps(bucket, { n, r: Math.min(2, n), w: Math.min(2, n) });
  await waitFor(() => servers.every((s) => s.node.bucketProps(bucket).n === n), 10_000, `bucket ${bucket} n=${n} everywhere`);
}

describe('partition transfer per bucket n', () => {
  it('a 3rd node gets an n = 2 bucket\'s keys iff it is among their 2 primaries, and every default-n key', async () => {
    const dir = tempDir('ringkv-xfer-n-');
    dirs.push(dir);
    const n1 = await start(dir.path, 'n1');
    const n2 = await start(dir.path, 'n2', n1);
    const servers = [n1, n2];
    await waitFor(() => servers.every((s) => new Set(s.node.clusterState.ring.owners).size === 2), 15_000, 'ring with 2 owners');
    await setN(servers, 'two', 2);
    const twoKeys = await write(servers, 'two', 300);
    const defaultKeys = await write(servers, 'plain', 300);

    const n3 = await start(dir.path, 'n3', n1);
    servers.push(n3);
    await waitFor(() => settled(servers, 3), 60_000, 'ring with 3 owners and every transfer done');

    const two = await placement(n3, 'two', twoKeys, 2);
    // The join moved some n = 2 keys to n3 and left others where they were: the check can tell stray from missing.
    expect(two.replica).toBeGreaterThan(0);
    expect(two.replica).toBeLessThan(twoKeys.length);
    expect(two.stray, 'n = 2 keys copied to n3 though it is not among their 2 primaries').toEqual([]);
    expect(two.missing, 'n = 2 keys n3 replicates but did not get').toEqual([]);
    const plain = await placement(n3, 'plain', defaultKeys, 3);
    expect(plain.missing).toEqual([]);
    expect(plain.held).toBe(defaultKeys.length);
    // The old replicas kept theirs: every key has its n copies on its primaries.
    for (const s of [n1, n2]) {
      expect((await placement(s, 'two', twoKeys, 2)).missing).toEqual([]);
      expect((await placement(s, 'plain', defaultKeys, 3)).missing).toEqual([]);
    }
  }, 120_000);

  it('a 5th node gets an n = 4 bucket\'s keys where it is a 4th (or earlier) replica, and no default-n key past the 3rd', async () => {
    const dir = tempDir('ringkv-xfer-n4-');
    dirs.push(dir);
    const n1 = await start(dir.path, 'n1');
    const servers = [n1];
    for (const id of ['n2', 'n3', 'n4']) servers.push(await start(dir.path, id, n1));
    await waitFor(() => servers.every((s) => new Set(s.node.clusterState.ring.owners).size === 4), 20_000, 'ring with 4 owners');
    await setN(servers, 'four', 4);
    const fourKeys = await write(servers, 'four', 300);
    const defaultKeys = await write(servers, 'plain', 300);

    const n5 = await start(dir.path, 'n5', n1);
    servers.push(n5);
    await waitFor(() => settled(servers, 5), 60_000, 'ring with 5 owners and every transfer done');

    const four = await placement(n5, 'four', fourKeys, 4);
    // Some keys have n5 as their 4th replica: what a plan for n = 3 alone never sent.
    const fourth = fourKeys.filter((key) => {
      const b = Buffer.from('four');
      const p = partitionOf(n5.node.clusterState.ring, n5.engine.hashKey(b, Buffer.from(key)));
      return n5.node.preferenceListOf(p, 4).primaries.indexOf('n5') === 3;
    });
    expect(fourth.length).toBeGreaterThan(0);
    expect(four.missing, 'n = 4 keys n5 replicates but did not get').toEqual([]);
    expect(four.stray).toEqual([]);
    const plain = await placement(n5, 'plain', defaultKeys, 3);
    expect(plain.replica).toBeGreaterThan(0);
    expect(plain.missing).toEqual([]);
    expect(plain.stray, 'default-n keys copied to n5 past their 3 primaries').toEqual([]);
  }, 120_000);

  it('transfer state saved before plans were per n (version 1) resumes after a restart and sends every key', async () => {
    const dir = tempDir('ringkv-xfer-v1-');
    dirs.push(dir);
    // Slow transfers that stop after their first pass: the giver is stopped halfway.
    const slow = base({ intervalMs: 50, batch: 5, catchUpAfterMs: 1e9 });
    let a = await startOnStablePort((port) => start(dir.path, 'a', undefined, slow, port));
    const port = a.port;
    await setN([a], 'two', 2);
    const keys = [...(await write([a], 'two', 300)), ...(await write([a], 'plain', 300))];
    const b = await start(dir.path, 'b', a, slow);
    await waitFor(() => a.transfers.status().reduce((sum, t) => sum + t.sent, 0) >= 100, 30_000, 'transfer under way');
    await stop(a);
    const held = async () => {
      let count = 0;
      for (const [i, key] of keys.entries()) if ((await b.engine.get(Buffer.from(i < 300 ? 'two' : 'plain'), Buffer.from(key))) !== null) count++;
      return count;
    };
    const before = await held();
    expect(before).toBeLessThan(keys.length);

    // Rewrite a's saved state as a build before per-n plans wrote it: no version, no n values.
    const engine = await NativeEngine.open({ path: `${dir.path}/a`, nodeId: 'a', partitionBits: a.engine.partitionBits });
    try {
      const state = JSON.parse((await engine.metaGet('xfer.state'))!.toString('utf8')) as { version?: number; pending: Array<{ ns?: number[]; sent: number }>; inbound?: { entries: Array<{ byN?: unknown }> } };
      expect(state.version).toBe(2);
      expect(state.pending.length).toBeGreaterThan(0);
      expect(state.pending.every((p) => Array.isArray(p.ns))).toBe(true);
      delete state.version;
      for (const p of state.pending) delete p.ns;
      for (const e of state.inbound?.entries ?? []) delete e.byN;
      await engine.metaPut('xfer.state', Buffer.from(JSON.stringify(state)));
      await engine.flush();
    } finally {
      await engine.close();
    }

    a = await start(dir.path, 'a', undefined, slow, port);
    // The old plan came back with its progress, and runs to the end of its first pass.
    expect(a.transfers.status().length).toBeGreaterThan(0);
    expect(a.transfers.status().some((t) => t.sent > 0)).toBe(true);
    await waitFor(() => a.transfers.status().every((t) => t.pass === 2), 60_000, 'first pass done');
    // The version-1 transfers sent the rest (every key: they carry no n values).
    expect(a.transfers.totals.objects).toBeGreaterThanOrEqual(keys.length - before);
    const missing: string[] = [];
    for (const key of keys.slice(0, 300)) if ((await b.engine.get(Buffer.from('two'), Buffer.from(key))) === null) missing.push(`two/${key}`);
    for (const key of keys.slice(300)) if ((await b.engine.get(Buffer.from('plain'), Buffer.from(key))) === null) missing.push(`plain/${key}`);
    expect(missing).toEqual([]);
  }, 120_000);
});
