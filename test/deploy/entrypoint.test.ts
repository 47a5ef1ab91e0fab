// The container entrypoint (deploy/docker/entrypoint.sh) run with /bin/sh as
// the image runs it, against real nodes: RINGKV_BIN points it at the in-repo
// bin/ringkv.js. What a container gets when nothing says otherwise (node id
// and advertised name from the host name), that the config file and the
// environment win over those defaults, that other ringkv commands pass
// through, that a missing RINGKV_CONFIG file is refused with EX_CONFIG, and
// the image's HEALTHCHECK script against the node.
import { hostname } from 'node:os';
import { join } from 'node:path';
import { existsSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_SECRET_TEXT, writeTestSecretFile } from '../helpers/secret.js';
import { CLI, ProcessGroup, REPO, exitWithin, readAdminToken, run, untilPing } from '../helpers/processes.js';
import { stablePort } from '../helpers/server.js';

const ENTRYPOINT = join(REPO, 'deploy/docker/entrypoint.sh');
const HEALTHCHECK = join(REPO, 'deploy/docker/healthcheck.mjs');
const processes = new ProcessGroup();
const dir = processes.tempDir('ringkv-entrypoint-');
/** The image's default config path: on a machine that has one, the entrypoint would use it. */
const DEFAULT_CONFIG = '/etc/ringkv/ringkv.yaml';
const hasDefaultConfig = existsSync(DEFAULT_CONFIG);
if (hasDefaultConfig) console.log(`[entrypoint.test] the environment-only case is skipped: ${DEFAULT_CONFIG} exists on this machine`);
afterAll(() => processes.close());

/** The environment the image sets, pointed at this checkout; RINGKV_CONFIG names a file that does not exist unless given. */
function imageEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, RINGKV_BIN: CLI, RINGKV_NODE_BINARY: process.execPath, ...extra };
}

/** The sources line `ringkv start` logs: which source set each option. */
function sourcesOf(output: string): Record<string, string> {
  const line = output.split('\n').find((l) => l.includes('"msg":"configuration"'));
  if (!line) throw new Error(`no configuration line:\n${output}`);
  return (JSON.parse(line) as { sources: Record<string, string> }).sources;
}

async function status(port: number, dataDir: string): Promise<{ node: string; address: string }> {
  const token = readAdminToken(dataDir);
  const res = await fetch(`http://127.0.0.1:${port}/status`, { headers: { authorization: `Bearer ${token}` } });
  return (await res.json()) as { node: string; address: string };
}

describe('deploy/docker/entrypoint.sh', () => {
  it.skipIf(hasDefaultConfig)('with the environment alone: node id and advertised name from the host name, the secret from RINGKV_CLUSTER_SECRET; the healthcheck passes, then fails once it stops', async () => {
    const port = await stablePort();
    const dataDir = join(dir.path, 'env-only');
    // No RINGKV_CONFIG and no file at the default path: every option from the environment and the entrypoint.
    const node = processes.spawn('/bin/sh', [ENTRYPOINT], {
      env: imageEnv({ RINGKV_LISTEN: `127.0.0.1:${port}`, RINGKV_DATA_DIR: dataDir, RINGKV_CLUSTER_SECRET: TEST_SECRET_TEXT }),
    });
    await untilPing(node, `127.0.0.1:${port}`, 30_000);
    const s = await status(port, dataDir);
    expect(s.node).toBe(hostname());
    expect(s.address).toBe(`${hostname()}:${port}`);
    const sources = sourcesOf(node.output());
    expect(sources).toMatchObject({ node_id: 'env', advertise: 'env', listen: 'env', data_dir: 'env', secret_file: 'env' });
    const healthEnv = { PATH: process.env.PATH, RINGKV_HEALTHCHECK_URL: `http://127.0.0.1:${port}/ping` };
    expect((await run(process.execPath, [HEALTHCHECK], { env: healthEnv })).code).toBe(0);
    node.child.kill('SIGTERM');
    expect(await exitWithin(node, 15_000)).toBe(0);
    const down = await run(process.execPath, [HEALTHCHECK], { env: healthEnv });
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('ECONNREFUSED');
  }, 60_000);

  it('a config file (RINGKV_CONFIG) keeps its own node_id, listen, advertise and data_dir; an argument is passed to ringkv start', async () => {
    const port = await stablePort();
    const secret = writeTestSecretFile(dir.path);
    const config = join(dir.path, 'node.yaml');
    writeFileSync(config, [
      'node_id: from-file',
      `listen: 127.0.0.1:${port}`,
      `advertise: 127.0.0.1:${port}`,
      'data_dir: ./from-file-data',
      `seeds: [127.0.0.1:${port}]`,
      `secret_file: ${secret}`,
      '',
    ].join('\n'));
    const node = processes.spawn('/bin/sh', [ENTRYPOINT, '--log-level', 'debug'], { env: imageEnv({ RINGKV_CONFIG: config }) });
    await untilPing(node, `127.0.0.1:${port}`, 30_000);
    const s = await status(port, join(dir.path, 'from-file-data'));
    expect(s).toMatchObject({ node: 'from-file', address: `127.0.0.1:${port}` });
    expect(sourcesOf(node.output())).toMatchObject({ node_id: 'file', listen: 'file', advertise: 'file', data_dir: 'file', secret_file: 'file', log_level: 'flag' });
    node.child.kill('SIGTERM');
    expect(await exitWithin(node, 15_000)).toBe(0);
  }, 60_000);

  it('a config file with listen but no advertise: the entrypoint advertises the host name on the file\'s port', async () => {
    const port = await stablePort();
    const config = join(dir.path, 'listen-only.yaml');
    writeFileSync(config, [`listen: "127.0.0.1:${port}"  # quoted, with a comment`, 'data_dir: ./listen-only-data', `secret_file: ${writeTestSecretFile(dir.path)}`, ''].join('\n'));
    const node = processes.spawn('/bin/sh', [ENTRYPOINT], { env: imageEnv({ RINGKV_CONFIG: config }) });
    await untilPing(node, `127.0.0.1:${port}`, 30_000);
    expect(await status(port, join(dir.path, 'listen-only-data'))).toMatchObject({ node: hostname(), address: `${hostname()}:${port}` });
    expect(sourcesOf(node.output())).toMatchObject({ node_id: 'env', listen: 'file', advertise: 'env', data_dir: 'file' });
    node.child.kill('SIGTERM');
    expect(await exitWithin(node, 15_000)).toBe(0);
  }, 60_000);

  it('runs another ringkv command as given (config check), and refuses a RINGKV_CONFIG that does not exist with exit 78', async () => {
    const config = join(dir.path, 'check.yaml');
    writeFileSync(config, 'node_id: c1\nlisten: 0.0.0.0:8087\nadvertise: ringkv-0.ringkv-peers:8087\n');
    const check = await run('/bin/sh', [ENTRYPOINT, 'config', 'check', config], { env: imageEnv({}) });
    expect(check.code).toBe(0);
    expect(check.stdout).toContain(`${config}: valid`);
    const bad = join(dir.path, 'bad.yaml');
    writeFileSync(bad, 'node_id: c1\nlisten: everywhere\n');
    const refused = await run('/bin/sh', [ENTRYPOINT, 'config', 'check', bad], { env: imageEnv({}) });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/listen: expected host:port, got "everywhere" \(line 2\)/);
    const missing = await run('/bin/sh', [ENTRYPOINT], { env: imageEnv({ RINGKV_CONFIG: join(dir.path, 'nope.yaml') }) });
    expect(missing.code).toBe(78);
    expect(missing.stderr).toContain('nope.yaml: no such file');
  }, 30_000);
});
