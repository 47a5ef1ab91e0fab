// docs/configuration.md, rendered from the option schema (npm run
// docs:config writes it; test/cli/config-reference.test.ts checks the
// committed file is what this renders, so the reference cannot drift).
import { CONFIG_FILE_ENV, SECRET_VALUE_ENV, START_OPTIONS, START_OPTION_KEYS, envOf, flagOf, type OptionSpec } from './options.js';

function defaultOf(spec: OptionSpec): string {
  if (spec.defaultText !== undefined) return `\`${spec.defaultText}\``;
  if (spec.default === undefined) return 'unset';
  if (Array.isArray(spec.default)) return spec.default.length === 0 ? 'none' : `\`${spec.default.join(',')}\``;
  return `\`${String(spec.default)}\``;
}

const KIND_IN_FILE: Record<OptionSpec['kind'], string> = {
  string: 'string',
  integer: 'integer',
  boolean: 'true or false',
  list: 'list of strings',
};

const KIND_AS_TEXT: Record<OptionSpec['kind'], string> = {
  string: 'as is',
  integer: 'decimal digits',
  boolean: 'true/false, 1/0, yes/no, on/off (the flag takes no value)',
  list: 'comma-separated',
};

const INTRO = `# Configuration

<!-- Generated from src/config/options.ts by \`npm run docs:config\`; do not edit by hand (a test compares). -->

Every option of \`ringkv start\` comes from one schema
(\`src/config/options.ts\`) and can be given three ways:

| source | how | example |
|---|---|---|
| flag | \`--\` and the key with dashes | \`--node-id n2\` |
| environment | \`RINGKV_\` and the key in capitals (the secret files keep the names docs/security.md gives) | \`RINGKV_NODE_ID=n2\` |
| config file | the key, in a YAML file named by \`--config FILE\` or \`${CONFIG_FILE_ENV}=FILE\` | \`node_id: n2\` |

**Precedence: flags > environment > config file > defaults**, option by
option: a file can hold a host's settings, and an environment variable or a
flag changes one of them for one start. An empty variable counts as unset.

\`\`\`yaml
# /etc/ringkv/ringkv.yaml, the same on every host but for the node's own lines
node_id: n1                 # or RINGKV_NODE_ID (a Kubernetes pod name)
listen: 0.0.0.0:8087
advertise: 10.0.0.1:8087    # what the other hosts reach this one at
data_dir: /var/lib/ringkv
seeds: [10.0.0.1:8087, 10.0.0.2:8087, 10.0.0.3:8087]
zone: rack-a
secret_file: /etc/ringkv/cluster.secret   # mode 0600; never the secret itself
\`\`\`

\`\`\`sh
ringkv config check /etc/ringkv/ringkv.yaml        # exit 0 and every option with its source, or each problem and exit 1
ringkv start --config /etc/ringkv/ringkv.yaml
RINGKV_LOG_LEVEL=debug ringkv start --config /etc/ringkv/ringkv.yaml --zone rack-b
\`\`\`

The file is **YAML** (the \`yaml\` package, YAML 1.2 core schema, so \`yes\`
and \`no\` are strings, not booleans): the format Kubernetes ConfigMaps,
docker-compose and Ansible already use, with lists and comments, and the
library was already in the tree. Its rules:

- Only the keys below. An unknown key is an error (a typo must not be
  silently ignored); so is a key twice.
- **Secrets never go in the file.** It may name \`secret_file\` and
  \`previous_secret_file\`; the secret itself comes from that file or from
  the environment (\`RINGKV_CLUSTER_SECRET\`, \`RINGKV_CLUSTER_PREVIOUS_SECRET\`,
  which, being the environment, outrank a file the config names). A key
  such as \`secret\` is refused with that advice. Client tokens are not node
  options at all (docs/security.md).
- Relative paths in the file are taken from the file's directory (a service
  manager's working directory is rarely the file's); relative paths in flags
  and variables, and the default \`data_dir\`, from the working directory.
- A bad value is reported with its key (or variable, or flag), the problem
  and the line, every problem at once, and \`ringkv start\` exits 78
  (EX_CONFIG: restarting it unchanged cannot help; systemd
  \`RestartPreventExitStatus=78\`); \`ringkv config check\` exits 1:

\`\`\`
$ cat bad.yaml
node_id: n1
listen: x
secret: abc
nodeId: n2
$ ringkv config check bad.yaml
ringkv: bad config file bad.yaml:
  listen: expected host:port, got "x" (line 2)
  secret: a secret never goes in the config file: name a file with secret_file (mode 0600), or set RINGKV_CLUSTER_SECRET (line 3)
  nodeId: unknown key; did you mean node_id? (line 4)
\`\`\`

\`ringkv config check --env FILE\` applies the \`RINGKV_*\` environment too,
as \`ringkv start --config FILE\` would. It warns (without failing) about
files the options name that cannot be read where the check runs.

Node ids: \`node_id\` must stay the same across restarts of one node's
data directory. In a Kubernetes StatefulSet, set \`RINGKV_NODE_ID\` from the
pod name with the downward API (\`fieldRef: metadata.name\`), so \`ringkv-0\`
is always \`ringkv-0\`.

Seeds may be host names: each join attempt resolves them again, and a name
with several addresses (a headless Service) gives one seed per address, this
node's own left out. A node with no seeds, or whose only seed is written
exactly as the address it advertises (\`advertise\`, else \`listen\`), creates a new
cluster; every other node waits, retrying, until a seed admits it. So give
every host the same seed list naming the first node as it advertises itself
(in a StatefulSet \`ringkv-0.ringkv:8087\`, with \`advertise\` the pod's own
stable name): that node creates the cluster, the others join it. A Service
name alone on every pod would leave them all waiting, since none is its own
only seed. With TLS, seeds are dialled by the name given, since
the peer's certificate is checked against the name dialled: name each seed
as its certificate does.

## Options
`;

/** The whole of docs/configuration.md. */
export function renderConfigReference(): string {
  const sections = START_OPTION_KEYS.map((key) => {
    const spec: OptionSpec = START_OPTIONS[key];
    const secretEnv = SECRET_VALUE_ENV[key];
    const rows = [
      `| file | \`${key}\` (${KIND_IN_FILE[spec.kind]}) |`,
      `| environment | \`${envOf(key)}\` (${KIND_AS_TEXT[spec.kind]})${secretEnv === undefined ? '' : `; or the secret itself in \`${secretEnv}\``} |`,
      `| flag | \`${flagOf(key)}${spec.kind === 'boolean' ? '' : ` <${spec.value}>`}\` |`,
      `| value | \`${spec.value}\` |`,
      `| default | ${defaultOf(spec)} |`,
    ];
    return `### \`${key}\`\n\n${spec.description}\n\n| | |\n|---|---|\n${rows.join('\n')}\n`;
  });
  return `${INTRO}\n${sections.join('\n')}`;
}
