// Tombstone reaping and the reap floors (src/node/reaper.ts) on the simulated
// network, scenario by scenario; the seeded runs in cluster.sim.test.ts check
// NO RESURRECTION over random mixes. 3 nodes, N=3: every node is a primary
// of every key.
import { describe, expect, it } from 'vitest';
import { decodeRecord, encodeRecord, recordContextBytes } from '../../src/record/codec.js';
import { PureEngine } from '../../src/engine/pure/index.js';
import { startAntiEntropy, type AntiEntropyService } from '../../src/node/anti-entropy.js';
import { RingkvNode } from '../../src/node/node.js';
import { ReapFloors, withoutCovered } from '../../src/node/reaper.js';
import { SimNetwork } from '../../src/transport/sim-transport.js';
import { Rand } from '../helpers/random.js';

const B = Buffer.from('b');
const CONFIG = { requestTimeoutMs: 500, gossipIntervalMs: 1_000, readRepairWindowMs: 50, handoffIntervalMs: 1_000, reapDelayMs: 200 };

async function simCluster(seed = 1) {
  const rand = new Rand(seed);
  const random = () => rand.int(0, 0x3fffffff) / 0x40000000;
  const net = new SimNetwork({ random, minDelayMs: 1, maxDelayMs: 5 });
  const ids = ['n1', 'n2', 'n3'];
  const nodes = new Map<string, RingkvNode>();
  const engines = new Map<string, PureEngine>();
  const aae = new Map<string, AntiEntropyService>();
  const reaped: string[] = [];
  for (const [i, id] of ids.entries()) {
    engines.set(id, await PureEngine.open({ nodeId: id, epoch: (i + 1).toString(16).padStart(16, '0'), partitionBits: 4 }));
    const node = await RingkvNode.start({
      id,
      address: id,
      clusterName: 'sim',
      partitionBits: 4,
      seeds: i === 0 ? [] : ['n1'],
      engine: engines.get(id)!,
      transport: net.transport(id),
      clock: net.clock(id),
      random,
      config: CONFIG,
      onReap: (e) => reaped.push(`${id}:${e.key.toString()}`),
    });
    nodes.set(id, node);
    aae.set(id, startAntiEntropy(node, { schedule: false, shouldYield: () => false }));
  }
  for (let t = 0; t < 60 && !ids.every((id) => new Set(nodes.get(id)!.clusterState.ring.owners).size === 3 && nodes.get(id)!.hasJoined); t++) {
    await net.runFor(1_000);
  }
  await net.runFor(3_000);
  const run = async <T>(p: Promise<T>): Promise<T> => {
    let done = false;
    const settled = p.finally(() => {
      done = true;
    });
    settled.catch(() => undefined);
    for (let i = 0; i < 3_000 && !done; i++) await net.runFor(10);
    return settled;
  };
  const stored = (id: string, key: Buffer) => engines.get(id)!.get(B, key);
  return {
    net,
    ids,
    nodes,
    engines,
    aae,
    reaped,
    run,
    stored,
    /** Writes v1, v2 (n1 coordinates), deletes with the full context, waits for the reap everywhere; returns the record holding v2. */
    async writeDeleteReap(key: Buffer): Promise<Buffer> {
      const n1 = nodes.get('n1')!;
      const a = await run(n1.put(B, key, null, Buffer.from('v1'), { w: 3 }));
      const b = await run(n1.put(B, key, recordContextBytes(a.record), Buffer.from('v2'), { w: 3 }));
      await run(n1.put(B, key, recordContextBytes(b.record), null, { w: 3 }));
      await net.runFor(1_000);
      for (const id of ids) expect(await stored(id, key), id).toBeNull();
      return b.record;
    },
    async close() {
      for (const s of aae.values()) s.stop();
      for (const n of nodes.values()) await n.stop();
      for (const e of engines.values()) await e.close();
    },
  };
}

describe('tombstone reaping (simulated, 3 nodes, N=3)', () => {
  it('a delete acknowledged by every primary is reaped everywhere; the next blind write continues the counter', async () => {
    const c = await simCluster();
    const key = Buffer.from('k');
    const old = decodeRecord(await c.writeDeleteReap(key));
    expect(c.reaped.sort()).toEqual(['n1:k', 'n2:k', 'n3:k']);
    const fresh = await c.run(c.nodes.get('n1')!.put(B, key, null, Buffer.from('v3'), { w: 3 }));
    const rec = decodeRecord(fresh.record);
    expect(rec.siblings.map((s) => [s.actor.toString(), s.counter])).toEqual([['n1:0000000000000001', 4]]);
    // The new version's context covers the reaped history: a stale v2 merged later is dropped by plain DVV.
    expect(old.siblings.every((s) => rec.context.some((e) => e.actor.equals(s.actor) && e.counter >= s.counter))).toBe(true);
    await c.close();
  });

  it('a stale copy arriving after the reap is not stored (replication, handoff and anti-entropy merges go through the floor)', async () => {
    const c = await simCluster(2);
    const key = Buffer.from('k');
    const stale = await c.writeDeleteReap(key);
    // A late kv.merge of v2 (e.g. a hint delivered after the reap), through the node's service engine.
    await c.nodes.get('n2')!.engine.merge({ bucket: B, key, record: stale, mode: 'siblings', durable: false });
    expect(await c.stored('n2', key)).toBeNull();
    // A concurrent version the delete did not cover is kept (it is new data, not deleted history).
    const rec = decodeRecord(stale);
    const concurrent = encodeRecord({
      context: [...rec.context, { actor: Buffer.from('zz:0000000000000009'), counter: 1 }],
      siblings: [...rec.siblings, { actor: Buffer.from('zz:0000000000000009'), counter: 1, timestamp: 1, tombstone: false, value: Buffer.from('new') }],
    });
    await c.nodes.get('n2')!.engine.merge({ bucket: B, key, record: concurrent, mode: 'siblings', durable: false });
    expect(decodeRecord((await c.stored('n2', key))!).siblings.map((s) => s.value.toString())).toEqual(['new']);
    await c.close();
  });

  it('a replica that missed the reap (holding only deleted history) is not read back and is told to reap, by reads and by anti-entropy', async () => {
    const c = await simCluster(3);
    const key = Buffer.from('k');
    const stale = await c.writeDeleteReap(key);
    // n3 gets v2 back behind the node's back (the raw engine: as if its kv.reap had been lost before it held v2).
    await c.engines.get('n3')!.merge({ bucket: B, key, record: stale, mode: 'siblings', durable: false });
    const read = await c.run(c.nodes.get('n1')!.get(B, key, { r: 3 }));
    expect(read.record).toBeNull();
    await c.net.runFor(500);
    expect(await c.stored('n3', key)).toBeNull();
    for (const id of c.ids) expect(await c.stored(id, key)).toBeNull();

    // Again, now found by anti-entropy (n3 compares with n1): n1 does not take v2, and tells n3 to reap.
    await c.engines.get('n3')!.merge({ bucket: B, key, record: stale, mode: 'siblings', durable: false });
    const p = c.nodes.get('n1')!.preferenceListOf(0, 3);
    expect(p.primaries).toContain('n3');
    for (let part = 0; part < 16; part++) await c.run(c.aae.get('n3')!.exchange(part, 'n1'));
    await c.net.runFor(500);
    for (const id of c.ids) expect(await c.stored(id, key), id).toBeNull();
    await c.close();
  });

  it('a fallback answer holding a reaped value is filtered by the primaries\u2019 floors', async () => {
    const rec = decodeRecord(encodeRecord({
      context: [{ actor: Buffer.from('a:0000000000000001'), counter: 3 }],
      siblings: [
        { actor: Buffer.from('a:0000000000000001'), counter: 2, timestamp: 1, tombstone: false, value: Buffer.from('old') },
        { actor: Buffer.from('a:0000000000000001'), counter: 3, timestamp: 1, tombstone: false, value: Buffer.from('new') },
      ],
    }));
    const floorCtx = [{ actor: Buffer.from('a:0000000000000001'), counter: 2 }];
    const kept = decodeRecord(withoutCovered(encodeRecord(rec), floorCtx)!);
    expect(kept.siblings.map((s) => s.value.toString())).toEqual(['new']);
    expect(withoutCovered(encodeRecord(rec), [{ actor: Buffer.from('a:0000000000000001'), counter: 3 }])).toBeNull();
  });
});

describe('ReapFloors', () => {
  it('persists floors in engine metadata, merges contexts, restores, and expires them after the TTL', async () => {
    const engine = await PureEngine.open({ nodeId: 'n1', epoch: '0000000000000001', partitionBits: 4 });
    const tomb = (counter: number) =>
      encodeRecord({
        context: [{ actor: Buffer.from('n1:0000000000000001'), counter }],
        siblings: [{ actor: Buffer.from('n1:0000000000000001'), counter, timestamp: 1, tombstone: true, value: Buffer.alloc(0) }],
      });
    const floors = new ReapFloors(engine, { ttlMs: 1_000, maxEntries: 2 });
    expect(floors.get(B, Buffer.from('x'))).toBeUndefined();
    expect(await floors.add(B, Buffer.from('x'), tomb(4), 100)).toBeUndefined();
    const prev = await floors.add(B, Buffer.from('x'), tomb(2), 200);
    expect(prev?.context[0]!.counter).toBe(4);
    expect(floors.get(B, Buffer.from('x'))!.context[0]!.counter).toBe(4); // contexts only grow
    await floors.add(B, Buffer.from('y'), tomb(1), 300);
    expect(floors.full()).toBe(true);
    await floors.restore(B, Buffer.from('y'), undefined);
    expect(floors.size).toBe(1);

    const again = new ReapFloors(engine, { ttlMs: 1_000, maxEntries: 2 });
    await again.load(500);
    expect(again.get(B, Buffer.from('x'))!.context[0]!.counter).toBe(4);
    expect(again.get(B, Buffer.from('y'))).toBeUndefined();
    expect(await again.sweep(1_199)).toBe(0);
    expect(await again.sweep(1_200)).toBe(1);
    const third = new ReapFloors(engine, { ttlMs: 1_000, maxEntries: 2 });
    await third.load(0);
    expect(third.size).toBe(0);
    await engine.close();
  });
});
