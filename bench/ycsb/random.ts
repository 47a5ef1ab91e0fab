// The generator's one seeded random source (`-p seed=`), so a run's key and
// operation sequence can be repeated. pure-rand's xoroshiro128+ is fast and
// well tested; YCSB itself uses java.util.Random / ThreadLocalRandom.
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

export class Random {
  private readonly rng;
  constructor(readonly seed: number) {
    this.rng = xoroshiro128plus(seed);
  }
  /** Uniform in [0, 1), 53 bits (Java's Random.nextDouble). */
  nextDouble(): number {
    return uniformFloat64(this.rng);
  }
  /** Integer in [lo, hi], both inclusive and safe integers. */
  int(lo: number, hi: number): number {
    return uniformInt(this.rng, lo, hi);
  }
}
