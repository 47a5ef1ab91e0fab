// One ringkv node process: the native engine, the peer transport and the
// HTTP API share one uWS app and port; the node runtime ties them together.
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isIP } from 'node:net';
import pino from 'pino';
import { NativeEngine } from '../engine/native/index.js';
import { DEFAULT_PARTITION_BITS, type EngineLimits } from '../engine/types.js';
import { TOKEN_SECRET_BYTES, issueToken } from '../core/tokens.js';
import { registerApi } from '../http/api.js';
import type { AuthOptions } from '../http/auth.js';
import { RingkvNode, type NodeConfig } from '../node/node.js';
import { startAntiEntropy, type AntiEntropyConfig, type AntiEntropyService } from '../node/anti-entropy.js';
import { TransferService, type TransferOptions } from '../node/transfer.js';
import { assertNativeUws, uWS, type TemplatedApp, type us_listen_socket } from '../transport/uws.js';
import { systemClock } from '../transport/types.js';
import { WsTransport, attachPeerEndpoint } from '../transport/ws-transport.js';
import { registerPeerMetrics } from './peer-metrics.js';

export interface ServerOptions {
  nodeId: string;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Port for HTTP and peers; 0 picks a free one. */
  port: number;
  /** Address peers and clients use to reach this node (default host:port). */
  advertise?: string;
  dataDir: string;
  clusterName?: string;
  /** log2 Q for a new cluster (default 6). */
  partitionBits?: number;
  seeds?: string[];
  zone?: string;
  cacheBytes?: number;
  limits?: Partial<EngineLimits>;
  node?: Partial<NodeConfig>;
  antiEntropy?: Partial<AntiEntropyConfig>;
  transfers?: Partial<TransferOptions>;
  logger?: pino.Logger;
  /**
   * Client token checks on HTTP (default `{ required: true }`; docs/security.md).
   * Off only in the explicit insecure loopback development mode.
   */
  auth?: AuthOptions;
}

/** Where the first node of a new cluster writes the cluster's first admin token (in its data directory, mode 0600). */
export const ADMIN_TOKEN_FILE = 'admin.token';

export interface RunningServer {
  node: RingkvNode;
  /** The node's storage, for tools and tests that inspect a replica directly. */
  engine: NativeEngine;
  antiEntropy: AntiEntropyService;
  transfers: TransferService;
  port: number;
  address: string;
  /** The file this start wrote the cluster's first admin token to, or null (not a new cluster, or tokens off). */
  adminTokenFile: string | null;
  /** Stops accepting, lets in-flight requests finish (up to graceMs), flushes and closes. */
  close(graceMs?: number): Promise<void>;
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  // The unofficial uWS package silently falls back to a slow emulation when its binary fails to load.
  assertNativeUws();
  const log = opts.logger ?? pino({ name: 'ringkv' });
  const host = opts.host ?? '127.0.0.1';
  mkdirSync(opts.dataDir, { recursive: true });
  const engine = await NativeEngine.open({
    path: opts.dataDir,
    nodeId: opts.nodeId,
    partitionBits: opts.partitionBits ?? DEFAULT_PARTITION_BITS,
    cacheBytes: opts.cacheBytes,
    limits: opts.limits,
  });
  const clusterName = opts.clusterName ?? 'ringkv';
  const transport = new WsTransport({
    nodeId: opts.nodeId,
    cluster: clusterName,
    // Peer connections leave from the address the node listens on (what a multi-homed host's
    // operator expects, and what per-address firewall rules match); a wildcard leaves it to the OS.
    localAddress: isIP(host) !== 0 && host !== '0.0.0.0' && host !== '::' ? host : undefined,
    onEvent: (e) => {
      if (e.type === 'connected' || e.type === 'disconnected') log.info({ peer: e.peer, address: e.address }, `peer ${e.type}`);
      else if (e.type === 'protocol-error') log.warn({ peer: e.peer, reason: e.reason }, 'peer protocol error');
    },
  });
  const app = uWS.App();
  const endpoint = attachPeerEndpoint(app, transport);

  const { socket, port } = await listen(app, host, opts.port).catch(async (err: unknown) => {
    await engine.close();
    throw err;
  });
  const address = opts.advertise ?? `${host}:${port}`;
  let node: RingkvNode;
  try {
    node = await RingkvNode.start({
      id: opts.nodeId,
      address,
      zone: opts.zone,
      clusterName,
      partitionBits: opts.partitionBits ?? DEFAULT_PARTITION_BITS,
      seeds: opts.seeds ?? [],
      engine,
      transport,
      clock: systemClock,
      random: Math.random,
      config: opts.node,
      log: (level, msg, fields) => log[level](fields ?? {}, msg),
    });
  } catch (err) {
    uWS.us_listen_socket_close(socket);
    await endpoint.close();
    await engine.close();
    throw err;
  }
  registerPeerMetrics(node.metrics.registry, () => transport.stats());
  const auth = opts.auth ?? { required: true };
  let adminTokenFile: string | null;
  try {
    adminTokenFile = auth.required ? await bootstrapAdminToken(node, opts) : null;
  } catch (err) {
    uWS.us_listen_socket_close(socket);
    await node.stop();
    await endpoint.close();
    await engine.close();
    throw err;
  }
  if (adminTokenFile !== null) {
    log.warn({ file: adminTokenFile }, 'new cluster: its first admin token is in this file (mode 0600), and nowhere else; `ringkv token create` makes more');
  }
  // Background work beside the node: anti-entropy exchanges and partition transfers.
  const antiEntropy = startAntiEntropy(node, { log: (level, msg, fields) => log[level](fields ?? {}, msg), ...opts.antiEntropy });
  const transfers = new TransferService(node, opts.transfers);
  await transfers.start();
  // Routes go in after the node exists; requests that arrive earlier find no route.
  const inflight: { count: number; stopping?: boolean } = { count: 0 };
  registerApi(app, node, { maxValueBytes: engine.limits.maxValueBytes, maxJsonBytes: 64 * 1024, maxKeyBytes: engine.limits.maxKeyBytes }, inflight, () => ({
    transfers: transfers.status(),
  }), auth);
  log.info({ node: opts.nodeId, address, dataDir: opts.dataDir, actor: engine.actor }, 'ringkv node listening');

  let closing: Promise<void> | null = null;
  return {
    node,
    engine,
    antiEntropy,
    transfers,
    port,
    address,
    adminTokenFile,
    close: (graceMs = 5_000) => {
      closing ??= (async () => {
        uWS.us_listen_socket_close(socket);
        // Keep-alive connections outlive the listen socket: what arrives on them from now on is refused (503 NODE_STOPPING).
        inflight.stopping = true;
        const deadline = Date.now() + graceMs;
        while (inflight.count > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        antiEntropy.stop();
        transfers.stop();
        await node.stop();
        await endpoint.close();
        await engine.close();
        log.info({ node: opts.nodeId }, 'ringkv node stopped');
      })();
      return closing;
    },
  };
}

/**
 * The first admin token of a cluster, made by the node that creates it (no
 * seeds) while the cluster holds no token at all (a new cluster, or one run
 * without tokens until now): written to the data directory, readable by the
 * owner only, before the cluster state that accepts it is adopted.
 */
async function bootstrapAdminToken(node: RingkvNode, opts: ServerOptions): Promise<string | null> {
  const seeds = (opts.seeds ?? []).filter((s) => s !== node.clusterState.members[node.id]?.address);
  if (seeds.length > 0 || Object.keys(node.clusterState.tokens ?? {}).length > 0) return null;
  const file = join(opts.dataDir, ADMIN_TOKEN_FILE);
  await node.changeTokens((table, nowMs) => {
    const issued = issueToken(table, { role: 'admin', label: 'bootstrap' }, randomBytes(TOKEN_SECRET_BYTES), nowMs);
    // A new file, owner-only from its first byte, then renamed over any older one (which keeps its own mode if written in place).
    const fresh = `${file}.${process.pid}.new`;
    rmSync(fresh, { force: true });
    writeFileSync(fresh, `${issued.token}\n`, { mode: 0o600, flag: 'wx' });
    renameSync(fresh, file);
    return { table: issued.table, result: undefined };
  });
  return file;
}

function listen(app: TemplatedApp, host: string, port: number): Promise<{ socket: us_listen_socket; port: number }> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (socket: us_listen_socket | false) => {
      if (!socket) reject(new Error(`cannot listen on ${host}:${port}`));
      else resolve({ socket, port: uWS.us_socket_local_port(socket as never) });
    });
  });
}
