// The opaque cursor of a listing page (docs/listing.md "Cursors"): where
// the next page starts, self-contained so that it survives a restart of the
// node that made it and works through any node of the cluster. Pure.
//
//   u8  version = 1
//   u8  kind            1 keys, 2 objects, 3 buckets
//   u8  partitionBits   of the cluster that made it
//   u32 partition       the partition the next page starts in
//   u16 afterLen        0, or the disk key the next page starts strictly after
//   ... after           position (8) ‖ bucket ‖ 0x00 ‖ key
//   u8  lastLen         buckets listing: the last bucket name listed (else 0)
//   ... last
//   8   check           blake3(DOMAIN ‖ kind ‖ scopeLen ‖ scope ‖ the bytes above)[0..8]
//
// `scope` is the listed bucket (empty for a listing of every bucket), so a
// cursor of one listing is refused by another. The check finds garbled
// cursors; a forged one passes only if it is well formed, and then it can
// only move the caller's own listing (every disk key it may name is checked
// against the bucket and the partition).
import { blake3 } from '@noble/hashes/blake3.js';

export const CURSOR_VERSION = 1;
export type ListingKind = 'keys' | 'objects' | 'buckets';
const KIND_CODES: Record<ListingKind, number> = { keys: 1, objects: 2, buckets: 3 };
const DOMAIN = Buffer.from('ringkv list cursor v1', 'utf8');
const CHECK_BYTES = 8;
/** Longest cursor text accepted (a disk key of the hard maximum key length, base64url). */
export const MAX_CURSOR_CHARS = 90_000;

export interface ListCursor {
  partition: number;
  /** Disk key the next page starts strictly after (null: the partition's start). */
  after: Buffer | null;
  /** Buckets listing: the last bucket listed (the next page lists names after it). */
  lastBucket: Buffer | null;
}

export interface CursorScope {
  kind: ListingKind;
  /** The listed bucket, or null for every bucket. */
  bucket: Buffer | null;
  partitionBits: number;
}

/** A cursor that is not one this listing made. */
export class CursorError extends Error {
  readonly code = 'BAD_REQUEST';
  constructor(message: string) {
    super(`cursor: ${message}`);
    this.name = 'CursorError';
  }
}

function check(scope: CursorScope, body: Buffer): Buffer {
  const bucket = scope.bucket ?? Buffer.alloc(0);
  const head = Buffer.from([KIND_CODES[scope.kind], bucket.length]);
  return Buffer.from(blake3(Buffer.concat([DOMAIN, head, bucket, body])).subarray(0, CHECK_BYTES));
}

export function encodeCursor(scope: CursorScope, c: ListCursor): string {
  const after = c.after ?? Buffer.alloc(0);
  const last = c.lastBucket ?? Buffer.alloc(0);
  const head = Buffer.alloc(9);
  head[0] = CURSOR_VERSION;
  head[1] = KIND_CODES[scope.kind];
  head[2] = scope.partitionBits;
  head.writeUInt32BE(c.partition, 3);
  head.writeUInt16BE(after.length, 7);
  const body = Buffer.concat([head, after, Buffer.from([last.length]), last]);
  return Buffer.concat([body, check(scope, body)]).toString('base64url');
}

/**
 * Decodes a cursor of this listing. `diskKeyProblem` checks a disk key
 * (that its position is its bkey's hash and lies in the partition, and its
 * bucket is the scope's): it knows the hash function, this module does not.
 */
export function decodeCursor(text: string, scope: CursorScope, diskKeyProblem: (partition: number, diskKey: Buffer) => string | null): ListCursor {
  if (text.length === 0 || text.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(text) || text.length % 4 === 1) {
    throw new CursorError('not a cursor a listing returned (bad base64url)');
  }
  const bytes = Buffer.from(text, 'base64url');
  if (bytes.length < 9 + 1 + CHECK_BYTES) throw new CursorError('too short');
  if (bytes[0] !== CURSOR_VERSION) throw new CursorError(`version ${bytes[0]} is not supported (this node reads version ${CURSOR_VERSION})`);
  const body = bytes.subarray(0, bytes.length - CHECK_BYTES);
  if (!check(scope, body).equals(bytes.subarray(bytes.length - CHECK_BYTES))) {
    throw new CursorError('garbled, or made by a listing of another bucket or kind');
  }
  // Past the check: the bytes are as a listing wrote them, so a bad length below is a cursor of another format.
  if (bytes[1] !== KIND_CODES[scope.kind]) throw new CursorError('made by another kind of listing');
  if (bytes[2] !== scope.partitionBits) throw new CursorError(`made for a ring of 2^${bytes[2]} partitions, not 2^${scope.partitionBits}`);
  const partition = body.readUInt32BE(3);
  if (partition >= 2 ** scope.partitionBits) throw new CursorError(`partition ${partition} out of range`);
  const afterLen = body.readUInt16BE(7);
  if (9 + afterLen + 1 > body.length) throw new CursorError('truncated');
  const after = afterLen > 0 ? Buffer.from(body.subarray(9, 9 + afterLen)) : null;
  const lastLen = body[9 + afterLen]!;
  if (9 + afterLen + 1 + lastLen !== body.length) throw new CursorError('bad length');
  const lastBucket = lastLen > 0 ? Buffer.from(body.subarray(9 + afterLen + 1)) : null;
  if (after !== null) {
    const problem = diskKeyProblem(partition, after);
    if (problem !== null) throw new CursorError(problem);
  }
  return { partition, after, lastBucket };
}
