import { describe, expect, it } from 'vitest';
import { decodeFrame, decodeFrames, encodeFrame, packValue, wireCopy, PROTOCOL_VERSION } from '../../src/transport/frames.js';
import type { Frame } from '../../src/transport/frames.js';
import { seededRandom } from '../helpers/random.js';

describe('frames', () => {
  it('round-trips every frame kind', () => {
    const frames: Frame[] = [
      { kind: 'hello', version: PROTOCOL_VERSION, nodeId: 'n1.a-b_c', cluster: 'prod' },
      { kind: 'req', id: 7, type: 'kv.get', body: { k: Buffer.from('key'), n: [1, 2n ** 63n] } },
      { kind: 'res', id: 7, ok: { v: Buffer.from([1, 2, 3]) } },
      { kind: 'res', id: 8, ok: undefined },
      { kind: 'res', id: 9, error: { code: 'REMOTE', message: 'boom' } },
      { kind: 'res', id: 9, error: { code: 'REMOTE', message: 'boom', remoteCode: 'ENOENT' } },
      { kind: 'note', type: 'gossip', body: null },
    ];
    for (const f of frames) {
      const d = decodeFrame(encodeFrame(f));
      expect(d.ok).toBe(true);
      if (d.ok) expect(d.frame).toEqual(f);
    }
  });

  it('binary arrives as Buffer, bigint as bigint', () => {
    const out = wireCopy({ a: Buffer.from('x'), b: new Uint8Array([9]), c: 2n ** 60n, d: 2 ** 40 }) as Record<string, unknown>;
    expect(Buffer.isBuffer(out.a)).toBe(true);
    expect(Buffer.isBuffer(out.b)).toBe(true);
    expect(out.c).toBe(2n ** 60n);
    expect(out.d).toBe(2 ** 40);
  });

  it('rejects malformed frames without throwing', () => {
    const bad: Uint8Array[] = [
      Buffer.alloc(0),
      Buffer.from('garbage!!'),
      Buffer.from([0xc1]),
      Buffer.from([0x92, 0x01]), // truncated array
      packValue({ kind: 'hello' }),
      packValue([]),
      packValue([99, 1]),
      packValue([0, PROTOCOL_VERSION, 'bad id!', 'c']),
      packValue([0, PROTOCOL_VERSION, 'n1', '']),
      packValue([0, PROTOCOL_VERSION, 'n1']),
      packValue([1, -1, 't', null]),
      packValue([1, 1.5, 't', null]),
      packValue([1, 1, '', null]),
      packValue([1, 1, 'x'.repeat(1000), null]),
      packValue([2, 'x', null]),
      packValue([3, 1, '', 'm']),
      packValue([3, 1, 'REMOTE', 5]),
      packValue([4, 5, null]),
      Buffer.concat([packValue([4, 't', null]), Buffer.from([1])]), // trailing bytes
    ];
    for (const b of bad) {
      const d = decodeFrame(b);
      expect(d.ok, Buffer.from(b).toString('hex')).toBe(false);
    }
  });

  it('never throws on random bytes or mutated frames', () => {
    const rnd = seededRandom(42);
    const good = encodeFrame({ kind: 'req', id: 3, type: 't', body: { a: [1, 'x', Buffer.alloc(5)] } });
    for (let i = 0; i < 5000; i++) {
      let b: Buffer;
      if (i % 2 === 0) {
        b = Buffer.alloc(Math.floor(rnd() * 64));
        for (let j = 0; j < b.length; j++) b[j] = Math.floor(rnd() * 256);
      } else {
        b = Buffer.from(good);
        const flips = 1 + Math.floor(rnd() * 3);
        for (let j = 0; j < flips; j++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      }
      expect(() => decodeFrame(b)).not.toThrow();
    }
  });

  it('a message carries several frames back to back, decoded in order', () => {
    const frames: Frame[] = [
      { kind: 'req', id: 1, type: 'kv.get', body: { k: Buffer.from('a') } },
      { kind: 'note', type: 'gossip', body: [1, 2] },
      { kind: 'req', id: 2, type: 'kv.get', body: { k: Buffer.from('b'), big: 2n ** 63n } },
    ];
    const d = decodeFrames(Buffer.concat(frames.map(encodeFrame)));
    expect(d).toEqual({ ok: true, frames });
    // one frame is a message too
    expect(decodeFrames(encodeFrame({ kind: 'bye' }))).toEqual({ ok: true, frames: [{ kind: 'bye' }] });
  });

  it('a message with any bad frame is refused as a whole, saying which frame', () => {
    const good = encodeFrame({ kind: 'res', id: 1, ok: 'x' });
    const bad: Array<[string, Uint8Array]> = [
      ['empty', Buffer.alloc(0)],
      ['garbage after a valid frame', Buffer.concat([good, Buffer.from('garbage!!')])],
      ['a truncated frame after a valid one', Buffer.concat([good, good.subarray(0, good.length - 1)])],
      ['a stray byte after a valid frame', Buffer.concat([good, Buffer.from([0xc1])])],
      ['a wrong-shaped frame in the middle', Buffer.concat([good, packValue([2, 'x', null]), good])],
      ['a non-frame value last', Buffer.concat([good, good, packValue(7)])],
    ];
    for (const [name, b] of bad) {
      const d = decodeFrames(b);
      expect(d.ok, name).toBe(false);
    }
    const d = decodeFrames(Buffer.concat([good, packValue([2, 'x', null]), good]));
    expect(d.ok === false && d.reason).toBe('frame 2 of 3: res: bad id');
  });

  it('decodeFrames never throws on random bytes or mutated messages', () => {
    const rnd = seededRandom(7);
    const good = Buffer.concat([
      encodeFrame({ kind: 'req', id: 3, type: 't', body: { a: [1, 'x', Buffer.alloc(5)] } }),
      encodeFrame({ kind: 'note', type: 'g', body: null }),
    ]);
    for (let i = 0; i < 5000; i++) {
      const b = Buffer.from(good);
      const flips = 1 + Math.floor(rnd() * 3);
      for (let j = 0; j < flips; j++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      const cut = i % 3 === 0 ? b.subarray(0, Math.floor(rnd() * b.length)) : b;
      expect(() => decodeFrames(cut)).not.toThrow();
    }
  });
});
