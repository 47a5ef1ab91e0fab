// `ringkv start` of a new cluster and `ringkv token …` as a user runs them,
// in real processes: the first admin token is written to the data directory
// (mode 0600, its path logged, the token itself never), and token
// create/list/revoke work end to end with --token-file, RINGKV_TOKEN and
// --token.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { closedPort } from '../helpers/server.js';
import { waitFor } from '../helpers/cluster.js';
import { ProcessGroup, adminTokenFile, ringkv as runRingkv } from '../helpers/processes.js';
import { writeTestSecretFile } from '../helpers/secret.js';

const processes = new ProcessGroup();
const dir = processes.tempDir('ringkv-cli-tokens-');
afterAll(() => processes.close());

/** Runs the CLI in the temporary directory (no ./.ringkv/token there), with no token in the environment but `env`'s. */
const ringkv = (args: string[], env: Record<string, string> = {}) => {
  const { RINGKV_TOKEN: _t, RINGKV_TOKEN_FILE: _f, ...clean } = process.env;
  return runRingkv(args, env, { cwd: dir.path, baseEnv: clean });
};

describe('ringkv token', () => {
  it('start writes the first admin token; token create, list and revoke work end to end', async () => {
    const port = await closedPort();
    const address = `127.0.0.1:${port}`;
    const dataDir = join(dir.path, 'n1');
    const secretFile = writeTestSecretFile(dir.path);
    const first = processes.startNode(['--node-id', 'n1', '--listen', address, '--data-dir', dataDir, '--secret-file', secretFile]);
    const adminFile = adminTokenFile(dataDir);
    await waitFor(() => first.output().includes('ringkv node listening') && existsSync(adminFile), 20_000, `node up:\n${first.output()}`);
    expect(statSync(adminFile).mode & 0o777).toBe(0o600);
    const admin = readFileSync(adminFile, 'utf8').trim();
    // The log names the file, never the token.
    expect(first.output()).toContain(adminFile);
    expect(first.output()).not.toContain(admin);

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
    first.child.kill('SIGTERM');
    await first.exit;
    const again = processes.startNode(['--node-id', 'n1', '--listen', address, '--data-dir', dataDir, '--secret-file', secretFile]);
    await waitFor(() => again.output().includes('ringkv node listening'), 20_000, `node back:\n${again.output()}`);
    expect(again.output()).not.toContain('first admin token');
    expect(readFileSync(adminFile, 'utf8')).toBe(before);
    expect((await ringkv(['status', '--json', '--node', address], { RINGKV_TOKEN_FILE: adminFile })).code).toBe(0);
    expect((await ringkv(['get', 'cart', 'alice', '--node', address], asReader)).code).toBe(1);
  }, 90_000);
});
