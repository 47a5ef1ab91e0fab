// Bucket and key names in URL path segments: any bytes survive the client's
// encoding and the server's decoding, escaped or not.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { percentDecode, percentEncode } from '../../src/http/wire.js';

describe('percent-encoded names', () => {
  it('round-trip any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(percentDecode(percentEncode(bytes)).equals(Buffer.from(bytes))).toBe(true);
      }),
      { numRuns: 2_000, seed: 7 },
    );
  });

  it('leave unreserved names as they are and escape everything else', () => {
    expect(percentEncode(Buffer.from('user6284781860667377211'))).toBe('user6284781860667377211');
    expect(percentEncode(Buffer.from('a b/c%'))).toBe('a%20b%2Fc%25');
    expect(percentEncode(Buffer.from([0, 0xff]))).toBe('%00%FF');
  });

  it('decode plain ASCII, escapes, and raw UTF-8 characters a client did not escape', () => {
    expect(percentDecode('users').equals(Buffer.from('users'))).toBe(true);
    expect(percentDecode('a%20b%2fc').equals(Buffer.from('a b/c'))).toBe(true);
    expect(percentDecode('grüße').equals(Buffer.from('grüße', 'utf8'))).toBe(true);
    expect(() => percentDecode('bad%2')).toThrow(/bad percent escape/);
    expect(() => percentDecode('bad%zz')).toThrow(/bad percent escape/);
  });
});
