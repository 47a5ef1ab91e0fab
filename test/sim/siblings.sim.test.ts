// Issue 9, finding 3: replicas must converge whatever the sibling count. Each
// side of a partition writes one key up to the sibling limit (100); after the
// heal read repair and anti-entropy must bring every replica to the union
// (200 siblings), and a write with the read's context resolves it.
import { afterEach, describe, expect, it } from 'vitest';
import { type DecodedRecord, decodeRecord, encodeRecord, recordContextBytes } from '../../src/record/codec.js';
import { PureEngine } from '../../src/engine/pure/index.js';
import { type AntiEntropyService, startAntiEntropy } from '../../src/node/anti-entropy.js';
import { RingkvNode } from '../../src/node/node.js';
import { SimNetwork } from '../../src/transport/sim-transport.js';
import { Rand } from '../helpers/random.js';

const B = Buffer.from('b');
const IDS = ['n1', 'n2', 'n3'];
const LIMIT = 100;
const NODE_CONFIG = { requestTimeoutMs: 500, gossipIntervalMs: 1_000, readRepairWindowMs: 50, handoffIntervalMs: 1_000 };

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

async function cluster(withAae: boolean, logs: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> = []) {
  const rand = new Rand(3);
  const random = () => rand.int(0, 0x3fffffff) / 0x40000000;
  const net = new SimNetwork({ random, minDelayMs: 1, maxDelayMs: 5 });
  const engines = new Map<string, PureEngine>();
  const nodes = new Map<string, RingkvNode>();
  const aae: AntiEntropyService[] = [];
  for (const [i, id] of IDS.entries()) {
    const engine = await PureEngine.open({ nodeId: id, epoch: (i + 1).toString(16).padStart(16, '0'), partitionBits: 4 });
    engines.set(id, engine);
    const node = await RingkvNode.start({
      id, address: id, clusterName: 'sim', partitionBits: 4, seeds: i === 0 ? [] : [IDS[0]!], engine,
      transport: net.transport(id), clock: net.clock(id), random, config: NODE_CONFIG,
      log: (level, msg, fields) => logs.push({ level, msg, fields }),
    });
    nodes.set(id, node);
  }
  for (let t = 0; t < 60 && !IDS.every((id) => new Set(nodes.get(id)!.clusterState.ring.owners).size === 3); t++) await net.runFor(1_000);
  await net.runFor(3_000);
  if (withAae) for (const n of nodes.values()) aae.push(startAntiEntropy(n, { intervalMs: 200, requestTimeoutMs: 500, shouldYield: () => false }));
  cleanup = async () => {
    for (const s of aae) s.stop();
    for (const n of nodes.values()) await n.stop();
    for (const e of engines.values()) await e.close();
  };
  const run = async <T>(p: Promise<T>, limitMs = 30_000): Promise<T> => {
    let done = false;
    const settled = p.finally(() => (done = true));
    settled.catch(() => undefined);
    const limit = net.now() + limitMs;
    while (!done && net.now() < limit) await net.runFor(10);
    if (!done) throw new Error('simulated operation did not settle');
    return settled;
  };
  const stored = async (id: string, key: Buffer) => engines.get(id)!.get(B, key);
  /** Each side of `n3 | n1 n2` writes `key` blind up to the limit; the 101st write on each side is refused. */
  const writeBothSidesToTheLimit = async (key: Buffer) => {
    net.isolate('n3');
    for (const id of ['n1', 'n3']) {
      for (let i = 0; i < LIMIT; i++) await run(nodes.get(id)!.put(B, key, null, Buffer.from(`${id}-${i}`), { w: 1 }));
      await expect(run(nodes.get(id)!.put(B, key, null, Buffer.from('one too many'), { w: 1 }))).rejects.toMatchObject({ code: 'TOO_MANY_SIBLINGS' });
    }
    expect(decodeRecord((await stored('n1', key))!).siblings).toHaveLength(LIMIT);
    expect(decodeRecord((await stored('n3', key))!).siblings).toHaveLength(LIMIT);
    net.heal();
  };
  const converged = async (key: Buffer, siblings: number) => {
    const [a, b, c] = await Promise.all(IDS.map((id) => stored(id, key)));
    expect(decodeRecord(a!).siblings).toHaveLength(siblings);
    expect(b).toEqual(a);
    expect(c).toEqual(a);
  };
  return { net, nodes, engines, run, stored, writeBothSidesToTheLimit, converged };
}

describe('finding 3: convergence never depends on the sibling count (simulated, 3 nodes, N=3)', () => {
  it('finding 3: both sides of a partition write one key to the limit; after the heal a read returns the union and read repair makes every replica identical', async () => {
    const c = await cluster(false);
    const key = Buffer.from('rr');
    await c.writeBothSidesToTheLimit(key);
    await c.net.runFor(3_000); // gossip: everyone trusts everyone again
    const read = await c.run(c.nodes.get('n2')!.get(B, key, { r: 3 }));
    expect(decodeRecord(read.record!).siblings).toHaveLength(2 * LIMIT);
    await c.net.runFor(1_000); // the read repairs land
    await c.converged(key, 2 * LIMIT);
    // Further blind writes are refused everywhere (the limit is for client writes), a resolving one goes through.
    await expect(c.run(c.nodes.get('n1')!.put(B, key, null, Buffer.from('blind'), { w: 3 }))).rejects.toMatchObject({ code: 'TOO_MANY_SIBLINGS' });
    const resolved = await c.run(c.nodes.get('n3')!.put(B, key, recordContextBytes(read.record!), Buffer.from('resolved'), { w: 3 }));
    expect(decodeRecord(resolved.record).siblings.map((s) => s.value.toString())).toEqual(['resolved']);
    await c.net.runFor(1_000);
    await c.converged(key, 1);
  });

  it('finding 3: with no reads at all, anti-entropy makes every replica identical with the union', async () => {
    const c = await cluster(true);
    const key = Buffer.from('aae');
    await c.writeBothSidesToTheLimit(key);
    await c.net.runFor(20_000);
    await c.converged(key, 2 * LIMIT);
  });

  it('finding 3: at the hard maximum (65535) a merge is refused, nothing is lost, the node stays up and logs it at error level', async () => {
    const logs: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> = [];
    const c = await cluster(false, logs);
    const key = Buffer.from('huge');
    /** `n` siblings of `actor`, built without n writes (no side could write them: the limit stops clients at 100). */
    const wide = (actor: string, n: number): Buffer => {
      const rec: DecodedRecord = { context: [{ actor: Buffer.from(actor), counter: n }], siblings: [] };
      for (let i = 1; i <= n; i++) rec.siblings.push({ actor: Buffer.from(actor), counter: i, timestamp: 1, tombstone: false, value: Buffer.alloc(0) });
      return encodeRecord(rec);
    };
    const held = await c.engines.get('n1')!.merge({ bucket: B, key, record: wide('p', 40_000), mode: 'siblings', durable: false });
    const other = await c.engines.get('n2')!.merge({ bucket: B, key, record: wide('q', 30_000), mode: 'siblings', durable: false });
    // A replica merge (what a coordinator, a hint delivery or a repair sends) is refused, typed, and logged by the receiver.
    await expect(c.run(c.nodes.get('n2')!.peerRequest('n1', 'kv.merge', { b: B, k: key, record: other, lww: false, durable: false }, 5_000)))
      .rejects.toMatchObject({ code: 'REMOTE', message: expect.stringMatching(/70000 siblings/) });
    expect(logs.filter((l) => l.level === 'error' && l.fields?.node === 'n1')).toEqual([
      { level: 'error', msg: expect.stringMatching(/hard sibling maximum/), fields: expect.objectContaining({ key: key.toString('base64url'), error: expect.stringMatching(/70000 siblings/) }) },
    ]);
    // Anti-entropy finds the difference and cannot repair it: it says so.
    const aaeLogs: typeof logs = [];
    const aae = IDS.map((id) => startAntiEntropy(c.nodes.get(id)!, { schedule: false, shouldYield: () => false, log: (level, msg, fields) => aaeLogs.push({ level, msg, fields }) }));
    try {
      for (let round = 0; round < 40 && !aaeLogs.some((l) => l.level === 'error'); round++) await c.run(Promise.all(aae.map((s) => s.runRound())));
    } finally {
      for (const s of aae) s.stop();
    }
    expect(aaeLogs.find((l) => l.level === 'error')).toMatchObject({ msg: expect.stringMatching(/hard sibling maximum/), fields: { key: key.toString('base64url') } });
    // (Buffer.equals: a deep toEqual over megabytes is slow.)
    expect((await c.stored('n1', key))!.equals(held)).toBe(true);
    expect((await c.stored('n2', key))!.equals(other)).toBe(true);
    // Both nodes still serve other keys.
    await c.run(c.nodes.get('n1')!.put(B, Buffer.from('other'), null, Buffer.from('v'), { w: 3 }));
  });
});
