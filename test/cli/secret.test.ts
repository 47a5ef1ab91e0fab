// The cluster secret as an operator meets it on the command line: `ringkv
// start` refuses to run without one (unless --insecure-loopback on loopback
// addresses), takes it from a file or the environment and never prints it;
// `ringkv dev` makes one (0600, in its data directory) and says where.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { closedPort } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';

const CLI = fileURLToPath(new URL('../../bin/ringkv.js', import.meta.url));
const run = promisify(execFile);
const dirs: Array<{ remove(): void }> = [];
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  dirs.forEach((d) => d.remove());
});

/** The environment without any cluster secret of the test runner's. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('RINGKV_CLUSTER_')) delete env[k];
  return { ...env, ...extra };
}

async function ringkv(args: string[], env = cleanEnv()): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { timeout: 20_000, env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Spawns a long-running command; resolves when `ready` shows in its output (bounded). */
function spawnUntil(args: string[], ready: RegExp, env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  children.push(child);
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready within 30 s:\n${output}`)), 30_000);
    const onData = (d: Buffer) => {
      output += d.toString();
      if (ready.test(output)) {
        clearTimeout(timer);
        resolve({ child, output: () => output });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`exited ${code}:\n${output}`)));
  });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

describe('ringkv start and the cluster secret', () => {
  it('refuses to start without a secret, and insecure mode off loopback, with the reason and a non-zero exit', async () => {
    const dir = tempDir('ringkv-cli-secret-');
    dirs.push(dir);
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
    const dir = tempDir('ringkv-cli-secret-');
    dirs.push(dir);
    const secret = 'env-secret-that-must-not-show-0123456789';
    const port = await closedPort();
    const node = await spawnUntil(
      ['start', '--listen', `127.0.0.1:${port}`, '--data-dir', dir.path, '--log-level', 'debug'],
      /ringkv node listening/,
      cleanEnv({ RINGKV_CLUSTER_SECRET: secret }),
    );
    // The node made a new cluster, so its first admin token is in its data directory (these routes need one).
    const headers = { authorization: `Bearer ${readFileSync(join(dir.path, 'admin.token'), 'utf8').trim()}` };
    const status = await (await fetch(`http://127.0.0.1:${port}/status`, { headers })).text();
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers })).text();
    const ring = await (await fetch(`http://127.0.0.1:${port}/ring`, { headers })).text();
    await stop(node.child);
    expect(status).toContain('"cluster"');
    for (const shown of [node.output(), status, metrics, ring]) expect(shown).not.toContain(secret);
  });
});

describe('ringkv dev and the cluster secret', () => {
  it('creates a 0600 secret in its data directory on the first run, says where, and reads the same one on the next', async () => {
    const dir = tempDir('ringkv-cli-dev-');
    dirs.push(dir);
    const port = await closedPort();
    const secretFile = join(dir.path, 'cluster.secret');
    const args = ['dev', '--nodes', '1', '--base-port', String(port), '--data-dir', dir.path];
    const first = await spawnUntil(args, /nodes up/, cleanEnv());
    await stop(first.child);
    expect(first.output()).toContain(`cluster secret created in ${secretFile}`);
    expect(existsSync(secretFile)).toBe(true);
    expect(statSync(secretFile).mode & 0o777).toBe(0o600);
    const secret = readFileSync(secretFile, 'utf8').trim();
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    expect(first.output()).not.toContain(secret);

    // Another port: the first run's ports may sit in TIME_WAIT.
    const port2 = await closedPort();
    const second = await spawnUntil(['dev', '--nodes', '1', '--base-port', String(port2), '--data-dir', dir.path], /nodes up/, cleanEnv());
    await stop(second.child);
    expect(second.output()).toContain(`cluster secret read from ${secretFile}`);
    expect(readFileSync(secretFile, 'utf8').trim()).toBe(secret);
  });
});
