// The cluster secret as an operator meets it on the command line: `ringkv
// start` refuses to run without one (unless --insecure-loopback on loopback
// addresses), takes it from a file or the environment and never prints it;
// `ringkv dev` makes one (0600, in its data directory) and says where.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, ProcessGroup, readAdminToken, ringkv as runRingkv, stopProcess, untilOutput, type TrackedProcess } from '../helpers/processes.js';
import { closedPort } from '../helpers/server.js';

const processes = new ProcessGroup();
afterAll(() => processes.close(0));

/** The environment without any cluster secret of the test runner's. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('RINGKV_CLUSTER_')) delete env[k];
  return { ...env, ...extra };
}

/** Runs `ringkv ...args` to its end with exactly `env`. */
const ringkv = (args: string[], env = cleanEnv()) => runRingkv(args, {}, { baseEnv: env, timeoutMs: 20_000 });

/** Spawns a long-running command; resolves when `ready` shows in its output (bounded). */
async function spawnUntil(args: string[], ready: RegExp, env: NodeJS.ProcessEnv) {
  const p = processes.spawn(process.execPath, [CLI, ...args], { env });
  await untilOutput(p, ready, 30_000);
  return p;
}

/** SIGTERM, SIGKILL after 10 s. */
const stop = (p: TrackedProcess) => stopProcess(p, 10_000);

describe('ringkv start and the cluster secret', () => {
  it('refuses to start without a secret, and insecure mode off loopback, with the reason and a non-zero exit', async () => {
    const dir = processes.tempDir('ringkv-cli-secret-');
    const none = await ringkv(['start', '--listen', '127.0.0.1:0', '--data-dir', dir.path]);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/no cluster secret: give --secret-file/);
    const wildcard = await ringkv(['start', '--insecure-loopback', '--listen', '0.0.0.0:0', '--data-dir', dir.path]);
    expect(wildcard.code).not.toBe(0);
    expect(wildcard.stderr).toMatch(/insecure loopback mode needs loopback/);
    const short = join(dir.path, 'short.secret');
    writeFileSync(short, 'abc\n', { mode: 0o600 });
    const weak = await ringkv(['start', '--secret-file', short, '--listen', '127.0.0.1:0', '--data-dir', dir.path]);
    expect(weak.code).toBe(78); // EXIT_CONFIG_REFUSED: restarting it unchanged cannot help
    expect(weak.stdout + weak.stderr).toMatch(/at least 16 bytes/);
    expect(weak.stdout + weak.stderr).not.toContain('abc');
  });

  it('runs with the secret from the environment and never prints it', async () => {
    const dir = processes.tempDir('ringkv-cli-secret-');
    const secret = 'env-secret-that-must-not-show-0123456789';
    const port = await closedPort();
    const node = await spawnUntil(
      ['start', '--listen', `127.0.0.1:${port}`, '--data-dir', dir.path, '--log-level', 'debug'],
      /ringkv node listening/,
      cleanEnv({ RINGKV_CLUSTER_SECRET: secret }),
    );
    // The node made a new cluster, so its first admin token is in its data directory (these routes need one).
    const headers = { authorization: `Bearer ${readAdminToken(dir.path)}` };
    const status = await (await fetch(`http://127.0.0.1:${port}/status`, { headers })).text();
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers })).text();
    const ring = await (await fetch(`http://127.0.0.1:${port}/ring`, { headers })).text();
    await stop(node);
    expect(status).toContain('"cluster"');
    for (const shown of [node.output(), status, metrics, ring]) expect(shown).not.toContain(secret);
  });
});

describe('ringkv dev and the cluster secret', () => {
  it('creates a 0600 secret in its data directory on the first run, says where, and reads the same one on the next', async () => {
    const dir = processes.tempDir('ringkv-cli-dev-');
    const port = await closedPort();
    const secretFile = join(dir.path, 'cluster.secret');
    const args = ['dev', '--nodes', '1', '--base-port', String(port), '--data-dir', dir.path];
    const first = await spawnUntil(args, /nodes up/, cleanEnv());
    await stop(first);
    expect(first.output()).toContain(`cluster secret created in ${secretFile}`);
    expect(existsSync(secretFile)).toBe(true);
    expect(statSync(secretFile).mode & 0o777).toBe(0o600);
    const secret = readFileSync(secretFile, 'utf8').trim();
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    expect(first.output()).not.toContain(secret);

    // Another port: the first run's ports may sit in TIME_WAIT.
    const port2 = await closedPort();
    const second = await spawnUntil(['dev', '--nodes', '1', '--base-port', String(port2), '--data-dir', dir.path], /nodes up/, cleanEnv());
    await stop(second);
    expect(second.output()).toContain(`cluster secret read from ${secretFile}`);
    expect(readFileSync(secretFile, 'utf8').trim()).toBe(secret);
  });
});
