// A cluster grown twice in a row: n2 joins and is still receiving its
// partitions from n1 when n3 joins, whose giver for some partitions is n2.
// A read with r = n = 3 then needs n3's copy to count through a chain of
// givers (n3 → n2 → n1): every such read must answer, with the written value.
import { afterAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { waitFor } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';
import { TEST_PEER_SECRETS } from '../helpers/secret.js';

describe('a cluster grown twice in a row', () => {
  const servers: RunningServer[] = [];
  const dir = tempDir('ringkv-grow-twice-');
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close(500)));
    dir.remove();
  });
  // Slow transfers with a long catch-up wait: both joiners stay receiving for seconds. Anti-entropy off.
  const start = (id: string, seeds: string[] = []): Promise<RunningServer> =>
    startServer({
      nodeId: id, port: 0, dataDir: `${dir.path}/${id}`, seeds, logger: pino({ level: 'silent' }), peerSecrets: TEST_PEER_SECRETS, auth: { required: false },
      node: { gossipIntervalMs: 100, requestTimeoutMs: 2_000 },
      antiEntropy: { intervalMs: 1e9 },
      transfers: { intervalMs: 500, batch: 5, catchUpAfterMs: 6_000, receiveCheckMs: 1_000 },
    });

  it('r = 3 reads while both joiners receive answer every key through the chain of givers', async () => {
    const n1 = await start('n1');
    servers.push(n1);
    const written = new Map<string, string>();
    for (let i = 0; i < 40; i++) {
      const res = await fetch(`http://${n1.address}/kv/grow/k${i}`, { method: 'PUT', body: `v${i}` });
      expect(res.status).toBe(204);
      written.set(`k${i}`, `v${i}`);
    }
    const n2 = await start('n2', [n1.address]);
    servers.push(n2);
    await waitFor(() => n2.transfers.receiving().length > 0 && new Set(n1.node.clusterState.ring.owners).size === 2, 15_000, 'n2 an owner, receiving');
    const n3 = await start('n3', [n1.address]);
    servers.push(n3);
    await waitFor(() => servers.every((s) => new Set(s.node.clusterState.ring.owners).size === 3) && n3.transfers.receiving().length > 0, 15_000, 'n3 an owner, receiving');

    const failed: string[] = [];
    let answered = 0;
    const deadline = Date.now() + 30_000;
    // Only reads made while both joiners are still receiving count (bounded in time and rounds).
    for (let round = 0; round < 50 && Date.now() < deadline; round++) {
      if (n2.transfers.receiving().length === 0 || n3.transfers.receiving().length === 0) break;
      for (const [i, [key, value]] of [...written].entries()) {
        const res = await fetch(`http://${servers[(i + round) % 3]!.address}/kv/grow/${key}?r=3`);
        const body = await res.text();
        if (n2.transfers.receiving().length === 0 || n3.transfers.receiving().length === 0) break;
        if (res.status === 200 && body === value) answered++;
        else failed.push(`${key}: ${res.status} ${body.slice(0, 120)}`);
      }
    }
    expect(answered, 'reads made while n2 and n3 both received').toBeGreaterThan(0);
    expect(failed).toEqual([]);
  }, 90_000);
});
