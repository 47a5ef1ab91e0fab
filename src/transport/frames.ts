// The peer wire envelope: each WebSocket binary message carries one or more
// frames back to back, each frame one msgpack value (so a message is a
// msgpack stream: decodeFrames reads them with msgpackr's unpackMultiple)
// or, on a connection of version 5, a hot frame (hot-codec.ts), which
// starts with the byte 0xc1 that msgpack never uses. A sender coalesces the frames it produces during one
// event-loop turn into one message (see outbox.ts); a receiver handles the
// frames of a message in order.
//
// Frames are msgpack arrays tagged by their first element:
//   hello  [0, version, nodeId, cluster, nonce]           client's first message, alone
//   hello  [0, version, nodeId, cluster, nonce, proofs]   server's first message, alone
//   auth   [6, proof]                                     client's second message, alone
//   req    [1, id, type, body]                    client -> server
//   res ok [2, id, body]                          server -> client
//   res err[3, id, code, message, remoteCode?]    server -> client
//   note   [4, type, body]                        client -> server
//   bye    [5]                                    server -> client
// The client sends hello on open; the server checks it (version, cluster,
// node id syntax) and answers with its own hello, carrying its proofs of
// the cluster secret, which the client checks (and the node id against the
// one it meant to reach); the client answers with its own proof in `auth`
// (peer-auth.ts has the exchange). Nothing else is acted on before the
// auth is checked. Hellos and the auth travel alone and plain (no
// envelope, below) in their messages, so a peer of another protocol
// version (1 sent one frame per message, 2 had no envelope, 3 no
// authentication) is refused by the version check with a clear reason
// rather than by a decoding error.
// `bye` asks the client to close: the server sends it when shutting down so that the client closes the TCP
// connection first and the TIME_WAIT stays on the client's ephemeral port
// (uWS listen sockets here do not set SO_REUSEADDR, so a server-side
// TIME_WAIT would stop a restarted node from binding its port for a
// minute). A message that does not decode, from its first byte to its
// last, to well-formed frames, or that fails the envelope check, is a
// protocol error: the receiver closes the connection without acting on any
// frame of it. Decoding never throws.
//
// Envelope (since version 3). Every message after the handshake, each way, is sealed:
//   u32 BE seq | u32 BE crc | frames
// seq counts the sealed messages of the connection in one direction, from 1;
// crc is CRC-32 over seq and frames, seeded with the connection's tag for
// that direction (version 4: derived from the cluster secret and the
// handshake's transcript, sessionTags in peer-auth.ts, so it differs per
// connection and direction and only the two ends know it; version 3 used
// the CRC-32 of Sec-WebSocket-Accept). The CRC is a check against damage
// and mix-ups, not a MAC: against someone on the path who can change bytes,
// TLS is the protection (docs/security.md). The receiver expects exactly the next seq. A flipped or
// missing byte, a truncated, repeated, skipped or reordered message, and a
// message made for another connection all fail the check (a random change
// passes with odds 2^-32), so bytes that would decode as a different valid
// message are refused, as a protocol error, before any frame is read.
// The hellos stay plain so that a peer of another version still reads the
// version refusal.
import { bufferView } from '../util/bytes.js';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';
import { MAX_SECRETS, NONCE_BYTES, PROOF_BYTES } from './peer-auth.js';
import { HOT_MARKER, HOT_VERSION, decodeHot, encodeHotReply, encodeHotRequest } from './hot-codec.js';

/**
 * The newest protocol version this node speaks, offered in its hello.
 * 5: hot frames (hot-codec.ts: 'kv.get' and 'kv.merge' and their replies in
 * a binary layout) may stand among the msgpack frames of a message. 4: mutual
 * authentication (hello nonces and proofs, auth), session-keyed envelope
 * tags. 3: messages after the hello are sealed (seq + CRC-32). 2: a message
 * may carry several frames. 1: exactly one.
 */
export const PROTOCOL_VERSION = 5;
/**
 * The oldest version this node still speaks, for a rolling upgrade: a
 * server answers a client's hello of any version from this one to
 * PROTOCOL_VERSION in that version; a client refused by a server of an older
 * version (whose refusal names the version it expects) offers that one next,
 * if it is in this range. Versions are per connection; 4 is 5 without hot frames.
 */
export const MIN_PROTOCOL_VERSION = 4;

/** Whether this node speaks `version` (a server answers in it, a client may fall back to it). */
export function speaksVersion(version: number): boolean {
  return Number.isSafeInteger(version) && version >= MIN_PROTOCOL_VERSION && version <= PROTOCOL_VERSION;
}

/**
 * The version an older server expects, from its refusal of our hello (the
 * close reason clientHelloStep gives: "protocol version X, expected Y"), or null.
 */
export function expectedVersionOf(closeReason: string): number | null {
  const m = /^protocol version \d+, expected (\d+)$/.exec(closeReason);
  return m ? Number(m[1]) : null;
}

/** Bytes of the envelope in front of a sealed message's frames. */
export const ENVELOPE_BYTES = 8;

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The Sec-WebSocket-Accept of a connection whose client sent Sec-WebSocket-Key `key` (RFC 6455, 4.2.2). */
export function websocketAccept(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

/** A tag from a connection's Sec-WebSocket-Accept (protocol version 3's envelope seed; tests and tools). */
export function connectionTag(accept: string): number {
  return crc32(accept);
}

function envelopeCrc(message: Uint8Array, tag: number): number {
  return crc32(message.subarray(ENVELOPE_BYTES), crc32(message.subarray(0, 4), tag));
}

/** Seals one message: the envelope (seq, CRC-32) then `payload` (its frames). */
export function sealMessage(seq: number, payload: Uint8Array, tag: number): Buffer {
  const out = Buffer.allocUnsafe(ENVELOPE_BYTES + payload.length);
  out.writeUInt32BE(seq >>> 0, 0);
  out.set(payload, ENVELOPE_BYTES);
  out.writeUInt32BE(envelopeCrc(out, tag), 4);
  return out;
}

/**
 * Seals a message built with ENVELOPE_BYTES of room in front of its frames
 * (the outbox's headroom): writes the envelope there, no copy. Returns it.
 */
export function sealInPlace(seq: number, message: Buffer, tag: number): Buffer {
  message.writeUInt32BE(seq >>> 0, 0);
  message.writeUInt32BE(envelopeCrc(message, tag), 4);
  return message;
}

export type OpenResult = { ok: true; payload: Buffer } | { ok: false; reason: string };

/**
 * Checks a sealed message against the connection's tag and the seq it must
 * carry; gives its frames' bytes (a view, not a copy). Never throws.
 */
export function openMessage(expectedSeq: number, bytes: Uint8Array, tag: number): OpenResult {
  if (bytes.length <= ENVELOPE_BYTES) {
    return { ok: false, reason: `envelope: message of ${bytes.length} bytes is too short` };
  }
  const buf = bufferView(bytes);
  const seq = buf.readUInt32BE(0);
  // The checksum first: a seq read from damaged bytes means nothing.
  if (envelopeCrc(buf, tag) !== buf.readUInt32BE(4)) return { ok: false, reason: `envelope: checksum mismatch (message ${seq})` };
  const expected = expectedSeq >>> 0;
  if (seq !== expected) return { ok: false, reason: `envelope: message ${seq}, expected ${expected}` };
  return { ok: true, payload: buf.subarray(ENVELOPE_BYTES) };
}

export const NODE_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;
export const MAX_TYPE_LENGTH = 128;
export const MAX_CLUSTER_LENGTH = 128;
export const MAX_ERROR_MESSAGE_LENGTH = 4096;
export const MAX_CODE_LENGTH = 64;
/**
 * Most frames one message may carry, in either direction: a protocol
 * constant, not a node's coalescing setting (maxCoalescedFrames may be lower
 * on a node, and that must not make it refuse a peer's larger messages).
 */
export const MAX_FRAMES_PER_MESSAGE = 1024;

export interface HelloFrame {
  kind: 'hello';
  version: number;
  nodeId: string;
  cluster: string;
  /** Version 4 on: the sender's fresh nonce (NONCE_BYTES). Absent only in hellos of older versions. */
  nonce?: Uint8Array;
  /** The server's hello only: one proof per secret it holds, current first. */
  proofs?: Uint8Array[];
}
/** The client's proof of the cluster secret, alone in its second message. */
export interface AuthFrame {
  kind: 'auth';
  proof: Uint8Array;
}
export interface RequestFrame {
  kind: 'req';
  id: number;
  type: string;
  body: unknown;
}
export interface ResponseOkFrame {
  kind: 'res';
  id: number;
  ok: unknown;
}
export interface ResponseErrorFrame {
  kind: 'res';
  id: number;
  error: { code: string; message: string; remoteCode?: string };
}
export type ResponseFrame = ResponseOkFrame | ResponseErrorFrame;
export interface NoteFrame {
  kind: 'note';
  type: string;
  body: unknown;
}
export interface ByeFrame {
  kind: 'bye';
}
export type Frame = HelloFrame | AuthFrame | RequestFrame | ResponseFrame | NoteFrame | ByeFrame;

export type DecodeResult = { ok: true; frame: Frame } | { ok: false; reason: string };
export type DecodeFramesResult = { ok: true; frames: Frame[] } | { ok: false; reason: string };

const TAG_HELLO = 0;
const TAG_REQ = 1;
const TAG_RES_OK = 2;
const TAG_RES_ERR = 3;
const TAG_NOTE = 4;
const TAG_BYE = 5;
const TAG_AUTH = 6;

// Plain msgpack (no msgpackr records/structures, so frames are readable by
// any msgpack implementation); 64-bit integers decode as bigint, so a
// bigint sent arrives as a bigint (numbers are encoded as numbers).
const codec = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  int64AsType: 'bigint',
  moreTypes: false,
});

/** Encodes any msgpack-able value (throws on values msgpack cannot carry). */
export function packValue(value: unknown): Buffer {
  return codec.pack(value);
}

/** Decodes exactly one msgpack value (throws on malformed input or trailing bytes). */
export function unpackValue(bytes: Uint8Array): unknown {
  return codec.unpack(bytes);
}

/**
 * A structured copy as the peer would see it: encode then decode. Used by
 * the simulated network so nodes never share mutable objects.
 */
export function wireCopy<T = unknown>(value: T): unknown {
  return unpackValue(packValue(value));
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, max);
}

/** Encodes a frame. Throws if the body cannot be encoded. */
export function encodeFrame(frame: Frame): Buffer {
  switch (frame.kind) {
    case 'hello': {
      const arr: unknown[] = [TAG_HELLO, frame.version, frame.nodeId, frame.cluster];
      if (frame.nonce !== undefined) arr.push(frame.nonce);
      if (frame.proofs !== undefined) arr.push(frame.proofs);
      return codec.pack(arr);
    }
    case 'auth':
      return codec.pack([TAG_AUTH, frame.proof]);
    case 'req':
      return codec.pack([TAG_REQ, frame.id, frame.type, frame.body]);
    case 'note':
      return codec.pack([TAG_NOTE, frame.type, frame.body]);
    case 'bye':
      return codec.pack([TAG_BYE]);
    case 'res':
      if ('error' in frame) {
        const e = frame.error;
        const arr: unknown[] = [
          TAG_RES_ERR,
          frame.id,
          truncate(e.code, MAX_CODE_LENGTH),
          truncate(e.message, MAX_ERROR_MESSAGE_LENGTH),
        ];
        if (e.remoteCode !== undefined) arr.push(truncate(e.remoteCode, MAX_CODE_LENGTH));
        return codec.pack(arr);
      }
      return codec.pack([TAG_RES_OK, frame.id, frame.ok]);
  }
}

function isId(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
function isType(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_TYPE_LENGTH;
}
function isShortString(v: unknown, max: number): v is string {
  return typeof v === 'string' && v.length <= max;
}

function isBytes(v: unknown, length: number): v is Uint8Array {
  return v instanceof Uint8Array && v.length === length;
}

function notMsgpack(e: unknown): { ok: false; reason: string } {
  return { ok: false, reason: `not msgpack: ${e instanceof Error ? e.message : String(e)}` };
}

/** A request frame in the best encoding of a connection of `version`: hot (hot-codec.ts) where it carries the body exactly, else msgpack. Throws if the body cannot be encoded. */
export function encodeRequest(frame: RequestFrame, version: number): Buffer {
  return (version >= HOT_VERSION ? encodeHotRequest(frame) : null) ?? encodeFrame(frame);
}

/** A reply to a request of `type`, likewise. Throws if the body cannot be encoded. */
export function encodeReply(frame: ResponseFrame, type: string, version: number): Buffer {
  return (version >= HOT_VERSION && 'ok' in frame ? encodeHotReply(frame, type) : null) ?? encodeFrame(frame);
}

/** Strictly decodes exactly one frame (no trailing bytes); never throws. */
export function decodeFrame(bytes: Uint8Array): DecodeResult {
  let v: unknown;
  try {
    v = codec.unpack(bytes);
  } catch (e) {
    return notMsgpack(e);
  }
  return checkFrame(v);
}

/**
 * Strictly decodes a message: one or more frames back to back, every one
 * of them well-formed, up to the last byte. All or nothing; never throws.
 * `hot`: the connection's version carries hot frames (hot-codec.ts), which
 * may then stand anywhere among the msgpack frames; on an older one the
 * byte that starts them is a protocol error, as it always was.
 */
export function decodeFrames(bytes: Uint8Array, hot = false): DecodeFramesResult {
  if (bytes.length === 0) return { ok: false, reason: 'empty message' };
  if (!hot || bytes.indexOf(HOT_MARKER) < 0) return decodeMsgpackFrames(bytes);
  const frames: Frame[] = [];
  const buf = bufferView(bytes);
  let at = 0;
  const failAt = (reason: string): DecodeFramesResult => ({ ok: false, reason: `frame ${frames.length + 1}: ${reason}` });
  while (at < buf.length) {
    if (buf[at] === HOT_MARKER) {
      const d = decodeHot(buf, at);
      if (!d.ok) return failAt(d.reason);
      frames.push(d.frame);
      at = d.end;
      continue;
    }
    // msgpack frames up to the next hot one (a 0xc1 byte inside a msgpack value is data, not a frame start).
    let next = -1;
    try {
      codec.unpackMultiple(buf.subarray(at), (value: unknown, _start?: number, end?: number) => {
        const c = checkFrame(value);
        if (!c.ok) throw new FrameError(c.reason);
        frames.push(c.frame);
        const stop = at + end!;
        if (stop < buf.length && buf[stop] === HOT_MARKER) {
          next = stop;
          return false;
        }
        return undefined;
      });
    } catch (e) {
      return e instanceof FrameError ? failAt(e.message) : notMsgpack(e);
    }
    if (next < 0) break;
    at = next;
  }
  return { ok: true, frames };
}

class FrameError extends Error {}

function decodeMsgpackFrames(bytes: Uint8Array): DecodeFramesResult {
  let values: unknown[];
  try {
    values = codec.unpackMultiple(bytes);
  } catch (e) {
    return notMsgpack(e);
  }
  const frames: Frame[] = new Array<Frame>(values.length);
  for (let i = 0; i < values.length; i++) {
    const d = checkFrame(values[i]);
    if (!d.ok) return values.length === 1 ? d : { ok: false, reason: `frame ${i + 1} of ${values.length}: ${d.reason}` };
    frames[i] = d.frame;
  }
  return { ok: true, frames };
}

/** Checks one decoded msgpack value against the frame shapes. */
function checkFrame(v: unknown): DecodeResult {
  if (!Array.isArray(v) || v.length === 0) return { ok: false, reason: 'frame is not a tagged array' };
  const tag: unknown = v[0];
  switch (tag) {
    case TAG_HELLO: {
      const [, version, nodeId, cluster, nonce, proofs] = v as unknown[];
      // 4 elements: a hello of version 3 or older, still read so that its version is refused by name.
      if (v.length < 4 || v.length > 6) return { ok: false, reason: 'hello: wrong length' };
      if (typeof version !== 'number' || !Number.isSafeInteger(version)) return { ok: false, reason: 'hello: bad version' };
      if (typeof nodeId !== 'string' || !NODE_ID_RE.test(nodeId)) return { ok: false, reason: 'hello: bad node id' };
      if (!isShortString(cluster, MAX_CLUSTER_LENGTH) || cluster.length === 0) {
        return { ok: false, reason: 'hello: bad cluster name' };
      }
      const frame: HelloFrame = { kind: 'hello', version, nodeId, cluster };
      if (v.length >= 5) {
        if (!isBytes(nonce, NONCE_BYTES)) return { ok: false, reason: 'hello: bad nonce' };
        frame.nonce = nonce;
      }
      if (v.length === 6) {
        if (!Array.isArray(proofs) || proofs.length === 0 || proofs.length > MAX_SECRETS || !proofs.every((p) => isBytes(p, PROOF_BYTES))) {
          return { ok: false, reason: 'hello: bad proofs' };
        }
        frame.proofs = proofs as Uint8Array[];
      }
      return { ok: true, frame };
    }
    case TAG_AUTH: {
      const [, proof] = v as unknown[];
      if (v.length !== 2) return { ok: false, reason: 'auth: wrong length' };
      if (!isBytes(proof, PROOF_BYTES)) return { ok: false, reason: 'auth: bad proof' };
      return { ok: true, frame: { kind: 'auth', proof } };
    }
    case TAG_REQ: {
      const [, id, type, body] = v as unknown[];
      if (v.length !== 4) return { ok: false, reason: 'req: wrong length' };
      if (!isId(id)) return { ok: false, reason: 'req: bad id' };
      if (!isType(type)) return { ok: false, reason: 'req: bad type' };
      return { ok: true, frame: { kind: 'req', id, type, body } };
    }
    case TAG_RES_OK: {
      const [, id, body] = v as unknown[];
      if (v.length !== 3) return { ok: false, reason: 'res: wrong length' };
      if (!isId(id)) return { ok: false, reason: 'res: bad id' };
      return { ok: true, frame: { kind: 'res', id, ok: body } };
    }
    case TAG_RES_ERR: {
      const [, id, code, message, remoteCode] = v as unknown[];
      if (v.length !== 4 && v.length !== 5) return { ok: false, reason: 'res error: wrong length' };
      if (!isId(id)) return { ok: false, reason: 'res error: bad id' };
      if (!isShortString(code, MAX_CODE_LENGTH) || code.length === 0) return { ok: false, reason: 'res error: bad code' };
      if (!isShortString(message, MAX_ERROR_MESSAGE_LENGTH)) return { ok: false, reason: 'res error: bad message' };
      if (v.length === 5 && !isShortString(remoteCode, MAX_CODE_LENGTH)) {
        return { ok: false, reason: 'res error: bad remote code' };
      }
      const error: ResponseErrorFrame['error'] = { code, message };
      if (typeof remoteCode === 'string') error.remoteCode = remoteCode;
      return { ok: true, frame: { kind: 'res', id, error } };
    }
    case TAG_NOTE: {
      const [, type, body] = v as unknown[];
      if (v.length !== 3) return { ok: false, reason: 'note: wrong length' };
      if (!isType(type)) return { ok: false, reason: 'note: bad type' };
      return { ok: true, frame: { kind: 'note', type, body } };
    }
    case TAG_BYE:
      if (v.length !== 1) return { ok: false, reason: 'bye: wrong length' };
      return { ok: true, frame: { kind: 'bye' } };
    default:
      return { ok: false, reason: 'unknown frame tag' };
  }
}
