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
    ['wrong format byte', recBytes([['a', 1]], [{ actor: 'a', counter: 1 }], 3)],
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

// Record format 2: siblings with a content type and metadata (docs/engine.md).
type RawAttrs = { ct: string; meta?: Array<[string, string]> };
const attrBytes = (a: RawAttrs) =>
  Buffer.concat([u8(a.ct.length), Buffer.from(a.ct, 'latin1'), u8((a.meta ?? []).length),
    ...(a.meta ?? []).map(([n, v]) => Buffer.concat([u8(n.length), Buffer.from(n, 'latin1'), u16(v.length), Buffer.from(v, 'latin1')]))]);
const rec2 = (ctx: Array<[string, number]>, sibs: Array<RawSib & { attrs: RawAttrs }>) =>
  Buffer.concat([
    ctxBytes(ctx, 2),
    u16(sibs.length),
    ...sibs.map((s) => {
      const v = b(s.value ?? '');
      return Buffer.concat([dot(s.actor, s.counter), u64(s.ts ?? 5), u8(s.flags ?? 0), attrBytes(s.attrs), u32(v.length), v]);
    }),
  ]);
const OCTETS = { ct: 'application/octet-stream' };

describe('record format 2', () => {
  const good = rec2([['a', 2]], [
    { actor: 'a', counter: 1, value: '{}', attrs: { ct: 'application/json', meta: [['author', 'ann'], ['tag', 'x y']] } },
    { actor: 'a', counter: 2, flags: 1, attrs: OCTETS },
  ]);

  it('decodes attributes, re-encodes to the same bytes, and hands out a format-1 context', () => {
    const rec = decodeRecord(good);
    expect(rec.siblings[0]!.attrs).toEqual({ contentType: 'application/json', meta: [['author', 'ann'], ['tag', 'x y']] });
    expect(rec.siblings[1]!.attrs).toBeUndefined();
    expect(encodeRecord(rec).equals(good)).toBe(true);
    expect(recordContextBytes(good)).toEqual(ctxBytes([['a', 2]], 1));
    expect(decodeContext(recordContextBytes(good))).toHaveLength(1);
  });

  it('a record without attributes is format 1, and its format-2 spelling is refused', () => {
    const rec = decodeRecord(good);
    const plain = encodeRecord({ context: rec.context, siblings: rec.siblings.map(({ attrs: _, ...s }) => s) });
    expect(plain[0]).toBe(1);
    expect(plain).toEqual(recBytes([['a', 2]], [{ actor: 'a', counter: 1, value: '{}' }, { actor: 'a', counter: 2, flags: 1 }]));
    expectCode(() => decodeRecord(rec2([['a', 1]], [{ actor: 'a', counter: 1, value: 'v', attrs: OCTETS }])), 'CORRUPT_RECORD');
  });

  it('refuses what no encoder writes: a tombstone with attributes, unsorted or duplicate names, limits passed, truncation', () => {
    const bad = [
      rec2([['a', 1]], [{ actor: 'a', counter: 1, flags: 1, attrs: { ct: 'text/plain' } }]),
      rec2([['a', 1]], [{ actor: 'a', counter: 1, attrs: { ct: 'x', meta: [['b', '1'], ['a', '2']] } }]),
      rec2([['a', 1]], [{ actor: 'a', counter: 1, attrs: { ct: 'x', meta: [['a', '1'], ['a', '2']] } }]),
      rec2([['a', 1]], [{ actor: 'a', counter: 1, attrs: { ct: 'x', meta: [['Up', '1']] } }]),
      rec2([['a', 1]], [{ actor: 'a', counter: 1, attrs: { ct: 'x', meta: Array.from({ length: 33 }, (_, i) => [`k${String(i).padStart(2, '0')}`, '']) } }]),
      rec2([['a', 1]], [{ actor: 'a', counter: 1, attrs: { ct: 'x', meta: [['a', 'v'.repeat(8192)]] } }]),
      rec2([['a', 1]], [{ actor: 'a', counter: 1, attrs: { ct: '' , meta: [['a', '1']] } }]),
      rec2([['a', 1]], [{ actor: 'a', counter: 1, attrs: { ct: 'a\r\nb' } }]),
    ];
    for (const bytes of bad) expectCode(() => decodeRecord(bytes), 'CORRUPT_RECORD');
    for (let cut = 0; cut < good.length; cut++) expectCode(() => decodeRecord(good.subarray(0, cut)), 'CORRUPT_RECORD');
    // At the limits: accepted.
    const edge = rec2([['a', 1]], [{ actor: 'a', counter: 1, attrs: { ct: 't'.repeat(255), meta: [['n'.repeat(64), 'v'.repeat(8192 - 64)]] } }]);
    expect(encodeRecord(decodeRecord(edge)).equals(edge)).toBe(true);
  });
});
