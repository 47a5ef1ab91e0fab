// W=1 availability with real nodes (native engine, uWS, sockets): 5 nodes,
// N=3. Every primary of a key is stopped; a W=1 write through one of the two
// nodes left still succeeds (that node coordinates it itself and keeps it as
// a hint: sloppy quorum), twice, with no context — so the two writes are
// concurrent and must both survive, which they would not if they shared a
// dot. The primaries restart on their ports and data directories, the hints
// reach them, and a read (r=3, from the primaries) returns both values.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionOf } from '../../src/core/ring.js';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/index.js';
import { waitFor } from '../helpers/cluster.js';
import { startOnStablePort } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';
import { TEST_PEER_SECRETS } from '../helpers/secret.js';

const quiet = pino({ level: 'silent' });
const dir = tempDir('ringkv-fallback-write-');
const base = { peerSecrets: TEST_PEER_SECRETS, auth: { required: false }, logger: quiet, node: { gossipIntervalMs: 100, requestTimeoutMs: 2_000, handoffIntervalMs: 200 } } satisfies Partial<ServerOptions>;
const ids = ['n1', 'n2', 'n3', 'n4', 'n5'];
const nodes: Array<RunningServer | null> = [];

const start = (i: number, port = 0): Promise<RunningServer> =>
  startServer({ ...base, port, nodeId: ids[i]!, dataDir: `${dir.path}/${ids[i]}`, seeds: i === 0 ? [] : [nodes[0]!.address] });

beforeAll(async () => {
  // Primaries restart on their ports: ones the kernel does not hand out.
  nodes.push(await startOnStablePort((port) => start(0, port)));
  for (let i = 1; i < ids.length; i++) nodes.push(await startOnStablePort((port) => start(i, port)));
  await waitFor(() => {
    const all = nodes.map((n) => n!.node);
    const digests = new Set(all.map((n) => String((n.status().ring as { digest: string }).digest)));
    return digests.size === 1 && all.every((n) => new Set(n.clusterState.ring.owners).size === ids.length);
  }, 20_000, 'cluster did not converge');
});
afterAll(async () => {
  await Promise.all(nodes.map((n) => n?.close(500)));
  dir.remove();
});

/** A key of bucket 'f' none of whose primaries is n1, and those primaries. */
function keyAwayFromN1(): { key: string; primaries: string[] } {
  const n1 = nodes[0]!;
  const ring = n1.node.clusterState.ring;
  for (let i = 0; ; i++) {
    const primaries = n1.node.preferenceListOf(partitionOf(ring, n1.engine.hashKey(Buffer.from('f'), Buffer.from(`k${i}`))), 3).primaries;
    if (!primaries.includes('n1')) return { key: `k${i}`, primaries };
  }
}

interface Siblings {
  siblings: Array<{ value: string; deleted: boolean; contentType: string; meta: Record<string, string> }>;
}

describe('W=1 with every primary of the key down', () => {
  it('is coordinated by a reachable node as hints, and both of two blind writes are readable once the primaries are back', async () => {
    const { key, primaries } = keyAwayFromN1();
    const stopped = primaries.map((id) => ids.indexOf(id));
    const ports = new Map(stopped.map((i) => [i, nodes[i]!.port]));
    await Promise.all(stopped.map(async (i) => {
      await nodes[i]!.close(500);
      nodes[i] = null;
    }));

    const url = `http://${nodes[0]!.address}/kv/f/${key}`;
    for (const value of ['first', 'second']) {
      // The second with a content type and metadata: a fallback-coordinated version keeps them.
      const headers: Record<string, string> = value === 'second' ? { 'content-type': 'text/x-second', 'x-ringkv-meta-via': 'fallback' } : {};
      const res = await fetch(`${url}?w=1`, { method: 'PUT', body: value, headers });
      expect(res.status, await res.clone().text()).toBe(204);
    }
    // The fallback coordinator checks attributes as an engine would, and stores nothing on a refusal.
    const many = Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'] as [string, string]);
    await expect(nodes[0]!.node.put(Buffer.from('f'), Buffer.from(key), null, Buffer.from('x'), { w: 1 }, { meta: many })).rejects.toMatchObject({ code: 'METADATA_TOO_LARGE' });
    // W=2 needs a second node: the other survivor takes a hinted copy.
    expect((await fetch(`${url}?w=2`, { method: 'PUT', body: 'third' })).status).toBe(204);
    // pw asks for primaries: refused while none is up.
    expect((await fetch(`${url}?w=1&pw=1`, { method: 'PUT', body: 'refused' })).status).toBe(503);
    const metrics = await (await fetch(`http://${nodes[0]!.address}/metrics`)).text();
    expect(Number(/ringkv_fallback_coordinated_total\{node="n1"\} (\d+)/.exec(metrics)?.[1])).toBe(3);
    // Nothing in n1's objects (it is no replica of the key): only hints.
    expect(await nodes[0]!.engine.get(Buffer.from('f'), Buffer.from(key))).toBeNull();
    expect((await nodes[0]!.engine.hintTargets()).length).toBeGreaterThan(0);

    // The primaries come back on their ports and data directories; the hints go home.
    for (const i of stopped) nodes[i] = await start(i, ports.get(i));
    await waitFor(async () => {
      for (const n of nodes) if ((await n!.engine.hintTargets()).length > 0) return false;
      return true;
    }, 20_000, 'hints delivered to the restarted primaries');

    // Read from a primary, all three answering (once they reach each other
    // again): three concurrent blind writes, three siblings.
    let res: Response | null = null;
    await waitFor(async () => {
      res = await fetch(`http://${nodes[stopped[0]!]!.address}/kv/f/${key}?r=3`, { headers: { accept: 'application/json' } });
      return res.status !== 503;
    }, 10_000, 'an r=3 read once the primaries are back');
    expect(res!.status).toBe(300);
    const body = (await res!.json()) as Siblings;
    const values = body.siblings.map((s) => Buffer.from(s.value, 'base64').toString()).sort();
    expect(values).toEqual(['first', 'second', 'third']);
    const second = body.siblings.find((s) => Buffer.from(s.value, 'base64').toString() === 'second')!;
    expect([second.contentType, second.meta]).toEqual(['text/x-second', { via: 'fallback' }]);
  }, 60_000);
});
