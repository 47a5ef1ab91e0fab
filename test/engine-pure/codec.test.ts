import { describe, it, expect } from 'vitest';
import {
  decodeContext,
  decodeRecord,
  encodeContext,
  encodeRecord,
  recordContextBytes,
  type DecodedRecord,
} from '../../src/engine/pure/index.js';
import { b, expectCode } from './helpers.js';

// Raw byte builders, independent of the encoder under test.
const u8 = (n: number) => Buffer.from([n]);
const u16 = (n: number) => { const x = Buffer.alloc(2); x.writeUInt16BE(n); return x; };
const u32 = (n: number) => { const x = Buffer.alloc(4); x.writeUInt32BE(n); return x; };
const u64 = (n: number | bigint) => { const x = Buffer.alloc(8); x.writeBigUInt64BE(BigInt(n)); return x; };
const dot = (actor: string | Buffer, counter: number | bigint) => {
  const a = typeof actor === 'string' ? b(actor) : actor;
  return Buffer.concat([u8(a.length), a, u64(counter)]);
};
const ctxBytes = (entries: Array<[string, number | bigint]>, format = 1) =>
  Buffer.concat([u8(format), u16(entries.length), ...entries.map(([a, c]) => dot(a, c))]);
type RawSib = { actor: string; counter: number | bigint; ts?: number | bigint; flags?: number; value?: string; valueLen?: number };
const recBytes = (ctx: Array<[string, number | bigint]>, sibs: RawSib[], format = 1) =>
  Buffer.concat([
    ctxBytes(ctx, format),
    u16(sibs.length),
    ...sibs.map((s) => {
      const v = b(s.value ?? '');
      return Buffer.concat([dot(s.actor, s.counter), u64(s.ts ?? 5), u8(s.flags ?? 0), u32(s.valueLen ?? v.length), v]);
    }),
  ]);

const MAX = 2 ** 53 - 1;

describe('context codec', () => {
  it('treats null, empty and n=0 as no context', () => {
    expect(decodeContext(null)).toEqual([]);
    expect(decodeContext(Buffer.alloc(0))).toEqual([]);
    expect(decodeContext(ctxBytes([]))).toEqual([]);
    expect(encodeContext([])).toEqual(ctxBytes([]));
  });

  it('round-trips, with shorter prefixes first', () => {
    const raw = ctxBytes([['a', 1], ['ab', MAX], ['b', 7]]);
    const ctx = decodeContext(raw);
    expect(ctx.map((e) => [e.actor.toString(), e.counter])).toEqual([['a', 1], ['ab', MAX], ['b', 7]]);
    expect(encodeContext(ctx)).toEqual(raw);
  });

  it('accepts 1024 entries and rejects 1025', () => {
    const names = (n: number) => Array.from({ length: n }, (_, i): [string, number] => [`a${String(i).padStart(5, '0')}`, 1]);
    expect(decodeContext(ctxBytes(names(1024)))).toHaveLength(1024);
    expect(() => decodeContext(ctxBytes(names(1025)))).toThrow(expect.objectContaining({ code: 'BAD_CONTEXT' }));
  });

  const bad: Array<[string, Buffer]> = [
    ['wrong format byte', ctxBytes([['a', 1]], 2)],
    ['format 0', ctxBytes([], 0)],
    ['only the format byte', Buffer.from([1])],
    ['truncated count', Buffer.from([1, 0])],
    ['truncated actor', Buffer.concat([u8(1), u16(1), u8(3), b('ab')])],
    ['truncated counter', ctxBytes([['a', 1]]).subarray(0, -1)],
    ['trailing bytes', Buffer.concat([ctxBytes([['a', 1]]), u8(0)])],
    ['unsorted actors', ctxBytes([['b', 1], ['a', 1]])],
    ['longer before its prefix', ctxBytes([['ab', 1], ['a', 1]])],
    ['duplicate actors', ctxBytes([['a', 1], ['a', 2]])],
    ['counter 0', ctxBytes([['a', 0]])],
    ['counter above 2^53-1', ctxBytes([['a', BigInt(MAX) + 1n]])],
    ['empty actor', Buffer.concat([u8(1), u16(1), u8(0), u64(1)])],
    ['count larger than the entries', Buffer.concat([u8(1), u16(2), dot('a', 1)])],
  ];
  for (const [name, raw] of bad) {
    it(`rejects ${name} with BAD_CONTEXT`, async () => {
      await expectCode(() => decodeContext(raw), 'BAD_CONTEXT');
    });
  }
});

describe('record codec', () => {
  const valid = recBytes(
    [['a', 3], ['b', 2]],
    [
      { actor: 'a', counter: 2, ts: 10, value: 'x' },
      { actor: 'a', counter: 3, ts: MAX, flags: 1 },
      { actor: 'b', counter: 2, ts: 0, value: '' },
    ],
  );

  it('decodes every field and re-encodes to the same bytes', () => {
    const rec = decodeRecord(valid);
    expect(rec.context.map((e) => [e.actor.toString(), e.counter])).toEqual([['a', 3], ['b', 2]]);
    expect(rec.siblings.map((s) => [s.actor.toString(), s.counter, s.timestamp, s.tombstone, s.value.toString()])).toEqual([
      ['a', 2, 10, false, 'x'],
      ['a', 3, MAX, true, ''],
      ['b', 2, 0, false, ''],
    ]);
    expect(encodeRecord(rec)).toEqual(valid);
  });

  it('round-trips an encoded record', () => {
    const rec: DecodedRecord = {
      context: [{ actor: b('n1:0000000000000001'), counter: 9 }],
      siblings: [{ actor: b('n1:0000000000000001'), counter: 9, timestamp: 1234, tombstone: false, value: Buffer.alloc(70000, 7) }],
    };
    expect(decodeRecord(encodeRecord(rec))).toEqual(rec);
  });

  it('extracts the context bytes clients get', () => {
    expect(recordContextBytes(valid)).toEqual(ctxBytes([['a', 3], ['b', 2]]));
    expect(decodeContext(recordContextBytes(valid))).toEqual(decodeRecord(valid).context);
  });

  it('rejects every truncation', async () => {
    for (let n = 0; n < valid.length; n++) await expectCode(() => decodeRecord(valid.subarray(0, n)), 'CORRUPT_RECORD');
  });

  const bad: Array<[string, Buffer]> = [
    ['wrong format byte', recBytes([['a', 1]], [{ actor: 'a', counter: 1 }], 2)],
    ['trailing bytes', Buffer.concat([valid, u8(0)])],
    ['no siblings', recBytes([['a', 1]], [])],
    ['unsorted context', recBytes([['b', 1], ['a', 1]], [{ actor: 'a', counter: 1 }])],
    ['duplicate context actor', recBytes([['a', 1], ['a', 1]], [{ actor: 'a', counter: 1 }])],
    ['context counter 0', recBytes([['a', 1], ['b', 0]], [{ actor: 'a', counter: 1 }])],
    ['context counter above 2^53-1', recBytes([['a', BigInt(MAX) + 1n]], [{ actor: 'a', counter: 1 }])],
    ['sibling not covered (counter)', recBytes([['a', 1]], [{ actor: 'a', counter: 2 }])],
    ['sibling not covered (actor)', recBytes([['a', 1]], [{ actor: 'b', counter: 1 }])],
    ['duplicate sibling dot', recBytes([['a', 2]], [{ actor: 'a', counter: 1 }, { actor: 'a', counter: 1 }])],
    ['siblings unsorted by counter', recBytes([['a', 2]], [{ actor: 'a', counter: 2 }, { actor: 'a', counter: 1 }])],
    ['siblings unsorted by actor', recBytes([['a', 2], ['b', 2]], [{ actor: 'b', counter: 1 }, { actor: 'a', counter: 1 }])],
    ['sibling counter 0', recBytes([['a', 1]], [{ actor: 'a', counter: 0 }])],
    ['sibling timestamp above 2^53-1', recBytes([['a', 1]], [{ actor: 'a', counter: 1, ts: BigInt(MAX) + 1n }])],
    ['unknown flag bits', recBytes([['a', 1]], [{ actor: 'a', counter: 1, flags: 2 }])],
    ['tombstone with a value', recBytes([['a', 1]], [{ actor: 'a', counter: 1, flags: 1, value: 'x' }])],
    ['value length past the end', recBytes([['a', 1]], [{ actor: 'a', counter: 1, value: 'x', valueLen: 2 }])],
    ['empty sibling actor', Buffer.concat([ctxBytes([['a', 1]]), u16(1), u8(0), u64(1), u64(1), u8(0), u32(0)])],
    ['empty record', Buffer.alloc(0)],
  ];
  for (const [name, raw] of bad) {
    it(`rejects ${name} with CORRUPT_RECORD`, async () => {
      await expectCode(() => decodeRecord(raw), 'CORRUPT_RECORD');
    });
  }
});
