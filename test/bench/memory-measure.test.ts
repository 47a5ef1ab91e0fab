// What bench/memory.ts measures with: a process's resident memory from /proc,
// a directory's bytes from du, and the data set's keys.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KEY_BYTES, keyAt } from '../../bench/memory/keys.js';
import { diskUsage, processMemory } from '../../bench/memory/measure.js';
import { tempDir } from '../helpers/tmp.js';

describe('memory benchmark measurements', () => {
  it('sees resident memory grow when the process touches 64 MiB', () => {
    const before = processMemory(process.pid);
    const block = Buffer.alloc(64 * 2 ** 20, 1); // filled, so the pages are resident
    const after = processMemory(process.pid);
    expect(block[block.length - 1]).toBe(1);
    expect(after.rssBytes - before.rssBytes).toBeGreaterThan(32 * 2 ** 20);
    expect(after.peakRssBytes).toBeGreaterThanOrEqual(after.rssBytes);
  });

  it('fails clearly for a process that does not exist', () => {
    expect(() => processMemory(2 ** 30)).toThrow(/ENOENT/);
  });

  it('counts the bytes of the files in a directory', () => {
    const dir = tempDir('ringkv-measure-');
    try {
      const empty = diskUsage(dir.path);
      writeFileSync(join(dir.path, 'data'), Buffer.alloc(3 * 2 ** 20, 7));
      const full = diskUsage(dir.path);
      expect(full.apparentBytes - empty.apparentBytes).toBe(3 * 2 ** 20);
      expect(full.allocatedBytes - empty.allocatedBytes).toBeGreaterThanOrEqual(3 * 2 ** 20);
    } finally {
      dir.remove();
    }
    expect(() => diskUsage(join(dir.path, 'gone'))).toThrow(/du .* failed/);
  });

  it('writes every key of the data set exactly once, all of the stated length, not in sorted order', () => {
    for (const keys of [1, 1_000, 999_983 * 2]) {
      const sample = keys > 10_000 ? 10_000 : keys;
      const seen = new Set(Array.from({ length: sample }, (_, i) => keyAt(i, keys)));
      expect(seen.size).toBe(sample);
      for (const k of seen) expect(Buffer.byteLength(k)).toBe(KEY_BYTES);
    }
    const all = Array.from({ length: 1_000 }, (_, i) => keyAt(i, 1_000));
    expect(new Set(all).size).toBe(1_000);
    expect(all).not.toEqual([...all].sort());
  });
});
