// Client tokens on a real 3-node cluster (tokens on, as by default): a token
// made or revoked on one node counts on every reachable node when the call
// returns, and a node that was down while a token was revoked learns it by
// gossip within a bounded time after it comes back with its stale state,
// which brings the token back nowhere.
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient, RingkvError } from '../../src/client/index.js';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/index.js';
import { waitFor } from '../helpers/cluster.js';
import { TEST_PEER_SECRETS } from '../helpers/secret.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('ringkv-tokens-');
const base: Omit<ServerOptions, 'nodeId' | 'dataDir'> = {
  port: 0,
  logger: pino({ level: 'silent' }),
  peerSecrets: TEST_PEER_SECRETS,
  auth: { required: true },
  node: { gossipIntervalMs: 100, requestTimeoutMs: 2_000 },
};
const nodes: RunningServer[] = [];

/**
 * Starts a node on `port`, or on a random one below Linux's ephemeral range
 * (32768..) so no client socket of this test takes it while the node is down;
 * a few tries (another process may hold a port, or it is still closing).
 */
async function startOn(opts: Omit<ServerOptions, 'port'>, port?: number): Promise<RunningServer> {
  let lastErr: unknown = null;
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      return await startServer({ ...base, ...opts, port: port ?? 20_000 + Math.floor(Math.random() * 12_000) });
    } catch (err) {
      lastErr = err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw lastErr;
}

async function statusCode(server: RunningServer, token: string): Promise<number> {
  const res = await fetch(`http://${server.address}/status`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5_000) });
  await res.arrayBuffer();
  return res.status;
}

describe('client tokens across a 3-node cluster', () => {
  let admin = '';
  beforeAll(async () => {
    nodes.push(await startOn({ nodeId: 'n1', dataDir: `${dir.path}/n1` }));
    for (const id of ['n2', 'n3']) nodes.push(await startOn({ nodeId: id, dataDir: `${dir.path}/${id}`, seeds: [nodes[0]!.address] }));
    await waitFor(
      () => nodes.every((n) => Object.values(n.node.clusterState.members).filter((m) => m.status === 'valid').length === 3 && new Set(n.node.clusterState.ring.owners).size === 3),
      15_000,
      '3 valid members on every node',
    );
    // Only the node that created the cluster made a first admin token; the joiners got the cluster's tokens.
    expect(nodes.map((n) => n.adminTokenFile !== null)).toEqual([true, false, false]);
    admin = readFileSync(nodes[0]!.adminTokenFile!, 'utf8').trim();
  });
  afterAll(async () => {
    await Promise.allSettled(nodes.map((n) => n.close(500)));
    dir.remove();
  });

  it('a token made on one node works on every node at once; revoked on another, every node refuses it at once', async () => {
    const adminClient = new RingkvClient({ nodes: [nodes[1]!.address], token: admin });
    const { id, token } = await adminClient.createToken({ role: 'write', bucket: 'cart', label: 'shop' });
    const at = (i: number) => new RingkvClient({ nodes: [nodes[i]!.address], token });
    await at(2).put('cart', 'alice', 'milk');
    expect((await at(0).get('cart', 'alice')).values.map(String)).toEqual(['milk']);
    // Its bucket only, and no admin work.
    await expect(at(0).put('other', 'k', 'v')).rejects.toMatchObject({ status: 403, code: 'FORBIDDEN' });
    await expect(at(0).setBucketProps('cart', { r: 1 })).rejects.toMatchObject({ status: 403 });
    await expect(new RingkvClient({ nodes: [nodes[0]!.address] }).get('cart', 'alice')).rejects.toMatchObject({ status: 401, code: 'UNAUTHORIZED' });

    await new RingkvClient({ nodes: [nodes[0]!.address], token: admin }).revokeToken(id);
    for (const i of [0, 1, 2]) {
      const err = await at(i).get('cart', 'alice').catch((e: unknown) => e);
      expect(err, `node n${i + 1}`).toBeInstanceOf(RingkvError);
      expect(err).toMatchObject({ status: 401 });
    }
    expect((await adminClient.listTokens()).find((t) => t.id === id)?.revokedAtMs).toBeTypeOf('number');
  });

  it('a client routing by the ring fetches it with its token (a bucket-scoped one will do), and not without', async () => {
    const { token } = await new RingkvClient({ nodes: [nodes[0]!.address], token: admin }).createToken({ role: 'read', bucket: 'cart' });
    const routed = new RingkvClient({ nodes: [nodes[0]!.address], routing: 'client', token });
    const anonymous = new RingkvClient({ nodes: [nodes[0]!.address], routing: 'client' });
    try {
      expect(await routed.refreshRing()).toBe(true);
      expect(await anonymous.refreshRing()).toBe(false);
    } finally {
      routed.close();
      anonymous.close();
    }
  });

  it('a node down during a revocation learns it by gossip when it is back, and its stale state revives the token nowhere', async () => {
    const adminClient = new RingkvClient({ nodes: [nodes[0]!.address], token: admin });
    const { id, token } = await adminClient.createToken({ role: 'read' });
    for (const n of nodes) expect(await statusCode(n, token)).toBe(200);

    // n3 stops holding the token live in its persisted state; the revocation happens while it is down.
    const n3 = nodes[2]!;
    const port = n3.port;
    await n3.close(500);
    await adminClient.revokeToken(id);
    expect(await statusCode(nodes[0]!, token)).toBe(401);
    expect(await statusCode(nodes[1]!, token)).toBe(401);

    const back = await startOn({ nodeId: 'n3', dataDir: `${dir.path}/n3`, seeds: [nodes[0]!.address] }, port);
    nodes[2] = back;
    expect(back.adminTokenFile).toBeNull();
    const restartedAt = Date.now();
    // Bounded: gossip every 100 ms with a random peer; 10 s is far above what it takes.
    await waitFor(async () => (await statusCode(back, token)) === 401, 10_000, 'the restarted node refuses the revoked token');
    const spreadMs = Date.now() - restartedAt;
    expect(back.node.clusterState.tokens?.[id]?.revokedAtMs).toBeTypeOf('number');
    // After more gossip rounds with the node that held the token live, it is still revoked everywhere.
    await new Promise((r) => setTimeout(r, 500));
    for (const n of nodes) {
      expect(await statusCode(n, token)).toBe(401);
      expect(n.node.clusterState.tokens?.[id]?.revokedAtMs).toBeTypeOf('number');
    }
    console.log(`revocation reached the restarted node ${spreadMs} ms after its restart`);
  });
});
