// Ports of YCSB's number generators (site.ycsb.generator in
// brianfrankcooper/YCSB), kept line-for-line close to the Java so their
// distributions match: CounterGenerator, AcknowledgedCounterGenerator,
// UniformLongGenerator, ZipfianGenerator (Gray et al., SIGMOD 1994),
// ScrambledZipfianGenerator, SkewedLatestGenerator, DiscreteGenerator, and
// Utils.fnvhash64. Java longs become numbers where they stay below 2^53 and
// BigInt where they do not (the FNV hash and the scrambled zipfian's 10^16
// item space).
import type { Random } from './random.js';

export interface NumberGenerator {
  nextValue(): number;
  lastValue(): number;
}

const FNV_OFFSET_BASIS_64 = BigInt.asIntN(64, 0xcbf29ce484222325n);
const FNV_PRIME_64 = 1099511628211n;
const LONG_MIN = -(1n << 63n);

/** Utils.fnvhash64: 64-bit FNV-1 over the 8 little-endian bytes, then Math.abs (of a Java long). */
export function fnvhash64(value: bigint | number): bigint {
  let val = BigInt.asIntN(64, BigInt(value));
  let hash = FNV_OFFSET_BASIS_64;
  for (let i = 0; i < 8; i++) {
    const octet = val & 0xffn;
    val >>= 8n;
    hash = BigInt.asIntN(64, (hash ^ octet) * FNV_PRIME_64);
  }
  // Math.abs(Long.MIN_VALUE) is Long.MIN_VALUE in Java.
  return hash < 0n && hash !== LONG_MIN ? -hash : hash;
}

/** Hands out countstart, countstart+1, ...; lastValue is the last one handed out. */
export class CounterGenerator implements NumberGenerator {
  protected counter: number;
  constructor(countstart: number) {
    this.counter = countstart;
  }
  nextValue(): number {
    return this.counter++;
  }
  lastValue(): number {
    return this.counter - 1;
  }
}

const WINDOW_SIZE = 1 << 20;
const WINDOW_MASK = WINDOW_SIZE - 1;

/**
 * A counter whose lastValue is the highest value acknowledged with no gap
 * below it, so workload D's readers never choose a key whose insert has not
 * finished (YCSB's AcknowledgedCounterGenerator; single-threaded here, so no lock).
 */
export class AcknowledgedCounterGenerator extends CounterGenerator {
  private readonly window = new Uint8Array(WINDOW_SIZE);
  private limit: number;
  constructor(countstart: number) {
    super(countstart);
    this.limit = countstart - 1;
  }
  override lastValue(): number {
    return this.limit;
  }
  acknowledge(value: number): void {
    const currentSlot = value & WINDOW_MASK;
    if (this.window[currentSlot]) throw new Error('Too many unacknowledged insertion keys.');
    this.window[currentSlot] = 1;
    const beforeFirstSlot = this.limit & WINDOW_MASK;
    let index: number;
    for (index = this.limit + 1; index !== beforeFirstSlot; ++index) {
      const slot = index & WINDOW_MASK;
      if (!this.window[slot]) break;
      this.window[slot] = 0;
    }
    this.limit = index - 1;
  }
}

/** Uniform over [lb, ub], both inclusive. */
export class UniformLongGenerator implements NumberGenerator {
  private last = NaN;
  constructor(private readonly rand: Random, private readonly lb: number, private readonly ub: number) {}
  nextValue(): number {
    this.last = this.rand.int(this.lb, this.ub);
    return this.last;
  }
  lastValue(): number {
    return this.last;
  }
}

export const ZIPFIAN_CONSTANT = 0.99;

/** zeta(st..n) = initialsum + sum_{i=st}^{n-1} 1/(i+1)^theta. */
export function zetastatic(st: number, n: number, theta: number, initialsum: number): number {
  let sum = initialsum;
  for (let i = st; i < n; i++) sum += 1 / Math.pow(i + 1, theta);
  return sum;
}

/**
 * Items min..max, item min the most popular, then min+1, ... Zipfian with
 * constant theta (0.99), by Gray et al.'s algorithm. The item count may grow
 * between calls (nextLong(itemcount)); zeta is then extended incrementally.
 */
export class ZipfianGenerator implements NumberGenerator {
  private readonly items: number;
  private readonly base: number;
  private readonly theta: number;
  private readonly zeta2theta: number;
  private readonly alpha: number;
  private zetan: number;
  private eta: number;
  private countforzeta: number;
  private last = NaN;

  constructor(private readonly rand: Random, min: number, max: number, zipfianconstant = ZIPFIAN_CONSTANT, zetan?: number) {
    this.items = max - min + 1;
    this.base = min;
    this.theta = zipfianconstant;
    this.zeta2theta = zetastatic(0, 2, this.theta, 0);
    this.alpha = 1.0 / (1.0 - this.theta);
    this.zetan = zetan ?? zetastatic(0, this.items, this.theta, 0);
    this.countforzeta = this.items;
    this.eta = (1 - Math.pow(2.0 / this.items, 1 - this.theta)) / (1 - this.zeta2theta / this.zetan);
    this.nextValue();
  }

  /** The next item as a double-precision integer (exact below 2^53; above it, the same double Java's long cast sees). */
  nextLong(itemcount: number): number {
    if (itemcount !== this.countforzeta && itemcount > this.countforzeta) {
      // More items than last time: extend zeta incrementally. (YCSB keeps
      // using the constructor's `items` in eta here; so do we.)
      this.zetan = zetastatic(this.countforzeta, itemcount, this.theta, this.zetan);
      this.countforzeta = itemcount;
      this.eta = (1 - Math.pow(2.0 / this.items, 1 - this.theta)) / (1 - this.zeta2theta / this.zetan);
    }
    const u = this.rand.nextDouble();
    const uz = u * this.zetan;
    if (uz < 1.0) return this.base;
    if (uz < 1.0 + Math.pow(0.5, this.theta)) return this.base + 1;
    const ret = this.base + Math.trunc(itemcount * Math.pow(this.eta * u - this.eta + 1, this.alpha));
    this.last = ret;
    return ret;
  }

  nextValue(): number {
    return this.nextLong(this.items);
  }

  lastValue(): number {
    return this.last;
  }
}

/** zeta(10^16, 0.99), precomputed by YCSB. */
const SCRAMBLED_ZETAN = 26.46902820178302;
const SCRAMBLED_ITEM_COUNT = 10_000_000_000_000_000;

/**
 * Zipfian popularity with the popular items scattered over min..max: a
 * zipfian draw over 10^16 items, FNV-hashed, modulo the item count.
 */
export class ScrambledZipfianGenerator implements NumberGenerator {
  private readonly gen: ZipfianGenerator;
  private readonly min: number;
  private readonly itemcount: bigint;
  private last = NaN;

  constructor(rand: Random, min: number, max: number, zipfianconstant = ZIPFIAN_CONSTANT) {
    this.min = min;
    this.itemcount = BigInt(max - min + 1);
    this.gen = zipfianconstant === ZIPFIAN_CONSTANT
      ? new ZipfianGenerator(rand, 0, SCRAMBLED_ITEM_COUNT, zipfianconstant, SCRAMBLED_ZETAN)
      : new ZipfianGenerator(rand, 0, SCRAMBLED_ITEM_COUNT, zipfianconstant);
  }

  nextValue(): number {
    const drawn = this.gen.nextValue();
    this.last = this.min + Number(fnvhash64(BigInt(drawn)) % this.itemcount);
    return this.last;
  }

  lastValue(): number {
    return this.last;
  }
}

/** Favours the items the basis counter handed out most recently (workload D's "latest"). */
export class SkewedLatestGenerator implements NumberGenerator {
  private readonly zipfian: ZipfianGenerator;
  private last = NaN;
  constructor(rand: Random, private readonly basis: CounterGenerator) {
    // YCSB: new ZipfianGenerator(basis.lastValue()), i.e. items 0..lastValue-1.
    this.zipfian = new ZipfianGenerator(rand, 0, this.basis.lastValue() - 1);
    this.nextValue();
  }
  nextValue(): number {
    const max = this.basis.lastValue();
    this.last = max - this.zipfian.nextLong(max);
    return this.last;
  }
  lastValue(): number {
    return this.last;
  }
}

/** Picks one of several values with the given weights (YCSB's DiscreteGenerator). */
export class DiscreteGenerator<T> {
  private readonly values: Array<{ weight: number; value: T }> = [];
  constructor(private readonly rand: Random) {}
  addValue(weight: number, value: T): void {
    this.values.push({ weight, value });
  }
  get size(): number {
    return this.values.length;
  }
  next(): T {
    let sum = 0;
    for (const p of this.values) sum += p.weight;
    let val = this.rand.nextDouble();
    for (const p of this.values) {
      const pw = p.weight / sum;
      if (val < pw) return p.value;
      val -= pw;
    }
    // Rounding can leave val a hair above the last share.
    const last = this.values[this.values.length - 1];
    if (!last) throw new Error('DiscreteGenerator has no values');
    return last.value;
  }
}
