// The coverage plan and the page merge of src/core/coverage.ts, and the
// cursor codec of src/core/list-cursor.ts, step by step without a network.
import { blake3 } from '@noble/hashes/blake3.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PLAN_BLOCK, comparePoints, coveragePlan, mergePages, planPartition, replicasToRead, type ReplicaPage } from '../../src/core/coverage.js';
import { CursorError, decodeCursor, encodeCursor, type CursorScope } from '../../src/core/list-cursor.js';

const all = () => true;

describe('planPartition', () => {
  it('prefers the coordinator when it is a primary, then the other primaries rotated by blocks of partitions', () => {
    expect(planPartition({ partition: 0, primaries: ['a', 'b', 'c'], self: 'b', usable: all }, 2)).toEqual(['b', 'a']);
    // The same block: the same plan (one request reads the run).
    expect(planPartition({ partition: PLAN_BLOCK - 1, primaries: ['a', 'b', 'c'], self: 'b', usable: all }, 2)).toEqual(['b', 'a']);
    expect(planPartition({ partition: PLAN_BLOCK, primaries: ['a', 'b', 'c'], self: 'b', usable: all }, 2)).toEqual(['b', 'c']);
    expect(planPartition({ partition: 1, primaries: ['a', 'b', 'c'], self: 'b', usable: all }, 1)).toEqual(['b']);
    // Not a primary: only the primaries, rotated.
    expect(planPartition({ partition: 2 * PLAN_BLOCK, primaries: ['a', 'b', 'c'], self: 'x', usable: all }, 1)).toEqual(['c']);
  });

  it('skips suspected and excluded replicas, and takes the givers named by a receiving replica last', () => {
    const usable = (n: string) => n !== 'c';
    expect(planPartition({ partition: 0, primaries: ['a', 'b', 'c'], self: 'x', usable }, 3)).toEqual(['a', 'b']);
    expect(planPartition({ partition: 0, primaries: ['a', 'b', 'c'], self: 'a', usable, excluded: new Set(['a']) }, 2)).toEqual(['b']);
    expect(planPartition({ partition: 0, primaries: ['a', 'd'], self: 'a', usable: all, excluded: new Set(['d']), extra: ['g', 'a'] }, 2)).toEqual(['a', 'g']);
    expect(planPartition({ partition: 0, primaries: ['a'], self: 'x', usable: all, excluded: new Set(['a']) }, 1)).toEqual([]);
  });

  it('spreads the partitions a node is not a primary of evenly over the others', () => {
    const primaries = (p: number) => [['a', 'b', 'c'], ['b', 'c', 'a'], ['c', 'a', 'b']][p % 3]!;
    const plan = coveragePlan(primaries, 300 * PLAN_BLOCK, 'z', all, 1);
    const counts = new Map<string, number>();
    for (const [n] of plan) counts.set(n!, (counts.get(n!) ?? 0) + 1);
    for (const c of counts.values()) expect(Math.abs(c - 100 * PLAN_BLOCK)).toBeLessThanOrEqual(34 * PLAN_BLOCK);
    expect(counts.size).toBe(3);
  });

  it('never names a replica twice, never an excluded or unusable one, and as many as it can up to want', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'd', 'e'), { minLength: 1, maxLength: 5 }),
        fc.constantFrom('a', 'b', 'x'),
        fc.subarray(['a', 'b', 'c', 'd', 'e']),
        fc.subarray(['a', 'b', 'c', 'd', 'e']),
        fc.integer({ min: 1, max: 5 }),
        fc.nat(100),
        (primaries, self, down, excludedList, want, partition) => {
          const excluded = new Set(excludedList);
          const usable = (n: string) => !down.includes(n);
          const plan = planPartition({ partition, primaries, self, usable, excluded }, want);
          expect(new Set(plan).size).toBe(plan.length);
          for (const n of plan) {
            expect(excluded.has(n)).toBe(false);
            expect(n === self || usable(n)).toBe(true);
            expect(primaries).toContain(n);
          }
          const possible = primaries.filter((n) => !excluded.has(n) && (n === self || usable(n))).length;
          expect(plan.length).toBe(Math.min(want, possible));
          if ((primaries as string[]).includes(self) && !excluded.has(self)) expect(plan[0]).toBe(self);
        },
      ),
    );
  });
});

describe('replicasToRead', () => {
  it('is n − w + 1, within 1..n', () => {
    expect(replicasToRead(3, 2)).toBe(2);
    expect(replicasToRead(3, 3)).toBe(1);
    expect(replicasToRead(3, 1)).toBe(3);
    expect(replicasToRead(1, 1)).toBe(1);
    expect(replicasToRead(3, 5)).toBe(1);
  });
});

// Disk keys of one byte, in partition n >> 4 (16 keys per partition).
const dk = (n: number) => Buffer.from([n]);
const point = (n: number | null, end = 4) => (n === null ? { partition: end, after: null } : { partition: n >> 4, after: dk(n) });
const page = (keys: number[], until: number | null): ReplicaPage<string> => ({ items: keys.map((k) => ({ partition: k >> 4, diskKey: dk(k), item: `r${k}` })), until: point(until) });

describe('mergePages', () => {
  it('keeps only the range every replica scanned, each key once with every copy', () => {
    const merged = mergePages([page([1, 3, 5, 9], 9), page([2, 3, 4], 6)]);
    expect(merged.until).toEqual(point(6));
    expect(merged.keys.map((k) => [k.diskKey[0], k.items.length])).toEqual([[1, 1], [2, 1], [3, 2], [4, 1], [5, 1]]);
  });

  it('a replica that reached the end of the run bounds nothing; a replica stopped at a partition start bounds before it', () => {
    expect(mergePages([page([1], null), page([2], 4)]).until).toEqual(point(4));
    expect(mergePages([page([1], null), page([], null)])).toMatchObject({ until: point(null) });
    const atStart: ReplicaPage<string> = { items: [{ partition: 0, diskKey: dk(3), item: 'r3' }], until: { partition: 2, after: null } };
    const merged = mergePages([atStart, page([3, 33, 40], null)]);
    expect(merged.until).toEqual({ partition: 2, after: null });
    expect(merged.keys.map((k) => k.diskKey[0])).toEqual([3]);
  });

  it('orders scan points by partition, then disk key, a partition start first', () => {
    expect(comparePoints({ partition: 1, after: null }, { partition: 1, after: dk(0) })).toBeLessThan(0);
    expect(comparePoints({ partition: 1, after: dk(200) }, { partition: 2, after: null })).toBeLessThan(0);
    expect(comparePoints({ partition: 2, after: dk(5) }, { partition: 2, after: dk(5) })).toBe(0);
  });

  it('refuses a page out of order or with items past its until (a replica bug)', () => {
    expect(() => mergePages([page([3, 2], 3)])).toThrow(/ascending/);
    expect(() => mergePages([page([5], 4)])).toThrow(/until/);
  });

  it('walking pages from `until` on loses and repeats nothing (any replica contents, any page sizes, stops at partition starts)', () => {
    fc.assert(
      fc.property(fc.array(fc.uniqueArray(fc.integer({ min: 0, max: 63 }), { maxLength: 30 }), { minLength: 1, maxLength: 3 }), fc.integer({ min: 1, max: 7 }), fc.boolean(), (replicas, size, stopAtStarts) => {
        const sorted = replicas.map((r) => [...r].sort((a, b) => a - b));
        const listed: number[] = [];
        let at: { partition: number; after: Buffer | null } = { partition: 0, after: null };
        const after = (k: number) => comparePoints({ partition: k >> 4, after: dk(k) }, at) > 0;
        for (let guard = 0; guard < 1000 && at.partition < 4; guard++) {
          // Each replica: up to `size` keys after the point; until = its last, the next partition's start, or the end.
          const pages = sorted.map((keys): ReplicaPage<string> => {
            const rest = keys.filter(after);
            const taken = rest.slice(0, size);
            const last = taken.at(-1);
            const until = rest.length <= size ? point(null) : stopAtStarts && last !== undefined && (last >> 4) < 3 && rest[size]! >> 4 > last >> 4 ? { partition: (last >> 4) + 1, after: null } : point(last!);
            return { items: taken.map((k) => ({ partition: k >> 4, diskKey: dk(k), item: `r${k}` })), until };
          });
          const merged = mergePages(pages);
          listed.push(...merged.keys.map((k) => k.diskKey[0]!));
          expect(comparePoints(merged.until, at)).toBeGreaterThan(0);
          at = merged.until;
        }
        expect(listed).toEqual([...new Set(sorted.flat())].sort((a, b) => a - b));
      }),
    );
  });
});

describe('list cursors', () => {
  const scope: CursorScope = { kind: 'keys', bucket: Buffer.from('b'), partitionBits: 6 };
  const bkey = Buffer.from('b\u0000k1', 'latin1');
  const position = Buffer.from(blake3(bkey).subarray(0, 8));
  const diskKey = Buffer.concat([position, bkey]);
  const partition = position[0]! >> 2;
  const ok = () => null;

  it('round-trips the partition, the disk key and the last bucket', () => {
    const text = encodeCursor(scope, { partition, after: diskKey, lastBucket: null });
    expect(text).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(text, scope, ok)).toEqual({ partition, after: diskKey, lastBucket: null });
    const buckets: CursorScope = { kind: 'buckets', bucket: null, partitionBits: 6 };
    expect(decodeCursor(encodeCursor(buckets, { partition: 0, after: null, lastBucket: Buffer.from('zz') }), buckets, ok)).toEqual({ partition: 0, after: null, lastBucket: Buffer.from('zz') });
  });

  it('refuses every single-character change, truncation, another scope and a bad disk key', () => {
    const text = encodeCursor(scope, { partition, after: diskKey, lastBucket: null });
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    for (let i = 0; i < text.length; i++) {
      const other = alphabet[(alphabet.indexOf(text[i]!) + 1) % 64]!;
      const garbled = text.slice(0, i) + other + text.slice(i + 1);
      // The last character may carry only padding bits: a change there can decode to the same bytes.
      if (Buffer.from(garbled, 'base64url').equals(Buffer.from(text, 'base64url'))) continue;
      expect(() => decodeCursor(garbled, scope, ok), `char ${i}`).toThrow(CursorError);
    }
    expect(() => decodeCursor(text.slice(0, -3), scope, ok)).toThrow(CursorError);
    expect(() => decodeCursor(text, { ...scope, bucket: Buffer.from('c') }, ok)).toThrow(/another bucket or kind/);
    expect(() => decodeCursor(text, { ...scope, kind: 'objects' }, ok)).toThrow(CursorError);
    expect(() => decodeCursor(text, { ...scope, partitionBits: 7 }, ok)).toThrow(CursorError);
    expect(() => decodeCursor(text, scope, () => 'not in its partition')).toThrow(/not in its partition/);
    expect(() => decodeCursor('', scope, ok)).toThrow(CursorError);
    expect(() => decodeCursor('a+b/', scope, ok)).toThrow(/base64url/);
  });
});
