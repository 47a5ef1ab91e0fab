// `ringkv status` during a join, on real processes: a 3-node cluster of
// `ringkv start` processes holding data, then a 4th node joins; while its
// partitions move, `ringkv status` shows one row per node with partitions to
// send and to receive and objects moved (not one entry per partition), and
// afterwards that no transfer is in progress. `--json` is the raw document.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/cluster.js';
import { ProcessGroup, readAdminToken, ringkv, untilPing } from '../helpers/processes.js';
import { writeTestSecretFile } from '../helpers/secret.js';
import { stablePorts } from '../helpers/server.js';

const processes = new ProcessGroup();
const dir = processes.tempDir('ringkv-status-join-');
afterAll(() => processes.close(5_000));

/** The transfer table's rows of a `ringkv status` output: node → its columns. */
function transferRows(out: string): Map<string, { send: number; receive: number; objects: number; rate: string; eta: string }> {
  const lines = out.split('\n');
  const header = lines.findIndex((l) => l.startsWith('NODE '));
  const rows = new Map<string, { send: number; receive: number; objects: number; rate: string; eta: string }>();
  if (header < 0) return rows;
  for (const l of lines.slice(header + 1)) {
    if (!/^n\d/.test(l)) break;
    const [node, send, receive, objects, , rate, eta] = l.split(/\s{2,}/);
    const num = (s: string | undefined) => Number((s ?? '').replace(/,/g, ''));
    rows.set(node!, { send: num(send), receive: num(receive), objects: num(objects), rate: rate ?? '', eta: eta ?? '' });
  }
  return rows;
}

describe('ringkv status during a join', () => {
  it('summarises the transfers per node while a 4th node joins a 3-node cluster', async () => {
    const secretFile = writeTestSecretFile(dir.path);
    const ports = await stablePorts(4);
    const address = (i: number) => `127.0.0.1:${ports[i]}`;
    const start = (i: number, seeds: boolean) =>
      processes.startNode([
        '--node-id', `n${i + 1}`, '--listen', address(i), '--data-dir', join(dir.path, `n${i + 1}`), '--secret-file', secretFile, '--log-level', 'warn',
        // Q = 256: the joins of a small cluster go faster on a busy machine; transfers work the same.
        '--partition-bits', '8',
        ...(seeds ? ['--seeds', address(0)] : []),
      ]);
    const first = start(0, false);
    await untilPing(first, address(0));
    await Promise.all([1, 2].map(async (i) => untilPing(start(i, true), address(i))));
    const token = readAdminToken(join(dir.path, 'n1'));
    const env = { RINGKV_TOKEN: token };
    const statusJson = async (i: number) => JSON.parse((await ringkv(['status', '--json', '--node', address(i)], env)).stdout) as {
      members: Array<{ id: string; status: string; partitions: number }>;
      transfers: unknown[];
      transferSummary: { sending: number; receiving: number };
    };
    const settled = async (count: number) => {
      const docs = await Promise.all(Array.from({ length: count }, (_, i) => statusJson(i)));
      return docs.every((d) => d.members.length === count && d.members.every((m) => m.status === 'valid' && m.partitions > 0) && d.transfers.length === 0);
    };
    await waitFor(() => settled(3), 30_000, 'three valid members on every node, no transfers');

    // Data to move: 4,000 objects of 1 KiB, written through every node. Each old
    // member gives a joiner about a quarter of its share, twice (the catch-up
    // pass), at most `batch` objects a tick: the join takes several seconds.
    const value = 'v'.repeat(1024);
    for (let batch = 0; batch < 40; batch++) {
      await Promise.all(
        Array.from({ length: 100 }, async (_, j) => {
          const k = batch * 100 + j;
          const res = await fetch(`http://${address(k % 3)}/kv/join/k${k}`, { method: 'PUT', body: value, headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
          expect(res.status).toBe(204);
        }),
      );
    }

    const fourth = start(3, true);
    await untilPing(fourth, address(3));
    // Snapshots of `ringkv status` until the join's transfers are over (bounded).
    const snapshots: string[] = [];
    const deadline = Date.now() + 90_000;
    let done = false;
    while (Date.now() < deadline) {
      const out = await ringkv(['status', '--node', address(0)], env);
      expect(out.code, out.stderr).toBe(0);
      snapshots.push(out.stdout);
      if (snapshots.length > 3 && out.stdout.includes('no partition transfers in progress') && out.stdout.includes('n4 ')) {
        done = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(done, snapshots.at(-1)).toBe(true);

    const during = snapshots.map(transferRows).filter((rows) => rows.size > 0);
    expect(during.length, snapshots.join('\n----\n')).toBeGreaterThan(0);
    // n4 receives; the old members send to it; nobody's row is per partition.
    expect(during.some((rows) => (rows.get('n4')?.receive ?? 0) > 0)).toBe(true);
    expect(during.some((rows) => ['n1', 'n2', 'n3'].some((n) => (rows.get(n)?.send ?? 0) > 0))).toBe(true);
    for (const rows of during) expect(rows.size).toBeLessThanOrEqual(4);
    // Objects moved grow while it runs, with a rate (objects and bytes a second) and an ETA once there is a window.
    expect(during.some((rows) => [...rows.values()].some((r) => r.objects > 0))).toBe(true);
    expect(during.some((rows) => [...rows.values()].some((r) => /^[1-9][\d,]* obj\/s, [\d.]+ (B|KiB|MiB)\/s$/.test(r.rate) && /^\d+ (s|min)/.test(r.eta))), snapshots.join('\n----\n')).toBe(true);
    for (const s of snapshots) expect(s).not.toMatch(/\(index\)|'/);

    // The raw document keeps its shape: members, the per-partition list, and now the summary.
    await waitFor(() => settled(4), 30_000, 'four valid members, no transfers');
    const doc = await statusJson(3);
    expect(doc.members.map((m) => m.id).sort()).toEqual(['n1', 'n2', 'n3', 'n4']);
    expect(doc.transfers).toEqual([]);
    expect(doc.transferSummary).toMatchObject({ sending: 0, receiving: 0 });
  }, 180_000);
});
