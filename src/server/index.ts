// One ringkv node process: the native engine, the peer transport and the
// HTTP API share one uWS app and port; the node runtime ties them together.
import { mkdirSync } from 'node:fs';
import { isIP } from 'node:net';
import pino from 'pino';
import { NativeEngine } from '../engine/native/index.js';
import { DEFAULT_PARTITION_BITS, type EngineLimits } from '../engine/types.js';
import { registerApi } from '../http/api.js';
import { RingkvNode, type NodeConfig } from '../node/node.js';
import type { AntiEntropyConfig, AntiEntropyService } from '../node/anti-entropy.js';
import type { TransferOptions, TransferService } from '../node/transfer.js';
import { assertNativeUws, uWS, type TemplatedApp, type us_listen_socket } from '../transport/uws.js';
import { systemClock } from '../transport/types.js';
import { WsTransport, attachPeerEndpoint } from '../transport/ws-transport.js';
import { INSECURE_LOOPBACK_SECRETS, type PeerSecrets } from '../transport/peer-auth.js';
import { registerPeerMetrics } from './peer-metrics.js';
import { isLoopbackHost } from './peer-secrets.js';

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
  /** The cluster secret (and during a rotation the previous one): every peer connection is authenticated with it. Required unless insecureLoopback. */
  peerSecrets?: PeerSecrets;
  /** Development only: run without a secret (anyone who reaches the port is a peer). Allowed only when listening on and advertising loopback addresses. */
  insecureLoopback?: boolean;
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
}

export interface RunningServer {
  node: RingkvNode;
  /** The node's storage, for tools and tests that inspect a replica directly. */
  engine: NativeEngine;
  antiEntropy: AntiEntropyService;
  transfers: TransferService;
  port: number;
  address: string;
  /** Stops accepting, lets in-flight requests finish (up to graceMs), flushes and closes. */
  close(graceMs?: number): Promise<void>;
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  // The unofficial uWS package silently falls back to a slow emulation when its binary fails to load.
  assertNativeUws();
  const log = opts.logger ?? pino({ name: 'ringkv' });
  const host = opts.host ?? '127.0.0.1';
  // Before anything is opened: a node without a secret does not start.
  const secrets = peerSecretsFor(opts, host);
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
    secrets,
    // Peer connections leave from the address the node listens on (what a multi-homed host's
    // operator expects, and what per-address firewall rules match); a wildcard leaves it to the OS.
    localAddress: isIP(host) !== 0 && host !== '0.0.0.0' && host !== '::' ? host : undefined,
    onEvent: (e) => {
      if (e.type === 'connected' || e.type === 'disconnected') log.info({ peer: e.peer, address: e.address }, `peer ${e.type}`);
      else if (e.type === 'protocol-error') log.warn({ peer: e.peer, reason: e.reason }, 'peer protocol error');
      else if (e.type === 'auth-failure') log.warn({ peer: e.peer, side: e.side, reason: e.reason, detail: e.message }, 'peer authentication failed');
    },
  });
  const app = uWS.App();
  const endpoint = attachPeerEndpoint(app, transport);

  const { socket, port } = await listen(app, host, opts.port).catch(async (err: unknown) => {
    await engine.close();
    throw err;
  });
  const address = opts.advertise ?? `${host.includes(':') ? `[${host}]` : host}:${port}`;
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
      antiEntropy: opts.antiEntropy,
      transfers: opts.transfers,
    });
  } catch (err) {
    uWS.us_listen_socket_close(socket);
    await endpoint.close();
    await engine.close();
    throw err;
  }
  registerPeerMetrics(node.metrics.registry, () => transport.stats());
  const { antiEntropy, transfers } = node;
  // Routes go in after the node exists; requests that arrive earlier find no route.
  const inflight: { count: number; stopping?: boolean } = { count: 0 };
  registerApi(app, node, { maxValueBytes: engine.limits.maxValueBytes, maxJsonBytes: 64 * 1024, maxKeyBytes: engine.limits.maxKeyBytes }, inflight, () => ({
    transfers: transfers.status(),
  }));
  log.info({ node: opts.nodeId, address, dataDir: opts.dataDir, actor: engine.actor }, 'ringkv node listening');

  let closing: Promise<void> | null = null;
  return {
    node,
    engine,
    antiEntropy,
    transfers,
    port,
    address,
    close: (graceMs = 5_000) => {
      closing ??= (async () => {
        uWS.us_listen_socket_close(socket);
        // Keep-alive connections outlive the listen socket: what arrives on them from now on is refused (503 NODE_STOPPING).
        inflight.stopping = true;
        const deadline = Date.now() + graceMs;
        while (inflight.count > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        await node.stop();
        await endpoint.close();
        await engine.close();
        log.info({ node: opts.nodeId }, 'ringkv node stopped');
      })();
      return closing;
    },
  };
}

/** The secrets to run with: the given ones, or the insecure mode's where it is allowed; otherwise the node refuses to start. */
function peerSecretsFor(opts: ServerOptions, host: string): PeerSecrets {
  if (opts.peerSecrets !== undefined) {
    if (opts.insecureLoopback === true) throw new Error('give either a cluster secret or insecure loopback mode, not both');
    return opts.peerSecrets;
  }
  if (opts.insecureLoopback !== true) {
    throw new Error(
      'no cluster secret: give --secret-file or RINGKV_CLUSTER_SECRET_FILE / RINGKV_CLUSTER_SECRET (see docs/security.md); ' +
        '--insecure-loopback runs without one on loopback addresses only',
    );
  }
  const advertisedHost = opts.advertise === undefined ? host : opts.advertise.slice(0, opts.advertise.lastIndexOf(':'));
  if (!isLoopbackHost(host) || !isLoopbackHost(advertisedHost)) {
    throw new Error(`insecure loopback mode needs loopback listen and advertise addresses (127.0.0.0/8, ::1), not ${host} / ${advertisedHost}`);
  }
  return INSECURE_LOOPBACK_SECRETS;
}

function listen(app: TemplatedApp, host: string, port: number): Promise<{ socket: us_listen_socket; port: number }> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (socket: us_listen_socket | false) => {
      if (!socket) reject(new Error(`cannot listen on ${host}:${port}`));
      else resolve({ socket, port: uWS.us_socket_local_port(socket as never) });
    });
  });
}
