// TicTac trees and segmentKeys through the Engine interface, for both
// implementations. Expected trees are computed from scratch with the pure
// codec's leaf hash (docs/engine.md), so native trees are checked against it too.
import { describe, it, expect } from 'vitest';
import { decodeRecord, leafHash, recordContextBytes } from '../../src/engine/pure/index.js';
import { diskKey, makeBkey } from '../../src/record/keys.js';
import type { Engine, EngineOptions } from '../../src/engine/types.js';
import { b, expectCode, put } from './helpers.js';
import { KINDS, openKind } from './kinds.js';

const P = 2, B = 2, S = 2; // small geometry: segments collide
const geometry = { partitionBits: P, treeBranchBits: B, treeSegmentBits: S };

function rng(seed: number) {
  return () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

/** Trees computed from scratch out of the stored objects. */
async function fullRebuild(e: Engine, keys: string[]) {
  const segs = Array.from({ length: 2 ** P }, () => new Array<bigint>(2 ** (B + S)).fill(0n));
  for (const k of keys) {
    const rec = await e.get(b('b'), b(k));
    if (!rec) continue;
    const pos = e.hashKey(b('b'), b(k));
    const p = Number(pos >> BigInt(64 - P));
    const s = Number((pos >> BigInt(64 - P - B - S)) & BigInt(2 ** (B + S) - 1));
    segs[p]![s]! ^= leafHash(makeBkey(b('b'), b(k)), decodeRecord(rec));
  }
  const be = (xs: bigint[]) => Buffer.concat(xs.map((x) => { const o = Buffer.alloc(8); o.writeBigUInt64BE(x); return o; }));
  const xor = (xs: bigint[]) => xs.reduce((a, x) => a ^ x, 0n);
  const branches = segs.map((ss) => Array.from({ length: 2 ** B }, (_, i) => xor(ss.slice(i * 2 ** S, (i + 1) * 2 ** S))));
  return {
    roots: be(branches.map(xor)),
    branches: branches.map(be),
    segments: segs.map((ss) => Array.from({ length: 2 ** B }, (_, i) => be(ss.slice(i * 2 ** S, (i + 1) * 2 ** S)))),
  };
}

async function expectTreesMatch(e: Engine, keys: string[]) {
  const want = await fullRebuild(e, keys);
  expect(e.treeRoots()).toEqual(want.roots);
  for (let p = 0; p < 2 ** P; p++) {
    expect(e.treeBranches(p)).toEqual(want.branches[p]);
    for (let br = 0; br < 2 ** B; br++) expect(e.treeSegments(p, br)).toEqual(want.segments[p]![br]);
  }
}

describe.each(KINDS)('%s engine', (kind) => {
  const open = (opts: Partial<EngineOptions> = {}) => openKind(kind, opts);

  describe('TicTac trees', () => {
    it('O(1) XOR updates equal a full rebuild through puts, deletes and merges', async () => {
      const e = await open(geometry);
      const peer = await open({ ...geometry, nodeId: 'peer' });
      const keys = Array.from({ length: 40 }, (_, i) => `key${i}`);
      const rand = rng(42);
      await expectTreesMatch(e, keys); // empty: all zeros
      expect(e.treeRoots()).toEqual(Buffer.alloc(8 * 2 ** P));
      for (let i = 0; i < 400; i++) {
        const k = keys[Math.floor(rand() * keys.length)]!;
        const roll = rand();
        const cur = await e.get(b('b'), b(k));
        const ctx = cur && rand() < 0.7 ? recordContextBytes(cur) : null;
        if (roll < 0.5) await put(e, k, `v${i}`, ctx, { mode: rand() < 0.2 ? 'lww' : 'siblings', now: i });
        else if (roll < 0.65) await put(e, k, null, ctx, { now: i });
        else {
          const r = await put(peer, k, `p${i}`, null, { now: i });
          await e.merge({ bucket: b('b'), key: b(k), record: r, mode: 'siblings', durable: false });
        }
        if (i % 40 === 39) await expectTreesMatch(e, keys);
      }
      // Root = XOR of branches = XOR of segments.
      for (let p = 0; p < 2 ** P; p++) {
        const xor8 = (buf: Buffer) => { let x = 0n; for (let o = 0; o < buf.length; o += 8) x ^= buf.readBigUInt64BE(o); return x; };
        expect(xor8(e.treeBranches(p))).toBe(e.treeRoots().readBigUInt64BE(p * 8));
      }
    });

    it('replicas with the same objects have the same trees', async () => {
      const a = await open({ ...geometry, nodeId: 'a' });
      const c = await open({ ...geometry, nodeId: 'c' });
      for (let i = 0; i < 30; i++) {
        const r = await put(a, `k${i}`, `v${i}`);
        await c.merge({ bucket: b('b'), key: b(`k${i}`), record: r, mode: 'siblings', durable: false });
      }
      expect(c.treeRoots()).toEqual(a.treeRoots());
      expect(a.treeRoots().equals(Buffer.alloc(a.treeRoots().length))).toBe(false);
    });

    it('segmentKeys lists the objects of the asked segments in disk-key order', async () => {
      const e = await open(geometry);
      const keys = Array.from({ length: 60 }, (_, i) => `key${i}`);
      for (const k of keys) await put(e, k, 'v');
      const all: string[] = [];
      for (let p = 0; p < 2 ** P; p++) {
        const segments = Array.from({ length: 2 ** (B + S) }, (_, i) => 2 ** (B + S) - 1 - i); // reversed on purpose
        const listed = await e.segmentKeys(p, [...segments, 3, 3]);
        const dks = listed.map((s) => diskKey(makeBkey(s.bucket, s.key)));
        expect([...dks].sort(Buffer.compare)).toEqual(dks);
        for (const s of listed) {
          expect(s.bucket).toEqual(b('b'));
          const pos = e.hashKey(s.bucket, s.key);
          expect(Number(pos >> BigInt(64 - P))).toBe(p);
          const rec = decodeRecord((await e.get(s.bucket, s.key))!);
          expect(s.hash.readBigUInt64BE(0)).toBe(leafHash(makeBkey(s.bucket, s.key), rec));
          all.push(s.key.toString());
        }
        // One segment: exactly the keys whose segment it is; XOR of their hashes is the segment hash.
        for (let seg = 0; seg < 2 ** (B + S); seg++) {
          const one = await e.segmentKeys(p, [seg]);
          let x = 0n;
          for (const s of one) {
            const pos = e.hashKey(s.bucket, s.key);
            expect(Number((pos >> BigInt(64 - P - B - S)) & BigInt(2 ** (B + S) - 1))).toBe(seg);
            x ^= s.hash.readBigUInt64BE(0);
          }
          expect(x).toBe(e.treeSegments(p, seg >> S).readBigUInt64BE((seg & (2 ** S - 1)) * 8));
        }
      }
      expect(all.sort()).toEqual([...keys].sort());
      expect(await e.segmentKeys(0, [])).toEqual([]);
    });

    it('validates partitions, branches and segments', async () => {
      const e = await open(geometry);
      await expectCode(() => e.treeBranches(4), 'INVALID_ARGUMENT');
      await expectCode(() => e.treeBranches(-1), 'INVALID_ARGUMENT');
      await expectCode(() => e.treeBranches(1.5), 'INVALID_ARGUMENT');
      await expectCode(() => e.treeSegments(0, 4), 'INVALID_ARGUMENT');
      await expectCode(() => e.segmentKeys(4, [0]), 'INVALID_ARGUMENT');
      await expectCode(() => e.segmentKeys(0, [16]), 'INVALID_ARGUMENT');
      // Fractions and values past u32 (which napi would truncate or wrap) are not indexes either.
      await expectCode(() => e.treeBranches(2 ** 32), 'INVALID_ARGUMENT');
      await expectCode(() => e.treeSegments(0, 1.5), 'INVALID_ARGUMENT');
      await expectCode(() => e.segmentKeys(2 ** 32, [0]), 'INVALID_ARGUMENT');
      await expectCode(() => e.segmentKeys(0, [1.5]), 'INVALID_ARGUMENT');
      expect(e.treeBranches(3)).toEqual(Buffer.alloc(8 * 4));
      expect(e.treeSegments(3, 3)).toEqual(Buffer.alloc(8 * 4));
    });
  });
});
