// One ringkv node process: the native engine, the peer transport and the
// HTTP API share one uWS app and port; the node runtime ties them together.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { isIP, isIPv4, isIPv6 } from 'node:net';
import pino from 'pino';
import { NativeEngine } from '../engine/native/index.js';
import { DEFAULT_PARTITION_BITS, type EngineLimits } from '../engine/types.js';
import { TOKEN_SECRET_BYTES, issueToken } from '../core/tokens.js';
import { registerApi } from '../http/api.js';
import type { LogLevelControl } from '../http/admin-routes.js';
import type { AuthOptions } from '../http/auth.js';
import { RingkvNode, type NodeConfig } from '../node/node.js';
import { Drainer, type DrainReport } from '../node/drain.js';
import type { AntiEntropyConfig, AntiEntropyService } from '../node/anti-entropy.js';
import type { TransferOptions, TransferService } from '../node/transfer.js';
import type { ListingOptions } from '../node/listing.js';
import { assertNativeUws, formatHostPort, listenExclusive, uWS, type TemplatedApp } from '../transport/uws.js';
import { systemClock } from '../transport/types.js';
import { WsTransport, attachPeerEndpoint } from '../transport/ws-transport.js';
import { INSECURE_LOOPBACK_SECRETS, type PeerSecrets } from '../transport/peer-auth.js';
import { registerPeerMetrics } from './peer-metrics.js';
import { seedResolver } from './seeds.js';
import { cachedDirectoryBytes } from './disk-usage.js';
import { ForegroundLoad } from '../node/foreground.js';
import { NodeMetrics, registerStorageMetrics } from '../node/metrics.js';
import { StorageCensusService, type StorageCensusOptions } from '../node/storage-census.js';
import { TransferProgressTracker } from '../node/transfer-progress.js';
import { nonZeroRoots, treeMemoryBytes } from '../core/tree-memory.js';
import { isLoopbackHost } from './peer-secrets.js';
import { ADMIN_TOKEN_FILE, writeTokenFile } from './admin-token.js';
import { TlsConfigError, loadTls, type ServerTlsFiles } from './tls.js';

export type { ServerTlsFiles } from './tls.js';

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
  /** Join as the replacement of this dead member: it takes exactly that member's partitions (docs/cluster.md "Replace"). */
  replaces?: string;
  zone?: string;
  cacheBytes?: number;
  limits?: Partial<EngineLimits>;
  node?: Partial<NodeConfig>;
  antiEntropy?: Partial<AntiEntropyConfig>;
  transfers?: Partial<TransferOptions>;
  /** The background count of objects and tombstones for /metrics (src/node/storage-census.ts). */
  census?: Partial<StorageCensusOptions>;
  /** prom-client's default process and runtime metrics on /metrics (default true). */
  processMetrics?: boolean;
  /** Key and bucket listings (src/node/listing.ts). */
  listing?: Partial<ListingOptions>;
  logger?: pino.Logger;
  /**
   * Client token checks on HTTP (default `{ required: true }`; docs/security.md).
   * Off only in the explicit insecure loopback development mode.
   */
  auth?: AuthOptions;
  /** Serve HTTPS and wss:// peers (and connect to peers over wss://) with these files; plain HTTP without. */
  tls?: ServerTlsFiles;
  /**
   * The node cannot go on as configured (the cluster refused it
   * NodeConfig.maxJoinRefusals times): it has stopped itself (close()) and
   * this is called with the reason. `ringkv start` exits non-zero.
   */
  onFatal?: (err: StartRefusedError) => void;
  /** A drain with `exit` finished and the server has closed (`ringkv start` exits 0). */
  onDrainedExit?: (report: DrainReport) => void;
}

/** A configuration the node or its cluster refuses (not a transient failure): a supervisor should not restart it as is. */
export class StartRefusedError extends Error {
  override readonly name = 'StartRefusedError';
}

/** 0.0.0.0, ::, [::] and the other spellings of "every interface". */
export function isWildcardHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (bare === '' || bare === '*') return true;
  if (isIPv4(bare)) return bare === '0.0.0.0';
  return isIPv6(bare) && new URL(`http://[${bare}]/`).hostname === '[::]';
}

/** Where the first node of a new cluster writes the cluster's first admin token (in its data directory, mode 0600). */
export { ADMIN_TOKEN_FILE };

export interface RunningServer {
  node: RingkvNode;
  /** The node's storage, for tools and tests that inspect a replica directly. */
  engine: NativeEngine;
  antiEntropy: AntiEntropyService;
  transfers: TransferService;
  /** The node's drain (docs/cluster.md "Drain"). */
  drainer: Drainer;
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
  // Before anything is opened: a node without a secret does not start.
  const secrets = peerSecretsFor(opts, host);
  // Peers and clients would be told to reach this node at 0.0.0.0, which means themselves (issue 11).
  if (opts.advertise === undefined && isWildcardHost(host)) {
    throw new StartRefusedError(`listening on ${formatHostPort(host, opts.port)} (every interface) needs --advertise <host:port>: the address peers and clients reach this node at`);
  }
  if (opts.advertise !== undefined && isWildcardHost(opts.advertise.slice(0, opts.advertise.lastIndexOf(':')))) {
    throw new StartRefusedError(`cannot advertise ${opts.advertise}: a wildcard address names no host; give the address peers and clients reach this node at`);
  }
  let tls: ReturnType<typeof loadTls> | undefined;
  try {
    tls = opts.tls ? loadTls(opts.tls) : undefined;
  } catch (err) {
    if (err instanceof TlsConfigError) throw new StartRefusedError(err.message);
    throw err;
  }
  if (!tls && !isLoopbackHost(host)) {
    log.warn({ host }, 'serving plain HTTP and peer traffic on a non-loopback address: give --tls-key and --tls-cert (docs/security.md, "TLS")');
  }
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
    tls: tls?.peer,
    onEvent: (e) => {
      if (e.type === 'connected' || e.type === 'disconnected') log.info({ peer: e.peer, address: e.address }, `peer ${e.type}`);
      else if (e.type === 'protocol-error') log.warn({ peer: e.peer, reason: e.reason }, 'peer protocol error');
      else if (e.type === 'auth-failure') log.warn({ peer: e.peer, side: e.side, reason: e.reason, detail: e.message }, 'peer authentication failed');
    },
  });
  let app: TemplatedApp;
  try {
    app = tls ? uWS.SSLApp(tls.app) : uWS.App();
  } catch (err) {
    await engine.close();
    // loadTls checked the files; what is left is what BoringSSL alone refuses.
    throw new StartRefusedError(`uWebSockets.js refused the TLS files (${opts.tls!.keyFile}, ${opts.tls!.certFile}): ${(err as Error).message}`);
  }
  const endpoint = attachPeerEndpoint(app, transport);

  const { socket, port } = await listenExclusive(app, host, opts.port).catch(async (err: unknown) => {
    await engine.close();
    throw err;
  });
  const address = opts.advertise ?? formatHostPort(host, port);
  let node: RingkvNode;
  // Set once the server exists: a refusal can only come from a gossip round, after start.
  let refused: (reason: string) => void = () => undefined;
  try {
    node = await RingkvNode.start({
      id: opts.nodeId,
      address,
      zone: opts.zone,
      clusterName,
      partitionBits: opts.partitionBits ?? DEFAULT_PARTITION_BITS,
      seeds: opts.seeds ?? [],
      // Plain peers: names resolved at each attempt, one seed per address. TLS: dialled by name, as certificates name hosts.
      seedAddresses: tls ? undefined : seedResolver(opts.seeds ?? [], [address, formatHostPort(host, port)]),
      ...(opts.replaces === undefined ? {} : { replaces: opts.replaces }),
      engine,
      transport,
      clock: systemClock,
      random: Math.random,
      config: opts.node,
      log: (level, msg, fields) => log[level](fields ?? {}, msg),
      metrics: new NodeMetrics(opts.nodeId, { defaultMetrics: opts.processMetrics ?? true }),
      antiEntropy: opts.antiEntropy,
      transfers: opts.transfers,
      listing: opts.listing,
      onJoinRefused: (reason) => refused(reason),
    });
  } catch (err) {
    uWS.us_listen_socket_close(socket);
    await endpoint.close();
    await engine.close();
    throw err;
  }
  registerPeerMetrics(node.metrics.registry, () => transport.stats());
  // The insecure loopback development mode is insecure on both doors: no cluster secret, no client tokens.
  const auth = opts.auth ?? { required: opts.insecureLoopback !== true };
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
  const { antiEntropy, transfers } = node;
  // Routes go in after the node exists; requests that arrive earlier find no route.
  const inflight: { count: number; stopping?: boolean } = { count: 0 };
  // Storage figures and transfer progress for /metrics and /status (docs/metrics.md).
  const foreground = new ForegroundLoad(node, { yieldAboveMs: 100, yieldMinSamples: 20 });
  const census = new StorageCensusService(engine, systemClock, () => foreground.busy(), opts.census);
  registerStorageMetrics(node.metrics.registry, {
    census: () => census.totals(),
    diskBytes: cachedDirectoryBytes(opts.dataDir),
    treeBytes: () => treeMemoryBytes(engine, nonZeroRoots(engine.treeRoots())),
  });
  const progress = new TransferProgressTracker({ transfers, recordsIn: (p) => census.recordsIn(p) }, systemClock);
  const logLevel: LogLevelControl = {
    level: () => log.level,
    levels: () => [...Object.keys(log.levels.values), 'silent'],
    setLevel: (level) => {
      // Logged under the level in force so far: the one the operator was reading.
      log.info({ from: log.level, to: level }, 'log level changed');
      log.level = level;
    },
  };
  const drainer = new Drainer({
    id: node.id,
    clock: systemClock,
    setDraining: (on) => node.setDraining(on),
    activeRequests: () => node.activeRequests,
    deliverHints: () => node.deliverHints(),
    hintsPending: () => node.hintsPending,
    transfersPending: () => transfers.status().length,
    transfersToReachable: () => transfers.status().filter((t) => !node.isSuspected(t.to)).length,
    flush: () => engine.flush(),
  });
  const drainHooks = {
    drain: async ({ exit, timeoutMs }: { exit: boolean; timeoutMs: number }) => {
      const report = await drainer.drain(timeoutMs);
      log.info({ ...report, exit }, 'node drained');
      // After the answer is written (send runs in the microtasks after this handler resolves).
      if (exit) setTimeout(() => void running.close().then(() => opts.onDrainedExit?.(report)), 20);
      return report;
    },
    cancelDrain: () => drainer.cancel(),
  };
  registerApi(app, node, { maxValueBytes: engine.limits.maxValueBytes, maxJsonBytes: 64 * 1024, maxKeyBytes: engine.limits.maxKeyBytes }, inflight, () => ({
    transfers: transfers.status(),
    transferSummary: progress.summary(),
    drain: drainer.status(),
  }), auth, logLevel, drainHooks);
  census.start();
  progress.start();
  log.info(
    { node: opts.nodeId, address, dataDir: opts.dataDir, actor: engine.actor, tls: tls ? { subject: tls.subject, validTo: tls.validTo, clientCa: opts.tls?.caFile !== undefined } : false },
    'ringkv node listening',
  );

  let closing: Promise<void> | null = null;
  refused = (reason) => {
    const err = new StartRefusedError(`the cluster refused this node: ${reason}`);
    log.error({ node: opts.nodeId, err: err.message }, 'stopping: the cluster refused this node');
    void running.close().finally(() => opts.onFatal?.(err));
  };
  const running: RunningServer = {
    node,
    engine,
    antiEntropy,
    transfers,
    drainer,
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
        census.stop();
        progress.stop();
        await node.stop();
        await endpoint.close();
        await engine.close();
        log.info({ node: opts.nodeId }, 'ringkv node stopped');
      })();
      return closing;
    },
  };
  return running;
}

/** The secrets to run with: the given ones, or the insecure mode's where it is allowed; otherwise the node refuses to start. */
function peerSecretsFor(opts: ServerOptions, host: string): PeerSecrets {
  if (opts.peerSecrets !== undefined) {
    if (opts.insecureLoopback === true) throw new StartRefusedError('give either a cluster secret or insecure loopback mode, not both');
    return opts.peerSecrets;
  }
  if (opts.insecureLoopback !== true) {
    throw new StartRefusedError(
      'no cluster secret: give --secret-file or RINGKV_CLUSTER_SECRET_FILE / RINGKV_CLUSTER_SECRET (see docs/security.md); ' +
        '--insecure-loopback runs without one on loopback addresses only',
    );
  }
  const advertisedHost = opts.advertise === undefined ? host : opts.advertise.slice(0, opts.advertise.lastIndexOf(':'));
  if (!isLoopbackHost(host) || !isLoopbackHost(advertisedHost)) {
    throw new StartRefusedError(`insecure loopback mode needs loopback listen and advertise addresses (127.0.0.0/8, ::1), not ${host} / ${advertisedHost}`);
  }
  return INSECURE_LOOPBACK_SECRETS;
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
    writeTokenFile(file, issued.token);
    return { table: issued.table, result: undefined };
  });
  return file;
}
