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

describe('receiving: sources that left (issue 9, the replace-process finding)', () => {
  // c grows lists of two (a, b) to three: one giver each, the list's first old replica.
  const before = ring(claim(null, members('a', 'b'), 4));
  const after = ring(claim(before, members('a', 'b', 'c'), 4), 2);
  const t = new InboundTransfers();
  t.onRingChange(before, after, 3, new Set(['a', 'b', 'c']), 'c', 0);
  const entries = t.list();
  const other = (giver: string) => (giver === 'a' ? 'b' : 'a');

  // [what, which nodes are gone (left, and silent to c) given the giver g, the sources reads get]
  const table: Array<[string, (g: string) => (n: string) => boolean, (g: string) => string[]]> = [
    ['none gone: the giver only', () => () => false, (g) => [g]],
    ['the other old replica gone: still the giver only', (g) => (n) => n === other(g), (g) => [g]],
    ['the giver gone (it died and was replaced): the other old replica after it', (g) => (n) => n === g, (g) => [g, other(g)]],
    ['both gone: nothing stands in', () => (n) => n !== 'c', (g) => [g]],
  ];
  it.each(table)('%s', (_what, goneOf, expected) => {
    expect(entries.length).toBeGreaterThan(0);
    for (const e of entries) {
      const g = e.givers[0]!;
      expect(e.givers).toEqual([g]);
      expect(t.sourcesOf(e.partition, goneOf(g))).toEqual(expected(g));
    }
  });

  it('a replaced node gone with a member giver beside it: no stand-in (that giver is the source)', () => {
    const three = ring(claim(null, members('a', 'b', 'c'), 4));
    const replaced = ring(three.owners.map((o) => (o === 'c' ? 'd' : o)), 2);
    const r = new InboundTransfers();
    r.onRingChange(three, replaced, 3, new Set(['a', 'b', 'd']), 'd', 0);
    expect(r.size).toBe(16);
    for (const e of r.list()) {
      expect(e.givers[0]).toBe('c');
      expect(r.sourcesOf(e.partition, (n) => n === 'c')).toEqual(e.sources);
      expect(e.sources).toHaveLength(2);
    }
  });

  it('state saved before alternates existed reads as before', () => {
    const saved = JSON.parse(JSON.stringify(t.toJSON())) as { entries: Array<Record<string, unknown>>; early: [] };
    for (const e of saved.entries) delete e.alternates;
    const restored = new InboundTransfers(saved as never);
    for (const e of restored.list()) expect(restored.sourcesOf(e.partition, (n) => n === e.givers[0])).toEqual(e.sources);
  });
});
