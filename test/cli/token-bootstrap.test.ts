// `ringkv token bootstrap`: every admin token of a cluster is lost; on one
// stopped node the operator adds a new admin token to the cluster state in
// its data directory, starts the node again, and the token works on every
// member (the grant travels by gossip) — real processes, real sled files.
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/cluster.js';
import { ProcessCluster, ringkv, stablePort } from '../ops/processes.js';

const cluster = new ProcessCluster();
afterAll(() => cluster.close());

const asToken = (token: string) => ({ headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5_000) });

describe('ringkv token bootstrap', () => {
  it('makes a new admin token on a stopped node; after its restart it works on every member, and the old tokens stay as they were', async () => {
    const [p1, p2] = [await stablePort(), await stablePort()];
    let n1 = cluster.start('n1', p1, []);
    await cluster.waitUp(n1);
    const adminFile = join(n1.dataDir, 'admin.token');
    await waitFor(() => { try { return readFileSync(adminFile, 'utf8').trim().length > 0; } catch { return false; } }, 10_000, 'first admin token');
    const first = readFileSync(adminFile, 'utf8').trim();
    const n2 = cluster.start('n2', p2, [n1.address]);
    await cluster.waitUp(n2);
    await waitFor(async () => {
      const r = await fetch(`${n2.url}/status`, asToken(first)).catch(() => null);
      return r !== null && r.ok && ((await r.json()) as { members: unknown[] }).members.length === 2;
    }, 20_000, 'n2 joined, and takes the first token');

    // A running node's data directory is refused: its storage is locked.
    const inUse = await ringkv(['token', 'bootstrap', '--node-id', 'n2', '--data-dir', n2.dataDir, '--partition-bits', '6']);
    expect(inUse.code).toBe(1);
    expect(inUse.stderr).toMatch(/in use \(stop the node first\)/);

    n1.child.kill('SIGTERM');
    expect(await n1.exited).toBe(0);
    rmSync(adminFile); // every admin token lost

    // Another cluster's name, another node's id: refused, nothing written.
    const otherCluster = await ringkv(['token', 'bootstrap', '--node-id', 'n1', '--data-dir', n1.dataDir, '--partition-bits', '6', '--cluster', 'elsewhere']);
    expect(otherCluster.code).toBe(1);
    expect(otherCluster.stderr).toMatch(/belongs to cluster 'ringkv', not 'elsewhere'/);
    const otherId = await ringkv(['token', 'bootstrap', '--node-id', 'n9', '--data-dir', n1.dataDir, '--partition-bits', '6']);
    expect(otherId.code).toBe(1);
    expect(() => statSync(adminFile)).toThrow();

    const made = await ringkv(['token', 'bootstrap', '--node-id', 'n1', '--data-dir', n1.dataDir, '--partition-bits', '6']);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stderr).toContain(adminFile);
    expect(statSync(adminFile).mode & 0o777).toBe(0o600);
    const recovered = readFileSync(adminFile, 'utf8').trim();
    expect(recovered).toMatch(/^rkv_[A-Za-z0-9_-]{43}$/);
    expect(recovered).not.toBe(first);
    // The token is printed nowhere.
    expect(made.stdout + made.stderr).not.toContain(recovered);
    // n2 has not heard of it yet.
    expect((await fetch(`${n2.url}/admin/tokens`, asToken(recovered))).status).toBe(401);

    n1 = cluster.start('n1', p1, []);
    await cluster.waitUp(n1);
    // The grant reaches n2 by gossip; there the recovered token manages tokens.
    await waitFor(async () => (await fetch(`${n2.url}/admin/tokens`, asToken(recovered)).catch(() => null))?.status === 200, 20_000, 'recovered token accepted on n2');
    const listed = (await (await fetch(`${n2.url}/admin/tokens`, asToken(recovered))).json()) as { tokens: Array<{ id: string; role: string; label?: string; revokedAtMs: number | null }> };
    expect(listed.tokens.filter((t) => t.role === 'admin' && t.revokedAtMs === null)).toHaveLength(2);
    // The old tokens are untouched (revoke them with `ringkv token revoke` if they may have leaked).
    expect((await fetch(`${n1.url}/status`, asToken(first))).status).toBe(200);
    const old = listed.tokens.find((t) => t.label === 'bootstrap')!;
    const revoked = await ringkv(['token', 'revoke', old.id, '--node', n2.address, '--token', recovered]);
    expect(revoked.code, revoked.stderr).toBe(0);
    await waitFor(async () => (await fetch(`${n1.url}/status`, asToken(first)).catch(() => null))?.status === 401, 20_000, 'old admin token refused on n1');
  });
});
