// The CLI's client token: which one a command sends, and the `ringkv token`
// commands (create, list, revoke) that manage the cluster's tokens.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { RingkvClient } from '../client/index.js';
import { ROLES } from '../core/tokens.js';
import { addStartFlags } from '../config/flags.js';
import { ConfigError } from '../config/load.js';
import { CONFIG_FILE_ENV } from '../config/options.js';
import { bootstrapTokenOffline } from '../server/admin-token.js';
import { startConfigFrom } from './start.js';

/** Where `ringkv dev` leaves its cluster's admin token, relative to the directory the dev cluster was started in. */
export const DEV_TOKEN_FILE = '.ringkv/token';

export interface TokenSource {
  token?: string;
  tokenFile?: string;
}

/**
 * The token a command sends: `--token`, else `--token-file`, else
 * RINGKV_TOKEN, else RINGKV_TOKEN_FILE, else the dev cluster's token file
 * (./.ringkv/token) when it exists; undefined when there is none (a node in
 * the insecure loopback mode needs none).
 */
export function resolveToken(o: TokenSource, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string | undefined {
  if (o.token !== undefined) return checked(o.token, '--token');
  if (o.tokenFile !== undefined) return readTokenFile(o.tokenFile, '--token-file');
  if (env.RINGKV_TOKEN) return checked(env.RINGKV_TOKEN, 'RINGKV_TOKEN');
  if (env.RINGKV_TOKEN_FILE) return readTokenFile(env.RINGKV_TOKEN_FILE, 'RINGKV_TOKEN_FILE');
  const dev = resolve(cwd, DEV_TOKEN_FILE);
  return existsSync(dev) ? readTokenFile(dev, DEV_TOKEN_FILE) : undefined;
}

function readTokenFile(file: string, from: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${from}: cannot read ${file}: ${(err as Error).message}`);
  }
  // A token file others can read is a leaked token: say so (like ssh does of keys), but use it.
  if ((statSync(file).mode & 0o077) !== 0) process.stderr.write(`ringkv: warning: ${file} is readable by others (chmod 600 it)\n`);
  return checked(text.trim(), `${from} (${file})`);
}

function checked(token: string, from: string): string {
  if (!/^[\x21-\x7e]+$/.test(token)) throw new Error(`${from}: not a token (expected rkv_ followed by 43 characters)`);
  return token;
}

/** Adds --token and --token-file to a command that talks to a cluster. */
export function withTokenOptions(cmd: Command): Command {
  return cmd
    .option('--token <token>', 'client token (visible to other local users in the process list: prefer --token-file or RINGKV_TOKEN)')
    .option('--token-file <file>', 'file holding the client token (default: RINGKV_TOKEN, RINGKV_TOKEN_FILE, then ./.ringkv/token)');
}

/** `ringkv token create|list|revoke`. */
export function registerTokenCommands(program: Command, defaultNode: string): void {
  const client = (o: TokenSource & { node: string }) => new RingkvClient({ nodes: o.node.split(','), token: resolveToken(o) });
  const token = program.command('token').description('client tokens of the cluster (needs an admin token): create, list, revoke');

  withTokenOptions(
    token
      .command('create')
      .description('make a token; prints it on stdout (the only time it is shown) and its id on stderr')
      .addOption(new Option('--role <role>', 'what the token may do').choices([...ROLES]).makeOptionMandatory())
      .option('--bucket <bucket>', 'grant the role on this bucket only (roles read and write)')
      .option('--label <label>', 'a note for `token list` (who or what uses it)')
      .option('--node <host:port>', 'node to ask (comma-separated for failover)', defaultNode),
  ).action(async (o) => {
    if (o.bucket !== undefined && o.role !== 'read' && o.role !== 'write') throw new InvalidArgumentError('--bucket goes with --role read or write');
    const made = await client(o).createToken({ role: o.role, ...(o.bucket !== undefined ? { bucket: o.bucket } : {}), ...(o.label !== undefined ? { label: o.label } : {}) });
    process.stdout.write(`${made.token}\n`);
    console.error(`token ${made.id}: role ${o.role}${o.bucket !== undefined ? ` on bucket ${o.bucket}` : ''}`);
  });

  withTokenOptions(
    token
      .command('list')
      .description('every token of the cluster (ids and grants, never the tokens), revoked ones included')
      .option('--node <host:port>', 'node to ask (comma-separated for failover)', defaultNode)
      .option('--json', 'print the list as JSON'),
  ).action(async (o) => {
    const tokens = await client(o).listTokens();
    if (o.json) {
      console.log(JSON.stringify(tokens, null, 2));
      return;
    }
    console.table(tokens.map((t) => ({
      id: t.id,
      role: t.role,
      bucket: t.bucket ?? '',
      label: t.label ?? '',
      created: new Date(t.createdAtMs).toISOString(),
      revoked: t.revokedAtMs === null ? '' : new Date(t.revokedAtMs).toISOString(),
    })));
  });

  withTokenOptions(
    token
      .command('revoke <id>')
      .description('revoke a token for good (every node refuses it once gossip reaches it; reachable ones at once)')
      .option('--node <host:port>', 'node to ask (comma-separated for failover)', defaultNode),
  ).action(async (id: string, o) => {
    await client(o).revokeToken(id);
    console.error(`token ${id} revoked`);
  });

  // Recovery when every admin token is lost: on the stopped node, with the options it starts with.
  const bootstrap = token
    .command('bootstrap')
    .description('on a STOPPED node: add a new admin token to the cluster state in its data directory and write it to <data-dir>/admin.token (mode 0600); the node gossips the grant to the cluster when it runs again. Takes the options `ringkv start` takes (only the data directory, node id, partition bits and cluster name are used).')
    .option('--config <file>', `YAML config file (env ${CONFIG_FILE_ENV}), as for ringkv start`);
  const givenFlags = addStartFlags(bootstrap);
  bootstrap.action(async (o: Record<string, unknown>) => {
    let config;
    try {
      config = startConfigFrom(o.config as string | undefined, givenFlags(o), process.env).config;
    } catch (err) {
      if (err instanceof ConfigError) throw new InvalidArgumentError(err.message);
      throw err;
    }
    const made = await bootstrapTokenOffline({ dataDir: config.data_dir, nodeId: config.node_id, partitionBits: config.partition_bits, cluster: config.cluster, nowMs: Date.now() });
    console.error(`token ${made.id}: role admin, written to ${made.file} (mode 0600); start the node and it reaches every member by gossip`);
  });
}
