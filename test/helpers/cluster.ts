// Real ringkv nodes in this process on 127.0.0.1 (native engine, uWS HTTP and
// peer endpoint, real sockets), for integration tests.
import pino from 'pino';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/index.js';
import { tempDir } from './tmp.js';
import { TEST_PEER_SECRETS } from './secret.js';

export interface TestCluster {
  nodes: RunningServer[];
  url(i: number): string;
  close(): Promise<void>;
}

const quiet = pino({ level: 'silent' });

/** Starts `count` nodes, the first as seed, and waits (bounded) until every node sees all members valid and one ring. */
export async function startCluster(count: number, extra: Partial<ServerOptions> = {}): Promise<TestCluster> {
  const dir = tempDir('ringkv-cluster-');
  const nodes: RunningServer[] = [];
  // Tests not about client auth run without tokens; the auth tests pass `auth`.
  const base = { port: 0, peerSecrets: TEST_PEER_SECRETS, auth: { required: false }, logger: quiet, node: { gossipIntervalMs: 100, requestTimeoutMs: 2_000 }, ...extra };
  nodes.push(await startServer({ ...base, nodeId: 'n1', dataDir: `${dir.path}/n1` }));
  for (let i = 2; i <= count; i++) {
    nodes.push(await startServer({ ...base, nodeId: `n${i}`, dataDir: `${dir.path}/n${i}`, seeds: [nodes[0]!.address] }));
  }
  await waitFor(() => {
    const digests = new Set(nodes.map((n) => String((n.node.status().ring as { digest: string }).digest)));
    return digests.size === 1 && nodes.every((n) => Object.values(n.node.clusterState.members).filter((m) => m.status === 'valid').length === count)
      && nodes.every((n) => new Set(n.node.clusterState.ring.owners).size === count);
  }, 15_000, 'cluster did not converge');
  const closed = new Set<RunningServer>();
  return {
    nodes,
    url: (i) => `http://${nodes[i]!.address}`,
    close: async () => {
      await Promise.all(nodes.filter((n) => !closed.has(n)).map((n) => n.close(500)));
      dir.remove();
    },
  };
}

/** Polls `check` every 50 ms until it returns true; throws after `timeoutMs`, with the last error `check` threw. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
      last = null;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms: ${what}${last ? ` (last error: ${String(last)})` : ''}`);
}
