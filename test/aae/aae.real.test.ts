// Anti-entropy between real nodes (native engines, uWS peer endpoint, real
// sockets): replicas made to differ behind the cluster's back, by writing
// into one node's engine directly, are repaired by one exchange in each
// direction (the initiator pushes what it has, pulls what it lacks).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordContextBytes } from '../../src/record/codec.js';
import { AntiEntropyService } from '../../src/node/anti-entropy.js';
import type { RunningServer } from '../../src/server/index.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster;
const services: AntiEntropyService[] = [];
beforeAll(async () => {
  cluster = await startCluster(3);
  // Services driven by hand (the servers' own run every 10 s, too rarely to matter here).
  for (const s of cluster.nodes) services.push(AntiEntropyService.start(s.node, { schedule: false, shouldYield: () => false }));
});
afterAll(async () => {
  for (const s of services) s.stop();
  await cluster?.close();
});

const B = Buffer.from('aae');
const partitionOf = (s: RunningServer, key: string): number => Number(s.engine.hashKey(B, Buffer.from(key)) >> BigInt(64 - s.engine.partitionBits));

describe('anti-entropy between real nodes', () => {
  it('one exchange repairs a key only the initiator has and a key only the peer has', async () => {
    const [n1, n2, n3] = cluster.nodes as [RunningServer, RunningServer, RunningServer];
    for (let i = 0; i < 200; i++) await n1.node.put(B, Buffer.from(`k${i}`), null, Buffer.from(`v${i}`), { w: 3 });
    const p = partitionOf(n1, 'k0');
    for (const s of cluster.nodes) expect(s.engine.treeRoots().subarray(p * 8, p * 8 + 8)).toEqual(n1.engine.treeRoots().subarray(p * 8, p * 8 + 8));

    // Identical replicas: the exchange stops at the root.
    const quiet = await services[0]!.exchange(p, 'n2');
    expect(quiet.outcome).toBe('in_sync');
    expect(quiet.totalBytes).toBe(12);

    // Behind the cluster's back: a new key on n1 only, a newer version of k0 on n2 only (same partition).
    const extra = Array.from({ length: 2000 }, (_, i) => `x${i}`).find((k) => partitionOf(n1, k) === p)!;
    await n1.engine.coordinate({ bucket: B, key: Buffer.from(extra), context: null, value: Buffer.from('only-n1'), now: Date.now(), mode: 'siblings', durable: false });
    const k0 = await n2.engine.get(B, Buffer.from('k0'));
    await n2.engine.coordinate({ bucket: B, key: Buffer.from('k0'), context: recordContextBytes(k0!), value: Buffer.from('newer-on-n2'), now: Date.now(), mode: 'siblings', durable: false });
    expect(await n2.engine.get(B, Buffer.from(extra))).toBeNull();

    const report = await services[0]!.exchange(p, 'n2');
    expect(report.outcome).toBe('diverged');
    expect(report.differing.keys).toBe(2);
    expect(report.repaired).toEqual({ local: 1, remote: 1 });
    expect(report.failedKeys).toBe(0);
    for (const key of [extra, 'k0']) {
      const a = await n1.engine.get(B, Buffer.from(key));
      expect(a).not.toBeNull();
      expect(await n2.engine.get(B, Buffer.from(key))).toEqual(a);
    }
    expect(report.totalBytes).toBeGreaterThan(12);
    expect(report.bytes.branches.received).toBe(8 << n1.engine.treeBranchBits);

    // n3 still lacks both; n3 starts an exchange with n1 and pulls them.
    expect(await n3.engine.get(B, Buffer.from(extra))).toBeNull();
    const pull = await services[2]!.exchange(p, 'n1');
    expect(pull.repaired).toEqual({ local: 2, remote: 0 });
    for (const key of [extra, 'k0']) expect(await n3.engine.get(B, Buffer.from(key))).toEqual(await n1.engine.get(B, Buffer.from(key)));
    for (const s of cluster.nodes) expect(s.engine.treeRoots()).toEqual(n1.engine.treeRoots());
    expect((await services[0]!.exchange(p, 'n3')).outcome).toBe('in_sync');

    const text = await n1.node.metrics.registry.metrics();
    expect(text).toMatch(/ringkv_aae_keys_repaired_total\{side="local",node="n1"\} 1/);
    expect(text).toMatch(/ringkv_aae_bytes_total\{step="branches",direction="received",node="n1"\} \d+/);
  });

  it('refuses exchanges with a mismatched tree geometry', async () => {
    const n1 = cluster.nodes[0]!;
    await expect(n1.node.peerRequest('n2', 'aae.root', { p: 0, g: [6, 9, 8] }, 2_000)).rejects.toThrow(/geometry/);
    await expect(n1.node.peerRequest('n2', 'aae.keys', { p: 0, q: Buffer.from([0xff, 0xff, 0xff, 0xff]) }, 2_000)).rejects.toThrow(/range/);
  });
});
