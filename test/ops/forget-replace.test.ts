// Forget, departed-member expiry and replace on real nodes (native engine,
// real sockets, in this process so each replica's engine can be read
// directly), driven through the `ringkv` command as an operator runs it.
// Anti-entropy is off: the replicas must be complete again through the
// transfers the ring change plans (docs/cluster.md "Forget", "Replace").
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { RingkvClient } from '../../src/client/index.js';
import { partitionOf, preferenceList } from '../../src/core/ring.js';
import { zonesOf } from '../../src/core/membership.js';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/index.js';
import { startCluster, waitFor, type TestCluster } from '../helpers/cluster.js';
import { TEST_PEER_SECRETS } from '../helpers/secret.js';
import { tempDir } from '../helpers/tmp.js';
import { ringkv } from './processes.js';

const FAST: Partial<ServerOptions> = {
  partitionBits: 6,
  antiEntropy: { intervalMs: 1e9 },
  transfers: { intervalMs: 20, catchUpAfterMs: 500, receiveCheckMs: 500, receiveGoneMs: 2_000 },
};
const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function cluster(count: number, extra: Partial<ServerOptions> = {}): Promise<TestCluster> {
  const c = await startCluster(count, { ...FAST, ...extra });
  cleanup.push(() => c.close());
  return c;
}

/** Writes `count` keys to every replica (w = 3), returns them. */
async function writeKeys(url: string, count: number): Promise<string[]> {
  const client = new RingkvClient({ nodes: [url] });
  const keys = Array.from({ length: count }, (_, i) => `key-${i}`);
  for (let i = 0; i < keys.length; i += 25) await Promise.all(keys.slice(i, i + 25).map((k) => client.put('ops', k, `value-${k}`, { w: 3 })));
  return keys;
}

/** Every key's primaries (by `viewer`'s ring) hold it on their own engines, read directly. */
async function missingOnReplicas(viewer: RunningServer, servers: readonly RunningServer[], keys: readonly string[]): Promise<string[]> {
  const state = viewer.node.clusterState;
  const byId = new Map(servers.map((s) => [s.node.id, s]));
  const missing: string[] = [];
  for (const key of keys) {
    const b = Buffer.from('ops');
    const k = Buffer.from(key);
    const partition = partitionOf(state.ring, viewer.engine.hashKey(b, k));
    for (const id of preferenceList(state.ring, partition, 3, zonesOf(state)).primaries) {
      const record = await byId.get(id)!.engine.get(b, k);
      if (record === null) missing.push(`${key}@${id}`);
    }
  }
  return missing;
}

const noTransfers = (servers: readonly RunningServer[]) => servers.every((s) => s.transfers.status().length === 0);
const membersOf = (s: RunningServer) => Object.keys(s.node.clusterState.members).sort();

describe('ringkv forget', () => {
  it('removes a member that left (no confirmation), and one that is gone for good only with --force, re-replicating its data', async () => {
    const c = await cluster(5);
    const [n1, n2, n3, n4, n5] = c.nodes as [RunningServer, RunningServer, RunningServer, RunningServer, RunningServer];
    const keys = await writeKeys(c.url(0), 200);

    // n5 leaves properly, then is forgotten: gone from every member list.
    expect((await ringkv(['leave', '--node', n5.address])).code).toBe(0);
    await waitFor(() => c.nodes.every((s) => s.node.clusterState.members.n5?.status === 'left') && noTransfers(c.nodes), 30_000, 'n5 left and handed off');
    await n5.close(500);
    const forgotLeft = await ringkv(['forget', 'n5', '--node', n1.address]);
    expect(forgotLeft.code, forgotLeft.stderr).toBe(0);
    expect(forgotLeft.stderr).toMatch(/n5 forgotten/);
    const live = [n1, n2, n3, n4];
    // The forget pushes to every member it reaches within its request timeout; one it missed under load learns by gossip.
    await waitFor(() => live.every((s) => s.node.clusterState.members.n5 === undefined), 20_000, 'n5 off every member list');
    expect(n2.node.clusterState.forgotten?.n5).toBeDefined();

    // n4 dies while valid and owning partitions: forget refuses without --force.
    const n4Partitions = n1.node.clusterState.ring.owners.filter((o) => o === 'n4').length;
    expect(n4Partitions).toBeGreaterThan(0);
    await n4.close(500);
    const refused = await ringkv(['forget', 'n4', '--node', n2.address]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/FORCE_REQUIRED \(409\).*owns \d+ partitions/);
    expect(n2.node.clusterState.members.n4?.status).toBe('valid');

    const forced = await ringkv(['forget', 'n4', '--force', '--node', n2.address]);
    expect(forced.code, forced.stderr).toBe(0);
    const rest = [n1, n2, n3];
    await waitFor(() => rest.every((s) => s.node.clusterState.members.n4 === undefined && !s.node.clusterState.ring.owners.includes('n4')), 10_000, 'n4 off every member list and ring');
    expect(membersOf(n3)).toEqual(['n1', 'n2', 'n3']);
    // Its partitions were claimed by the others and filled from the remaining replicas: 3 copies of every key again.
    await waitFor(() => noTransfers(rest), 30_000, 'transfers after the forced forget');
    expect(await missingOnReplicas(n1, rest, keys)).toEqual([]);
    // Unknown members and the node itself are refused.
    expect((await ringkv(['forget', 'n9', '--node', n1.address])).stderr).toMatch(/UNKNOWN_MEMBER \(404\)/);
    expect((await ringkv(['forget', 'n1', '--force', '--node', n1.address])).stderr).toMatch(/cannot forget itself/);
  }, 120_000);

  it('drops a departed member from the member list after the configured expiry', async () => {
    const c = await cluster(3, { node: { gossipIntervalMs: 100, requestTimeoutMs: 2_000, departedMemberExpiryMs: 1_500 } });
    const [n1, n2, n3] = c.nodes as [RunningServer, RunningServer, RunningServer];
    await n1.node.leave('n3');
    await waitFor(() => n2.node.clusterState.members.n3?.status === 'left', 20_000, 'n3 left');
    const leftAt = Date.now();
    // Still listed right after it left…
    expect(membersOf(n1)).toEqual(['n1', 'n2', 'n3']);
    await waitFor(() => [n1, n2].every((s) => s.node.clusterState.members.n3 === undefined), 15_000, 'n3 expired from the member list');
    expect(Date.now() - leftAt).toBeGreaterThanOrEqual(1_000);
    expect(n1.node.clusterState.forgotten?.n3).toBeDefined();
    await n3.close(500);
  }, 60_000);
});

describe('ringkv replace', () => {
  const startExtra = async (id: string, seed: string, opts: Partial<ServerOptions> = {}): Promise<RunningServer> => {
    const dir = tempDir(`ringkv-${id}-`);
    const server = await startServer({
      nodeId: id, port: 0, dataDir: dir.path, seeds: [seed], logger: pino({ level: 'silent' }), peerSecrets: TEST_PEER_SECRETS, auth: { required: false },
      node: { gossipIntervalMs: 100, requestTimeoutMs: 2_000 }, ...FAST, ...opts,
    });
    cleanup.push(async () => {
      await server.close(500);
      dir.remove();
    });
    return server;
  };

  it('a node started with --replace takes exactly the dead node\'s partitions and gets their data from the other replicas', async () => {
    const c = await cluster(4);
    const [n1, n2, n3, n4] = c.nodes as [RunningServer, RunningServer, RunningServer, RunningServer];
    const keys = await writeKeys(c.url(0), 300);
    const before = [...n1.node.clusterState.ring.owners];
    const deadPartitions = before.flatMap((o, p) => (o === 'n3' ? [p] : []));
    await n3.close(500);
    await waitFor(() => n1.node.isSuspected('n3'), 10_000, 'n3 suspected');

    const n5 = await startExtra('n5', n1.address, { replaces: 'n3' });
    const servers = [n1, n2, n4, n5];
    await waitFor(() => servers.every((s) => s.node.clusterState.members.n3?.status === 'left' && !s.node.clusterState.ring.owners.includes('n3')), 15_000, 'the ring hands n3\'s partitions on');
    const after = n1.node.clusterState.ring.owners;
    // One-for-one: n5 holds n3's partitions and nothing else; no other partition moved.
    expect(after.flatMap((o, p) => (o === 'n5' ? [p] : []))).toEqual(deadPartitions);
    expect(after.every((o, p) => o === (before[p] === 'n3' ? 'n5' : before[p]))).toBe(true);
    // The other replicas stream them to n5; their /status shows it while it runs (the catch-up pass keeps it listed for 500 ms).
    await waitFor(async () => {
      const views = await Promise.all(servers.map(async (s) => (await (await fetch(`http://${s.address}/status`)).json()) as { transfers: Array<{ to: string }> }));
      return views.some((v) => v.transfers.some((t) => t.to === 'n5'));
    }, 10_000, 'transfers to n5 listed in /status');
    await waitFor(() => noTransfers(servers), 30_000, 'transfers to n5');
    expect(await missingOnReplicas(n1, servers, keys)).toEqual([]);
    const onN5 = (await Promise.all(keys.map((k) => n5.engine.get(Buffer.from('ops'), Buffer.from(k))))).filter((r) => r !== null).length;
    expect(onN5).toBeGreaterThan(0);
  }, 120_000);

  it('`ringkv replace` hands a dead node\'s partitions to a node that already joined, refusing while the dead node still answers', async () => {
    const c = await cluster(3);
    const [n1, n2, n3] = c.nodes as [RunningServer, RunningServer, RunningServer];
    const keys = await writeKeys(c.url(0), 200);
    const n4 = await startExtra('n4', n1.address);
    await waitFor(() => c.nodes.concat(n4).every((s) => new Set(s.node.clusterState.ring.owners).size === 4) && noTransfers([...c.nodes, n4]), 30_000, 'n4 joined and filled');
    const n2Partitions = n1.node.clusterState.ring.owners.flatMap((o, p) => (o === 'n2' ? [p] : []));

    const alive = await ringkv(['replace', 'n2', 'n4', '--node', n1.address, '--no-wait']);
    expect(alive.code).toBe(1);
    expect(alive.stderr).toMatch(/FORCE_REQUIRED \(409\)/);

    await n2.close(500);
    await waitFor(() => n1.node.isSuspected('n2'), 10_000, 'n2 suspected');
    const done = await ringkv(['replace', 'n2', 'n4', '--node', n1.address, '--timeout', '30']);
    expect(done.code, done.stderr).toBe(0);
    expect(done.stderr).toMatch(/n4 owns n2's \d+ partitions/);
    expect(done.stderr).toMatch(/every transfer to n4 is done/);
    const ring = n1.node.clusterState.ring.owners;
    expect(ring.includes('n2')).toBe(false);
    expect(n2Partitions.every((p) => ring[p] !== 'n2')).toBe(true);
    await waitFor(() => noTransfers([n1, n3, n4]), 30_000, 'transfers settle');
    expect(await missingOnReplicas(n1, [n1, n3, n4], keys)).toEqual([]);
  }, 120_000);
});
