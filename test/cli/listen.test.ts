// Listening safely (issue 11, item 6), with real `ringkv start` processes:
// a second node on an address in use exits instead of sharing the port, a
// wildcard listen needs --advertise, and a node its cluster refuses (wrong
// cluster name, duplicate id, another cluster secret) exits after a bounded
// number of join tries.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { WsTransport, listenPeerServer } from '../../src/transport/index.js';
import { ListenError } from '../../src/transport/uws.js';
import { waitFor } from '../helpers/cluster.js';
import { ProcessGroup, exitWithin, readAdminToken, stopProcess, untilListening, type TrackedProcess } from '../helpers/processes.js';
import { TEST_PEER_SECRETS, writeTestSecretFile } from '../helpers/secret.js';

const EXIT_CONFIG_REFUSED = 78;
const processes = new ProcessGroup();
afterAll(() => processes.close(0));

interface Started extends TrackedProcess {
  /** Its data directory (a node that made a cluster writes its first admin token there). */
  dataDir: string;
}

/** Spawns `ringkv start` with `args` (fast gossip is the CLI's default 1 s); `secretText` replaces the test cluster's secret. */
function start(args: string[], secretText?: string): Started {
  const dir = processes.tempDir('ringkv-listen-');
  const secretFile = writeTestSecretFile(dir.path);
  if (secretText !== undefined) writeFileSync(secretFile, `${secretText}\n`, { mode: 0o600 });
  const p = processes.startNode(['--data-dir', dir.path, '--secret-file', secretFile, '--log-level', 'info', ...args]);
  return { ...p, dataDir: dir.path };
}

/** SIGTERM; the node must exit within 15 s of it. */
async function stop(s: Started): Promise<void> {
  expect(await stopProcess(s, 15_000), `not stopped by SIGTERM within 15 s:\n${s.output()}`).not.toBe('killed');
}

/** The bearer header of the cluster `seed` made (its first admin token; /status needs the read role). */
function authOf(seed: Started): Record<string, string> {
  return { authorization: `Bearer ${readAdminToken(seed.dataDir)}` };
}

async function statusNode(address: string, auth: Record<string, string>): Promise<string> {
  // A new connection each time: with a shared port the kernel would spread them over both processes.
  const res = await fetch(`http://${address}/status`, { headers: { connection: 'close', ...auth } });
  return ((await res.json()) as { node: string }).node;
}

describe('ringkv start: listening safely', () => {
  it('a second node on an address in use exits 1 with the reason; the first keeps the port alone', async () => {
    const first = start(['--node-id', 'first', '--listen', '127.0.0.1:0']);
    try {
      const address = await untilListening(first);
      const second = start(['--node-id', 'second', '--listen', address]);
      expect(await exitWithin(second, 20_000)).toBe(1);
      expect(second.output()).toContain(`cannot listen on ${address}: address already in use`);
      expect(second.output()).not.toContain('ringkv node listening');
      // Every connection reaches the first node (with SO_REUSEPORT some went to the second).
      const answers = [];
      for (let i = 0; i < 12; i++) answers.push(await statusNode(address, authOf(first)));
      expect(new Set(answers)).toEqual(new Set(['first']));
    } finally {
      await stop(first);
    }
  }, 60_000);

  it('the peer endpoint alone (listenPeerServer) refuses a port in use too', async () => {
    const a = new WsTransport({ nodeId: 'a', cluster: 'c', secrets: TEST_PEER_SECRETS });
    const b = new WsTransport({ nodeId: 'b', cluster: 'c', secrets: TEST_PEER_SECRETS });
    const srv = await listenPeerServer(a);
    try {
      const err = await listenPeerServer(b, { port: srv.port }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ListenError);
      expect((err as ListenError).errno).toBe('EADDRINUSE');
    } finally {
      await srv.close();
      await a.close();
      await b.close();
    }
  });

  it('listening on a wildcard address without --advertise, or advertising one, exits 78 and names --advertise', async () => {
    const wildcard = start(['--listen', '0.0.0.0:0']);
    expect(await exitWithin(wildcard, 20_000)).toBe(EXIT_CONFIG_REFUSED);
    expect(wildcard.output()).toContain('listening on 0.0.0.0:0 (every interface) needs --advertise');
    expect(wildcard.output()).not.toContain('ringkv node listening');
    const advertised = start(['--listen', '127.0.0.1:0', '--advertise', '0.0.0.0:7405']);
    expect(await exitWithin(advertised, 20_000)).toBe(EXIT_CONFIG_REFUSED);
    expect(advertised.output()).toContain('cannot advertise 0.0.0.0:7405');
  }, 60_000);

  it('a node of another cluster name stops after a bounded number of refused joins, exit 78, and the cluster never lists it', async () => {
    const seed = start(['--node-id', 'n1', '--cluster', 'alpha', '--listen', '127.0.0.1:0']);
    try {
      const seedAddress = await untilListening(seed);
      const stranger = start(['--node-id', 'x1', '--cluster', 'beta', '--listen', '127.0.0.1:0', '--seeds', seedAddress]);
      // 5 refusals, one per 1 s gossip round: well within 30 s.
      expect(await exitWithin(stranger, 30_000)).toBe(EXIT_CONFIG_REFUSED);
      expect(stranger.output()).toMatch(/the cluster refused this node: seed \S+ refused this node 5 times: .*wrong cluster 'beta'/);
      const status = (await (await fetch(`http://${seedAddress}/status`, { headers: authOf(seed) })).json()) as { members: Array<{ id: string }> };
      expect(status.members.map((m) => m.id)).toEqual(['n1']);
    } finally {
      await stop(seed);
    }
  }, 60_000);

  it('a node holding another cluster secret stops after a bounded number of refused joins, exit 78, and the cluster never lists it', async () => {
    const seed = start(['--node-id', 'n1', '--listen', '127.0.0.1:0']);
    try {
      const seedAddress = await untilListening(seed);
      const outsider = start(['--node-id', 'x1', '--listen', '127.0.0.1:0', '--seeds', seedAddress], randomBytes(32).toString('hex'));
      // The seed answers the hello with proofs under its secret; the outsider finds they do not check out: a refusal, as it will be every time.
      expect(await exitWithin(outsider, 30_000)).toBe(EXIT_CONFIG_REFUSED);
      expect(outsider.output()).toMatch(/the cluster refused this node: seed \S+ refused this node 5 times: .*did not prove it holds the cluster secret/);
      const status = (await (await fetch(`http://${seedAddress}/status`, { headers: authOf(seed) })).json()) as { members: Array<{ id: string }> };
      expect(status.members.map((m) => m.id)).toEqual(['n1']);
      // The seed still serves (and counted the outsider's abandoned handshakes).
      const metrics = await (await fetch(`http://${seedAddress}/metrics`, { headers: authOf(seed) })).text();
      expect(metrics).toMatch(/ringkv_peer_auth_failures_total\{side="inbound",reason="abandoned"[^}]*\} [1-9]/);
    } finally {
      await stop(seed);
    }
  }, 60_000);

  it('a node whose id is already a member at another address stops with the reason, exit 78; the member keeps its address', async () => {
    const n1 = start(['--node-id', 'n1', '--listen', '127.0.0.1:0']);
    let n2: Started | undefined;
    try {
      const seedAddress = await untilListening(n1);
      n2 = start(['--node-id', 'n2', '--listen', '127.0.0.1:0', '--seeds', seedAddress]);
      const n2Address = await untilListening(n2);
      await waitFor(async () => {
        const status = (await (await fetch(`http://${seedAddress}/status`, { headers: authOf(n1) })).json()) as { members: Array<{ id: string }> };
        return status.members.length === 2;
      }, 20_000, 'n2 joins');
      const impostor = start(['--node-id', 'n2', '--listen', '127.0.0.1:0', '--seeds', seedAddress]);
      expect(await exitWithin(impostor, 30_000)).toBe(EXIT_CONFIG_REFUSED);
      expect(impostor.output()).toContain(`n2 is already a member at ${n2Address}`);
      const status = (await (await fetch(`http://${seedAddress}/status`, { headers: authOf(n1) })).json()) as { members: Array<{ id: string; address: string }> };
      expect(status.members.find((m) => m.id === 'n2')?.address).toBe(n2Address);
    } finally {
      if (n2) await stop(n2);
      await stop(n1);
    }
  }, 90_000);
});
