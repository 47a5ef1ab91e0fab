// Byte formats of the causal context and the object record (docs/engine.md).
// Decoders enforce every invariant, so everything past them may trust its input.
import { EngineError, type EngineErrorCode } from './errors.js';
import { ByteReader } from '../util/byte-reader.js';
import { bufferView } from '../util/bytes.js';

/** The client context's format byte, and the record format of siblings without attributes. */
export const FORMAT = 1;
/** The record format whose siblings carry a content type and user metadata (docs/engine.md). */
export const FORMAT_ATTRIBUTES = 2;
export const MAX_CONTEXT_ENTRIES = 1024;
/** The content type of a sibling stored without one (and of every format-1 sibling). */
export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
/** Longest content type in bytes (a u8 length; RFC 6838 names are at most 127 + 1 + 127). */
export const MAX_CONTENT_TYPE_BYTES = 255;
/** Most metadata entries on one sibling (with a request's other headers, under the HTTP front end's 50). */
export const MAX_META_ENTRIES = 32;
/** Longest metadata name in bytes (without the `x-ringkv-meta-` prefix). */
export const MAX_META_NAME_BYTES = 64;
/** Most bytes of names plus values in one sibling's metadata. */
export const MAX_META_BYTES = 8192;
/** Counters and timestamps must fit a JS number exactly. */
export const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const FLAG_TOMBSTONE = 1;

export interface ContextEntry {
  actor: Buffer;
  counter: number;
}
/** Strictly ascending by actor bytes. */
export type Context = ContextEntry[];

/**
 * A sibling's content type and user metadata: (name, value) pairs strictly
 * ascending by name bytes. Every character is printable ASCII (names: a
 * lower-case HTTP token), so strings hold the bytes exactly.
 */
export interface SiblingAttributes {
  contentType: string;
  meta: ReadonlyArray<readonly [string, string]>;
}

export interface Sibling {
  actor: Buffer;
  counter: number;
  /** ms since the Unix epoch */
  timestamp: number;
  tombstone: boolean;
  /** Empty for a tombstone. */
  value: Buffer;
  /** Absent = the default (application/octet-stream, no metadata); always absent on a tombstone. */
  attrs?: SiblingAttributes;
}

/** A client write's content type and metadata as given (any order, unchecked); absent fields are the default. */
export interface WriteAttributes {
  contentType?: string;
  meta?: ReadonlyArray<readonly [string, string]>;
}

/** Does the sibling have the attributes of a format-1 sibling? */
export function hasDefaultAttributes(s: { attrs?: SiblingAttributes }): boolean {
  return s.attrs === undefined || (s.attrs.contentType === DEFAULT_CONTENT_TYPE && s.attrs.meta.length === 0);
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

// ---- attributes ----------------------------------------------------------

const utf8Length = (s: string): number => Buffer.byteLength(s, 'utf8');
/** Every character printable ASCII (0x20..0x7e): what an HTTP header value carries unchanged. */
const isHeaderText = (s: string): boolean => /^[\x20-\x7e]*$/.test(s);
/** An HTTP token (RFC 9110 tchar) without upper-case letters: header names arrive lower-cased. */
const isMetaName = (s: string): boolean => /^[a-z0-9!#$%&'*+\-.^_`|~]+$/.test(s);

/**
 * Which rule of sibling attributes `a` breaks, if any, with the code a client
 * write gets for it (decoders report each as CORRUPT_RECORD). Lengths are
 * UTF-8 bytes, as the Rust twin sees the strings; the checks run in the
 * same order there (crates/engine/src/codec.rs attributes_violation).
 */
export function attributesViolation(a: SiblingAttributes): [EngineErrorCode, string] | null {
  const ct = a.contentType;
  if (ct.length === 0) return ['BAD_METADATA', 'empty content type'];
  if (utf8Length(ct) > MAX_CONTENT_TYPE_BYTES) return ['METADATA_TOO_LARGE', `content type longer than ${MAX_CONTENT_TYPE_BYTES} bytes`];
  if (!isHeaderText(ct)) return ['BAD_METADATA', 'content type is not printable ASCII'];
  if (a.meta.length > MAX_META_ENTRIES) return ['METADATA_TOO_LARGE', `more than ${MAX_META_ENTRIES} metadata entries`];
  let total = 0;
  let prev: Buffer | null = null;
  for (const [name, value] of a.meta) {
    if (name.length === 0) return ['BAD_METADATA', 'empty metadata name'];
    const nameBytes = Buffer.from(name, 'utf8');
    if (nameBytes.length > MAX_META_NAME_BYTES) return ['METADATA_TOO_LARGE', `metadata name longer than ${MAX_META_NAME_BYTES} bytes`];
    if (!isMetaName(name)) return ['BAD_METADATA', 'metadata name is not a lower-case HTTP token'];
    if (!isHeaderText(value)) return ['BAD_METADATA', 'metadata value is not printable ASCII'];
    if (prev !== null && Buffer.compare(prev, nameBytes) >= 0) return ['BAD_METADATA', 'metadata names not strictly ascending (a duplicate name)'];
    prev = nameBytes;
    total += nameBytes.length + utf8Length(value);
  }
  if (total > MAX_META_BYTES) return ['METADATA_TOO_LARGE', `metadata names and values over ${MAX_META_BYTES} bytes`];
  return null;
}

/**
 * A client write's attributes in canonical form: the metadata sorted by name
 * bytes (stable), then checked (BAD_METADATA, METADATA_TOO_LARGE). Absent
 * (undefined) when they are the default. INVALID_ARGUMENT for arguments of
 * the wrong type.
 */
export function canonicalAttributes(contentType: unknown, meta: unknown): SiblingAttributes | undefined {
  const ct = contentType === undefined || contentType === null ? DEFAULT_CONTENT_TYPE : contentType;
  if (typeof ct !== 'string') throw new EngineError('INVALID_ARGUMENT', 'contentType must be a string');
  const pairs = checkMetaShape(meta);
  const keyed = pairs.map((p) => ({ p, name: Buffer.from(p[0], 'utf8') }));
  keyed.sort((x, y) => Buffer.compare(x.name, y.name));
  const attrs: SiblingAttributes = { contentType: ct, meta: keyed.map((k) => k.p) };
  const why = attributesViolation(attrs);
  if (why) throw new EngineError(why[0], why[1]);
  return hasDefaultAttributes({ attrs }) ? undefined : attrs;
}

/** `meta` as a list of [name, value] string pairs, or INVALID_ARGUMENT. */
export function checkMetaShape(meta: unknown): Array<readonly [string, string]> {
  if (meta === undefined || meta === null) return [];
  const ok = Array.isArray(meta) && meta.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'string');
  if (!ok) throw new EngineError('INVALID_ARGUMENT', 'meta must be a list of [name, value] string pairs');
  return (meta as Array<[string, string]>).map(([n, v]) => [n, v] as const);
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
  /** A format-2 sibling's u8 ctLen, contentType, u8 nMeta, nMeta × {u8 nameLen, name, u16 valueLen, value}, checked. */
  attributes(): SiblingAttributes {
    const contentType = this.bytes(this.u8()).toString('latin1');
    const n = this.u8();
    const meta: Array<readonly [string, string]> = [];
    for (let i = 0; i < n; i++) {
      const name = this.bytes(this.u8()).toString('latin1');
      const value = this.bytes(this.u16()).toString('latin1');
      meta.push([name, value]);
    }
    const attrs = { contentType, meta };
    // latin1 maps each byte to one character, so a non-ASCII byte fails the printable check.
    const why = attributesViolation(attrs);
    if (why) this.fail(why[1]);
    return attrs;
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
  const format = r.u8();
  if (format !== FORMAT && format !== FORMAT_ATTRIBUTES) r.fail('unknown record format');
  const withAttributes = format === FORMAT_ATTRIBUTES;
  const context = r.contextEntries(0xffff);
  const n = r.u16();
  if (n === 0) r.fail('record without siblings');
  const siblings: Sibling[] = [];
  let anyAttributes = false;
  for (let i = 0; i < n; i++) {
    const dot = r.dot();
    const timestamp = r.safeU64('timestamp');
    const flags = r.u8();
    if ((flags & ~FLAG_TOMBSTONE) !== 0) r.fail('unknown sibling flags');
    const tombstone = (flags & FLAG_TOMBSTONE) !== 0;
    const attrs = withAttributes ? r.attributes() : undefined;
    const len = r.u32();
    if (tombstone && len !== 0) r.fail('tombstone with a value');
    const custom = attrs !== undefined && !hasDefaultAttributes({ attrs });
    if (tombstone && custom) r.fail('tombstone with attributes');
    const value = r.bytes(len);
    const prev = siblings[siblings.length - 1];
    if (prev && compareDots(prev, dot) >= 0) r.fail('siblings not strictly ascending by dot');
    if (contextGet(context, dot.actor) < dot.counter) r.fail('sibling dot not covered by the context');
    const sibling: Sibling = { actor: dot.actor, counter: dot.counter, timestamp, tombstone, value };
    if (custom) {
      sibling.attrs = attrs;
      anyAttributes = true;
    }
    siblings.push(sibling);
  }
  r.end();
  // One encoding per record: format 2 only when some sibling needs it.
  if (withAttributes && !anyAttributes) r.fail('format 2 record without attributes (its encoding is format 1)');
  return { context, siblings };
}

/**
 * The context bytes of a valid record, to hand to clients: the record starts
 * with `u8 format, u16 n, entries` — the context encoding but for the format
 * byte (a format-2 record's context is still a format-1 context).
 */
export function recordContextBytes(record: Uint8Array): Buffer {
  const buf = bufferView(record);
  const r = new Reader(buf, 'CORRUPT_RECORD');
  const format = r.u8();
  if (format !== FORMAT && format !== FORMAT_ATTRIBUTES) r.fail('unknown record format');
  const n = r.u16();
  for (let i = 0; i < n; i++) r.dot();
  const out = Buffer.from(buf.subarray(0, r.off));
  // The context format is 1 whatever the record's.
  out[0] = FORMAT;
  return out;
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

/** A format-2 sibling's attributes as bytes (the default's when absent). */
function attributesBytes(s: Sibling): Buffer {
  const a = s.attrs ?? { contentType: DEFAULT_CONTENT_TYPE, meta: [] };
  // Stored siblings were checked on the way in (canonicalAttributes or a decoder);
  // refusing here keeps an engine bug from storing bytes every later read refuses.
  const why = attributesViolation(a);
  if (why) throw new EngineError('INTERNAL', `invariant: encodeRecord given invalid attributes: ${why[1]}`);
  if (s.tombstone && !hasDefaultAttributes(s)) throw new EngineError('INTERNAL', 'invariant: encodeRecord given a tombstone with attributes');
  const parts: Buffer[] = [Buffer.from([a.contentType.length]), Buffer.from(a.contentType, 'latin1'), Buffer.from([a.meta.length])];
  for (const [name, value] of a.meta) {
    const head = Buffer.allocUnsafe(1);
    head[0] = name.length;
    const len = Buffer.allocUnsafe(2);
    len.writeUInt16BE(value.length, 0);
    parts.push(head, Buffer.from(name, 'latin1'), len, Buffer.from(value, 'latin1'));
  }
  return Buffer.concat(parts);
}

/**
 * Encode a canonical record (context sorted by actor, siblings sorted by dot):
 * format 2 exactly when some sibling has attributes other than the default,
 * else format 1, so a record has one encoding (and replicas one set of bytes).
 */
export function encodeRecord(rec: DecodedRecord): Buffer {
  const withAttributes = rec.siblings.some((s) => !hasDefaultAttributes(s));
  const attrs = withAttributes ? rec.siblings.map(attributesBytes) : null;
  let size = 1 + contextEntriesSize(rec.context) + 2;
  rec.siblings.forEach((s, i) => (size += dotSize(s.actor) + 8 + 1 + 4 + s.value.length + (attrs ? attrs[i]!.length : 0)));
  const out = Buffer.allocUnsafe(size);
  out[0] = withAttributes ? FORMAT_ATTRIBUTES : FORMAT;
  let off = writeContextEntries(out, 1, rec.context);
  out.writeUInt16BE(rec.siblings.length, off);
  off += 2;
  for (const [i, s] of rec.siblings.entries()) {
    off = writeDot(out, off, s.actor, s.counter);
    out.writeBigUInt64BE(BigInt(s.timestamp), off);
    off += 8;
    out[off++] = s.tombstone ? FLAG_TOMBSTONE : 0;
    if (attrs) off += attrs[i]!.copy(out, off);
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
