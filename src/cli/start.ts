// `ringkv start`: one node in this process, with structured logs and a clean
// shutdown on SIGINT/SIGTERM (stop accepting, finish in-flight requests,
// flush, close).
import pino from 'pino';
import { startServer } from '../server/index.js';
import { PREVIOUS_SECRET_ENV, SECRET_ENV, loadPeerSecrets, secretFileIsShared } from '../server/peer-secrets.js';

export interface RunNodeOptions {
  nodeId: string;
  listen: string;
  advertise?: string;
  dataDir: string;
  seeds: string[];
  zone?: string;
  cluster: string;
  partitionBits: number;
  cacheBytes: number;
  logLevel: string;
  secretFile?: string;
  previousSecretFile?: string;
  insecureLoopback?: boolean;
}

export async function runNode(o: RunNodeOptions): Promise<void> {
  const logger = pino({ name: 'ringkv', level: o.logLevel });
  const [host, port] = splitHostPort(o.listen);
  let peerSecrets;
  try {
    peerSecrets = loadPeerSecrets({ secretFile: o.secretFile, previousSecretFile: o.previousSecretFile }) ?? undefined;
  } catch (err) {
    logger.fatal({ error: (err as Error).message }, 'cannot load the cluster secret');
    process.exit(2);
  }
  // Not left in the environment for child processes or crash reports.
  delete process.env[SECRET_ENV];
  delete process.env[PREVIOUS_SECRET_ENV];
  for (const file of [o.secretFile ?? process.env.RINGKV_CLUSTER_SECRET_FILE, o.previousSecretFile ?? process.env.RINGKV_CLUSTER_PREVIOUS_SECRET_FILE]) {
    if (file && secretFileIsShared(file)) logger.warn({ file }, 'cluster secret file is readable by other users (chmod 600 it)');
  }
  const server = await startServer({
    peerSecrets,
    insecureLoopback: o.insecureLoopback,
    nodeId: o.nodeId,
    host,
    port,
    advertise: o.advertise,
    dataDir: o.dataDir,
    clusterName: o.cluster,
    partitionBits: o.partitionBits,
    seeds: o.seeds,
    zone: o.zone,
    cacheBytes: o.cacheBytes,
    logger,
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // Started by `ringkv dev`: stop with the parent, however it ended.
  if (process.send) process.on('disconnect', () => stop('parent exited'));
}

export function splitHostPort(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at), Number(address.slice(at + 1))];
}
