import { describe, expect, it } from 'vitest';
import { claim } from '../../src/core/claim.js';
import { preferenceList, type Ring } from '../../src/core/ring.js';
import { planTransfers } from '../../src/core/transfer-plan.js';

const ring = (owners: string[], version = 1): Ring => ({ partitionBits: Math.log2(owners.length), owners, version, claimant: 'a' });
const members = (...ids: string[]) => ids.map((id) => ({ id }));

describe('planTransfers', () => {
  it('a join: every partition whose list gains the new node gets exactly one transfer, to it, from an old replica', () => {
    const before = ring(claim(null, members('a', 'b', 'c'), 6));
    const after = ring(claim(before, members('a', 'b', 'c', 'd'), 6), 2);
    const plan = planTransfers(before, after, 3, new Set(['a', 'b', 'c', 'd']));
    expect(plan.length).toBeGreaterThan(0);
    for (const t of plan) {
      expect(t.to).toBe('d');
      expect(preferenceList(before, t.partition, 3).primaries).toContain(t.from);
      expect(preferenceList(after, t.partition, 3).primaries).toContain('d');
    }
    const keys = plan.map((t) => `${t.partition}>${t.to}`);
    expect(new Set(keys).size).toBe(keys.length); // no duplicate transfers
    // Every partition d now replicates is covered.
    for (let p = 0; p < 64; p++) {
      if (preferenceList(after, p, 3).primaries.includes('d')) expect(keys).toContain(`${p}>d`);
    }
  });

  it('a leave: the leaver gives nothing once it has left; a remaining old replica gives instead', () => {
    const before = ring(claim(null, members('a', 'b', 'c', 'd'), 5));
    const after = ring(claim(before, members('a', 'b', 'c'), 5), 2);
    const plan = planTransfers(before, after, 3, new Set(['a', 'b', 'c']));
    expect(plan.length).toBeGreaterThan(0);
    for (const t of plan) {
      expect(t.from).not.toBe('d');
      expect(t.to).not.toBe('d');
      expect(preferenceList(before, t.partition, 3).primaries).not.toContain(t.to);
    }
  });

  it('no ring change, no transfer', () => {
    const r = ring(claim(null, members('a', 'b', 'c'), 4));
    expect(planTransfers(r, r, 3, new Set(['a', 'b', 'c']))).toEqual([]);
  });
});
