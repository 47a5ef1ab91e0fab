// The anti-entropy exchange (src/core/aae.ts) between two in-memory engines:
// exactly the differing keys are found, limits bound each round and rounds
// converge, identical replicas cost one root compare.
import { describe, expect, it } from 'vitest';
import {
  AaeExchange,
  type AaeQuery,
  type AaeSide,
  type RepairKey,
  compareKeyLists,
  decodeSegmentKeys,
  driveExchange,
  encodeSegmentKeys,
} from '../../src/core/aae.js';
import type { Engine } from '../../src/engine/types.js';
import { PureEngine } from '../../src/engine/pure/index.js';
import { answer } from '../../src/node/anti-entropy.js';
import { reconcile } from '../../src/record/reconcile.js';

const P_BITS = 2;
const GEOMETRY = { branchBits: 4, segmentBits: 4 };
const B = Buffer.from('b');

async function pair(): Promise<[Engine, Engine]> {
  const a = await PureEngine.open({ nodeId: 'a', epoch: '0000000000000001', partitionBits: P_BITS, treeBranchBits: 4, treeSegmentBits: 4 });
  const b = await PureEngine.open({ nodeId: 'b', epoch: '0000000000000002', partitionBits: P_BITS, treeBranchBits: 4, treeSegmentBits: 4 });
  return [a, b];
}

const partitionOf = (e: Engine, key: string): number => Number(e.hashKey(B, Buffer.from(key)) >> BigInt(64 - P_BITS));

/** Writes a key on `a` and copies the record to `b`: both replicas identical. */
async function both(a: Engine, b: Engine, key: string, value = key): Promise<void> {
  const record = await a.coordinate({ bucket: B, key: Buffer.from(key), context: null, value: Buffer.from(value), now: 1, mode: 'siblings', durable: false });
  await b.merge({ bucket: B, key: Buffer.from(key), record, mode: 'siblings', durable: false });
}

async function only(e: Engine, key: string, value = key): Promise<void> {
  await e.coordinate({ bucket: B, key: Buffer.from(key), context: null, value: Buffer.from(value), now: 2, mode: 'siblings', durable: false });
}

interface Run {
  result: Awaited<ReturnType<typeof driveExchange>>;
  repair: RepairKey[];
  fetches: Array<{ side: AaeSide; query: AaeQuery }>;
}

async function exchange(local: Engine, remote: Engine, partition: number, limits = { maxBranches: 1000, maxSegments: 100_000, maxKeys: 100_000 }, offset = 0): Promise<Run> {
  const fetches: Run['fetches'] = [];
  const repair: RepairKey[] = [];
  const result = await driveExchange(
    new AaeExchange({ partition, ...GEOMETRY, ...limits, offset }),
    (side, query) => {
      fetches.push({ side, query });
      return answer(side === 'local' ? local : remote, partition, query);
    },
    async (keys) => {
      repair.push(...keys);
    },
  );
  return { result, repair, fetches };
}

/** What the service does per key: merge both records, write the result to both sides. */
async function repairBoth(a: Engine, b: Engine, keys: RepairKey[]): Promise<void> {
  for (const k of keys) {
    const recs = [await a.get(k.bucket, k.key), await b.get(k.bucket, k.key)].filter((r): r is Buffer => r !== null);
    const merged = reconcile(recs, 'siblings');
    for (const e of [a, b]) await e.merge({ bucket: k.bucket, key: k.key, record: merged, mode: 'siblings', durable: false });
  }
}

const names = (keys: RepairKey[]): string[] => keys.map((k) => `${k.key.toString()}:${k.local ? 'L' : ''}${k.remote ? 'R' : ''}`).sort();

describe('AAE exchange', () => {
  it('identical replicas: one root compare per side, nothing else', async () => {
    const [a, b] = await pair();
    for (let i = 0; i < 200; i++) await both(a, b, `k${i}`);
    for (let p = 0; p < 2 ** P_BITS; p++) {
      const run = await exchange(a, b, p);
      expect(run.result.outcome).toBe('in_sync');
      expect(run.fetches.map((f) => `${f.side}:${f.query.step}`)).toEqual(['local:root', 'remote:root']);
      expect(run.result.bytes.root).toEqual({ requested: 4, received: 8 });
      expect(run.result.bytes.branches).toEqual({ requested: 0, received: 0 });
      expect(run.result.totalBytes).toBe(12);
      expect(run.repair).toEqual([]);
    }
  });

  it('finds exactly the keys that differ: missing on either side, or a different version', async () => {
    const [a, b] = await pair();
    for (let i = 0; i < 300; i++) await both(a, b, `k${i}`);
    // Pick differing keys in one partition.
    const inP0 = Array.from({ length: 300 }, (_, i) => `k${i}`).filter((k) => partitionOf(a, k) === 0);
    const fresh = Array.from({ length: 400 }, (_, i) => `x${i}`).filter((k) => partitionOf(a, k) === 0);
    await only(a, fresh[0]!); // only local
    await only(b, fresh[1]!); // only remote
    await only(b, inP0[0]!, 'newer'); // both hold it, remote has a newer version
    await only(a, inP0[1]!, 'other'); // both, local has a concurrent sibling
    // A difference in another partition is not this exchange's business.
    await only(a, Array.from({ length: 400 }, (_, i) => `y${i}`).find((k) => partitionOf(a, k) === 1)!);

    const run = await exchange(a, b, 0);
    expect(run.result.outcome).toBe('diverged');
    expect(run.result.complete).toBe(true);
    expect(names(run.repair)).toEqual([`${fresh[0]}:L`, `${fresh[1]}:R`, `${inP0[0]}:LR`, `${inP0[1]}:LR`].sort());
    expect(run.result.differing.keys).toBe(4);
    // Only the differing branches/segments were descended into.
    const seg = run.fetches.find((f) => f.query.step === 'segments')!.query as { branches: number[] };
    expect(seg.branches.length).toBe(run.result.differing.branches);
    expect(run.result.differing.branches).toBeLessThanOrEqual(4);
    expect(run.result.bytes.branches.received).toBe(16 * 8);
    expect(run.result.bytes.segments.received).toBe(seg.branches.length * 16 * 8);

    await repairBoth(a, b, run.repair);
    expect((await exchange(a, b, 0)).result.outcome).toBe('in_sync');
    expect(a.treeRoots().subarray(0, 8)).toEqual(b.treeRoots().subarray(0, 8));
    expect((await exchange(a, b, 1)).result.outcome).toBe('diverged');
  });

  it('bounded rounds: each round repairs at most maxKeys, and rounds converge', async () => {
    const [a, b] = await pair();
    for (let i = 0; i < 100; i++) await both(a, b, `k${i}`);
    const diff = Array.from({ length: 3000 }, (_, i) => `d${i}`).filter((k) => partitionOf(a, k) === 2).slice(0, 150);
    for (const [i, k] of diff.entries()) await only(i % 2 ? a : b, k);
    const limits = { maxBranches: 2, maxSegments: 3, maxKeys: 2 };
    let rounds = 0;
    let repaired = 0;
    for (;;) {
      const run = await exchange(a, b, 2, limits, (rounds * 0.618034) % 1);
      if (run.result.outcome === 'in_sync') break;
      expect(run.repair.length).toBeLessThanOrEqual(2);
      const seg = run.fetches.find((f) => f.query.step === 'segments')?.query as { branches: number[] } | undefined;
      expect(seg?.branches.length ?? 0).toBeLessThanOrEqual(2);
      const keys = run.fetches.find((f) => f.query.step === 'keys')?.query as { segments: number[] } | undefined;
      expect(keys?.segments.length ?? 0).toBeLessThanOrEqual(3);
      await repairBoth(a, b, run.repair);
      repaired += run.repair.length;
      rounds++;
      expect(rounds).toBeLessThan(200);
    }
    expect(repaired).toBe(150);
    expect(rounds).toBeGreaterThanOrEqual(75);
    for (const k of diff) expect(await a.get(B, Buffer.from(k))).toEqual(await b.get(B, Buffer.from(k)));
  });

  it('a failed fetch ends the exchange as failed', async () => {
    const [a, b] = await pair();
    await only(a, 'k1');
    const p = partitionOf(a, 'k1');
    const result = await driveExchange(
      new AaeExchange({ partition: p, ...GEOMETRY, maxBranches: 8, maxSegments: 8, maxKeys: 8 }),
      async (side, query) => {
        if (side === 'remote' && query.step === 'branches') throw Object.assign(new Error('gone'), { code: 'TIMEOUT' });
        return answer(side === 'local' ? a : b, p, query);
      },
      async () => undefined,
    );
    expect(result.outcome).toBe('failed');
    expect(result.step).toBe('branches');
    expect(result.error).toContain('TIMEOUT');
  });

  it('a malformed reply fails the exchange instead of throwing', async () => {
    const result = await driveExchange(
      new AaeExchange({ partition: 0, ...GEOMETRY, maxBranches: 8, maxSegments: 8, maxKeys: 8 }),
      async (side) => (side === 'local' ? Buffer.alloc(8, 1) : Buffer.alloc(7)),
      async () => undefined,
    );
    expect(result.outcome).toBe('failed');
    expect(result.error).toMatch(/7 bytes, expected 8/);
  });

  it('state machine refuses replies out of order', () => {
    const x = new AaeExchange({ partition: 0, ...GEOMETRY, maxBranches: 1, maxSegments: 1, maxKeys: 1 });
    expect(() => x.onReply('local', 'root', Buffer.alloc(8))).toThrow(/unexpected/);
    expect(x.start().map((e) => e.kind)).toEqual(['fetch', 'fetch']);
    expect(x.onReply('local', 'root', Buffer.alloc(8))).toEqual([]);
    expect(() => x.onReply('local', 'root', Buffer.alloc(8))).toThrow(/unexpected/);
    expect(() => x.onReply('remote', 'branches', Buffer.alloc(128))).toThrow(/unexpected/);
    const done = x.onReply('remote', 'root', Buffer.alloc(8));
    expect(done).toMatchObject([{ kind: 'done', result: { outcome: 'in_sync' } }]);
  });

  it('key lists round-trip and compare by leaf hash', () => {
    const k = (key: string, h: number) => ({ bucket: Buffer.from('bk'), key: Buffer.from(key), hash: Buffer.alloc(8, h) });
    const wire = encodeSegmentKeys([k('a', 1), k('bb', 2)]);
    expect(wire.length).toBe(2 * (1 + 2 + 2 + 8) + 1 + 2);
    expect(decodeSegmentKeys(wire)).toEqual([k('a', 1), k('bb', 2)]);
    expect(() => decodeSegmentKeys(wire.subarray(0, wire.length - 1))).toThrow(/truncated/);
    const diff = compareKeyLists([k('a', 1), k('b', 2), k('c', 3)], [k('a', 1), k('b', 9), k('d', 4)]);
    expect(names(diff)).toEqual(['b:LR', 'c:L', 'd:R']);
  });
});
