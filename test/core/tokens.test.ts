// Client tokens as cluster metadata: issue, check, revoke, and the merge
// that gossip runs on them: a join-semilattice where a revocation, once seen,
// stays (no stale state brings a revoked id back).
import { timingSafeEqual } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ClusterState, createCluster, digest, merge } from '../../src/core/membership.js';
import { StateWireError, packState, unpackState } from '../../src/core/state-wire.js';
import {
  type TokenEntry,
  type TokenTable,
  TokenError,
  findToken,
  issueToken,
  mergeTokens,
  revokeToken,
  tokenHash,
  tokenTableProblem,
} from '../../src/core/tokens.js';
import { Rand } from '../helpers/random.js';

const equalHashes = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
const find = (table: TokenTable, token: string) => findToken(table, token, tokenHash, equalHashes);
const secret = (seed: number) => new Rand(seed).bytes(32);

describe('issuing and checking tokens', () => {
  it('issues rkv_ tokens of 256 random bits, stores only their hash, and finds the grant by the token', () => {
    const { table, token, id } = issueToken({}, { role: 'write', bucket: 'cart', label: 'ci' }, secret(1), 1_000);
    expect(token).toMatch(/^rkv_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token.slice(4), 'base64url')).toEqual(secret(1));
    expect(id).toBe(tokenHash(token).slice(0, 16));
    expect(table[id]).toEqual({ hash: tokenHash(token), role: 'write', bucket: 'cart', label: 'ci', createdAtMs: 1_000 });
    // Neither the token nor its random part is in the table.
    const stored = JSON.stringify(table);
    expect(stored).not.toContain(token.slice(4));
    expect(stored).not.toContain(Buffer.from(secret(1)).toString('hex'));
    expect(find(table, token)).toMatchObject({ id, role: 'write', bucket: 'cart' });
  });

  it('finds nothing for another token, a changed token, a non-token or a revoked token', () => {
    const { table, token, id } = issueToken({}, { role: 'admin' }, secret(2), 5);
    const other = issueToken({}, { role: 'admin' }, secret(3), 5).token;
    expect(find(table, other)).toBeNull();
    const changed = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    expect(find(table, changed)).toBeNull();
    for (const junk of ['', 'rkv_', `Bearer ${token}`, token + 'x', 'x'.repeat(47), '__proto__', 'constructor']) expect(find(table, junk)).toBeNull();
    const revoked = revokeToken(table, id, 9);
    expect(revoked[id]!.revokedAtMs).toBe(9);
    expect(find(revoked, token)).toBeNull();
    // Revoking again changes nothing (the first time stands); an unknown id is refused.
    expect(revokeToken(revoked, id, 20)).toBe(revoked);
    expect(() => revokeToken(revoked, '0123456789abcdef', 20)).toThrow(TokenError);
    for (const id of ['__proto__', 'constructor', 'toString', '']) expect(() => revokeToken(revoked, id, 20), id).toThrow(TokenError);
  });

  it('takes no entry from a table\'s prototype (a decoded table from a peer)', () => {
    const { table, id } = issueToken({}, { role: 'read' }, secret(6), 5);
    const forged = Object.create({ [id]: { ...table[id]!, role: 'admin', createdAtMs: 9 } }) as TokenTable;
    expect(mergeTokens(table, forged)).toEqual(table);
    expect(mergeTokens(forged, table)).toEqual(table);
    expect(mergeTokens({}, forged)).toEqual({});
  });

  it('refuses grants a token may not carry', () => {
    const bad = [
      { role: 'root' },
      { role: 'admin', bucket: 'cart' },
      { role: 'metrics', bucket: 'cart' },
      { role: 'read', bucket: '' },
      { role: 'read', bucket: 'a\0b' },
      { role: 'read', bucket: 'x'.repeat(256) },
      { role: 'read', label: 'x'.repeat(129) },
      { role: 'read', label: 'line\nbreak' },
    ];
    for (const grant of bad) {
      expect(() => issueToken({}, grant as never, secret(4), 1), JSON.stringify(grant)).toThrow(TokenError);
    }
  });
});

describe('token tables from the network', () => {
  const good = issueToken({}, { role: 'read' }, secret(5), 1);
  const entry = good.table[good.id]!;

  it('accepts well-formed tables and refuses every malformed entry', () => {
    expect(tokenTableProblem(undefined)).toBeNull();
    expect(tokenTableProblem(good.table)).toBeNull();
    const cases: unknown[] = [
      null,
      [],
      'tokens',
      { [good.id]: null },
      { [good.id]: { ...entry, role: 'root' } },
      { [good.id]: { ...entry, hash: 'ab'.repeat(32) } }, // id is not the start of its hash
      { ['X'.repeat(16)]: entry },
      { [good.id]: { ...entry, hash: entry.hash.toUpperCase() } },
      { [good.id]: { ...entry, createdAtMs: -1 } },
      { [good.id]: { ...entry, revokedAtMs: 'soon' } },
      { [good.id]: { ...entry, bucket: 7 } },
      { [good.id]: { ...entry, role: 'admin', bucket: 'b' } },
      { [good.id]: { ...entry, extra: true } },
    ];
    for (const table of cases) expect(tokenTableProblem(table), JSON.stringify(table)).not.toBeNull();
  });

  it('refuses gossip whose token table is malformed, as the sender\'s error', () => {
    const state = { ...createCluster({ id: 'a', address: 'a:1' }, 2, 'c'), tokens: { [good.id]: { ...entry, role: 'root' } } };
    expect(() => unpackState(packState(state as ClusterState))).toThrow(StateWireError);
    expect(unpackState(packState({ ...state, tokens: good.table })).tokens).toEqual(good.table);
  });

  it('changes the state digest when only the tokens differ (gossip would otherwise skip the exchange)', () => {
    const base = createCluster({ id: 'a', address: 'a:1' }, 2, 'c');
    const withToken = { ...base, tokens: good.table };
    const revoked = { ...base, tokens: revokeToken(good.table, good.id, 2) };
    expect(new Set([digest(base), digest(withToken), digest(revoked)]).size).toBe(3);
    // A state written before tokens existed digests like one with an empty table.
    const { tokens: _none, ...old } = base;
    expect(digest(old as ClusterState)).toBe(digest(base));
  });
});

describe('merging token tables', () => {
  // A small pool of ids, each with a few grant variants sharing the id's hash:
  // equal ids with different grants (the tie-break) are common.
  const pool = [11, 12, 13].map((seed) => issueToken({}, { role: 'read' }, secret(seed), 1));
  const entryArb: fc.Arbitrary<[string, TokenEntry]> = fc
    .record({
      which: fc.nat({ max: pool.length - 1 }),
      role: fc.constantFrom('metrics', 'read', 'write', 'admin' as const),
      bucket: fc.option(fc.constantFrom('x', 'y'), { nil: undefined }),
      createdAtMs: fc.integer({ min: 1, max: 3 }),
      revokedAtMs: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
    })
    .map(({ which, role, bucket, createdAtMs, revokedAtMs }) => {
      const { id, table } = pool[which]!;
      const scoped = bucket !== undefined && (role === 'read' || role === 'write');
      return [
        id,
        {
          hash: table[id]!.hash,
          role,
          ...(scoped ? { bucket } : {}),
          createdAtMs,
          ...(revokedAtMs !== undefined ? { revokedAtMs } : {}),
        },
      ];
    });
  const tableArb: fc.Arbitrary<TokenTable> = fc.array(entryArb, { maxLength: 4 }).map((entries) => Object.fromEntries(entries));

  it('is commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(tableArb, tableArb, tableArb, (a, b, c) => {
        expect(mergeTokens(a, b)).toEqual(mergeTokens(b, a));
        expect(mergeTokens(mergeTokens(a, b), c)).toEqual(mergeTokens(a, mergeTokens(b, c)));
        expect(mergeTokens(a, a)).toEqual(mergeTokens(a, {}));
        const ab = mergeTokens(a, b);
        expect(mergeTokens(ab, b)).toEqual(ab);
        expect(tokenTableProblem(ab)).toBeNull();
      }),
      { numRuns: 1_000 },
    );
  });

  it('keeps a revocation through any merges with stale tables, at the latest revocation time', () => {
    fc.assert(
      fc.property(tableArb, fc.array(tableArb, { maxLength: 6 }), fc.nat(), (start, stale, pick) => {
        const ids = Object.keys(start);
        fc.pre(ids.length > 0);
        const id = ids[pick % ids.length]!;
        let table = revokeToken(start, id, 2);
        for (const other of stale) {
          // Either side of the merge: the order must not matter.
          table = pick % 2 === 0 ? mergeTokens(table, other) : mergeTokens(other, table);
          expect(table[id]!.revokedAtMs).toBeDefined();
        }
        const revocations = [table[id]!.revokedAtMs, ...stale.map((t) => t[id]?.revokedAtMs)].filter((v) => v !== undefined);
        expect(table[id]!.revokedAtMs).toBe(Math.max(...(revocations as number[])));
      }),
      { numRuns: 1_000 },
    );
  });

  it('merges with cluster states: commutative and associative with tokens present', () => {
    const base = createCluster({ id: 'a', address: 'a:1' }, 2, 'c');
    fc.assert(
      fc.property(tableArb, tableArb, tableArb, (x, y, z) => {
        const [a, b, c] = [x, y, z].map((tokens) => ({ ...base, tokens }));
        expect(merge(a!, b!)).toEqual(merge(b!, a!));
        expect(merge(merge(a!, b!), c!)).toEqual(merge(a!, merge(b!, c!)));
        expect(digest(merge(a!, b!))).toBe(digest(merge(b!, a!)));
      }),
      { numRuns: 300 },
    );
  });

  it('spreads a revocation by gossip to every node, and no node ever sees the revoked token live again', () => {
    for (let seed = 1; seed <= 100; seed++) {
      const rand = new Rand(seed);
      const k = rand.int(3, 7);
      const base = createCluster({ id: 'a', address: 'a:1' }, 2, 'sim');
      const issued = issueToken({}, { role: 'write' }, rand.bytes(32), 1);
      // Every node starts with the live token; a few more tokens appear along the way.
      const states: ClusterState[] = Array.from({ length: k }, () => ({ ...base, tokens: issued.table }));
      const revokeAt = rand.int(0, 5);
      const revoker = rand.int(0, k - 1);
      const seen = new Set<number>();
      let roundsToSpread = -1;
      for (let round = 0; round < 60 && roundsToSpread < 0; round++) {
        if (round === revokeAt) states[revoker] = { ...states[revoker]!, tokens: revokeToken(states[revoker]!.tokens!, issued.id, 10) };
        if (rand.chance(0.3)) {
          const i = rand.int(0, k - 1);
          states[i] = { ...states[i]!, tokens: issueToken(states[i]!.tokens!, { role: 'read' }, rand.bytes(32), round).table };
        }
        // Each node push-pulls with one random other node (as a node's gossip round does).
        for (let i = 0; i < k; i++) {
          let j = rand.int(0, k - 2);
          if (j >= i) j++;
          const merged = merge(states[i]!, states[j]!);
          states[i] = merged;
          states[j] = merged;
        }
        states.forEach((s, i) => {
          const live = find(s.tokens!, issued.token) !== null;
          if (seen.has(i)) expect(live, `seed ${seed}: node ${i} sees the revoked token live again`).toBe(false);
          if (!live) seen.add(i);
        });
        if (round >= revokeAt && seen.size === k) roundsToSpread = round - revokeAt;
      }
      // Push-pull with one random peer a round reaches every node in O(log k) rounds.
      expect(roundsToSpread, `seed ${seed}`).toBeGreaterThanOrEqual(0);
      expect(roundsToSpread, `seed ${seed}`).toBeLessThanOrEqual(10);
    }
  });
});
