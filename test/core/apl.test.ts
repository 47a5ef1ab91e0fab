// apl: who a read asks, where a write's copies go, the forward order.
import { describe, expect, it } from 'vitest';
import { type Health, MAX_WRITE_FORWARDS, coordinatingList, fallbackCoordination, forwardOrder, forwardedWriteStep, readPlan, substitutes, writePlan } from '../../src/core/apl.js';

const PL = { primaries: ['a', 'b', 'c'], fallbacks: ['d', 'e', 'f'] };

function health(suspected: string[], left: string[] = []): Health {
  return { isSuspect: (n) => suspected.includes(n), isMember: (n) => !left.includes(n) && n !== 'ghost' };
}

describe('substitutes', () => {
  it('keeps members not left, healthy first, each group in preference order', () => {
    expect(substitutes({ primaries: PL.primaries, fallbacks: ['d', 'ghost', 'e', 'f', 'g'] }, health(['d', 'g'], ['f']))).toEqual({ healthy: ['e'], suspected: ['d', 'g'] });
  });
});

describe('readPlan', () => {
  const rows: Array<[string, string[], string, boolean, { replicas: string[]; substitutes: string[]; awaited: string | undefined }]> = [
    ['all healthy: the primaries; a primary coordinator awaits itself', [], 'a', true, { replicas: ['a', 'b', 'c'], substitutes: [], awaited: 'a' }],
    ['a suspected primary is replaced by the first healthy fallback', ['b'], 'a', true, { replicas: ['a', 'd', 'c'], substitutes: ['d'], awaited: 'a' }],
    ['suspected fallbacks are skipped', ['b', 'd'], 'a', true, { replicas: ['a', 'e', 'c'], substitutes: ['e'], awaited: 'a' }],
    ['no healthy fallback left: the suspected primary is asked anyway', ['a', 'b', 'c', 'd', 'e'], 'x', false, { replicas: ['f', 'b', 'c'], substitutes: ['f'], awaited: undefined }],
    ['a non-primary awaits the first healthy primary it would forward to', ['a'], 'x', false, { replicas: ['d', 'b', 'c'], substitutes: ['d'], awaited: 'b' }],
    ['a non-primary that is itself a substitute', ['a'], 'd', false, { replicas: ['d', 'b', 'c'], substitutes: ['d'], awaited: 'b' }],
  ];
  it.each(rows)('%s', (_name, suspected, self, coordinates, expected) => {
    const plan = readPlan(PL, health(suspected), self, coordinates);
    // Fan-out all (also when asked for explicitly): every replica at once, in slot order.
    for (const p of [plan, readPlan(PL, health(suspected), self, coordinates, { fanout: 'all', r: 2, pr: 0 })]) {
      expect({ ...p, substitutes: [...p.substitutes] }).toEqual({ ...expected, ask: 3 });
    }
  });

  // Fan-out quorum: the ask order and how many are asked at once.
  const quorumRows: Array<[string, string[], string, boolean, number, number, { replicas: string[]; ask: number; awaited: string | undefined }]> = [
    ['a primary coordinator: itself first, then the preference order; R of them', [], 'b', true, 2, 0, { replicas: ['b', 'a', 'c'], ask: 2, awaited: 'b' }],
    ['r = 1: only itself', [], 'c', true, 1, 0, { replicas: ['c', 'a', 'b'], ask: 1, awaited: 'c' }],
    ['r = n: all of them', [], 'a', true, 3, 0, { replicas: ['a', 'b', 'c'], ask: 3, awaited: 'a' }],
    ['a non-primary: the awaited primary first, then the others', ['a'], 'x', false, 2, 0, { replicas: ['b', 'c', 'd'], ask: 2, awaited: 'b' }],
    ['a substitute after the healthy primaries', ['b'], 'c', true, 2, 0, { replicas: ['c', 'a', 'd'], ask: 2, awaited: 'c' }],
    ['a suspected primary without a fallback last', ['a', 'b', 'c', 'd', 'e'], 'x', false, 2, 0, { replicas: ['f', 'b', 'c'], ask: 2, awaited: undefined }],
    ['pr beyond the first R: asks on to the next primary', ['a'], 'd', false, 1, 2, { replicas: ['d', 'b', 'c'], ask: 3, awaited: 'b' }],
    ['awaited beyond the first R: asks on to it (a leaving primary forwards its writes)', [], 'a', false, 1, 0, { replicas: ['a', 'b', 'c'], ask: 2, awaited: 'b' }],
    ['a coordinator that is a substitute itself asks itself first', ['a'], 'd', false, 2, 0, { replicas: ['d', 'b', 'c'], ask: 2, awaited: 'b' }],
  ];
  it.each(quorumRows)('fan-out quorum: %s', (_name, suspected, self, coordinates, r, pr, expected) => {
    const plan = readPlan(PL, health(suspected), self, coordinates, { fanout: 'quorum', r, pr });
    expect({ replicas: plan.replicas, ask: plan.ask, awaited: plan.awaited }).toEqual(expected);
    // The same replicas as fan-out all, in another order.
    expect([...plan.replicas].sort()).toEqual([...readPlan(PL, health(suspected), self, coordinates).replicas].sort());
  });

  it('a leaving primary (not coordinating) awaits the first other healthy primary', () => {
    expect(readPlan(PL, health([]), 'a', false).awaited).toBe('b');
  });
});

describe('writePlan', () => {
  const rows: Array<[string, string[], string, string | null, { targets: Array<{ node: string; hintFor: string | null }>; retries: string[] }]> = [
    ['all healthy: the other primaries, no hints', [], 'a', null, { targets: [{ node: 'b', hintFor: null }, { node: 'c', hintFor: null }], retries: ['d', 'e', 'f'] }],
    ['a suspected primary: a healthy fallback holds its copy as a hint', ['c'], 'a', null, { targets: [{ node: 'b', hintFor: null }, { node: 'd', hintFor: 'c' }], retries: ['e', 'f'] }],
    ['no healthy fallback: the suspected primary itself; suspected fallbacks are retries', ['c', 'd', 'e', 'f'], 'a', null, { targets: [{ node: 'b', hintFor: null }, { node: 'c', hintFor: null }], retries: ['d', 'e', 'f'] }],
    ['a fallback coordinator: never a copy to itself, none to the primary it holds for', ['a'], 'd', 'a', { targets: [{ node: 'b', hintFor: null }, { node: 'c', hintFor: null }], retries: ['e', 'f'] }],
  ];
  it.each(rows)('%s', (_name, suspected, self, heldFor, expected) => {
    expect(writePlan(PL, health(suspected), self, heldFor)).toEqual(expected);
  });
});

describe('forwardOrder', () => {
  it.each([
    ['may fall back: healthy primaries only', ['b'], true, ['a', 'c']],
    ['with pw: suspected primaries last', ['a'], false, ['b', 'c', 'a']],
    ['may fall back, all suspected: none', ['a', 'b', 'c'], true, []],
  ] as Array<[string, string[], boolean, string[]]>)('%s', (_name, suspected, canFallBack, expected) => {
    expect(forwardOrder(PL, health(suspected), 'x', canFallBack)).toEqual(expected);
  });
});

describe('fallbackCoordination', () => {
  it('holds for the first primary that is not itself; reaches healthy members of the list but itself', () => {
    expect(fallbackCoordination(PL, health(['a', 'e'], ['f']), 'd')).toEqual({ heldFor: 'a', reachable: ['b', 'c'] });
    expect(fallbackCoordination(PL, health([]), 'a')).toEqual({ heldFor: 'b', reachable: ['b', 'c', 'd', 'e', 'f'] });
    expect(fallbackCoordination({ primaries: ['a'], fallbacks: [] }, health([]), 'a').heldFor).toBeUndefined();
  });
});

describe('coordinatingList', () => {
  it('a primary keeps its list; another node takes the first slot and the last primary becomes a fallback', () => {
    expect(coordinatingList(PL, 'b', 3)).toBe(PL);
    expect(coordinatingList(PL, 'e', 3)).toEqual({ primaries: ['e', 'a', 'b'], fallbacks: ['d', 'f', 'c'] });
  });
});

describe('forwardedWriteStep', () => {
  it.each([
    // [what, list, self, times handed on, step]
    ['a primary by its ring coordinates', PL, 'b', 1, 'coordinate'],
    ['a primary coordinates a write handed on twice too', PL, 'c', 2, 'coordinate'],
    ['no primary by its ring (the forwarder\'s ring differs): on to its primaries', PL, 'e', 1, 'forward'],
    ['n = 1, the node is not the key\'s one primary: on to it', { primaries: ['a'], fallbacks: ['b', 'c'] }, 'b', 1, 'forward'],
    ['handed on MAX_WRITE_FORWARDS times already: coordinates whatever its ring says', PL, 'e', MAX_WRITE_FORWARDS, 'coordinate'],
  ] as const)('%s', (_what, pl, self, forwards, step) => {
    expect(forwardedWriteStep(pl, self, forwards)).toBe(step);
  });
  it('refuses a count below one (every forwarded write was handed on at least once)', () => {
    expect(() => forwardedWriteStep(PL, 'a', 0)).toThrow(/handed on 0 times/);
  });
});
