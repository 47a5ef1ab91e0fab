// Tombstone reaping on real nodes (native engine, uWS, sockets): 3 nodes with
// N=3, so every node is a primary of every key. A delete that all three
// primaries acknowledge is reaped from every replica after reapDelayMs; with
// a node stopped the tombstone is kept; and after a reap a new context-less
// write gets a dot above every dot the coordinator issued for the key before
// (the reap floor), even after the coordinator restarts.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRecord } from '../../src/record/codec.js';
import { CONTEXT_HEADER } from '../../src/http/wire.js';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/index.js';
import { waitFor } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';
import { TEST_PEER_SECRETS } from '../helpers/secret.js';

const REAP_DELAY = 300;
const quiet = pino({ level: 'silent' });
const dir = tempDir('ringkv-reap-');
const base = {
  peerSecrets: TEST_PEER_SECRETS,
  logger: quiet,
  auth: { required: false },
  node: { gossipIntervalMs: 100, requestTimeoutMs: 2_000, reapDelayMs: REAP_DELAY },
} satisfies Partial<ServerOptions>;
const ids = ['n1', 'n2', 'n3'];
const nodes: Array<RunningServer | null> = [];

const start = (i: number, port = 0): Promise<RunningServer> =>
  startServer({ ...base, port, nodeId: ids[i]!, dataDir: `${dir.path}/${ids[i]}`, seeds: i === 0 ? [] : [nodes[0]!.address] });

const converged = (): boolean => {
  if (nodes.some((n) => n === null)) return false;
  const all = nodes.map((n) => n!.node);
  const digests = new Set(all.map((n) => String((n.status().ring as { digest: string }).digest)));
  return digests.size === 1 && all.every((n) => new Set(n.clusterState.ring.owners).size === 3 && Object.keys(n.clusterState.members).length === 3);
};

beforeAll(async () => {
  nodes.push(await start(0));
  for (let i = 1; i < 3; i++) nodes.push(await start(i));
  await waitFor(converged, 15_000, 'cluster did not converge');
});
afterAll(async () => {
  await Promise.all(nodes.map((n) => n?.close(500)));
  dir.remove();
});

const url = (i: number, path: string, query = '') => `http://${nodes[i]!.address}/kv/${path}${query}`;
const put = (i: number, path: string, value: string, context?: string | null) =>
  fetch(url(i, path), { method: 'PUT', body: value, headers: context ? { [CONTEXT_HEADER]: context } : {} });
const del = (i: number, path: string, context: string | null, query = '') =>
  fetch(url(i, path, query), { method: 'DELETE', headers: context ? { [CONTEXT_HEADER]: context } : {} });
const contextOf = async (i: number, path: string): Promise<string> => {
  const res = await fetch(url(i, path));
  await res.arrayBuffer();
  return res.headers.get(CONTEXT_HEADER)!;
};

/** The record one replica holds, from its engine directly. */
const stored = (i: number, key: string) => nodes[i]!.engine.get(Buffer.from('r'), Buffer.from(key));

async function reapedTotal(): Promise<number> {
  let sum = 0;
  for (const n of nodes) {
    if (!n) continue;
    const m = await n.node.metrics.registry.getSingleMetric('ringkv_tombstones_reaped_total')?.get();
    sum += m?.values.reduce((a, v) => a + v.value, 0) ?? 0;
  }
  return sum;
}

describe('tombstone reaping, 3 nodes, N=3', () => {
  it('a delete acknowledged by all three primaries is reaped from every replica after the delay', async () => {
    expect((await put(0, 'r/gone', 'v1')).status).toBe(204);
    const before = await reapedTotal();
    const res = await del(1, 'r/gone', await contextOf(1, 'r/gone'), '?w=3');
    expect(res.status).toBe(204);
    // Right after the delete every replica holds the tombstone...
    for (let i = 0; i < 3; i++) {
      const rec = await stored(i, 'gone');
      expect(rec, ids[i]).not.toBeNull();
      expect(decodeRecord(rec!).siblings.every((s) => s.tombstone)).toBe(true);
    }
    // ...and after the delay none holds anything.
    await waitFor(async () => (await Promise.all([0, 1, 2].map((i) => stored(i, 'gone')))).every((r) => r === null), 10_000, 'tombstone reaped everywhere');
    // A reap deletes, then flushes, then counts: the object can be gone a moment before the count moves.
    await waitFor(async () => (await reapedTotal()) >= before + 3, 5_000, 'reaps counted');
    expect(await reapedTotal()).toBe(before + 3);
    const metrics = await (await fetch(`http://${nodes[1]!.address}/metrics`)).text();
    expect(metrics).toMatch(/ringkv_tombstones_reaped_total\{node="n2"\} [1-9]/);
    expect(metrics).toMatch(/ringkv_reap_attempts_total\{outcome="reaped",node="n2"\} 1/);
    // A reaped key reads as absent.
    const after = await fetch(url(2, 'r/gone'));
    expect(after.status).toBe(404);
  });

  it('after a reap, a context-less write gets a dot above every dot its coordinator issued for the key, also after a restart', async () => {
    // n1 coordinates every write (its HTTP endpoint; it is a primary of every key): counters 1..3, then the tombstone at 4.
    expect((await put(0, 'r/again', 'a')).status).toBe(204);
    for (const v of ['b', 'c']) expect((await put(0, 'r/again', v, await contextOf(0, 'r/again'))).status).toBe(204);
    expect((await del(0, 'r/again', await contextOf(0, 'r/again'), '?w=3')).status).toBe(204);
    const tomb = decodeRecord((await stored(0, 'again'))!);
    const n1Actor = nodes[0]!.engine.actor;
    expect(tomb.siblings.map((s) => [s.actor.toString(), s.counter, s.tombstone])).toEqual([[n1Actor, 4, true]]);
    await waitFor(async () => (await Promise.all([0, 1, 2].map((i) => stored(i, 'again')))).every((r) => r === null), 10_000, 'tombstone reaped everywhere');

    // Restart n1 on its data directory: the floor is durable.
    const port = nodes[0]!.port;
    await nodes[0]!.close(500);
    nodes[0] = null;
    // The port may take a moment to be free again.
    for (let attempt = 0; nodes[0] === null; attempt++) {
      try {
        nodes[0] = await start(0, port);
      } catch (err) {
        if (attempt >= 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await waitFor(() => converged() && !nodes[1]!.node.isSuspected('n1') && !nodes[0]!.node.isSuspected('n2') && !nodes[0]!.node.isSuspected('n3'), 15_000, 'n1 back');

    expect((await put(0, 'r/again', 'fresh')).status).toBe(204);
    const rec = decodeRecord((await stored(0, 'again'))!);
    // Without the floor the engine would restart n1's counter at 1: the dot of 'a'.
    expect(rec.siblings.map((s) => [s.actor.toString(), s.counter, s.value.toString()])).toEqual([[n1Actor, 5, 'fresh']]);
    // The new record's context carries the reaped history too, so a stale copy of 'a'..'c' could never come back over it.
    expect(rec.context.find((e) => e.actor.toString() === n1Actor)?.counter).toBe(5);
    const res = await fetch(url(1, 'r/again'));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('fresh');
  });

  it('with a primary stopped the tombstone is kept (not every primary acknowledged it)', async () => {
    expect((await put(0, 'r/kept', 'v')).status).toBe(204);
    await waitFor(async () => (await stored(2, 'kept')) !== null, 5_000, 'n3 has the value');
    await nodes[2]!.close(500);
    nodes[2] = null;
    const res = await del(0, 'r/kept', await contextOf(0, 'r/kept'));
    expect(res.status).toBe(204);
    await new Promise((r) => setTimeout(r, REAP_DELAY * 4));
    for (const i of [0, 1]) {
      const rec = await stored(i, 'kept');
      expect(rec, ids[i]).not.toBeNull();
      expect(decodeRecord(rec!).siblings.every((s) => s.tombstone)).toBe(true);
    }
    // The read may briefly answer 503 while n2 notices n3 is gone on a loaded machine; then 404 (deleted).
    let res2 = await fetch(url(1, 'r/kept'));
    for (let attempt = 0; res2.status === 503 && attempt < 20; attempt++) {
      await new Promise((r) => setTimeout(r, 100));
      res2 = await fetch(url(1, 'r/kept'));
    }
    expect(res2.status, await res2.clone().text()).toBe(404);
  });
});
