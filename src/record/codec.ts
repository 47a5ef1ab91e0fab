// Byte formats of the causal context and the object record (docs/engine.md).
// Decoders enforce every invariant, so everything past them may trust its input.
import { EngineError, type EngineErrorCode } from './errors.js';
import { ByteReader } from '../util/byte-reader.js';
import { bufferView } from '../util/bytes.js';

export const FORMAT = 1;
export const MAX_CONTEXT_ENTRIES = 1024;
/** Counters and timestamps must fit a JS number exactly. */
export const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const FLAG_TOMBSTONE = 1;

export interface ContextEntry {
  actor: Buffer;
  counter: number;
}
/** Strictly ascending by actor bytes. */
export type Context = ContextEntry[];

export interface Sibling {
  actor: Buffer;
  counter: number;
  /** ms since the Unix epoch */
  timestamp: number;
  tombstone: boolean;
  /** Empty for a tombstone. */
  value: Buffer;
}

export interface DecodedRecord {
  context: Context;
  /** Strictly ascending by dot (actor bytes, then counter). */
  siblings: Sibling[];
}

/** Dot order: actor bytes (shorter prefix first), then counter. */
export function compareDots(a: { actor: Buffer; counter: number }, b: { actor: Buffer; counter: number }): number {
  return Buffer.compare(a.actor, b.actor) || a.counter - b.counter;
}

// ---- reading -------------------------------------------------------------

class Reader extends ByteReader {
  constructor(
    buf: Buffer,
    readonly code: EngineErrorCode,
  ) {
    super(buf);
  }
  fail(msg: string): never {
    throw new EngineError(this.code, msg);
  }
  /** u64 that must be <= 2^53 - 1. */
  safeU64(what: string): number {
    const v = this.u64();
    if (v > BigInt(MAX_SAFE)) this.fail(`${what} exceeds 2^53-1`);
    return Number(v);
  }

  /** u8 actorLen (1..=255), actor, u64 counter (>= 1). */
  dot(): { actor: Buffer; counter: number } {
    const len = this.u8();
    if (len === 0) this.fail('empty actor');
    const actor = this.bytes(len);
    const counter = this.safeU64('counter');
    if (counter === 0) this.fail('counter 0');
    return { actor, counter };
  }
  /** u16 n, n entries strictly ascending by actor. */
  contextEntries(max: number): Context {
    const n = this.u16();
    if (n > max) this.fail(`more than ${max} context entries`);
    const out: Context = [];
    for (let i = 0; i < n; i++) {
      const e = this.dot();
      const prev = out[out.length - 1];
      if (prev && Buffer.compare(prev.actor, e.actor) >= 0) this.fail('context actors not strictly ascending');
      out.push(e);
    }
    return out;
  }
}

/**
 * Decode a client context; null or empty means "no context". BAD_CONTEXT on anything malformed.
 * Counters above 2^53-1 are rejected too (JS numbers must hold them exactly).
 * Actors are views into `buf`.
 */
export function decodeContext(buf: Uint8Array | null | undefined): Context {
  if (buf == null || buf.length === 0) return [];
  const r = new Reader(bufferView(buf), 'BAD_CONTEXT');
  if (r.u8() !== FORMAT) r.fail('unknown context format');
  const ctx = r.contextEntries(MAX_CONTEXT_ENTRIES);
  r.end();
  return ctx;
}

/** Context lookup: the counter for `actor`, 0 when absent. */
export function contextGet(ctx: Context, actor: Buffer): number {
  // Binary search: contexts are sorted by actor.
  let lo = 0;
  let hi = ctx.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = Buffer.compare(ctx[mid]!.actor, actor);
    if (c === 0) return ctx[mid]!.counter;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return 0;
}

/**
 * Decode and fully validate an object record; CORRUPT_RECORD on any violation.
 * A record with no siblings is rejected too: one is never stored, so one arriving is corrupt.
 * Actors and values are views into `buf`.
 */
export function decodeRecord(buf: Uint8Array): DecodedRecord {
  const r = new Reader(bufferView(buf), 'CORRUPT_RECORD');
  if (r.u8() !== FORMAT) r.fail('unknown record format');
  const context = r.contextEntries(0xffff);
  const n = r.u16();
  if (n === 0) r.fail('record without siblings');
  const siblings: Sibling[] = [];
  for (let i = 0; i < n; i++) {
    const dot = r.dot();
    const timestamp = r.safeU64('timestamp');
    const flags = r.u8();
    if ((flags & ~FLAG_TOMBSTONE) !== 0) r.fail('unknown sibling flags');
    const tombstone = (flags & FLAG_TOMBSTONE) !== 0;
    const len = r.u32();
    if (tombstone && len !== 0) r.fail('tombstone with a value');
    const value = r.bytes(len);
    const prev = siblings[siblings.length - 1];
    if (prev && compareDots(prev, dot) >= 0) r.fail('siblings not strictly ascending by dot');
    if (contextGet(context, dot.actor) < dot.counter) r.fail('sibling dot not covered by the context');
    siblings.push({ actor: dot.actor, counter: dot.counter, timestamp, tombstone, value });
  }
  r.end();
  return { context, siblings };
}

/**
 * The context bytes of a valid record, to hand to clients: the record starts
 * with `u8 format, u16 n, entries` — exactly the context encoding.
 */
export function recordContextBytes(record: Uint8Array): Buffer {
  const buf = bufferView(record);
  const r = new Reader(buf, 'CORRUPT_RECORD');
  if (r.u8() !== FORMAT) r.fail('unknown record format');
  const n = r.u16();
  for (let i = 0; i < n; i++) r.dot();
  return Buffer.from(buf.subarray(0, r.off));
}

// ---- writing -------------------------------------------------------------

function dotSize(actor: Buffer): number {
  return 1 + actor.length + 8;
}

function writeDot(out: Buffer, off: number, actor: Buffer, counter: number): number {
  out[off] = actor.length;
  actor.copy(out, off + 1);
  out.writeBigUInt64BE(BigInt(counter), off + 1 + actor.length);
  return off + 1 + actor.length + 8;
}

function contextEntriesSize(ctx: Context): number {
  let n = 2;
  for (const e of ctx) n += dotSize(e.actor);
  return n;
}

function writeContextEntries(out: Buffer, off: number, ctx: Context): number {
  // Only reachable by merging contexts of > 65535 distinct actors.
  if (ctx.length > 0xffff) throw new EngineError('INVALID_ARGUMENT', 'context has more than 65535 actors');
  out.writeUInt16BE(ctx.length, off);
  off += 2;
  for (const e of ctx) off = writeDot(out, off, e.actor, e.counter);
  return off;
}

/** Encode a canonical (sorted, validated) context. */
export function encodeContext(ctx: Context): Buffer {
  const out = Buffer.allocUnsafe(1 + contextEntriesSize(ctx));
  out[0] = FORMAT;
  writeContextEntries(out, 1, ctx);
  return out;
}

/** Encode a canonical record (context sorted by actor, siblings sorted by dot). */
export function encodeRecord(rec: DecodedRecord): Buffer {
  let size = 1 + contextEntriesSize(rec.context) + 2;
  for (const s of rec.siblings) size += dotSize(s.actor) + 8 + 1 + 4 + s.value.length;
  const out = Buffer.allocUnsafe(size);
  out[0] = FORMAT;
  let off = writeContextEntries(out, 1, rec.context);
  out.writeUInt16BE(rec.siblings.length, off);
  off += 2;
  for (const s of rec.siblings) {
    off = writeDot(out, off, s.actor, s.counter);
    out.writeBigUInt64BE(BigInt(s.timestamp), off);
    off += 8;
    out[off++] = s.tombstone ? FLAG_TOMBSTONE : 0;
    out.writeUInt32BE(s.tombstone ? 0 : s.value.length, off);
    off += 4;
    if (!s.tombstone) {
      s.value.copy(out, off);
      off += s.value.length;
    }
  }
  return out;
}

/**
 * The causal state hashed into a TicTac leaf:
 * u32 bkeyLen ‖ bkey ‖ u16 nContext ‖ context entries ‖ u16 nSiblings ‖ sibling dots.
 */
export function encodeLeafMessage(bkey: Buffer, rec: DecodedRecord): Buffer {
  let size = 4 + bkey.length + contextEntriesSize(rec.context) + 2;
  for (const s of rec.siblings) size += dotSize(s.actor);
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32BE(bkey.length, 0);
  bkey.copy(out, 4);
  let off = writeContextEntries(out, 4 + bkey.length, rec.context);
  out.writeUInt16BE(rec.siblings.length, off);
  off += 2;
  for (const s of rec.siblings) off = writeDot(out, off, s.actor, s.counter);
  return out;
}
