// The finding of test/ops/replace-process.test.ts (issue 9): after a node was
// killed and replaced, r = 3 reads answered `QUORUM_FAILED, 0 of r=3` for up
// to a minute. The cause: a node that joined shortly before the kill was
// still receiving partitions whose only giver was the dead node (the giver of
// a grown preference list is its first old replica). A pending partition's
// copy counts in a read only together with a source's, and its only source
// was dead: every read of those partitions failed at r = n until the
// receiver gave the dead giver up (receiveGoneMs after it left). This test
// makes that schedule certain — n3 joins before n2, and n3 dies before its
// catch-up pass to n2 — and requires every key to read at r = 3 once the
// replacement ring is everywhere, with receiveGoneMs far beyond the test: n2
// grew into those lists replacing no one, so n1's copy stands for its own as
// well as n3's would (src/core/transfer-plan.ts).
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { RingkvClient } from '../../src/client/index.js';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/index.js';
import { waitFor } from '../helpers/cluster.js';
import { TEST_PEER_SECRETS } from '../helpers/secret.js';
import { tempDir } from '../helpers/tmp.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const OPTIONS: Partial<ServerOptions> = {
  partitionBits: 6,
  antiEntropy: { intervalMs: 1e9 },
  // The catch-up pass (and so every finish) comes long after the test: n3 never finishes giving to n2.
  // A dead giver is given up only after 10 min (the limit too): the reads must not need either.
  transfers: { intervalMs: 20, catchUpAfterMs: 120_000, receiveCheckMs: 500, receiveGoneMs: 600_000, receiveLimitMs: 600_000 },
};

async function start(id: string, seed: string | null, opts: Partial<ServerOptions> = {}): Promise<RunningServer> {
  const dir = tempDir(`ringkv-${id}-`);
  const server = await startServer({
    nodeId: id, port: 0, dataDir: dir.path, seeds: seed === null ? [] : [seed], logger: pino({ level: 'silent' }), peerSecrets: TEST_PEER_SECRETS,
    auth: { required: false }, node: { gossipIntervalMs: 100, requestTimeoutMs: 2_000 }, ...OPTIONS, ...opts,
  });
  cleanup.push(async () => {
    if (!stopped.has(server)) await server.close(500);
    dir.remove();
  });
  return server;
}

/** Servers a test closed itself (cleanup does not close them again). */
const stopped = new Set<RunningServer>();

const owners = (s: RunningServer) => new Set(s.node.clusterState.ring.owners);

describe('replace after a crash of a node still giving to a joiner', () => {
  it('reads at r = 3 answer while the joiner still waits for the dead giver: it reads through the other old replica', async () => {
    const n1 = await start('n1', null);
    const n3 = await start('n3', n1.address);
    await waitFor(() => [n1, n3].every((s) => owners(s).size === 2), 15_000, 'n1 and n3 on one ring');
    const n2 = await start('n2', n1.address);
    const three = [n1, n2, n3];
    await waitFor(() => three.every((s) => owners(s).size === 3 && s.node.clusterState.ring.version === n1.node.clusterState.ring.version), 15_000, 'three owners');
    // The schedule of the finding: n2 grew into lists whose first old replica was n3, so n3 alone gives them to n2.
    const fromN3 = () => n2.transfers.receiving().filter((e) => e.givers.length === 1 && e.givers[0] === 'n3');
    expect(fromN3().length).toBeGreaterThan(0);
    // …and reads them through n3 first, n1 (the other old replica) after it.
    expect(new Set(fromN3().map((e) => e.sources.join(',')))).toEqual(new Set(['n3,n1']));

    const client = new RingkvClient({ nodes: [`http://${n1.address}`, `http://${n2.address}`] });
    cleanup.push(async () => client.close());
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    for (const k of keys) await client.put('rp', k, `v-${k}`, { w: 3 });

    stopped.add(n3);
    await n3.close(500);
    await waitFor(() => n1.node.isSuspected('n3') && n2.node.isSuspected('n3'), 10_000, 'n3 suspected');
    const n4 = await start('n4', n1.address, { replaces: 'n3' });
    const live = [n1, n2, n4];
    await waitFor(
      () => live.every((s) => s.node.clusterState.members.n3?.status === 'left' && !owners(s).has('n3') && s.node.clusterState.ring.version === n1.node.clusterState.ring.version),
      15_000,
      'the replacement ring on every live node',
    );
    // n2 still waits for n3 (it left, but is given up only after receiveGoneMs): the schedule holds.
    expect(fromN3().length).toBeGreaterThan(0);

    // Every key, at r = 3, through both coordinators: no read needs the dead node.
    const direct = [n1, n2].map((s) => new RingkvClient({ nodes: [`http://${s.address}`] }));
    cleanup.push(async () => direct.forEach((c) => c.close()));
    const failures: string[] = [];
    await waitFor(async () => {
      failures.length = 0;
      for (const [i, k] of keys.entries()) {
        try {
          const got = await direct[i % 2]!.get('rp', k, { r: 3 });
          if (!got.found) failures.push(`${k}: not found`);
        } catch (err) {
          failures.push(`${k}: ${String(err)}`);
        }
      }
      return failures.length === 0;
    }, 10_000, 'every key at r = 3').catch((err: unknown) => {
      throw new Error(`${String(err)}; ${failures.length} reads failed, first: ${failures.slice(0, 3).join(' | ')}`);
    });
    expect(fromN3().length).toBeGreaterThan(0);
  }, 90_000);
});
