// `ringkv start` of a new cluster and `ringkv token …` as a user runs them,
// in real processes: the first admin token is written to the data directory
// (mode 0600, its path logged, the token itself never), and token
// create/list/revoke work end to end with --token-file, RINGKV_TOKEN and
// --token.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { closedPort } from '../helpers/server.js';
import { waitFor } from '../helpers/cluster.js';
import { writeTestSecretFile } from '../helpers/secret.js';
import { tempDir } from '../helpers/tmp.js';

const CLI = fileURLToPath(new URL('../../bin/ringkv.js', import.meta.url));
const run = promisify(execFile);
const dir = tempDir('ringkv-cli-tokens-');
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const c of children) {
    if (c.exitCode !== null) continue;
    c.kill('SIGTERM');
    await new Promise((r) => c.once('exit', r));
  }
  dir.remove();
});

/** Runs the CLI in the temporary directory (no ./.ringkv/token there), with no token in the environment but `env`'s. */
const ringkv = async (args: string[], env: Record<string, string> = {}) => {
  const { RINGKV_TOKEN: _t, RINGKV_TOKEN_FILE: _f, ...clean } = process.env;
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { timeout: 20_000, cwd: dir.path, env: { ...clean, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

describe('ringkv token', () => {
  it('start writes the first admin token; token create, list and revoke work end to end', async () => {
    const port = await closedPort();
    const address = `127.0.0.1:${port}`;
    const dataDir = join(dir.path, 'n1');
    const secretFile = writeTestSecretFile(dir.path);
    const child = spawn(process.execPath, [CLI, 'start', '--node-id', 'n1', '--listen', address, '--data-dir', dataDir, '--secret-file', secretFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let log = '';
    child.stdout!.on('data', (d) => (log += d));
    child.stderr!.on('data', (d) => (log += d));
    const adminFile = join(dataDir, 'admin.token');
    await waitFor(() => log.includes('ringkv node listening') && existsSync(adminFile), 20_000, `node up:\n${log}`);
    expect(statSync(adminFile).mode & 0o777).toBe(0o600);
    const admin = readFileSync(adminFile, 'utf8').trim();
    // The log names the file, never the token.
    expect(log).toContain(adminFile);
    expect(log).not.toContain(admin);

    // Without a token: refused.
    const refused = await ringkv(['status', '--node', address]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/UNAUTHORIZED \(401\)/);

    // An admin makes a reader token: printed alone on stdout, the id on stderr.
    const made = await ringkv(['token', 'create', '--role', 'read', '--label', 'dashboard', '--node', address, '--token-file', adminFile]);
    expect(made.code, made.stderr).toBe(0);
    const reader = made.stdout.trim();
    expect(reader).toMatch(/^rkv_[A-Za-z0-9_-]{43}$/);
    const id = /token ([0-9a-f]{16}): role read/.exec(made.stderr)![1]!;

    // The reader reads (RINGKV_TOKEN), may not write or manage tokens.
    const asReader = { RINGKV_TOKEN: reader };
    const missing = await ringkv(['get', 'cart', 'alice', '--node', address], asReader);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^not found/);
    const write = await ringkv(['put', 'cart', 'alice', 'milk', '--blind', '--node', address], asReader);
    expect(write.code).toBe(1);
    expect(write.stderr).toMatch(/FORBIDDEN \(403\)/);
    expect((await ringkv(['token', 'list', '--node', address], asReader)).stderr).toMatch(/FORBIDDEN \(403\)/);
    // A token the CLI is given on the command line works too.
    expect((await ringkv(['put', 'cart', 'alice', 'milk', '--node', address, '--token', admin])).code).toBe(0);
    expect((await ringkv(['get', 'cart', 'alice', '--node', address], asReader)).stdout).toBe('milk\n');

    // The list shows ids and grants, never a token.
    const listed = await ringkv(['token', 'list', '--json', '--node', address], { RINGKV_TOKEN_FILE: adminFile });
    expect(listed.code, listed.stderr).toBe(0);
    const tokens = JSON.parse(listed.stdout) as Array<{ id: string; role: string; label: string | null; revokedAtMs: number | null }>;
    expect(tokens.map((t) => [t.role, t.label]).sort()).toEqual([['admin', 'bootstrap'], ['read', 'dashboard']]);
    expect(listed.stdout).not.toContain(reader.slice(4));
    expect(listed.stdout).not.toContain(admin.slice(4));

    // Revoked: the reader is refused from then on.
    const revoked = await ringkv(['token', 'revoke', id, '--node', address, '--token-file', adminFile]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect((await ringkv(['get', 'cart', 'alice', '--node', address], asReader)).stderr).toMatch(/UNAUTHORIZED \(401\)/);
    const after = JSON.parse((await ringkv(['token', 'list', '--json', '--node', address, '--token-file', adminFile])).stdout) as typeof tokens;
    expect(after.find((t) => t.id === id)?.revokedAtMs).toBeTypeOf('number');

    // A bad grant is refused by the CLI or the node, with a non-zero exit.
    expect((await ringkv(['token', 'create', '--role', 'root', '--node', address, '--token-file', adminFile])).code).not.toBe(0);
    expect((await ringkv(['token', 'create', '--role', 'admin', '--bucket', 'cart', '--node', address, '--token-file', adminFile])).code).not.toBe(0);

    // A restart of the same data directory keeps the tokens and writes no new admin token.
    const before = readFileSync(adminFile, 'utf8');
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    const again = spawn(process.execPath, [CLI, 'start', '--node-id', 'n1', '--listen', address, '--data-dir', dataDir, '--secret-file', secretFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(again);
    let log2 = '';
    again.stdout!.on('data', (d) => (log2 += d));
    again.stderr!.on('data', (d) => (log2 += d));
    await waitFor(() => log2.includes('ringkv node listening'), 20_000, `node back:\n${log2}`);
    expect(log2).not.toContain('first admin token');
    expect(readFileSync(adminFile, 'utf8')).toBe(before);
    expect((await ringkv(['status', '--json', '--node', address], { RINGKV_TOKEN_FILE: adminFile })).code).toBe(0);
    expect((await ringkv(['get', 'cart', 'alice', '--node', address], asReader)).code).toBe(1);
  }, 90_000);
});
