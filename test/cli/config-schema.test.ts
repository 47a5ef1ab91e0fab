// The option schema and its three sources, step by step without a process:
// every key has its flag and variable (and nothing else does), precedence
// option by option, the problems a bad value gives, relative paths, and the
// secrets that only ever come from files or the environment.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText, resolveStartConfig } from '../../src/config/load.js';
import { START_OPTIONS, START_OPTION_KEYS, envOf, flagOf, type StartOptionKey } from '../../src/config/options.js';
import { registerStartCommand, runNodeOptions } from '../../src/cli/start.js';
import { tempDir } from '../helpers/tmp.js';

function startCommand(): Command {
  const program = new Command('ringkv');
  registerStartCommand(program);
  return program.commands.find((c) => c.name() === 'start')!;
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.where}: ${p.message}${p.line === undefined ? '' : ` (line ${p.line})`}`);
    throw err;
  }
  throw new Error('no ConfigError');
}

describe('one schema, three sources', () => {
  it('every schema key has a flag on `ringkv start` and a variable, and every flag and variable has a key', () => {
    const flags = startCommand().options.map((o) => o.long!).filter((f) => f !== '--config' && f !== '--help');
    expect(flags.sort()).toEqual(START_OPTION_KEYS.map(flagOf).sort());
    const help = startCommand().helpInformation();
    const variables = [...new Set(help.match(/RINGKV_[A-Z_]+/g))].filter((v) => v !== 'RINGKV_CONFIG' && !/^RINGKV_CLUSTER_(PREVIOUS_)?SECRET$/.test(v));
    expect(variables.sort()).toEqual(START_OPTION_KEYS.map(envOf).sort());
    expect(new Set(START_OPTION_KEYS.map(envOf)).size).toBe(START_OPTION_KEYS.length);
  });

  it('every option reaches runNode: set in a file, each shows up in what the node runs with', () => {
    const file = parseConfigText(
      [
        'node_id: n9', 'listen: 10.0.0.9:7000', 'advertise: n9.example:7000', 'data_dir: /d', 'seeds: [a:1, b:2]', 'zone: z', 'cluster: c',
        'partition_bits: 7', 'cache_mb: 3', 'log_level: debug', 'secret_file: /s', 'previous_secret_file: /p', 'insecure_loopback: false',
        'tls_key: /k', 'tls_cert: /c', 'tls_ca: /ca', 'replace: n3', 'departed_member_expiry_s: 600',
      ].join('\n'),
      '/etc/ringkv/x.yaml',
    );
    expect(Object.keys(file.values).sort()).toEqual([...START_OPTION_KEYS].sort());
    const run = runNodeOptions(resolveStartConfig({ file }).config);
    expect(run).toEqual({
      nodeId: 'n9', listen: '10.0.0.9:7000', advertise: 'n9.example:7000', dataDir: '/d', seeds: ['a:1', 'b:2'], zone: 'z', cluster: 'c',
      partitionBits: 7, cacheBytes: 3 * 1024 * 1024, logLevel: 'debug', secretFile: '/s', previousSecretFile: '/p', insecureLoopback: false,
      tls: { keyFile: '/k', certFile: '/c', caFile: '/ca' }, replaces: 'n3', departedMemberExpiryS: 600,
    });
  });
});

describe('precedence: flags > environment > file > defaults', () => {
  const file = parseConfigText('node_id: f\ncluster: f-cluster\nzone: f-zone\ncache_mb: 10\nseeds: [f:1]\n', '/x/ringkv.yaml');

  it('takes each option from the highest source that sets it', () => {
    const { config, sources } = resolveStartConfig({
      file,
      env: { RINGKV_NODE_ID: 'e', RINGKV_CLUSTER: 'e-cluster', RINGKV_SEEDS: 'e:1, e:2', RINGKV_CACHE_MB: '' },
      flags: { node_id: 'flag' },
    });
    expect(config.node_id).toBe('flag');
    expect(config.cluster).toBe('e-cluster');
    expect(config.seeds).toEqual(['e:1', 'e:2']);
    expect(config.zone).toBe('f-zone');
    expect(config.cache_mb).toBe(10); // an empty variable is unset
    expect(config.listen).toBe('127.0.0.1:8087');
    expect(config.data_dir).toBe('./.ringkv/flag'); // derived from the id that won
    expect(sources).toMatchObject({ node_id: 'flag', cluster: 'env', seeds: 'env', zone: 'file', cache_mb: 'file', listen: 'default' });
  });

  it('converts variables and flags by the option\'s type', () => {
    const { config } = resolveStartConfig({ env: { RINGKV_PARTITION_BITS: '8', RINGKV_INSECURE_LOOPBACK: 'yes' }, flags: { cache_mb: '128' } });
    expect(config.partition_bits).toBe(8);
    expect(config.insecure_loopback).toBe(true);
    expect(config.cache_mb).toBe(128);
    expect(resolveStartConfig({ flags: { insecure_loopback: true } }).config.insecure_loopback).toBe(true);
    expect(resolveStartConfig({ env: { RINGKV_INSECURE_LOOPBACK: 'off' } }).config.insecure_loopback).toBe(false);
  });

  it('the secret in the environment outranks a secret file named in the config file, but not one named by a flag', () => {
    const withFile = parseConfigText('secret_file: /etc/ringkv/cluster.secret\n', '/etc/ringkv/ringkv.yaml');
    const fromEnv = resolveStartConfig({ file: withFile, env: { RINGKV_CLUSTER_SECRET: 'x'.repeat(32) } });
    expect(fromEnv.config.secret_file).toBeUndefined();
    expect(fromEnv.sources.secret_file).toBe('env');
    const fromFlag = resolveStartConfig({ file: withFile, env: { RINGKV_CLUSTER_SECRET: 'x'.repeat(32) }, flags: { secret_file: '/run/s' } });
    expect(fromFlag.config.secret_file).toBe('/run/s');
  });

  it('RINGKV_TLS_CA alone (set for the client commands) turns nothing on; with a key and certificate it is the CA', () => {
    expect(resolveStartConfig({ env: { RINGKV_TLS_CA: '/ca.pem' } }).config.tls_ca).toBeUndefined();
    expect(resolveStartConfig({ env: { RINGKV_TLS_CA: '/ca.pem', RINGKV_TLS_KEY: '/k', RINGKV_TLS_CERT: '/c' } }).config.tls_ca).toBe('/ca.pem');
    expect(problemsOf(() => resolveStartConfig({ flags: { tls_ca: '/ca.pem' } }))).toEqual(['--tls-ca: needs tls_key and tls_cert (the CA checks peers of a TLS node)']);
  });
});

describe('problems name the key and say what is wrong', () => {
  it('in the file: with the line, every problem at once', () => {
    const text = 'node_id: "bad id"\nlisten: 8087\nseeds: a:1\npartition_bits: 0\nlog_level: loud\nzone: ""\n';
    expect(problemsOf(() => parseConfigText(text, '/x.yaml'))).toEqual([
      'node_id: expected a node id ([A-Za-z0-9._-]{1,64}), got "bad id" (line 1)',
      'listen: expected host:port, got 8087 (line 2)',
      'seeds: expected a list of host:port, got "a:1" (line 3)',
      'partition_bits: expected an integer in 1..16, got 0 (line 4)',
      'log_level: expected one of fatal, error, warn, info, debug, trace, silent, got "loud" (line 5)',
      'zone: expected a zone name (1 to 64 characters), got "" (line 6)',
    ]);
  });

  it('unknown keys are errors; a secret or a near miss gets advice', () => {
    expect(problemsOf(() => parseConfigText('cluster_secret: abc\ndata-dir: /d\nlisten_port: 1\n', '/x.yaml'))).toEqual([
      'cluster_secret: a secret never goes in the config file: name a file with secret_file (mode 0600), or set RINGKV_CLUSTER_SECRET (line 1)',
      'data-dir: unknown key; did you mean data_dir? (line 2)',
      'listen_port: unknown key (docs/configuration.md lists every option) (line 3)',
    ]);
  });

  it('YAML 1.2: yes is not a boolean, and a key twice is an error', () => {
    expect(problemsOf(() => parseConfigText('insecure_loopback: yes\n', '/x.yaml'))).toEqual(['insecure_loopback: expected true or false, got "yes" (line 1)']);
    expect(problemsOf(() => parseConfigText('zone: a\nzone: b\n', '/x.yaml'))).toEqual(['yaml: Map keys must be unique (line 2)']);
  });

  it('an empty file is valid: every option from its default', () => {
    const { config, sources } = resolveStartConfig({ file: parseConfigText('# nothing yet\n', '/x.yaml') });
    expect(config.node_id).toBe(START_OPTIONS.node_id.default);
    expect(Object.values(sources).every((s) => s === 'default')).toBe(true);
  });

  it('variables and flags are named as such', () => {
    expect(problemsOf(() => resolveStartConfig({ env: { RINGKV_LISTEN: 'nope' }, flags: { cache_mb: '0' } }))).toEqual([
      '--cache-mb: expected an integer in 1..1048576, got 0',
      'RINGKV_LISTEN: expected host:port, got "nope"',
    ]);
  });

  it('options that go together are checked on the merged result, named by where each came from', () => {
    const file = parseConfigText('tls_cert: /c\n', '/x.yaml');
    expect(problemsOf(() => resolveStartConfig({ file }))).toEqual(['tls_cert: needs tls_key too (a key and its certificate go together)']);
    expect(resolveStartConfig({ file, env: { RINGKV_TLS_KEY: '/k' } }).config.tls_key).toBe('/k');
    expect(problemsOf(() => resolveStartConfig({ flags: { insecure_loopback: true }, env: { RINGKV_CLUSTER_SECRET_FILE: '/s' } }))).toEqual([
      '--insecure-loopback, RINGKV_CLUSTER_SECRET_FILE: give either a cluster secret or insecure loopback mode, not both',
    ]);
  });
});

describe('paths', () => {
  it('relative paths in the file are its directory\'s; in flags and variables the working directory\'s', () => {
    const d = tempDir('ringkv-config-paths-');
    try {
      const path = join(d.path, 'ringkv.yaml');
      writeFileSync(path, 'data_dir: data\nsecret_file: ../secrets/cluster.secret\ntls_key: /abs/node.key\ntls_cert: node.crt\n');
      const { config } = resolveStartConfig({ file: path, flags: { tls_ca: 'ca.pem' } });
      expect(config.data_dir).toBe(join(d.path, 'data'));
      expect(config.secret_file).toBe(join(d.path, '..', 'secrets', 'cluster.secret'));
      expect(config.tls_key).toBe('/abs/node.key');
      expect(config.tls_cert).toBe(join(d.path, 'node.crt'));
      expect(config.tls_ca).toBe('ca.pem');
    } finally {
      d.remove();
    }
  });

  it('only file and directory options are paths', () => {
    const paths = START_OPTION_KEYS.filter((k: StartOptionKey) => (START_OPTIONS[k] as { path?: boolean }).path === true);
    expect(paths.sort()).toEqual(['data_dir', 'previous_secret_file', 'secret_file', 'tls_ca', 'tls_cert', 'tls_key']);
  });
});
