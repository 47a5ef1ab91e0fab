// The one schema of every `ringkv start` option. Each entry drives three
// sources: a key in the config file (snake_case, as written here), an
// environment variable (RINGKV_ + the key in capitals, unless `env` names
// another) and a flag (-- + the key with dashes). The flags (src/config/flags.ts),
// the loader (src/config/load.ts) and docs/configuration.md
// (src/config/reference.ts) are all generated from this table: adding an
// option is adding an entry here, then `npm run docs:config`.
import { z } from 'zod';
import { DEFAULT_PARTITION_BITS } from '../engine/types.js';
import { MAX_CLUSTER_NAME_LENGTH, MAX_ZONE_LENGTH } from '../core/membership.js';
import { NODE_ID_RE } from '../transport/frames.js';

/** How a value is written in the environment and on the command line (the file has YAML types). */
export type OptionKind = 'string' | 'integer' | 'boolean' | 'list';

export interface OptionSpec {
  kind: OptionKind;
  /** What the value looks like (the flag's placeholder and the reference's "value" column). */
  value: string;
  description: string;
  /** Validates the typed value (after a string from the environment or a flag was converted by kind). */
  schema: z.ZodType;
  /** Used when no source sets the option; absent: the option stays unset. */
  default?: unknown;
  /** The default as the reference shows it, when it is not a plain value (a derived one). */
  defaultText?: string;
  /** The environment variable, when it is not RINGKV_<KEY> (names older releases documented). */
  env?: string;
  /** A file or directory: relative paths in a config file are taken from the file's directory. */
  path?: boolean;
}

/** The value as the problem reports it: `got "x"`, `got 8087`, `got a list`. */
export function shown(input: unknown): string {
  if (input === undefined) return 'nothing';
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'a mapping';
  return JSON.stringify(input);
}

const HOST_PORT_RE = /^[^\s:/]+:\d{1,5}$/;

function hostPort(): z.ZodType<string> {
  const expected = (iss: { input: unknown }) => `expected host:port, got ${shown(iss.input)}`;
  return z
    .string({ error: expected })
    .refine((v) => HOST_PORT_RE.test(v), { error: expected, abort: true })
    .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) <= 65535, { error: (iss) => `port must be 0..65535, got ${shown(iss.input)}` });
}

function integer(min: number, max: number): z.ZodType<number> {
  const expected = (iss: { input: unknown }) => `expected an integer in ${min}..${max}, got ${shown(iss.input)}`;
  return z.int({ error: expected }).min(min, { error: expected }).max(max, { error: expected });
}

function text(what: string, maxLength: number): z.ZodType<string> {
  const expected = (iss: { input: unknown }) => `expected ${what} (1 to ${maxLength} characters), got ${shown(iss.input)}`;
  return z.string({ error: expected }).min(1, { error: expected }).max(maxLength, { error: expected });
}

function file(what: string): z.ZodType<string> {
  const expected = (iss: { input: unknown }) => `expected the path of ${what}, got ${shown(iss.input)}`;
  return z.string({ error: expected }).min(1, { error: expected });
}

const flag = z.boolean({ error: (iss) => `expected true or false, got ${shown(iss.input)}` });

/** pino's levels (plus silent). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const START_OPTIONS = {
  node_id: {
    kind: 'string',
    value: 'id',
    description: 'This node\'s id, unique in the cluster and the same across restarts ([A-Za-z0-9._-]{1,64}). In Kubernetes, set RINGKV_NODE_ID from the pod name (the downward API).',
    schema: z.string({ error: (iss) => `expected a node id ([A-Za-z0-9._-]{1,64}), got ${shown(iss.input)}` })
      .regex(NODE_ID_RE, { error: (iss) => `expected a node id ([A-Za-z0-9._-]{1,64}), got ${shown(iss.input)}` }),
    default: 'n1',
  },
  listen: {
    kind: 'string',
    value: 'host:port',
    description: 'Address to listen on, for clients (HTTP) and peers (WebSocket) alike. A wildcard (0.0.0.0) needs advertise.',
    schema: hostPort(),
    default: '127.0.0.1:8087',
  },
  advertise: {
    kind: 'string',
    value: 'host:port',
    description: 'Address other nodes and clients reach this node at, when it differs from listen (NAT, containers, a wildcard listen).',
    schema: hostPort(),
    defaultText: 'the listen address',
  },
  data_dir: {
    kind: 'string',
    value: 'dir',
    description: 'Directory of this node\'s storage (sled), cluster state and, on the first node of a new cluster, admin.token.',
    schema: file('a directory'),
    defaultText: './.ringkv/<node_id>',
    path: true,
  },
  seeds: {
    kind: 'list',
    value: 'host:port,...',
    description: 'Nodes to join the cluster through when this node is not a member yet. Host names are resolved again at every join attempt, and a name with several addresses (a Kubernetes headless Service) gives one seed per address; this node\'s own addresses are skipped. With TLS a seed is dialled by the name given (the certificate is checked against it). In the file a list; in the environment and on the command line comma-separated.',
    schema: z.array(hostPort(), { error: (iss) => `expected a list of host:port, got ${shown(iss.input)}` }),
    default: [],
  },
  zone: {
    kind: 'string',
    value: 'zone',
    description: 'Failure zone (rack, availability zone) for replica placement: replicas of a key go to distinct zones where there are enough.',
    schema: text('a zone name', MAX_ZONE_LENGTH),
  },
  cluster: {
    kind: 'string',
    value: 'name',
    description: 'Cluster name; peers of another cluster are refused.',
    schema: text('a cluster name', MAX_CLUSTER_NAME_LENGTH),
    default: 'ringkv',
  },
  partition_bits: {
    kind: 'integer',
    value: 'bits',
    description: 'log2 of the partition count Q, used only by the node that creates a new cluster (fixed for the cluster\'s life).',
    schema: integer(1, 16),
    default: DEFAULT_PARTITION_BITS,
  },
  cache_mb: {
    kind: 'integer',
    value: 'MiB',
    description: 'Storage (sled) page cache size in MiB.',
    schema: integer(1, 1 << 20),
    default: 64,
  },
  log_level: {
    kind: 'string',
    value: LOG_LEVELS.join('|'),
    description: 'Log level (pino; logs are JSON lines on stdout).',
    schema: z.enum(LOG_LEVELS, { error: (iss) => `expected one of ${LOG_LEVELS.join(', ')}, got ${shown(iss.input)}` }),
    default: 'info',
  },
  secret_file: {
    kind: 'string',
    value: 'path',
    description: 'File holding the cluster secret (mode 0600; docs/security.md). The secret itself is never an option: it comes from this file or the environment variable RINGKV_CLUSTER_SECRET. Required unless insecure_loopback.',
    schema: file('the cluster secret file'),
    env: 'RINGKV_CLUSTER_SECRET_FILE',
    path: true,
  },
  previous_secret_file: {
    kind: 'string',
    value: 'path',
    description: 'During a secret rotation: file holding the previous cluster secret, still accepted (or RINGKV_CLUSTER_PREVIOUS_SECRET).',
    schema: file('the previous cluster secret file'),
    env: 'RINGKV_CLUSTER_PREVIOUS_SECRET_FILE',
    path: true,
  },
  insecure_loopback: {
    kind: 'boolean',
    value: 'true|false',
    description: 'Development only: no cluster secret and no client tokens; allowed only on loopback listen and advertise addresses.',
    schema: flag,
    default: false,
  },
  tls_key: {
    kind: 'string',
    value: 'path',
    description: 'TLS: this node\'s private key (PEM). With tls_cert, the node serves HTTPS and talks to peers over wss://.',
    schema: file('a PEM private key'),
    path: true,
  },
  tls_cert: {
    kind: 'string',
    value: 'path',
    description: 'TLS: this node\'s certificate (PEM), naming the host of its advertised address.',
    schema: file('a PEM certificate'),
    path: true,
  },
  tls_ca: {
    kind: 'string',
    value: 'path',
    description: 'TLS: the cluster CA (PEM); peers\' certificates must be signed by it, both ways. Needs tls_key and tls_cert; RINGKV_TLS_CA alone (set for the client commands) turns nothing on.',
    schema: file('a PEM CA certificate'),
    path: true,
  },
  replace: {
    kind: 'string',
    value: 'node-id',
    description: 'Join as the replacement of this dead member: take exactly its partitions, filled from the other replicas (docs/cluster.md "Replace").',
    schema: z.string({ error: (iss) => `expected a node id, got ${shown(iss.input)}` }).regex(NODE_ID_RE, { error: (iss) => `expected a node id ([A-Za-z0-9._-]{1,64}), got ${shown(iss.input)}` }),
  },
  departed_member_expiry_s: {
    kind: 'integer',
    value: 'seconds',
    description: 'Members that left are dropped from the member list this long after they left (-1 keeps them for ever).',
    schema: integer(-1, 10 * 365 * 86_400),
    default: 86_400,
  },
} as const satisfies Record<string, OptionSpec>;

export type StartOptionKey = keyof typeof START_OPTIONS;

export const START_OPTION_KEYS = Object.keys(START_OPTIONS) as StartOptionKey[];

/** The environment variable of an option. */
export function envOf(key: StartOptionKey): string {
  const spec: OptionSpec = START_OPTIONS[key];
  return spec.env ?? `RINGKV_${key.toUpperCase()}`;
}

/** The flag of an option, `--node-id`. */
export function flagOf(key: StartOptionKey): string {
  return `--${key.replace(/_/g, '-')}`;
}

/**
 * Variables that are not options but take an option's place: the secret's
 * value in the environment beats a secret_file named in the config file
 * (flags > environment > file), and is never written anywhere.
 */
export const SECRET_VALUE_ENV: Partial<Record<StartOptionKey, string>> = {
  secret_file: 'RINGKV_CLUSTER_SECRET',
  previous_secret_file: 'RINGKV_CLUSTER_PREVIOUS_SECRET',
};

/** The environment variable naming the config file when `--config` is not given. */
export const CONFIG_FILE_ENV = 'RINGKV_CONFIG';

/** Keys a config file may hold: one per option, nothing else (an unknown key is an error). */
export const CONFIG_FILE_SCHEMA = z.strictObject(
  Object.fromEntries(START_OPTION_KEYS.map((k) => [k, (START_OPTIONS[k] as OptionSpec).schema.optional()])) as {
    [K in StartOptionKey]: z.ZodOptional<(typeof START_OPTIONS)[K]['schema']>;
  },
);

/** Every option's value as a source gives it (none, some or all). */
export type StartOptionValues = z.infer<typeof CONFIG_FILE_SCHEMA>;

type Defaulted = { [K in StartOptionKey]: (typeof START_OPTIONS)[K] extends { default: unknown } ? K : never }[StartOptionKey];

/** The options after every source and the defaults: what `ringkv start` runs with. */
export type StartConfig = StartOptionValues & { [K in Defaulted]-?: NonNullable<StartOptionValues[K]> } & { data_dir: string };
