// The storage census state machine (src/core/storage-census.ts), step by
// step: partitions counted page by page, totals replaced on a rescan,
// unchanged partitions (same root) skipped, passes counted.
import { describe, expect, it } from 'vitest';
import { StorageCensus } from '../../src/core/storage-census.js';
import { nonZeroRoots, treeMemoryBytes, TREE_SLOT_BYTES } from '../../src/core/tree-memory.js';

/** Q roots of 8 bytes; partitions listed in `set` get a non-zero root (its value). */
const roots = (q: number, set: Record<number, number> = {}): Uint8Array => {
  const r = new Uint8Array(q * 8);
  for (const [p, v] of Object.entries(set)) new DataView(r.buffer).setUint32(Number(p) * 8 + 4, v);
  return r;
};

describe('StorageCensus', () => {
  it('counts a partition over several pages, and the totals only once it is complete', () => {
    const c = new StorageCensus(4);
    const r = roots(4, { 1: 7 });
    expect(c.next(r, 0)).toEqual({ partition: 0, after: null });
    c.onPage({ objects: 0, tombstones: 0, next: null }, 0);
    expect(c.next(r, 0)).toEqual({ partition: 1, after: null });
    c.onPage({ objects: 3, tombstones: 1, next: Buffer.from('k4') }, 0);
    expect(c.current()).toMatchObject({ objects: 0, tombstones: 0, partitionsKnown: 1 });
    expect(c.next(r, 0)).toEqual({ partition: 1, after: Buffer.from('k4') });
    c.onPage({ objects: 2, tombstones: 0, next: null }, 0);
    expect(c.current()).toMatchObject({ objects: 5, tombstones: 1, partitionsKnown: 2, passes: 0, lastPassMs: null });
    expect(c.recordsIn(1)).toBe(6);
    expect(c.recordsIn(2)).toBeNull();
  });

  it('finishes a pass when it wraps, then skips partitions whose root did not change', () => {
    const c = new StorageCensus(3);
    let r = roots(3, { 0: 1, 2: 5 });
    for (const counts of [2, 0, 4]) {
      c.next(r, 10);
      c.onPage({ objects: counts, tombstones: 0, next: null }, 10);
    }
    expect(c.current()).toEqual({ objects: 6, tombstones: 0, partitionsKnown: 3, passes: 1, lastPassMs: 10 });
    // Nothing written since: nothing to scan, and the sweep over unchanged partitions counts as a pass.
    expect(c.next(r, 20)).toBeNull();
    expect(c.current()).toMatchObject({ passes: 2, lastPassMs: 20 });
    // A write to partition 2 changes its root: only it is scanned again, and its figures replace the old ones.
    r = roots(3, { 0: 1, 2: 9 });
    expect(c.next(r, 30)).toEqual({ partition: 2, after: null });
    c.onPage({ objects: 1, tombstones: 2, next: null }, 30);
    expect(c.current()).toMatchObject({ objects: 3, tombstones: 2, partitionsKnown: 3 });
    expect(c.next(r, 40)).toBeNull();
  });

  it('a partition written to while it is scanned is scanned again (its root at the start is kept)', () => {
    const c = new StorageCensus(1);
    c.next(roots(1, { 0: 1 }), 0);
    c.onPage({ objects: 1, tombstones: 0, next: null }, 0);
    expect(c.next(roots(1, { 0: 1 }), 0)).toBeNull();
    c.next(roots(1, { 0: 2 }), 0);
    // The write that changed the root to 3 came in during this scan.
    c.onPage({ objects: 2, tombstones: 0, next: null }, 0);
    expect(c.next(roots(1, { 0: 3 }), 0)).toEqual({ partition: 0, after: null });
  });

  it('refuses roots of another partition count and negative pages', () => {
    const c = new StorageCensus(2);
    expect(() => c.next(roots(3), 0)).toThrow(/8-byte root per partition/);
    c.next(roots(2), 0);
    expect(() => c.onPage({ objects: -1, tombstones: 0, next: null }, 0)).toThrow(/negative/);
  });
});

describe('tree memory estimate', () => {
  it('a slot per partition, and the hash arrays of partitions with a non-zero root', () => {
    const g = { partitionBits: 12, treeBranchBits: 5, treeSegmentBits: 5 };
    expect(treeMemoryBytes(g, 0)).toBe(4096 * TREE_SLOT_BYTES);
    // (32 branches + 1024 segments) × 8 bytes per written partition.
    expect(treeMemoryBytes(g, 10) - treeMemoryBytes(g, 0)).toBe(10 * (32 + 1024) * 8);
    expect(nonZeroRoots(roots(8, { 1: 1, 5: 0xffffffff }))).toBe(2);
    const high = new Uint8Array(16);
    high[8] = 1; // only the high byte of partition 1 set
    expect(nonZeroRoots(high)).toBe(1);
  });
});
