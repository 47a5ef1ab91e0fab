// A node being stopped no longer takes new connections, but keep-alive
// connections that clients already hold outlive its listen socket. What
// arrives on them must not reach the closed engine (it answered 500 "engine
// is closed"): the node refuses it with 503 NODE_STOPPING, acts on nothing,
// and the client sends the request to another node.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient } from '../../src/client/index.js';
import { startCluster, waitFor, type TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startCluster(3);
  // The last to join is still receiving partitions, and its copies count only together with their giver's:
  // let the transfers end first, so that stopping a node here tests stopping, not a transfer without its giver.
  await waitFor(() => cluster.nodes.every((n) => n.transfers.receiving().length === 0 && n.transfers.status().length === 0), 30_000, 'transfers done');
});
afterAll(() => cluster.close());

describe('a stopped node and the connections clients hold to it', () => {
  it('requests on a kept-alive connection to a stopped node are refused with 503 NODE_STOPPING, and the client goes on to another node', async () => {
    const [n1, n2] = cluster.nodes;
    // n2 first: every request of this client opens (and keeps) its connection to n2.
    const client = new RingkvClient({ nodes: [n2!.address], timeoutMs: 5_000 });
    const both = new RingkvClient({ nodes: [n2!.address, n1!.address], timeoutMs: 5_000 });
    try {
      await client.put('stop', 'k', 'v1', { w: 2 });
      await both.put('stop', 'k0', 'v0', { w: 2 });
      await n2!.close(500);
      // Only the stopped node to ask: its answer is a clear refusal, not an engine error.
      await expect(client.get('stop', 'k')).rejects.toMatchObject({ code: expect.stringMatching(/^(NODE_STOPPING|UNREACHABLE)$/) });
      await expect(client.get('stop', 'k')).rejects.not.toMatchObject({ status: 500 });
      // With another node to ask, every request succeeds.
      for (let i = 1; i <= 20; i++) {
        await both.put('stop', `k${i}`, `v${i}`, { w: 2 });
        expect((await both.get('stop', `k${i}`, { r: 2 })).values.map(String)).toEqual([`v${i}`]);
      }
    } finally {
      client.close();
      both.close();
    }
  });
});
