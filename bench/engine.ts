// Engine microbenchmarks: the native (Rust) engine against the pure
// TypeScript one, same process, same inputs. Prints ops/s and native/pure
// ratios; with --write, records the table in bench/RESULTS.md.
//
//   npm run bench:engine            # print
//   npm run bench:engine -- --write # print and update bench/RESULTS.md
import { Bench } from 'tinybench';
import { NativeEngine, PureEngine, type Engine, type EngineOptions } from '../src/engine/index.js';
import { loadBinding } from '../src/engine/native/index.js';
import { Layout } from '../src/record/keys.js';
import { TicTacTrees } from '../src/engine/pure/tictac.js';
import { tempDir } from '../test/helpers/tmp.js';
import { machineLine, recordSection, today } from './results-file.js';

const TIME_MS = Number(process.env.BENCH_TIME_MS ?? 1_000);
const REBUILD_KEYS = Number(process.env.BENCH_REBUILD_KEYS ?? 100_000);

interface Row {
  name: string;
  native: number;
  pure: number;
}

const bucket = Buffer.from('bench');
const keyOf = (i: number) => Buffer.from(`key-${i}`);
const value = Buffer.alloc(100, 7);

function options(nodeId: string, path?: string): EngineOptions {
  return { nodeId, path, epoch: '0000000000000001', flushEveryMs: 500 };
}

async function pair(label: string): Promise<{ native: Engine; pure: Engine; remove(): void }> {
  const dir = tempDir(`ringkv-bench-${label}-`);
  const native = await NativeEngine.open(options('n1', `${dir.path}/native`));
  const pure = await PureEngine.open(options('n1'));
  return { native, pure, remove: dir.remove };
}

/** Runs the same task body against both engines; returns ops/s for each. */
async function measure(
  name: string,
  make: (engine: Engine, kind: 'native' | 'pure') => () => unknown | Promise<unknown>,
  engines: { native: Engine; pure: Engine },
  opsPerCall = 1,
): Promise<Row> {
  const bench = new Bench({ time: TIME_MS, warmup: true });
  bench.add('native', make(engines.native, 'native'));
  bench.add('pure', make(engines.pure, 'pure'));
  await bench.run();
  const hz = (n: string) => {
    const task = bench.getTask(n)!;
    const result = task.result as { throughput?: { mean: number }; hz?: number } | undefined;
    return (result?.throughput?.mean ?? result?.hz ?? 0) * opsPerCall;
  };
  return { name, native: hz('native'), pure: hz('pure') };
}

/** Record of `count` siblings: concurrent blind writes on one engine. */
async function siblingRecord(engine: Engine, count: number): Promise<Buffer> {
  let record: Buffer | undefined;
  for (let i = 0; i < count; i++) {
    record = await engine.coordinate({
      bucket, key: Buffer.from('siblings'), context: null, value, now: 1_000 + i, mode: 'siblings', durable: false,
    });
  }
  return record!;
}

async function rebuild(kind: 'native' | 'pure', keys: number): Promise<number> {
  const dir = tempDir(`ringkv-bench-rebuild-${kind}-`);
  try {
    const open = () => (kind === 'native' ? NativeEngine.open(options('n1', dir.path)) : PureEngine.open(options('n1', dir.path)));
    const engine = await open();
    const batch = 1_000;
    for (let i = 0; i < keys; i += batch) {
      await Promise.all(
        Array.from({ length: Math.min(batch, keys - i) }, (_, j) =>
          engine.coordinate({ bucket, key: keyOf(i + j), context: null, value, now: 1, mode: 'siblings', durable: false }),
        ),
      );
    }
    await engine.close();
    // Opening rebuilds every partition's tree from storage.
    const runs = 3;
    const started = performance.now();
    for (let r = 0; r < runs; r++) await (await open()).close();
    return (runs * 1_000) / (performance.now() - started);
  } finally {
    dir.remove();
  }
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const engines = await pair('main');
  const ids = Array.from({ length: 1_000 }, (_, i) => ({ bucket, key: keyOf(i) }));

  rows.push(await measure('hash one key', (e) => () => e.hashKey(bucket, keyOf(42)), engines));
  rows.push(await measure('hash 1,000 keys (batch; keys/s)', (e) => () => e.hashKeys(ids), engines, 1_000));

  let n = 0;
  rows.push(
    await measure('coordinate-put (blind, 100 B)', (e) => () =>
      e.coordinate({ bucket, key: keyOf(n++ % 50_000), context: null, value, now: 1, mode: 'siblings', durable: false }),
    engines),
  );
  // The libuv pool runs native writes in parallel; the pure engine is one thread.
  rows.push(
    await measure('coordinate-put, 64 in flight (puts/s)', (e) => () =>
      Promise.all(Array.from({ length: 64 }, () =>
        e.coordinate({ bucket, key: keyOf(n++ % 50_000), context: null, value, now: 1, mode: 'siblings', durable: false }))),
    engines, 64),
  );
  // Keep objects small for get: one sibling each.
  const getPair = await pair('get');
  for (const e of [getPair.native, getPair.pure]) {
    for (let i = 0; i < 10_000; i += 500) {
      await Promise.all(ids.slice(0, 500).map((_, j) =>
        e.coordinate({ bucket, key: keyOf(i + j), context: null, value, now: 1, mode: 'siblings', durable: false })));
    }
  }
  let g = 0;
  rows.push(await measure('get', (e) => () => e.get(bucket, keyOf(g++ % 10_000)), getPair));
  rows.push(await measure('getMany 100 keys (keys/s)', (e) => () => e.getMany(ids.slice(0, 100)), getPair, 100));

  const three = { native: await siblingRecord(engines.native, 3), pure: await siblingRecord(engines.pure, 3) };
  let m = 0;
  rows.push(
    await measure('merge a 3-sibling record (new key)', (e, kind) => () =>
      e.merge({ bucket, key: Buffer.from(`m-${m++}`), record: three[kind], mode: 'siblings', durable: false }),
    engines),
  );
  rows.push(
    await measure('mergeMany 100 × 3-sibling records (records/s)', (e, kind) => () =>
      e.mergeMany(Array.from({ length: 100 }, () =>
        ({ bucket, key: Buffer.from(`mm-${m++}`), record: three[kind], mode: 'siblings' as const, durable: false }))),
    engines, 100),
  );
  rows.push(...(await tictacRows()));
  rows.push(await measure('tree roots (64 partitions)', (e) => () => e.treeRoots(), engines));

  rows.push({ name: `rebuild trees at open, ${REBUILD_KEYS.toLocaleString('en')} keys (opens/s)`, native: await rebuild('native', REBUILD_KEYS), pure: await rebuild('pure', REBUILD_KEYS) });

  await Promise.all([engines.native.close(), engines.pure.close(), getPair.native.close(), getPair.pure.close()]);
  engines.remove();
  getPair.remove();
  report(rows);
}

/** The O(1) TicTac update every write makes, alone: one update per call, and 1,000 per call. */
async function tictacRows(): Promise<Row[]> {
  const binding = loadBinding();
  const native = new binding.TicTacTrees(6, 8, 8);
  const layout = new Layout(6, 8, 8);
  const pure = new TicTacTrees(layout);
  const packed = Buffer.alloc(1_000 * 16);
  for (let i = 0; i < 1_000; i++) {
    packed.writeBigUInt64BE(BigInt.asUintN(64, BigInt(i) * 0x9e3779b97f4a7c15n), i * 16);
    packed.writeBigUInt64BE(BigInt.asUintN(64, BigInt(i + 1) * 0xc2b2ae3d27d4eb4fn), i * 16 + 8);
  }
  const pureApply = (buf: Buffer) => {
    for (let at = 0; at < buf.length; at += 16) {
      const position = buf.subarray(at, at + 8);
      pure.update(layout.partitionOf(position), layout.segmentOf(position), buf.readBigUInt64BE(at + 8));
    }
  };
  const one = packed.subarray(0, 16);
  const rows: Row[] = [];
  for (const [name, input, per] of [['TicTac update (one per call)', one, 1], ['TicTac update × 1,000 per call (updates/s)', packed, 1_000]] as const) {
    const bench = new Bench({ time: TIME_MS, warmup: true });
    bench.add('native', () => native.applyPacked(input));
    bench.add('pure', () => pureApply(input));
    await bench.run();
    const hz = (n: string) => ((bench.getTask(n)!.result as { throughput?: { mean: number } } | undefined)?.throughput?.mean ?? 0) * per;
    rows.push({ name, native: hz('native'), pure: hz('pure') });
  }
  return rows;
}

function report(rows: Row[]): void {
  const fmt = (x: number) => (x >= 100 ? Math.round(x).toLocaleString('en') : x.toFixed(2));
  const lines = [
    '| benchmark | native ops/s | pure ops/s | native / pure |',
    '|---|---:|---:|---:|',
    ...rows.map((r) => `| ${r.name} | ${fmt(r.native)} | ${fmt(r.pure)} | ${(r.native / r.pure).toFixed(2)}× |`),
  ];
  const table = lines.join('\n');
  console.log(table);
  if (process.argv.includes('--write')) {
    recordSection('engine', `## Engine microbenchmarks (native vs pure)\n\nCommand: \`npm run bench:engine -- --write\` (tinybench, ${TIME_MS} ms per task, one process). Machine: ${machineLine()}. Date: ${today()}.\n\n${table}`);
  }
}

await main();
