// apl: who a read asks, where a write's copies go, the forward order.
import { describe, expect, it } from 'vitest';
import { type Health, coordinatingList, fallbackCoordination, forwardOrder, readPlan, substitutes, writePlan } from '../../src/core/apl.js';

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
    expect({ ...plan, substitutes: [...plan.substitutes] }).toEqual(expected);
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
