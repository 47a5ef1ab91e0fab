// Engine.dropPartition in both twins (docs/engine.md "dropPartition"): a
// replica's copy of one partition is deleted, its tree matches a replica
// that never held those objects, other partitions are untouched, and the
// engine closes so the next open issues dots under a new actor.
import { describe, expect, it } from 'vitest';
import type { Engine, EngineOptions } from '../../src/engine/types.js';
import { recordContextBytes } from '../../src/record/codec.js';
import { EPOCH, b, expectCode, put } from './helpers.js';
import { KINDS, dataDir, openKind } from './kinds.js';

const opts = (path: string): EngineOptions => ({ nodeId: 'n1', epoch: EPOCH, path, partitionBits: 3, treeBranchBits: 2, treeSegmentBits: 2, flushEveryMs: 0 });

async function allObjects(e: Engine, partition: number): Promise<string[]> {
  const out: string[] = [];
  let after: Buffer | null = null;
  do {
    const page = await e.scanPartition(partition, after, 7);
    for (const item of page.items) out.push(`${item.key.toString()}=${item.record.toString('hex')}`);
    after = page.next;
  } while (after !== null);
  return out;
}

describe.each(KINDS)('%s engine', (kind) => {
  it('dropPartition deletes one partition (tombstones too), keeps the rest, and the next open is a new actor', async () => {
    const path = dataDir();
    const e = await openKind(kind, opts(path));
    const never = await openKind(kind, opts(dataDir()));
    const partitionOf = (key: string) => Number(e.hashKey(b('b'), b(key)) >> 61n);
    const target = partitionOf('k0');
    let inTarget = 0;
    for (let i = 0; i < 120; i++) {
      const key = `k${i}`;
      const rec = await put(e, key, `v${i}`);
      // A tombstone in the target partition is dropped too.
      if (i === 0) await put(e, key, null, recordContextBytes(rec));
      if (partitionOf(key) === target) inTarget++;
      else await put(never, key, `v${i}`);
    }
    await e.hintPut('n2', b('b'), b('k0'), (await e.get(b('b'), b('k0')))!);
    await expectCode(e.dropPartition(8), 'INVALID_ARGUMENT');
    const actor = e.actor;

    expect(await e.dropPartition(target)).toBe(inTarget);
    // Closed: nothing more can be coordinated under the old actor.
    await expectCode(e.get(b('b'), b('k1')), 'CLOSED');

    const reopened = await openKind(kind, opts(path));
    expect(reopened.actor).not.toBe(actor);
    expect(await allObjects(reopened, target)).toEqual([]);
    for (let p = 0; p < 8; p++) {
      if (p !== target) expect(await allObjects(reopened, p)).toEqual(await allObjects(never, p));
      expect(reopened.treeBranches(p).equals(never.treeBranches(p))).toBe(true);
    }
    expect(reopened.treeRoots().equals(never.treeRoots())).toBe(true);
    // Hints stay.
    expect((await reopened.hintList('n2', 10)).map((h) => h.key.toString())).toEqual(['k0']);
  });
});
