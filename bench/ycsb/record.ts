// A YCSB record as ringkv stores it: fieldcount named fields, encoded as one
// msgpack map (field name → bytes). Both bindings send the same encoding, so
// the baseline moves the same bytes as ringkv.
import { bufferView } from '../../src/util/bytes.js';
import { pack, unpack } from 'msgpackr';
import type { Random } from './random.js';

export type Fields = Record<string, Buffer>;

export interface RecordShape {
  fieldnames: readonly string[];
  fieldlength: number;
}

/**
 * Field data: printable ASCII like YCSB's RandomByteIterator, cut from one
 * seeded 1 MiB pool at random offsets (no copy, no per-byte RNG on the hot path).
 */
export class FieldData {
  private readonly pool: Buffer;
  constructor(private readonly rand: Random, poolBytes = 1 << 20) {
    this.pool = Buffer.allocUnsafe(poolBytes);
    for (let i = 0; i < poolBytes; i++) this.pool[i] = 32 + rand.int(0, 94);
  }
  bytes(length: number): Buffer {
    if (length > this.pool.length) throw new RangeError(`field of ${length} bytes exceeds the ${this.pool.length}-byte data pool`);
    const at = this.rand.int(0, this.pool.length - length);
    return this.pool.subarray(at, at + length);
  }
}

/** The record to store: `values`, plus filler for the fields an update did not set (one value holds the whole record). */
export function encodeRecord(values: Fields, shape: RecordShape, base: Fields | null = null): Buffer {
  if (Object.keys(values).length === shape.fieldnames.length) return pack(values);
  const filler = Buffer.alloc(shape.fieldlength, 0x2e);
  const full: Fields = {};
  for (const name of shape.fieldnames) full[name] = values[name] ?? base?.[name] ?? filler;
  return pack(full);
}

/** The stored record's fields (all, or only `fields`); null if the bytes are not a record. */
export function decodeRecord(bytes: Uint8Array, fields: readonly string[] | null): Fields | null {
  let doc: unknown;
  try {
    doc = unpack(bytes);
  } catch {
    return null;
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return null;
  const all = doc as Record<string, unknown>;
  const out: Fields = {};
  for (const name of fields ?? Object.keys(all)) {
    const v = all[name];
    if (v instanceof Uint8Array) out[name] = bufferView(v);
  }
  return out;
}
