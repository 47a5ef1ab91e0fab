// Real nodes (native engine, uWS, sockets) in this process: when the one
// event loop they share stalls (a long synchronous call, a GC pause, a
// stopped process), no node may take the stall for its peers' silence
// (issue 9: closing one in-process node paused the loop and every phi
// detector then suspected every live peer, so a W=3 write found "0 other
// nodes it can reach").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, waitFor, type TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;
beforeAll(async () => {
  // gossip every 100 ms: a silence of ~3 s convicts a peer.
  cluster = await startCluster(3);
});
afterAll(() => cluster.close());

/** Blocks this thread (and so every node's event loop) for `ms`. */
function stall(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe("issue 9: a node's own pause", () => {
  it('a 5 s stall of the event loop makes no node suspect a live peer, and a W=3 write right after it succeeds', async () => {
    const nodes = cluster.nodes.map((n) => n.node);
    const trusted = (): boolean => nodes.every((n) => nodes.every((m) => m === n || !n.isSuspected(m.id)));
    await waitFor(trusted, 10_000, 'nodes trust each other before the stall');
    stall(5_000);
    expect(nodes.flatMap((n) => nodes.filter((m) => m !== n && n.isSuspected(m.id)).map((m) => `${n.id} suspects ${m.id}`))).toEqual([]);
    const res = await fetch(`${cluster.url(0)}/kv/pause/k1?w=3&pw=3`, { method: 'PUT', body: 'v1' });
    expect(res.status).toBe(204);
    // And still nobody is suspected once the timers that were due during the stall have run.
    await new Promise((r) => setTimeout(r, 300));
    expect(trusted()).toBe(true);
  });
});
