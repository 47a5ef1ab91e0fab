// The reap verdict (src/core/reap.ts), rule by rule: a tombstone is reaped
// only when every member answered from the delete's ring, every primary
// holds the same all-tombstone record and no hint, and no other member holds
// a hint or a copy.
import { describe, expect, it } from 'vitest';
import { type ReapCheck, localReapStep, reapVerdict } from '../../src/core/reap.js';
import { decodeContext, decodeRecord, encodeRecord, recordContextBytes, update } from '../../src/record/index.js';

const actor = Buffer.from('n1:0');
const version = (value: string | null, now = 1) => encodeRecord(update(null, new Map(), actor, { value: value === null ? null : Buffer.from(value), now }));
const TOMB = version(null);
const OTHER_TOMB = version(null, 2); // another tombstone: same dot, other timestamp — not byte-identical
const LIVE = version('v');
const RING = { version: 7, claimant: 'n1' };
const members = ['n1', 'n2', 'n3', 'n4'];
const primaries = ['n1', 'n2', 'n3'];
const at = (record: Buffer | null, o: Partial<ReapCheck> = {}): ReapCheck => ({ record, hinted: false, ringVersion: RING.version, claimant: RING.claimant, ...o });
const settled = (): Array<ReapCheck | null> => [at(TOMB), at(TOMB), at(TOMB), at(null)];
const changed = (i: number, c: ReapCheck | null) => settled().map((x, j) => (j === i ? c : x));

describe('reapVerdict', () => {
  it('reaps when every member answered from the ring, the primaries hold one tombstone, nobody else anything', () => {
    expect(reapVerdict(members, primaries, settled(), RING)).toEqual({ kind: 'reap', tombstone: TOMB });
  });

  it.each([
    ['a primary did not answer', changed(1, null), 'primary_unreachable'],
    ['another member did not answer', changed(3, null), 'member_unreachable'],
    ['a member routes by another ring version', changed(2, at(TOMB, { ringVersion: 6 })), 'ring_not_settled'],
    ['a member names another claimant', changed(3, at(null, { claimant: 'n2' })), 'ring_not_settled'],
    ['a primary holds a hint for the key', changed(0, at(TOMB, { hinted: true })), 'hint_pending'],
    ['another member holds a hint for the key', changed(3, at(null, { hinted: true })), 'hint_pending'],
    ['a primary has no record', changed(2, at(null)), 'primary_without_record'],
    ['the primaries\' records differ', changed(1, at(OTHER_TOMB)), 'replicas_differ'],
    ['another member holds a copy (stray)', changed(3, at(TOMB)), 'stray_copy'],
    ['the record is not all tombstones', [at(LIVE), at(LIVE), at(LIVE), at(null)], 'not_deleted'],
  ] as const)('waits when %s', (_what, checks, reason) => {
    expect(reapVerdict(members, primaries, checks, RING)).toEqual({ kind: 'wait', reason });
  });

  it('names the first rule broken, in member order', () => {
    const checks = settled();
    checks[1] = at(TOMB, { ringVersion: 6 });
    checks[3] = null;
    expect(reapVerdict(members, primaries, checks, RING)).toEqual({ kind: 'wait', reason: 'ring_not_settled' });
  });

  it('refuses checks that do not match the members one to one', () => {
    expect(() => reapVerdict(members, primaries, settled().slice(1), RING)).toThrow(/3 checks for 4 members/);
  });
});

describe('localReapStep (what a primary does with a kv.reap)', () => {
  // A value, then its delete (context: the value's dot), then a newer write the delete did not see.
  const value = update(null, new Map(), actor, { value: Buffer.from('v'), now: 1 });
  const deleted = encodeRecord(update(value, value.context, actor, { value: null, now: 2 }));
  const ctxOfDelete = decodeContext(recordContextBytes(deleted));
  const newer = encodeRecord(update(decodeRecord(deleted), new Map(), Buffer.from('n2:0'), { value: Buffer.from('w'), now: 3 }));
  const otherTombstone = encodeRecord(update(null, ctxOfDelete, Buffer.from('n3:0'), { value: null, now: 2 }));
  it.each([
    ['no record: remember the tombstone as a floor only', null, 'floor'],
    ['the very tombstone: reap it', deleted, 'reap'],
    ['the value the delete saw: merge, then reap', encodeRecord(value), 'merge'],
    ['a write the delete did not see: refuse', newer, 'refuse'],
  ] as const)('%s', (_what, stored, step) => {
    expect(localReapStep(stored, deleted)).toBe(step);
  });
  it('a tombstone of another dot the delete did not see is refused, not merged', () => {
    expect(localReapStep(otherTombstone, deleted)).toBe('refuse');
  });
  it('refuses to plan the reap of a record that is not all tombstones', () => {
    expect(() => localReapStep(null, encodeRecord(value))).toThrow(/not all tombstones/);
  });
});
