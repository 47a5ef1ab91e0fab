// What a drain promises, on real nodes (docs/cluster.md "Drain"): a draining
// node answers client reads and writes 503 NODE_DRAINING with the header a
// client retries on and the nodes to try instead, tells its peers (their
// state and GET /ring carry the flag, so ring-aware clients route around
// it), still stores replicas, delivers the hints it holds before it
// reports drained, and serves again after a cancel or a restart.
import { afterEach, describe, expect, it } from 'vitest';
import { RingkvClient } from '../../src/client/index.js';
import { STOPPING_HEADER, TRY_NODES_HEADER } from '../../src/http/wire.js';
import type { RunningServer } from '../../src/server/index.js';
import pino from 'pino';
import { startServer, type ServerOptions } from '../../src/server/index.js';
import { startCluster, waitFor, type TestCluster } from '../helpers/cluster.js';
import { TEST_PEER_SECRETS } from '../helpers/secret.js';
import { startOnStablePort } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

const post = async (url: string, path: string, body: unknown) => {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
};

describe('drain', () => {
  it('refuses client requests with a retryable 503 naming other nodes, announces itself, and serves again after cancel', async () => {
    cluster = await startCluster(3, { partitionBits: 6 });
    const [n1, n2, n3] = cluster.nodes as [RunningServer, RunningServer, RunningServer];
    const drained = await post(cluster.url(1), '/admin/drain', { timeoutS: 10 });
    expect(drained.status).toBe(200);
    expect(drained.json).toMatchObject({ node: 'n2', state: 'drained', phase: 'done', hintsLeft: 0, timedOut: false });

    // Every reachable member knew before the answer came (the state is pushed).
    for (const s of [n1, n3]) expect(s.node.clusterState.members.n2?.draining).toBe(true);
    const ring = (await (await fetch(`${cluster.url(0)}/ring`)).json()) as { members: Array<{ id: string; draining?: boolean }> };
    expect(ring.members.find((m) => m.id === 'n2')?.draining).toBe(true);

    // Reads and writes at n2: refused, not acted on, with where to go.
    for (const [method, body] of [['GET', undefined], ['PUT', 'v'], ['DELETE', undefined]] as const) {
      const res = await fetch(`${cluster.url(1)}/kv/b/k`, { method, body });
      expect(res.status, method).toBe(503);
      expect(res.headers.get(STOPPING_HEADER)).toBe('1');
      expect(res.headers.get(TRY_NODES_HEADER)?.split(',').sort()).toEqual([n1.address, n3.address].sort());
      expect(await res.json()).toMatchObject({ error: 'NODE_DRAINING', nodes: expect.arrayContaining([n1.address, n3.address]) });
    }
    expect(await n2.engine.get(Buffer.from('b'), Buffer.from('k'))).toBeNull();
    // Status, ring and metrics still answer (an operator watches the drain).
    const status = (await (await fetch(`${cluster.url(1)}/status`)).json()) as { drain: { state: string }; members: Array<{ id: string; draining?: boolean }> };
    expect(status.drain.state).toBe('drained');
    expect(status.members.find((m) => m.id === 'n2')?.draining).toBe(true);

    // Still a replica: a write coordinated elsewhere lands on n2's engine too.
    const elsewhere = new RingkvClient({ nodes: [n1.address] });
    await elsewhere.put('b', 'k', 'v', { w: 3 });
    expect(await n2.engine.get(Buffer.from('b'), Buffer.from('k'))).not.toBeNull();

    // A ring-aware client given only n2 and n1 routes around n2; a round-robin client retries the 503 on the next node.
    const routed = new RingkvClient({ nodes: [n2.address, n1.address], routing: 'client', ringRefreshMs: 200 });
    const robin = new RingkvClient({ nodes: [n2.address, n1.address] });
    try {
      for (let i = 0; i < 20; i++) {
        await routed.put('b', `r${i}`, 'x');
        expect((await robin.get('b', `r${i}`)).values.map(String)).toEqual(['x']);
      }
    } finally {
      routed.close();
    }
    const back = await post(cluster.url(1), '/admin/drain', { cancel: true });
    expect(back.json).toMatchObject({ state: 'serving' });
    await waitFor(() => [n1, n3].every((s) => s.node.clusterState.members.n2?.draining === undefined), 5_000, 'peers see n2 serving');
    expect((await fetch(`${cluster.url(1)}/kv/b/k`)).status).toBe(200);
  }, 60_000);

  it('delivers the hints it holds before it reports drained; keeps those for a node that does not answer', async () => {
    const dir = tempDir('ringkv-drain-');
    const servers: Array<RunningServer | null> = [];
    const base = {
      peerSecrets: TEST_PEER_SECRETS, auth: { required: false }, logger: pino({ level: 'silent' }), partitionBits: 6,
      // Handoff rounds a minute apart: only the drain delivers hints within the test.
      node: { gossipIntervalMs: 100, requestTimeoutMs: 2_000, handoffIntervalMs: 60_000 },
    } satisfies Partial<ServerOptions>;
    const start = (i: number, port = 0) => startServer({ ...base, port, nodeId: `n${i + 1}`, dataDir: `${dir.path}/n${i + 1}`, seeds: i === 0 ? [] : [servers[0]!.address] });
    try {
      for (let i = 0; i < 3; i++) servers.push(await start(i));
      const n4port = await startOnStablePort(async (port) => {
        servers.push(await start(3, port));
        return port;
      });
      await waitFor(() => servers.every((s) => new Set(s!.node.clusterState.ring.owners).size === 4), 15_000, 'four owners');
      const [n1, n2, n3] = servers as [RunningServer, RunningServer, RunningServer];
      await servers[3]!.close(200);
      servers[3] = null;
      await waitFor(() => [n1, n2, n3].every((s) => s.node.isSuspected('n4')), 10_000, 'n4 suspected');
      const client = new RingkvClient({ nodes: [n1.address, n2.address, n3.address] });
      const keys = Array.from({ length: 60 }, (_, i) => `k${i}`);
      for (const k of keys) await client.put('h', k, `v-${k}`, { w: 2 });
      // A write is acknowledged at w = 2 while its third copy (a hint for n4 on a fallback) may still be on its way: wait until the counts hold still.
      let counts = '';
      for (let tries = 0; tries < 20; tries++) {
        const now = [n1, n2, n3].map((s) => s.node.hintsPending).join(',');
        if (now === counts) break;
        counts = now;
        await new Promise((r) => setTimeout(r, 500));
      }
      const holder = [n1, n2, n3].reduce((a, b) => (b.node.hintsPending > a.node.hintsPending ? b : a));
      const held = holder.node.hintsPending;
      expect(held, 'the fallbacks hold hints for n4').toBeGreaterThan(0);

      // n4 does not answer: the drain keeps its hints (on disk, for after the restart) and says so, without waiting for ever.
      const kept = await post(`http://${holder.address}`, '/admin/drain', { timeoutS: 20 });
      expect(kept.json).toMatchObject({ state: 'drained', hintsDelivered: 0, hintsLeft: held, timedOut: false });
      await post(`http://${holder.address}`, '/admin/drain', { cancel: true });

      // n4 is back: this time the drain hands every hint to it before it answers.
      servers[3] = await start(3, n4port);
      const n4 = servers[3];
      await waitFor(() => [n1, n2, n3].every((s) => !s.node.isSuspected('n4')), 10_000, 'n4 back');
      const delivered = await post(`http://${holder.address}`, '/admin/drain', { timeoutS: 20 });
      expect(delivered.json).toMatchObject({ state: 'drained', hintsDelivered: held, hintsLeft: 0, timedOut: false });
      expect(holder.node.hintsPending).toBe(0);
      // n4's own engine holds what the hints carried.
      const onN4 = (await Promise.all(keys.map((k) => n4.engine.get(Buffer.from('h'), Buffer.from(k))))).filter((r) => r !== null).length;
      expect(onN4).toBeGreaterThanOrEqual(held);
    } finally {
      await Promise.all(servers.map((s) => s?.close(200)));
      dir.remove();
    }
  }, 90_000);
});
