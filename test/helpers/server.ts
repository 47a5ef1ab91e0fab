// Real ringkv nodes for tests: 127.0.0.1, ephemeral ports, temporary data
// directories removed on close, silent logs, fast gossip.
import net from 'node:net';
import pino from 'pino';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/index.js';
import { ListenError } from '../../src/transport/uws.js';
import { waitFor } from './cluster.js';
import { tempDir } from './tmp.js';
import { TEST_PEER_SECRETS } from './secret.js';

export { waitFor };

export interface TestNode {
  server: RunningServer;
  address: string;
  url: string;
  close(): Promise<void>;
}

export async function startTestNode(
  nodeId: string,
  opts: Partial<Omit<ServerOptions, 'nodeId' | 'dataDir' | 'port'>> = {},
): Promise<TestNode> {
  const dir = tempDir(`ringkv-${nodeId}-`);
  let server: RunningServer;
  try {
    server = await startServer({
      nodeId,
      port: 0,
      dataDir: dir.path,
      seeds: [],
      logger: pino({ level: 'silent' }),
      // Tests not about client auth run without tokens; the auth tests pass `auth`.
      peerSecrets: TEST_PEER_SECRETS, auth: { required: false },
      ...opts,
      node: { gossipIntervalMs: 100, ...opts.node },
    });
  } catch (err) {
    dir.remove();
    throw err;
  }
  let closed: Promise<void> | null = null;
  return {
    server,
    address: server.address,
    url: `http://${server.address}`,
    close: () => (closed ??= server.close(2_000).finally(() => dir.remove())),
  };
}


interface StatusDoc {
  ring: { digest: string };
  members: Array<{ id: string; status: string; partitions: number }>;
}

/** Starts `ids[0]`, then the others seeded from it, and waits until every node sees all as valid members on one ring. */
export async function startCluster(ids: string[], opts: Partial<Omit<ServerOptions, 'nodeId' | 'dataDir' | 'port' | 'seeds'>> = {}): Promise<TestNode[]> {
  const nodes: TestNode[] = [];
  try {
    const first = await startTestNode(ids[0]!, opts);
    nodes.push(first);
    for (const id of ids.slice(1)) nodes.push(await startTestNode(id, { ...opts, seeds: [first.address] }));
    await waitFor(async () => {
      const docs = await Promise.all(nodes.map(async (n) => (await (await fetch(`${n.url}/status`, { signal: AbortSignal.timeout(2_000) })).json()) as StatusDoc));
      return docs.every(
        (d) =>
          d.members.length === ids.length &&
          d.members.every((m) => m.status === 'valid' && m.partitions > 0) &&
          d.ring.digest === docs[0]!.ring.digest,
      );
    }, 15_000, `${ids.length} valid members on every node`);
    return nodes;
  } catch (err) {
    await Promise.allSettled(nodes.map((n) => n.close()));
    throw err;
  }
}

/** A 127.0.0.1 port nothing listens on (bound once, then released). */
export function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts a node that will restart on its port, on a port the kernel does not
 * hand out (below the ephemeral range, 32768..60999 here): a port-0 port
 * freed by a node's stop can be taken meanwhile by any process's outgoing
 * connection, and the restart then fails "address in use" (the node listens
 * exclusively). A random port in 20000..31999; another try if it is taken.
 */
export async function startOnStablePort<T>(start: (port: number) => Promise<T>): Promise<T> {
  let last: unknown = null;
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      return await start(randomStablePort());
    } catch (err) {
      if (!(err instanceof ListenError)) throw err;
      last = err;
    }
  }
  throw last;
}

/** A random port in 20000..31999, below the kernel's ephemeral range (32768..60999 here): see startOnStablePort. */
export function randomStablePort(): number {
  return 20_000 + Math.floor(Math.random() * 12_000);
}

/** A port in 20000..31999 nothing listens on now, for a node started as a process (which cannot retry as startOnStablePort does). */
export async function stablePort(): Promise<number> {
  return (await stablePorts(1))[0]!;
}

/** `count` distinct ports in 20000..31999 that nothing listens on now. */
export async function stablePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let attempt = 0; attempt < 50 * count && ports.size < count; attempt++) {
    const port = randomStablePort();
    if (!ports.has(port) && (await isFree(port))) ports.add(port);
  }
  if (ports.size < count) throw new Error(`not ${count} free ports in 20000..31999`);
  return [...ports];
}

/** The first of `count` consecutive ports in 20000..31999 that nothing listens on now (`ringkv dev --base-port`). */
export async function stablePortRun(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * (12_000 - count));
    let free = true;
    for (let i = 0; i < count && free; i++) free = await isFree(base + i);
    if (free) return base;
  }
  throw new Error(`no ${count} consecutive free ports in 20000..31999`);
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
