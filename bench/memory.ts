// Memory and disk per stored key: BENCH_KEYS keys (default 1,000,000) with a
// 100-byte value (YCSB's default field length) are written into one store
// that runs as a process of its own, and its resident memory (/proc VmRSS)
// and data directory (`du`) are read before, during and after the load.
//
// Two targets, each in a fresh data directory and a fresh process:
//   http   — a real `ringkv start` node, bucket props N=1 R=1 W=1, loaded over
//            HTTP with a keep-alive undici Pool (BENCH_CONCURRENCY requests in flight);
//   engine — the native engine alone (bench/memory/engine-child.ts), loaded by
//            in-process engine.coordinate calls: the storage cost without the node.
// RSS is not linear in keys: sled's page cache is bounded (--cache-mb, 64 MiB by
// default), V8 and malloc keep memory they once used, so per-key RSS is a ratio
// at this key count, not a slope.
//
//   npm run bench:memory                                  # print
//   BENCH_KEYS=50000 npm run bench:memory                 # quick try
//   npm run bench:memory -- --json                        # also bench/results/memory.json + bench/plots/memory.svg
//   npm run bench:memory -- --write                       # and a section in bench/RESULTS.md
//   BENCH_TARGETS=engine npm run bench:memory             # one target only
// Knobs (env): BENCH_KEYS (1000000), BENCH_DURATION_MS (cap on each load, 20 min),
// BENCH_CONCURRENCY (64), BENCH_VALUE_BYTES (100), BENCH_CACHE_MB (64),
// BENCH_SETTLE_MS (idle time before the settled reading, 10 s), BENCH_SAMPLE_MS (1 s),
// BENCH_TARGETS (http,engine), BENCH_BASE_PORT (18190).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { DEFAULT_PARTITION_BITS, DEFAULT_TREE_BRANCH_BITS, DEFAULT_TREE_SEGMENT_BITS } from '../src/engine/types.js';
import { tempDir } from '../test/helpers/tmp.js';
import type { ChildMessage, ParentMessage } from './memory/engine-child.js';
import { BUCKET, KEY_BYTES, keyAt, valueOf } from './memory/keys.js';
import { diskUsage, processMemory, type DiskUsage } from './memory/measure.js';
import { memoryPlot } from './plot/charts.js';
import { checkInput, memorySchema } from './plot/inputs.js';
import { machineLine, recordSection, today } from './results-file.js';

const KEYS = Number(process.env.BENCH_KEYS ?? 1_000_000);
/** Cap on each target's load phase; whatever was written by then is measured. */
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 20 * 60_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const VALUE_BYTES = Number(process.env.BENCH_VALUE_BYTES ?? 100);
const CACHE_MB = Number(process.env.BENCH_CACHE_MB ?? 64);
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 10_000);
const SAMPLE_MS = Number(process.env.BENCH_SAMPLE_MS ?? 1_000);
const PORT = Number(process.env.BENCH_BASE_PORT ?? 18_190);
const TARGETS = (process.env.BENCH_TARGETS ?? 'http,engine').split(',').map((t) => t.trim());

for (const [name, value] of Object.entries({ KEYS, DURATION_MS, CONCURRENCY, VALUE_BYTES, CACHE_MB, SAMPLE_MS })) {
  if (!Number.isInteger(value) || value <= 0) throw new Error(`BENCH ${name} must be a positive integer, got ${value}`);
}
for (const t of TARGETS) if (t !== 'http' && t !== 'engine') throw new Error(`BENCH_TARGETS: unknown target "${t}" (http, engine)`);

const root = fileURLToPath(new URL('..', import.meta.url));
const children = new Set<ChildProcess>();
const dataDirs = new Set<{ remove(): void }>();
// Also on Ctrl-C: no store process or data directory outlives the benchmark.
process.on('exit', () => {
  children.forEach((c) => c.kill('SIGKILL'));
  dataDirs.forEach((d) => d.remove());
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

export interface MemorySample {
  tMs: number;
  keys: number;
  rssBytes: number;
  diskBytes: number;
}

export interface TargetResult {
  target: 'http' | 'engine';
  description: string;
  keysRequested: number;
  keysLoaded: number;
  errors: number;
  loadMs: number;
  keysPerSecond: number;
  rssBeforeBytes: number;
  rssAfterLoadBytes: number;
  rssSettledBytes: number;
  peakRssBytes: number;
  /** Data directory after the idle settle (the engine flushes every 500 ms). */
  disk: DiskUsage;
  /** Data directory after a clean shutdown (flush and close). */
  diskAfterClose: DiskUsage;
  rssPerKeyBytes: number;
  diskPerKeyBytes: number;
  samples: MemorySample[];
}

function spawnChild(args: string[], ipc = false): ChildProcess {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit', ...(ipc ? ['ipc' as const] : [])] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function exited(child: ChildProcess, timeoutMs = 60_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pid ${child.pid} did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Samples the process and its data directory every SAMPLE_MS while `loaded()` moves. */
function sampler(pid: number, dir: string, loaded: () => number): { stop(): MemorySample[] } {
  const started = performance.now();
  const samples: MemorySample[] = [];
  const take = () =>
    samples.push({ tMs: Math.round(performance.now() - started), keys: loaded(), rssBytes: processMemory(pid).rssBytes, diskBytes: diskUsage(dir).allocatedBytes });
  take();
  const timer = setInterval(take, SAMPLE_MS);
  return {
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

interface Load {
  done: number;
  errors: number;
  ms: number;
  firstError: string | null;
}

/** Measures one store process around `load`, then stops it with `stop`. */
async function measure(
  target: TargetResult['target'],
  description: string,
  pid: number,
  dir: string,
  load: (progress: { done: number }) => Promise<Load>,
  stop: () => Promise<void>,
): Promise<TargetResult> {
  await sleep(2_000); // let start-up allocations settle before the baseline
  const before = processMemory(pid).rssBytes;
  const progress = { done: 0 };
  const samples = sampler(pid, dir, () => progress.done);
  const result = await load(progress);
  const afterLoad = processMemory(pid).rssBytes;
  await sleep(SETTLE_MS);
  const settled = processMemory(pid);
  const disk = diskUsage(dir);
  const sampled = samples.stop();
  await stop();
  const diskAfterClose = diskUsage(dir);
  if (result.errors > 0) console.warn(`${target}: ${result.errors} failed writes (first: ${result.firstError})`);
  const keys = result.done;
  return {
    target,
    description,
    keysRequested: KEYS,
    keysLoaded: keys,
    errors: result.errors,
    loadMs: Math.round(result.ms),
    keysPerSecond: keys / (result.ms / 1_000),
    rssBeforeBytes: before,
    rssAfterLoadBytes: afterLoad,
    rssSettledBytes: settled.rssBytes,
    peakRssBytes: settled.peakRssBytes,
    disk,
    diskAfterClose,
    rssPerKeyBytes: keys > 0 ? (settled.rssBytes - before) / keys : 0,
    diskPerKeyBytes: keys > 0 ? disk.allocatedBytes / keys : 0,
    samples: sampled,
  };
}

async function httpTarget(): Promise<TargetResult> {
  const data = tempDir('ringkv-bench-memory-http-');
  dataDirs.add(data);
  const address = `127.0.0.1:${PORT}`;
  try {
    const node = spawnChild([
      'bin/ringkv.js', 'start', '--node-id', 'm1', '--listen', address, '--data-dir', data.path,
      '--cache-mb', String(CACHE_MB), '--partition-bits', String(DEFAULT_PARTITION_BITS), '--log-level', 'warn',
      '--insecure-loopback', // one node, no peers
    ]);
    // The insecure loopback mode is insecure on both doors: no cluster secret and no client tokens (docs/security.md).
    const auth = {};
    await waitUntil(async () => {
      const status = (await (await fetch(`http://${address}/status`, { headers: auth })).json()) as { members: Array<{ status: string; partitions: number }> };
      return status.members.some((m) => m.status === 'valid' && m.partitions > 0);
    }, 'the node');
    const props = await fetch(`http://${address}/buckets/${BUCKET}/props`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify({ props: { n: 1, r: 1, w: 1 } }),
    });
    if (!props.ok) throw new Error(`setting N=1 on ${BUCKET} failed: ${props.status} ${await props.text()}`);

    const load = async (progress: { done: number }): Promise<Load> => {
      const pool = new Pool(`http://${address}`, { connections: CONCURRENCY, keepAliveTimeout: 60_000 });
      const value = valueOf(VALUE_BYTES);
      const started = performance.now();
      const deadline = started + DURATION_MS;
      let next = 0;
      let errors = 0;
      let firstError: string | null = null;
      const worker = async () => {
        while (next < KEYS && performance.now() < deadline) {
          const path = `/kv/${BUCKET}/${keyAt(next++, KEYS)}`;
          try {
            const res = await pool.request({ path, method: 'PUT', body: value, headers: auth });
            const body = await res.body.text();
            if (res.statusCode >= 300) throw new Error(`${res.statusCode} ${body}`);
            progress.done++;
          } catch (err) {
            errors++;
            firstError ??= (err as Error).message;
          }
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      const ms = performance.now() - started;
      await pool.close();
      return { done: progress.done, errors, ms, firstError };
    };
    const stop = async () => {
      node.kill('SIGTERM'); // the node flushes and closes its engine on SIGTERM
      await exited(node);
    };
    return await measure('http', `ringkv node (N=1, R=1, W=1), PUT over HTTP, ${CONCURRENCY} in flight`, node.pid!, data.path, load, stop);
  } finally {
    data.remove();
    dataDirs.delete(data);
  }
}

async function engineTarget(): Promise<TargetResult> {
  const data = tempDir('ringkv-bench-memory-engine-');
  dataDirs.add(data);
  try {
    const child = spawnChild(['--import', 'tsx', 'bench/memory/engine-child.ts', data.path, String(CACHE_MB * 1024 * 1024)], true);
    const messages: ChildMessage[] = [];
    const waiters: Array<() => void> = [];
    child.on('message', (m: ChildMessage) => {
      messages.push(m);
      waiters.splice(0).forEach((w) => w());
    });
    const next = async <T extends ChildMessage['type']>(type: T, onOther?: (m: ChildMessage) => void): Promise<Extract<ChildMessage, { type: T }>> => {
      for (;;) {
        const i = messages.findIndex((m) => m.type === type);
        if (i >= 0) return messages.splice(i, 1)[0] as Extract<ChildMessage, { type: T }>;
        messages.splice(0).forEach((m) => onOther?.(m));
        if (child.exitCode !== null) throw new Error(`engine child exited (${child.exitCode}) before "${type}"`);
        await new Promise<void>((r) => waiters.push(r));
      }
    };
    const order = (m: ParentMessage) => child.send(m);
    const ready = await next('ready');
    if (ready.partitionBits !== DEFAULT_PARTITION_BITS) throw new Error(`engine opened with Q = 2^${ready.partitionBits}, the node's is 2^${DEFAULT_PARTITION_BITS}`);
    const load = async (progress: { done: number }): Promise<Load> => {
      order({ type: 'load', keys: KEYS, valueBytes: VALUE_BYTES, concurrency: CONCURRENCY, durationMs: DURATION_MS });
      const loaded = await next('loaded', (m) => {
        if (m.type === 'progress') progress.done = m.done;
      });
      progress.done = loaded.done;
      return loaded;
    };
    const stop = async () => {
      order({ type: 'close' });
      await next('closed');
      await exited(child);
    };
    return await measure('engine', `native engine alone, engine.coordinate in its own process, ${CONCURRENCY} in flight`, child.pid!, data.path, load, stop);
  } finally {
    data.remove();
    dataDirs.delete(data);
  }
}

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

function table(results: TargetResult[]): string {
  return [
    '| target | keys | keys/s | disk after settle MiB | disk/key B | disk after close MiB | RSS before MiB | RSS after load MiB | RSS settled MiB | peak RSS MiB | RSS/key B |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...results.map((r) =>
      `| ${r.target} | ${r.keysLoaded.toLocaleString('en')} | ${Math.round(r.keysPerSecond).toLocaleString('en')} | ${mib(r.disk.allocatedBytes)} | ${Math.round(r.diskPerKeyBytes)} | ${mib(r.diskAfterClose.allocatedBytes)} | ${mib(r.rssBeforeBytes)} | ${mib(r.rssAfterLoadBytes)} | ${mib(r.rssSettledBytes)} | ${mib(r.peakRssBytes)} | ${Math.round(r.rssPerKeyBytes)} |`),
  ].join('\n');
}

async function main(): Promise<void> {
  const loadBefore = loadavg();
  const results: TargetResult[] = [];
  for (const target of TARGETS) {
    console.log(`${target}: loading up to ${KEYS.toLocaleString('en')} keys (cap ${DURATION_MS / 1000} s)...`);
    results.push(target === 'http' ? await httpTarget() : await engineTarget());
  }
  const loadAfter = loadavg();
  const payload = BUCKET.length + KEY_BYTES + VALUE_BYTES;
  const text = table(results);
  const load1 = `1-minute load average ${loadBefore[0]!.toFixed(2)} before, ${loadAfter[0]!.toFixed(2)} after (2 cores)`;
  console.log(text);
  console.log(`payload per key: ${payload} B (bucket ${BUCKET.length} + key ${KEY_BYTES} + value ${VALUE_BYTES}); sled cache ${CACHE_MB} MiB; Q = ${2 ** DEFAULT_PARTITION_BITS}; ${load1}`);
  const write = process.argv.includes('--write');
  if (!write && !process.argv.includes('--json')) return;

  const resultsDir = new URL('./results/', import.meta.url);
  mkdirSync(resultsDir, { recursive: true });
  const json = {
    date: today(),
    machine: machineLine(),
    loadAverage: { before: loadBefore, after: loadAfter },
    keys: KEYS,
    bucket: BUCKET,
    keyBytes: KEY_BYTES,
    valueBytes: VALUE_BYTES,
    cacheMiB: CACHE_MB,
    partitions: 2 ** DEFAULT_PARTITION_BITS,
    treeLeavesPerPartition: 2 ** (DEFAULT_TREE_BRANCH_BITS + DEFAULT_TREE_SEGMENT_BITS),
    concurrency: CONCURRENCY,
    settleMs: SETTLE_MS,
    targets: results,
  };
  writeFileSync(new URL('memory.json', resultsDir), `${JSON.stringify(json, null, 2)}\n`);
  console.log('wrote bench/results/memory.json');
  const plots = new URL('./plots/', import.meta.url);
  mkdirSync(plots, { recursive: true });
  writeFileSync(new URL('memory.svg', plots), await memoryPlot(checkInput(memorySchema, json, 'memory.json')));
  console.log('wrote bench/plots/memory.svg');
  if (!write) return;
  recordSection('memory', `## Memory and disk per key at ${KEYS.toLocaleString('en')} keys

Command: \`npm run bench:memory -- --write\` — ${KEYS.toLocaleString('en')} blind writes of a ${VALUE_BYTES}-byte value (YCSB's default field length) under ${KEY_BYTES}-byte keys \`user\` + 12 digits in bucket \`${BUCKET}\` (payload ${payload} B per key), written in a scattered order with ${CONCURRENCY} in flight, into a store in its own process and a fresh data directory, with sled's cache at ${CACHE_MB} MiB (\`--cache-mb\`, the default) and the default Q = ${2 ** DEFAULT_PARTITION_BITS} partitions (each with an in-memory TicTac tree of ${2 ** (DEFAULT_TREE_BRANCH_BITS + DEFAULT_TREE_SEGMENT_BITS)} segments: ~33 MiB for all of them, docs/cluster.md), so part of RSS is there before the first key. **http**: a \`ringkv start\` node, bucket N=1 R=1 W=1, PUTs through a keep-alive undici Pool. **engine**: the native engine alone (bench/memory/engine-child.ts), \`engine.coordinate\` called in that process — the storage cost without the node. RSS is VmRSS from /proc (2 s after start, right after the load, and after ${SETTLE_MS / 1000} s idle); RSS/key = (settled − before) / keys. Disk is \`du -B1\` of the data directory (allocated blocks) after the idle settle and again after a clean shutdown. Machine: ${machineLine()}; ${load1}. Date: ${today()}.

${text}

![RSS and disk while the keys are written](plots/memory.svg)

RSS/key is a ratio at this key count, not a per-key cost: sled's page cache is capped at ${CACHE_MB} MiB, so once the data outgrows it RSS stops following the key count, while V8's heap and the allocator keep memory they used during the load. The disk figure includes sled's log-structured overhead (segments not yet compacted) and the engine's per-object record (version vector, timestamp) next to the ${payload}-byte payload.`);
  console.log('recorded in bench/RESULTS.md');
}

await main();
