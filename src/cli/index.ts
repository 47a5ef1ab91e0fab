// The `ringkv` command: run a node, run a local dev cluster, and talk to a
// cluster (get/put/delete/status/join/leave) through the client library.
import { readFileSync, writeFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { RingkvClient, RingkvError } from '../client/index.js';
import { collectMeta, headerLines } from './attributes.js';
import { registerConfigCommands } from './config.js';
import { runDevCluster } from './dev.js';
import { registerRepairCommands } from './repair.js';
import { registerStartCommand } from './start.js';
import { chooseValue, readValue, valueArgument } from './values.js';
import { registerStatusCommands } from './status.js';
import { registerLogLevelCommands } from './log-level.js';
import { registerTokenCommands, resolveToken, withTokenOptions, type TokenSource } from './token.js';
import { registerOpsCommands } from './ops.js';
import { registerListingCommands } from './listing.js';
import { registerBackupCommands } from './backup.js';

const DEFAULT_NODE = process.env.RINGKV_NODE ?? '127.0.0.1:8087';

function int(name: string, min: number, max: number) {
  return (raw: string): number => {
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min || v > max) throw new InvalidArgumentError(`${name} must be an integer in ${min}..${max}`);
    return v;
  };
}

function hostPort(raw: string): string {
  if (!/^[^\s:/]+:\d{1,5}$/.test(raw)) throw new InvalidArgumentError('expected host:port');
  if (Number(raw.slice(raw.lastIndexOf(':') + 1)) > 65535) throw new InvalidArgumentError('port must be 0..65535');
  return raw;
}

const TLS_CA_HELP = 'HTTPS: verify the node against this CA certificate (PEM); env RINGKV_TLS_CA';

/** A client for `--node` (comma-separated) with the token (resolveToken); `--tls-ca` or RINGKV_TLS_CA turns on HTTPS, checked against that CA. */
const client = (o: TokenSource & { node: string; tlsCa?: string }) => {
  const caFile = o.tlsCa ?? process.env.RINGKV_TLS_CA;
  return new RingkvClient({ nodes: o.node.split(','), token: resolveToken(o), ...(caFile ? { tls: { ca: readFileSync(caFile) } } : {}) });
};

/** This package's version (package.json sits two levels up from src/cli and from dist/cli). */
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const program = new Command('ringkv')
  .description('ringkv: a highly available, Dynamo-style distributed key-value store')
  .version(VERSION, '-V, --version', 'print the ringkv version')
  .showHelpAfterError();

registerStartCommand(program);

program
  .command('dev')
  .description('run a local cluster: one process per node on 127.0.0.1, data under one directory')
  .option('--nodes <n>', 'number of nodes', int('nodes', 1, 16), 3)
  .option('--base-port <port>', 'port of the first node; the others follow', int('base-port', 1, 65000), 8087)
  .option('--data-dir <dir>', 'directory holding every node\'s data', './.ringkv')
  .option('--log-level <level>', 'pino log level of the nodes', 'warn')
  .action(async (o) => {
    await runDevCluster({ nodes: o.nodes, basePort: o.basePort, dataDir: o.dataDir, logLevel: o.logLevel });
  });

withTokenOptions(program
  .command('get <bucket> <key>'))
  .description('print the value as text (siblings: one per line; --json for all of them), or its exact bytes with --raw or --out')
  .option('--node <host:port>', 'node to ask (comma-separated for failover)', DEFAULT_NODE)
  .option('--tls-ca <file>', TLS_CA_HELP)
  .option('--r <r>', 'replies to wait for', int('r', 1, 16))
  .option('--json', 'print value(s), siblings and context as JSON')
  .addOption(new Option('--raw', 'write the value\'s bytes to stdout as they are (no newline)').conflicts(['json', 'out']))
  .addOption(new Option('--out <file>', 'write the value\'s bytes to this file').conflicts('json'))
  .option('--sibling <n>', 'with --raw or --out: which of several sibling values (1-based, in the order plain `get` prints them)', int('sibling', 1, 65_535))
  .option('--headers', 'print each value\'s content type and metadata (as header lines) before it')
  .action(async (bucket: string, key: string, o) => {
    const got = await client(o).get(bucket, key, { r: o.r });
    if (o.raw || o.out !== undefined) {
      if (!got.found) {
        console.error(got.deleted ? 'not found (deleted)' : 'not found');
        process.exitCode = 1;
        return;
      }
      const value = chooseValue(got.values, o.sibling);
      if (o.out !== undefined) writeFileSync(o.out, value);
      else await new Promise<void>((resolve, reject) => process.stdout.write(value, (err) => (err ? reject(err) : resolve())));
      return;
    }
    if (o.json) {
      console.log(JSON.stringify({
        found: got.found,
        deleted: got.deleted,
        context: got.context,
        siblings: got.siblings.map((s) => ({ value: s.value?.toString('utf8') ?? null, deleted: s.deleted, lastModified: s.lastModified, contentType: s.contentType, meta: s.meta })),
      }, null, 2));
      return;
    }
    if (!got.found) {
      console.error(got.deleted ? 'not found (deleted)' : 'not found');
      process.exitCode = 1;
      return;
    }
    if (got.values.length > 1) console.error(`${got.values.length} siblings (concurrent writes); \`ringkv put\` resolves them`);
    for (const s of got.siblings.filter((x) => !x.deleted)) process.stdout.write(`${o.headers ? `${headerLines(s)}\n\n` : ''}${s.value!.toString('utf8')}\n`);
  });

withTokenOptions(program
  .command('put <bucket> <key> <value>'))
  .description('write a value: the text given, - for stdin or @path for a file\'s bytes; reads the current context first so the write supersedes what you see (use --blind to add a sibling instead)')
  .option('--literal', 'store <value> as the text it is, even "-" or "@..." (a text starting with another "-": put it after --, as in `put b k -- -x`)')
  .option('--node <host:port>', 'node to ask (comma-separated for failover)', DEFAULT_NODE)
  .option('--tls-ca <file>', TLS_CA_HELP)
  .option('--w <w>', 'acks to wait for', int('w', 1, 16))
  .option('--dw <dw>', 'durable acks to wait for', int('dw', 0, 16))
  .option('--blind', 'write without a context (concurrent blind writes become siblings)')
  .option('--content-type <type>', 'the value\'s content type (default application/octet-stream)')
  .option('--meta <name=value>', 'user metadata stored with the value (repeatable)', collectMeta)
  .action(async (bucket: string, key: string, value: string, o) => {
    // Read before asking the node anything: a bad file fails without a request.
    const bytes = await readValue(valueArgument(value, o.literal === true), process.stdin);
    const c = client(o);
    const context = o.blind ? null : (await c.get(bucket, key)).context;
    const { context: next } = await c.put(bucket, key, bytes, { context, w: o.w, dw: o.dw, contentType: o.contentType, meta: o.meta });
    console.error(`ok (context ${next.slice(0, 16)}…)`);
  });

withTokenOptions(program
  .command('delete <bucket> <key>'))
  .description('delete a key (a tombstone that supersedes what the current context covers)')
  .option('--node <host:port>', 'node to ask (comma-separated for failover)', DEFAULT_NODE)
  .option('--tls-ca <file>', TLS_CA_HELP)
  .option('--w <w>', 'acks to wait for', int('w', 1, 16))
  .action(async (bucket: string, key: string, o) => {
    const c = client(o);
    const { context } = await c.get(bucket, key);
    await c.delete(bucket, key, { context, w: o.w });
    console.error('deleted');
  });

registerStatusCommands(program, { defaultNode: DEFAULT_NODE, tlsCaHelp: TLS_CA_HELP, withTokenOptions, client });
registerLogLevelCommands(program, { defaultNode: DEFAULT_NODE, tlsCaHelp: TLS_CA_HELP, withTokenOptions, client });

withTokenOptions(program
  .command('join <seed>'))
  .description('ask a node (--node) to join the cluster that <seed> (host:port) belongs to')
  .option('--node <host:port>', 'the node that joins', DEFAULT_NODE)
  .option('--tls-ca <file>', TLS_CA_HELP)
  .action(async (seed: string, o) => {
    await client(o).join(hostPort(seed));
    console.error(`${o.node} joined through ${seed}`);
  });

withTokenOptions(program
  .command('leave'))
  .description('ask a member to leave the cluster; its partitions move to the others')
  .option('--node <host:port>', 'node to send the request to', DEFAULT_NODE)
  .option('--tls-ca <file>', TLS_CA_HELP)
  .option('--member <id>', 'member to remove (default: the node itself)')
  .option('--no-wait', 'return at once instead of waiting until the node has handed its data off')
  .option('--wait-timeout <s>', 'give up waiting after this many seconds', int('wait-timeout', 1, 86_400), 600)
  .action(async (o) => {
    const c = client(o);
    await c.leave(o.member);
    console.error(`${o.member ?? o.node} is leaving`);
    if (!o.wait || o.member) return;
    // The leaving node gives its partitions away; it is safe to stop once it has nothing left to send.
    const deadline = Date.now() + o.waitTimeout * 1000;
    for (;;) {
      const status = (await c.status()) as unknown as { ring: { claimant: string }; members: Array<{ id: string; partitions: number }>; node: string; transfers?: unknown[] };
      const owns = status.members.find((m) => m.id === status.node)?.partitions ?? 0;
      const pending = status.transfers?.length ?? 0;
      if (owns === 0 && pending === 0) break;
      if (Date.now() > deadline) throw new Error(`still ${owns} partitions owned and ${pending} transfers pending after ${o.waitTimeout} s`);
      console.error(`waiting: ${owns} partitions still owned, ${pending} transfers pending`);
      await new Promise((r) => setTimeout(r, 1_000));
    }
    console.error(`${o.node} has handed its data off; it can be stopped`);
  });

registerTokenCommands(program, DEFAULT_NODE);
registerConfigCommands(program);
registerRepairCommands(program, { defaultNode: DEFAULT_NODE, tlsCaHelp: TLS_CA_HELP, client });
registerOpsCommands(program, DEFAULT_NODE);
registerListingCommands(program, DEFAULT_NODE, client);
registerBackupCommands(program, DEFAULT_NODE, client);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof RingkvError) console.error(`ringkv: ${err.code} (${err.status}): ${err.message}`);
  else console.error(`ringkv: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
