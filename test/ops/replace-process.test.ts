// `ringkv start --replace <dead>` and `--departed-member-expiry-s` as an
// operator uses them, on real processes: a node of a 3-process cluster is
// killed (-9), a fresh process joins with --replace and gets exactly its
// partitions, and the dead node, now 'left', drops off every member list
// after the configured expiry.
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { RingkvClient } from '../../src/client/index.js';
import { waitFor } from '../helpers/cluster.js';
import { adminTokenFile, readAdminToken } from '../helpers/processes.js';
import { stablePort } from '../helpers/server.js';
import { opsCluster } from './processes.js';

const cluster = opsCluster(['--departed-member-expiry-s', '3']);
afterAll(() => cluster.close());

interface RingDoc {
  owners: string[];
  members: Array<{ id: string; status: string }>;
}

describe('ringkv start --replace', () => {
  it('takes exactly the dead node\'s partitions; the dead node then expires from the member list', async () => {
    const ports = await Promise.all([stablePort(), stablePort(), stablePort(), stablePort()]);
    const seed = [`127.0.0.1:${ports[0]}`];
    const n1 = cluster.spawn('n1', ports[0]!, []);
    await cluster.waitUp(n1);
    await waitFor(() => existsSync(adminTokenFile(n1.dataDir)), 10_000, 'admin token');
    const token = readAdminToken(n1.dataDir);
    const ringOf = async (url: string): Promise<RingDoc> =>
      (await (await fetch(`${url}/ring`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(2_000) })).json()) as RingDoc;
    // n3 joins first, n2 once n3 owns partitions: n2 grows lists whose first old replica is n3, so n3
    // alone gives them to n2 — and is killed, mostly before its catch-up pass (5 s) finishes them: the schedule
    // of the finding (issue 9: r = 3 reads failed until n2 gave n3 up); with the two started together,
    // 2 runs in ~12 had it.
    const n3 = cluster.spawn('n3', ports[2]!, seed);
    await cluster.waitUp(n3);
    await waitFor(async () => new Set((await ringOf(n1.url)).owners).size === 2, 30_000, 'n3 an owner');
    const n2 = cluster.spawn('n2', ports[1]!, seed);
    await cluster.waitUp(n2);
    await waitFor(async () => {
      const rings = await Promise.all([n1, n2, n3].map((n) => ringOf(n.url)));
      return rings.every((r) => new Set(r.owners).size === 3 && JSON.stringify(r.owners) === JSON.stringify(rings[0]!.owners));
    }, 30_000, 'three owners on one ring');
    const client = new RingkvClient({ nodes: [n1.address, n2.address], token });
    for (let i = 0; i < 50; i++) await client.put('rp', `k${i}`, 'v', { w: 3 });

    const before = (await ringOf(n1.url)).owners;
    n3.child.kill('SIGKILL');
    await n3.exit;
    const n4 = cluster.spawn('n4', ports[3]!, seed, ['--replace', 'n3']);
    await cluster.waitUp(n4);
    await waitFor(async () => {
      const r = await ringOf(n1.url);
      return !r.owners.includes('n3') && r.members.find((m) => m.id === 'n3')?.status === 'left';
    }, 30_000, 'n3 replaced');
    const after = (await ringOf(n1.url)).owners;
    expect(after).toEqual(before.map((o) => (o === 'n3' ? 'n4' : o)));
    // Every key readable with all three replicas answering, as soon as n2 and n4 have the ring (gossip,
    // 1 s rounds; a replica asked from a newer ring pulls it at once). n2 still waits for n3 (dead: given
    // up only after receiveGoneMs, 60 s) but reads those partitions through n1 too: it grew into their
    // lists replacing no one. (The bound was 70 s, past receiveGoneMs, while the cause was unknown.)
    await waitFor(async () => {
      const got = await Promise.all(Array.from({ length: 50 }, (_, i) => client.get('rp', `k${i}`, { r: 3 })));
      return got.every((g) => g.found);
    }, 10_000, 'every key on three replicas');

    // Left, then gone after 3 s (the claimant's --departed-member-expiry-s), from every member list.
    await waitFor(async () => {
      const rings = await Promise.all([n1, n2, n4].map((n) => ringOf(n.url)));
      return rings.every((r) => r.members.every((m) => m.id !== 'n3'));
    }, 30_000, 'n3 expired from every member list');
    client.close();
  }, 150_000);
});
