// The OR-set (src/core/orset.ts): lattice laws, a reference model of
// observed-remove semantics over random replica histories, and the codec.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as orset from '../../src/core/orset.js';
import { OrSetError, type OrSet } from '../../src/core/orset.js';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');
const names = (s: OrSet): string[] => orset.elements(s).map((e) => e.toString('utf8'));
const dotStr = (d: orset.Dot): string => `${d.actor}/${d.counter}`;

// ---- random replica histories --------------------------------------------------

type Event = { kind: 'add' | 'remove'; at: number; element: number } | { kind: 'sync'; from: number; to: number };

const ELEMENTS = [b('x'), b('y'), b('z'), Buffer.from([0, 255, 10]), Buffer.alloc(0)];
const ACTORS = ['n1:00000001', 'n2:00000002', 'n3:00000003', 'n4:0000000a'];

const eventArb: fc.Arbitrary<Event> = fc.oneof(
  fc.record({ kind: fc.constantFrom('add' as const, 'remove' as const), at: fc.nat(ACTORS.length - 1), element: fc.nat(ELEMENTS.length - 1) }),
  fc.record({ kind: fc.constant('sync' as const), from: fc.nat(ACTORS.length - 1), to: fc.nat(ACTORS.length - 1) }),
);
const historyArb = fc.array(eventArb, { maxLength: 60 });

interface Run {
  replicas: OrSet[];
  /** Every add dot made, with its element. */
  adds: Array<{ dot: string; element: number }>;
  /** Dots an add or remove of their element saw in its replica's state (and so replaced or removed). */
  killed: Set<string>;
}

/** Replays a history: replica i writes as actor i (so dots are unique, as src/node/sets.ts guarantees). */
function replay(history: Event[]): Run {
  const replicas = ACTORS.map(() => orset.empty());
  const adds: Run['adds'] = [];
  const killed = new Set<string>();
  for (const e of history) {
    if (e.kind === 'sync') {
      replicas[e.to] = orset.merge(replicas[e.to]!, replicas[e.from]!);
      continue;
    }
    const element = ELEMENTS[e.element]!;
    const before = replicas[e.at]!;
    for (const d of orset.dotsOf(before, element)) killed.add(dotStr(d));
    if (e.kind === 'add') {
      const after = orset.add(before, ACTORS[e.at]!, element);
      const [dot] = orset.dotsOf(after, element);
      adds.push({ dot: dotStr(dot!), element: e.element });
      replicas[e.at] = after;
    } else {
      replicas[e.at] = orset.remove(before, element);
    }
  }
  return { replicas, adds, killed };
}

const stateArb: fc.Arbitrary<OrSet> = fc.tuple(historyArb, fc.nat(ACTORS.length - 1)).map(([h, i]) => replay(h).replicas[i]!);
/** Several replicas of one history: states that share causal history, as real replicas do. */
const replicasArb: fc.Arbitrary<OrSet[]> = historyArb.map((h) => replay(h).replicas);

const same = (x: OrSet, y: OrSet): void => expect(orset.encode(x).toString('hex')).toBe(orset.encode(y).toString('hex'));

describe('OR-set merge', () => {
  it('is commutative, associative and idempotent (replicas of one history)', () => {
    fc.assert(
      fc.property(replicasArb, fc.nat(3), fc.nat(3), fc.nat(3), (rs, i, j, k) => {
        const [x, y, z] = [rs[i]!, rs[j]!, rs[k]!];
        same(orset.merge(x, y), orset.merge(y, x));
        same(orset.merge(orset.merge(x, y), z), orset.merge(x, orset.merge(y, z)));
        same(orset.merge(x, x), x);
        same(orset.merge(x, orset.empty()), x);
      }),
      { numRuns: 500 },
    );
  });

  it('obeys the laws on unrelated states too (any valid states)', () => {
    fc.assert(
      fc.property(stateArb, stateArb, stateArb, (x, y, z) => {
        same(orset.merge(x, y), orset.merge(y, x));
        same(orset.merge(orset.merge(x, y), z), orset.merge(x, orset.merge(y, z)));
        same(orset.merge(x, x), x);
      }),
      { numRuns: 300 },
    );
  });

  it('matches the observed-remove model: exactly the adds no later add or remove of the element saw survive', () => {
    fc.assert(
      fc.property(historyArb, (history) => {
        const { replicas, adds, killed } = replay(history);
        const all = replicas.reduce(orset.merge, orset.empty());
        for (const [i, element] of ELEMENTS.entries()) {
          const expected = adds.filter((a) => a.element === i && !killed.has(a.dot)).map((a) => a.dot).sort();
          expect(orset.dotsOf(all, element).map(dotStr).sort()).toEqual(expected);
        }
        // Merge order does not matter.
        same([...replicas].reverse().reduce(orset.merge, orset.empty()), all);
      }),
      { numRuns: 500 },
    );
  });
});

describe('OR-set semantics', () => {
  const A = 'a:1';
  const B = 'b:1';

  it('adds, removes and lists elements in byte order', () => {
    let s = orset.add(orset.add(orset.add(orset.empty(), A, b('pear')), A, b('apple')), A, Buffer.from([0xff]));
    expect(orset.elements(s).map((e) => e.toString('hex'))).toEqual([b('apple').toString('hex'), b('pear').toString('hex'), 'ff']);
    s = orset.remove(s, b('pear'));
    expect(names(s)).toEqual(['apple', '\ufffd']);
    expect(orset.has(s, b('apple'))).toBe(true);
    expect(orset.size(s)).toBe(2);
    expect(s.clock.get(A)).toBe(3);
  });

  it('treats a remove of an absent element as a no-op', () => {
    const s = orset.add(orset.empty(), A, b('x'));
    expect(orset.remove(s, b('nope'))).toBe(s);
    expect(orset.remove(orset.empty(), b('x'))).toBe(orset.empty());
  });

  it('lets a concurrent add win over a remove', () => {
    const base = orset.add(orset.empty(), A, b('x'));
    const removed = orset.remove(base, b('x')); // at A
    const readded = orset.add(base, B, b('x')); // at B, concurrently
    expect(names(orset.merge(removed, readded))).toEqual(['x']);
    expect(names(orset.merge(readded, removed))).toEqual(['x']);
  });

  it('does not resurrect a removed element from a stale replica (the Dynamo cart bug)', () => {
    const cart = orset.add(orset.add(orset.empty(), A, b('milk')), A, b('eggs'));
    const stale = cart; // a replica that missed the remove
    const now = orset.remove(cart, b('eggs'));
    expect(names(orset.merge(now, stale))).toEqual(['milk']);
    // ... even when the stale side added something meanwhile.
    const staleAndMore = orset.add(stale, B, b('bread'));
    expect(names(orset.merge(now, staleAndMore))).toEqual(['bread', 'milk']);
  });

  it('removes with an observed context only what that context saw', () => {
    const seen = orset.add(orset.empty(), A, b('x'));
    const context = orset.decodeContext(orset.encodeContext(seen.clock));
    const current = orset.merge(seen, orset.add(orset.empty(), B, b('x'))); // B's add, unseen by the client
    const after = orset.remove(current, b('x'), context);
    expect(orset.dotsOf(after, b('x'))).toEqual([{ actor: B, counter: 1 }]);
    // A context that saw everything removes everything.
    expect(orset.has(orset.remove(current, b('x'), current.clock), b('x'))).toBe(false);
  });

  it('re-adding replaces an element’s dots with one new dot', () => {
    const s = orset.merge(orset.add(orset.empty(), A, b('x')), orset.add(orset.empty(), B, b('x')));
    expect(orset.dotsOf(s, b('x'))).toHaveLength(2);
    const again = orset.add(s, A, b('x'));
    expect(orset.dotsOf(again, b('x'))).toEqual([{ actor: A, counter: 2 }]);
  });

  it('refuses bad actors and oversize elements', () => {
    expect(() => orset.add(orset.empty(), '', b('x'))).toThrow(OrSetError);
    expect(() => orset.add(orset.empty(), 'has space', b('x'))).toThrow(OrSetError);
    expect(() => orset.add(orset.empty(), 'x'.repeat(256), b('x'))).toThrow(OrSetError);
    expect(() => orset.add(orset.empty(), A, Buffer.alloc(orset.MAX_ELEMENT_BYTES + 1))).toThrow(/longer/);
    const huge: OrSet = { clock: new Map([[A, orset.MAX_SAFE]]), entries: new Map() };
    expect(() => orset.add(huge, A, b('x'))).toThrow(/2\^53-1/);
  });

  it('never mutates its inputs', () => {
    const s = orset.add(orset.empty(), A, b('x'));
    const bytes = orset.encode(s);
    orset.add(s, A, b('y'));
    orset.remove(s, b('x'));
    orset.merge(s, orset.add(orset.empty(), B, b('z')));
    expect(orset.encode(s)).toEqual(bytes);
    expect(orset.size(orset.empty())).toBe(0);
  });
});

describe('OR-set encoding', () => {
  it('round-trips every state and is canonical', () => {
    fc.assert(
      fc.property(stateArb, (s) => {
        const bytes = orset.encode(s);
        const back = orset.decode(bytes);
        expect(orset.encode(back)).toEqual(bytes);
        expect(orset.equals(back, s)).toBe(true);
        expect(orset.decodeContext(orset.encodeContext(s.clock))).toEqual(new Map([...s.clock].sort()));
      }),
      { numRuns: 300 },
    );
  });

  it('decodes arbitrary bytes to a canonical state or throws BAD_SET', () => {
    const valid = stateArb.map((s) => orset.encode(s));
    // Valid encodings with random damage, and plain noise.
    const damaged = fc.tuple(valid, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat(3)).map(([bytes, at, v, how]) => {
      const out = Buffer.from(bytes);
      const i = bytes.length === 0 ? 0 : at % bytes.length;
      if (how === 0) out[i] = v;
      if (how === 1) return out.subarray(0, i);
      if (how === 2) return Buffer.concat([out, Buffer.from([v])]);
      return out;
    });
    fc.assert(
      fc.property(fc.oneof(damaged, fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u))), (bytes) => {
        let decoded: OrSet;
        try {
          decoded = orset.decode(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(OrSetError);
          expect((err as OrSetError).code).toBe('BAD_SET');
          return;
        }
        expect(orset.encode(decoded).toString('hex')).toBe(bytes.toString('hex'));
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses the specific invariants it checks', () => {
    const good = orset.encode(orset.add(orset.add(orset.empty(), 'a:1', b('x')), 'b:1', b('y')));
    const bad = (mutate: (buf: Buffer) => Buffer, why: RegExp): void => {
      expect(() => orset.decode(mutate(Buffer.from(good)))).toThrow(why);
    };
    bad((x) => x.subarray(0, x.length - 1), /truncated/);
    bad((x) => Buffer.concat([x, Buffer.from([0])]), /trailing/);
    bad((x) => ((x[0] = 0x43), x), /not a set/);
    bad((x) => ((x[1] = 2), x), /version/);
    // Layout: 2 header, u16 2 actors, [u8 3 'a:1' u64 1] [u8 3 'b:1' u64 1] ...
    bad((x) => (x.write('b', 5, 'latin1'), x), /actors not strictly ascending/);
    bad((x) => (x.writeBigUInt64BE(0n, 8), x), /counter outside/);
    bad((x) => (x.write(' ', 5, 'latin1'), x), /printable/);
    // Element 'x' dot counter -> 2 (> clock 1).
    const dotAt = 2 + 2 + 12 + 12 + 4 + 2 + 1 + 2 + 2;
    bad((x) => (x.writeBigUInt64BE(2n, dotAt), x), /not covered/);
    bad((x) => (x.writeUInt16BE(7, dotAt - 2), x), /unknown actor/);
    expect(() => orset.decode('nope' as unknown as Uint8Array)).toThrow(OrSetError);
    expect(() => orset.decodeContext(good)).toThrow(/not a set encoding/);
    try {
      orset.decodeContext(Buffer.from([0x43, 1, 0]));
      expect.unreachable();
    } catch (err) {
      expect((err as OrSetError).code).toBe('BAD_CONTEXT');
    }
    expect(orset.decodeContext(Buffer.from([0x43, 1, 0, 0])).size).toBe(0);
  });
});
