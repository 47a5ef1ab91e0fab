// The backup file format (src/backup/format.ts) on real files: a round
// trip, every corruption and truncation refused with where it is, and a
// resumed file identical to one written in one go.
import { readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { BackupFormatError, BackupReader, BackupWriter, type BackupEntry, type BackupMeta } from '../../src/backup/format.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('ringkv-backup-format-');
afterAll(() => dir.remove());

const meta: BackupMeta = { createdAtMs: 1_700_000_000_000, buckets: null, tombstones: true };
const entries: BackupEntry[] = Array.from({ length: 40 }, (_, i) => ({
  bucket: Buffer.from(`b${i % 3}`),
  key: i === 7 ? Buffer.from([0xff, 0, 1]) : Buffer.from(`key-${i}`),
  record: Buffer.alloc(10 + i * 13, i),
}));

function write(path: string, list = entries): void {
  const w = BackupWriter.create(path, meta);
  for (const e of list) w.add(e);
  w.finish();
}

function readAll(path: string): { meta: BackupMeta; entries: BackupEntry[] } {
  const { reader, close } = BackupReader.open(path);
  try {
    const m = reader.readHeader();
    const out: BackupEntry[] = [];
    for (let e = reader.readEntry(); e !== null; e = reader.readEntry()) out.push(e);
    return { meta: m, entries: out };
  } finally {
    close();
  }
}

describe('backup format', () => {
  it('round-trips the meta and every entry, binary names included', () => {
    const path = `${dir.path}/a.bak`;
    write(path);
    const back = readAll(path);
    expect(back.meta).toEqual(meta);
    expect(back.entries).toEqual(entries);
    // An empty backup is a valid one too.
    write(`${dir.path}/empty.bak`, []);
    expect(readAll(`${dir.path}/empty.bak`).entries).toEqual([]);
  });

  it('refuses a file with any one byte changed, naming the offset', () => {
    const path = `${dir.path}/b.bak`;
    write(path);
    const good = readFileSync(path);
    // Every 29th byte (each entry several times), and bytes of the trailer.
    const offsets = [...Array.from({ length: Math.floor(good.length / 29) }, (_, i) => i * 29), good.length - 1, good.length - 20, good.length - 50];
    for (const at of offsets) {
      const bad = Buffer.from(good);
      bad[at] = bad[at]! ^ 0x40;
      writeFileSync(path, bad);
      expect(() => readAll(path), `byte ${at}`).toThrow(BackupFormatError);
    }
  });

  it('refuses a truncated file (at any length) and bytes after the trailer', () => {
    const path = `${dir.path}/c.bak`;
    write(path);
    const size = statSync(path).size;
    const good = readFileSync(path);
    for (const len of [0, 5, 20, 100, Math.floor(size / 2), size - 57, size - 1]) {
      writeFileSync(path, good.subarray(0, len));
      expect(() => readAll(path), `length ${len}`).toThrow(/truncated|ends inside|magic/);
    }
    writeFileSync(path, Buffer.concat([good, Buffer.from([0])]));
    expect(() => readAll(path)).toThrow(/after the trailer/);
  });

  it('refuses another format version and a file that is not a backup', () => {
    const path = `${dir.path}/d.bak`;
    write(path);
    const bad = readFileSync(path);
    bad.writeUInt16BE(2, 8);
    writeFileSync(path, bad);
    expect(() => readAll(path)).toThrow(/version 2 is not supported/);
    writeFileSync(path, 'hello, this is not a backup at all');
    expect(() => readAll(path)).toThrow(/not a ringkv backup/);
  });

  it('a resumed file (cut after a checkpoint, continued) is byte for byte the file written in one go', () => {
    const once = `${dir.path}/once.bak`;
    write(once);
    const partial = `${dir.path}/resumed.bak`;
    const w = BackupWriter.create(partial, meta);
    for (const e of entries.slice(0, 25)) w.add(e);
    w.sync();
    const checkpoint = { bytes: w.size, entries: w.entries };
    // Written after the checkpoint, then the process died: cut off on resume.
    for (const e of entries.slice(25, 30)) w.add(e);
    w.abandon();
    expect(statSync(partial).size).toBeGreaterThan(checkpoint.bytes);
    const { writer, meta: m } = BackupWriter.resume(partial, checkpoint.bytes, checkpoint.entries);
    expect(m).toEqual(meta);
    for (const e of entries.slice(25)) writer.add(e);
    writer.finish();
    expect(readFileSync(partial).equals(readFileSync(once))).toBe(true);
    // A checkpoint that does not match the file is refused.
    truncateSync(partial, 100);
    expect(() => BackupWriter.resume(partial, checkpoint.bytes, checkpoint.entries)).toThrow(BackupFormatError);
  });
});
