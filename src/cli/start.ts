// `ringkv start`: one node in this process, with structured logs and a clean
// shutdown on SIGINT/SIGTERM (stop accepting, finish in-flight requests,
// flush, close).
import pino from 'pino';
import { StartRefusedError, startServer, type RunningServer, type ServerTlsFiles } from '../server/index.js';
import { ListenError } from '../transport/uws.js';
import { PREVIOUS_SECRET_ENV, SECRET_ENV, loadPeerSecrets, secretFileIsShared } from '../server/peer-secrets.js';

/**
 * Exit codes of `ringkv start` that a supervisor can tell apart: 1 for a
 * failure that may pass (the address is in use), EX_CONFIG (78, sysexits.h)
 * for a configuration this node or its cluster refuses (no usable cluster
 * secret, a wildcard address without --advertise, a wrong cluster name, a duplicate node id): restarting
 * it unchanged cannot help (systemd: RestartPreventExitStatus=78).
 */
export const EXIT_START_FAILED = 1;
export const EXIT_CONFIG_REFUSED = 78;

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
  tls?: ServerTlsFiles;
  /** Join as the replacement of this dead member (docs/cluster.md "Replace"). */
  replaces?: string;
  /** Members that left are dropped from the member list this long after (s; -1 keeps them; default 24 h). */
  departedMemberExpiryS?: number;
}

export async function runNode(o: RunNodeOptions): Promise<void> {
  const logger = pino({ name: 'ringkv', level: o.logLevel });
  const [host, port] = splitHostPort(o.listen);
  const fatal = (err: unknown): void => {
    // The reason goes to stderr as one line (and to the log): a supervisor shows it as is.
    const message = err instanceof Error ? err.message : String(err);
    logger.fatal({ err: message }, 'ringkv node cannot run');
    process.stderr.write(`ringkv: ${message}\n`);
    process.exit(err instanceof StartRefusedError ? EXIT_CONFIG_REFUSED : EXIT_START_FAILED);
  };
  let peerSecrets;
  try {
    peerSecrets = loadPeerSecrets({ secretFile: o.secretFile, previousSecretFile: o.previousSecretFile }) ?? undefined;
  } catch (err) {
    fatal(new StartRefusedError(`cannot load the cluster secret: ${(err as Error).message}`));
    return;
  }
  // Not left in the environment for child processes or crash reports.
  delete process.env[SECRET_ENV];
  delete process.env[PREVIOUS_SECRET_ENV];
  for (const file of [o.secretFile ?? process.env.RINGKV_CLUSTER_SECRET_FILE, o.previousSecretFile ?? process.env.RINGKV_CLUSTER_PREVIOUS_SECRET_FILE]) {
    if (file && secretFileIsShared(file)) logger.warn({ file }, 'cluster secret file is readable by other users (chmod 600 it)');
  }
  let server: RunningServer;
  try {
    server = await startServer({
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
      tls: o.tls,
      ...(o.replaces === undefined ? {} : { replaces: o.replaces }),
      ...(o.departedMemberExpiryS === undefined ? {} : { node: { departedMemberExpiryMs: o.departedMemberExpiryS < 0 ? -1 : o.departedMemberExpiryS * 1000 } }),
      onFatal: fatal,
      // `ringkv drain --exit`: drained and closed; the supervisor restarts it (exit 0, as a clean stop).
      onDrainedExit: () => {
        logger.info('drained; exiting');
        process.exit(0);
      },
    });
  } catch (err) {
    if (err instanceof StartRefusedError || err instanceof ListenError) fatal(err);
    throw err;
  }
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
