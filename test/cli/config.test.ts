// Configuration as an operator meets it, on real processes: `ringkv start
// --config FILE` with RINGKV_* variables and flags over it (flag beats
// environment beats file, seen through /status), a bad file refused with
// the key and the problem, `ringkv config check`, and `ringkv --version`.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcessGroup, exitWithin, minimalEnv, readAdminToken, runCli, stopProcess, untilListening } from '../helpers/processes.js';
import { writeTestSecretFile } from '../helpers/secret.js';

const EXIT_CONFIG_REFUSED = 78;
const processes = new ProcessGroup();
afterAll(() => processes.close());

function dir(): string {
  return processes.tempDir('ringkv-config-').path;
}

/** `ringkv start ...args` with PATH, HOME and `env` only (nothing of the test runner's environment beyond those), in `cwd`. */
const startNode = (args: string[], env: NodeJS.ProcessEnv, cwd: string) => processes.startNode(args, { env: minimalEnv(env), cwd });

interface StatusDoc {
  node: string;
  cluster: string;
  members: Array<{ id: string; address: string; zone: string | null }>;
}

async function status(address: string, dataDir: string): Promise<StatusDoc> {
  const token = readAdminToken(dataDir);
  const res = await fetch(`http://${address}/status`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as StatusDoc;
}

describe('ringkv start: flags > environment > config file', () => {
  it('each option takes the value of the highest source that sets it', async () => {
    const d = dir();
    writeTestSecretFile(d);
    // Relative paths in the file are the file's directory's (the node runs elsewhere).
    const file = join(d, 'ringkv.yaml');
    writeFileSync(
      file,
      [
        '# a host\'s settings',
        'node_id: from-file',
        'cluster: file-cluster',
        'zone: file-zone',
        'listen: 127.0.0.1:0',
        'data_dir: data',
        'secret_file: cluster.secret',
        'log_level: info',
        '',
      ].join('\n'),
    );
    const node = startNode(['--config', file, '--node-id', 'from-flag'], { RINGKV_NODE_ID: 'from-env', RINGKV_CLUSTER: 'env-cluster' }, dir());
    try {
      const address = await untilListening(node);
      const doc = await status(address, join(d, 'data'));
      expect(doc.node).toBe('from-flag'); // flag over environment and file
      expect(doc.cluster).toBe('env-cluster'); // environment over file
      expect(doc.members.find((m) => m.id === 'from-flag')?.zone).toBe('file-zone'); // the file where nothing else sets it
      expect(node.output()).toMatch(/"sources":\{"node_id":"flag","listen":"file"[^}]*"cluster":"env"/);
    } finally {
      await stopProcess(node);
    }
  }, 60_000);

  it('RINGKV_CONFIG names the file when --config is not given, and RINGKV_NODE_ID (a pod name) sets the id', async () => {
    const d = dir();
    writeTestSecretFile(d);
    const file = join(d, 'node.yaml');
    writeFileSync(file, 'listen: 127.0.0.1:0\ndata_dir: data\nsecret_file: cluster.secret\n');
    const node = startNode([], { RINGKV_CONFIG: file, RINGKV_NODE_ID: 'ringkv-0' }, dir());
    try {
      const address = await untilListening(node);
      expect((await status(address, join(d, 'data'))).node).toBe('ringkv-0');
    } finally {
      await stopProcess(node);
    }
  }, 60_000);
});

describe('bad configuration: the key, the problem, a non-zero exit', () => {
  const BAD = ['node_id: n1', 'listen: x', 'secret: abc', 'nodeId: n2', 'cache_mb: lots', ''].join('\n');

  it('ringkv start refuses a bad file with every problem and exits 78 without listening', async () => {
    const d = dir();
    const file = join(d, 'bad.yaml');
    writeFileSync(file, BAD);
    const node = startNode(['--config', file], {}, d);
    expect(await exitWithin(node, 20_000)).toBe(EXIT_CONFIG_REFUSED);
    expect(node.output()).toContain(`bad config file ${file}:`);
    expect(node.output()).toContain('listen: expected host:port, got "x" (line 2)');
    expect(node.output()).toContain('secret: a secret never goes in the config file');
    expect(node.output()).toContain('nodeId: unknown key; did you mean node_id? (line 4)');
    expect(node.output()).toContain('cache_mb: expected an integer in 1..1048576, got "lots" (line 5)');
    expect(node.output()).not.toContain('ringkv node listening');
  }, 30_000);

  it('a bad variable or flag is named as such, with the file\'s problems', async () => {
    const d = dir();
    const file = join(d, 'ok.yaml');
    writeFileSync(file, 'listen: 127.0.0.1:0\ninsecure_loopback: true\n');
    const node = startNode(['--config', file, '--partition-bits', '40'], { RINGKV_LOG_LEVEL: 'loud', RINGKV_SEEDS: 'a:1,b' }, d);
    expect(await exitWithin(node, 20_000)).toBe(EXIT_CONFIG_REFUSED);
    expect(node.output()).toContain('--partition-bits: expected an integer in 1..16, got 40');
    expect(node.output()).toContain('RINGKV_LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"');
    expect(node.output()).toContain('RINGKV_SEEDS[1]: expected host:port, got "b"');
  }, 30_000);

  it('options that go together: a TLS key without its certificate', async () => {
    const d = dir();
    const file = join(d, 'tls.yaml');
    writeFileSync(file, 'listen: 127.0.0.1:0\ninsecure_loopback: true\ntls_key: node.key\n');
    const node = startNode(['--config', file], {}, d);
    expect(await exitWithin(node, 20_000)).toBe(EXIT_CONFIG_REFUSED);
    expect(node.output()).toContain('tls_key: needs tls_cert too');
  }, 30_000);
});

describe('ringkv config check', () => {
  it('a valid file: exit 0 and every option with its value and source', async () => {
    const d = dir();
    const file = join(d, 'ringkv.yaml');
    writeFileSync(file, 'node_id: n7\nlisten: 0.0.0.0:8087\nadvertise: 10.0.0.7:8087\nseeds: [ringkv-0.ringkv:8087, 10.0.0.2:8087]\nsecret_file: /etc/ringkv/cluster.secret\n');
    const res = await runCli(['config', 'check', file], { env: { PATH: process.env.PATH, RINGKV_NODE_ID: 'ignored-without---env' } });
    expect(res.code).toBe(0);
    const out = res.stdout.toString();
    expect(out).toContain(`${file}: valid`);
    expect(out).toMatch(/node_id +n7 +file/);
    expect(out).toMatch(/seeds +ringkv-0\.ringkv:8087, 10\.0\.0\.2:8087 +file/);
    expect(out).toMatch(/cluster +ringkv +default/);
    expect(out).toMatch(/data_dir +\.\/\.ringkv\/n7 +default/);
    // It names a file this host does not have: said, but not a failure.
    expect(res.stderr).toContain('warning: secret_file: /etc/ringkv/cluster.secret cannot be read here');
  });

  it('--env applies the RINGKV_* environment as start would', async () => {
    const d = dir();
    const file = join(d, 'ringkv.yaml');
    writeFileSync(file, 'node_id: n7\ninsecure_loopback: true\n');
    const res = await runCli(['config', 'check', '--env', file], { env: { PATH: process.env.PATH, RINGKV_NODE_ID: 'ringkv-3' } });
    expect(res.code).toBe(0);
    expect(res.stdout.toString()).toMatch(/node_id +ringkv-3 +env RINGKV_NODE_ID/);
  });

  it('a bad file: each key and its problem on stderr, exit 1', async () => {
    const d = dir();
    const file = join(d, 'bad.yaml');
    writeFileSync(file, BAD_FOR_CHECK);
    const res = await runCli(['config', 'check', file]);
    expect(res.code).toBe(1);
    expect(res.stdout.toString()).toBe('');
    expect(res.stderr.split('\n').slice(0, 4)).toEqual([
      `ringkv: bad config file ${file}:`,
      '  listen: expected host:port, got "x" (line 2)',
      '  seeds[1]: port must be 0..65535, got "b:99999" (line 3)',
      '  insecure_loopback: expected true or false, got "yes" (line 4)',
    ]);
  });

  it('not YAML, or not a mapping, or missing: said plainly, exit 1', async () => {
    const d = dir();
    writeFileSync(join(d, 'broken.yaml'), 'listen: [\n');
    writeFileSync(join(d, 'list.yaml'), '- a\n- b\n');
    const broken = await runCli(['config', 'check', join(d, 'broken.yaml')]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/ {2}yaml: .+ \(line \d+\)/);
    const list = await runCli(['config', 'check', join(d, 'list.yaml')]);
    expect(list.code).toBe(1);
    expect(list.stderr).toContain('yaml: expected a mapping of option: value at the top level');
    const missing = await runCli(['config', 'check', join(d, 'none.yaml')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('cannot read it: ENOENT');
  });
});

const BAD_FOR_CHECK = ['node_id: n1', 'listen: x', 'seeds: [a:1, b:99999]', 'insecure_loopback: yes', ''].join('\n');

describe('ringkv --version', () => {
  it('prints the version of package.json', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const res = await runCli([flag]);
      expect(res.code).toBe(0);
      expect(res.stdout.toString()).toBe(`${version}\n`);
    }
  });
});
