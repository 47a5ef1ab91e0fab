// The `ringkv` command: run a node, run a local dev cluster, and talk to a
// cluster (get/put/delete/status/join/leave) through the client library.
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { RingkvClient, RingkvError } from '../client/index.js';
import { DEFAULT_PARTITION_BITS } from '../engine/types.js';
import { runDevCluster } from './dev.js';
import { runNode } from './start.js';
import { registerTokenCommands, resolveToken, withTokenOptions, type TokenSource } from './token.js';
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

const program = new Command('ringkv')
  .description('ringkv: a highly available, Dynamo-style distributed key-value store')
  .showHelpAfterError();

program
  .command('start')
  .description('run one node (HTTP API and peer traffic on one port)')
  .option('--node-id <id>', 'this node\'s id ([A-Za-z0-9._-]{1,64})', 'n1')
  .option('--listen <host:port>', 'address to listen on', hostPort, '127.0.0.1:8087')
  .option('--advertise <host:port>', 'address other nodes and clients use (default: --listen)', hostPort)
  .option('--data-dir <dir>', 'data directory (default: ./.ringkv/<node-id>)')
  .option('--seeds <list>', 'comma-separated host:port of nodes to join through', (v) => v.split(',').map(hostPort), [] as string[])
  .option('--zone <zone>', 'failure zone (rack/AZ) for replica placement')
  .option('--cluster <name>', 'cluster name; nodes of other clusters are refused', 'ringkv')
  .option('--partition-bits <bits>', 'log2 of the partition count Q for a new cluster', int('partition-bits', 1, 16), DEFAULT_PARTITION_BITS)
  .option('--cache-mb <mb>', 'storage cache size in MiB', int('cache-mb', 1, 1 << 20), 64)
  .option('--log-level <level>', 'pino log level', 'info')
  .option('--secret-file <path>', 'file holding the cluster secret (or env RINGKV_CLUSTER_SECRET_FILE / RINGKV_CLUSTER_SECRET); required unless --insecure-loopback')
  .option('--previous-secret-file <path>', 'during a rotation: the previous cluster secret, still accepted (or env RINGKV_CLUSTER_PREVIOUS_SECRET_FILE / RINGKV_CLUSTER_PREVIOUS_SECRET)')
  .option('--insecure-loopback', 'development only: no cluster secret; allowed only on loopback listen and advertise addresses')
  .option('--tls-key <file>', 'TLS: this node\'s private key (PEM); env RINGKV_TLS_KEY')
  .option('--tls-cert <file>', 'TLS: this node\'s certificate (PEM), naming the host of its advertised address; env RINGKV_TLS_CERT')
  .option('--tls-ca <file>', 'TLS: the cluster CA (PEM); peers\' certificates must be signed by it, both ways; env RINGKV_TLS_CA')
  .action(async (o) => {
    const tlsKey = o.tlsKey ?? process.env.RINGKV_TLS_KEY;
    const tlsCert = o.tlsCert ?? process.env.RINGKV_TLS_CERT;
    // RINGKV_TLS_CA alone may be set for the client commands: it turns nothing on here.
    const tlsCa = o.tlsCa ?? (tlsKey !== undefined ? process.env.RINGKV_TLS_CA : undefined);
    if ((tlsKey === undefined) !== (tlsCert === undefined)) throw new InvalidArgumentError('--tls-key and --tls-cert go together');
    if (tlsCa !== undefined && tlsKey === undefined) throw new InvalidArgumentError('--tls-ca needs --tls-key and --tls-cert');
    await runNode({
      secretFile: o.secretFile,
      previousSecretFile: o.previousSecretFile,
      insecureLoopback: o.insecureLoopback === true,
      tls: tlsKey !== undefined && tlsCert !== undefined ? { keyFile: tlsKey, certFile: tlsCert, ...(tlsCa === undefined ? {} : { caFile: tlsCa }) } : undefined,
      nodeId: o.nodeId,
      listen: o.listen,
      advertise: o.advertise,
      dataDir: o.dataDir ?? `./.ringkv/${o.nodeId}`,
      seeds: o.seeds,
      zone: o.zone,
      cluster: o.cluster,
      partitionBits: o.partitionBits,
      cacheBytes: o.cacheMb * 1024 * 1024,
      logLevel: o.logLevel,
    });
  });

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
  .description('print the value (siblings: one per line as JSON with --json)')
  .option('--node <host:port>', 'node to ask (comma-separated for failover)', DEFAULT_NODE)
  .option('--tls-ca <file>', TLS_CA_HELP)
  .option('--r <r>', 'replies to wait for', int('r', 1, 16))
  .option('--json', 'print value(s), siblings and context as JSON')
  .action(async (bucket: string, key: string, o) => {
    const got = await client(o).get(bucket, key, { r: o.r });
    if (o.json) {
      console.log(JSON.stringify({
        found: got.found,
        deleted: got.deleted,
        context: got.context,
        siblings: got.siblings.map((s) => ({ value: s.value?.toString('utf8') ?? null, deleted: s.deleted, lastModified: s.lastModified })),
      }, null, 2));
      return;
    }
    if (!got.found) {
      console.error(got.deleted ? 'not found (deleted)' : 'not found');
      process.exitCode = 1;
      return;
    }
    if (got.values.length > 1) console.error(`${got.values.length} siblings (concurrent writes); \`ringkv put\` resolves them`);
    for (const v of got.values) process.stdout.write(`${v.toString('utf8')}\n`);
  });

withTokenOptions(program
  .command('put <bucket> <key> <value>'))
  .description('write a value; reads the current context first so the write supersedes what you see (use --blind to add a sibling instead)')
  .option('--node <host:port>', 'node to ask (comma-separated for failover)', DEFAULT_NODE)
  .option('--tls-ca <file>', TLS_CA_HELP)
  .option('--w <w>', 'acks to wait for', int('w', 1, 16))
  .option('--dw <dw>', 'durable acks to wait for', int('dw', 0, 16))
  .option('--blind', 'write without a context (concurrent blind writes become siblings)')
  .action(async (bucket: string, key: string, value: string, o) => {
    const c = client(o);
    const context = o.blind ? null : (await c.get(bucket, key)).context;
    const { context: next } = await c.put(bucket, key, value, { context, w: o.w, dw: o.dw });
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

withTokenOptions(program
  .command('status'))
  .description('members, partition ownership and health as one node sees them')
  .option('--node <host:port>', 'node to ask', DEFAULT_NODE)
  .option('--tls-ca <file>', TLS_CA_HELP)
  .option('--json', 'print the raw status document')
  .action(async (o) => {
    const status = (await client(o).status()) as {
      node: string; cluster: string; ring: { version: number; partitions: number; claimant: string };
      members: Array<{ id: string; address: string; status: string; partitions: number; health: string; phi?: number; zone: string | null }>;
      transfers?: Array<{ partition: number; to: string; sent: number; pass: number }>;
    };
    if (o.json) {
      console.log(JSON.stringify(status, null, 2));
      return;
    }
    console.log(`cluster ${status.cluster}, seen from ${status.node}: ring v${status.ring.version}, ${status.ring.partitions} partitions, claimant ${status.ring.claimant}`);
    console.table(status.members.map((m) => ({ id: m.id, address: m.address, zone: m.zone ?? '', status: m.status, partitions: m.partitions, health: m.health, phi: m.phi ?? '' })));
    const transfers = status.transfers ?? [];
    if (transfers.length === 0) console.log('no partition transfers in progress');
    else console.log(`partition transfers in progress from ${status.node}: ${transfers.map((t) => `p${t.partition}→${t.to} (${t.sent} sent${t.pass > 1 ? ', catch-up' : ''})`).join(', ')}`);
  });

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
registerListingCommands(program, DEFAULT_NODE, client);
registerBackupCommands(program, DEFAULT_NODE, client);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof RingkvError) console.error(`ringkv: ${err.code} (${err.status}): ${err.message}`);
  else console.error(`ringkv: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
