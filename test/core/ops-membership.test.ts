// The membership rules of drain, replace, forget and departed-member expiry
// (src/core/membership.ts; docs/cluster.md "Drain", "Replace", "Forget"),
// step by step on plain states, and the drain's steps (src/core/drain.ts).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isBalanced } from '../../src/core/claim.js';
import { nextDrainStep, type DrainObservation } from '../../src/core/drain.js';
import {
  type ClusterState,
  ClusterStateError,
  addMember,
  claimantOf,
  createCluster,
  digest,
  drainingMembers,
  expireDeparted,
  forgetStep,
  markLeaving,
  markLeft,
  markReplacing,
  maybeReclaim,
  merge,
  mergeGossip,
  removeMember,
  setDraining,
  validMembers,
} from '../../src/core/membership.js';
import { StateWireError, packState, unpackState } from '../../src/core/state-wire.js';

const member = (id: string) => ({ id, address: `${id}.local:7000` });
const settle = (state: ClusterState, nowMs?: number): ClusterState => {
  for (let i = 0; i < 4; i++) {
    const claimant = claimantOf(state);
    const next = claimant !== null ? maybeReclaim(state, claimant, nowMs) : null;
    if (next === null) return state;
    state = next;
  }
  return state;
};
/** a, b, c, d valid on a balanced ring of 64 partitions. */
const four = (): ClusterState => {
  let state = createCluster(member('a'), 6, 'ops');
  for (const id of ['b', 'c', 'd']) state = settle(addMember(state, member(id)));
  return state;
};
const owned = (state: ClusterState, id: string) => state.ring.owners.flatMap((o, p) => (o === id ? [p] : []));

describe('drain flag', () => {
  it('is set and cleared by a version bump of the member entry, and travels in gossip', () => {
    const state = four();
    const draining = setDraining(state, 'c', true);
    expect(draining.members.c).toMatchObject({ draining: true, version: state.members.c!.version + 1 });
    expect(drainingMembers(draining)).toEqual(new Set(['c']));
    expect(setDraining(draining, 'c', true)).toBe(draining);
    // Another node learns it, relayed by a third one.
    expect(mergeGossip(state, draining, 'a', 'b').state.members.c!.draining).toBe(true);
    const back = setDraining(draining, 'c', false);
    expect(back.members.c!.draining).toBeUndefined();
    expect(merge(draining, back).members.c!.draining).toBeUndefined();
    // It changes no ownership: the node still stores replicas.
    expect(settle(draining).ring).toBe(draining.ring);
  });

  it('is dropped when the member leaves, and cannot be set on a member that left', () => {
    let state = setDraining(four(), 'd', true);
    state = markLeft(state, 'd', 1_000);
    expect(state.members.d).toMatchObject({ status: 'left', leftAtMs: 1_000 });
    expect(state.members.d!.draining).toBeUndefined();
    expect(() => setDraining(state, 'd', true)).toThrow(ClusterStateError);
  });
});

describe('replace', () => {
  it('hands exactly the dead member\'s partitions to a fresh member, marks the dead one left, in one ring change', () => {
    const before = four();
    const dead = owned(before, 'c');
    let state = addMember(before, member('e'));
    state = markReplacing(state, 'c', 'e');
    expect(state.members.e!.replaces).toBe('c');
    // The claimant (a) applies it; nobody else does.
    expect(maybeReclaim(state, 'b', 5)).toBeNull();
    const after = maybeReclaim(state, 'a', 5)!;
    expect(after.ring.version).toBe(before.ring.version + 1);
    expect(owned(after, 'e')).toEqual(dead);
    for (const id of ['a', 'b', 'd']) expect(owned(after, id)).toEqual(owned(before, id));
    expect(after.members.c).toMatchObject({ status: 'left', leftAtMs: 5 });
    expect(after.members.e!.replaces).toBeUndefined();
    expect(isBalanced(after.ring.owners, validMembers(after).map((m) => m.id))).toBe(true);
    expect(maybeReclaim(after, 'a', 6)).toBeNull();
  });

  it('does not wait for a dead claimant: the member being replaced is not the claimant', () => {
    let state = addMember(four(), member('e'));
    expect(claimantOf(state)).toBe('a');
    state = markReplacing(state, 'a', 'e');
    expect(claimantOf(state)).toBe('b');
    const after = maybeReclaim(state, 'b')!;
    expect(after.members.a!.status).toBe('left');
    expect(new Set(after.ring.owners).has('a')).toBe(false);
    expect(after.ring.claimant).toBe('b');
  });

  it('with a replacement that already owns partitions, gives it the dead one\'s and rebalances the rest', () => {
    const joined = settle(addMember(four(), member('e')));
    const dead = owned(joined, 'c');
    const after = settle(markReplacing(joined, 'c', 'e'));
    expect(after.members.c!.status).toBe('left');
    expect(isBalanced(after.ring.owners, ['a', 'b', 'd', 'e'])).toBe(true);
    // Most of the dead member's partitions stay with the replacement (claim moves as few as it can).
    expect(dead.filter((p) => after.ring.owners[p] === 'e').length).toBeGreaterThanOrEqual(dead.length - owned(joined, 'e').length);
  });

  it('refuses what cannot work', () => {
    const state = addMember(four(), member('e'));
    expect(() => markReplacing(state, 'e', 'e')).toThrow(ClusterStateError);
    expect(() => markReplacing(state, 'x', 'e')).toThrow(/not a member/);
    expect(() => markReplacing(markLeaving(state, 'e'), 'c', 'e')).toThrow(/only a valid member/);
    expect(() => markReplacing(settle(markLeft(state, 'c')), 'c', 'e')).toThrow(/already left/);
    const marked = markReplacing(addMember(state, member('f')), 'c', 'e');
    expect(() => markReplacing(marked, 'c', 'f')).toThrow(/already replacing/);
  });
});

describe('forget', () => {
  it('removes a member that left and owns nothing, and old gossip does not bring it back', () => {
    const old = settle(markLeaving(four(), 'd'));
    expect(old.members.d!.status).toBe('left');
    expect(forgetStep(old, 'd', 'a', false)).toEqual({ kind: 'remove' });
    const forgotten = removeMember(old, 'd', 10_000);
    expect(forgotten.members.d).toBeUndefined();
    expect(forgotten.forgotten!.d).toEqual({ version: old.members.d!.version, atMs: 10_000 });
    // A node that still holds the member (an old state) gossips it: merge drops it, either way round.
    expect(merge(forgotten, old).members.d).toBeUndefined();
    expect(merge(old, forgotten).members.d).toBeUndefined();
    expect(digest(merge(old, forgotten))).toBe(digest(merge(forgotten, old)));
    expect(mergeGossip(old, forgotten, 'b', 'a').state.members.d).toBeUndefined();
  });

  it('lets a forgotten node join again above its tombstone', () => {
    const forgotten = removeMember(settle(markLeaving(four(), 'd')), 'd', 1);
    const back = addMember(forgotten, member('d'));
    expect(back.members.d!.version).toBe(forgotten.forgotten!.d!.version + 1);
    expect(merge(back, forgotten).members.d!.status).toBe('valid');
    expect(merge(forgotten, back).members.d!.status).toBe('valid');
  });

  it('needs force for a member that is valid or owns partitions; then it is marked left first', () => {
    const state = four();
    const refused = forgetStep(state, 'c', 'a', false);
    expect(refused).toMatchObject({ kind: 'refuse', code: 'FORCE_REQUIRED' });
    expect(forgetStep(state, 'c', 'a', true)).toEqual({ kind: 'mark-left' });
    const left = markLeft(state, 'c', 7);
    // Left but still named by the ring: wait for the claimant.
    expect(forgetStep(left, 'c', 'a', true)).toEqual({ kind: 'wait-ring' });
    expect(forgetStep(left, 'c', 'a', false)).toMatchObject({ kind: 'refuse', code: 'FORCE_REQUIRED' });
    const reclaimed = settle(left);
    expect(owned(reclaimed, 'c')).toEqual([]);
    expect(forgetStep(reclaimed, 'c', 'a', false)).toEqual({ kind: 'remove' });
    expect(() => removeMember(left, 'c', 8)).toThrow(/still owns/);
  });

  it('refuses self, unknown members and the last valid member', () => {
    const state = four();
    expect(forgetStep(state, 'a', 'a', true)).toMatchObject({ kind: 'refuse', code: 'INVALID_TRANSITION' });
    expect(forgetStep(state, 'zz', 'a', true)).toMatchObject({ kind: 'refuse', code: 'UNKNOWN_MEMBER' });
    // b is leaving: forgetting a, the only valid member, would leave no one to own the ring.
    const two = markLeaving(settle(addMember(createCluster(member('a'), 4, 'ops'), member('b'))), 'b');
    expect(forgetStep(two, 'a', 'b', true)).toMatchObject({ kind: 'refuse', code: 'INVALID_TRANSITION' });
  });

  it('keeps a member a ring still names, whatever its tombstone says (a ring claimed before the forget)', () => {
    const before = four();
    // Node x forgets d (forced, reclaimed, removed) while node y still routes by a ring naming d at a higher version.
    const x = removeMember(settle(markLeft(before, 'd')), 'd', 1);
    const y = { ...before, ring: { ...before.ring, version: x.ring.version + 5, claimant: 'a' } };
    const m = merge(x, y);
    expect(digest(m)).toBe(digest(merge(y, x)));
    // Kept (the ring names it), as a member that left: not y's old 'valid' entry.
    expect(m.members.d).toMatchObject({ status: 'left', version: x.forgotten!.d!.version });
    expect(new Set(m.ring.owners).has('d')).toBe(true);
    // The claimant hands its partitions on; the next merge drops it.
    const reclaimed = settle(m);
    expect(new Set(reclaimed.ring.owners).has('d')).toBe(false);
    expect(merge(reclaimed, y).members.d).toBeUndefined();
    expect(merge(y, reclaimed).members.d).toBeUndefined();
  });

  it('refuses a tombstone of the receiving node itself (a running node forgotten by mistake)', () => {
    const state = four();
    const elsewhere = removeMember(settle(markLeft(state, 'd')), 'd', 1);
    const { state: merged, refused } = mergeGossip(state, elsewhere, 'd', 'a');
    expect(merged.members.d).toBeDefined();
    expect(refused.map((r) => r.id)).toContain('d');
  });

  it('travels on the wire, and a malformed tombstone table is refused whole', () => {
    const forgotten = removeMember(settle(markLeaving(four(), 'd')), 'd', 1_234);
    expect(unpackState(packState(forgotten)).forgotten).toEqual(forgotten.forgotten);
    const bad = { ...forgotten, forgotten: { d: { version: 0, atMs: 1 } } };
    expect(() => unpackState(packState(bad))).toThrow(StateWireError);
    const extra = { ...forgotten, forgotten: { d: { version: 3, atMs: 1, x: 1 } } };
    expect(() => unpackState(packState(extra))).toThrow(StateWireError);
    const drainingBad = { ...forgotten, members: { ...forgotten.members, a: { ...forgotten.members.a!, draining: false } } };
    expect(() => unpackState(packState(drainingBad))).toThrow(/draining/);
  });
});

describe('departed-member expiry', () => {
  it('drops members that left expiryMs ago, on the claimant only, stamping those without a time first', () => {
    const left = settle(markLeaving(four(), 'd'));
    // Marked left by maybeReclaim without a clock: no leftAtMs yet.
    expect(left.members.d!.leftAtMs).toBeUndefined();
    expect(expireDeparted(left, 'b', 0, 1_000)).toBeNull();
    const stamped = expireDeparted(left, 'a', 500, 1_000)!;
    expect(stamped.members.d!.leftAtMs).toBe(500);
    expect(expireDeparted(stamped, 'a', 1_499, 1_000)).toBeNull();
    const expired = expireDeparted(stamped, 'a', 1_500, 1_000)!;
    expect(expired.members.d).toBeUndefined();
    expect(expired.forgotten!.d).toBeDefined();
    // Off with a negative expiry.
    expect(expireDeparted(stamped, 'a', 10 ** 9, -1)).toBeNull();
  });
});

describe('merge with the new fields stays commutative, associative and idempotent', () => {
  it('over random operation sequences on three replicas', () => {
    const ops = fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 7 }), fc.constantFrom('a', 'b', 'c', 'd', 'e')), { maxLength: 30 });
    fc.assert(
      fc.property(ops, (steps) => {
        const base = four();
        const replicas = [base, base, base];
        let clock = 0;
        for (const [r, op, id] of steps) {
          const s = replicas[r]!;
          clock += 10;
          const attempt = (f: () => ClusterState) => {
            try {
              replicas[r] = f();
            } catch (err) {
              if (!(err instanceof ClusterStateError)) throw err;
            }
          };
          if (op === 0) attempt(() => setDraining(s, id, s.members[id]?.draining !== true));
          else if (op === 1) attempt(() => markLeft(s, id, clock));
          else if (op === 2) attempt(() => (forgetStep(s, id, 'a', false).kind === 'remove' ? removeMember(s, id, clock) : s));
          else if (op === 3) attempt(() => addMember(s, member(id)));
          else if (op === 4) attempt(() => markReplacing(s, id, 'e'));
          else if (op === 5) replicas[r] = settle(s, clock);
          else if (op === 6) replicas[r] = expireDeparted(s, claimantOf(s) ?? 'a', clock, 20) ?? s;
          else replicas[r] = merge(s, replicas[(r + 1) % 3]!);
        }
        const [x, y, z] = replicas as [ClusterState, ClusterState, ClusterState];
        expect(digest(merge(x, y))).toBe(digest(merge(y, x)));
        expect(digest(merge(x, x))).toBe(digest(x));
        expect(digest(merge(merge(x, y), z))).toBe(digest(merge(x, merge(y, z))));
      }),
      { numRuns: 300 },
    );
  });
});

describe('drain steps', () => {
  const at = (o: Partial<DrainObservation>): DrainObservation => ({ phase: 'in-flight', inFlight: 0, transfersPending: 0, hintsPending: 0, lastRound: null, deadlinePassed: false, ...o });
  it('waits for in-flight requests, then transfers, then delivers hints, then flushes', () => {
    expect(nextDrainStep(at({ inFlight: 2 }))).toEqual({ kind: 'wait', phase: 'in-flight' });
    expect(nextDrainStep(at({ inFlight: 0, transfersPending: 3 }))).toEqual({ kind: 'wait', phase: 'transfers' });
    expect(nextDrainStep(at({ phase: 'transfers', transfersPending: 3 }))).toEqual({ kind: 'wait', phase: 'transfers' });
    expect(nextDrainStep(at({ phase: 'transfers' }))).toEqual({ kind: 'wait', phase: 'handoff' });
    expect(nextDrainStep(at({ phase: 'handoff', hintsPending: 5 }))).toEqual({ kind: 'handoff-round' });
    expect(nextDrainStep(at({ phase: 'handoff', hintsPending: 5, lastRound: { delivered: 3, unreachable: 1 } }))).toEqual({ kind: 'handoff-round' });
    expect(nextDrainStep(at({ phase: 'handoff', hintsPending: 0 }))).toEqual({ kind: 'flush' });
    expect(nextDrainStep(at({ phase: 'flush' }))).toEqual({ kind: 'done' });
  });
  it('keeps hints for unreachable targets instead of waiting for ever, and flushes at the deadline', () => {
    expect(nextDrainStep(at({ phase: 'handoff', hintsPending: 5, lastRound: { delivered: 0, unreachable: 1 } }))).toEqual({ kind: 'flush' });
    expect(nextDrainStep(at({ inFlight: 9, deadlinePassed: true }))).toEqual({ kind: 'flush' });
    expect(nextDrainStep(at({ phase: 'transfers', transfersPending: 9, deadlinePassed: true }))).toEqual({ kind: 'flush' });
    expect(nextDrainStep(at({ phase: 'handoff', hintsPending: 9, deadlinePassed: true }))).toEqual({ kind: 'flush' });
  });
});
