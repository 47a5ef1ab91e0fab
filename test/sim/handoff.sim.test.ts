// Sloppy quorum, hinted handoff and failure detection on the simulated
// network, scenario by scenario (the seeded runs in cluster.sim.test.ts
// cover the random mixes). 4 nodes, N=3: every key has one fallback.
import { describe, expect, it } from 'vitest';
import { partitionOf } from '../../src/core/ring.js';
import { decodeRecord, recordContextBytes } from '../../src/record/codec.js';
import { PureEngine } from '../../src/engine/pure/index.js';
import { RingkvNode } from '../../src/node/node.js';
import { SimNetwork } from '../../src/transport/sim-transport.js';
import { Rand } from '../helpers/random.js';

const B = Buffer.from('b');
const CONFIG = { requestTimeoutMs: 500, gossipIntervalMs: 1_000, readRepairWindowMs: 50, handoffIntervalMs: 1_000 };

interface SimCluster {
  net: SimNetwork;
  ids: string[];
  nodes: Map<string, RingkvNode>;
  engines: Map<string, PureEngine>;
  /** Runs the network until the promise settles (bounded). */
  run<T>(p: Promise<T>, limitMs?: number): Promise<T>;
  start(id: string, seeds: string[]): Promise<RingkvNode>;
  /** A key whose primaries include `primary` (and, if given, whose fallback is `fallback`). */
  keyFor(primary: string, fallback?: string): { key: Buffer; primaries: string[]; fallbacks: string[] };
  values(id: string, key: Buffer): Promise<string[]>;
  close(): Promise<void>;
}

async function simCluster(k: number, seed = 1, config: Record<string, unknown> = {}): Promise<SimCluster> {
  const rand = new Rand(seed);
  const net = new SimNetwork({ random: () => rand.int(0, 0x3fffffff) / 0x40000000, minDelayMs: 1, maxDelayMs: 5 });
  const ids = Array.from({ length: k }, (_, i) => `n${i + 1}`);
  const nodes = new Map<string, RingkvNode>();
  const engines = new Map<string, PureEngine>();
  const run = async <T>(p: Promise<T>, limitMs = 30_000): Promise<T> => {
    let done = false;
    const settled = p.finally(() => {
      done = true;
    });
    settled.catch(() => undefined);
    const limit = net.now() + limitMs;
    while (!done && net.now() < limit) await net.runFor(10);
    if (!done) throw new Error('simulated operation did not settle');
    return settled;
  };
  const start = async (id: string, seeds: string[]): Promise<RingkvNode> => {
    const node = await RingkvNode.start({
      id,
      address: id,
      clusterName: 'sim',
      partitionBits: 4,
      seeds,
      engine: engines.get(id)!,
      transport: net.transport(id),
      clock: net.clock(id),
      random: () => rand.int(0, 0x3fffffff) / 0x40000000,
      config: { ...CONFIG, ...config },
    });
    nodes.set(id, node);
    return node;
  };
  for (const [i, id] of ids.entries()) {
    engines.set(id, await PureEngine.open({ nodeId: id, epoch: (i + 1).toString(16).padStart(16, '0'), partitionBits: 4 }));
    await start(id, i === 0 ? [] : [ids[0]!]);
  }
  // Join and settle: all members valid, one ring owned by all.
  for (let t = 0; t < 60 && !ids.every((id) => new Set(nodes.get(id)!.clusterState.ring.owners).size === k && Object.keys(nodes.get(id)!.clusterState.members).length === k); t++) {
    await net.runFor(1_000);
  }
  await net.runFor(3_000);
  // Every node runs partition transfers (RingkvNode.start builds them): until the joins' transfers
  // are given, a receiver reads a partition from its giver, not its own copy. Settle them too.
  for (let t = 0; t < 60 && !ids.every((id) => nodes.get(id)!.transfers.status().length === 0 && nodes.get(id)!.transfers.receiving().length === 0); t++) {
    await net.runFor(1_000);
  }
  const ring = nodes.get(ids[0]!)!.clusterState.ring;
  expect(new Set(ring.owners).size).toBe(k);
  return {
    net,
    ids,
    nodes,
    engines,
    run,
    start,
    keyFor(primary, fallback) {
      for (let i = 0; i < 10_000; i++) {
        const key = Buffer.from(`key${i}`);
        const pl = nodes.get(ids[0]!)!.preferenceListOf(partitionOf(ring, engines.get(ids[0]!)!.hashKey(B, key)), 3);
        if (pl.primaries.includes(primary) && (fallback === undefined || pl.fallbacks[0] === fallback)) return { key, ...pl };
      }
      throw new Error('no such key');
    },
    async values(id, key) {
      const rec = await engines.get(id)!.get(B, key);
      return rec ? decodeRecord(rec).siblings.filter((s) => !s.tombstone).map((s) => s.value.toString()).sort() : [];
    },
    async close() {
      for (const n of nodes.values()) await n.stop();
      for (const e of engines.values()) await e.close();
    },
  };
}

describe('sloppy quorum and hinted handoff (simulated, 4 nodes, N=3)', () => {
  it('a write with a primary down goes to the fallback as a hint, counts toward W=3, and is handed off when the primary is back', async () => {
    const c = await simCluster(4);
    const { key, primaries, fallbacks } = c.keyFor('n4');
    const coordinator = primaries.find((p) => p !== 'n4')!;
    const fallback = fallbacks[0]!;
    const node = c.nodes.get(coordinator)!;

    c.net.isolate('n4');
    // Before n4 is suspected: the copy for n4 times out, and is retried on the fallback with a hint.
    const first = await c.run(node.put(B, key, null, Buffer.from('v1'), { w: 3 }));
    expect(first.acks).toBe(3);
    expect(node.isSuspected('n4')).toBe(true);
    expect(node.status().members).toContainEqual(expect.objectContaining({ id: 'n4', health: 'suspect' }));
    // Now suspected: the fallback is used up front.
    const ctx = recordContextBytes(first.record);
    const second = await c.run(node.put(B, key, ctx, Buffer.from('v2'), { w: 3 }));
    expect(second.acks).toBe(3);
    expect(await c.engines.get(fallback)!.hintTargets()).toEqual(['n4']);
    expect(await c.values(fallback, key)).toEqual([]); // not in its objects store
    expect(await c.values('n4', key)).toEqual([]);
    expect(await c.nodes.get(fallback)!.metrics.registry.getSingleMetricAsString('ringkv_hints_pending')).toMatch(/ringkv_hints_pending\{node="n\d"\} 1/);

    // pw: only two primaries can ack.
    await expect(c.run(node.put(B, key, null, Buffer.from('x'), { w: 2, pw: 3 }))).rejects.toMatchObject({ code: 'QUORUM_FAILED' });
    // pr: a read can use the fallback for R, but not for PR.
    const read = await c.run(node.get(B, key, { r: 3 }));
    expect(decodeRecord(read.record!).siblings.map((s) => s.value.toString())).toContain('v2');
    await expect(c.run(node.get(B, key, { r: 1, pr: 3 }))).rejects.toMatchObject({ code: 'QUORUM_FAILED' });

    // Heal: within a few handoff rounds the hint reaches n4 and is deleted from the fallback.
    c.net.heal();
    await c.net.runFor(5_000);
    expect(await c.engines.get(fallback)!.hintTargets()).toEqual([]);
    expect(await c.values('n4', key)).toContain('v2');
    expect(c.nodes.get(coordinator)!.isSuspected('n4')).toBe(false);
    expect(await c.nodes.get(fallback)!.metrics.registry.getSingleMetricAsString('ringkv_hints_delivered_total')).toMatch(/ 1$/m);
    await c.close();
  });

  it('a fallback answers a read with the hint it holds: the newest acknowledged version is readable while its only primary copy is down', async () => {
    // No handoff during this test: the hint must stay on the fallback.
    const c = await simCluster(4, 7, { handoffIntervalMs: 600_000 });
    const { key, primaries, fallbacks } = c.keyFor('n1');
    const [p1, p2, p3] = primaries as [string, string, string];
    const fallback = fallbacks[0]!;
    await c.run(c.nodes.get(p1)!.put(B, key, null, Buffer.from('old'), { w: 3 }));
    // p2 and p3 away: p1 writes 'new' with W=2 = its own copy + a hinted copy on the fallback.
    c.net.isolate(p2);
    c.net.isolate(p3);
    const got = await c.run(c.nodes.get(p1)!.get(B, key, { r: 1 }));
    const put = await c.run(c.nodes.get(p1)!.put(B, key, recordContextBytes(got.record!), Buffer.from('new'), { w: 2 }));
    expect(put.acks).toBe(2);
    expect((await c.engines.get(fallback)!.hintTargets()).length).toBe(1);
    // Now p1 (the only primary with 'new') goes away and p2, p3 are back.
    c.net.heal();
    c.net.isolate(p1);
    // p2 learns that p1 is down: with no client traffic, phi convicts the silent peer (≈ 4.1 s, see the phi test
    // below; a heartbeat's timeout alone convicts nobody, issue 9).
    await c.net.runFor(5_000);
    const reader = c.nodes.get(p2)!;
    expect(reader.isSuspected(p1)).toBe(true);
    expect(await c.values(p2, key)).toEqual(['old']);
    // p1 is replaced by the fallback, which answers with its hint: 'new' is read.
    const read = await c.run(reader.get(B, key, { r: 3 }));
    expect(decodeRecord(read.record!).siblings.map((s) => s.value.toString())).toEqual(['new']);
    // ... and read repair brings it to the primaries that answered (never to the fallback's objects).
    await c.net.runFor(500);
    expect(await c.values(p2, key)).toEqual(['new']);
    expect(await c.values(p3, key)).toEqual(['new']);
    expect(await c.values(fallback, key)).toEqual([]);
    await c.close();
  });

  it('a primary that restarts with its data lost is refilled by handoff and read repair', async () => {
    const c = await simCluster(4, 3);
    const { key, primaries } = c.keyFor('n2');
    const coordinator = c.nodes.get(primaries.find((p) => p !== 'n2')!)!;
    await c.run(coordinator.put(B, key, null, Buffer.from('a'), { w: 3 }));
    c.net.crash('n2');
    const b = await c.run(coordinator.put(B, Buffer.from('other-key'), null, Buffer.from('z'))); // n2 may not be involved
    expect(b.acks).toBeGreaterThanOrEqual(2);
    const w = await c.run(coordinator.put(B, key, null, Buffer.from('b'), { w: 3 }));
    expect(w.acks).toBe(3); // the fallback's hinted ack
    await c.net.runFor(2_000);
    // n2 comes back with a new disk (new epoch) and rejoins through n1.
    c.net.restart('n2');
    await c.engines.get('n2')!.close();
    c.engines.set('n2', await PureEngine.open({ nodeId: 'n2', epoch: '00000000000000ff', partitionBits: 4 }));
    await c.start('n2', ['n1']);
    await c.net.runFor(5_000);
    expect(c.nodes.get('n2')!.hasJoined).toBe(true);
    // The hint ('b') arrived by handoff; 'a' comes back with a read-repairing r=n read.
    expect(await c.values('n2', key)).toContain('b');
    await c.run(coordinator.get(B, key, { r: 3 }));
    await c.net.runFor(500);
    expect(await c.values('n2', key)).toEqual(['a', 'b']);
    for (const id of c.ids) expect(await c.engines.get(id)!.hintTargets()).toEqual([]);
    await c.close();
  });

  it('hints survive a restart of the fallback (they live in its engine)', async () => {
    const c = await simCluster(4, 11);
    const { key, primaries, fallbacks } = c.keyFor('n3');
    const fallback = fallbacks[0]!;
    const coordinator = c.nodes.get(primaries.find((p) => p !== 'n3')!)!;
    c.net.isolate('n3');
    await c.run(coordinator.put(B, key, null, Buffer.from('h'), { w: 3 }));
    expect(await c.engines.get(fallback)!.hintTargets()).toEqual(['n3']);
    // The fallback crashes and restarts on the same engine while n3 is still away.
    c.net.crash(fallback);
    c.net.restart(fallback);
    const restarted = await c.start(fallback, []);
    expect(restarted.metrics.hintsPending).toBeDefined();
    expect(await restarted.metrics.registry.getSingleMetricAsString('ringkv_hints_pending')).toMatch(/ 1$/m);
    c.net.heal();
    await c.net.runFor(5_000);
    expect(await c.engines.get(fallback)!.hintTargets()).toEqual([]);
    expect(await c.values('n3', key)).toEqual(['h']);
    await c.close();
  });

  it('W=1: a write succeeds while only its coordinator is reachable; with every primary down it is refused', async () => {
    const c = await simCluster(4, 5);
    const { key, primaries, fallbacks } = c.keyFor('n1');
    const [p1, p2, p3] = primaries as [string, string, string];
    c.net.isolate(p1);
    // p1 alone: no fallback reachable either; W=1 is its own write.
    const alone = await c.run(c.nodes.get(p1)!.put(B, key, null, Buffer.from('solo'), { w: 1 }));
    expect(alone.acks).toBe(1);
    c.net.heal();
    // All three primaries unreachable from the fallback: nobody may coordinate.
    c.net.partition([fallbacks[0]!], [p1, p2, p3]);
    // Refused: the forward to p1 goes unanswered, so it may have reached p1 and is not coordinated
    // again anywhere (finding 2); a TIMEOUT, or UNAVAILABLE when no primary was even tried.
    await expect(c.run(c.nodes.get(fallbacks[0]!)!.put(B, key, null, Buffer.from('no'), { w: 1 }))).rejects.toMatchObject({
      code: expect.stringMatching(/^(UNAVAILABLE|TIMEOUT)$/),
    });
    await c.close();
  });

  it('validates pr and pw (0..n)', async () => {
    const c = await simCluster(4);
    const node = c.nodes.get('n1')!;
    await expect(node.get(B, Buffer.from('k'), { pr: 4 })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(node.put(B, Buffer.from('k'), null, Buffer.from('v'), { pw: -1 })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(node.put(B, Buffer.from('k'), null, Buffer.from('v'), { pw: 1.5 })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await c.close();
  });

  it('the phi detector convicts a silent peer without any client traffic, and clears it when it is back', async () => {
    const c = await simCluster(4, 2);
    const n1 = c.nodes.get('n1')!;
    expect(n1.phiOf('n2')).toBeLessThan(1);
    c.net.isolate('n2');
    // Within two heartbeat rounds a ping to n2 times out (the fast path)...
    await c.net.runFor(3_500);
    expect(n1.isSuspected('n2')).toBe(true);
    // ... and after mean interval + acceptable pause + ~5.6 stddev of silence (≈ 4.1 s) its phi is past 8.
    await c.net.runFor(1_500);
    expect(n1.phiOf('n2')).toBeGreaterThan(8);
    const member = (n1.status().members as Array<{ id: string; health: string; phi: number }>).find((m) => m.id === 'n2')!;
    expect(member.health).toBe('suspect');
    expect(member.phi).toBeGreaterThan(8);
    c.net.heal();
    await c.net.runFor(2_000);
    expect(n1.isSuspected('n2')).toBe(false);
    expect(n1.phiOf('n2')).toBeLessThan(1);
    await c.close();
  });

  it('finding 2: a forward whose reply is lost is retried on the same coordinator, never coordinated twice — one blind write, one sibling', async () => {
    const c = await simCluster(4);
    const { key, primaries } = c.keyFor('n2', 'n1'); // n1 is not a primary: its writes are forwarded
    const first = primaries.find((p) => !c.nodes.get('n1')!.isSuspected(p))!;
    const n1 = c.nodes.get('n1')!;
    // Slow links, so the forward reaches `first` (20 ms) and its reply (after a 40 ms replication) can be cut off.
    c.net.setDelay(20, 20);

    // The reply is lost for good: the forwarder asks `first` again, not another primary, and gives up with TIMEOUT.
    const lost = n1.put(B, key, null, Buffer.from('once'), { w: 2, timeoutMs: 500 });
    lost.catch(() => undefined);
    await c.net.runFor(30);
    c.net.partition(['n1'], [first]);
    await expect(c.run(lost)).rejects.toMatchObject({ code: 'TIMEOUT' });
    c.net.heal();
    c.net.setDelay(1, 5);
    await c.net.runFor(3_000);
    const read = await c.run(c.nodes.get(first)!.get(B, key, { r: 3 }));
    expect(decodeRecord(read.record!).siblings.map((s) => s.value.toString())).toEqual(['once']);

    // The reply is lost once: the retry (same write id) gets the first coordination's outcome.
    const key2 = Buffer.from(`${key.toString()}-2`);
    const pl2 = n1.preferenceListOf(partitionOf(n1.clusterState.ring, c.engines.get('n1')!.hashKey(B, key2)), 3);
    const first2 = pl2.primaries.includes('n1') ? null : pl2.primaries[0]!;
    if (first2 !== null) {
      c.net.setDelay(20, 20);
      const retried = n1.put(B, key2, null, Buffer.from('twice-asked'), { w: 2, timeoutMs: 1_000 });
      await c.net.runFor(30);
      c.net.partition(['n1'], [first2]);
      await c.net.runFor(540); // past the first attempt's half of the deadline, while the retry waits
      c.net.heal();
      const ok = await c.run(retried);
      expect(ok.acks).toBeGreaterThanOrEqual(2);
      c.net.setDelay(1, 5);
      await c.net.runFor(3_000);
      const read2 = await c.run(c.nodes.get(first2)!.get(B, key2, { r: 3 }));
      expect(decodeRecord(read2.record!).siblings.map((s) => s.value.toString())).toEqual(['twice-asked']);
    }
    await c.close();
  });
});

describe('finding 4: read-your-writes through one node while the write coordinator sees other failures (simulated, 5 nodes, N=3)', () => {
  it('a read through the node that took the write waits for the copy of the primary its writes go to', async () => {
    const c = await simCluster(5, 4);
    // n1 is no primary of the key: it forwards writes to the first healthy primary, P.
    const n1 = c.nodes.get('n1')!;
    const ring = n1.clusterState.ring;
    const preference = (k: Buffer) => n1.preferenceListOf(partitionOf(ring, c.engines.get('n1')!.hashKey(B, k)), 3);
    const key = Array.from({ length: 1_000 }, (_, i) => Buffer.from(`ryw${i}`)).find((k) => !preference(k).primaries.includes('n1'))!;
    const { primaries } = preference(key);
    const [p, ...others] = primaries as [string, ...string[]];
    // P alone loses the other two primaries (just healed elsewhere, say): it suspects them, n1 does not.
    c.net.partition([p], others);
    await c.net.runFor(4_000);
    expect(others.every((o) => c.nodes.get(p)!.isSuspected(o))).toBe(true);
    expect(primaries.some((o) => n1.isSuspected(o))).toBe(false);
    // So P's writes land on P and as hints on fallbacks (W=2 met without the other primaries), while n1 reads
    // from the three primaries: any 2 answers would do, and 2 of them do not have the write yet.
    const misses: number[] = [];
    let context: Buffer | null = null;
    for (let i = 0; i < 20; i++) {
      await c.run(n1.put(B, key, context, Buffer.from(`v${i}`), { w: 2, timeoutMs: 2_000 }));
      const read = await c.run(n1.get(B, key, { r: 2, timeoutMs: 2_000 }));
      const values = read.record ? decodeRecord(read.record).siblings.map((s) => s.value.toString()) : [];
      if (!values.includes(`v${i}`)) misses.push(i);
      context = read.record ? recordContextBytes(read.record) : null;
    }
    expect(misses).toEqual([]);
    c.net.heal();
    await c.close();
  });
});
