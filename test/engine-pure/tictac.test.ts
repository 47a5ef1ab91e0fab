// The pure engine's leaf hash function (its keyed-blake3 message layout).
// Engine-level TicTac tests for both implementations live in test/engine/tictac.test.ts.
import { describe, it, expect } from 'vitest';
import { blake3 } from '@noble/hashes/blake3.js';
import { LEAF_KEY, decodeRecord, leafHash } from '../../src/engine/pure/index.js';
import { b, openMem, put } from './helpers.js';

describe('leaf hash', () => {
  it('is keyed blake3 of the causal state, first 8 bytes', async () => {
    expect(Buffer.from(LEAF_KEY)).toEqual(Buffer.from(blake3(Buffer.from('ringkv tictac leaf v1'))));
    const e = await openMem();
    await put(e, 'k', 'a');
    const rec = decodeRecord(await put(e, 'k', 'b')); // blind: 2 siblings
    const bkey = Buffer.from('b\0k');
    const actor = b(e.actor);
    const dot = (c: number) => { const o = Buffer.alloc(8); o.writeBigUInt64BE(BigInt(c)); return Buffer.concat([Buffer.from([actor.length]), actor, o]); };
    const msg = Buffer.concat([
      Buffer.from([0, 0, 0, bkey.length]), bkey,
      Buffer.from([0, 1]), dot(2), // context {me: 2}
      Buffer.from([0, 2]), dot(1), dot(2), // sibling dots, no values or timestamps
    ]);
    const want = Buffer.from(blake3(msg, { key: LEAF_KEY })).readBigUInt64BE(0);
    expect(leafHash(bkey, rec)).toBe(want);
  });
});
