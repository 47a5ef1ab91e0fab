// The pure engine's log file: replay of torn tails, group-commit fsyncs, when
// non-durable writes reach the file, compaction, and memory-only mode. What any
// data directory keeps across reopen is tested for both kinds in test/engine.
import { afterEach, describe, it, expect, vi } from 'vitest';
import { appendFile, open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PureEngine, recordContextBytes } from '../../src/engine/pure/index.js';
import { LOG_FILE } from '../../src/engine/pure/store.js';
import type { EngineOptions } from '../../src/engine/types.js';
import { EPOCH, b, put, tempDir } from './helpers.js';

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
  it('truncates a torn last entry at replay', async () => {
    const path = await dir();
    const e = await PureEngine.open(opts(path));
    const r = await put(e, 'k', 'v', null, { durable: true });
    await e.close();
    const file = join(path, LOG_FILE);
    // Each open logs an entry of its own (it clears the clean-shutdown mark): measure it on a clean reopen.
    const closedBytes = (await stat(file)).size;
    const probe = await PureEngine.open(opts(path));
    const openBytes = (await stat(file)).size - closedBytes;
    await probe.close();
    let good = (await stat(file)).size;
    for (const torn of [
      Buffer.from([0, 0, 0, 0, 20, 1, 2, 3]), // key cut short
      Buffer.concat([Buffer.from([0, 0, 0, 0, 1, 7, 0, 0, 0, 9]), Buffer.from('abc')]), // value cut short
      Buffer.alloc(64), // zero-filled tail
      Buffer.from([0, 0]),
    ]) {
      await appendFile(file, torn);
      const f = await PureEngine.open(opts(path));
      // The torn tail is gone; only the open's own entry was added.
      expect((await stat(file)).size).toBe(good + openBytes);
      expect(await f.get(b('b'), b('k'))).toEqual(r);
      await f.close();
      good = (await stat(file)).size;
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

  it('keeps nothing between memory-only engines', async () => {
    const e = await PureEngine.open({ nodeId: 'n1' });
    await put(e, 'k', 'v');
    await e.close();
    const f = await PureEngine.open({ nodeId: 'n1' });
    expect(await f.get(b('b'), b('k'))).toBeNull();
  });
});
