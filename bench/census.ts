// Cost of the storage census (src/node/storage-census.ts): one native engine
// in a temp dir (Q = 4096) holding N keys; the census's ticks run back to
// back (no timer, no yield check) at the default budget. Reports the time of
// the first pass over every partition, the mean time of a tick, the time of
// an idle tick (nothing written since: roots compared only), and of the
// rescan after writes to a few partitions. Prints only (no --write).
//
//   npx tsx bench/census.ts
//   BENCH_CENSUS_KEYS=20000 npx tsx bench/census.ts
import { performance } from 'node:perf_hooks';
import { NativeEngine } from '../src/engine/index.js';
import { StorageCensusService } from '../src/node/storage-census.js';
import { systemClock } from '../src/transport/types.js';
import { tempDir } from '../test/helpers/tmp.js';

const KEYS = Number(process.env.BENCH_CENSUS_KEYS ?? 100_000);
const bucket = Buffer.from('bench');
const keyOf = (i: number) => Buffer.from(`user:${String(i).padStart(8, '0')}`);
const value = Buffer.alloc(100, 7);

const dir = tempDir('ringkv-bench-census-');
try {
  const engine = await NativeEngine.open({ nodeId: 'a', path: dir.path, partitionBits: 12 });
  for (let i = 0; i < KEYS; i += 1_000) {
    await Promise.all(Array.from({ length: Math.min(1_000, KEYS - i) }, (_, j) => engine.coordinate({ bucket, key: keyOf(i + j), context: null, value, now: Date.now(), mode: 'siblings', durable: false })));
  }
  const census = new StorageCensusService(engine, systemClock, async () => false);
  const ticks: number[] = [];
  const started = performance.now();
  while (census.totals().partitionsKnown < 2 ** 12 || census.totals().passes === 0) {
    const t = performance.now();
    await census.tick();
    ticks.push(performance.now() - t);
  }
  const passMs = performance.now() - started;
  const idle: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t = performance.now();
    await census.tick();
    idle.push(performance.now() - t);
  }
  // 100 keys rewritten: each lands in its own partition (of 4096) or shares one.
  for (let i = 0; i < 100; i++) await engine.coordinate({ bucket, key: keyOf(i * 997), context: null, value, now: Date.now(), mode: 'siblings', durable: false });
  const t = performance.now();
  await census.tick();
  const rescanMs = performance.now() - t;
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const totals = census.totals();
  console.log(`keys ${KEYS}: counted ${totals.objects} objects, ${totals.tombstones} tombstones`);
  console.log(`first pass: ${ticks.length} ticks, ${(passMs / 1000).toFixed(2)} s of tick time (${Math.round(KEYS / (passMs / 1000)).toLocaleString('en-US')} records/s); mean tick ${mean(ticks).toFixed(1)} ms (max ${Math.max(...ticks).toFixed(1)})`);
  console.log(`  at the default 250 ms between ticks the pass takes ≈ ${((ticks.length * 250 + passMs) / 1000).toFixed(0)} s`);
  console.log(`idle tick (nothing written): mean ${mean(idle).toFixed(3)} ms`);
  console.log(`tick after 100 writes: ${rescanMs.toFixed(1)} ms`);
  await engine.close();
} finally {
  dir.remove();
}
