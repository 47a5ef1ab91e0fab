// The ported YCSB generators: distributions (seeded, so every run draws the
// same numbers), key names identical to Java YCSB's, the operation mix.
import { describe, expect, it } from 'vitest';
import {
  AcknowledgedCounterGenerator,
  DiscreteGenerator,
  fnvhash64,
  ScrambledZipfianGenerator,
  SkewedLatestGenerator,
  UniformLongGenerator,
  ZipfianGenerator,
  zetastatic,
} from '../../bench/ycsb/generators.js';
import { workloadConfig } from '../../bench/ycsb/properties.js';
import { Random } from '../../bench/ycsb/random.js';
import { CoreWorkload } from '../../bench/ycsb/workload.js';

const DRAWS = 200_000;

function histogram(next: () => number, size: number, draws = DRAWS): { counts: number[]; outside: number[] } {
  const counts = new Array<number>(size).fill(0);
  const outside: number[] = [];
  for (let i = 0; i < draws; i++) {
    const v = next();
    if (Number.isInteger(v) && v >= 0 && v < size) counts[v]!++;
    else outside.push(v);
  }
  return { counts, outside };
}

describe('YCSB generators', () => {
  it('zipfian: item i has the share 1/((i+1)^0.99 · zeta(n)) at the head, and every draw is in range', () => {
    const gen = new ZipfianGenerator(new Random(7), 0, 999);
    const { counts, outside } = histogram(() => gen.nextValue(), 1000);
    expect(outside).toEqual([]);
    const zetan = zetastatic(0, 1000, 0.99, 0);
    // Gray et al.'s algorithm is exact for the two hottest items, close for the next ones.
    expect(counts[0]! / DRAWS).toBeCloseTo(1 / zetan, 2);
    expect(counts[1]! / DRAWS).toBeCloseTo(1 / Math.pow(2, 0.99) / zetan, 2);
    const top10 = counts.slice(0, 10).reduce((a, b) => a + b, 0) / DRAWS;
    expect(top10).toBeGreaterThan(0.35);
    expect(top10).toBeLessThan(0.45);
    // Popularity falls with the rank.
    expect(counts[0]).toBeGreaterThan(counts[1]!);
    expect(counts[1]).toBeGreaterThan(counts[10]!);
    expect(counts[10]).toBeGreaterThan(counts[900]!);
  });

  it('scrambled zipfian: popular items scattered over the keyspace, the hottest at fnvhash64(0) mod n with YCSB\'s ~1/26.47 share', () => {
    const gen = new ScrambledZipfianGenerator(new Random(11), 0, 999);
    const { counts, outside } = histogram(() => gen.nextValue(), 1000);
    expect(outside).toEqual([]);
    const hottest = counts.indexOf(Math.max(...counts));
    expect(hottest).toBe(Number(fnvhash64(0) % 1000n)); // 211
    expect(counts[hottest]! / DRAWS).toBeCloseTo(1 / 26.469, 2);
    // Every tenth of the keyspace gets a fair part of the load (no clustering at the low keys).
    for (let d = 0; d < 10; d++) {
      const share = counts.slice(d * 100, d * 100 + 100).reduce((a, b) => a + b, 0) / DRAWS;
      expect(share).toBeGreaterThan(0.05);
      expect(share).toBeLessThan(0.16);
    }
    // The ten most popular keys are spread, not adjacent.
    const top = [...counts.keys()].sort((a, b) => counts[b]! - counts[a]!).slice(0, 10);
    expect(Math.max(...top) - Math.min(...top)).toBeGreaterThan(500);
  });

  it('latest: favours the most recently acknowledged inserts and never chooses a key beyond them', () => {
    const basis = new AcknowledgedCounterGenerator(1000);
    const gen = new SkewedLatestGenerator(new Random(3), basis);
    let recent = 0;
    let beyond = 0;
    let negative = 0;
    for (let i = 0; i < DRAWS; i++) {
      if (i % 100 === 0) basis.acknowledge(basis.nextValue());
      const v = gen.nextValue();
      const last = basis.lastValue();
      if (v > last) beyond++;
      if (v < 0) negative++;
      if (v > last - 10) recent++;
    }
    expect(beyond).toBe(0);
    expect(negative).toBe(0);
    // About a third of the draws hit the 10 newest of ~3000 keys.
    expect(recent / DRAWS).toBeGreaterThan(0.25);
  });

  it('uniform: every value of the range, nothing outside it', () => {
    const gen = new UniformLongGenerator(new Random(5), 0, 99);
    const { counts, outside } = histogram(() => gen.nextValue(), 100, 50_000);
    expect(outside).toEqual([]);
    expect(Math.min(...counts)).toBeGreaterThan(350); // expected 500 each
    expect(Math.max(...counts)).toBeLessThan(650);
  });

  it('the same seed draws the same sequence', () => {
    const a = new ScrambledZipfianGenerator(new Random(99), 0, 9999);
    const b = new ScrambledZipfianGenerator(new Random(99), 0, 9999);
    const draw = (g: ScrambledZipfianGenerator) => Array.from({ length: 100 }, () => g.nextValue());
    expect(draw(a)).toEqual(draw(b));
  });

  it('acknowledged counter: lastValue moves only over a gap-free prefix of acknowledged values', () => {
    const c = new AcknowledgedCounterGenerator(10);
    const [a, b, d] = [c.nextValue(), c.nextValue(), c.nextValue()];
    expect(c.lastValue()).toBe(9);
    c.acknowledge(b);
    c.acknowledge(d);
    expect(c.lastValue()).toBe(9);
    c.acknowledge(a);
    expect(c.lastValue()).toBe(12);
  });

  it('discrete: operations in their proportions', () => {
    const g = new DiscreteGenerator<string>(new Random(1));
    g.addValue(0.5, 'READ');
    g.addValue(0.3, 'UPDATE');
    g.addValue(0.2, 'INSERT');
    const counts: Record<string, number> = {};
    for (let i = 0; i < 100_000; i++) {
      const op = g.next();
      counts[op] = (counts[op] ?? 0) + 1;
    }
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    expect(counts.READ! / total).toBeCloseTo(0.5, 1);
    expect(counts.UPDATE! / total).toBeCloseTo(0.3, 1);
    expect(counts.INSERT! / total).toBeCloseTo(0.2, 1);
  });
});

describe('YCSB key names', () => {
  const workload = (extra: Record<string, string> = {}) =>
    new CoreWorkload(workloadConfig(new Map(Object.entries({ recordcount: '1000', operationcount: '10', ...extra }))), new Random(1));

  it('hashed keys are Java YCSB\'s (user + FNV-1 64 of the key number)', () => {
    const w = workload();
    // The first keys every YCSB load inserts.
    expect([0, 1, 2].map((n) => w.buildKeyName(n))).toEqual(['user6284781860667377211', 'user8517097267634966620', 'user1820151046732198393']);
  });

  it('ordered keys are the number, zero-padded to zeropadding digits', () => {
    expect(workload({ insertorder: 'ordered' }).buildKeyName(7)).toBe('user7');
    expect(workload({ insertorder: 'ordered', zeropadding: '5' }).buildKeyName(7)).toBe('user00007');
  });
});
