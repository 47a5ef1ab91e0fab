// Persistence through the Engine interface, for both implementations: what a
// data directory keeps across close and reopen, and what it refuses.
// The pure engine's log file format (torn tails, compaction, fsync sharing)
// is tested in test/engine-pure/persistence.test.ts.
import { describe, it, expect } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { recordContextBytes } from '../../src/engine/pure/index.js';
import type { EngineOptions } from '../../src/engine/types.js';
import { EPOCH, b, expectCode, put } from './helpers.js';
import { KINDS, dataDir, openKind } from './kinds.js';

const opts = (path: string, more: Partial<EngineOptions> = {}): EngineOptions => ({
  nodeId: 'n1', epoch: EPOCH, path, partitionBits: 3, treeBranchBits: 2, treeSegmentBits: 2, flushEveryMs: 0, ...more,
});

describe.each(KINDS)('%s engine', (kind) => {
  const open = (o: EngineOptions) => openKind(kind, o);

  describe('persistence', () => {
    it('restores objects, hints, meta, epoch and trees across close and reopen', async () => {
      const path = dataDir();
      const e = await open(opts(path, { epoch: undefined }));
      const actor = e.actor;
      const objects = new Map<string, Buffer>();
      for (let i = 0; i < 50; i++) objects.set(`k${i}`, await put(e, `k${i}`, `v${i}`, null, { durable: i % 10 === 0 }));
      const r = await put(e, 'k0', null, recordContextBytes(objects.get('k0')!));
      objects.set('k0', r);
      await e.hintPut('n2', b('b'), b('k1'), objects.get('k1')!);
      await e.hintPut('n3', b('b'), b('k2'), objects.get('k2')!);
      expect(await e.hintDelete('n3', b('b'), b('k2'), objects.get('k2')!)).toBe(true);
      await e.metaPut('ring', b('state-1'));
      await e.metaPut('ring', b('state-2'));
      const roots = e.treeRoots();
      await e.close();

      // A different epoch in the options is ignored: the directory keeps its own.
      const again = await open(opts(path, { epoch: 'ffffffffffffffff' }));
      expect(again.actor).toBe(actor);
      for (const [k, v] of objects) expect(await again.get(b('b'), b(k))).toEqual(v);
      expect(again.treeRoots()).toEqual(roots);
      expect((await again.hintList('n2', 10)).map((h) => h.key.toString())).toEqual(['k1']);
      expect(await again.hintTargets()).toEqual(['n2']);
      expect(await again.metaGet('ring')).toEqual(b('state-2'));
      // New writes continue the same actor's counters.
      const next = await put(again, 'k1', 'w', recordContextBytes(objects.get('k1')!));
      expect(next).not.toEqual(objects.get('k1'));
      await again.close();
    });

    it('rebuilds trees for a changed tree geometry (roots do not depend on it)', async () => {
      const path = dataDir();
      const e = await open(opts(path));
      for (let i = 0; i < 30; i++) await put(e, `k${i}`, 'v');
      const roots = e.treeRoots();
      await e.close();
      const f = await open(opts(path, { treeBranchBits: 5, treeSegmentBits: 4 }));
      expect(f.treeBranchBits).toBe(5);
      expect(await f.metaGet('engine.treeBranchBits')).toEqual(Buffer.from([5]));
      expect(f.treeRoots()).toEqual(roots);
      expect(f.treeBranches(0).length).toBe(32 * 8);
      await f.close();
    });

    it('refuses another nodeId or partitionBits with CONFIG_MISMATCH', async () => {
      const path = dataDir();
      await (await open(opts(path))).close();
      await expectCode(open(opts(path, { nodeId: 'n2' })), 'CONFIG_MISMATCH');
      await expectCode(open(opts(path, { partitionBits: 4 })), 'CONFIG_MISMATCH');
      await (await open(opts(path))).close(); // still fine afterwards
    });

    it('reports a directory it cannot create as IO', async () => {
      const path = dataDir();
      await writeFile(join(path, 'file'), 'x');
      await expectCode(open(opts(join(path, 'file', 'sub'))), 'IO');
    });
  });
});
