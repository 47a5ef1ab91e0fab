import { describe, expect, it } from 'vitest';
import { EngineError } from '../../src/record/errors.js';
import { encodeRecord, type DecodedRecord } from '../../src/record/codec.js';
import { keyId, makeBkey } from '../../src/record/keys.js';
import { reconcile } from '../../src/record/reconcile.js';

const b = (s: string): Buffer => Buffer.from(s);
const sibling = (actor: string, counter: number, value: string) => ({ actor: b(actor), counter, timestamp: counter, tombstone: false, value: b(value) });

describe('keyId, the one (bucket, key) identity', () => {
  it('is the bkey read as latin1, so keys split differently never collide', () => {
    expect(keyId(b('ab'), b('c'))).not.toBe(keyId(b('a'), b('bc')));
    const bucket = new Uint8Array([0x62, 0xff]);
    const key = new Uint8Array([0x00, 0x80, 0x01]);
    expect(keyId(bucket, key)).toBe(makeBkey(bucket, key).toString('latin1'));
  });
});

describe('reconcile', () => {
  it('returns a copy of a single record and the sync of several', () => {
    const one = encodeRecord({ context: [{ actor: b('a'), counter: 1 }], siblings: [sibling('a', 1, 'x')] });
    const copy = reconcile([one], 'siblings');
    expect(copy).toEqual(one);
    expect(copy).not.toBe(one);
    const other = encodeRecord({ context: [{ actor: b('b'), counter: 1 }], siblings: [sibling('b', 1, 'y')] });
    const both: DecodedRecord = {
      context: [{ actor: b('a'), counter: 1 }, { actor: b('b'), counter: 1 }],
      siblings: [sibling('a', 1, 'x'), sibling('b', 1, 'y')],
    };
    expect(reconcile([one, other], 'siblings')).toEqual(encodeRecord(both));
  });

  it('refuses causally inconsistent records (each covering the other\'s live dot) with CORRUPT_RECORD, not an empty record', () => {
    const context = [{ actor: b('a'), counter: 1 }, { actor: b('b'), counter: 1 }];
    const x = encodeRecord({ context, siblings: [sibling('a', 1, 'x')] });
    const y = encodeRecord({ context, siblings: [sibling('b', 1, 'y')] });
    expect(() => reconcile([x, y], 'siblings')).toThrow(expect.objectContaining({ code: 'CORRUPT_RECORD' }));
    expect(() => reconcile([x, y], 'siblings')).toThrow(EngineError);
  });
});
