// The binary codec of the hot peer messages (protocol version 5): the
// requests of the replica role that every client read and write sends
// ('kv.get', 'kv.merge') and their replies, as a fixed header and the raw
// bytes, instead of a msgpack array holding a msgpack map. It is a second
// encoding of the same frames, not a second definition of the messages: a
// hot frame decodes to exactly the Frame that the msgpack frame of the same
// request or reply decodes to (the property test/transport/hot-codec.test.ts
// checks), and the node checks that body against its one typed-message
// table (src/node/messages.ts) as it checks any other. The encoder takes
// only bodies whose every field it can carry exactly (known keys, booleans
// as booleans, binary as binary, an unsigned 32-bit ring version) and
// declines anything else (returns null), which then goes as msgpack: so a
// hot frame never changes what the receiver sees.
//
// A hot frame starts with 0xc1, the byte msgpack never uses, so a message
// may mix hot and msgpack frames and the receiver tells them apart by their
// first byte (decodeFrames in frames.ts). All integers big-endian.
//
//   0xc1 | u8 kind | u48 id | u8 flags | fields
//   kind 1  kv.get request:  flags hints(2 bits) ring(1) | [u32 ring] | u32 len b | u32 len k
//   kind 2  kv.get reply:    flags record(1) reaped(2)   | [u32 len record] | [u32 len reaped]
//   kind 3  kv.merge request: flags lww(2) durable(2) hint(2) | u32 len b | u32 len k | u32 len record | [u8 len hint]
//   kind 4  kv.merge reply:  flags durable(1) hinted(2)
// A "(2)" field is tri-state: 0 absent, 1 false (or null for hint, record,
// reaped), 2 true (or present). Lengths are followed by their bytes.
// Decoding is strict and never throws: a short or long frame, an unknown
// kind, unused flag bits set, or a tri-state of 3 is refused with a reason.
import { bufferView } from '../util/bytes.js';
import type { RequestFrame, ResponseOkFrame } from './frames.js';

/** The first byte of a hot frame: msgpack's "never used" byte. */
export const HOT_MARKER = 0xc1;
/** The protocol version that carries hot frames. */
export const HOT_VERSION = 5;

const KIND_GET_REQ = 1;
const KIND_GET_RES = 2;
const KIND_MERGE_REQ = 3;
const KIND_MERGE_RES = 4;

/** Request types with a hot encoding (their replies have one too). */
export const HOT_TYPES: ReadonlySet<string> = new Set(['kv.get', 'kv.merge']);
/** The body fields each hot layout carries: a body with any other key goes as msgpack. */
export const HOT_FIELDS = {
  'kv.get': { req: ['b', 'k', 'ring', 'hints'], res: ['record', 'reaped'] },
  'kv.merge': { req: ['b', 'k', 'record', 'lww', 'durable', 'hint'], res: ['durable', 'hinted'] },
} as const;

const HEADER_BYTES = 1 + 1 + 6 + 1;
const MAX_ID = 2 ** 48 - 1;
const MAX_U32 = 2 ** 32 - 1;
/** Longest hint (a node id, NODE_ID_RE: at most 64 characters). */
const MAX_HINT_BYTES = 64;

type Tri = 0 | 1 | 2;

function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

/** Only these keys (each may be absent or undefined). */
function onlyKeys(body: object, allowed: readonly string[]): boolean {
  for (const key in body) {
    if (!Object.prototype.hasOwnProperty.call(body, key)) continue;
    if (!allowed.includes(key) && (body as Record<string, unknown>)[key] !== undefined) return false;
  }
  return true;
}

function plainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || isBytes(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Absent/false/true as 0/1/2; null when the value is none of them. */
function boolTri(v: unknown): Tri | null {
  if (v === undefined) return 0;
  if (v === false) return 1;
  if (v === true) return 2;
  return null;
}

/** Absent/null/bytes as 0/1/2; null when the value is none of them. */
function bytesTri(v: unknown): Tri | null {
  if (v === undefined) return 0;
  if (v === null) return 1;
  return isBytes(v) ? 2 : null;
}

class Writer {
  readonly out: Buffer;
  at = 0;
  constructor(size: number) {
    this.out = Buffer.allocUnsafe(size);
  }
  u8(v: number): void {
    this.out[this.at++] = v;
  }
  u32(v: number): void {
    this.out.writeUInt32BE(v, this.at);
    this.at += 4;
  }
  header(kind: number, id: number, flags: number): void {
    this.u8(HOT_MARKER);
    this.u8(kind);
    this.out.writeUInt16BE(Math.floor(id / 2 ** 32), this.at);
    this.out.writeUInt32BE(id >>> 0, this.at + 2);
    this.at += 6;
    this.u8(flags);
  }
  bytes(b: Uint8Array): void {
    this.u32(b.length);
    this.out.set(b, this.at);
    this.at += b.length;
  }
}

/** A hot frame of a request of a hot type, or null: its body goes as msgpack. */
export function encodeHotRequest(frame: RequestFrame): Buffer | null {
  const { id, type, body } = frame;
  if (!Number.isSafeInteger(id) || id < 0 || id > MAX_ID || !plainObject(body)) return null;
  if (type === 'kv.get') {
    const { b, k, ring } = body;
    const hints = boolTri(body.hints);
    if (!isBytes(b) || !isBytes(k) || hints === null || !onlyKeys(body, HOT_FIELDS['kv.get'].req)) return null;
    const hasRing = ring !== undefined;
    if (hasRing && !(typeof ring === 'number' && Number.isInteger(ring) && ring >= 0 && ring <= MAX_U32)) return null;
    if (b.length > MAX_U32 || k.length > MAX_U32) return null;
    const w = new Writer(HEADER_BYTES + (hasRing ? 4 : 0) + 8 + b.length + k.length);
    w.header(KIND_GET_REQ, id, hints | (hasRing ? 4 : 0));
    if (hasRing) w.u32(ring);
    w.bytes(b);
    w.bytes(k);
    return w.out;
  }
  if (type === 'kv.merge') {
    const { b, k, record, hint } = body;
    const lww = boolTri(body.lww);
    const durable = boolTri(body.durable);
    if (!isBytes(b) || !isBytes(k) || !isBytes(record) || lww === null || durable === null) return null;
    if (!onlyKeys(body, HOT_FIELDS['kv.merge'].req)) return null;
    let hintTri: Tri = 0;
    let hintBytes: Buffer | null = null;
    if (hint === null) hintTri = 1;
    else if (hint !== undefined) {
      // Only a string that survives UTF-8 exactly (an ASCII node id does; anything else is msgpack's to carry).
      if (typeof hint !== 'string' || hint.length > MAX_HINT_BYTES || !/^[\x20-\x7e]*$/.test(hint)) return null;
      hintTri = 2;
      hintBytes = Buffer.from(hint, 'latin1');
    }
    const w = new Writer(HEADER_BYTES + 12 + b.length + k.length + record.length + (hintBytes ? 1 + hintBytes.length : 0));
    w.header(KIND_MERGE_REQ, id, lww | (durable << 2) | (hintTri << 4));
    w.bytes(b);
    w.bytes(k);
    w.bytes(record);
    if (hintBytes) {
      w.u8(hintBytes.length);
      w.out.set(hintBytes, w.at);
      w.at += hintBytes.length;
    }
    return w.out;
  }
  return null;
}

/** A hot frame of the reply to a request of `type`, or null: it goes as msgpack. */
export function encodeHotReply(frame: ResponseOkFrame, type: string): Buffer | null {
  const { id, ok } = frame;
  if (!Number.isSafeInteger(id) || id < 0 || id > MAX_ID || !plainObject(ok)) return null;
  if (type === 'kv.get') {
    const record = ok.record;
    const reaped = bytesTri(ok.reaped);
    // The reply's record is always there (null or bytes); `pending` (a replica still receiving) goes as msgpack.
    if (!(record === null || isBytes(record)) || reaped === null || !onlyKeys(ok, HOT_FIELDS['kv.get'].res)) return null;
    const size = HEADER_BYTES + (record ? 4 + record.length : 0) + (reaped === 2 ? 4 + (ok.reaped as Uint8Array).length : 0);
    const w = new Writer(size);
    w.header(KIND_GET_RES, id, (record ? 1 : 0) | (reaped << 1));
    if (record) w.bytes(record);
    if (reaped === 2) w.bytes(ok.reaped as Uint8Array);
    return w.out;
  }
  if (type === 'kv.merge') {
    const hinted = boolTri(ok.hinted);
    if (typeof ok.durable !== 'boolean' || hinted === null || !onlyKeys(ok, HOT_FIELDS['kv.merge'].res)) return null;
    const w = new Writer(HEADER_BYTES);
    w.header(KIND_MERGE_RES, id, (ok.durable ? 1 : 0) | (hinted << 1));
    return w.out;
  }
  return null;
}

export type HotDecodeResult =
  | { ok: true; frame: RequestFrame | ResponseOkFrame; end: number }
  | { ok: false; reason: string };

// The decoder's cursor: module state rather than closures, so that a frame
// costs no function objects (decodeHot is synchronous and not reentrant).
let buf: Buffer = Buffer.alloc(0);
let pos = 0;

/** A u32 length and that many bytes (a view), or null if the frame is too short. */
function takeBytes(): Buffer | null {
  if (buf.length - pos < 4) return null;
  const n = buf.readUInt32BE(pos);
  pos += 4;
  if (buf.length - pos < n) return null;
  const v = buf.subarray(pos, pos + n);
  pos += n;
  return v;
}

function fail(reason: string): HotDecodeResult {
  return { ok: false, reason: `hot frame: ${reason}` };
}

/** A tri-state field of the flags, null for the unused value 3. */
function tri(flags: number, shift: number): Tri | null {
  const v = (flags >> shift) & 3;
  return v === 3 ? null : (v as Tri);
}

/** Reads the hot frame at `at` of `bytes` (bytes[at] is HOT_MARKER); never throws. */
export function decodeHot(bytes: Uint8Array, at: number): HotDecodeResult {
  buf = bufferView(bytes);
  pos = at;
  try {
    return decodeAtCursor();
  } finally {
    // Let go of the message.
    buf = EMPTY;
  }
}

const EMPTY = Buffer.alloc(0);

function decodeAtCursor(): HotDecodeResult {
  if (buf.length - pos < HEADER_BYTES) return fail('truncated header');
  if (buf[pos] !== HOT_MARKER) return fail('no marker');
  const kind = buf[pos + 1]!;
  const id = buf.readUInt16BE(pos + 2) * 2 ** 32 + buf.readUInt32BE(pos + 4);
  const flags = buf[pos + 8]!;
  pos += HEADER_BYTES;
  switch (kind) {
    case KIND_GET_REQ: {
      if (flags & ~0b111) return fail('kv.get: unknown flags');
      const hints = tri(flags, 0);
      if (hints === null) return fail('kv.get: bad hints flag');
      let ring: number | undefined;
      if (flags & 4) {
        if (buf.length - pos < 4) return fail('kv.get: truncated');
        ring = buf.readUInt32BE(pos);
        pos += 4;
      }
      const b = takeBytes();
      const k = b && takeBytes();
      if (!b || !k) return fail('kv.get: truncated');
      const body: Record<string, unknown> = { b, k };
      if (ring !== undefined) body.ring = ring;
      if (hints !== 0) body.hints = hints === 2;
      return { ok: true, frame: { kind: 'req', id, type: 'kv.get', body }, end: pos };
    }
    case KIND_GET_RES: {
      if (flags & ~0b111) return fail('kv.get reply: unknown flags');
      const reapedTri = tri(flags, 1);
      if (reapedTri === null) return fail('kv.get reply: bad reaped flag');
      let record: Buffer | null = null;
      if (flags & 1) {
        record = takeBytes();
        if (!record) return fail('kv.get reply: truncated');
      }
      const body: Record<string, unknown> = { record };
      if (reapedTri === 1) body.reaped = null;
      if (reapedTri === 2) {
        const reaped = takeBytes();
        if (!reaped) return fail('kv.get reply: truncated');
        body.reaped = reaped;
      }
      return { ok: true, frame: { kind: 'res', id, ok: body }, end: pos };
    }
    case KIND_MERGE_REQ: {
      if (flags & ~0b111111) return fail('kv.merge: unknown flags');
      const lww = tri(flags, 0);
      const durable = tri(flags, 2);
      const hint = tri(flags, 4);
      if (lww === null || durable === null || hint === null) return fail('kv.merge: bad flags');
      const b = takeBytes();
      const k = b && takeBytes();
      const record = k && takeBytes();
      if (!b || !k || !record) return fail('kv.merge: truncated');
      const body: Record<string, unknown> = { b, k, record };
      if (lww !== 0) body.lww = lww === 2;
      if (durable !== 0) body.durable = durable === 2;
      if (hint === 1) body.hint = null;
      if (hint === 2) {
        if (buf.length - pos < 1) return fail('kv.merge: truncated');
        const n = buf[pos++]!;
        if (n > MAX_HINT_BYTES || buf.length - pos < n) return fail('kv.merge: bad hint');
        body.hint = buf.toString('latin1', pos, pos + n);
        pos += n;
      }
      return { ok: true, frame: { kind: 'req', id, type: 'kv.merge', body }, end: pos };
    }
    case KIND_MERGE_RES: {
      if (flags & ~0b111) return fail('kv.merge reply: unknown flags');
      const hinted = tri(flags, 1);
      if (hinted === null) return fail('kv.merge reply: bad hinted flag');
      const body: Record<string, unknown> = { durable: (flags & 1) === 1 };
      if (hinted !== 0) body.hinted = hinted === 2;
      return { ok: true, frame: { kind: 'res', id, ok: body }, end: pos };
    }
    default:
      return fail(`unknown kind ${kind}`);
  }
}
