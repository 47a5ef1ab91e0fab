// scanPartition (the unit of partition transfer) and reap (tombstone reaping)
// through the Engine interface, for both implementations (docs/engine.md).
import { describe, it, expect } from 'vitest';
import { decodeRecord, recordContextBytes } from '../../src/engine/pure/index.js';
import { MAX_SCAN_LIMIT, type Engine, type EngineOptions, type KeyRecord } from '../../src/engine/types.js';
import { EPOCH, b, expectCode, put } from './helpers.js';
import { KINDS, dataDir, openKind } from './kinds.js';

const P = 2;
const geometry = { partitionBits: P, treeBranchBits: 2, treeSegmentBits: 2, flushEveryMs: 0 };
const partitionOf = (e: Engine, bucket: Buffer, key: Buffer) => Number(e.hashKey(bucket, key) >> BigInt(64 - P));
const diskKey = (e: Engine, bucket: Buffer, key: Buffer) => {
  const pos = Buffer.alloc(8);
  pos.writeBigUInt64BE(e.hashKey(bucket, key));
  return Buffer.concat([pos, bucket, Buffer.from([0]), key]);
};
const id = (i: { bucket: Buffer; key: Buffer }) => `${i.bucket.toString('hex')}/${i.key.toString('hex')}`;

/** All pages of a partition, following `next`; checks page sizes and the cursor's form. */
async function scanAll(e: Engine, partition: number, limit: number, after: Buffer | null = null): Promise<KeyRecord[]> {
  const out: KeyRecord[] = [];
  for (;;) {
    const page = await e.scanPartition(partition, after, limit);
    expect(page.items.length).toBeLessThanOrEqual(limit);
    out.push(...page.items);
    if (page.next === null) return out;
    expect(page.items.length).toBe(limit); // only a full page continues
    const last = page.items.at(-1)!;
    expect(page.next).toEqual(diskKey(e, last.bucket, last.key));
    after = page.next;
  }
}

const isTombstones = (rec: Buffer) => decodeRecord(rec).siblings.every((s) => s.tombstone);

describe.each(KINDS)('%s engine', (kind) => {
  const open = (opts: Partial<EngineOptions> = {}) => openKind(kind, { ...geometry, ...opts });

  describe('scanPartition', () => {
    it('pages through every object exactly once, in disk-key order', async () => {
      const e = await open();
      const want = new Map<string, Buffer>();
      for (let i = 0; i < 150; i++) {
        const bucket = b(i % 3 === 0 ? 'users' : 'cart');
        const key = i % 7 === 0 ? Buffer.from([0, i, 0xff]) : b(`k${i}`);
        const rec = await e.coordinate({ bucket, key, context: null, value: b(`v${i}`), now: 1, mode: 'siblings', durable: false });
        want.set(id({ bucket, key }), rec);
      }
      for (const limit of [1, 4, 33, MAX_SCAN_LIMIT]) {
        const seen = new Map<string, Buffer>();
        for (let p = 0; p < 2 ** P; p++) {
          const items = await scanAll(e, p, limit);
          const dks = items.map((i) => diskKey(e, i.bucket, i.key));
          for (let j = 1; j < dks.length; j++) expect(Buffer.compare(dks[j - 1]!, dks[j]!)).toBe(-1);
          for (const item of items) {
            expect(partitionOf(e, item.bucket, item.key)).toBe(p);
            expect(seen.has(id(item))).toBe(false);
            seen.set(id(item), item.record);
          }
        }
        expect(seen).toEqual(want);
      }
    });

    it('returns next = null exactly when the page reached the end', async () => {
      const e = await open();
      expect(await e.scanPartition(0, null, 5)).toEqual({ items: [], next: null });
      for (let i = 0; i < 40; i++) await put(e, `k${i}`, 'v');
      const all = await scanAll(e, 1, MAX_SCAN_LIMIT);
      expect(all.length).toBeGreaterThan(2);
      const exact = await e.scanPartition(1, null, all.length);
      expect(exact.items).toEqual(all);
      expect(exact.next).toBeNull();
      const short = await e.scanPartition(1, null, all.length - 1);
      expect(short.next).not.toBeNull();
      expect(await e.scanPartition(1, short.next, 5)).toEqual({ items: [all.at(-1)], next: null });
    });

    it('resumes from a persisted cursor after close and reopen, even if its object is gone', async () => {
      const path = dataDir();
      const e = await open({ path });
      for (let i = 0; i < 80; i++) await put(e, `k${i}`, 'v');
      const all = await scanAll(e, 3, 1000);
      const first = await e.scanPartition(3, null, 6);
      const cursor = first.next!;
      await e.metaPut('transfer.cursor', cursor);
      // The cursor's own object is deleted and reaped before the transfer resumes.
      const last = first.items.at(-1)!;
      const del = await e.coordinate({ bucket: last.bucket, key: last.key, context: recordContextBytes(last.record), value: null, now: 2, mode: 'siblings', durable: false });
      expect(await e.reap(last.bucket, last.key, del)).toBe(true);
      await e.close();

      const again = await open({ path });
      const persisted = await again.metaGet('transfer.cursor');
      const rest = await scanAll(again, 3, 4, persisted);
      expect(rest).toEqual(all.slice(6));
      // Writes ahead of the cursor are picked up by later pages.
      const ahead = all.at(-1)!;
      const rec = await put(again, ahead.key.toString(), 'newer', recordContextBytes(ahead.record));
      expect((await scanAll(again, 3, 4, persisted)).at(-1)!.record).toEqual(rec);
    });

    it('validates partition, limit and cursor (INVALID_ARGUMENT)', async () => {
      const e = await open();
      await put(e, 'k', 'v');
      const p = partitionOf(e, b('b'), b('k'));
      const dk = diskKey(e, b('b'), b('k'));
      expect((await e.scanPartition(p, dk, 1)).items).toEqual([]);
      const bad: Array<[string, () => Promise<unknown>]> = [
        ['partition Q', () => e.scanPartition(2 ** P, null, 1)],
        ['negative partition', () => e.scanPartition(-1, null, 1)],
        ['fractional partition', () => e.scanPartition(0.5, null, 1)],
        ['partition 2^32', () => e.scanPartition(2 ** 32, null, 1)],
        ['limit 0', () => e.scanPartition(0, null, 0)],
        ['limit 10001', () => e.scanPartition(0, null, MAX_SCAN_LIMIT + 1)],
        ['fractional limit', () => e.scanPartition(0, null, 1.5)],
        ['limit 2^32 + 1 (wraps to 1 in a u32)', () => e.scanPartition(0, null, 2 ** 32 + 1)],
        ['cursor of another partition', () => e.scanPartition((p + 1) % 2 ** P, dk, 1)],
        ['cursor with a wrong position', () => { const x = Buffer.from(dk); x[7]! ^= 1; return e.scanPartition(p, x, 1); }],
        ['truncated cursor', () => e.scanPartition(p, dk.subarray(0, 10), 1)],
        ['empty cursor', () => e.scanPartition(p, Buffer.alloc(0), 1)],
        ['cursor that is a string', () => e.scanPartition(p, 'abc' as never, 1)],
      ];
      for (const [name, call] of bad) {
        await expectCode(call, 'INVALID_ARGUMENT').catch((err: Error) => {
          throw new Error(`${name}: ${err.message}`);
        });
      }
      // A cursor whose key is longer than maxKeyBytes (a persisted one from another configuration) is fine.
      const small = await open({ limits: { maxKeyBytes: 4 } });
      const longKey = b('k'.repeat(100));
      expect(await small.scanPartition(partitionOf(small, b('b'), longKey), diskKey(small, b('b'), longKey), 1)).toEqual({ items: [], next: null });
    });
  });

  describe('reap', () => {
    it('deletes a byte-identical all-tombstone object and only that', async () => {
      const e = await open();
      const live = await put(e, 'k', 'v');
      await expectCode(e.reap(b('b'), b('k'), live), 'INVALID_ARGUMENT'); // live sibling, though stored
      const del = await put(e, 'k', null, recordContextBytes(live));
      expect(isTombstones(del)).toBe(true);
      // Names first, then the record.
      await expectCode(e.reap(b(''), b('k'), Buffer.from([9])), 'INVALID_ARGUMENT');
      await expectCode(e.reap(b('b'), b('k'.repeat(1025)), Buffer.from([9])), 'KEY_TOO_LARGE');
      await expectCode(e.reap(b('b'), b('k'), del.subarray(0, -1)), 'CORRUPT_RECORD');
      // Not byte-identical (stale or another object's): false, nothing changes.
      const stale = await put(e, 'k2', null);
      const newer = await put(e, 'k2', null);
      expect(decodeRecord(newer).siblings).toHaveLength(2);
      const roots = e.treeRoots();
      expect(await e.reap(b('b'), b('k2'), stale)).toBe(false);
      expect(await e.reap(b('b'), b('k2'), del)).toBe(false);
      expect(await e.reap(b('b'), b('absent'), del)).toBe(false);
      expect(await e.get(b('b'), b('k2'))).toEqual(newer);
      expect(e.treeRoots()).toEqual(roots);
      // Identical: reaped, twice is false.
      expect(await e.reap(b('b'), b('k2'), newer)).toBe(true);
      expect(await e.get(b('b'), b('k2'))).toBeNull();
      expect(await e.reap(b('b'), b('k2'), newer)).toBe(false);
      // A tombstone with a concurrent live sibling is refused.
      const mixed = await put(e, 'k', 'w', recordContextBytes(live));
      expect(decodeRecord(mixed).siblings.map((s) => s.tombstone)).toEqual([true, false]);
      await expectCode(e.reap(b('b'), b('k'), mixed), 'INVALID_ARGUMENT');
      expect(await e.get(b('b'), b('k'))).toEqual(mixed);
    });

    it('removes the leaf: trees equal those of an engine that never had the key, also after reopen', async () => {
      const path = dataDir();
      const e = await open({ path });
      const never = await open();
      for (let i = 0; i < 30; i++) {
        await put(e, `k${i}`, 'v');
        await put(never, `k${i}`, 'v');
      }
      const r = await put(e, 'gone', 'x');
      const del = await put(e, 'gone', null, recordContextBytes(r));
      expect(e.treeRoots()).not.toEqual(never.treeRoots());
      expect(await e.reap(b('b'), b('gone'), del)).toBe(true);
      expect(e.treeRoots()).toEqual(never.treeRoots());
      const p = partitionOf(e, b('b'), b('gone'));
      expect(e.treeBranches(p)).toEqual(never.treeBranches(p));
      for (let br = 0; br < 4; br++) expect(e.treeSegments(p, br)).toEqual(never.treeSegments(p, br));
      expect((await scanAll(e, p, 100)).some((i) => i.key.equals(b('gone')))).toBe(false);
      await e.close();
      const again = await open({ path });
      expect(again.treeRoots()).toEqual(never.treeRoots());
      expect(await again.get(b('b'), b('gone'))).toBeNull();
      // A write after the reap starts from an absent object.
      const fresh = await put(again, 'gone', 'back');
      expect(decodeRecord(fresh).context.map((c) => [c.actor.toString(), c.counter])).toEqual([[`n1:${EPOCH}`, 1]]);
    });

    it('leaves hints alone', async () => {
      const e = await open();
      const del = await put(e, 'k', null);
      await e.hintPut('n2', b('b'), b('k'), del);
      expect(await e.reap(b('b'), b('k'), del)).toBe(true);
      expect((await e.hintList('n2', 10)).map((h) => h.record)).toEqual([del]);
    });

    it('is atomic against a concurrent write to the key', async () => {
      const e = await open();
      for (let i = 0; i < 20; i++) {
        const key = `race${i}`;
        const del = await put(e, key, null);
        const [reaped, written] = await Promise.all([e.reap(b('b'), b(key), del), put(e, key, 'new')]);
        const stored = await e.get(b('b'), b(key));
        expect(stored).toEqual(written);
        const tombstones = decodeRecord(stored!).siblings.map((s) => s.tombstone);
        expect(tombstones).toEqual(reaped ? [false] : [true, false]);
      }
    });
  });

  it('both fail with CLOSED after close', async () => {
    const e = await open();
    await e.close();
    await expectCode(e.scanPartition(99, null, 0), 'CLOSED');
    await expectCode(e.reap(b(''), b(''), Buffer.alloc(0)), 'CLOSED');
  });
});
