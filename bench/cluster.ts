// Cluster benchmark: throughput and p50/p99/p99.9 latency of gets and puts
// against a 3-node ringkv cluster (separate processes on 127.0.0.1,
// (N,R,W) = (3,2,2)), and the same load against a bare uWebSockets.js server
// answering from a Map (the HTTP ceiling on this machine), in one run.
//
//   npm run bench:cluster              # print
//   npm run bench:cluster -- --write   # print and record in bench/RESULTS.md
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as hdr from 'hdr-histogram-js';
import { Pool } from 'undici';
import { tempDir } from '../test/helpers/tmp.js';
import { machineLine, recordSection, today } from './results-file.js';

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 5_000);
const MAX_OPS = Number(process.env.BENCH_MAX_OPS ?? 300_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const KEYS = 1_000;
const VALUE = Buffer.alloc(100, 'x');
const BASE_PORT = Number(process.env.BENCH_BASE_PORT ?? 18_090);

const root = fileURLToPath(new URL('..', import.meta.url));
const children: ChildProcess[] = [];

function spawnChild(args: string[]): ChildProcess {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return child;
}

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

interface PhaseResult {
  target: string;
  op: 'get' | 'put';
  ops: number;
  errors: number;
  throughput: number;
  p50: number;
  p99: number;
  p999: number;
}

/** Closed loop: CONCURRENCY workers, each one request at a time, bounded by time and count. */
async function phase(target: string, addresses: string[], op: 'get' | 'put'): Promise<PhaseResult> {
  const pools = addresses.map((a) => new Pool(`http://${a}`, { connections: Math.ceil(CONCURRENCY / addresses.length) + 1 }));
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  let ops = 0;
  let errors = 0;
  let next = 0;
  const started = performance.now();
  const deadline = started + DURATION_MS;
  const worker = async () => {
    while (performance.now() < deadline && ops + errors < MAX_OPS) {
      const i = next++;
      const pool = pools[i % pools.length]!;
      const path = `/kv/bench/k${(i * 7919) % KEYS}`;
      const t0 = performance.now();
      try {
        const res = await pool.request(op === 'get' ? { path, method: 'GET' } : { path, method: 'PUT', body: VALUE });
        await res.body.dump();
        if (res.statusCode >= 400 && !(op === 'get' && res.statusCode === 404)) errors++;
        else ops++;
      } catch {
        errors++;
      }
      histogram.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1_000)));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - started) / 1_000;
  await Promise.all(pools.map((p) => p.close()));
  const ms = (us: number) => us / 1_000;
  const result: PhaseResult = {
    target, op, ops, errors,
    throughput: ops / seconds,
    p50: ms(histogram.getValueAtPercentile(50)),
    p99: ms(histogram.getValueAtPercentile(99)),
    p999: ms(histogram.getValueAtPercentile(99.9)),
  };
  histogram.destroy();
  return result;
}

async function main(): Promise<void> {
  const data = tempDir('ringkv-bench-cluster-');
  try {
    const bare = `127.0.0.1:${BASE_PORT}`;
    spawnChild(['bench/fixtures/bare-uws.mjs', String(BASE_PORT)]);
    const nodes = [1, 2, 3].map((i) => `127.0.0.1:${BASE_PORT + i}`);
    nodes.forEach((address, i) => {
      const args = ['bin/ringkv.js', 'start', '--node-id', `n${i + 1}`, '--listen', address, '--data-dir', `${data.path}/n${i + 1}`, '--log-level', 'warn'];
      if (i > 0) args.push('--seeds', nodes[0]!);
      spawnChild(args);
    });
    await waitUntil(async () => (await fetch(`http://${bare}/ping`)).ok, 'bare uWS');
    await waitUntil(async () => {
      const status = (await (await fetch(`http://${nodes[0]}/status`)).json()) as { members: Array<{ status: string; partitions: number }> };
      return status.members.filter((m) => m.status === 'valid' && m.partitions > 0).length === 3;
    }, 'the 3-node cluster');
    // Let the other nodes adopt the final ring before measuring.
    await new Promise((r) => setTimeout(r, 2_000));

    const results: PhaseResult[] = [];
    for (const [name, addresses] of [['bare uWS (ceiling)', [bare]], ['ringkv 3 nodes (3,2,2)', nodes]] as const) {
      results.push(await phase(name, [...addresses], 'put'));
      results.push(await phase(name, [...addresses], 'get'));
    }
    report(results);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1_000));
    data.remove();
  }
}

function report(results: PhaseResult[]): void {
  const ceiling = (op: string) => results.find((r) => r.target.startsWith('bare') && r.op === op)!.throughput;
  const lines = [
    '| target | op | ops/s | p50 ms | p99 ms | p99.9 ms | errors | % of ceiling |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
    ...results.map((r) =>
      `| ${r.target} | ${r.op} | ${Math.round(r.throughput).toLocaleString('en')} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.p999.toFixed(2)} | ${r.errors} | ${((100 * r.throughput) / ceiling(r.op)).toFixed(1)}% |`),
  ];
  const table = lines.join('\n');
  console.log(table);
  if (!process.argv.includes('--write')) return;
  recordSection('cluster', `## Cluster: 3 nodes vs a bare uWebSockets.js ceiling\n\nCommand: \`npm run bench:cluster -- --write\` — closed loop, ${CONCURRENCY} concurrent requests, ${DURATION_MS / 1000} s per phase (at most ${MAX_OPS.toLocaleString('en')} requests), 100-byte values over ${KEYS} keys, requests spread round-robin over the nodes (server-side coordination), load generator in the same machine. Machine: ${machineLine()}. Date: ${today()}.\n\n${table}`);
}

await main();
