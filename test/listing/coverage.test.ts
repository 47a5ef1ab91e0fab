// The coverage plan and the page merge of src/core/coverage.ts, and the
// cursor codec of src/core/list-cursor.ts, step by step without a network.
import { blake3 } from '@noble/hashes/blake3.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { coveragePlan, mergePages, planPartition, replicasToRead, type ReplicaPage } from '../../src/core/coverage.js';
import { CursorError, decodeCursor, encodeCursor, type CursorScope } from '../../src/core/list-cursor.js';

const all = () => true;

describe('planPartition', () => {
  it('prefers the coordinator when it is a primary, then the other primaries rotated by partition', () => {
    expect(planPartition({ partition: 0, primaries: ['a', 'b', 'c'], self: 'b', usable: all }, 2)).toEqual(['b', 'a']);
    expect(planPartition({ partition: 1, primaries: ['a', 'b', 'c'], self: 'b', usable: all }, 2)).toEqual(['b', 'c']);
    expect(planPartition({ partition: 1, primaries: ['a', 'b', 'c'], self: 'b', usable: all }, 1)).toEqual(['b']);
    // Not a primary: only the primaries, rotated.
    expect(planPartition({ partition: 2, primaries: ['a', 'b', 'c'], self: 'x', usable: all }, 1)).toEqual(['c']);
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
    const plan = coveragePlan(primaries, 300, 'z', all, 1);
    const counts = new Map<string, number>();
    for (const [n] of plan) counts.set(n!, (counts.get(n!) ?? 0) + 1);
    for (const c of counts.values()) expect(Math.abs(c - 100)).toBeLessThanOrEqual(34);
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
          if (primaries.includes(self) && !excluded.has(self)) expect(plan[0]).toBe(self);
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

const dk = (n: number) => Buffer.from([n]);
const page = (keys: number[], through: number | null): ReplicaPage<string> => ({ items: keys.map((k) => ({ diskKey: dk(k), item: `r${k}` })), through: through === null ? null : dk(through) });

describe('mergePages', () => {
  it('keeps only the range every replica scanned, each key once with every copy', () => {
    const merged = mergePages([page([1, 3, 5, 9], 9), page([2, 3, 4], 6)]);
    expect(merged.through).toEqual(dk(6));
    expect(merged.keys.map((k) => [k.diskKey[0], k.items.length])).toEqual([[1, 1], [2, 1], [3, 2], [4, 1], [5, 1]]);
  });

  it('a replica that reached the end bounds nothing', () => {
    expect(mergePages([page([1], null), page([2], 4)]).through).toEqual(dk(4));
    expect(mergePages([page([1], null), page([], null)])).toMatchObject({ through: null });
  });

  it('refuses a page out of order or with items past its through (a replica bug)', () => {
    expect(() => mergePages([page([3, 2], 3)])).toThrow(/ascending/);
    expect(() => mergePages([page([5], 4)])).toThrow(/through/);
  });

  it('walking pages from `through` on loses and repeats nothing (any replica contents, any page sizes)', () => {
    fc.assert(
      fc.property(fc.array(fc.uniqueArray(fc.integer({ min: 0, max: 60 }), { maxLength: 30 }), { minLength: 1, maxLength: 3 }), fc.integer({ min: 1, max: 7 }), (replicas, size) => {
        const sorted = replicas.map((r) => [...r].sort((a, b) => a - b));
        const listed: number[] = [];
        let after = -1;
        for (let guard = 0; guard < 1000; guard++) {
          // Each replica: up to `size` keys after the cursor; through = its last, or null when it had no more.
          const pages = sorted.map((keys) => {
            const rest = keys.filter((k) => k > after);
            const taken = rest.slice(0, size);
            return page(taken, rest.length > size ? taken.at(-1)! : null);
          });
          const merged = mergePages(pages);
          listed.push(...merged.keys.map((k) => k.diskKey[0]!));
          if (merged.through === null) break;
          after = merged.through[0]!;
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
