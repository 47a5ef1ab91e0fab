import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isBalanced } from '../../src/core/claim.js';
import {
  type BucketEntry,
  type ClusterState,
  type Member,
  BucketPropsError,
  ClusterStateError,
  DEFAULT_BUCKET_PROPS,
  addMember,
  bucketProps,
  claimantOf,
  createCluster,
  digest,
  gossipTarget,
  markLeaving,
  markLeft,
  maybeReclaim,
  merge,
  setBucketProps,
  validMembers,
  zonesOf,
} from '../../src/core/membership.js';
import { ownerCounts } from '../../src/core/ring.js';

const member = (id: string, zone?: string) => ({ id, address: `${id}.local:7000`, ...(zone ? { zone } : {}) });

/** Runs the claimant's reclaim (if any is due) the way a node does after gossip. */
const settle = (state: ClusterState): ClusterState => {
  const claimant = claimantOf(state);
  return (claimant !== null ? maybeReclaim(state, claimant) : null) ?? state;
};

const validIds = (state: ClusterState) => validMembers(state).map((m) => m.id);

describe('cluster lifecycle', () => {
  it('creates a one-member cluster owning every partition', () => {
    const state = createCluster(member('b'), 6, 'test');
    expect(state.ring.owners).toHaveLength(64);
    expect(new Set(state.ring.owners)).toEqual(new Set(['b']));
    expect(state.ring).toMatchObject({ version: 1, claimant: 'b', partitionBits: 6 });
    expect(state.members.b).toEqual({ id: 'b', address: 'b.local:7000', status: 'valid', version: 1 });
    expect(claimantOf(state)).toBe('b');
    expect(maybeReclaim(state, 'b')).toBeNull();
  });

  it('lets only the claimant reclaim after a join, then balances the ring', () => {
    let state = addMember(createCluster(member('b'), 6, 'test'), member('a'));
    expect(claimantOf(state)).toBe('a');
    expect(maybeReclaim(state, 'b')).toBeNull();
    state = maybeReclaim(state, 'a')!;
    expect(state.ring).toMatchObject({ version: 2, claimant: 'a' });
    expect(isBalanced(state.ring.owners, ['a', 'b'])).toBe(true);
    expect(maybeReclaim(state, 'a')).toBeNull();
  });

  it('moves a leaving member out of the ring and marks it left', () => {
    let state = createCluster(member('a'), 6, 'test');
    for (const id of ['b', 'c']) state = settle(addMember(state, member(id)));
    state = markLeaving(state, 'b');
    expect(state.members.b).toMatchObject({ status: 'leaving', version: 2 });
    expect(markLeaving(state, 'b')).toBe(state);
    const version = state.ring.version;
    state = settle(state);
    expect(state.ring.version).toBe(version + 1);
    expect(state.ring.owners).not.toContain('b');
    expect(state.members.b).toMatchObject({ status: 'left', version: 3 });
    expect(isBalanced(state.ring.owners, ['a', 'c'])).toBe(true);
    expect(settle(state)).toBe(state);
  });

  it('hands over the claimant role when the claimant leaves', () => {
    let state = createCluster(member('a'), 4, 'test');
    state = settle(addMember(state, member('b')));
    state = markLeaving(state, 'a');
    expect(claimantOf(state)).toBe('b');
    expect(maybeReclaim(state, 'a')).toBeNull();
    state = maybeReclaim(state, 'b')!;
    expect(new Set(state.ring.owners)).toEqual(new Set(['b']));
    expect(state.members.a!.status).toBe('left');
  });

  it('removes a gone node by force, and re-admits it later at a higher version', () => {
    let state = createCluster(member('a'), 4, 'test');
    state = settle(addMember(state, member('b')));
    state = settle(markLeft(state, 'b'));
    expect(state.ring.owners).not.toContain('b');
    expect(markLeft(state, 'b')).toBe(state);
    expect(() => markLeaving(state, 'b')).toThrow(ClusterStateError);
    state = settle(addMember(state, member('b')));
    expect(state.members.b).toMatchObject({ status: 'valid', version: 3 });
    expect(isBalanced(state.ring.owners, ['a', 'b'])).toBe(true);
  });

  it('refuses to lose the last valid member, unknown members and conflicting re-adds', () => {
    const state = createCluster(member('a'), 4, 'test');
    expect(() => markLeaving(state, 'a')).toThrow(/last valid member/);
    expect(() => markLeft(state, 'a')).toThrow(/last valid member/);
    expect(() => markLeaving(state, 'x')).toThrow(expect.objectContaining({ code: 'UNKNOWN_MEMBER' }));
    expect(addMember(state, member('a'))).toBe(state);
    expect(() => addMember(state, { id: 'a', address: 'elsewhere:1' })).toThrow(
      expect.objectContaining({ code: 'MEMBER_EXISTS' }),
    );
    expect(() => addMember(state, { id: 'bad id', address: 'x:1' })).toThrow(
      expect.objectContaining({ code: 'INVALID_MEMBER' }),
    );
    expect(() => createCluster(member('a'), 17, 'test')).toThrow(/partitionBits/);
    expect(() => createCluster(member('a'), 6, '')).toThrow(expect.objectContaining({ code: 'INVALID_CLUSTER' }));
  });

  it('lists declared zones and spreads partitions over them', () => {
    let state = createCluster(member('a', 'z1'), 6, 'test');
    for (const [id, zone] of [['b', 'z1'], ['c', 'z2'], ['d', 'z2'], ['e', 'z3'], ['f', 'z3']] as const) {
      state = settle(addMember(state, member(id, zone)));
    }
    expect(zonesOf(state).get('c')).toBe('z2');
    expect(isBalanced(state.ring.owners, validIds(state))).toBe(true);
  });
});

describe('bucket properties', () => {
  const state = createCluster(member('a'), 4, 'test');

  it('defaults to n=3 r=2 w=2 dw=0 siblings', () => {
    expect(bucketProps(state, 'users')).toEqual({ n: 3, r: 2, w: 2, dw: 0, mode: 'siblings' });
    expect(bucketProps(state, 'users')).toBe(DEFAULT_BUCKET_PROPS);
  });

  it('changes some properties, bumping the version only on a real change', () => {
    const s1 = setBucketProps(state, 'carts', { type: 'set', w: 3 });
    expect(s1.buckets.carts).toEqual({ props: { n: 3, r: 2, w: 3, dw: 0, mode: 'siblings', type: 'set' }, version: 1 });
    expect(setBucketProps(s1, 'carts', { w: 3 })).toBe(s1);
    const s2 = setBucketProps(s1, 'carts', { type: undefined, mode: 'lww' });
    expect(s2.buckets.carts).toEqual({ props: { n: 3, r: 2, w: 3, dw: 0, mode: 'lww' }, version: 2 });
    expect('type' in s2.buckets.carts!.props).toBe(false);
  });

  it('lists every bad field in a typed error', () => {
    const error = (() => {
      try {
        setBucketProps(state, 'b', { n: 2, r: 3, w: 0, dw: -1, mode: 'last' as 'lww', extra: 1 } as never);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(BucketPropsError);
    expect((error as BucketPropsError).code).toBe('INVALID_BUCKET_PROPS');
    expect((error as BucketPropsError).fields).toEqual(['r', 'w', 'dw', 'mode', 'extra']);
    expect(() => setBucketProps(state, 'b', { n: 17 })).toThrow(expect.objectContaining({ fields: ['n'] }));
    expect(() => setBucketProps(state, 'b', { n: 1.5 })).toThrow(expect.objectContaining({ fields: ['n'] }));
    expect(() => setBucketProps(state, 'b', { dw: 3 })).toThrow(expect.objectContaining({ fields: ['dw'] }));
    expect(() => setBucketProps(state, 'b', { n: 16, r: 16, w: 16, dw: 16 })).not.toThrow();
  });

  it("read_fanout: 'all' or 'quorum'; anything else is refused naming the field; null goes back to the default", () => {
    const q = setBucketProps(state, 'b', { read_fanout: 'quorum' });
    expect(bucketProps(q, 'b')).toEqual({ n: 3, r: 2, w: 2, dw: 0, mode: 'siblings', read_fanout: 'quorum' });
    expect(setBucketProps(q, 'b', { read_fanout: 'quorum' })).toBe(q);
    expect(bucketProps(setBucketProps(q, 'b', { read_fanout: 'all' }), 'b').read_fanout).toBe('all');
    const back = setBucketProps(q, 'b', { read_fanout: null } as never);
    expect(bucketProps(back, 'b')).toEqual({ ...DEFAULT_BUCKET_PROPS });
    expect(back.buckets.b!.version).toBe(2);
    for (const bad of ['QUORUM', 'one', 2, true, '', ['quorum']]) {
      expect(() => setBucketProps(state, 'b', { read_fanout: bad } as never)).toThrow(
        expect.objectContaining({ code: 'INVALID_BUCKET_PROPS', fields: ['read_fanout'], message: expect.stringMatching(/read_fanout must be 'all' or 'quorum'/) }),
      );
    }
    // A bucket without it keeps the digest it had (the canonical form appends read_fanout only when set).
    const plain = setBucketProps(state, 'b', { w: 3 });
    const same = setBucketProps(setBucketProps(plain, 'b', { read_fanout: 'quorum' }), 'b', { read_fanout: null } as never);
    expect(digest({ ...same, buckets: { b: { ...same.buckets.b!, version: 1 } } })).toBe(digest(plain));
  });

  it("finding 5: refuses {mode:'lww', type:'set'} (every set call would answer NOT_A_SET)", () => {
    expect(() => setBucketProps(state, 'b', { mode: 'lww', type: 'set' })).toThrow(expect.objectContaining({ code: 'INVALID_BUCKET_PROPS', fields: ['mode'] }));
    const set = setBucketProps(state, 'b', { type: 'set' });
    expect(() => setBucketProps(set, 'b', { mode: 'lww' })).toThrow(/cannot be 'lww' with type 'set'/);
    const lww = setBucketProps(state, 'b', { mode: 'lww' });
    expect(() => setBucketProps(lww, 'b', { type: 'set' })).toThrow(BucketPropsError);
    expect(setBucketProps(lww, 'b', { mode: 'siblings', type: 'set' }).buckets.b!.props.type).toBe('set');
  });

  it('finding 5: refuses a type change on a bucket that holds objects, both ways; {type:null} clears an empty one', () => {
    const full = { holdsObjects: true };
    const empty = { holdsObjects: false };
    expect(() => setBucketProps(state, 'cart', { type: 'set' }, full)).toThrow(
      expect.objectContaining({ code: 'INVALID_BUCKET_PROPS', fields: ['type'], message: expect.stringMatching(/holds plain objects/) }),
    );
    const set = setBucketProps(state, 'cart', { type: 'set' }, empty);
    expect(bucketProps(set, 'cart').type).toBe('set');
    expect(() => setBucketProps(set, 'cart', { type: null } as never, full)).toThrow(expect.objectContaining({ message: expect.stringMatching(/holds sets/) }));
    expect(() => setBucketProps(set, 'cart', { type: undefined }, full)).toThrow(BucketPropsError);
    // Other changes of a bucket with objects still go through.
    expect(setBucketProps(set, 'cart', { w: 3 }, full).buckets.cart!.props).toMatchObject({ type: 'set', w: 3 });
    // Going back is allowed while the bucket is empty.
    const back = setBucketProps(set, 'cart', { type: null } as never, empty);
    expect(bucketProps(back, 'cart')).toEqual({ ...DEFAULT_BUCKET_PROPS });
    expect('type' in back.buckets.cart!.props).toBe(false);
    expect(() => setBucketProps(state, 'cart', { type: 'map' } as never, empty)).toThrow(expect.objectContaining({ fields: ['type'] }));
  });

  it('rejects bad bucket names', () => {
    expect(() => setBucketProps(state, '', {})).toThrow(expect.objectContaining({ code: 'INVALID_BUCKET' }));
    expect(() => setBucketProps(state, 'a\0b', {})).toThrow(expect.objectContaining({ code: 'INVALID_BUCKET' }));
    expect(() => setBucketProps(state, 'é'.repeat(128), {})).toThrow(expect.objectContaining({ code: 'INVALID_BUCKET' }));
  });
});

describe('gossip helpers', () => {
  let state = createCluster(member('a'), 4, 'test');
  for (const id of ['b', 'c', 'd']) state = settle(addMember(state, member(id)));
  state = settle(markLeft(markLeaving(state, 'd'), 'c'));

  it('picks a random valid or leaving peer other than self', () => {
    const asked: number[] = [];
    const target = gossipTarget(state, 'a', (n) => (asked.push(n), n - 1));
    expect(asked).toEqual([1]); // b only: c and d left, a is self
    expect(target).toBe('b');
    expect(gossipTarget(createCluster(member('a'), 4, 'test'), 'a', () => 0)).toBeNull();
    expect(() => gossipTarget(state, 'a', (n) => n)).toThrow(/randomInt/);
  });

  it('digests equal states equally and different states differently', () => {
    const reordered: ClusterState = JSON.parse(JSON.stringify({ ...state, members: Object.fromEntries(Object.entries(state.members).reverse()) }));
    expect(digest(reordered)).toBe(digest(state));
    expect(digest(state)).toMatch(new RegExp(`^${state.ring.version}-[0-9a-z]+$`));
    expect(digest(setBucketProps(state, 'x', { r: 1 }))).not.toBe(digest(state));
    expect(digest(addMember(state, member('e')))).not.toBe(digest(state));
  });

  it('keeps the state plain JSON data', () => {
    expect(JSON.parse(JSON.stringify(state))).toEqual(state);
    expect(structuredClone(state)).toEqual(state);
    const hasUndefined = (v: unknown): boolean =>
      v === undefined || (typeof v === 'object' && v !== null && Object.values(v).some(hasUndefined));
    expect(hasUndefined(setBucketProps(state, 'x', { type: undefined }))).toBe(false);
  });

  it('refuses to merge different clusters', () => {
    expect(() => merge(state, createCluster(member('a'), 4, 'other'))).toThrow(
      expect.objectContaining({ code: 'CLUSTER_MISMATCH' }),
    );
    expect(() => merge(state, createCluster(member('a'), 5, 'test'))).toThrow(/bits/);
  });
});

describe('merge', () => {
  // Small pools make equal versions with different content common: the tie-break cases.
  const ids = ['a', 'b', 'c', 'd'];
  const memberArb = (id: string): fc.Arbitrary<Member> =>
    fc
      .record({
        address: fc.constantFrom('h1:1', 'h2:1'),
        zone: fc.option(fc.constantFrom('z1', 'z2'), { nil: undefined }),
        status: fc.constantFrom('valid', 'leaving', 'left'),
        version: fc.integer({ min: 1, max: 3 }),
      })
      .map(({ zone, ...rest }) => ({ id, ...rest, ...(zone === undefined ? {} : { zone }) }));
  const bucketArb: fc.Arbitrary<BucketEntry> = fc.record({
    props: fc.constantFrom(
      { n: 3, r: 2, w: 2, dw: 0, mode: 'siblings' as const },
      { n: 3, r: 1, w: 3, dw: 1, mode: 'siblings' as const },
      { n: 3, r: 2, w: 2, dw: 0, mode: 'lww' as const },
      { n: 3, r: 2, w: 2, dw: 0, mode: 'siblings' as const, type: 'set' as const },
    ),
    version: fc.integer({ min: 1, max: 3 }),
  });
  const stateArb: fc.Arbitrary<ClusterState> = fc
    .record({
      present: fc.subarray(ids, { minLength: 1 }),
      members: fc.tuple(...ids.map(memberArb)),
      buckets: fc.dictionary(fc.constantFrom('x', 'y', 'z'), bucketArb),
      ringVersion: fc.integer({ min: 1, max: 3 }),
      claimant: fc.constantFrom(...ids),
      picks: fc.array(fc.nat(), { minLength: 4, maxLength: 4 }),
    })
    .map(({ present, members, buckets, ringVersion, claimant, picks }) => ({
      clusterName: 'prop',
      partitionBits: 2,
      members: Object.fromEntries(members.filter((m) => present.includes(m.id)).map((m) => [m.id, m])),
      ring: { partitionBits: 2, owners: picks.map((p) => present[p % present.length]!), version: ringVersion, claimant },
      buckets,
    }));

  it('is commutative', () => {
    fc.assert(
      fc.property(stateArb, stateArb, (a, b) => {
        const ab = merge(a, b);
        expect(ab).toEqual(merge(b, a));
        expect(digest(ab)).toBe(digest(merge(b, a)));
      }),
      { numRuns: 500 },
    );
  });

  it('is associative', () => {
    fc.assert(
      fc.property(stateArb, stateArb, stateArb, (a, b, c) => {
        expect(merge(merge(a, b), c)).toEqual(merge(a, merge(b, c)));
      }),
      { numRuns: 500 },
    );
  });

  it('is idempotent', () => {
    fc.assert(
      fc.property(stateArb, stateArb, (a, b) => {
        expect(merge(a, a)).toEqual(a);
        const ab = merge(a, b);
        expect(merge(ab, b)).toEqual(ab);
        expect(merge(ab, a)).toEqual(ab);
      }),
      { numRuns: 500 },
    );
  });

  it('keeps the higher version of each entry and the higher (version, claimant) ring', () => {
    fc.assert(
      fc.property(stateArb, stateArb, (a, b) => {
        const ab = merge(a, b);
        for (const [id, m] of Object.entries(ab.members)) {
          expect(m.version).toBe(Math.max(a.members[id]?.version ?? 0, b.members[id]?.version ?? 0));
        }
        for (const [name, entry] of Object.entries(ab.buckets)) {
          expect(entry.version).toBe(Math.max(a.buckets[name]?.version ?? 0, b.buckets[name]?.version ?? 0));
        }
        const aWins =
          a.ring.version > b.ring.version || (a.ring.version === b.ring.version && a.ring.claimant >= b.ring.claimant);
        const winner = aWins ? a : b;
        expect([ab.ring.version, ab.ring.claimant]).toEqual([winner.ring.version, winner.ring.claimant]);
      }),
      { numRuns: 300 },
    );
  });
});
