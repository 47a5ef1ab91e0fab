// The peer trust boundary on real nodes (issue 11, items 1 and 2): real
// sockets on 127.0.0.1, real sled data, real secrets. A stranger who knows
// the cluster name but not the secret gets nowhere; after two rotations the
// old-old secret is refused and the previous one still accepted; a member
// speaks only for its own id; member fields that do not validate are
// refused at join and in gossip.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { packState } from '../../src/core/state-wire.js';
import type { ClusterState, Member } from '../../src/core/membership.js';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/index.js';
import {
  PROTOCOL_VERSION,
  TransportError,
  WsTransport,
  decodeFrames,
  encodeFrame,
  newNonce,
  sealMessage,
} from '../../src/transport/index.js';
import type { PeerSecrets } from '../../src/transport/index.js';
import { startCluster, waitFor, type TestCluster } from '../helpers/cluster.js';
import { TEST_PEER_SECRETS, TEST_SECRET_TEXT, randomSecret } from '../helpers/secret.js';
import { startOnStablePort } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';
import pino from 'pino';

const quiet = pino({ level: 'silent' });

/** A peer transport of our own (not listening), holding `secrets`, calling itself `id`. */
function peerClient(id: string, cluster: string, secrets: PeerSecrets): WsTransport {
  return new WsTransport({ nodeId: id, cluster, secrets, random: () => 0.5, backoffBaseMs: 1, backoffMaxMs: 5, connectTimeoutMs: 2_000 });
}

async function outcome(p: Promise<unknown>): Promise<{ ok: unknown } | { code: string; remoteCode?: string; message: string }> {
  return p.then(
    (ok) => ({ ok }),
    (err: unknown) => {
      if (!(err instanceof TransportError)) throw err;
      return { code: err.code, ...(err.remoteCode === undefined ? {} : { remoteCode: err.remoteCode }), message: err.message };
    },
  );
}

async function metric(server: RunningServer, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await server.node.metrics.registry.getSingleMetric(name)?.get();
  if (!m) return 0;
  return m.values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((sum, v) => sum + v.value, 0);
}

async function httpGet(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
  return { status: res.status, body: await res.text() };
}

async function httpPut(url: string, value: string): Promise<number> {
  const res = await fetch(url, { method: 'PUT', body: value, headers: { 'content-type': 'application/octet-stream' }, signal: AbortSignal.timeout(5_000) });
  await res.arrayBuffer();
  return res.status;
}

const b = Buffer.from('vault');
const k = Buffer.from('gold');

describe('a stranger who knows the cluster name but not the secret', () => {
  let cluster: TestCluster;
  let clusterName: string;
  beforeAll(async () => {
    cluster = await startCluster(3);
    expect(await httpPut(`${cluster.url(0)}/kv/vault/gold`, 'real')).toBeLessThan(300);
    // GET /status publishes the cluster name: the stranger knows it.
    clusterName = (JSON.parse((await httpGet(`${cluster.url(0)}/status`)).body) as { cluster: string }).cluster;
  });
  afterAll(async () => {
    await cluster?.close();
  });

  it('cannot read, write, merge, join or gossip: each request fails, the connection never opens, nothing changes', async () => {
    const n1 = cluster.nodes[0]!;
    const stranger = peerClient('stranger', clusterName, { current: randomSecret() });
    try {
      const to = { id: 'n1', address: n1.address };
      const state = packState(n1.node.clusterState);
      const attempts: Array<[string, unknown]> = [
        ['kv.get', { b, k }],
        ['kv.put', { b, k: Buffer.from('new'), context: null, value: Buffer.from('forged') }],
        ['kv.merge', { b, k, record: Buffer.from([1, 0, 0, 0, 1]) }],
        ['join', { cluster: clusterName, member: { id: 'stranger', address: '127.0.0.1:9' } }],
        ['gossip', { state }],
      ];
      for (const [type, body] of attempts) {
        const r = await outcome(stranger.request(to, type, body, 2_000));
        // REFUSED on a fresh attempt; UNREACHABLE (with the refusal's reason) while the connection backs off after one.
        expect(r, type).toMatchObject({ code: expect.stringMatching(/^(REFUSED|UNREACHABLE)$/), message: expect.stringMatching(/did not prove it holds the cluster secret|closed/) });
      }
      expect(stranger.stats().authFailures.outbound['bad-proof']).toBeGreaterThanOrEqual(1);
    } finally {
      await stranger.close();
    }
    // The node saw each attempt end after its hello, unproven.
    await waitFor(async () => (await metric(n1, 'ringkv_peer_auth_failures_total', { side: 'inbound', reason: 'abandoned' })) >= 1, 3_000, 'abandoned handshakes counted');
    // Nothing happened: the value, the members and the new key are as they were.
    expect((await httpGet(`${cluster.url(1)}/kv/vault/gold`)).body).toBe('real');
    expect((await httpGet(`${cluster.url(1)}/kv/vault/new`)).status).toBe(404);
    for (const node of cluster.nodes) expect(Object.keys(node.node.clusterState.members).sort()).toEqual(['n1', 'n2', 'n3']);
  });

  it('a raw client that sends a wrong proof and then requests is closed by the node with none of them acted on, and counted', async () => {
    const n1 = cluster.nodes[0]!;
    const before = await metric(n1, 'ringkv_peer_auth_failures_total', { side: 'inbound', reason: 'bad-proof' });
    const requests = [
      encodeFrame({ kind: 'req', id: 1, type: 'kv.get', body: { b, k } }),
      encodeFrame({ kind: 'req', id: 2, type: 'kv.put', body: { b, k: Buffer.from('raw'), context: null, value: Buffer.from('forged') } }),
      encodeFrame({ kind: 'req', id: 3, type: 'kv.merge', body: { b, k, record: Buffer.from([1, 0, 0, 0, 1]) } }),
      encodeFrame({ kind: 'req', id: 4, type: 'join', body: { cluster: clusterName, member: { id: 'ghost', address: '127.0.0.1:9' } } }),
      encodeFrame({ kind: 'req', id: 5, type: 'gossip', body: { state: packState(n1.node.clusterState) } }),
    ];
    for (const [i, request] of requests.entries()) {
      const raw = await rawHandshake(n1.address, clusterName, 'ghost');
      // A forged proof (32 random bytes), then the request sealed with a guessed tag and plain.
      raw.ws.send(encodeFrame({ kind: 'auth', proof: newNonce() }));
      raw.ws.send(sealMessage(1, request, 0));
      raw.ws.send(request);
      const { code, reason } = await raw.closed;
      expect(code, `request ${i}`).toBe(1008);
      expect(reason).toMatch(/did not prove it holds the cluster secret/);
      expect(raw.received, 'nothing but the server hello came back').toHaveLength(1);
    }
    // Skipping the proof altogether is refused the same way.
    const skip = await rawHandshake(n1.address, clusterName, 'ghost');
    skip.ws.send(requests[1]!);
    expect((await skip.closed).code).toBe(1002);
    expect(skip.received).toHaveLength(1);

    expect(await metric(n1, 'ringkv_peer_auth_failures_total', { side: 'inbound', reason: 'bad-proof' })).toBe(before + requests.length);
    expect((await httpGet(`${cluster.url(2)}/kv/vault/raw`)).status).toBe(404);
    expect((await httpGet(`${cluster.url(2)}/kv/vault/gold`)).body).toBe('real');
    for (const node of cluster.nodes) expect(node.node.clusterState.members.ghost).toBeUndefined();
    // The metrics never show the secret, and neither does /status.
    const text = await n1.node.metrics.registry.metrics();
    const status = (await httpGet(`${cluster.url(0)}/status`)).body;
    expect(text).toMatch(/ringkv_peer_auth_failures_total\{side="inbound",reason="bad-proof"/);
    for (const shown of [text, status]) expect(shown).not.toContain(TEST_SECRET_TEXT);
  });
});

describe('rotation', () => {
  it('rolls the cluster from S1 to S2 to S3, every step serving w = r = 3 between nodes holding different secrets; then S1 is refused, S2 still accepted', async () => {
    const dir = tempDir('ringkv-rotate-');
    const [s1, s2, s3] = [randomSecret(), randomSecret(), randomSecret()];
    const servers = new Map<string, RunningServer>();
    const ports = new Map<string, number>();
    const base = (id: string, secrets: PeerSecrets, seeds: string[]): ServerOptions => ({
      nodeId: id, port: ports.get(id) ?? 0, dataDir: `${dir.path}/${id}`, seeds, logger: quiet, peerSecrets: secrets,
      node: { gossipIntervalMs: 100, requestTimeoutMs: 2_000 }, antiEntropy: { intervalMs: 1e9 },
    });
    try {
      // Each node restarts on its port: on one the kernel does not hand out to outgoing connections meanwhile.
      const first = await startOnStablePort((port) => startServer({ ...base('n1', { current: s1 }, []), port }));
      servers.set('n1', first);
      ports.set('n1', first.port);
      for (const id of ['n2', 'n3']) {
        const s = await startOnStablePort((port) => startServer({ ...base(id, { current: s1 }, [first.address]), port }));
        servers.set(id, s);
        ports.set(id, s.port);
      }
      const all = () => [...servers.values()];
      const converged = () =>
        waitFor(() => all().every((s) => Object.values(s.node.clusterState.members).filter((m) => m.status === 'valid').length === 3 && new Set(s.node.clusterState.ring.owners).size === 3), 15_000, '3 valid members');
      await converged();
      let written = 0;
      // A roll done in the right order never has two nodes that share no secret: no handshake fails.
      let authFailures = 0;
      // Through the nodes' own API (no HTTP keep-alive connections to hold a restarted node's port): w = r = 3 needs every peer link.
      const bucket = Buffer.from('rot');
      // Distinct values: a put retried after a failed attempt may leave equal siblings.
      const valueOf = async (s: RunningServer, i: number) =>
        [...new Set((await s.node.get(bucket, Buffer.from(`k${i}`), { r: 3 })).decoded?.siblings.map((x) => x.value?.toString()))].join(',');
      const writeAndReadBack = async () => {
        written += 1;
        const i = written;
        const [w, r] = [all()[i % 3]!, all()[(i + 1) % 3]!];
        await waitFor(async () => (await w.node.put(bucket, Buffer.from(`k${i}`), null, Buffer.from(`v${i}`), { w: 3 }), true), 10_000, `k${i} written`);
        await waitFor(async () => (await valueOf(r, i)) === `v${i}`, 10_000, `k${i} read back`);
      };
      // Restart each node in turn with new secrets; the others still hold the old ones.
      const roll = async (secrets: PeerSecrets) => {
        for (const id of ['n2', 'n3', 'n1']) {
          authFailures += await metric(servers.get(id)!, 'ringkv_peer_auth_failures_total');
          await servers.get(id)!.close(1_000);
          servers.set(id, await startServer(base(id, secrets, [])));
          await converged();
          await writeAndReadBack();
        }
      };
      await writeAndReadBack();
      await roll({ current: s2, previous: s1 });
      await roll({ current: s3, previous: s2 });
      // Every write made during the rotations is still there.
      for (let i = 1; i <= written; i++) expect(await valueOf(all()[(i + 2) % 3]!, i)).toBe(`v${i}`);
      expect(written).toBe(7);
      for (const server of all()) authFailures += await metric(server, 'ringkv_peer_auth_failures_total');
      expect(authFailures).toBe(0);

      const n1 = servers.get('n1')!;
      const to = { id: 'n1', address: n1.address };
      const oldOld = peerClient('n9', 'ringkv', { current: s1 });
      const previous = peerClient('n8', 'ringkv', { current: s2 });
      const current = peerClient('n7', 'ringkv', { current: s3 });
      try {
        expect(await outcome(oldOld.request(to, 'ping', {}, 2_000))).toMatchObject({ code: 'REFUSED', message: expect.stringMatching(/did not prove/) });
        expect(await outcome(previous.request(to, 'ping', {}, 2_000))).toEqual({ ok: {} });
        expect(await outcome(current.request(to, 'ping', {}, 2_000))).toEqual({ ok: {} });
      } finally {
        await Promise.all([oldOld.close(), previous.close(), current.close()]);
      }
    } finally {
      await Promise.allSettled([...servers.values()].map((s) => s.close(500)));
      dir.remove();
    }
  });
});

describe('a member speaks only for its own id', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster(3);
  });
  afterAll(async () => {
    await cluster?.close();
  });

  it('a join for another id is refused; a join for its own id is taken', async () => {
    const n1 = cluster.nodes[0]!;
    const mallory = peerClient('mallory', 'ringkv', TEST_PEER_SECRETS);
    try {
      const to = { id: 'n1', address: n1.address };
      for (const id of ['n2', 'ghost']) {
        const r = await outcome(mallory.request(to, 'join', { cluster: 'ringkv', member: { id, address: '127.0.0.1:9' } }, 2_000));
        expect(r, id).toMatchObject({ code: 'REMOTE', remoteCode: 'BAD_REQUEST', message: expect.stringContaining("authenticated as 'mallory' may only join itself") });
      }
      expect(n1.node.clusterState.members.n2!.address).toBe(cluster.nodes[1]!.address);
      expect(n1.node.clusterState.members.ghost).toBeUndefined();
      // Its own id: admitted (the positive control: the refusal above was about the id).
      const r = await outcome(mallory.request(to, 'join', { cluster: 'ringkv', member: { id: 'mallory', address: '127.0.0.1:9' } }, 2_000));
      expect(r).toMatchObject({ ok: { state: expect.objectContaining({ clusterName: 'ringkv' }) } });
      expect(n1.node.clusterState.members.mallory?.status).toBe('valid');
    } finally {
      await mallory.close();
    }
  });

  it("gossip cannot move another member or the receiver itself: those entries are kept, counted, and the rest still merges", async () => {
    const [n1, n2] = [cluster.nodes[0]!, cluster.nodes[1]!];
    // n3 (a member, holding the secret) gossips a state it edited.
    const n3 = peerClient('n3', 'ringkv', TEST_PEER_SECRETS);
    try {
      const before = await metric(n1, 'ringkv_gossip_refused_entries_total');
      const state = n1.node.clusterState;
      const bump = (m: Member, change: Partial<Member>): Member => ({ ...m, ...change, version: m.version + 5 });
      const forged: ClusterState = {
        ...state,
        members: {
          ...state.members,
          // another member's address, and the receiver's own
          n2: bump(state.members.n2!, { address: '127.0.0.1:9' }),
          n1: bump(state.members.n1!, { address: '127.0.0.1:8' }),
          // its own entry it may change: a zone it never had is still its own business
          n3: bump(state.members.n3!, { zone: 'z9' }),
        },
        buckets: { ...state.buckets, fresh: { props: { n: 3, r: 2, w: 2, dw: 0, mode: 'siblings' }, version: 1 } },
      };
      const r = await outcome(n3.request({ id: 'n1', address: n1.address }, 'gossip', { state: packState(forged) }, 2_000));
      expect(r).toMatchObject({ ok: { state: expect.anything() } }); // answered with n1's own view
      const after = n1.node.clusterState;
      expect(after.members.n2!.address).toBe(n2.address);
      expect(after.members.n1!.address).toBe(n1.address);
      expect(after.members.n3!.zone).toBe('z9');
      expect(after.buckets.fresh?.version).toBe(1);
      expect(await metric(n1, 'ringkv_gossip_refused_entries_total')).toBe(before + 2);
    } finally {
      await n3.close();
    }
  });
});

describe('member fields that do not validate', () => {
  let node: RunningServer;
  let dir: ReturnType<typeof tempDir>;
  beforeAll(async () => {
    dir = tempDir('ringkv-fields-');
    node = await startServer({ nodeId: 'n1', port: 0, dataDir: dir.path, logger: quiet, peerSecrets: TEST_PEER_SECRETS, node: { gossipIntervalMs: 100 } });
  });
  afterAll(async () => {
    await node?.close(500);
    dir?.remove();
  });

  it('a node whose own address would not validate refuses to start, saying why', async () => {
    const other = tempDir('ringkv-fields-');
    try {
      const opts = { nodeId: 'w1', port: 0, dataDir: other.path, logger: quiet, peerSecrets: TEST_PEER_SECRETS };
      // The wildcard listen is refused first by the listen checks (src/server/index.ts), naming --advertise too.
      await expect(startServer({ ...opts, host: '0.0.0.0' })).rejects.toThrow(/0\.0\.0\.0:0 \(every interface\) needs --advertise/);
      await expect(startServer({ ...opts, advertise: 'not a host:7000' })).rejects.toThrow(/this node's address: .*bad host/);
      // The same data directory then starts fine with a good address (the refusals left nothing open or written).
      const ok = await startServer({ ...opts, host: '127.0.0.1', advertise: undefined });
      await ok.close(500);
    } finally {
      other.remove();
    }
  });

  const badMembers: Array<[string, Record<string, unknown>]> = [
    ['address without a port', { address: '127.0.0.1' }],
    ['address that is not a host', { address: 'not a host:7000' }],
    ['port above 65535', { address: '127.0.0.1:99999' }],
    ['port 0', { address: '127.0.0.1:0' }],
    ['unspecified address', { address: '0.0.0.0:7405' }],
    ['IPv6 unspecified', { address: '[::]:7405' }],
    ['500-character zone', { zone: 'z'.repeat(500) }],
    ['zone with a space', { zone: 'rack 1' }],
    ['empty zone', { zone: '' }],
    ['unknown field', { role: 'admin' }],
  ];

  it('join: every bad field is refused with BAD_REQUEST and nothing is admitted (table)', async () => {
    for (const [name, change] of badMembers) {
      const id = `j${badMembers.findIndex(([n]) => n === name)}`;
      const t = peerClient(id, 'ringkv', TEST_PEER_SECRETS);
      try {
        const r = await outcome(t.request({ id: 'n1', address: node.address }, 'join', { cluster: 'ringkv', member: { id, address: '127.0.0.1:7001', ...change } }, 2_000));
        expect(r, name).toMatchObject({ code: 'REMOTE', remoteCode: 'BAD_REQUEST' });
      } finally {
        await t.close();
      }
      expect(node.node.clusterState.members[id], name).toBeUndefined();
    }
    // A bad id cannot even authenticate as itself (the hello refuses it), so it is tried as a body: refused.
    const t = peerClient('x', 'ringkv', TEST_PEER_SECRETS);
    try {
      for (const id of ['bad id', 'x'.repeat(65), '']) {
        const r = await outcome(t.request({ id: 'n1', address: node.address }, 'join', { cluster: 'ringkv', member: { id, address: '127.0.0.1:7001' } }, 2_000));
        expect(r, id).toMatchObject({ code: 'REMOTE', remoteCode: 'BAD_REQUEST' });
      }
    } finally {
      await t.close();
    }
  });

  it('gossip: a state with any bad member field is refused whole with BAD_REQUEST and changes nothing (table)', async () => {
    const t = peerClient('n2', 'ringkv', TEST_PEER_SECRETS);
    try {
      const state = node.node.clusterState;
      const good: Member = { id: 'n2', address: '127.0.0.1:7002', status: 'valid', version: 1 };
      const cases: Array<[string, Record<string, unknown>]> = [
        ...badMembers.map(([name, change]): [string, Record<string, unknown>] => [name, { ...good, ...change }]),
        ['status outside valid/leaving/left', { ...good, status: 'owner' }],
        ['version 0', { ...good, version: 0 }],
        ['fractional version', { ...good, version: 1.5 }],
        ['version past the bound', { ...good, version: 2 ** 53 }],
        ['id that does not match its key', { ...good, id: 'n3' }],
        ['bad id', { ...good, id: 'bad id' }],
      ];
      for (const [name, member] of cases) {
        const key = name === 'bad id' ? 'bad id' : 'n2';
        const forged = { ...state, members: { ...state.members, [key]: member } };
        const r = await outcome(t.request({ id: 'n1', address: node.address }, 'gossip', { state: packState(forged as ClusterState) }, 2_000));
        expect(r, name).toMatchObject({ code: 'REMOTE', remoteCode: 'BAD_REQUEST', message: expect.stringContaining('cluster state') });
        expect(Object.keys(node.node.clusterState.members), name).toEqual(['n1']);
      }
      // The same state with a good entry merges (the control).
      const r = await outcome(t.request({ id: 'n1', address: node.address }, 'gossip', { state: packState({ ...state, members: { ...state.members, n2: good } }) }, 2_000));
      expect(r).toMatchObject({ ok: {} });
      expect(node.node.clusterState.members.n2).toEqual(good);
    } finally {
      await t.close();
    }
  });
});

/** A raw WebSocket client that sends a hello and waits for the server's; then the test sends what it likes. */
async function rawHandshake(address: string, cluster: string, nodeId: string): Promise<{
  ws: WebSocket;
  received: Buffer[];
  closed: Promise<{ code: number; reason: string }>;
}> {
  const ws = new WebSocket(`ws://${address}/peer`, { perMessageDeflate: false });
  const received: Buffer[] = [];
  ws.on('message', (d) => received.push(d as Buffer));
  ws.on('error', () => undefined);
  const closed = new Promise<{ code: number; reason: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('not closed within 5 s')), 5_000);
    ws.once('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString('utf8') });
    });
  });
  closed.catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(encodeFrame({ kind: 'hello', version: PROTOCOL_VERSION, nodeId, cluster, nonce: newNonce() }));
  await waitFor(() => received.length >= 1, 3_000, 'server hello');
  const hello = decodeFrames(received[0]!);
  expect(hello.ok && hello.frames[0]!.kind === 'hello' && hello.frames[0]!.proofs?.length === 1).toBe(true);
  return { ws, received, closed };
}
