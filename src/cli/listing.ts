// `ringkv keys BUCKET` and `ringkv buckets`: listings (docs/listing.md)
// through the client's iterators, one name per line on stdout.
import { type Command, InvalidArgumentError } from 'commander';
import type { RingkvClient } from '../client/index.js';
import { type TokenSource, withTokenOptions } from './token.js';

/** What a command needs to reach the cluster (src/cli/index.ts builds it from --node, the token and --tls-ca). */
export type ClientFactory = (o: TokenSource & { node: string; tlsCa?: string }) => RingkvClient;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A name as one line: as it is when it is UTF-8 without control characters
 * (which would break the line), else `b64:` and its base64url; every name
 * in base64url with --base64.
 */
export function nameLine(name: Buffer, base64: boolean): string {
  if (base64) return name.toString('base64url');
  try {
    const text = utf8.decode(name);
    // eslint-disable-next-line no-control-regex
    if (!/[\u0000-\u001f\u007f]/.test(text) && !text.startsWith('b64:')) return text;
  } catch {
    // not UTF-8
  }
  return `b64:${name.toString('base64url')}`;
}

export function positiveInt(name: string, max: number) {
  return (raw: string): number => {
    const v = Number(raw);
    if (!Number.isInteger(v) || v < 1 || v > max) throw new InvalidArgumentError(`${name} must be an integer in 1..${max}`);
    return v;
  };
}

export function registerListingCommands(program: Command, defaultNode: string, client: ClientFactory): void {
  withTokenOptions(program.command('keys'))
    .description("list a bucket's live keys, one per line (a key that is not printable UTF-8 as b64:<base64url>); each partition is read from r replicas")
    .argument('<bucket>', 'bucket name')
    .option('--node <host:port>', 'node to ask (comma-separated for failover)', defaultNode)
    .option('--tls-ca <file>', 'HTTPS: verify the node against this CA certificate (PEM); env RINGKV_TLS_CA')
    .option('--page-size <n>', 'keys per request', positiveInt('page-size', 10_000), 1_000)
    .option('--r <n>', "replicas read per partition (default: the bucket's n - w + 1)", positiveInt('r', 16))
    .option('--base64', 'print every key as base64url')
    .action(async (bucket: string, o) => {
      const c = client(o);
      let count = 0;
      try {
        for await (const key of c.listKeys(bucket, { pageSize: o.pageSize, r: o.r })) {
          process.stdout.write(`${nameLine(key, o.base64 === true)}\n`);
          count++;
        }
      } finally {
        c.close();
      }
      console.error(`${count} keys in ${bucket}`);
    });

  withTokenOptions(program.command('buckets'))
    .description('list the buckets that hold a live key, one per line (costly: every page scans every object of the cluster)')
    .option('--node <host:port>', 'node to ask (comma-separated for failover)', defaultNode)
    .option('--tls-ca <file>', 'HTTPS: verify the node against this CA certificate (PEM); env RINGKV_TLS_CA')
    .option('--page-size <n>', 'bucket names per request', positiveInt('page-size', 1_000), 100)
    .option('--base64', 'print every name as base64url')
    .action(async (o) => {
      const c = client(o);
      let count = 0;
      try {
        for await (const bucket of c.listBuckets({ pageSize: o.pageSize })) {
          process.stdout.write(`${nameLine(bucket, o.base64 === true)}\n`);
          count++;
        }
      } finally {
        c.close();
      }
      console.error(`${count} buckets`);
    });
}
