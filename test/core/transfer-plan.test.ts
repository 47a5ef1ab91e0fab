import { describe, expect, it } from 'vitest';
import { claim } from '../../src/core/claim.js';
import { preferenceList, type Ring } from '../../src/core/ring.js';
import { InboundTransfers, bucketNsInUse, carryOverTransfers, inboundTransfers, planTransfers } from '../../src/core/transfer-plan.js';

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
    // No old replica a member any more: what can still come is the copy of the node each
    // partition's list replaced, if it runs (a leaver is marked 'left' as soon as the ring
    // gives it nothing, before it has given its copy); it waits for that one alone.
    for (const i of inboundTransfers(before, after, 3, new Set(['d']), 'd')) {
      const old = preferenceList(before, i.partition, 3).primaries;
      const next = preferenceList(after, i.partition, 3).primaries;
      expect(i.givers).toHaveLength(1);
      expect(old).toContain(i.givers[0]);
      expect(next).not.toContain(i.givers[0]);
    }
    // A list that grew replaced no one: with every old replica gone, nothing can come.
    const two = ring(claim(null, members('a', 'b'), 4));
    const three = ring(claim(two, members('a', 'b', 'd'), 4), 2);
    expect(inboundTransfers(two, three, 3, new Set(['d']), 'd')).toEqual([]);
  });
});

// ---------------------------------------------------------------------------
// Per bucket n (docs/cluster.md "Partition transfer"): a key lives on the
// first n nodes of its partition's list, n being its bucket's. The model
// below holds, per (partition, n), the nodes with a copy; applying a plan
// must leave every new replica of that n with a copy, copy it from a node
// that had it, and copy it to no node outside that n's list.

const NS = [1, 2, 3, 5];
const ids = (count: number) => ['a', 'b', 'c', 'd', 'e', 'f', 'g'].slice(0, count);
const zoneMap = (nodes: string[]) => new Map(nodes.map((id, i) => [id, `z${i % 3}`]));

interface Row {
  name: string;
  before: string[];
  after: string[];
  /** Nodes able to give (default: those of `after`: a leaver that stopped gives nothing). */
  givers?: string[];
  zones?: boolean;
}

const rows: Row[] = [
  { name: 'join 2 → 3', before: ids(2), after: ids(3) },
  { name: 'join 3 → 4', before: ids(3), after: ids(4) },
  { name: 'join 4 → 5', before: ids(4), after: ids(5) },
  { name: 'join 5 → 6', before: ids(5), after: ids(6) },
  { name: 'join 5 → 6 with zones', before: ids(5), after: ids(6), zones: true },
  { name: 'leave 4 → 3, the leaver gone', before: ids(4), after: ids(3) },
  { name: 'leave 4 → 3, the leaver still giving', before: ids(4), after: ids(3), givers: ids(4) },
  { name: 'leave 6 → 5, the leaver still giving', before: ids(6), after: ids(5), givers: ids(6) },
  { name: 'leave 6 → 5 with zones, the leaver gone', before: ids(6), after: ids(5), zones: true },
];

describe('planTransfers per bucket n: joins and leaves with n = 1, 2, 3, 5 buckets', () => {
  for (const row of rows) {
    it(row.name, () => {
      const bits = 5;
      const zones = row.zones ? zoneMap(row.after.length > row.before.length ? row.after : row.before) : undefined;
      const before = ring(claim(null, members(...row.before), bits));
      const after = ring(claim(before, members(...row.after), bits), 2);
      const giving = new Set(row.givers ?? row.after);
      const plan = planTransfers(before, after, NS, giving, zones);
      const pl = (r: Ring, p: number, n: number) => preferenceList(r, p, n, zones).primaries;

      // One transfer per (partition, giver, target); its n values ascending and among those planned.
      const pairs = plan.map((t) => `${t.partition} ${t.from}>${t.to}`);
      expect(new Set(pairs).size).toBe(pairs.length);
      for (const t of plan) expect(t.ns).toEqual([...new Set(t.ns)].filter((n) => NS.includes(n)).sort((x, y) => x - y));

      for (let p = 0; p < 2 ** bits; p++) {
        for (const n of NS) {
          const old = pl(before, p, n);
          const next = pl(after, p, n);
          const holders = new Set(old);
          const moves = plan.filter((t) => t.partition === p && t.ns.includes(n));
          for (const t of moves) {
            expect(old, `p${p} n=${n}: ${t.from} gives what it holds`).toContain(t.from);
            expect(giving.has(t.from)).toBe(true);
            expect(next, `p${p} n=${n}: no stray copy on ${t.to}`).toContain(t.to);
            expect(old).not.toContain(t.to);
            holders.add(t.to);
          }
          // Every replica of this n holds the keys once the plan ran (when some old replica could give).
          if (old.some((node) => giving.has(node))) for (const node of next) expect(holders, `p${p} n=${n}: ${node} has the keys`).toContain(node);
          // The copy that goes moves: an old replica that leaves the list and can give gives to a new one.
          for (const node of old) {
            if (!next.includes(node) && giving.has(node) && next.some((x) => !old.includes(x))) {
              expect(moves.some((t) => t.from === node), `p${p} n=${n}: ${node}'s copy moves`).toBe(true);
            }
          }
        }
      }
      // The same as planning each n alone (the lists of smaller n are prefixes of the larger).
      const alone = NS.flatMap((n) => planTransfers(before, after, n, giving, zones).map((t) => `${t.partition} ${t.from}>${t.to} ${n}`)).sort();
      expect(plan.flatMap((t) => t.ns.map((n) => `${t.partition} ${t.from}>${t.to} ${n}`)).sort()).toEqual(alone);
      // And the receivers wait for exactly that, per n.
      let unplanned = 0;
      for (const self of row.after) {
        const inbound = inboundTransfers(before, after, NS, new Set(row.after), self, zones);
        for (const i of inbound) {
          for (const g of i.byN) {
            expect(pl(after, i.partition, g.n)).toContain(self);
            expect(pl(before, i.partition, g.n)).not.toContain(self);
          }
        }
        if (row.givers === undefined) {
          const mine = plan.filter((t) => t.to === self).flatMap((t) => t.ns.map((n) => `${t.partition} ${n} ${t.from}`)).sort();
          // The giver last; a replaced node that left comes first (it may still run and give its own copy).
          const waits = inbound.flatMap((i) => i.byN.map((g) => ({ partition: i.partition, n: g.n, givers: g.givers })));
          const planned = waits.filter((w) => mine.includes(`${w.partition} ${w.n} ${w.givers[w.givers.length - 1]}`));
          expect(planned.map((w) => `${w.partition} ${w.n} ${w.givers[w.givers.length - 1]}`).sort()).toEqual(mine);
          // Waits with no planned transfer: no old replica of that n can give (n = 1 here), so only the node
          // replaced, which left and may still run, can (issue 9: seeds 16 and 24 of transfer-mixed-n with n = 1).
          for (const w of waits.filter((x) => !planned.includes(x))) {
            unplanned++;
            expect(pl(before, w.partition, w.n).some((node) => giving.has(node)), `p${w.partition} n=${w.n}`).toBe(false);
            expect(w.givers).toHaveLength(1);
            expect(pl(before, w.partition, w.n)).toContain(w.givers[0]);
            expect(pl(after, w.partition, w.n)).not.toContain(w.givers[0]);
          }
        }
      }
      // A leaver that stopped held n = 1 partitions alone: their new replicas wait for it.
      if (row.givers === undefined) expect(unplanned > 0).toBe(row.before.length > row.after.length);
    });
  }

  // One partition walked by hand (Q = 4, the list of partition 0 is the owners in order).
  const hand = (owners: string[], version: number): Ring => ({ partitionBits: 2, owners, version, claimant: 'a' });
  it('a joiner placed first gets each n from the node that n loses: n = 1 from a, 2 from b, 3 from c', () => {
    const before = hand(['a', 'b', 'c', 'a'], 1);
    const after = hand(['d', 'a', 'b', 'c'], 2);
    const p0 = planTransfers(before, after, [1, 2, 3], new Set(['a', 'b', 'c', 'd'])).filter((t) => t.partition === 0);
    expect(p0).toEqual([
      { partition: 0, from: 'a', to: 'd', ns: [1] },
      { partition: 0, from: 'b', to: 'd', ns: [2] },
      { partition: 0, from: 'c', to: 'd', ns: [3] },
    ]);
    const incoming = inboundTransfers(before, after, [1, 2, 3], new Set(['a', 'b', 'c', 'd']), 'd').find((i) => i.partition === 0)!;
    expect(incoming.byN).toEqual([
      { n: 1, givers: ['a'], sources: ['a'] },
      { n: 2, givers: ['b'], sources: ['b'] },
      { n: 3, givers: ['c'], sources: ['c'] },
    ]);
  });

  it('a node moving up into a smaller n\'s list gets that n\'s keys (what a batch filter of one n = 3 plan missed)', () => {
    // b leaves: c moves from 3rd to 2nd, d joins the n = 3 list.
    const before = hand(['a', 'b', 'c', 'd'], 1);
    const after = hand(['a', 'c', 'd', 'a'], 2);
    const p0 = planTransfers(before, after, [2, 3], new Set(['a', 'c', 'd', 'b'])).filter((t) => t.partition === 0);
    expect(p0).toEqual([
      { partition: 0, from: 'b', to: 'c', ns: [2] },
      { partition: 0, from: 'b', to: 'd', ns: [3] },
    ]);
    // Once b is gone the first old replica still a member gives instead.
    expect(planTransfers(before, after, [2, 3], new Set(['a', 'c', 'd'])).filter((t) => t.partition === 0)).toEqual([
      { partition: 0, from: 'a', to: 'c', ns: [2] },
      { partition: 0, from: 'a', to: 'd', ns: [3] },
    ]);
    // The one-n plan of before sends c nothing: it was a replica for n = 3 already.
    expect(planTransfers(before, after, 3, new Set(['a', 'c', 'd', 'b'])).filter((t) => t.partition === 0 && t.to === 'c')).toEqual([]);
  });

  it('one giver for several n: one transfer carrying them all', () => {
    const before = hand(['a', 'b', 'a', 'b'], 1);
    const after = hand(['c', 'a', 'b', 'c'], 2);
    // n = 2: [a, b] → [c, a], b gives; n = 3 = [a, b] (two nodes) → [c, a, b], a gives (the first old replica: none replaced).
    expect(planTransfers(before, after, [2, 3, 5], new Set(['a', 'b', 'c'])).filter((t) => t.partition === 0)).toEqual([
      { partition: 0, from: 'b', to: 'c', ns: [2] },
      { partition: 0, from: 'a', to: 'c', ns: [3, 5] },
    ]);
  });
});

describe('bucketNsInUse', () => {
  const entry = (n: number) => ({ props: { n, r: 1, w: 1, dw: 0, mode: 'siblings' as const }, version: 1 });
  it.each([
    [{}, [3]],
    [{ x: entry(2) }, [2, 3]],
    [{ x: entry(5), y: entry(1), z: entry(5), d: entry(3) }, [1, 3, 5]],
  ])('%j → %j (the default n always: buckets with no props of their own)', (buckets, expected) => {
    expect(bucketNsInUse(buckets)).toEqual(expected);
  });
});

describe('receiving per bucket n', () => {
  const hand = (owners: string[], version: number): Ring => ({ partitionBits: 2, owners, version, claimant: 'a' });
  const before = hand(['a', 'b', 'c', 'a'], 1);
  const after = hand(['d', 'a', 'b', 'c'], 2);
  const valid = new Set(['a', 'b', 'c', 'd']);

  it('each n is read through its own giver and ends with that giver\'s finish', () => {
    const t = new InboundTransfers();
    t.onRingChange(before, after, [2, 3], valid, 'd', 0);
    expect(t.sourcesOf(0, 2)).toEqual(['b']);
    expect(t.sourcesOf(0, 3)).toEqual(['c']);
    expect(t.sourcesOf(0)).toEqual(['b', 'c']);
    // An n that nothing was planned for here: this node had its keys already.
    expect(t.sourcesOf(0, 1)).toBeNull();
    expect(t.onFinish(0, 'b', 2)).toBe(false);
    expect(t.sourcesOf(0, 2)).toBeNull();
    expect(t.sourcesOf(0, 3)).toEqual(['c']);
    expect(t.list()[0]!.givers).toEqual(['c']);
    expect(t.onGiverStatus(0, 'c', 2, false)).toBe(true);
    expect(t.sourcesOf(0)).toBeNull();
  });

  it('a later ring that makes the node new for another n of a pending partition adds that n', () => {
    // Ring 2: d joins last (n = 3 only). Ring 3: d moves up into the n = 2 list (b leaves).
    const r1 = hand(['a', 'b', 'c', 'a'], 1);
    const r2 = hand(['a', 'b', 'd', 'c'], 2);
    const r3 = hand(['a', 'd', 'c', 'a'], 3);
    const t = new InboundTransfers();
    t.onRingChange(r1, r2, [2, 3], valid, 'd', 0);
    expect(t.sourcesOf(0, 3)).toEqual(['c']);
    expect(t.sourcesOf(0, 2)).toBeNull();
    t.onRingChange(r2, r3, [2, 3], new Set(['a', 'c', 'd']), 'd', 10);
    expect(t.sourcesOf(0, 3)).toEqual(['c']);
    expect(t.sourcesOf(0, 2)).toEqual(['b', 'a']);
    // A finish from ring 2 ends only what was planned under ring 2.
    t.onFinish(0, 'c', 2);
    expect(t.sourcesOf(0, 3)).toBeNull();
    expect(t.sourcesOf(0, 2)).toEqual(['b', 'a']);
    // Round trip through JSON (the saved state) keeps it.
    const restored = new InboundTransfers(JSON.parse(JSON.stringify(t.toJSON())));
    expect(restored.list()).toEqual(t.list());
    // Leaving the n = 2 list again (back to ring 2's shape) ends it.
    restored.onRingChange(r3, { ...r2, version: 4 }, [2, 3], valid, 'd', 20);
    expect(restored.sourcesOf(0, 2)).toBeNull();
  });

  it('state saved before per-n plans (entries without byN) loads as pending for every n', () => {
    const old = { entries: [{ partition: 0, givers: ['c'], sources: ['c'], ring: 2, since: 5 }], early: [['1 b', 2]] } as unknown as ConstructorParameters<typeof InboundTransfers>[0];
    const t = new InboundTransfers(old);
    for (const n of [1, 2, 3, 5]) expect(t.sourcesOf(0, n)).toEqual(['c']);
    expect(t.sourcesOf(0)).toEqual(['c']);
    // Still a replica for some n: it stays pending across a ring change that adds nothing new.
    t.onRingChange(before, { ...after, version: 3 }, [2, 3], valid, 'd', 10);
    expect(t.sourcesOf(0, 2)).toEqual(['c']);
    expect(t.onFinish(0, 'c', 2)).toBe(true);
    expect(t.sourcesOf(0)).toBeNull();
  });
});

describe('carryOverTransfers: pending transfers against a later ring', () => {
  // Q = 4, the list of partition 0 is the owners in order; this node is 'a'.
  const hand = (owners: string[], version: number): Ring => ({ partitionBits: 2, owners, version, claimant: 'a' });
  const after = hand(['a', 'c', 'd', 'b'], 3);
  it.each([
    // [what, pending transfer, kept, moved]
    ['target still a replica for every n: kept as is', { partition: 0, to: 'c', ns: [2, 3] }, [{ partition: 0, to: 'c', ns: [2, 3] }], []],
    ['target past n = 2 now: the n = 2 keys go to the n = 2 replicas, n = 3 stays', { partition: 0, to: 'd', ns: [2, 3] }, [{ partition: 0, to: 'd', ns: [3] }], [{ partition: 0, from: 'a', to: 'c', ns: [2] }]],
    ['target no replica at all: every n to its replicas', { partition: 0, to: 'b', ns: [2, 3] }, [], [{ partition: 0, from: 'a', to: 'c', ns: [2] }, { partition: 0, from: 'a', to: 'c', ns: [3] }, { partition: 0, from: 'a', to: 'd', ns: [3] }]],
    ['saved before per-n plans (every key): judged by the largest n, moved as every key', { partition: 0, to: 'b' }, [], [{ partition: 0, from: 'a', to: 'c', ns: undefined }, { partition: 0, from: 'a', to: 'd', ns: undefined }]],
    ['saved before per-n plans, target still within the largest n: kept', { partition: 0, to: 'd' }, [{ partition: 0, to: 'd' }], []],
  ])('%s', (_what, pending, kept, moved) => {
    expect(carryOverTransfers([pending], after, [2, 3], 'a')).toEqual({ kept, moved });
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
