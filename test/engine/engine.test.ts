// The engine behaviour suite (docs/engine.md), run against both
// implementations: every test here must hold for native and pure alike.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { blake3 } from '@noble/hashes/blake3.js';
import { decodeRecord, encodeContext, encodeRecord, recordContextBytes, type Context, type DecodedRecord } from '../../src/engine/pure/index.js';
import { finish, sync } from '../../src/record/dvv.js';
import { EngineError, type Engine, type EngineOptions } from '../../src/engine/types.js';
import { EPOCH, b, expectCode, put } from './helpers.js';
import { KINDS, openKind } from './kinds.js';

const ACTOR = `n1:${EPOCH}`;
const view = (rec: Buffer) =>
  decodeRecord(rec).siblings.map((s) => (s.tombstone ? `${s.actor}/${s.counter}:<del>` : `${s.actor}/${s.counter}:${s.value}`));
const ctxOf = (rec: Buffer) => decodeRecord(rec).context.map((e) => [e.actor.toString(), e.counter]);

describe.each(KINDS)('%s engine', (kind) => {
  const open = (opts: Partial<EngineOptions> = {}) => openKind(kind, opts);

  describe('open', () => {
    it('uses the given epoch, or a random one', async () => {
      const e = await open();
      expect(e.actor).toBe(ACTOR);
      const r = await openKind(kind, { nodeId: 'node-2.x_y', epoch: undefined });
      expect(r.actor).toMatch(/^node-2\.x_y:[0-9a-f]{16}$/);
      expect(e.partitionBits).toBe(12);
      expect(e.treeBranchBits).toBe(5);
      expect(e.treeSegmentBits).toBe(5);
      expect(e.limits).toEqual({ maxKeyBytes: 1024, maxValueBytes: 1024 * 1024, maxSiblings: 100 });
    });

    const badOptions: Array<[string, object]> = [
      ['empty nodeId', { nodeId: '' }],
      ['nodeId with a colon', { nodeId: 'a:b' }],
      ['nodeId of 65 chars', { nodeId: 'x'.repeat(65) }],
      ['uppercase epoch', { nodeId: 'n', epoch: '000000000000000A' }],
      ['short epoch', { nodeId: 'n', epoch: '0001' }],
      ['partitionBits 0', { nodeId: 'n', partitionBits: 0 }],
      ['partitionBits 17', { nodeId: 'n', partitionBits: 17 }],
      ['fractional partitionBits', { nodeId: 'n', partitionBits: 2.5 }],
      ['treeBranchBits 13', { nodeId: 'n', treeBranchBits: 13 }],
      ['treeSegmentBits 0', { nodeId: 'n', treeSegmentBits: 0 }],
      ['bits summing past 32', { nodeId: 'n', partitionBits: 16, treeBranchBits: 9, treeSegmentBits: 8 }],
      ['maxKeyBytes above the hard maximum', { nodeId: 'n', limits: { maxKeyBytes: 65536 } }],
      ['maxValueBytes above the hard maximum', { nodeId: 'n', limits: { maxValueBytes: 16 * 1024 * 1024 + 1 } }],
      ['maxSiblings 0', { nodeId: 'n', limits: { maxSiblings: 0 } }],
      ['negative flushEveryMs', { nodeId: 'n', flushEveryMs: -1 }],
      ['negative cacheBytes', { nodeId: 'n', cacheBytes: -1 }],
      // napi would truncate or wrap these to a u32 if the native facade let them through.
      ['fractional flushEveryMs', { nodeId: 'n', flushEveryMs: 1.5 }],
      ['flushEveryMs above 2^31-1', { nodeId: 'n', flushEveryMs: 2 ** 31 }],
      ['fractional cacheBytes', { nodeId: 'n', cacheBytes: 1000.5 }],
      ['fractional maxSiblings', { nodeId: 'n', limits: { maxSiblings: 2.5 } }],
      ['partitionBits 2^32 + 3', { nodeId: 'n', partitionBits: 2 ** 32 + 3 }],
    ];
    for (const [name, opts] of badOptions) {
      it(`rejects ${name} with INVALID_ARGUMENT`, async () => {
        await expectCode(openKind(kind, opts as never), 'INVALID_ARGUMENT');
      });
    }

    it('accepts the extreme geometry', async () => {
      const e = await openKind(kind, { nodeId: 'n', partitionBits: 16, treeBranchBits: 8, treeSegmentBits: 8 });
      expect(e.treeRoots().length).toBe(65536 * 8);
    });
  });

  describe('names and limits', () => {
    it('hashes bkey = bucket 0x00 key with blake3', async () => {
      const e = await open();
      const h = Buffer.from(blake3(Buffer.from('bucket\0key')));
      expect(e.hashKey(b('bucket'), b('key'))).toBe(h.readBigUInt64BE(0));
      const many = e.hashKeys([{ bucket: b('bucket'), key: b('key') }, { bucket: b('x'), key: b('y') }]);
      expect(many.subarray(0, 8)).toEqual(h.subarray(0, 8));
      expect(many.readBigUInt64BE(8)).toBe(e.hashKey(b('x'), b('y')));
    });

    it('validates buckets and keys', async () => {
      const e = await open();
      await put(e, 'k', 'v', null, { bucket: 'x'.repeat(255) });
      await put(e, 'k'.repeat(1024), 'v');
      await expectCode(put(e, 'k', 'v', null, { bucket: 'x'.repeat(256) }), 'INVALID_ARGUMENT');
      await expectCode(put(e, 'k', 'v', null, { bucket: '' }), 'INVALID_ARGUMENT');
      await expectCode(put(e, 'k', 'v', null, { bucket: 'a\0b' }), 'INVALID_ARGUMENT');
      await expectCode(put(e, '', 'v'), 'INVALID_ARGUMENT');
      await expectCode(put(e, 'k'.repeat(1025), 'v'), 'KEY_TOO_LARGE');
      await expectCode(e.get(b('b'), b('k'.repeat(1025))), 'KEY_TOO_LARGE');
      await expectCode(() => e.hashKey(b(''), b('k')), 'INVALID_ARGUMENT');
      // Key bytes are arbitrary, 0x00 included.
      await e.coordinate({ bucket: b('b'), key: Buffer.from([0, 0xff]), context: null, value: b('v'), now: 1, mode: 'siblings', durable: false });
      expect(await e.get(b('b'), Buffer.from([0, 0xff]))).not.toBeNull();
    });

    it('enforces configured key and value limits', async () => {
      const e = await open({ limits: { maxKeyBytes: 4, maxValueBytes: 3 } });
      await put(e, 'kkkk', 'vvv');
      await expectCode(put(e, 'kkkkk', 'v'), 'KEY_TOO_LARGE');
      await expectCode(put(e, 'k', 'vvvv'), 'VALUE_TOO_LARGE');
      await put(e, 'k', null); // a tombstone has no value
    });

    it('validates now, mode and context', async () => {
      const e = await open();
      await expectCode(put(e, 'k', 'v', null, { now: -1 }), 'INVALID_ARGUMENT');
      await expectCode(put(e, 'k', 'v', null, { now: 1.5 }), 'INVALID_ARGUMENT');
      await expectCode(put(e, 'k', 'v', null, { now: 2 ** 53 }), 'INVALID_ARGUMENT');
      await expectCode(put(e, 'k', 'v', null, { mode: 'x' as never }), 'INVALID_ARGUMENT');
      await expectCode(put(e, 'k', 'v', Buffer.from([2, 0, 0])), 'BAD_CONTEXT');
      await put(e, 'k', 'v', null, { now: 2 ** 53 - 1 });
      expect(await e.get(b('b'), b('k'))).not.toBeNull();
      await put(e, 'k2', 'v', Buffer.alloc(0));
    });
  });

  describe('coordinate: siblings', () => {
    it('creates the first version under this actor', async () => {
      const e = await open();
      const r = await put(e, 'k', 'v1', null, { now: 42 });
      expect(view(r)).toEqual([`${ACTOR}/1:v1`]);
      expect(ctxOf(r)).toEqual([[ACTOR, 1]]);
      expect(decodeRecord(r).siblings[0]!.timestamp).toBe(42);
      expect(await e.get(b('b'), b('k'))).toEqual(r);
      expect(await e.get(b('b'), b('nope'))).toBeNull();
    });

    it('keeps two writes with the same stale context as siblings; the context of both resolves them', async () => {
      const e = await open();
      const r1 = await put(e, 'k', 'a');
      const stale = recordContextBytes(r1);
      await put(e, 'k', 'b', stale);
      const r3 = await put(e, 'k', 'c', stale);
      expect(view(r3)).toEqual([`${ACTOR}/2:b`, `${ACTOR}/3:c`]);
      const r4 = await put(e, 'k', 'd', recordContextBytes(r3));
      expect(view(r4)).toEqual([`${ACTOR}/4:d`]);
      expect(ctxOf(r4)).toEqual([[ACTOR, 4]]);
    });

    it('blind writes accumulate siblings', async () => {
      const e = await open();
      await put(e, 'k', 'a');
      const r = await put(e, 'k', 'b');
      expect(view(r)).toEqual([`${ACTOR}/1:a`, `${ACTOR}/2:b`]);
    });

    it('never leaves more than 2 siblings for two clients writing back what they last read', async () => {
      const e = await open();
      const ctx: Array<Buffer | null> = [null, null];
      let seed = 7;
      const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      let writes = 0;
      while (writes < 100) {
        const c = rand() < 0.5 ? 0 : 1;
        if (rand() < 0.3) {
          const cur = await e.get(b('b'), b('k'));
          ctx[c] = cur && recordContextBytes(cur);
          continue;
        }
        const r = await put(e, 'k', `c${c}-${writes++}`, ctx[c]);
        ctx[c] = recordContextBytes(r); // the write's response is what the client read last
        expect(decodeRecord(r).siblings.length).toBeLessThanOrEqual(2);
      }
    });

    it('counts from the larger of the stored and the given counter', async () => {
      const e = await open();
      const other = await open(); // same actor, different store: a context from "the future"
      let r = await put(other, 'k', 'x');
      for (let i = 0; i < 4; i++) r = await put(other, 'k', 'x', recordContextBytes(r));
      const mine = await put(e, 'k', 'y', recordContextBytes(r));
      expect(view(mine)).toEqual([`${ACTOR}/6:y`]);
    });

    it('writes tombstones', async () => {
      const e = await open();
      const r1 = await put(e, 'k', 'v');
      const del = await put(e, 'k', null, recordContextBytes(r1));
      expect(view(del)).toEqual([`${ACTOR}/2:<del>`]);
      expect(await e.get(b('b'), b('k'))).toEqual(del);
      // A blind delete of a live value is a sibling of it.
      const r2 = await put(e, 'k2', 'v');
      const blind = await put(e, 'k2', null);
      expect(view(blind)).toEqual([`${ACTOR}/1:v`, `${ACTOR}/2:<del>`]);
      // Writing with the tombstone's context resurrects cleanly.
      const back = await put(e, 'k', 'again', recordContextBytes(del));
      expect(view(back)).toEqual([`${ACTOR}/3:again`]);
      void r2;
    });
  });

  describe('coordinate: lww', () => {
    it('keeps only the greatest (timestamp, actor, counter)', async () => {
      const e = await open();
      await put(e, 'k', 'new', null, { now: 2000, mode: 'lww' });
      const r = await put(e, 'k', 'old', null, { now: 1000, mode: 'lww' });
      expect(view(r)).toEqual([`${ACTOR}/1:new`]);
      expect(ctxOf(r)).toEqual([[ACTOR, 2]]);
      const tie = await put(e, 'k', 'tie', null, { now: 2000, mode: 'lww' });
      expect(view(tie)).toEqual([`${ACTOR}/3:tie`]); // same timestamp: the greater dot wins
    });

    it('resolves by actor bytes across replicas', async () => {
      const a = await open({ nodeId: 'a' });
      const z = await open({ nodeId: 'z' });
      const ra = await put(a, 'k', 'from-a', null, { now: 5 });
      const rz = await put(z, 'k', 'from-z', null, { now: 5 });
      const m1 = await a.merge({ bucket: b('b'), key: b('k'), record: rz, mode: 'lww', durable: false });
      const m2 = await z.merge({ bucket: b('b'), key: b('k'), record: ra, mode: 'lww', durable: false });
      expect(m1).toEqual(m2);
      expect(view(m1)).toEqual([`z:${EPOCH}/1:from-z`]);
    });
  });

  describe('merge', () => {
    it('replicates, is a no-op when nothing is new, and returns the result', async () => {
      const n1 = await open({ nodeId: 'n1' });
      const n2 = await open({ nodeId: 'n2' });
      const r1 = await put(n1, 'k', 'v');
      const m = await n2.merge({ bucket: b('b'), key: b('k'), record: r1, mode: 'siblings', durable: false });
      expect(m).toEqual(r1);
      expect(await n2.get(b('b'), b('k'))).toEqual(r1);
      expect(n2.treeRoots()).toEqual(n1.treeRoots());
      // Concurrent writes on both replicas become siblings on both, identically.
      const a = await put(n1, 'k', 'from-n1', recordContextBytes(r1));
      const c = await put(n2, 'k', 'from-n2', recordContextBytes(r1));
      const x = await n1.merge({ bucket: b('b'), key: b('k'), record: c, mode: 'siblings', durable: false });
      const y = await n2.merge({ bucket: b('b'), key: b('k'), record: a, mode: 'siblings', durable: false });
      expect(x).toEqual(y);
      expect(view(x)).toEqual([`n1:${EPOCH}/2:from-n1`, `n2:${EPOCH}/1:from-n2`]);
      // An older record changes nothing.
      expect(await n1.merge({ bucket: b('b'), key: b('k'), record: r1, mode: 'siblings', durable: false })).toEqual(x);
      expect(n1.treeRoots()).toEqual(n2.treeRoots());
    });

    it('validates the incoming record fully', async () => {
      const e = await open();
      const r = await put(e, 'k', 'v');
      await expectCode(e.merge({ bucket: b('b'), key: b('k'), record: r.subarray(0, -1), mode: 'siblings', durable: false }), 'CORRUPT_RECORD');
      await expectCode(e.merge({ bucket: b('b'), key: b('k'), record: Buffer.concat([r, Buffer.from([0])]), mode: 'siblings', durable: false }), 'CORRUPT_RECORD');
      await expectCode(e.merge({ bucket: b('b'), key: b('k'), record: r, mode: 'nope' as never, durable: false }), 'INVALID_ARGUMENT');
      // The key is checked before the mode.
      await expectCode(e.merge({ bucket: b('b'), key: b('k'.repeat(1025)), record: r, mode: 'nope' as never, durable: false }), 'KEY_TOO_LARGE');
    });

    it('mergeMany applies in order and rejects after earlier items applied', async () => {
      const src = await open({ nodeId: 'src' });
      const dst = await open({ nodeId: 'dst' });
      const r1 = await put(src, 'k1', 'v1');
      const r2 = await put(src, 'k2', 'v2');
      const out = await dst.mergeMany([
        { bucket: b('b'), key: b('k1'), record: r1, mode: 'siblings', durable: false },
        { bucket: b('b'), key: b('k2'), record: r2, mode: 'siblings', durable: true },
      ]);
      expect(out).toEqual([r1, r2]);
      const r3 = await put(src, 'k3', 'v3');
      await expectCode(
        dst.mergeMany([
          { bucket: b('b'), key: b('k3'), record: r3, mode: 'siblings', durable: false },
          { bucket: b('b'), key: b('k4'), record: Buffer.from([9]), mode: 'siblings', durable: false },
        ]),
        'CORRUPT_RECORD',
      );
      expect(await dst.get(b('b'), b('k3'))).toEqual(r3);
      // A bad mode fails its item like a bad record does.
      const r5 = await put(src, 'k5', 'v5');
      await expectCode(
        dst.mergeMany([
          { bucket: b('b'), key: b('k5'), record: r5, mode: 'lww', durable: false },
          { bucket: b('b'), key: b('k6'), record: r5, mode: 'nope' as never, durable: false },
        ]),
        'INVALID_ARGUMENT',
      );
      expect(await dst.get(b('b'), b('k5'))).toEqual(r5);
      expect(await dst.get(b('b'), b('k6'))).toBeNull();
      expect(await dst.getMany([{ bucket: b('b'), key: b('k1') }, { bucket: b('b'), key: b('zz') }])).toEqual([r1, null]);
    });
  });

  describe('sibling limit', () => {
    it('fails coordinate with TOO_MANY_SIBLINGS and stores nothing', async () => {
      const e = await open({ limits: { maxSiblings: 3 } });
      for (let i = 0; i < 3; i++) await put(e, 'k', `v${i}`);
      const before = await e.get(b('b'), b('k'));
      const roots = e.treeRoots();
      await expectCode(put(e, 'k', 'v3'), 'TOO_MANY_SIBLINGS');
      expect(await e.get(b('b'), b('k'))).toEqual(before);
      expect(e.treeRoots()).toEqual(roots);
      // lww never exceeds it; a resolving write is fine.
      await put(e, 'k', 'one', recordContextBytes(before!));
    });

    const mergeInto = (e: Engine, record: Buffer, key = 'k') => e.merge({ bucket: b('b'), key: b(key), record, mode: 'siblings', durable: false });
    /** `n` blind writes of key k at `e`: n siblings of e's actor, context {e: n}. */
    const blindWrites = async (e: Engine, n: number): Promise<Buffer> => {
      let r = Buffer.alloc(0);
      for (let i = 0; i < n; i++) r = await put(e, 'k', `${e.actor}-${i}`);
      return r;
    };

    it('finding 3: two replicas with different 100-sibling sets merge both ways and end identical with 200 siblings', async () => {
      const x = await open({ nodeId: 'x' });
      const y = await open({ nodeId: 'y' });
      const rx = await blindWrites(x, 100);
      const ry = await blindWrites(y, 100);
      await mergeInto(x, ry);
      await mergeInto(y, rx);
      const [sx, sy] = [await x.get(b('b'), b('k')), await y.get(b('b'), b('k'))];
      expect(sx).toEqual(sy);
      expect(decodeRecord(sx!).siblings).toHaveLength(200);
      // Anti-entropy compares trees: they agree too.
      expect(x.treeRoots()).toEqual(y.treeRoots());
      // Merging again changes nothing (a repair round after convergence is a no-op).
      expect(await mergeInto(x, sy!)).toEqual(sx);
      // A hint held for a replica takes the union as well.
      await x.hintPut('n9', b('b'), b('k'), rx);
      expect(decodeRecord(await x.hintPut('n9', b('b'), b('k'), ry)).siblings).toHaveLength(200);
    });

    it('finding 3: a client write onto a 200-sibling key is refused unless its context supersedes enough, and a covering context collapses them', async () => {
      const x = await open({ nodeId: 'x' });
      const y = await open({ nodeId: 'y' });
      await blindWrites(x, 100);
      const ry = await blindWrites(y, 100);
      const both = await mergeInto(x, ry);
      const roots = x.treeRoots();
      // Blind, or having seen only y's 100: 101 or 201 siblings would remain.
      await expectCode(put(x, 'k', 'blind'), 'TOO_MANY_SIBLINGS');
      await expectCode(put(x, 'k', 'seen y', recordContextBytes(ry)), 'TOO_MANY_SIBLINGS');
      expect(await x.get(b('b'), b('k'))).toEqual(both);
      expect(x.treeRoots()).toEqual(roots);
      // Having seen y's 100 and x's first: 99 + the new one = 100, the limit.
      const yAndFirstX: Context = [...decodeRecord(ry).context, { actor: b(x.actor), counter: 1 }].sort((p, q) => Buffer.compare(p.actor, q.actor));
      const at100 = await put(x, 'k', 'at the limit', encodeContext(yAndFirstX));
      expect(decodeRecord(at100).siblings).toHaveLength(100);
      // The full context of what a read returned resolves everything.
      const one = await put(x, 'k', 'resolved', recordContextBytes(at100));
      expect(decodeRecord(one).siblings.map((s) => s.value.toString())).toEqual(['resolved']);
    });

    /** `n` siblings of `actor` (counters 1..n, empty values), built without n writes. */
    const wideRecord = (actor: string, n: number): Buffer => {
      const rec: DecodedRecord = { context: [{ actor: b(actor), counter: n }], siblings: [] };
      for (let c = 1; c <= n; c++) rec.siblings.push({ actor: b(actor), counter: c, timestamp: 1, tombstone: false, value: Buffer.alloc(0) });
      return encodeRecord(rec);
    };

    it('finding 3: a merge past the hard maximum of 65535 siblings is refused with TOO_MANY_SIBLINGS and stores nothing', async () => {
      const e = await open();
      const held = await mergeInto(e, wideRecord('p', 40000));
      const roots = e.treeRoots();
      await expectCode(mergeInto(e, wideRecord('q', 30000)), 'TOO_MANY_SIBLINGS');
      // (Buffer.equals: a deep toEqual over megabytes is slow.)
      expect((await e.get(b('b'), b('k')))!.equals(held)).toBe(true);
      expect(e.treeRoots()).toEqual(roots);
      await e.hintPut('n9', b('b'), b('k'), wideRecord('p', 40000));
      await expectCode(e.hintPut('n9', b('b'), b('k'), wideRecord('q', 30000)), 'TOO_MANY_SIBLINGS');
      // Up to the maximum itself a merge is accepted.
      const full = await mergeInto(e, wideRecord('q', 25535));
      expect(decodeRecord(full).siblings).toHaveLength(65535);
    });

    it('finding 3: replicas that write one key past the limit and merge in any order converge (property)', async () => {
      type Cmd = { t: 'write'; at: number; withContext: boolean } | { t: 'merge'; from: number; to: number };
      const cmd: fc.Arbitrary<Cmd> = fc.oneof(
        { weight: 3, arbitrary: fc.record({ t: fc.constant('write' as const), at: fc.nat(2), withContext: fc.boolean() }) },
        fc.record({ t: fc.constant('merge' as const), from: fc.nat(2), to: fc.nat(2) }),
      );
      const pair = fc.record({ from: fc.nat(2), to: fc.nat(2) });
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(cmd, { maxLength: 40 }), fc.array(pair, { maxLength: 6 }), async (cmds, order) => {
          // A small limit puts every replica at it within a few writes.
          const rs = await Promise.all([0, 1, 2].map((i) => open({ nodeId: `r${run}-${i}`, limits: { maxSiblings: 3 } })));
          run++;
          const get = (i: number) => rs[i]!.get(b('b'), b('k'));
          let refused = 0;
          for (const c of cmds) {
            if (c.t === 'write') {
              const cur = await get(c.at);
              try {
                await put(rs[c.at]!, 'k', `w${refused}`, c.withContext && cur ? recordContextBytes(cur) : null);
              } catch (err) {
                if ((err as EngineError).code !== 'TOO_MANY_SIBLINGS') throw err;
                refused++;
              }
            } else {
              const r = await get(c.from);
              if (r) await mergeInto(rs[c.to]!, r); // never refused below the hard maximum
            }
          }
          const before = (await Promise.all([0, 1, 2].map(get))).filter((r): r is Buffer => r !== null);
          // Anti-entropy in an arbitrary order, then every replica through r0 and back.
          for (const p of [...order, { from: 1, to: 0 }, { from: 2, to: 0 }, { from: 0, to: 1 }, { from: 0, to: 2 }]) {
            const r = await get(p.from);
            if (r) await mergeInto(rs[p.to]!, r);
          }
          const after = await Promise.all([0, 1, 2].map(get));
          expect(after[1]).toEqual(after[0]);
          expect(after[2]).toEqual(after[0]);
          // The same union as merging the replicas' records in the reverse order.
          if (before.length > 0) {
            const folded = before.reverse().map(decodeRecord).reduce((acc, r) => finish(sync(acc, r), 'siblings', 65535));
            expect(after[0]).toEqual(encodeRecord(folded));
          }
          for (const r of rs) await r.close();
        }),
        { numRuns: 25 },
      );
    });
  });

  describe('context limit', () => {
    /** A context of `n` actors `c0000…`, none of them the engine's. */
    const wideContext = (n: number): Context =>
      Array.from({ length: n }, (_, i) => ({ actor: b(`c${String(i).padStart(4, '0')}`), counter: 1 }));

    it('a client write never stores a context larger than a client may send back (1024 actors, counting its own)', async () => {
      const e = await open();
      // 1024 others plus this engine's actor would be 1025: refused, nothing stored.
      await expectCode(put(e, 'k', 'v', encodeContext(wideContext(1024))), 'BAD_CONTEXT');
      expect(await e.get(b('b'), b('k'))).toBeNull();
      // 1023 others: the stored context covers exactly 1024 and can be written back.
      const r = await put(e, 'k', 'v', encodeContext(wideContext(1023)));
      expect(decodeRecord(r).context).toHaveLength(1024);
      const back = await put(e, 'k', 'w', recordContextBytes(r));
      expect(decodeRecord(back).siblings.map((s) => s.value.toString())).toEqual(['w']);
      // A full context that already holds this engine's actor stays full, not over.
      expect(decodeRecord(back).context).toHaveLength(1024);
      // Another coordinator, whose actor the full context lacks, refuses it.
      const other = await open({ nodeId: 'n2' });
      await mergeSame(other, back);
      await expectCode(put(other, 'k', 'x', recordContextBytes(back)), 'BAD_CONTEXT');
      expect(await other.get(b('b'), b('k'))).toEqual(back);
    });
    const mergeSame = (e: Engine, record: Buffer) => e.merge({ bucket: b('b'), key: b('k'), record, mode: 'siblings', durable: false });
  });

  describe('hints', () => {
    it('puts, merges, lists, deletes by compare, and lists targets', async () => {
      const src = await open({ nodeId: 'src' });
      const e = await open();
      const v1 = await put(src, 'k', 'one');
      const h1 = await e.hintPut('n3', b('b'), b('k'), v1);
      expect(h1).toEqual(v1);
      // A concurrent version joins the held hint as a sibling (never lww).
      const other = await open({ nodeId: 'other' });
      const v2 = await put(other, 'k', 'two');
      const h2 = await e.hintPut('n3', b('b'), b('k'), v2);
      expect(decodeRecord(h2).siblings).toHaveLength(2);
      await e.hintPut('n3', b('b'), b('k2'), v1);
      await e.hintPut('n10', b('b'), b('k'), v1);
      await e.hintPut('a', b('b'), b('k'), v1);

      const list = await e.hintList('n3', 100);
      expect(list.map((h) => h.key.toString()).sort()).toEqual(['k', 'k2']);
      const order = list.map((h) => e.hashKey(h.bucket, h.key));
      expect([...order].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))).toEqual(order); // disk-key order
      expect(list.find((h) => h.key.toString() === 'k')!.record).toEqual(h2);
      expect(await e.hintList('n3', 1)).toHaveLength(1);
      expect(await e.hintList('n3', 0)).toEqual([]);
      expect(await e.hintList('nobody', 10)).toEqual([]);
      expect(await e.hintTargets()).toEqual(['a', 'n10', 'n3']);

      // Hints never touch the objects store or its trees.
      expect(await e.get(b('b'), b('k'))).toBeNull();
      expect(e.treeRoots().equals(Buffer.alloc(e.treeRoots().length))).toBe(true);

      // Delivery listed h1, but the hint was updated to h2 meanwhile: it is kept.
      expect(await e.hintDelete('n3', b('b'), b('k'), h1)).toBe(false);
      expect((await e.hintList('n3', 10)).length).toBe(2);
      expect(await e.hintDelete('n3', b('b'), b('k'), h2)).toBe(true);
      expect(await e.hintDelete('n3', b('b'), b('k'), h2)).toBe(false);
      expect(await e.hintDelete('n3', b('b'), b('k2'), v1)).toBe(true);
      expect(await e.hintTargets()).toEqual(['a', 'n10']);
    });

    it('validates targets, limits and records', async () => {
      const e = await open();
      const r = await put(e, 'k', 'v');
      await expectCode(e.hintPut('bad target', b('b'), b('k'), r), 'INVALID_ARGUMENT');
      await expectCode(e.hintPut('t', b('b'), b('k'), Buffer.from([1])), 'CORRUPT_RECORD');
      await expectCode(e.hintList('t', -1), 'INVALID_ARGUMENT');
      await expectCode(e.hintList('t', 1.5), 'INVALID_ARGUMENT');
      await e.hintPut('t', b('b'), b('k'), r);
      expect(await e.hintList('t', 2 ** 32)).toHaveLength(1); // any limit is fine, even past u32
      await expectCode(e.hintList('', 1), 'INVALID_ARGUMENT');
    });
  });

  describe('meta', () => {
    it('stores blobs and exposes the engine entries read-only', async () => {
      const e = await open({ partitionBits: 4 });
      expect(await e.metaGet('ring')).toBeNull();
      await e.metaPut('ring', b('state'));
      expect(await e.metaGet('ring')).toEqual(b('state'));
      await e.metaPut('ring', Buffer.alloc(0));
      expect(await e.metaGet('ring')).toEqual(Buffer.alloc(0));
      expect((await e.metaGet('engine.nodeId'))!.toString()).toBe('n1');
      expect((await e.metaGet('engine.epoch'))!.toString()).toBe(EPOCH);
      // The bit counts are one byte each, as in the native engine.
      expect(await e.metaGet('engine.partitionBits')).toEqual(Buffer.from([4]));
      expect(await e.metaGet('engine.treeBranchBits')).toEqual(Buffer.from([5]));
      expect(await e.metaGet('engine.treeSegmentBits')).toEqual(Buffer.from([5]));
      await expectCode(e.metaPut('engine.nodeId', b('evil')), 'INVALID_ARGUMENT');
      await expectCode(e.metaPut('', b('x')), 'INVALID_ARGUMENT');
      await expectCode(e.metaGet('x'.repeat(256)), 'INVALID_ARGUMENT');
      await e.metaPut('x'.repeat(255), b('ok'));
    });
  });

  describe('synchronous forms', () => {
    const k = { bucket: b('b'), key: b('k') };

    it('write, read and merge like the asynchronous forms, and the other form sees the result', async () => {
      const e = await open();
      const first = e.coordinateSync({ ...k, context: null, value: b('one'), now: 1000, mode: 'siblings' });
      expect(e.getSync(k.bucket, k.key)).toEqual(first);
      expect(await e.get(k.bucket, k.key)).toEqual(first);
      // Two writes from the same context are siblings; one covering both replaces them.
      const ctx = recordContextBytes(first);
      e.coordinateSync({ ...k, context: ctx, value: b('two'), now: 1001, mode: 'siblings' });
      const both = e.coordinateSync({ ...k, context: ctx, value: b('three'), now: 1002, mode: 'siblings' });
      expect(view(both)).toEqual([`${ACTOR}/2:two`, `${ACTOR}/3:three`]);
      expect(view(e.coordinateSync({ ...k, context: recordContextBytes(both), value: b('four'), now: 1003, mode: 'siblings' }))).toEqual([`${ACTOR}/4:four`]);
      expect(e.getSync(b('b'), b('absent'))).toBeNull();

      const other = await openKind(kind, { nodeId: 'n2' });
      const merged = other.mergeSync({ ...k, record: e.getSync(k.bucket, k.key)!, mode: 'siblings' });
      expect(merged).toEqual(e.getSync(k.bucket, k.key));
      expect(await other.get(k.bucket, k.key)).toEqual(merged);
    });

    it('throw typed errors at once, and store nothing', async () => {
      const e = await open();
      const thrown = (f: () => unknown): string => {
        try {
          f();
        } catch (err) {
          expect(err).toBeInstanceOf(EngineError);
          return (err as EngineError).code;
        }
        return 'no error';
      };
      expect(thrown(() => e.getSync(b(''), k.key))).toBe('INVALID_ARGUMENT');
      expect(thrown(() => e.coordinateSync({ ...k, context: null, value: Buffer.alloc(1024 * 1024 + 1), now: 1, mode: 'siblings' }))).toBe('VALUE_TOO_LARGE');
      expect(thrown(() => e.coordinateSync({ ...k, context: b('junk'), value: b('v'), now: 1, mode: 'siblings' }))).toBe('BAD_CONTEXT');
      expect(thrown(() => e.coordinateSync({ ...k, context: null, value: b('v'), now: 1, mode: 'nope' as never }))).toBe('INVALID_ARGUMENT');
      expect(thrown(() => e.mergeSync({ ...k, record: b('not a record'), mode: 'siblings' }))).toBe('CORRUPT_RECORD');
      expect(e.getSync(k.bucket, k.key)).toBeNull();
    });
  });

  describe('close', () => {
    it('fails every call after close with CLOSED', async () => {
      const e = await open();
      const r = await put(e, 'k', 'v');
      await e.close();
      const k = { bucket: b('b'), key: b('k') };
      const calls: Array<() => unknown> = [
        () => e.hashKey(k.bucket, k.key),
        () => e.hashKeys([k]),
        () => put(e, 'k', 'v'),
        () => e.merge({ ...k, record: r, mode: 'siblings', durable: false }),
        () => e.mergeMany([]),
        () => e.get(k.bucket, k.key),
        () => e.getMany([k]),
        () => e.getSync(k.bucket, k.key),
        () => e.coordinateSync({ ...k, context: null, value: b('v'), now: 1, mode: 'siblings' }),
        () => e.mergeSync({ ...k, record: r, mode: 'siblings' }),
        () => e.treeRoots(),
        () => e.treeBranches(0),
        () => e.treeSegments(0, 0),
        () => e.segmentKeys(0, [0]),
        () => e.scanPartition(0, null, 1),
        () => e.reap(k.bucket, k.key, r),
        () => e.hintPut('t', k.bucket, k.key, r),
        () => e.hintList('t', 1),
        () => e.hintDelete('t', k.bucket, k.key, r),
        () => e.hintTargets(),
        () => e.metaGet('x'),
        () => e.metaPut('x', b('y')),
        () => e.flush(),
        () => e.close(),
      ];
      for (const call of calls) await expectCode(call, 'CLOSED');
    });

    it('throws EngineError instances', async () => {
      const e = await open();
      await expect(put(e, '', 'v')).rejects.toBeInstanceOf(EngineError);
    });
  });
});
