// `ringkv start`: one node in this process, with structured logs and a clean
// shutdown on SIGINT/SIGTERM (stop accepting, finish in-flight requests,
// flush, close).
import pino from 'pino';
import { startServer } from '../server/index.js';

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
}

export async function runNode(o: RunNodeOptions): Promise<void> {
  const logger = pino({ name: 'ringkv', level: o.logLevel });
  const [host, port] = splitHostPort(o.listen);
  const server = await startServer({
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
