// The standalone TicTac trees of the addon and of the pure engine agree
// update by update (the same structure every write updates inside each engine).
import { describe, expect, it } from 'vitest';
import { loadBinding } from '../../src/engine/native/index.js';
import { Layout } from '../../src/record/keys.js';
import { TicTacTrees } from '../../src/engine/pure/tictac.js';
import { Rand } from '../helpers/random.js';

describe('standalone TicTac trees', () => {
  it('give the same roots, native and pure, after random XOR updates (one per call and batched)', () => {
    const rand = new Rand(99);
    const native = new (loadBinding().TicTacTrees)(4, 3, 3);
    const layout = new Layout(4, 3, 3);
    const pure = new TicTacTrees(layout);
    for (let round = 0; round < 50; round++) {
      const count = rand.int(1, 40);
      const packed = rand.bytes(count * 16);
      native.applyPacked(packed);
      for (let at = 0; at < packed.length; at += 16) {
        const position = packed.subarray(at, at + 8);
        pure.update(layout.partitionOf(position), layout.segmentOf(position), packed.readBigUInt64BE(at + 8));
      }
      expect(Buffer.from(native.roots()).equals(pure.rootsBuffer())).toBe(true);
    }
    // The updates reached the roots (a comparison of two all-zero states would prove nothing).
    expect(Buffer.from(native.roots()).some((b) => b !== 0)).toBe(true);
  });

  it('refuses a batch that is not whole 16-byte updates', () => {
    const native = new (loadBinding().TicTacTrees)(4, 3, 3);
    expect(() => native.applyPacked(Buffer.alloc(17))).toThrow(/16 bytes/);
  });
});
