// Storage of the pure engine: three ordered in-memory maps (objects, hints,
// meta), optionally persisted to an append-only log that is replayed at open.
//
// Log entry: u8 tree ‖ u32 keyLen ‖ key ‖ u32 valLen (0xFFFFFFFF = delete) ‖ value.
//
// Storage model for the simulator (SimDisk, test/sim): the same log, kept in
// a SimDisk object instead of a file. The maps are the volatile layer (what
// reads see, sled's page cache); a write is only appended to the pending log
// entries, which reach the SimDisk (the durable layer) when a flush runs —
// flush(), a durable write's flush, or the engine's periodic flush on the
// simulator's clock. crash() drops the maps and the pending entries; a new
// Store opened on the same SimDisk replays only what was flushed, so every
// write not flushed before a crash is lost, as in a process kill or power loss.
import { mkdir, open, readFile, rename, truncate, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineError } from '../types.js';

export const TREE_OBJECTS = 0;
export const TREE_HINTS = 1;
export const TREE_META = 2;
export type TreeId = typeof TREE_OBJECTS | typeof TREE_HINTS | typeof TREE_META;
const TREE_COUNT = 3;
const DELETE = 0xffffffff;

export const LOG_FILE = 'ringkv-pure.log';

// Keys are held as latin1 strings: one char per byte, so JS string order is bytewise order
// (shorter prefix first), and a Map lookup needs no custom hashing.
function str(key: Buffer): string {
  return key.toString('latin1');
}

/** A string greater than every key starting with `prefix` and smaller than every later key. */
export function prefixEnd(prefix: Buffer): Buffer | null {
  // Next byte string after all extensions of prefix: increment the last byte that is not 0xFF.
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      b[i]!++;
      return b.subarray(0, i + 1);
    }
  }
  return null;
}

interface Entry {
  key: Buffer;
  value: Buffer;
}

/** First index in sorted `a` whose element is >= k. */
function lowerBound(a: string[], k: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const BLOCK = 512;

/**
 * Sorted map: sorted keys in blocks of at most 2 × BLOCK (one flat array makes
 * inserts O(n): 100k keys took seconds), plus a Map for point lookups.
 */
class SortedMap {
  /** Non-empty blocks, each sorted, all in order. */
  private readonly blocks: string[][] = [];
  private readonly map = new Map<string, Entry>();

  get size(): number {
    return this.map.size;
  }

  get(k: string): Entry | undefined {
    return this.map.get(k);
  }

  set(k: string, e: Entry): void {
    if (!this.map.has(k)) this.insertKey(k);
    this.map.set(k, e);
  }

  delete(k: string): boolean {
    if (!this.map.delete(k)) return false;
    const bi = this.blockFor(k);
    const block = this.blocks[bi]!;
    block.splice(lowerBound(block, k), 1);
    if (block.length === 0) this.blocks.splice(bi, 1);
    return true;
  }

  /** The block that holds (or would hold) k: the last one whose first key is <= k. */
  private blockFor(k: string): number {
    let lo = 0;
    let hi = this.blocks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.blocks[mid]![0]! <= k) lo = mid + 1;
      else hi = mid;
    }
    return Math.max(0, lo - 1);
  }

  private insertKey(k: string): void {
    if (this.blocks.length === 0) {
      this.blocks.push([k]);
      return;
    }
    const bi = this.blockFor(k);
    const block = this.blocks[bi]!;
    block.splice(lowerBound(block, k), 0, k);
    if (block.length > 2 * BLOCK) this.blocks.splice(bi + 1, 0, block.splice(BLOCK));
  }

  /** Entries with start <= key < end (end null = unbounded), at most `limit`. */
  range(start: string, end: string | null, limit: number): Entry[] {
    const out: Entry[] = [];
    if (this.blocks.length === 0) return out;
    let bi = this.blockFor(start);
    let i = lowerBound(this.blocks[bi]!, start);
    for (; bi < this.blocks.length; bi++, i = 0) {
      const block = this.blocks[bi]!;
      for (; i < block.length; i++) {
        const k = block[i]!;
        if (out.length >= limit || (end !== null && k >= end)) return out;
        out.push(this.map.get(k)!);
      }
    }
    return out;
  }

  *entries(): Generator<Entry> {
    for (const block of this.blocks) for (const k of block) yield this.map.get(k)!;
  }
}

function encodeEntry(tree: TreeId, key: Buffer, value: Buffer | null): Buffer {
  const out = Buffer.allocUnsafe(1 + 4 + key.length + 4 + (value?.length ?? 0));
  out[0] = tree;
  out.writeUInt32BE(key.length, 1);
  key.copy(out, 5);
  const off = 5 + key.length;
  out.writeUInt32BE(value === null ? DELETE : value.length, off);
  value?.copy(out, off + 4);
  return out;
}

function ioError(err: unknown): EngineError {
  return new EngineError('IO', `storage failed: ${err instanceof Error ? err.message : String(err)}`);
}

/**
 * The durable layer of a simulated node: the flushed log, surviving crash() of
 * the Store (and engine) that wrote it. Only what a flush appended is here.
 */
export class SimDisk {
  private readonly chunks: Buffer[] = [];
  /** Flushes that wrote something (for tests and traces). */
  flushes = 0;
  /** @internal Appends one flushed batch of log entries. */
  append(bytes: Buffer): void {
    this.chunks.push(Buffer.from(bytes));
    this.flushes++;
  }
  /** The whole durable log. */
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

export class Store {
  private readonly maps: SortedMap[] = Array.from({ length: TREE_COUNT }, () => new SortedMap());
  /** Log entries not yet written to the file. */
  private pending: Buffer[] = [];
  private inFlight: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  /** After a failed write the file no longer matches memory: refuse further writes. */
  private failure: EngineError | null = null;

  private constructor(
    private fh: FileHandle | null,
    private disk: SimDisk | null = null,
  ) {}

  /** A Store on a simulated disk: replays what was flushed to it (see the storage model above). */
  static openSim(disk: SimDisk): Store {
    const store = new Store(null, disk);
    const data = disk.bytes();
    // Flushes append whole entries, so the log is never torn.
    if (store.replay(data) !== data.length) throw new EngineError('CORRUPT_RECORD', 'simulated disk holds a torn log');
    return store;
  }

  /** Memory only when `dir` is undefined; otherwise replay (and maybe compact) the log in `dir`. */
  static async open(dir: string | undefined): Promise<Store> {
    if (dir === undefined) return new Store(null);
    try {
      await mkdir(dir, { recursive: true });
      const file = join(dir, LOG_FILE);
      const store = new Store(null);
      let data: Buffer;
      try {
        data = await readFile(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        data = Buffer.alloc(0);
      }
      const good = store.replay(data);
      if (good < data.length) await truncate(file, good); // torn last entry
      if (good > 2 * store.liveBytes() + (4 << 20)) await store.compact(dir, file);
      store.fh = await open(file, 'a');
      return store;
    } catch (err) {
      throw err instanceof EngineError ? err : ioError(err);
    }
  }

  /** Apply log entries; returns the length of the valid prefix (the rest is a torn tail). */
  private replay(data: Buffer): number {
    let off = 0;
    while (off < data.length) {
      if (off + 9 > data.length) break;
      const tree = data[off]!;
      const keyLen = data.readUInt32BE(off + 1);
      // Every valid key is non-empty; a zero-filled tail (a common crash artifact) stops here.
      if (tree >= TREE_COUNT || keyLen === 0 || off + 9 + keyLen > data.length) break;
      const key = Buffer.from(data.subarray(off + 5, off + 5 + keyLen));
      const valLen = data.readUInt32BE(off + 5 + keyLen);
      let next = off + 9 + keyLen;
      if (valLen === DELETE) {
        this.maps[tree]!.delete(str(key));
      } else {
        if (next + valLen > data.length) break;
        this.maps[tree]!.set(str(key), { key, value: Buffer.from(data.subarray(next, next + valLen)) });
        next += valLen;
      }
      off = next;
    }
    return off;
  }

  private liveBytes(): number {
    let n = 0;
    for (const m of this.maps) for (const e of m.entries()) n += 9 + e.key.length + e.value.length;
    return n;
  }

  /** Rewrite the log with only live entries: write a temp file, fsync, rename over. */
  private async compact(dir: string, file: string): Promise<void> {
    const tmp = `${file}.tmp`;
    const fh = await open(tmp, 'w');
    try {
      for (let t = 0; t < TREE_COUNT; t++) {
        for (const e of this.maps[t]!.entries()) await writeAll(fh, encodeEntry(t as TreeId, e.key, e.value));
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    const d = await open(dir, 'r');
    try {
      await d.sync(); // make the rename durable
    } finally {
      await d.close();
    }
  }

  get(tree: TreeId, key: Buffer): Buffer | undefined {
    return this.maps[tree]!.get(str(key))?.value;
  }

  /**
   * Applies in memory at once (readers see it); reaches the file on the next flush.
   * Takes ownership of `key` and `value`: callers pass buffers nobody else mutates.
   */
  put(tree: TreeId, key: Buffer, value: Buffer): void {
    if (this.failure) throw this.failure;
    this.maps[tree]!.set(str(key), { key, value });
    if (this.persistent) this.pending.push(encodeEntry(tree, key, value));
  }

  delete(tree: TreeId, key: Buffer): boolean {
    if (this.failure) throw this.failure;
    const existed = this.maps[tree]!.delete(str(key));
    if (existed && this.persistent) this.pending.push(encodeEntry(tree, key, null));
    return existed;
  }

  /** Entries with start <= key < end (end null = unbounded), in key order. */
  range(tree: TreeId, start: Buffer, end: Buffer | null, limit = Infinity): Array<{ key: Buffer; value: Buffer }> {
    return this.maps[tree]!.range(str(start), end === null ? null : str(end), limit);
  }

  entries(tree: TreeId): Generator<{ key: Buffer; value: Buffer }> {
    return this.maps[tree]!.entries();
  }

  get persistent(): boolean {
    return this.fh !== null || this.disk !== null;
  }

  hasPending(): boolean {
    return this.pending.length > 0;
  }

  /**
   * Write and fsync everything put so far. Group commit: callers arriving while a
   * flush runs share the single flush queued behind it.
   */
  flush(): Promise<void> {
    if (!this.persistent) return Promise.resolve();
    if (this.queued) return this.queued;
    if (!this.inFlight) return this.startFlush();
    this.queued = this.inFlight
      .catch(() => undefined)
      .then(() => {
        this.queued = null;
        return this.startFlush();
      });
    return this.queued;
  }

  private startFlush(): Promise<void> {
    const p = this.writePending().finally(() => {
      if (this.inFlight === p) this.inFlight = null;
    });
    this.inFlight = p;
    return p;
  }

  private async writePending(): Promise<void> {
    if (this.failure) throw this.failure;
    const bufs = this.pending;
    this.pending = [];
    if (bufs.length === 0) return;
    if (this.disk) {
      // Durable at once: the batch is on the simulated disk before the flush resolves.
      this.disk.append(Buffer.concat(bufs));
      return;
    }
    if (!this.fh) return;
    try {
      await writeAll(this.fh, Buffer.concat(bufs));
      await this.fh.datasync();
    } catch (err) {
      this.failure = ioError(err);
      throw this.failure;
    }
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      const fh = this.fh;
      this.fh = null;
      this.disk = null;
      if (fh) await fh.close().catch(() => undefined);
    }
  }

  /**
   * Simulated crash: the pending (unflushed) entries never reach the disk and
   * this Store stops writing to it; its maps are dropped by the caller.
   */
  crash(): void {
    if (this.fh) throw new EngineError('INVALID_ARGUMENT', 'crash() is for a Store on a simulated disk');
    this.pending = [];
    this.disk = null;
  }
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}
