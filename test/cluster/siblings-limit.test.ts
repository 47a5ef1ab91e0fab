// Issue 9, finding 3, with real nodes (native engine, uWS, sockets): 3 nodes,
// N=3, so every node holds every key. n3 is stopped while n1 writes two keys
// blind up to the sibling limit (100); then n1 and n2 are stopped and n3,
// back alone, writes 100 other siblings to the same keys. With all three up
// again the replicas hold different 100-sibling sets. They must converge to
// the 200-sibling union: one key through read repair, the other through
// anti-entropy alone (run by hand here, so the read repair is not helped).
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRecord } from '../../src/record/codec.js';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/index.js';
import { waitFor } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';
import { TEST_PEER_SECRETS } from '../helpers/secret.js';

const quiet = pino({ level: 'silent' });
const dir = tempDir('ringkv-siblings-limit-');
const base = {
  peerSecrets: TEST_PEER_SECRETS,
  logger: quiet,
  auth: { required: false },
  node: { gossipIntervalMs: 100, requestTimeoutMs: 2_000 },
  antiEntropy: { schedule: false, shouldYield: () => false },
} satisfies Partial<ServerOptions>;
const ids = ['n1', 'n2', 'n3'];
const nodes: Array<RunningServer | null> = [];
const ports: number[] = [];
const LIMIT = 100;
const B = Buffer.from('s');

/**
 * Starts node i on its port (a restart must keep its address). Ports come
 * from below Linux's ephemeral range (32768..): a port the kernel picked for
 * us could be handed to one of the test's own client sockets while the node
 * is down. A first start tries a few random ones (another process may hold one).
 */
const start = async (i: number): Promise<RunningServer> => {
  const seed = nodes.find((n, j) => n !== null && j !== i);
  let lastErr: unknown = null;
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = ports[i] ?? 20_000 + Math.floor(Math.random() * 12_000);
    try {
      const s = await startServer({ ...base, port, nodeId: ids[i]!, dataDir: `${dir.path}/${ids[i]}`, seeds: seed ? [seed.address] : [] });
      ports[i] = s.port;
      nodes[i] = s;
      return s;
    } catch (err) {
      lastErr = err;
      if (ports[i] !== undefined) await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw lastErr;
};
const stop = async (i: number) => {
  await nodes[i]!.close(500);
  nodes[i] = null;
};
const allTrustEachOther = () =>
  waitFor(() => nodes.every((n) => n !== null && nodes.every((m) => m === n || !n.node.isSuspected(m!.node.id))), 15_000, 'nodes still suspect each other');

beforeAll(async () => {
  for (let i = 0; i < 3; i++) await start(i);
  await waitFor(() => {
    const all = nodes.map((n) => n!.node);
    const digests = new Set(all.map((n) => String((n.status().ring as { digest: string }).digest)));
    return digests.size === 1 && all.every((n) => new Set(n.clusterState.ring.owners).size === 3 && Object.keys(n.clusterState.members).length === 3);
  }, 15_000, 'cluster did not converge');
}, 30_000);
afterAll(async () => {
  await Promise.all(nodes.map((n) => n?.close(500)));
  dir.remove();
});

const url = (i: number, key: string, query = '') => `http://${nodes[i]!.address}/kv/s/${key}${query}`;
const stored = async (i: number, key: string) => nodes[i]!.engine.get(B, Buffer.from(key));
/** `count` blind writes through node i with w=1; then one more, which the limit refuses (409). */
async function writeToTheLimit(i: number, key: string): Promise<void> {
  for (let v = 0; v < LIMIT; v++) {
    const res = await fetch(url(i, key, '?w=1'), { method: 'PUT', body: `${ids[i]}-${v}` });
    expect(res.status, await res.clone().text()).toBe(204);
  }
  const over = await fetch(url(i, key, '?w=1'), { method: 'PUT', body: 'one too many' });
  expect(over.status).toBe(409);
  expect(await over.json()).toMatchObject({ error: 'TOO_MANY_SIBLINGS' });
}
async function expectConverged(key: string, siblings: number): Promise<void> {
  const [a, b, c] = await Promise.all([0, 1, 2].map((i) => stored(i, key)));
  expect(decodeRecord(a!).siblings).toHaveLength(siblings);
  expect(b).toEqual(a);
  expect(c).toEqual(a);
}

describe('finding 3: replicas with different sets of 100 siblings converge (real nodes)', () => {
  it('finding 3: both sides of a split write two keys to the limit; read repair converges one, anti-entropy the other, to the 200-sibling union', async () => {
    await stop(2);
    for (const key of ['rr', 'aae']) await writeToTheLimit(0, key);
    await stop(0);
    await stop(1);
    await start(2);
    for (const key of ['rr', 'aae']) await writeToTheLimit(2, key);
    await start(0);
    await start(1);
    await allTrustEachOther();
    for (const key of ['rr', 'aae']) {
      expect(decodeRecord((await stored(0, key))!).siblings).toHaveLength(LIMIT);
      expect(decodeRecord((await stored(2, key))!).siblings).toHaveLength(LIMIT);
      expect(await stored(0, key)).not.toEqual(await stored(2, key));
    }

    // A read answers the union (300, over 100 siblings) and repairs every replica.
    const read = await fetch(url(1, 'rr', '?r=3'), { headers: { accept: 'application/json' } });
    expect(read.status).toBe(300);
    const body = (await read.json()) as { siblings: unknown[] };
    expect(body.siblings).toHaveLength(2 * LIMIT);
    await waitFor(async () => (await stored(0, 'rr'))!.equals((await stored(2, 'rr'))!), 10_000, 'read repair of rr');
    await expectConverged('rr', 2 * LIMIT);
    // A write with the read's context resolves the 200 siblings. (Through n2: this
    // process's keep-alive connection to n1 outlived n1's restart, and a closed
    // node still answers on it, 500 "engine is closed" — left open in the report.)
    const resolved = await fetch(url(1, 'rr', '?w=3'), { method: 'PUT', body: 'resolved', headers: { 'x-ringkv-context': read.headers.get('x-ringkv-context')! } });
    expect(resolved.status, await resolved.clone().text()).toBe(204);
    await expectConverged('rr', 1);

    // The other key was never read: anti-entropy rounds (bounded) bring the replicas together.
    for (let round = 0; round < 200; round++) {
      const [a, b, c] = await Promise.all([0, 1, 2].map((i) => stored(i, 'aae')));
      if (a!.equals(b!) && a!.equals(c!)) break;
      await Promise.all(nodes.map((n) => n!.antiEntropy.runRound()));
    }
    await expectConverged('aae', 2 * LIMIT);
  }, 120_000);
});
