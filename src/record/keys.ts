// Names, key identity and ring geometry (docs/engine.md "Names", "Ring
// position, partition, segment"); the Rust crate's keys.rs.
import { blake3 } from '@noble/hashes/blake3.js';
import { EngineError } from './errors.js';
import { bufferView } from '../util/bytes.js';

export const MAX_BUCKET_BYTES = 255;
/** The hard maximum key length (a cursor's key may be as long as this, whatever maxKeyBytes is). */
const HARD_MAX_KEY_BYTES = 65535;
const NODE_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;
const EPOCH_RE = /^[0-9a-f]{16}$/;

function asBuffer(v: unknown, what: string): Buffer {
  if (!(v instanceof Uint8Array)) throw new EngineError('INVALID_ARGUMENT', `${what} must be a Uint8Array`);
  return bufferView(v);
}

export function validateBucket(bucket: unknown): Buffer {
  const b = asBuffer(bucket, 'bucket');
  if (b.length < 1 || b.length > MAX_BUCKET_BYTES) {
    throw new EngineError('INVALID_ARGUMENT', `bucket must be 1..${MAX_BUCKET_BYTES} bytes`);
  }
  if (b.includes(0)) throw new EngineError('INVALID_ARGUMENT', 'bucket must not contain 0x00');
  return b;
}

export function validateKey(key: unknown, maxKeyBytes: number): Buffer {
  const k = asBuffer(key, 'key');
  if (k.length < 1) throw new EngineError('INVALID_ARGUMENT', 'key must not be empty');
  if (k.length > maxKeyBytes) throw new EngineError('KEY_TOO_LARGE', `key longer than ${maxKeyBytes} bytes`);
  return k;
}

export function validateNodeId(nodeId: unknown, what = 'nodeId'): string {
  if (typeof nodeId !== 'string' || !NODE_ID_RE.test(nodeId)) {
    throw new EngineError('INVALID_ARGUMENT', `${what} must match [A-Za-z0-9._-]{1,64}`);
  }
  return nodeId;
}

export function validateEpoch(epoch: unknown): string {
  if (typeof epoch !== 'string' || !EPOCH_RE.test(epoch)) {
    throw new EngineError('INVALID_ARGUMENT', 'epoch must be 16 lowercase hex digits');
  }
  return epoch;
}

/** bkey = bucket ‖ 0x00 ‖ key (bucket and key already validated). */
export function makeBkey(bucket: Uint8Array, key: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(bucket.length + 1 + key.length);
  out.set(bucket, 0);
  out[bucket.length] = 0;
  out.set(key, bucket.length + 1);
  return out;
}

/**
 * The identity of an object as a string, for maps and sets: the bkey's bytes
 * as latin1 (one char per byte, so distinct keys give distinct ids). The one
 * `(bucket, key)` encoder besides makeBkey.
 */
export function keyId(bucket: Uint8Array, key: Uint8Array): string {
  return `${bufferView(bucket).toString('latin1')}\u0000${bufferView(key).toString('latin1')}`;
}

/** Inverse of makeBkey: the bucket never contains 0x00, so the first 0x00 splits. */
export function splitBkey(bkey: Buffer): { bucket: Buffer; key: Buffer } {
  const i = bkey.indexOf(0);
  return { bucket: Buffer.from(bkey.subarray(0, i)), key: Buffer.from(bkey.subarray(i + 1)) };
}

/** First 8 bytes of blake3(bkey): the big-endian ring position. */
export function positionBytes(bkey: Uint8Array): Buffer {
  return Buffer.from(blake3(bkey).subarray(0, 8));
}

export function position(bkey: Uint8Array): bigint {
  return positionBytes(bkey).readBigUInt64BE(0);
}

/** disk key = position (8 bytes) ‖ bkey, so partitions/branches/segments are contiguous ranges. */
export function diskKey(bkey: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(8 + bkey.length);
  out.set(positionBytes(bkey), 0);
  out.set(bkey, 8);
  return out;
}

export function u64be(v: bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(v, 0);
  return b;
}

/** Partition/segment/branch arithmetic for one (P, B, S) configuration. */
export class Layout {
  readonly partitions: number;
  readonly branches: number;
  readonly segmentsPerBranch: number;
  /** Segments per partition = 2^(B+S). */
  readonly segments: number;
  private readonly segShift: number;

  constructor(
    readonly partitionBits: number,
    readonly branchBits: number,
    readonly segmentBits: number,
  ) {
    this.partitions = 2 ** partitionBits;
    this.branches = 2 ** branchBits;
    this.segmentsPerBranch = 2 ** segmentBits;
    this.segments = 2 ** (branchBits + segmentBits);
    // P + B + S <= 32, so everything we need lives in the top 32 bits of the position.
    this.segShift = 32 - partitionBits - branchBits - segmentBits;
  }

  /** Partition of a position given as its 8 big-endian bytes (or a disk key). */
  partitionOf(pos: Uint8Array): number {
    return readU32(pos) >>> (32 - this.partitionBits);
  }

  segmentOf(pos: Uint8Array): number {
    return (readU32(pos) >>> this.segShift) & (this.segments - 1);
  }

  branchOf(segment: number): number {
    return segment >>> this.segmentBits;
  }

  /** Disk-key range [start, end) of one partition; end null for the last partition. */
  partitionRange(partition: number): { start: Buffer; end: Buffer | null } {
    const width = 64n - BigInt(this.partitionBits);
    const start = BigInt(partition) << width;
    const end = BigInt(partition + 1) << width;
    return { start: u64be(start), end: partition + 1 >= this.partitions ? null : u64be(end) };
  }

  /**
   * Whether `cursor` is a disk key of `partition`: position ‖ bkey with a valid bucket,
   * a key of 1..65535 bytes, the bkey's own position, in that partition. The object need not exist.
   */
  isCursorOf(partition: number, cursor: Buffer): boolean {
    if (cursor.length < 8 + 3) return false;
    const bkey = cursor.subarray(8);
    const sep = bkey.indexOf(0);
    if (sep < 1 || sep > MAX_BUCKET_BYTES) return false;
    const keyLen = bkey.length - sep - 1;
    if (keyLen < 1 || keyLen > HARD_MAX_KEY_BYTES) return false;
    return positionBytes(bkey).equals(cursor.subarray(0, 8)) && this.partitionOf(cursor) === partition;
  }

  /** Disk-key range [start, end) of one segment; end null = up to the end of the key space. */
  segmentRange(partition: number, segment: number): { start: Buffer; end: Buffer | null } {
    const idx = BigInt(partition) * BigInt(this.segments) + BigInt(segment);
    const width = 64n - BigInt(this.partitionBits + this.branchBits + this.segmentBits);
    const start = idx << width;
    const end = (idx + 1n) << width;
    return { start: u64be(start), end: end >= 1n << 64n ? null : u64be(end) };
  }
}

function readU32(b: Uint8Array): number {
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}
