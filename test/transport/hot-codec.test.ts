// The hot frames of protocol version 5 (src/transport/hot-codec.ts): a
// second encoding of the kv.get / kv.merge requests and replies that must
// decode to exactly the frame their msgpack encoding decodes to, decline
// what it cannot carry exactly, and refuse malformed bytes with a reason,
// never a throw.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeFrames, encodeFrame, encodeReply, encodeRequest, type Frame, type RequestFrame, type ResponseOkFrame } from '../../src/transport/frames.js';
import { HOT_FIELDS, HOT_MARKER, HOT_VERSION, decodeHot, encodeHotReply, encodeHotRequest } from '../../src/transport/hot-codec.js';
import { PEER_MESSAGES, decodePeerReply, decodePeerRequest } from '../../src/node/messages.js';

const b = Buffer.from('bucket');
const k = Buffer.from('key-1');
const record = Buffer.from([1, 2, 3, 0xc1, 0xc1, 4]);

/** What the receiver of `frame` sees through msgpack: the reference. */
function viaMsgpack(frame: Frame): Frame {
  const d = decodeFrames(encodeFrame(frame));
  if (!d.ok) throw new Error(d.reason);
  return d.frames[0]!;
}

function viaHot(bytes: Buffer): Frame {
  expect(bytes[0]).toBe(HOT_MARKER);
  const d = decodeFrames(bytes, true);
  if (!d.ok) throw new Error(d.reason);
  expect(d.frames).toHaveLength(1);
  return d.frames[0]!;
}

describe('hot frames: the same frame as msgpack', () => {
  const requests: Array<[string, RequestFrame]> = [
    ['kv.get, bare', { kind: 'req', id: 1, type: 'kv.get', body: { b, k } }],
    ['kv.get with ring and hints', { kind: 'req', id: 2 ** 40, type: 'kv.get', body: { b, k, ring: 7, hints: true } }],
    ['kv.get, hints false, ring 0', { kind: 'req', id: 3, type: 'kv.get', body: { b, k, ring: 0, hints: false } }],
    ['kv.get, empty key', { kind: 'req', id: 4, type: 'kv.get', body: { b, k: Buffer.alloc(0) } }],
    ['kv.merge', { kind: 'req', id: 5, type: 'kv.merge', body: { b, k, record } }],
    ['kv.merge with flags and hint', { kind: 'req', id: 6, type: 'kv.merge', body: { b, k, record, lww: true, durable: false, hint: 'n2' } }],
    ['kv.merge, hint null', { kind: 'req', id: 7, type: 'kv.merge', body: { b, k, record, hint: null, durable: true } }],
  ];
  it.each(requests)('request: %s', (_what, frame) => {
    const hot = encodeHotRequest(frame);
    expect(hot).not.toBeNull();
    expect(viaHot(hot!)).toEqual(viaMsgpack(frame));
    // And the node's one definition accepts it alike.
    const type = frame.type as 'kv.get' | 'kv.merge';
    expect(decodePeerRequest(type, (viaHot(hot!) as RequestFrame).body)).toEqual(decodePeerRequest(type, (viaMsgpack(frame) as RequestFrame).body));
  });

  const replies: Array<[string, string, ResponseOkFrame]> = [
    ['kv.get found', 'kv.get', { kind: 'res', id: 1, ok: { record } }],
    ['kv.get not found', 'kv.get', { kind: 'res', id: 2, ok: { record: null } }],
    ['kv.get with a reap floor', 'kv.get', { kind: 'res', id: 3, ok: { record: null, reaped: record } }],
    ['kv.get, reaped null', 'kv.get', { kind: 'res', id: 4, ok: { record, reaped: null } }],
    ['kv.merge', 'kv.merge', { kind: 'res', id: 5, ok: { durable: false } }],
    ['kv.merge hinted', 'kv.merge', { kind: 'res', id: 6, ok: { durable: true, hinted: true } }],
  ];
  it.each(replies)('reply: %s', (_what, type, frame) => {
    const hot = encodeHotReply(frame, type);
    expect(hot).not.toBeNull();
    expect(viaHot(hot!)).toEqual(viaMsgpack(frame));
    const t = type as 'kv.get' | 'kv.merge';
    expect(decodePeerReply(t, (viaHot(hot!) as ResponseOkFrame).ok)).toEqual(decodePeerReply(t, (viaMsgpack(frame) as ResponseOkFrame).ok));
  });

  it('declines what it cannot carry exactly: those frames go as msgpack', () => {
    const declined: RequestFrame[] = [
      { kind: 'req', id: 1, type: 'ping', body: {} },
      { kind: 'req', id: 1, type: 'kv.get', body: { b, k, extra: 1 } },
      { kind: 'req', id: 1, type: 'kv.get', body: { b, k, ring: -1 } },
      { kind: 'req', id: 1, type: 'kv.get', body: { b, k, ring: 1.5 } },
      { kind: 'req', id: 1, type: 'kv.get', body: { b, k, ring: 2 ** 32 } },
      { kind: 'req', id: 1, type: 'kv.get', body: { b, k, hints: 1 } },
      { kind: 'req', id: 1, type: 'kv.get', body: { b: 'bucket', k } },
      { kind: 'req', id: 2 ** 48, type: 'kv.get', body: { b, k } },
      { kind: 'req', id: 1, type: 'kv.merge', body: { b, k } },
      { kind: 'req', id: 1, type: 'kv.merge', body: { b, k, record, hint: 'é' } },
      { kind: 'req', id: 1, type: 'kv.merge', body: { b, k, record, hint: 'x'.repeat(65) } },
      { kind: 'req', id: 1, type: 'kv.merge', body: [b, k, record] },
    ];
    for (const f of declined) {
      expect(encodeHotRequest(f)).toBeNull();
      // encodeRequest falls back to msgpack, which carries it as it is.
      expect(encodeRequest(f, HOT_VERSION)[0]).not.toBe(HOT_MARKER);
      expect(decodeFrames(encodeRequest(f, HOT_VERSION), true)).toEqual({ ok: true, frames: [viaMsgpack(f)] });
    }
    expect(encodeHotReply({ kind: 'res', id: 1, ok: { record, pending: ['n2'] } }, 'kv.get')).toBeNull();
    expect(encodeHotReply({ kind: 'res', id: 1, ok: { reaped: null } }, 'kv.get')).toBeNull();
    expect(encodeHotReply({ kind: 'res', id: 1, ok: { durable: 'yes' } }, 'kv.merge')).toBeNull();
    expect(encodeHotReply({ kind: 'res', id: 1, ok: {} }, 'ping')).toBeNull();
    // Below version 5 nothing is hot.
    expect(encodeRequest(requests[0]![1], HOT_VERSION - 1)[0]).not.toBe(HOT_MARKER);
    expect(encodeReply(replies[0]![2], 'kv.get', HOT_VERSION - 1)[0]).not.toBe(HOT_MARKER);
  });

  it('each hot layout carries exactly fields of its message in the one table (src/node/messages.ts)', () => {
    for (const [type, fields] of Object.entries(HOT_FIELDS)) {
      const schemas = PEER_MESSAGES[type as keyof typeof HOT_FIELDS];
      expect(Object.keys(schemas.req.shape).sort()).toEqual([...fields.req].sort());
      // The kv.get reply's `pending` (a replica still receiving) is left to msgpack.
      expect(Object.keys(schemas.res.shape).filter((f) => f !== 'pending').sort()).toEqual([...fields.res].sort());
    }
  });
});

// ---------------------------------------------------------------------------
// Properties

const bytes = fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u));
const tri = <T>(v: fc.Arbitrary<T>) => fc.option(fc.option(v, { nil: null }), { nil: undefined });
const optBool = fc.option(fc.boolean(), { nil: undefined });
const id = fc.integer({ min: 0, max: 2 ** 48 - 1 });
const getReq = fc.record({ id, body: fc.record({ b: bytes, k: bytes, ring: fc.option(fc.integer({ min: 0, max: 2 ** 32 - 1 }), { nil: undefined }), hints: optBool }) }).map(({ id, body }): RequestFrame => ({ kind: 'req', id, type: 'kv.get', body }));
const mergeReq = fc
  .record({ id, body: fc.record({ b: bytes, k: bytes, record: bytes, lww: optBool, durable: optBool, hint: tri(fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/)) }) })
  .map(({ id, body }): RequestFrame => ({ kind: 'req', id, type: 'kv.merge', body }));
const getRes = fc.record({ id, ok: fc.record({ record: fc.option(bytes, { nil: null }), reaped: tri(bytes) }) }).map(({ id, ok }): [string, ResponseOkFrame] => ['kv.get', { kind: 'res', id, ok }]);
const mergeRes = fc.record({ id, ok: fc.record({ durable: fc.boolean(), hinted: optBool }) }).map(({ id, ok }): [string, ResponseOkFrame] => ['kv.merge', { kind: 'res', id, ok }]);

describe('hot frames: properties', () => {
  it('every kv.get / kv.merge request and reply round-trips to the frame msgpack gives', () => {
    fc.assert(
      fc.property(fc.oneof(getReq, mergeReq), (frame) => {
        expect(viaHot(encodeHotRequest(frame)!)).toEqual(viaMsgpack(frame));
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.oneof(getRes, mergeRes), ([type, frame]) => {
        expect(viaHot(encodeHotReply(frame, type)!)).toEqual(viaMsgpack(frame));
      }),
      { numRuns: 500 },
    );
  });

  it('a message mixing hot and msgpack frames decodes to the same frames, in order', () => {
    const other = fc.record({ id, n: fc.integer() }).map(({ id, n }): Frame => ({ kind: 'req', id, type: 'ping', body: { n, bin: Buffer.from([0xc1]) } }));
    fc.assert(
      fc.property(fc.array(fc.oneof(getReq, mergeReq, other), { minLength: 1, maxLength: 12 }), (frames) => {
        const message = Buffer.concat(frames.map((f) => encodeRequest(f as RequestFrame, HOT_VERSION)));
        const reference = Buffer.concat(frames.map((f) => encodeFrame(f)));
        expect(decodeFrames(message, true)).toEqual(decodeFrames(reference));
      }),
      { numRuns: 300 },
    );
  });

  it('malformed hot frames are refused with a reason, never a throw; a hot frame on a version-4 connection is refused', () => {
    const valid = fc.oneof(
      fc.oneof(getReq, mergeReq).map((f) => encodeHotRequest(f)!),
      fc.oneof(getRes, mergeRes).map(([t, f]) => encodeHotReply(f, t)!),
    );
    fc.assert(
      fc.property(valid, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat(), (hot, at, value, cut) => {
        expect(decodeFrames(hot, false).ok).toBe(false);
        // One byte changed: decodes to something or is refused, and never throws.
        const changed = Buffer.from(hot);
        changed[at % changed.length] = value;
        const d = decodeFrames(changed, true);
        if (!d.ok) expect(d.reason).toMatch(/\S/);
        // Cut short, or with bytes after it that are not a frame: refused.
        const short = hot.subarray(0, cut % hot.length);
        if (short.length > 0) expect(decodeFrames(short, true).ok).toBe(false);
        expect(decodeFrames(Buffer.concat([hot, Buffer.from([HOT_MARKER])]), true).ok).toBe(false);
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (tail) => {
        const raw = Buffer.concat([Buffer.from([HOT_MARKER]), tail]);
        expect(() => decodeHot(raw, 0)).not.toThrow();
        expect(() => decodeFrames(raw, true)).not.toThrow();
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses unknown kinds, unused flag bits and a tri-state of 3, by name', () => {
    const ok = encodeHotRequest({ kind: 'req', id: 1, type: 'kv.get', body: { b, k } })!;
    const withKind = Buffer.from(ok);
    withKind[1] = 9;
    expect(decodeFrames(withKind, true)).toMatchObject({ ok: false, reason: expect.stringContaining('unknown kind 9') });
    const withFlags = Buffer.from(ok);
    withFlags[8] = 0x80;
    expect(decodeFrames(withFlags, true)).toMatchObject({ ok: false, reason: expect.stringContaining('unknown flags') });
    const tri3 = Buffer.from(ok);
    tri3[8] = 3;
    expect(decodeFrames(tri3, true)).toMatchObject({ ok: false, reason: expect.stringContaining('hints') });
  });
});
