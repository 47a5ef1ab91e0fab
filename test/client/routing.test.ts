// Client-driven routing (RingkvClient routing 'client') against real nodes on
// 127.0.0.1: the client's preference lists are the nodes' own, its requests
// land on primaries (no forwarded writes, no reads coordinated off the
// preference list), a stopped node is routed around, and a node joining is
// picked up from the ring version every answer carries.
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionOf } from '../../src/core/ring.js';
import { RingkvClient } from '../../src/client/index.js';
import { keyPreference, parseRingDocument, routeTargets, type ClientRing } from '../../src/client/routing.js';
import { RING_VERSION_HEADER } from '../../src/http/wire.js';
import { Rand } from '../helpers/random.js';
import { startTestNode, waitFor, type TestNode } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';
import { writeTestSecretFile } from '../helpers/secret.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

// Two zones over four nodes, so zone-aware primaries differ from the plain clockwise walk.
const ZONES: Record<string, string> = { a: 'z1', b: 'z1', c: 'z2', d: 'z2', e: 'z3', f: 'z3' };
let nodes: TestNode[] = [];

async function startZonedCluster(ids: string[]): Promise<TestNode[]> {
  const started: TestNode[] = [];
  try {
    started.push(await startTestNode(ids[0]!, { zone: ZONES[ids[0]!] }));
    for (const id of ids.slice(1)) started.push(await startTestNode(id, { zone: ZONES[id], seeds: [started[0]!.address] }));
    await converged(started, ids.length);
    return started;
  } catch (err) {
    await Promise.allSettled(started.map((n) => n.close()));
    throw err;
  }
}

/** Waits until every node holds the same ring, owned by `owners` distinct nodes, all members valid. */
async function converged(running: TestNode[], owners: number): Promise<void> {
  await waitFor(() => {
    const versions = new Set(running.map((n) => n.server.node.clusterState.ring.version));
    return (
      versions.size === 1 &&
      running.every((n) => new Set(n.server.node.clusterState.ring.owners).size === owners) &&
      running.every((n) => Object.values(n.server.node.clusterState.members).every((m) => m.status === 'valid'))
    );
  }, 20_000, `one ring over ${owners} owners on every node`);
}

/** The ring a client routes by (its private state, read for the test's expectations). */
function ringOf(c: RingkvClient): ClientRing {
  return (c as unknown as { clientRing: ClientRing }).clientRing;
}

/** A node in a child process (tsx runs the server from source); `kill()` is SIGKILL. */
async function startNodeProcess(id: string, zone: string, seed: string): Promise<{ address: string; kill(): void }> {
  const dir = tempDir(`ringkv-${id}-`);
  const server = fileURLToPath(new URL('../../src/server/index.ts', import.meta.url));
  const secrets = fileURLToPath(new URL('../../src/server/peer-secrets.ts', import.meta.url));
  const secretFile = writeTestSecretFile(dir.path);
  const code = `
    import { startServer } from ${JSON.stringify(server)};
    import { readSecretFile } from ${JSON.stringify(secrets)};
    import pino from 'pino';
    const s = await startServer({ nodeId: ${JSON.stringify(id)}, zone: ${JSON.stringify(zone)}, port: 0, dataDir: ${JSON.stringify(dir.path)},
      peerSecrets: { current: readSecretFile(${JSON.stringify(secretFile)}) },
      seeds: [${JSON.stringify(seed)}], logger: pino({ level: 'silent' }), node: { gossipIntervalMs: 100 }, auth: { required: false } });
    process.stdout.write('listening ' + s.address + '\\n');`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  child.once('exit', () => dir.remove());
  let output = '';
  try {
    const address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node ${id} did not start: ${output}`)), 20_000);
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        const m = /listening (\S+)\n/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`node ${id} exited (${code}): ${output}`));
      });
    });
    return { address, kill };
  } catch (err) {
    kill();
    throw err;
  }
}

/** Sum of a counter over its labels, as a user scraping /metrics sees it. */
async function counter(node: TestNode, name: string): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

async function offPrimaryWork(running: TestNode[]): Promise<{ forwarded: number; nonPrimaryReads: number }> {
  let forwarded = 0;
  let nonPrimaryReads = 0;
  for (const n of running) {
    forwarded += await counter(n, 'ringkv_forwarded_total');
    nonPrimaryReads += await counter(n, 'ringkv_non_primary_reads_total');
  }
  return { forwarded, nonPrimaryReads };
}

/** `count` puts then gets of distinct keys, sequentially; every one must succeed. */
/**
 * Writes then reads `count` keys. Reads assert read-your-writes, which only
 * R + W > N promises: the bucket's own r/w (pairs: n=2, r=1, w=1) do not, so
 * the writes here ask w = 2 (issue #9, finding 4: this test failed about one
 * run in three asserting what R + W <= N does not promise).
 */
async function workload(client: RingkvClient, bucket: string, prefix: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await client.put(bucket, `${prefix}-${i}`, `v${i}`, { w: 2 });
  for (let i = 0; i < count; i++) expect((await client.get(bucket, `${prefix}-${i}`)).values.map(String)).toEqual([`v${i}`]);
}

beforeAll(async () => {
  nodes = await startZonedCluster(['a', 'b', 'c', 'd']);
  // A bucket with n=2: its preference lists differ from the default n=3 ones.
  await new RingkvClient({ nodes: [nodes[0]!.address] }).setBucketProps('pairs', { n: 2, r: 1, w: 1 });
  await waitFor(() => nodes.every((n) => n.server.node.bucketProps('pairs').n === 2), 10_000, 'bucket props gossiped');
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(nodes.map((n) => n.close()));
});

describe('GET /ring', () => {
  it('gives every member its HTTP address and zone, and each bucket its n', async () => {
    const res = await fetch(`${nodes[1]!.url}/ring`);
    expect(res.headers.get(RING_VERSION_HEADER)).toBe(String(nodes[1]!.server.node.clusterState.ring.version));
    const doc = (await res.json()) as Record<string, unknown>;
    expect(doc).toMatchObject({ joined: true, defaultN: 3, buckets: { pairs: { n: 2 } } });
    expect(doc.members).toEqual(
      expect.arrayContaining(nodes.map((n) => ({ id: n.server.node.id, address: n.address, zone: ZONES[n.server.node.id], status: 'valid' }))),
    );
  });
});

describe('client-driven routing', () => {
  it('computes the same preference list as the nodes for every key', async () => {
    const cr = parseRingDocument(await (await fetch(`${nodes[2]!.url}/ring`)).json());
    const rand = new Rand(7);
    const owners = new Set(nodes[0]!.server.node.clusterState.ring.owners).size;
    for (let i = 0; i < 3000; i++) {
      const bucket = rand.pick(['pairs', 'users', 'bin']);
      const key = rand.chance(0.5) ? Buffer.from(`key-${i}`) : rand.bytes(rand.int(1, 40));
      const node = rand.pick(nodes).server;
      const nRequested = rand.chance(0.2) ? rand.int(1, 5) : undefined;
      const n = Math.min(nRequested ?? node.node.bucketProps(bucket).n, owners);
      const partition = partitionOf(node.node.clusterState.ring, node.engine.hashKey(Buffer.from(bucket), key));
      expect(keyPreference(cr, Buffer.from(bucket), key, nRequested), `${bucket}/${key.toString('hex')} n=${n}`).toEqual(node.node.preferenceListOf(partition, n));
    }
  });

  it('sends every request to a primary: no forwarded writes, no off-primary reads, unlike server-driven routing', async () => {
    const addresses = nodes.map((n) => n.address);
    const direct = new RingkvClient({ nodes: addresses, routing: 'client' });
    try {
      expect(await direct.refreshRing()).toBe(true);
      expect(direct.routingRingVersion).toBe(nodes[0]!.server.node.clusterState.ring.version);
      const before = await offPrimaryWork(nodes);
      await workload(direct, 'users', 'direct', 60);
      await workload(direct, 'pairs', 'direct', 60);
      expect(await offPrimaryWork(nodes)).toEqual(before);
    } finally {
      direct.close();
    }

    const viaAnyNode = new RingkvClient({ nodes: addresses });
    const before = await offPrimaryWork(nodes);
    await workload(viaAnyNode, 'users', 'any', 60);
    await workload(viaAnyNode, 'pairs', 'any', 60);
    const after = await offPrimaryWork(nodes);
    // Round-robin over 4 nodes: a quarter of n=3 requests and half of n=2 ones reach a node that is not a primary.
    expect(after.forwarded - before.forwarded).toBeGreaterThan(10);
    expect(after.nonPrimaryReads - before.nonPrimaryReads).toBeGreaterThan(10);
  });

  it('routes set reads and updates too', async () => {
    const c = new RingkvClient({ nodes: nodes.map((n) => n.address), routing: 'client' });
    try {
      await c.setBucketProps('tags', { type: 'set' });
      await waitFor(() => nodes.every((n) => n.server.node.bucketProps('tags').type === 'set'), 10_000, 'set bucket gossiped');
      expect(await c.refreshRing()).toBe(true);
      for (let i = 0; i < 10; i++) await c.setAdd('tags', `t${i}`, 'x', `y${i}`);
      for (let i = 0; i < 10; i++) expect((await c.setGet('tags', `t${i}`)).elements.map(String)).toEqual(['x', `y${i}`]);
    } finally {
      c.close();
    }
  });

  it('spreads reads over the primaries and starts writes at the first one', async () => {
    const cr = parseRingDocument(await (await fetch(`${nodes[0]!.url}/ring`)).json());
    const pl = keyPreference(cr, Buffer.from('users'), Buffer.from('k'))!;
    const urls = pl.primaries.map((id) => cr.urls.get(id)!);
    const firstTried = new Set([0, 1, 2, 3, 4, 5].map((spread) => routeTargets(cr, pl, 'read', spread, () => false)[0]));
    expect(firstTried).toEqual(new Set(urls));
    expect(routeTargets(cr, pl, 'write', 5, () => false)[0]).toBe(urls[0]);
    // A node that just failed goes last.
    expect(routeTargets(cr, pl, 'write', 0, (u) => u === urls[0]).at(-1)).toBe(urls[0]);
  });

  it('refreshes the ring on its timer, without any request', async () => {
    const c = new RingkvClient({ nodes: [nodes[0]!.address], routing: 'client', ringRefreshMs: 200 });
    try {
      await waitFor(() => c.routingRingVersion !== null, 10_000, 'first ring');
      await new RingkvClient({ nodes: [nodes[0]!.address] }).setBucketProps('solo', { n: 1, r: 1, w: 1 });
      await waitFor(() => ringOf(c).bucketN.get('solo') === 1, 10_000, 'the client saw the new bucket n');
    } finally {
      c.close();
    }
  });

  it('routes as server-driven after close()', async () => {
    const c = new RingkvClient({ nodes: [nodes[0]!.address], routing: 'client', ringRefreshMs: 60_000 });
    c.close();
    expect(c.routingRingVersion).toBeNull();
    await workload(c, 'users', 'closed', 5);
  });

  it('refuses a ring from a node that has not joined, and one naming an owner that is not a member', () => {
    const doc = { partitionBits: 1, version: 1, claimant: 'a', owners: ['a', 'b'], joined: true, members: [{ id: 'a', address: '127.0.0.1:1', zone: null, status: 'valid' }], buckets: {}, defaultN: 3 };
    expect(() => parseRingDocument(doc)).toThrow(/owner b is not a member/);
    expect(() => parseRingDocument({ ...doc, joined: false })).toThrow(/not joined/);
    expect(() => parseRingDocument({ ...doc, owners: ['a'] })).toThrow(/bad ring/);
    expect(() => new RingkvClient({ nodes: ['127.0.0.1:1'], routing: 'both' as 'client' })).toThrow(TypeError);
  });

  it('picks up a node that joined from the ring version answers carry, and then routes to it', async () => {
    // A refresh period far beyond the test: only answers' ring versions can prompt the refresh.
    const c = new RingkvClient({ nodes: nodes.map((n) => n.address), routing: 'client', ringRefreshMs: 600_000 });
    try {
      expect(await c.refreshRing()).toBe(true);
      const oldVersion = c.routingRingVersion!;
      nodes.push(await startTestNode('e', { zone: ZONES.e, seeds: [nodes[0]!.address] }));
      await converged(nodes, 5);
      expect(nodes[0]!.server.node.clusterState.ring.version).toBeGreaterThan(oldVersion);
      let i = 0;
      await waitFor(async () => {
        await c.put('users', `join-${i++}`, 'x');
        return c.routingRingVersion === nodes[0]!.server.node.clusterState.ring.version;
      }, 10_000, 'the client took the new ring');
      const before = await offPrimaryWork(nodes);
      await workload(c, 'users', 'joined', 60);
      expect(await offPrimaryWork(nodes)).toEqual(before);
      expect(await counter(nodes[4]!, 'ringkv_requests_total')).toBeGreaterThan(0);
    } finally {
      c.close();
    }
  }, 60_000);

  it('routes around a killed node: every request still succeeds', async () => {
    // A node in its own process, killed with SIGKILL: its connections die with it, as in production.
    const victim = await startNodeProcess('f', ZONES.f!, nodes[0]!.address);
    const c = new RingkvClient({ nodes: nodes.map((n) => n.address), routing: 'client', timeoutMs: 10_000 });
    try {
      await converged(nodes, 6);
      expect(await c.refreshRing()).toBe(true);
      // f is the first primary of about a sixth of the keys: those writes go to it first.
      const viaVictim = Array.from({ length: 80 }, (_, i) => `killed-${i}`).filter(
        (k) => routeTargets(ringOf(c), keyPreference(ringOf(c), Buffer.from('users'), Buffer.from(k))!, 'write', 0, () => false)[0] === `http://${victim.address}`,
      );
      expect(viaVictim.length).toBeGreaterThan(0);
      victim.kill();
      for (let i = 0; i < 80; i++) await c.put('users', `killed-${i}`, `v${i}`, { w: 2 });
      for (let i = 0; i < 80; i++) expect((await c.get('users', `killed-${i}`, { r: 2 })).values.map(String)).toEqual([`v${i}`]);
      expect(c.routingRingVersion).not.toBeNull();
    } finally {
      c.close();
      victim.kill();
    }
  }, 60_000);
});

describe('connections', () => {
  it('reuses one keep-alive connection for sequential requests', async () => {
    let connections = 0;
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('pong');
    });
    server.on('connection', () => connections++);
    try {
      const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
      const c = new RingkvClient({ nodes: [`127.0.0.1:${port}`] });
      for (let i = 0; i < 50; i++) expect(await c.ping()).toBe(true);
      // undici hands a connection back to its pool just after the body ends, so back-to-back requests may alternate over two.
      expect(connections).toBeLessThanOrEqual(2);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
