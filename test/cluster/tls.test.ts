// TLS (issue 11, item 4): a 3-node cluster serving HTTPS and wss:// peers
// with certificates of a cluster CA made here with openssl. Clients (the TS
// client, the CLI) verify the nodes against the CA; peers verify each other
// both ways, so a node whose certificate another CA signed is refused, in
// either direction.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient, RingkvError } from '../../src/client/index.js';
import { ANY_PEER, TransportError, WsTransport } from '../../src/transport/index.js';
import type { StartRefusedError } from '../../src/server/index.js';
import { makeCa, type TestCa } from '../helpers/certs.js';
import { CLI } from '../helpers/processes.js';
import { TEST_PEER_SECRETS } from '../helpers/secret.js';
import { startTestNode, waitFor, type TestNode } from '../helpers/server.js';

const run = promisify(execFile);

let ca: TestCa;
let rogueCa: TestCa;
const nodes: TestNode[] = [];
const others: TestNode[] = [];
let client: RingkvClient;

beforeAll(async () => {
  ca = makeCa('cluster');
  rogueCa = makeCa('rogue');
  const tlsOf = (id: string) => ({ ...ca.issue(id), caFile: ca.caFile });
  nodes.push(await startTestNode('n1', { tls: tlsOf('n1') }));
  for (const id of ['n2', 'n3']) nodes.push(await startTestNode(id, { tls: tlsOf(id), seeds: [nodes[0]!.address] }));
  client = new RingkvClient({ nodes: nodes.map((n) => n.address), tls: { ca: readFileSync(ca.caFile) } });
  // Every node sees three valid members owning partitions on one ring, and the joins' partition transfers are
  // done (an r=3 read during one can miss its quorum): join and gossip went over wss:// (a TLS port speaks nothing else).
  await waitFor(
    async () => {
      const docs = await Promise.all(
        nodes.map(
          async (n) =>
            (await client.status(n.address)) as unknown as { ring: { digest: string }; members: Array<{ status: string; partitions: number }>; transfers?: unknown[] },
        ),
      );
      return docs.every(
        (d) =>
          d.members.filter((m) => m.status === 'valid' && m.partitions > 0).length === 3 &&
          d.ring.digest === docs[0]!.ring.digest &&
          (d.transfers?.length ?? 0) === 0,
      );
    },
    30_000,
    'the TLS cluster to form',
  );
}, 60_000);

afterAll(async () => {
  client?.close();
  await Promise.all([...nodes, ...others].map((n) => n.close()));
  ca?.remove();
  rogueCa?.remove();
});

describe('TLS', () => {
  it('puts and gets through HTTPS, the CA checked, with every replica written and read over wss://', async () => {
    const put = await client.put('tls', 'k1', 'over tls', { w: 3 });
    // Read through each node in turn, from all three replicas.
    for (const n of nodes) {
      const one = new RingkvClient({ nodes: [n.address], tls: { ca: readFileSync(ca.caFile) } });
      const got = await one.get('tls', 'k1', { r: 3 });
      expect(got.values.map(String)).toEqual(['over tls']);
    }
    expect(put.context).toBeTruthy();
  });

  it('a peer connection without TLS reaches no node', async () => {
    const plain = new WsTransport({ nodeId: 'p1', cluster: 'ringkv', secrets: TEST_PEER_SECRETS, connectTimeoutMs: 3_000 });
    try {
      const err = await plain.request({ id: ANY_PEER, address: nodes[0]!.address }, 'ping', {}, 5_000).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TransportError);
      expect(['UNREACHABLE', 'TIMEOUT']).toContain((err as TransportError).code);
    } finally {
      await plain.close();
    }
  });

  it('a client that does not trust the cluster CA gets no answer (certificate refused)', async () => {
    const untrusting = new RingkvClient({ nodes: [nodes[0]!.address], tls: {}, timeoutMs: 3_000 });
    const err = await untrusting.get('tls', 'k1').then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RingkvError);
    expect((err as RingkvError).code).toBe('UNREACHABLE');
    expect((err as RingkvError).message).toMatch(/certificate/);
  });

  it('plain HTTP to a TLS node gets no HTTP answer', async () => {
    const err = await fetch(`http://${nodes[0]!.address}/ping`, { signal: AbortSignal.timeout(5_000) }).then(
      (r) => `answered ${r.status}`,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
  });

  it('the CLI puts and gets with --tls-ca', async () => {
    const node = nodes[1]!.address;
    await run(process.execPath, [CLI, 'put', 'tls', 'cli', 'from the cli', '--node', node, '--tls-ca', ca.caFile], { timeout: 20_000 });
    const { stdout } = await run(process.execPath, [CLI, 'get', 'tls', 'cli', '--node', node], { timeout: 20_000, env: { ...process.env, RINGKV_TLS_CA: ca.caFile } });
    expect(stdout).toBe('from the cli\n');
    // Without the CA the CLI refuses the node's certificate.
    const refused = await run(process.execPath, [CLI, 'get', 'tls', 'cli', '--node', `https://${node}`], { timeout: 20_000 }).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(refused?.code).toBe(1);
    expect(refused?.stderr).toMatch(/certificate/);
  }, 60_000);

  it('a node whose certificate another CA signed cannot join: the seed refuses it at the TLS handshake, and it stops', async () => {
    let fatal: StartRefusedError | null = null;
    const rogue = await startTestNode('r1', {
      tls: { ...rogueCa.issue('r1'), caFile: ca.caFile },
      seeds: [nodes[0]!.address],
      node: { maxJoinRefusals: 3 },
      onFatal: (err) => (fatal = err),
    });
    others.push(rogue);
    await waitFor(() => fatal !== null, 30_000, 'the rogue node to give up');
    expect(fatal!.message).toMatch(/refused this node 3 times: .*refused \(1006: .*unknown ca/);
    for (const n of nodes) {
      const s = (await client.status(n.address)) as unknown as { members: Array<{ id: string }> };
      expect(s.members.map((m) => m.id).sort()).toEqual(['n1', 'n2', 'n3']);
    }
  }, 60_000);

  it('a node refuses to start with TLS files that do not fit (key of another certificate, missing file, CA that is no CA)', async () => {
    const a = ca.issue('a');
    const b = ca.issue('b');
    const cases: Array<[object, RegExp]> = [
      [{ keyFile: b.keyFile, certFile: a.certFile }, /does not belong to the key/],
      [{ keyFile: a.keyFile, certFile: `${a.certFile}.missing` }, /cannot read the TLS certificate/],
      [{ ...a, caFile: a.certFile }, /is not a PEM CA certificate/],
    ];
    for (const [tls, message] of cases) {
      const err = await startTestNode('bad', { tls: tls as never }).then(
        (n) => n.close().then(() => null),
        (e: unknown) => e,
      );
      expect((err as Error)?.name).toBe('StartRefusedError');
      expect((err as Error).message).toMatch(message);
    }
  });

  it('a cluster node refuses a peer whose server certificate another CA signed', async () => {
    const rogue = await startTestNode('r2', { tls: { ...rogueCa.issue('r2'), caFile: rogueCa.caFile } });
    others.push(rogue);
    const n1 = ca.issue('n1-out');
    const transport = new WsTransport({
      nodeId: 'n1',
      cluster: 'ringkv',
      secrets: TEST_PEER_SECRETS,
      tls: { ca: readFileSync(ca.caFile), cert: readFileSync(n1.certFile), key: readFileSync(n1.keyFile) },
    });
    try {
      const err = await transport.request({ id: ANY_PEER, address: rogue.address }, 'ping', {}, 5_000).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TransportError);
      expect((err as TransportError).code).toBe('REFUSED');
      expect((err as TransportError).message).toMatch(/self-signed certificate in certificate chain|unable to verify/);
      // The same transport reaches a cluster node.
      expect(await transport.request({ id: ANY_PEER, address: nodes[2]!.address }, 'ping', {}, 5_000)).toBeDefined();
    } finally {
      await transport.close();
    }
  });
});
