import { afterEach, describe, it, expect, vi } from 'vitest';
import { appendFile, open, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PureEngine, recordContextBytes } from '../../src/engine/pure/index.js';
import { LOG_FILE } from '../../src/engine/pure/store.js';
import type { EngineOptions } from '../../src/engine/types.js';
import { EPOCH, b, expectCode, put, tempDir } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  while (cleanups.length) await cleanups.pop()!();
});

async function dir(): Promise<string> {
  const t = await tempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

const opts = (path: string, more: Partial<EngineOptions> = {}): EngineOptions => ({
  nodeId: 'n1', epoch: EPOCH, path, partitionBits: 3, treeBranchBits: 2, treeSegmentBits: 2, flushEveryMs: 0, ...more,
});

describe('log file persistence', () => {
  it('restores objects, hints, meta, epoch and trees across close and reopen', async () => {
    const path = await dir();
    const e = await PureEngine.open(opts(path, { epoch: undefined }));
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
    const again = await PureEngine.open(opts(path, { epoch: 'ffffffffffffffff' }));
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
    const path = await dir();
    const e = await PureEngine.open(opts(path));
    for (let i = 0; i < 30; i++) await put(e, `k${i}`, 'v');
    const roots = e.treeRoots();
    await e.close();
    const f = await PureEngine.open(opts(path, { treeBranchBits: 5, treeSegmentBits: 4 }));
    expect(f.treeBranchBits).toBe(5);
    expect(await f.metaGet('engine.treeBranchBits')).toEqual(Buffer.from([5]));
    expect(f.treeRoots()).toEqual(roots);
    expect(f.treeBranches(0).length).toBe(32 * 8);
    await f.close();
  });

  it('refuses another nodeId or partitionBits with CONFIG_MISMATCH', async () => {
    const path = await dir();
    await (await PureEngine.open(opts(path))).close();
    await expectCode(PureEngine.open(opts(path, { nodeId: 'n2' })), 'CONFIG_MISMATCH');
    await expectCode(PureEngine.open(opts(path, { partitionBits: 4 })), 'CONFIG_MISMATCH');
    await (await PureEngine.open(opts(path))).close(); // still fine afterwards
  });

  it('truncates a torn last entry at replay', async () => {
    const path = await dir();
    const e = await PureEngine.open(opts(path));
    const r = await put(e, 'k', 'v', null, { durable: true });
    await e.close();
    const file = join(path, LOG_FILE);
    const good = (await stat(file)).size;
    for (const torn of [
      Buffer.from([0, 0, 0, 0, 20, 1, 2, 3]), // key cut short
      Buffer.concat([Buffer.from([0, 0, 0, 0, 1, 7, 0, 0, 0, 9]), Buffer.from('abc')]), // value cut short
      Buffer.alloc(64), // zero-filled tail
      Buffer.from([0, 0]),
    ]) {
      await appendFile(file, torn);
      const f = await PureEngine.open(opts(path));
      expect((await stat(file)).size).toBe(good);
      expect(await f.get(b('b'), b('k'))).toEqual(r);
      await f.close();
    }
    // Writing after a repaired tail works and survives another reopen.
    await appendFile(file, Buffer.from([1, 0]));
    const g = await PureEngine.open(opts(path));
    const r2 = await put(g, 'k2', 'v2');
    await g.close();
    const h = await PureEngine.open(opts(path));
    expect(await h.get(b('b'), b('k2'))).toEqual(r2);
    await h.close();
  });

  it('makes durable writes reach the file before they resolve, sharing fsyncs', async () => {
    const path = await dir();
    const e = await PureEngine.open(opts(path));
    const file = join(path, LOG_FILE);
    const r = await put(e, 'k', 'durable-value', null, { durable: true });
    expect((await readFile(file)).includes(r)).toBe(true);

    const probe = await open(file, 'r');
    const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
    await probe.close();
    const spy = vi.spyOn(proto, 'datasync');
    const writes = Array.from({ length: 50 }, (_, i) => put(e, `g${i}`, 'v', null, { durable: true }));
    const results = await Promise.all(writes);
    expect(spy.mock.calls.length).toBeGreaterThan(0);
    expect(spy.mock.calls.length).toBeLessThanOrEqual(2); // group commit, not 50 fsyncs
    const data = await readFile(file);
    for (const x of results) expect(data.includes(x)).toBe(true);
    await e.close();
  });

  it('writes non-durable data on flush(), on the background timer and on close()', async () => {
    const path = await dir();
    const file = join(path, LOG_FILE);
    const e = await PureEngine.open(opts(path, { flushEveryMs: 10 }));
    const a = await put(e, 'a', 'x');
    await new Promise((r) => setTimeout(r, 80));
    expect((await readFile(file)).includes(a)).toBe(true);
    await e.close();

    const f = await PureEngine.open(opts(path));
    const c = await put(f, 'c', 'y');
    expect((await readFile(file)).includes(c)).toBe(false); // no timer (flushEveryMs 0)
    await f.flush();
    expect((await readFile(file)).includes(c)).toBe(true);
    const d = await put(f, 'd', 'z');
    await f.close();
    expect((await readFile(file)).includes(d)).toBe(true);
  });

  it('compacts an overgrown log at open', async () => {
    const path = await dir();
    const file = join(path, LOG_FILE);
    const e = await PureEngine.open(opts(path));
    let r = await put(e, 'big', 'x');
    const value = 'v'.repeat(100_000);
    for (let i = 0; i < 60; i++) r = await put(e, 'big', value + i, recordContextBytes(r));
    await e.close();
    expect((await stat(file)).size).toBeGreaterThan(6_000_000);
    const f = await PureEngine.open(opts(path));
    expect((await stat(file)).size).toBeLessThan(200_000);
    expect(await f.get(b('b'), b('big'))).toEqual(r);
    await f.close();
    const g = await PureEngine.open(opts(path));
    expect(await g.get(b('b'), b('big'))).toEqual(r);
    await g.close();
  });

  it('reports a directory it cannot create as IO', async () => {
    const path = await dir();
    await writeFile(join(path, 'file'), 'x');
    await expectCode(PureEngine.open(opts(join(path, 'file', 'sub'))), 'IO');
  });

  it('keeps nothing between memory-only engines', async () => {
    const e = await PureEngine.open({ nodeId: 'n1' });
    await put(e, 'k', 'v');
    await e.close();
    const f = await PureEngine.open({ nodeId: 'n1' });
    expect(await f.get(b('b'), b('k'))).toBeNull();
  });
});
