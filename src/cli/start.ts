// `ringkv start`: one node in this process, with structured logs and a clean
// shutdown on SIGINT/SIGTERM (stop accepting, finish in-flight requests,
// flush, close).
import type { Command } from 'commander';
import pino from 'pino';
import { addStartFlags } from '../config/flags.js';
import { ConfigError, resolveStartConfig, type ResolvedStartConfig, type StartConfigSources } from '../config/load.js';
import { CONFIG_FILE_ENV, type StartConfig } from '../config/options.js';
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

/**
 * `ringkv start`: its flags are generated from the option schema
 * (src/config/options.ts); `--config FILE` (or RINGKV_CONFIG) names a YAML
 * file; flags > RINGKV_* environment > file > defaults.
 */
export function registerStartCommand(program: Command): void {
  const start = program
    .command('start')
    .description('run one node (HTTP API and peer traffic on one port); options from flags, RINGKV_* variables and a config file (docs/configuration.md)')
    .option('--config <file>', `YAML config file (env ${CONFIG_FILE_ENV}); flags and RINGKV_* variables override its keys`);
  const givenFlags = addStartFlags(start);
  start.action(async (o: Record<string, unknown>) => {
    let resolved: ResolvedStartConfig;
    try {
      resolved = startConfigFrom(o.config as string | undefined, givenFlags(o), process.env);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`ringkv: ${err.message}\n`);
      process.exit(EXIT_CONFIG_REFUSED);
    }
    await runNode(runNodeOptions(resolved.config), resolved);
  });
}

/** The options of one start: the config file (`--config`, else RINGKV_CONFIG), the environment and the flags given. */
export function startConfigFrom(configFile: string | undefined, flags: StartConfigSources['flags'], env: NodeJS.ProcessEnv): ResolvedStartConfig {
  return resolveStartConfig({ flags, env, file: configFile ?? (env[CONFIG_FILE_ENV] || undefined) });
}

/** The checked configuration as runNode takes it. */
export function runNodeOptions(c: StartConfig): RunNodeOptions {
  return {
    nodeId: c.node_id,
    listen: c.listen,
    advertise: c.advertise,
    dataDir: c.data_dir,
    seeds: c.seeds,
    zone: c.zone,
    cluster: c.cluster,
    partitionBits: c.partition_bits,
    cacheBytes: c.cache_mb * 1024 * 1024,
    logLevel: c.log_level,
    secretFile: c.secret_file,
    previousSecretFile: c.previous_secret_file,
    insecureLoopback: c.insecure_loopback,
    tls: c.tls_key !== undefined && c.tls_cert !== undefined ? { keyFile: c.tls_key, certFile: c.tls_cert, ...(c.tls_ca === undefined ? {} : { caFile: c.tls_ca }) } : undefined,
    ...(c.replace === undefined ? {} : { replaces: c.replace }),
    departedMemberExpiryS: c.departed_member_expiry_s,
  };
}

export async function runNode(o: RunNodeOptions, resolved?: ResolvedStartConfig): Promise<void> {
  const logger = pino({ name: 'ringkv', level: o.logLevel });
  // Which source set each option (never a secret: those are only ever file names here).
  if (resolved) logger.info({ sources: resolved.sources }, 'configuration');
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
