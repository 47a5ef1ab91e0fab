// The message envelope of protocol version 3 (frames.ts): seq + CRC-32
// seeded with the connection's tag. Finding 1 of issue 9: bytes that do not
// decode could as well decode into another valid message, so a receiver must
// refuse any changed, cut, repeated, skipped or foreign message before it
// reads a frame.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ENVELOPE_BYTES,
  connectionTag,
  decodeFrames,
  encodeFrame,
  openMessage,
  sealMessage,
  websocketAccept,
} from '../../src/transport/frames.js';

const tag = connectionTag(websocketAccept('dGhlIHNhbXBsZSBub25jZQ=='));
const payload = Buffer.concat([
  encodeFrame({ kind: 'res', id: 7, ok: { v: Buffer.from('value'), n: 3 } }),
  encodeFrame({ kind: 'res', id: 8, error: { code: 'REMOTE', message: 'boom' } }),
]);

function reason(r: ReturnType<typeof openMessage>): string {
  expect(r.ok).toBe(false);
  return r.ok ? '' : r.reason;
}

describe('finding 1: the message envelope', () => {
  it('computes the Sec-WebSocket-Accept of RFC 6455 (both ends derive the tag from it)', () => {
    expect(websocketAccept('dGhlIHNhbXBsZSBub25jZQ==')).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });

  it('opens what it sealed, in order, and the frames inside decode as sent', () => {
    for (let seq = 1; seq <= 3; seq++) {
      const sealed = sealMessage(seq, payload, tag);
      expect(sealed.length).toBe(payload.length + ENVELOPE_BYTES);
      const o = openMessage(seq, sealed, tag);
      expect(o.ok).toBe(true);
      if (!o.ok) return;
      expect(Buffer.compare(o.payload, payload)).toBe(0);
      expect(decodeFrames(o.payload)).toEqual(decodeFrames(payload));
    }
  });

  it('opens a sealed message that is a view inside a larger buffer (as ws delivers them)', () => {
    const sealed = sealMessage(4, payload, tag);
    const big = Buffer.concat([Buffer.from('junk before'), sealed, Buffer.from('junk after')]);
    const view = big.subarray(11, 11 + sealed.length);
    const o = openMessage(4, view, tag);
    expect(o.ok && Buffer.compare(o.payload, payload)).toBe(0);
  });

  it('refuses a duplicate, a skipped and a reordered message by their seq', () => {
    const m1 = sealMessage(1, payload, tag);
    const m3 = sealMessage(3, payload, tag);
    expect(reason(openMessage(2, m1, tag))).toBe('envelope: message 1, expected 2'); // repeated
    expect(reason(openMessage(2, m3, tag))).toBe('envelope: message 3, expected 2'); // skipped
    expect(reason(openMessage(1, m3, tag))).toBe('envelope: message 3, expected 1'); // reordered
  });

  it('refuses a message sealed for another connection', () => {
    const other = connectionTag(websocketAccept('AQIDBAUGBwgJCgsMDQ4PEA=='));
    expect(reason(openMessage(1, sealMessage(1, payload, other), tag))).toMatch(/checksum mismatch/);
  });

  it('refuses a truncated message, however short, and an empty one', () => {
    const sealed = sealMessage(1, payload, tag);
    for (let len = 0; len < sealed.length; len++) {
      expect(reason(openMessage(1, sealed.subarray(0, len), tag)), `length ${len}`).toMatch(/^envelope: /);
    }
    expect(reason(openMessage(1, sealMessage(1, Buffer.alloc(0), tag), tag))).toMatch(/too short/);
  });

  it('refuses a message with any one byte changed, envelope or frames (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        fc.integer({ min: 1, max: 0xffffffff }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (bytes, seq, at, delta) => {
          const sealed = sealMessage(seq, bytes, tag);
          const i = at % sealed.length;
          sealed[i] = (sealed[i]! + delta) & 0xff;
          return !openMessage(seq, sealed, tag).ok;
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('refuses a message with bytes spliced in or cut out of the middle (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        fc.nat(),
        fc.uint8Array({ minLength: 1, maxLength: 16 }),
        fc.boolean(),
        (bytes, at, splice, cut) => {
          const sealed = sealMessage(1, bytes, tag);
          const i = at % sealed.length;
          const changed = cut
            ? Buffer.concat([sealed.subarray(0, i), sealed.subarray(Math.min(sealed.length, i + splice.length))])
            : Buffer.concat([sealed.subarray(0, i), splice, sealed.subarray(i)]);
          return changed.equals(sealed) || !openMessage(1, changed, tag).ok;
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('counts on past 2^32 messages (seq wraps)', () => {
    const seq = 0xffffffff + 2; // the 2^32 + 1st message carries seq 1
    expect(openMessage(seq, sealMessage(seq, payload, tag), tag).ok).toBe(true);
    expect(openMessage(1, sealMessage(seq, payload, tag), tag).ok).toBe(true);
  });
});
