// Real nodes (native engine, uWS, sockets): 4 nodes with N=3, so every key
// has a fallback. One node is stopped; writes with W=3 still succeed through
// a fallback holding hints (sloppy quorum); the node restarts on the same
// port and data directory, and the hints are handed off to it and disappear
// from the fallback.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionOf } from '../../src/core/ring.js';
import { decodeRecord } from '../../src/record/codec.js';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/index.js';
import { waitFor } from '../helpers/cluster.js';
import { startOnStablePort } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';
import { TEST_PEER_SECRETS } from '../helpers/secret.js';

const quiet = pino({ level: 'silent' });
const dir = tempDir('ringkv-handoff-');
const base = { peerSecrets: TEST_PEER_SECRETS, auth: { required: false }, logger: quiet, node: { gossipIntervalMs: 100, requestTimeoutMs: 2_000, handoffIntervalMs: 200 } } satisfies Partial<ServerOptions>;
const nodes: Array<RunningServer | null> = [];
const ids = ['n1', 'n2', 'n3', 'n4'];

const start = (i: number, port = 0): Promise<RunningServer> =>
  startServer({ ...base, port, nodeId: ids[i]!, dataDir: `${dir.path}/${ids[i]}`, seeds: i === 0 ? [] : [nodes[0]!.address] });


beforeAll(async () => {
  nodes.push(await start(0));
  for (let i = 1; i < 3; i++) nodes.push(await start(i));
  // n4 restarts on its port: one the kernel does not hand out.
  nodes.push(await startOnStablePort((port) => start(3, port)));
  await waitFor(() => {
    const all = nodes.map((n) => n!.node);
    const digests = new Set(all.map((n) => String((n.status().ring as { digest: string }).digest)));
    return digests.size === 1 && all.every((n) => new Set(n.clusterState.ring.owners).size === 4 && Object.keys(n.clusterState.members).length === 4);
  }, 15_000, 'cluster did not converge');
});
afterAll(async () => {
  await Promise.all(nodes.map((n) => n?.close(500)));
  dir.remove();
});

const put = (i: number, path: string, value: string, query = '') => fetch(`http://${nodes[i]!.address}/kv/${path}${query}`, { method: 'PUT', body: value });
const get = (i: number, path: string, query = '') => fetch(`http://${nodes[i]!.address}/kv/${path}${query}`);

/** Keys of bucket 'h' whose primaries include n4 (index 3). */
function keysOnN4(count: number): string[] {
  const n1 = nodes[0]!;
  const ring = n1.node.clusterState.ring;
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    const pl = n1.node.preferenceListOf(partitionOf(ring, n1.engine.hashKey(Buffer.from('h'), Buffer.from(`k${i}`))), 3);
    if (pl.primaries.includes('n4')) out.push(`k${i}`);
  }
  return out;
}

describe('4 nodes, N=3: sloppy quorum and hinted handoff with real nodes', () => {
  it('writes succeed with a node stopped (hints on a fallback), and the hints are delivered when it restarts on the same port', async () => {
    const keys = keysOnN4(12);
    const port = nodes[3]!.port;
    await nodes[3]!.close(500);
    nodes[3] = null;

    // W=3: only possible with the fallback's hinted ack (n4 is down).
    for (const [i, k] of keys.entries()) {
      const res = await put(i % 3, `h/${k}`, `v-${k}`, '?w=3');
      expect(res.status, await res.clone().text()).toBe(204);
    }
    // The hints are on the nodes that stood in for n4, not in their objects.
    const holders = async () => {
      const out: string[] = [];
      for (const n of nodes.slice(0, 3)) if ((await n!.engine.hintTargets()).includes('n4')) out.push(n!.node.id);
      return out;
    };
    expect((await holders()).length).toBeGreaterThan(0);
    let hinted = 0;
    for (const n of nodes.slice(0, 3)) hinted += (await n!.engine.hintList('n4', 100)).length;
    expect(hinted).toBe(keys.length);
    const metrics = await (await fetch(`http://${nodes[0]!.address}/metrics`)).text();
    expect(metrics).toMatch(/ringkv_fallback_writes_total\{node="n1"\} \d+/);
    // Reads still see every value (r=3: the fallback answers from its hints).
    for (const k of keys) {
      const res = await get(0, `h/${k}`, '?r=3');
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(`v-${k}`);
    }
    // n1's status shows n4 suspected, with its phi.
    const status = nodes[0]!.node.status() as { members: Array<{ id: string; health: string; phi: number }> };
    expect(status.members.find((m) => m.id === 'n4')).toMatchObject({ health: 'suspect' });

    // Restart n4 on the same port and data directory.
    nodes[3] = await start(3, port);
    expect(nodes[3].address).toContain(`:${port}`);
    await waitFor(async () => (await holders()).length === 0, 15_000, 'hints handed off to n4');
    for (const k of keys) {
      const record = await nodes[3].engine.get(Buffer.from('h'), Buffer.from(k));
      expect(record, k).not.toBeNull();
      expect(decodeRecord(record!).siblings.map((s) => s.value.toString())).toEqual([`v-${k}`]);
    }
    const delivered = await Promise.all(nodes.slice(0, 3).map(async (n) => (await (await fetch(`http://${n!.address}/metrics`)).text()).match(/ringkv_hints_delivered_total\{node="n\d"\} (\d+)/)?.[1]));
    expect(delivered.reduce((a, v) => a + Number(v ?? 0), 0)).toBe(keys.length);
    await waitFor(() => nodes.slice(0, 3).every((n) => n!.node.isSuspected('n4') === false), 5_000, 'n4 no longer suspected');
  });
});
