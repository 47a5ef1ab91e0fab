import { describe, expect, it } from 'vitest';
import { type Ring, makeRing, partitionCount, partitionOf, preferenceList } from '../../src/core/ring.js';

const ring = (owners: string[]): Ring =>
  makeRing({ partitionBits: Math.log2(owners.length), owners, version: 1, claimant: owners[0]! });

describe('partitionOf', () => {
  it('takes the top partitionBits bits of a u64 position', () => {
    expect(partitionOf({ partitionBits: 6 }, 0n)).toBe(0);
    expect(partitionOf({ partitionBits: 6 }, (1n << 64n) - 1n)).toBe(63);
    expect(partitionOf({ partitionBits: 6 }, 1n << 58n)).toBe(1);
    expect(partitionOf({ partitionBits: 6 }, (1n << 58n) - 1n)).toBe(0);
    expect(partitionOf({ partitionBits: 16 }, 0xabcd_0000_0000_0001n)).toBe(0xabcd);
    expect(partitionOf({ partitionBits: 1 }, 1n << 63n)).toBe(1);
  });

  it('rejects positions outside u64 and bad partitionBits', () => {
    expect(() => partitionOf({ partitionBits: 6 }, -1n)).toThrow(/u64/);
    expect(() => partitionOf({ partitionBits: 6 }, 1n << 64n)).toThrow(/u64/);
    expect(() => partitionOf({ partitionBits: 0 }, 0n)).toThrow(/partitionBits/);
    expect(() => partitionOf({ partitionBits: 17 }, 0n)).toThrow(/partitionBits/);
    expect(() => partitionCount(2.5)).toThrow(/partitionBits/);
  });
});

describe('makeRing', () => {
  it('checks the owner table length and ids', () => {
    expect(() => makeRing({ partitionBits: 2, owners: ['a', 'b'], version: 1, claimant: 'a' })).toThrow(/2 owners for 4/);
    expect(() => makeRing({ partitionBits: 1, owners: ['a', 'b c'], version: 1, claimant: 'a' })).toThrow(/invalid owner/);
    expect(() => makeRing({ partitionBits: 1, owners: ['a', 'b'], version: -1, claimant: 'a' })).toThrow(/version/);
  });

  it('copies the owner table', () => {
    const owners = ['a', 'b'];
    const r = makeRing({ partitionBits: 1, owners, version: 1, claimant: 'a' });
    owners[0] = 'z';
    expect(r.owners).toEqual(['a', 'b']);
  });
});

describe('preferenceList', () => {
  const r = ring(['a', 'a', 'b', 'c', 'a', 'd', 'b', 'e']);

  it('walks clockwise collecting distinct owners, wrapping around', () => {
    expect(preferenceList(r, 0, 3)).toEqual({ primaries: ['a', 'b', 'c'], fallbacks: ['d', 'e'] });
    expect(preferenceList(r, 5, 3)).toEqual({ primaries: ['d', 'b', 'e'], fallbacks: ['a', 'c'] });
    expect(preferenceList(r, 7, 2)).toEqual({ primaries: ['e', 'a'], fallbacks: ['b', 'c', 'd'] });
  });

  it('returns every node as primary when fewer than n exist', () => {
    expect(preferenceList(ring(['a', 'b', 'a', 'b']), 1, 3)).toEqual({ primaries: ['b', 'a'], fallbacks: [] });
    expect(preferenceList(ring(['a', 'a']), 0, 3)).toEqual({ primaries: ['a'], fallbacks: [] });
  });

  it('prefers unused zones, falling back to a repeated zone only when none is left', () => {
    const zones = new Map([
      ['a', 'z1'],
      ['b', 'z1'],
      ['c', 'z2'],
      ['d', 'z2'],
      ['e', 'z3'],
    ]);
    // Clockwise from 0: a b c d e. b repeats z1, so c (z2) comes first, then e (z3).
    expect(preferenceList(r, 0, 3, zones)).toEqual({ primaries: ['a', 'c', 'e'], fallbacks: ['b', 'd'] });
    // Four primaries, three zones: the fourth repeats the first zone met clockwise.
    expect(preferenceList(r, 0, 4, zones)).toEqual({ primaries: ['a', 'c', 'e', 'b'], fallbacks: ['d'] });
    // A node with no declared zone counts as a zone of its own.
    const partial = new Map([
      ['a', 'z1'],
      ['b', 'z1'],
    ]);
    expect(preferenceList(r, 0, 3, partial)).toEqual({ primaries: ['a', 'c', 'd'], fallbacks: ['b', 'e'] });
    // Empty zone map: plain clockwise order.
    expect(preferenceList(r, 0, 3, new Map())).toEqual(preferenceList(r, 0, 3));
  });

  it('rejects bad arguments', () => {
    expect(() => preferenceList(r, 8, 3)).toThrow(/partition 8/);
    expect(() => preferenceList(r, -1, 3)).toThrow(/partition -1/);
    expect(() => preferenceList(r, 0, 0)).toThrow(/n must be/);
  });
});
