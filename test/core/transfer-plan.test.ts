import { describe, expect, it } from 'vitest';
import { claim } from '../../src/core/claim.js';
import { preferenceList, type Ring } from '../../src/core/ring.js';
import { InboundTransfers, inboundTransfers, planTransfers } from '../../src/core/transfer-plan.js';

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

describe('the giver is the replaced node', () => {
  it('a join: the new node gets each partition from the node it replaces in the list, which every member computes alike', () => {
    const before = ring(claim(null, members('a', 'b', 'c', 'd'), 5));
    const after = ring(claim(before, members('a', 'b', 'c', 'd', 'e'), 5), 2);
    const plan = planTransfers(before, after, 3, new Set(['a', 'b', 'c', 'd', 'e']));
    expect(plan.length).toBeGreaterThan(0);
    for (const t of plan) {
      const old = preferenceList(before, t.partition, 3).primaries;
      const next = preferenceList(after, t.partition, 3).primaries;
      // The giver held the partition and no longer does: its copy moves, the others stay.
      expect(old).toContain(t.from);
      expect(next).not.toContain(t.from);
    }
  });

  it('a leave: the leaver gives its own copy while it runs; the others plan the first old replica still a member', () => {
    const before = ring(claim(null, members('a', 'b', 'c', 'd'), 5));
    const after = ring(claim(before, members('a', 'b', 'c'), 5), 2);
    const byLeaver = planTransfers(before, after, 3, new Set(['a', 'b', 'c', 'd'])).filter((t) => t.from === 'd');
    const byOthers = planTransfers(before, after, 3, new Set(['a', 'b', 'c']));
    expect(byLeaver.length).toBeGreaterThan(0);
    for (const t of byLeaver) expect(byOthers.some((o) => o.partition === t.partition && o.to === t.to && o.from !== 'd')).toBe(true);
  });
});

describe('receiving: a new replica waits for its givers', () => {
  const before = ring(claim(null, members('a', 'b', 'c'), 4));
  const after = ring(claim(before, members('a', 'b', 'c', 'd'), 4), 2);
  const valid = new Set(['a', 'b', 'c', 'd']);
  const incoming = inboundTransfers(before, after, 3, valid, 'd');

  it('the joining node is pending for exactly the partitions planned to it, read meanwhile through the node it replaces', () => {
    const plan = planTransfers(before, after, 3, valid).filter((t) => t.to === 'd');
    expect(incoming.map((i) => i.partition).sort((x, y) => x - y)).toEqual(plan.map((t) => t.partition).sort((x, y) => x - y));
    for (const i of incoming) {
      const t = plan.find((p) => p.partition === i.partition)!;
      expect(i.givers).toEqual([t.from]);
      expect(i.sources).toEqual([t.from]);
    }
  });

  it('ends with the giver\'s finish (also one that came early), its "not sending" answer, or the time limit', () => {
    const [p0, p1, p2, p3] = incoming.map((i) => i.partition);
    const giverOf = (p: number) => incoming.find((i) => i.partition === p)!.givers[0]!;
    const t = new InboundTransfers();
    // A finish before the ring change (the giver was faster than gossip) counts once the entry exists.
    t.onFinish(p3!, giverOf(p3!), 2);
    t.onRingChange(before, after, 3, valid, 'd', 1_000);
    expect(t.sourcesOf(p0!)).not.toBeNull();
    expect(t.sourcesOf(p3!)).toBeNull();
    // A finish from another node, or from an older ring, does not end it.
    expect(t.onFinish(p0!, 'zz', 2)).toBe(false);
    expect(t.onFinish(p0!, giverOf(p0!), 1)).toBe(false);
    expect(t.onFinish(p0!, giverOf(p0!), 2)).toBe(true);
    expect(t.sourcesOf(p0!)).toBeNull();
    // Asked: still sending keeps it; an answer from an older ring proves nothing; "not sending" on this ring ends it.
    expect(t.onGiverStatus(p1!, giverOf(p1!), 2, true)).toBe(false);
    expect(t.onGiverStatus(p1!, giverOf(p1!), 1, false)).toBe(false);
    expect(t.onGiverStatus(p1!, giverOf(p1!), 3, false)).toBe(true);
    // Never pending for ever; and the state survives a restart (JSON).
    const restored = new InboundTransfers(JSON.parse(JSON.stringify(t.toJSON())));
    expect(restored.sourcesOf(p2!)).toEqual(t.sourcesOf(p2!));
    expect(restored.expire(1_000 + 59_999, 60_000)).toEqual([]);
    expect(restored.expire(1_000 + 60_000, 60_000).map((e) => e.partition)).toContain(p2);
    expect(restored.size).toBe(0);
  });

  it('a node that stops being a replica of a pending partition stops waiting for it; no giver, nothing pending', () => {
    const t = new InboundTransfers();
    t.onRingChange(before, after, 3, valid, 'd', 0);
    expect(t.size).toBe(incoming.length);
    const back = ring(before.owners as string[], 3);
    t.onRingChange(after, back, 3, valid, 'd', 10);
    expect(t.size).toBe(0);
    // Every old replica gone: nothing can come, so nothing is pending.
    expect(inboundTransfers(before, after, 3, new Set(['d']), 'd')).toEqual([]);
  });
});

describe('receiving: a list that grew reads through any old replica (issue 9, the replace-process finding)', () => {
  // [what, rings before → after, members, the receiver, what each pending entry's sources must be]
  const two = ring(claim(null, members('a', 'b'), 4));
  const three = ring(claim(two, members('a', 'b', 'c'), 4), 2);
  const one = ring(Array.from({ length: 16 }, () => 'a'));
  const withD = ring(claim(three, members('a', 'b', 'c', 'd'), 4), 3);
  const rows: Array<[string, Ring, Ring, string[], string, (old: string[], givers: string[]) => string[]]> = [
    // c grows lists of two: the giver is the first old replica, and the other one reads as well as it does.
    ['2 → 3 nodes: the giver, then the other old replica', two, three, ['a', 'b', 'c'], 'c', (old) => old],
    ['2 → 3 nodes, the other old replica left: the giver only', two, three, ['a', 'c'], 'c', (_old, givers) => givers],
    ['1 → 3 nodes: the only old replica', one, three, ['a', 'b', 'c'], 'c', (old) => old],
    // d replaces an old replica in each list: only that one's copy stands for d's (it may hold a w = 1 write alone).
    ['3 → 4 nodes: the replaced node only', three, withD, ['a', 'b', 'c', 'd'], 'd', (_old, givers) => givers],
  ];
  // 2 → 4 nodes in one ring: a list [a, b] may become [a, c, d] — c replaces b, d no one: d reads through
  // old replicas that stay in the list only (b is read through c, its replacer).
  const four = ring(claim(two, members('a', 'b', 'c', 'd'), 4), 2);
  it('2 → 4 nodes at once: a node that replaces no one reads through old replicas still in the list', () => {
    let checked = 0;
    for (const self of ['c', 'd']) {
      for (const e of inboundTransfers(two, four, 3, new Set(['a', 'b', 'c', 'd']), self)) {
        const next = preferenceList(four, e.partition, 3).primaries;
        for (const source of e.sources.slice(e.givers.length)) expect(next).toContain(source);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(0);
  });
  it.each(rows)('%s', (_what, before, after, live, self, expected) => {
    const incoming = inboundTransfers(before, after, 3, new Set(live), self);
    expect(incoming.length).toBeGreaterThan(0);
    for (const e of incoming) {
      const old = preferenceList(before, e.partition, 3).primaries.filter((n) => live.includes(n));
      expect(e.givers).toHaveLength(1);
      expect(e.sources).toEqual(expected(old, e.givers));
      expect(e.sources[0]).toBe(e.givers[0]);
    }
  });
});
