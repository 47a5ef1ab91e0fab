// The backup file format (docs/backup.md): a streaming, versioned,
// checksummed sequence of whole object records.
//
//   header   "RINGKVBK" (8) ‖ u16 version = 1 ‖ u32 metaLen ‖ meta (UTF-8 JSON)
//   entry    u8 0x01 ‖ u32 len ‖ payload (len) ‖ check (16)
//            payload = u16 bucketLen ‖ bucket ‖ u32 keyLen ‖ key ‖ record
//            check   = blake3(0x01 ‖ len ‖ payload)[0..16]
//   trailer  u8 0xFF ‖ u64 count ‖ digest (32) ‖ "RKVBKEND" (8)
//            digest  = blake3 of every byte before the trailer
//
// Integers big-endian. Nothing may follow the trailer. A file without a
// trailer is incomplete (truncated, or a backup that did not finish); an
// entry whose check fails is corrupt; either is refused with the byte
// offset where it went wrong.
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { blake3 } from '@noble/hashes/blake3.js';

export const MAGIC = Buffer.from('RINGKVBK', 'latin1');
export const END_MAGIC = Buffer.from('RKVBKEND', 'latin1');
export const FORMAT_VERSION = 1;
const ENTRY = 0x01;
const TRAILER = 0xff;
const CHECK_BYTES = 16;
const DIGEST_BYTES = 32;
const TRAILER_BYTES = 1 + 8 + DIGEST_BYTES + END_MAGIC.length;
/** Largest meta document and entry payload accepted (a record is at most maxSiblings × maxValueBytes; 1 GiB covers any a node accepts in practice). */
export const MAX_META_BYTES = 64 * 1024;
export const MAX_ENTRY_BYTES = 1024 * 1024 * 1024;

export interface BackupMeta {
  /** When the backup started (ms since the epoch). */
  createdAtMs: number;
  /** The buckets backed up (UTF-8 names), or null for every bucket. */
  buckets: string[] | null;
  /** Whether all-tombstone records (deletes not reaped yet) are included. */
  tombstones: boolean;
  /** The cluster the backup was taken from, as far as the tool knew (its node list). */
  source?: string;
}

export interface BackupEntry {
  bucket: Buffer;
  key: Buffer;
  record: Buffer;
}

/** A backup file that is not a complete, intact backup. */
export class BackupFormatError extends Error {
  constructor(
    message: string,
    /** Byte offset in the file where the problem is. */
    readonly offset: number,
  ) {
    super(`${message} (at byte ${offset})`);
    this.name = 'BackupFormatError';
  }
}

type Hasher = ReturnType<typeof blake3.create>;

function headerBytes(meta: BackupMeta): Buffer {
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  if (json.length > MAX_META_BYTES) throw new Error(`backup meta over ${MAX_META_BYTES} bytes`);
  const head = Buffer.alloc(MAGIC.length + 2 + 4);
  MAGIC.copy(head, 0);
  head.writeUInt16BE(FORMAT_VERSION, MAGIC.length);
  head.writeUInt32BE(json.length, MAGIC.length + 2);
  return Buffer.concat([head, json]);
}

export function entryBytes(e: BackupEntry): Buffer {
  if (e.bucket.length > 0xffff) throw new Error('bucket name too long for a backup entry');
  const payloadLen = 2 + e.bucket.length + 4 + e.key.length + e.record.length;
  if (payloadLen > MAX_ENTRY_BYTES) throw new Error(`an entry of ${payloadLen} bytes is over the format's ${MAX_ENTRY_BYTES}`);
  const out = Buffer.allocUnsafe(1 + 4 + payloadLen + CHECK_BYTES);
  out[0] = ENTRY;
  out.writeUInt32BE(payloadLen, 1);
  let off = 5;
  out.writeUInt16BE(e.bucket.length, off);
  off += 2;
  off += e.bucket.copy(out, off);
  out.writeUInt32BE(e.key.length, off);
  off += 4;
  off += e.key.copy(out, off);
  off += e.record.copy(out, off);
  Buffer.from(blake3(out.subarray(0, off)).subarray(0, CHECK_BYTES)).copy(out, off);
  return out;
}

/**
 * Writes a backup file: header, entries, and (finish) the trailer. Writes
 * go straight to the file (bounded memory); `sync` makes what was written
 * durable (before a checkpoint names it).
 */
export class BackupWriter {
  private count: number;
  private bytes: number;
  private finished = false;

  private constructor(
    private readonly fd: number,
    private readonly hasher: Hasher,
    count: number,
    bytes: number,
  ) {
    this.count = count;
    this.bytes = bytes;
  }

  /** A new file (truncated if it exists) with its header. */
  static create(path: string, meta: BackupMeta): BackupWriter {
    const fd = openSync(path, 'w');
    const w = new BackupWriter(fd, blake3.create(), 0, 0);
    w.write(headerBytes(meta));
    return w;
  }

  /**
   * Continues a file a checkpoint described: its first `bytes` bytes are
   * read and checked again (header and whole entries, re-hashing them), the
   * rest (written after the checkpoint) is cut off.
   */
  static resume(path: string, bytes: number, count: number): { writer: BackupWriter; meta: BackupMeta } {
    const fd = openSync(path, 'r+');
    try {
      if (fstatSync(fd).size < bytes) throw new BackupFormatError('the partial file is shorter than its checkpoint says', fstatSync(fd).size);
      const hasher = blake3.create();
      const reader = new BackupReader(fd, bytes, (chunk) => hasher.update(chunk));
      const meta = reader.readHeader();
      let seen = 0;
      while (reader.offset < bytes) {
        if (reader.readEntry() === null) throw new BackupFormatError('a trailer inside a partial file', reader.offset);
        seen++;
      }
      if (reader.offset !== bytes || seen !== count) throw new BackupFormatError(`the checkpoint (${count} entries, ${bytes} bytes) does not match the file (${seen} entries)`, reader.offset);
      ftruncateSync(fd, bytes);
      return { writer: new BackupWriter(fd, hasher, count, bytes), meta };
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  get entries(): number {
    return this.count;
  }

  get size(): number {
    return this.bytes;
  }

  add(e: BackupEntry): void {
    this.write(entryBytes(e));
    this.count++;
  }

  sync(): void {
    fsyncSync(this.fd);
  }

  /** Writes the trailer, syncs and closes: the file is complete. */
  finish(): void {
    const trailer = Buffer.alloc(TRAILER_BYTES);
    trailer[0] = TRAILER;
    trailer.writeBigUInt64BE(BigInt(this.count), 1);
    Buffer.from(this.hasher.digest()).copy(trailer, 9);
    END_MAGIC.copy(trailer, 9 + DIGEST_BYTES);
    writeAll(this.fd, trailer, this.bytes);
    this.bytes += trailer.length;
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.finished = true;
  }

  /** Closes without a trailer (the file stays incomplete). */
  abandon(): void {
    if (!this.finished) closeSync(this.fd);
    this.finished = true;
  }

  private write(bytes: Buffer): void {
    writeAll(this.fd, bytes, this.bytes);
    this.hasher.update(bytes);
    this.bytes += bytes.length;
  }
}

/** Writes at an explicit position: a resumed file's descriptor was read with positions, its own offset is still 0. */
function writeAll(fd: number, bytes: Buffer, position: number): void {
  for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off, position + off);
}

/**
 * Reads a backup file front to back with a bounded buffer, checking every
 * entry as it goes; `readEntry` returns null at the trailer, which it
 * checks (count, digest, nothing after it). `onBytes` sees every byte
 * before the trailer (the resume path hashes them).
 */
export class BackupReader {
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  private fileOffset = 0;
  private readonly hasher: Hasher = blake3.create();
  private count = 0;
  /** Offset of the next unread byte. */
  offset = 0;

  constructor(
    private readonly fd: number,
    private readonly end: number = fstatSync(fd).size,
    private readonly onBytes?: (chunk: Uint8Array) => void,
  ) {}

  static open(path: string): { reader: BackupReader; close(): void } {
    const fd = openSync(path, 'r');
    return { reader: new BackupReader(fd), close: () => closeSync(fd) };
  }

  readHeader(): BackupMeta {
    const head = this.take(MAGIC.length + 2 + 4, 'header');
    if (!head.subarray(0, MAGIC.length).equals(MAGIC)) throw new BackupFormatError('not a ringkv backup (bad magic)', 0);
    const version = head.readUInt16BE(MAGIC.length);
    if (version !== FORMAT_VERSION) throw new BackupFormatError(`backup format version ${version} is not supported (this ringkv reads version ${FORMAT_VERSION})`, MAGIC.length);
    const metaLen = head.readUInt32BE(MAGIC.length + 2);
    if (metaLen > MAX_META_BYTES) throw new BackupFormatError('header meta too long', MAGIC.length + 2);
    const json = this.take(metaLen, 'header');
    this.hashed(head);
    this.hashed(json);
    try {
      return JSON.parse(json.toString('utf8')) as BackupMeta;
    } catch {
      throw new BackupFormatError('header meta is not JSON', MAGIC.length + 6);
    }
  }

  /** The next entry, checked; null at a (checked) trailer. */
  readEntry(): BackupEntry | null {
    const at = this.offset;
    const kind = this.take(1, 'entry')[0];
    if (kind === TRAILER) {
      const rest = this.take(TRAILER_BYTES - 1, 'trailer');
      const count = rest.readBigUInt64BE(0);
      if (!rest.subarray(8 + DIGEST_BYTES).equals(END_MAGIC)) throw new BackupFormatError('bad trailer', at);
      if (count !== BigInt(this.count)) throw new BackupFormatError(`the trailer counts ${count} entries, the file holds ${this.count}`, at);
      if (!Buffer.from(this.hasher.digest()).equals(rest.subarray(8, 8 + DIGEST_BYTES))) throw new BackupFormatError('the file digest does not match its trailer', at);
      if (this.offset !== this.end) throw new BackupFormatError('bytes after the trailer', this.offset);
      return null;
    }
    if (kind !== ENTRY) throw new BackupFormatError(`unknown entry kind 0x${kind!.toString(16)}`, at);
    const lenBytes = this.take(4, 'entry');
    const len = lenBytes.readUInt32BE(0);
    if (len > MAX_ENTRY_BYTES || len < 2 + 4) throw new BackupFormatError(`bad entry length ${len}`, at);
    const payload = this.take(len, 'entry');
    const check = this.take(CHECK_BYTES, 'entry');
    const expected = blake3(Buffer.concat([Buffer.from([ENTRY]), lenBytes, payload])).subarray(0, CHECK_BYTES);
    if (!Buffer.from(expected).equals(check)) throw new BackupFormatError(`entry ${this.count + 1} is corrupt (checksum mismatch)`, at);
    const bucketLen = payload.readUInt16BE(0);
    if (2 + bucketLen + 4 > len) throw new BackupFormatError(`entry ${this.count + 1}: bad bucket length`, at);
    const keyLen = payload.readUInt32BE(2 + bucketLen);
    if (2 + bucketLen + 4 + keyLen > len) throw new BackupFormatError(`entry ${this.count + 1}: bad key length`, at);
    this.hashed(Buffer.from([ENTRY]));
    this.hashed(lenBytes);
    this.hashed(payload);
    this.hashed(check);
    this.count++;
    return {
      bucket: Buffer.from(payload.subarray(2, 2 + bucketLen)),
      key: Buffer.from(payload.subarray(2 + bucketLen + 4, 2 + bucketLen + 4 + keyLen)),
      record: Buffer.from(payload.subarray(2 + bucketLen + 4 + keyLen)),
    };
  }

  get entries(): number {
    return this.count;
  }

  private hashed(bytes: Uint8Array): void {
    this.hasher.update(bytes);
    this.onBytes?.(bytes);
  }

  /** The next n bytes (a view valid until the next call); a file that ends first is truncated. */
  private take(n: number, what: string): Buffer {
    const have = this.buf.length - (this.offset - this.bufStart);
    if (have < n) {
      const keep = this.buf.subarray(this.offset - this.bufStart);
      const size = Math.max(n, 1024 * 1024);
      const next = Buffer.allocUnsafe(size);
      keep.copy(next, 0);
      let filled = keep.length;
      while (filled < n && this.fileOffset < this.end) {
        const want = Math.min(size - filled, this.end - this.fileOffset);
        const got = readSync(this.fd, next, filled, want, this.fileOffset);
        if (got === 0) break;
        filled += got;
        this.fileOffset += got;
      }
      this.buf = next.subarray(0, filled);
      this.bufStart = this.offset;
      if (filled < n) throw new BackupFormatError(`the file ends inside the ${what}: truncated, or a backup that did not finish`, this.offset + filled);
    }
    const start = this.offset - this.bufStart;
    this.offset += n;
    return this.buf.subarray(start, start + n);
  }
}
