// A seeded random source for tests and simulations: the same seed gives the
// same schedule, so a failing seed is a reproducible regression test.
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformInt } from 'pure-rand/distribution/uniformInt';

export class Rand {
  private readonly rng;
  constructor(readonly seed: number) {
    this.rng = xoroshiro128plus(seed);
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return uniformInt(this.rng, lo, hi);
  }
  /** Uniform in [0, 1), 30 bits: for APIs that take a `random()` function. */
  float(): number {
    return this.int(0, 0x3fffffff) / 0x40000000;
  }
  chance(p: number): boolean {
    return this.int(0, 999_999) < p * 1_000_000;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from empty list');
    return items[this.int(0, items.length - 1)]!;
  }
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.int(0, 255);
    return out;
  }
}

/** A seeded `random()` in [0, 1), for APIs that take one (the simulated network, fuzzers). */
export function seededRandom(seed: number): () => number {
  const rand = new Rand(seed);
  return () => rand.float();
}
