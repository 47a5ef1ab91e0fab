// The client's routing order with a draining member (src/client/routing.ts):
// the ring document's `draining` flag puts that node after every other node
// that is not down, and before those that are; the order within each group
// stays the preference order. Pure: a ring document built in the test.
import { describe, expect, it } from 'vitest';
import { keyPreference, parseRingDocument, routeTargets } from '../../src/client/routing.js';
import { claim } from '../../src/core/claim.js';

const owners = claim(null, [{ id: 'a' }, { id: 'b' }, { id: 'c' }, { id: 'd' }], 6);
const doc = (draining: string[]) => ({
  partitionBits: 6,
  version: 3,
  claimant: 'a',
  owners,
  joined: true,
  members: ['a', 'b', 'c', 'd'].map((id, i) => ({ id, address: `127.0.0.1:${7000 + i}`, zone: null, status: 'valid', ...(draining.includes(id) ? { draining: true } : {}) })),
  buckets: {},
  defaultN: 3,
});
const url = (id: string) => `http://127.0.0.1:${7000 + ['a', 'b', 'c', 'd'].indexOf(id)}`;

describe('routing around a draining node', () => {
  it('tries a draining node only after the others, and before nodes that are down', () => {
    for (let k = 0; k < 50; k++) {
      const key = `key-${k}`;
      const plain = parseRingDocument(doc([]));
      const pl = keyPreference(plain, Buffer.from('b'), Buffer.from(key))!;
      const first = pl.primaries[0]!;
      const base = routeTargets(plain, pl, 'write', 0, () => false);
      expect(base[0]).toBe(url(first));

      const drained = parseRingDocument(doc([first]));
      const order = routeTargets(drained, keyPreference(drained, Buffer.from('b'), Buffer.from(key))!, 'write', 0, () => false);
      expect(order).toEqual([...base.filter((u) => u !== url(first)), url(first)]);

      // A node that is down goes after the draining one.
      const other = pl.primaries[1]!;
      const withDown = routeTargets(drained, pl, 'write', 0, (u) => u === url(other));
      expect(withDown.slice(-2)).toEqual([url(first), url(other)]);
    }
  });
});
