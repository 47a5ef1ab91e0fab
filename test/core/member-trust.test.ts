// Member validation and who may change a member's entry (issue 11, item 2),
// on the pure core: hostPortProblem, memberProblem, validateState,
// gossipEntryProblem / mergeGossip.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type ClusterState,
  type Member,
  MAX_ENTRY_VERSION,
  addMember,
  createCluster,
  digest,
  gossipEntryProblem,
  hostPortProblem,
  markLeaving,
  markLeft,
  memberProblem,
  mergeGossip,
} from '../../src/core/membership.js';
import { packState, unpackState, validateState } from '../../src/core/state-wire.js';
import { packValue, unpackValue } from '../../src/transport/frames.js';

describe('hostPortProblem', () => {
  it.each([
    ['127.0.0.1:8087', null],
    ['node-1.example.com:1', null],
    ['localhost:65535', null],
    ['[::1]:7000', null],
    ['[2001:db8::1]:7000', null],
    ['10.0.0.1', /not host:port/],
    ['not a host:7000', /bad host/],
    ['127.0.0.1:99999', /port in 1..65535/],
    ['127.0.0.1:0', /port in 1..65535/],
    ['127.0.0.1:070', /port in 1..65535/],
    ['127.0.0.1:+70', /port in 1..65535/],
    ['127.0.0.1:', /port in 1..65535/],
    [':7000', /not host:port/],
    ['0.0.0.0:7405', /unspecified/],
    ['[::]:7405', /unspecified/],
    ['[0:0::0]:7405', /unspecified/],
    ['999.1.1.1:7000', /bad host/],
    ['::1:7000', /bad host/],
    ['[::1:7000', /bad IPv6/],
    ['-bad.example:7000', /bad host/],
    ['a..b:7000', /bad host/],
    ['host\n:7000', /bad host/],
    [`${'a'.repeat(300)}:1`, /at most/],
    ['', /at most/],
  ])('%j', (address, expected) => {
    const problem = hostPortProblem(address);
    if (expected === null) expect(problem).toBeNull();
    else expect(problem).toMatch(expected);
  });
});

describe('memberProblem', () => {
  const good: Member = { id: 'n1', address: '127.0.0.1:7000', status: 'valid', version: 1 };
  it.each([
    ['a good member', {}, null],
    ['with a zone', { zone: 'us-east-1a' }, null],
    ['leaving, at the version bound', { status: 'leaving', version: MAX_ENTRY_VERSION }, null],
    ['id with a space', { id: 'n 1' }, /member id/],
    ['65-character id', { id: 'n'.repeat(65) }, /member id/],
    ['numeric id', { id: 7 }, /member id/],
    ['no address', { address: undefined }, /no address/],
    ['bad address', { address: '127.0.0.1:99999' }, /port/],
    ['zone of 65 characters', { zone: 'z'.repeat(65) }, /bad zone/],
    ['zone with a space', { zone: 'rack 1' }, /bad zone/],
    ['zone with a control character', { zone: 'z\u0000' }, /bad zone/],
    ['empty zone', { zone: '' }, /bad zone/],
    ['zone not a string', { zone: 3 }, /bad zone/],
    ['unknown status', { status: 'owner' }, /bad status/],
    ['version 0', { version: 0 }, /bad version/],
    ['negative version', { version: -1 }, /bad version/],
    ['fractional version', { version: 2.5 }, /bad version/],
    ['version past the bound', { version: MAX_ENTRY_VERSION + 1 }, /bad version/],
    ['version as a bigint', { version: 5n }, /bad version/],
    ['an extra field', { admin: true }, /unknown fields admin/],
  ])('%s', (_name, change, expected) => {
    const problem = memberProblem({ ...good, ...change });
    if (expected === null) expect(problem).toBeNull();
    else expect(problem).toMatch(expected);
  });

  it('is not fooled by non-objects', () => {
    for (const v of [null, 'n1', 7, [good]]) expect(memberProblem(v)).toMatch(/must be an object/);
  });
});

function threeNodes(): ClusterState {
  let s = createCluster({ id: 'n1', address: '127.0.0.1:7001' }, 4, 'c');
  s = addMember(s, { id: 'n2', address: '127.0.0.1:7002' });
  s = addMember(s, { id: 'n3', address: '127.0.0.1:7003', zone: 'z3' });
  return s;
}

describe('validateState', () => {
  it('accepts what packState makes, whole, and refuses any state that breaks a rule, naming it', () => {
    const state = threeNodes();
    expect(unpackState(unpackValue(packValue(packState(state))))).toEqual(state);
    const bad: Array<[string, unknown, RegExp]> = [
      ['no members', { ...state, members: {} }, /1..1024 members/],
      ['a member under another key', { ...state, members: { ...state.members, n9: state.members.n2 } }, /holds another id/],
      ['a bad member', { ...state, members: { ...state.members, n2: { ...state.members.n2!, address: 'x' } } }, /member n2/],
      ['an owner that is no member', { ...state, ring: { ...state.ring, owners: state.ring.owners.map(() => 'ghost') } }, /ring owner "ghost" is not a member/],
      ['too few owners', { ...state, ring: { ...state.ring, owners: state.ring.owners.slice(1) } }, /owners for 16 partitions/],
      ['ring version past the bound', { ...state, ring: { ...state.ring, version: 2 ** 40 } }, /ring.version/],
      ['bad claimant', { ...state, ring: { ...state.ring, claimant: 'a b' } }, /claimant/],
      ['partition bits disagree', { ...state, ring: { ...state.ring, partitionBits: 5 } }, /partition bits/],
      ['an unknown top-level field', { ...state, admins: ['me'] }, /admins|Unrecognized/],
      ['a bad bucket', { ...state, buckets: { b: { props: { n: 99, r: 1, w: 1, dw: 0, mode: 'siblings' }, version: 1 } } }, /bucket "b"/],
      ['a bucket version of 0', { ...state, buckets: { b: { props: { n: 3, r: 2, w: 2, dw: 0, mode: 'siblings' }, version: 0 } } }, /buckets.b.version/],
      ['an empty cluster name', { ...state, clusterName: '' }, /clusterName/],
      ['too many members', { ...state, members: Object.fromEntries(Array.from({ length: 1025 }, (_, i) => [`m${i}`, { id: `m${i}`, address: '127.0.0.1:1', status: 'valid', version: 1 }])) }, /1..1024 members/],
    ];
    for (const [name, s, message] of bad) expect(() => validateState(s), name).toThrow(message);
  });

  it('never throws anything but StateWireError on random mutations of a valid state', () => {
    const wire = unpackValue(packValue(packState(threeNodes()))) as Record<string, unknown>;
    fc.assert(
      fc.property(fc.constantFrom('clusterName', 'partitionBits', 'members', 'ring', 'buckets'), fc.anything(), (field, value) => {
        try {
          unpackState({ ...wire, [field]: value });
        } catch (err) {
          expect((err as Error).name).toBe('StateWireError');
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('who may change a member entry (gossip)', () => {
  const base = threeNodes();
  const entry = (id: string) => base.members[id]!;
  const bumped = (id: string, change: Partial<Member>): Member => ({ ...entry(id), ...change, version: entry(id).version + 1 });

  it.each([
    // [case, receiver, sender, remote entry, refused?]
    ['a new member relayed', 'n1', 'n2', { id: 'n4', address: '127.0.0.1:7004', status: 'valid', version: 1 } as Member, false],
    ['a third member leaving, relayed', 'n1', 'n2', bumped('n3', { status: 'leaving' }), false],
    ['a third member left, relayed', 'n1', 'n2', bumped('n3', { status: 'left' }), false],
    ['a third member moved, relayed', 'n1', 'n2', bumped('n3', { address: '127.0.0.1:9' }), true],
    ['a third member rezoned, relayed', 'n1', 'n2', bumped('n3', { zone: 'z9' }), true],
    ['a third member unzoned, relayed', 'n1', 'n2', { id: 'n3', address: '127.0.0.1:7003', status: 'valid', version: 2 } as Member, true],
    ['the sender moving itself', 'n1', 'n3', bumped('n3', { address: '127.0.0.1:9' }), false],
    ['the sender leaving', 'n1', 'n3', bumped('n3', { status: 'leaving' }), false],
    ['the receiver told to leave (an operator elsewhere)', 'n1', 'n2', bumped('n1', { status: 'leaving' }), false],
    ['the receiver moved', 'n1', 'n2', bumped('n1', { address: '127.0.0.1:9' }), true],
    ['the receiver moved by the member it names', 'n1', 'n1', bumped('n1', { address: '127.0.0.1:9' }), true],
    ['an older entry (loses the merge anyway)', 'n1', 'n2', { ...entry('n3'), address: '127.0.0.1:9', version: 0 } as Member, false],
    ['a tie that would win on content', 'n1', 'n2', { ...entry('n3'), address: '127.0.0.1:9999' }, true],
  ])('%s', (_name, self, from, remote, refused) => {
    expect(gossipEntryProblem(base.members[remote.id], remote, self, from) !== null).toBe(refused);
  });

  it('a way back from leaving comes only from the member itself, or once the receiver has it as left (re-admission)', () => {
    const leaving = markLeaving(base, 'n3');
    const back = { ...leaving.members.n3!, status: 'valid' as const, version: leaving.members.n3!.version + 1 };
    expect(gossipEntryProblem(leaving.members.n3, back, 'n1', 'n2')).toMatch(/own join/);
    expect(gossipEntryProblem(leaving.members.n3, back, 'n1', 'n3')).toBeNull();
    const selfLeaving = markLeaving(base, 'n1').members.n1!;
    expect(gossipEntryProblem(selfLeaving, { ...selfLeaving, status: 'valid', version: selfLeaving.version + 1 }, 'n1', 'n2')).toMatch(/own join/);
    const left = markLeft(leaving, 'n3');
    const readmitted = addMember(left, { id: 'n3', address: '127.0.0.1:7333' }).members.n3!;
    expect(gossipEntryProblem(left.members.n3, readmitted, 'n1', 'n2')).toBeNull();
  });

  it('mergeGossip keeps the refused entries, merges the rest, and a state the member gossips itself converges', () => {
    // n3 left and came back at a new address; n1 saw neither step. n2 relays it: refused. n3 itself: taken.
    const seed = addMember(markLeft(markLeaving(base, 'n3'), 'n3'), { id: 'n3', address: '127.0.0.1:7333' });
    const relayed = mergeGossip(base, seed, 'n1', 'n2');
    expect(relayed.refused).toEqual([{ id: 'n3', version: seed.members.n3!.version, reason: expect.stringMatching(/only n3 itself/) }]);
    expect(relayed.state.members.n3).toEqual(base.members.n3);
    const direct = mergeGossip(relayed.state, seed, 'n1', 'n3');
    expect(direct.refused).toEqual([]);
    expect(digest(direct.state)).toBe(digest(seed));
  });
});
