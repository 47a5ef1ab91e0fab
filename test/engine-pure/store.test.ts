import { describe, it, expect } from 'vitest';
import { Store, TREE_HINTS, TREE_OBJECTS, prefixEnd } from '../../src/engine/pure/store.js';

function rng(seed: number) {
  return () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

describe('memory store', () => {
  it('keeps bytewise order through many inserts and deletes (block splits included)', async () => {
    const s = await Store.open(undefined);
    const ref = new Map<string, Buffer>();
    const rand = rng(3);
    for (let i = 0; i < 6000; i++) {
      const k = Buffer.from([Math.floor(rand() * 256), Math.floor(rand() * 256), ...(rand() < 0.5 ? [Math.floor(rand() * 256)] : [])]);
      if (rand() < 0.25) {
        expect(s.delete(TREE_OBJECTS, k)).toBe(ref.delete(k.toString('hex')));
      } else {
        const v = Buffer.from([i & 0xff]);
        s.put(TREE_OBJECTS, k, v);
        ref.set(k.toString('hex'), v);
      }
    }
    const sorted = [...ref.keys()].map((h) => Buffer.from(h, 'hex')).sort(Buffer.compare);
    expect([...s.entries(TREE_OBJECTS)].map((e) => e.key)).toEqual(sorted);
    expect(s.range(TREE_HINTS, Buffer.alloc(0), null)).toEqual([]); // trees are separate
    for (let i = 0; i < 50; i++) {
      const a = Buffer.from([Math.floor(rand() * 256)]);
      const z = Buffer.from([Math.min(255, a[0]! + Math.floor(rand() * 40))]);
      const want = sorted.filter((k) => Buffer.compare(k, a) >= 0 && Buffer.compare(k, z) < 0);
      expect(s.range(TREE_OBJECTS, a, z).map((e) => e.key)).toEqual(want);
      expect(s.range(TREE_OBJECTS, a, null, 7).map((e) => e.key)).toEqual(sorted.filter((k) => Buffer.compare(k, a) >= 0).slice(0, 7));
      expect(s.get(TREE_OBJECTS, want[0] ?? Buffer.from([1, 2, 3, 4]))).toEqual(want[0] ? ref.get(want[0].toString('hex')) : undefined);
    }
  });

  it('prefixEnd bounds every extension of a prefix', () => {
    expect(prefixEnd(Buffer.from([1, 2]))).toEqual(Buffer.from([1, 3]));
    expect(prefixEnd(Buffer.from([1, 0xff]))).toEqual(Buffer.from([2]));
    expect(prefixEnd(Buffer.from([0xff, 0xff]))).toBeNull();
  });
});
