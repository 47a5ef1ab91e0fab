import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { claim } from '../../src/core/claim.js';
import { addMember, createCluster, digest } from '../../src/core/membership.js';
import { packOwners, packState, unpackOwners, unpackState } from '../../src/core/state-wire.js';
import { packValue, unpackValue } from '../../src/transport/frames.js';

describe('gossip state wire form', () => {
  it('round-trips any owner table, 1 byte per partition up to 256 owners, 2 past', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.array(fc.nat(), { minLength: 1, maxLength: 2048 }), (nodes, picks) => {
        const owners = picks.map((x) => `node-${x % nodes}`);
        const packed = packOwners(owners);
        expect(packed.at.length).toBe(owners.length * (packed.ids.length <= 256 ? 1 : 2));
        expect(unpackOwners(unpackValue(packValue(packed)))).toEqual(owners);
      }),
      { numRuns: 100 },
    );
  });

  it('carries a 30-node Q = 4096 state in a ninth of the plain form, and the same state comes out', () => {
    let state = createCluster({ id: 'node-00', address: '10.0.0.0:8087' }, 12, 'ringkv');
    for (let i = 1; i < 30; i++) state = addMember(state, { id: `node-${String(i).padStart(2, '0')}`, address: `10.0.0.${i}:8087` });
    const members = Object.keys(state.members).map((id) => ({ id }));
    state = { ...state, ring: { ...state.ring, owners: claim(state.ring, members, 12), version: 2 } };
    const plain = packValue({ state }).length;
    const packed = packValue({ state: packState(state) });
    expect(packed.length).toBeLessThan(plain / 5);
    const back = unpackState((unpackValue(packed) as { state: unknown }).state);
    expect(back).toEqual(state);
    expect(digest(back)).toBe(digest(state));
    // The plain form is still understood.
    expect(unpackState(unpackValue(packValue(state)))).toEqual(state);
  });

  it('rejects malformed packed owners with a clear error', () => {
    expect(() => unpackOwners({ ids: [], at: new Uint8Array(4) })).toThrow(/ids must be/);
    expect(() => unpackOwners({ ids: ['a'], at: [0, 0] })).toThrow(/at must be bytes/);
    expect(() => unpackOwners({ ids: ['a', 'b'], at: new Uint8Array([0, 2]) })).toThrow(/partition 1 names owner 2 of 2/);
    expect(() => unpackState(null)).toThrow(/must be an object/);
    expect(() => unpackState({ ring: { packedOwners: { ids: ['a'], at: 'x' } } })).toThrow(/at must be bytes/);
  });
});
