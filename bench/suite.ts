// The YCSB comparison suite (issue #5): one run, one machine, so the ratios
// compare like with like. The load generator runs in this process; the bare
// uWebSockets.js baseline and every ringkv node run as separate processes on
// 127.0.0.1.
//
//   (a) workload C (100% reads), closed loop: the baseline vs ringkv on 1 node with N=1
//   (b) workload A on 3 nodes, (N,R,W) = (3,2,2): closed loop (max throughput) vs the
//       baseline on workload A, then open loop at half that throughput → p99.9
//   (c) client-driven vs server-driven routing on the largest cluster (5 nodes, N=3:
//       with 3 nodes and N=3 every node is a primary of every key and the two
//       do the same work), open loop at half its maximum, ROUTING_ROUNDS
//       alternating pairs (a single run's p99.9 is a few dozen operations) → mean, p99.9
//   control: the baseline server under the same open-loop rate as (b): the
//       tail that the load generator and this machine add by themselves
//   (d) workload A, closed loop, on 1, 3 and 5 nodes → bench/results/scaling.json
//   (e) the cost of durable acks: the load phase (100% inserts) on 3 nodes with
//       dw = 0, 1 and 2 (docs/durability.md)
//   (f) CPU, heap, peer traffic per request, per node and role (bench/roles/measure.ts), one round
// Both targets are driven through undici (the baseline's Pool, RingkvClient's Agent).
//
//   npm run bench:suite                # print, write bench/results/*.json (+ plots)
//   npm run bench:suite -- --write     # also record the section in bench/RESULTS.md
//
// Every duration and size comes from the environment (defaults in brackets):
//   YCSB_SUITE_RUN_S [30]        each measured run (maxexecutiontime)
//   YCSB_SUITE_LOAD_S [120]      bound on each load phase
//   YCSB_SUITE_RECORDS [10000]   recordcount
//   YCSB_SUITE_THREADS [32]      threadcount (closed and open loop)
//   YCSB_SUITE_MAX_OPS [10000000] operationcount (runs normally end by time)
//   YCSB_SUITE_NODES [1,3,5]     cluster sizes of the scaling rows
//   YCSB_SUITE_SEED [1]
//   YCSB_SUITE_ROUTING_ROUNDS [3] alternating server/client pairs in (c), each RUN_S / 2
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startCluster } from './cluster.js';
import { rolesReport, runRoles, type Build } from './roles/measure.js';
import { freePort, spawnTracked, stopChildren, waitUntil } from './processes.js';
import { machineLine, recordSection, today } from './results-file.js';
import { readPropertyFile, runYcsb, type YcsbResult } from './ycsb/index.js';

const env = (name: string, def: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name}=${raw} is not a positive number`);
  return v;
};
const RUN_S = env('YCSB_SUITE_RUN_S', 30);
const LOAD_S = env('YCSB_SUITE_LOAD_S', 120);
const RECORDS = Math.round(env('YCSB_SUITE_RECORDS', 10_000));
const THREADS = Math.round(env('YCSB_SUITE_THREADS', 32));
const MAX_OPS = Math.round(env('YCSB_SUITE_MAX_OPS', 10_000_000));
const SEED = Math.round(env('YCSB_SUITE_SEED', 1));
const ROUTING_ROUNDS = Math.round(env('YCSB_SUITE_ROUTING_ROUNDS', 3));
const SCALING_NODES = (process.env.YCSB_SUITE_NODES ?? '1,3,5').split(',').map((s) => Number(s.trim()));
if (SCALING_NODES.some((n) => !Number.isInteger(n) || n < 1 || n > 16)) throw new Error(`YCSB_SUITE_NODES=${process.env.YCSB_SUITE_NODES} is not a list of node counts`);

const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));
const WORKLOADS = fileURLToPath(new URL('./ycsb/workloads/', import.meta.url));

// ---------------------------------------------------------------------------
// Child processes: killed when the suite ends, however it ends.

async function startBaseline(): Promise<{ address: string; stop(): Promise<void> }> {
  const address = `127.0.0.1:${await freePort()}`;
  const child = spawnTracked(['--import', 'tsx', 'bench/baseline/uws-map-server.ts', address.split(':')[1]!]);
  await waitUntil(async () => (await fetch(`http://${address}/ping`)).ok, 'the baseline server');
  return { address, stop: () => stopChildren([child]) };
}

// ---------------------------------------------------------------------------
// YCSB runs

type Overrides = Record<string, string | number>;

/** The (N,R,W) the suite uses on a cluster of `nodes`: (3,2,2), capped at the node count. */
function nrw(nodes: number): string {
  const n = Math.min(3, nodes);
  return `(${n},${Math.min(2, n)},${Math.min(2, n)})`;
}

/** A row of bench/results/scaling.json (workload A, closed loop). */
interface ScalingRow {
  nodes: number;
  throughput: number;
  p99Us: number;
  p999Us: number;
  errors: number;
}

function scalingRow(nodes: number, r: YcsbResult): ScalingRow {
  return { nodes, throughput: r.overall.throughput, p99Us: p99Us(r), p999Us: p999Us(r), errors: r.overall.errors };
}

function workloadProps(workload: 'workloada' | 'workloadc', overrides: Overrides) {
  const props = readPropertyFile(WORKLOADS + workload);
  const all: Overrides = { recordcount: RECORDS, operationcount: MAX_OPS, threadcount: THREADS, seed: SEED, maxexecutiontime: RUN_S, ...overrides };
  for (const [k, v] of Object.entries(all)) props.set(k, String(v));
  return props;
}

function dbProps(db: Db): Overrides {
  return db.kind === 'baseline'
    ? { 'baseline.address': db.address }
    : { 'ringkv.nodes': db.nodes.join(','), 'ringkv.n': db.n, 'ringkv.r': db.r, 'ringkv.w': db.w, 'ringkv.dw': db.dw ?? 0, 'ringkv.routing': db.routing ?? 'server' };
}

type Db =
  | { kind: 'baseline'; address: string }
  | { kind: 'ringkv'; nodes: string[]; n: number; r: number; w: number; dw?: number; routing?: 'client' | 'server' };

const runs: YcsbResult[] = [];

/** The load phase (all inserts); with a label its result is kept and reported like a run. */
async function load(db: Db, what: string, extra: Overrides = {}, label?: string): Promise<YcsbResult> {
  const started = performance.now();
  const { json } = await runYcsb({
    phase: 'load',
    db: db.kind,
    props: workloadProps('workloada', { ...dbProps(db), operationcount: RECORDS, maxexecutiontime: LOAD_S, ...extra }),
    workloadName: 'workloada',
    label,
  });
  const s = ((performance.now() - started) / 1000).toFixed(1);
  if (json.overall.errors > 0 || json.overall.operations < RECORDS) {
    throw new Error(`loading ${what}: ${json.overall.operations} of ${RECORDS} records in ${s} s, ${json.overall.errors} errors`);
  }
  console.log(`loaded ${RECORDS} records into ${what} in ${s} s`);
  if (label) {
    writeFileSync(`${RESULTS}ycsb-${label}.json`, `${JSON.stringify(json, null, 2)}\n`);
    runs.push(json);
  }
  return json;
}

async function run(label: string, db: Db, workload: 'workloada' | 'workloadc', extra: Overrides = {}): Promise<YcsbResult> {
  const { json } = await runYcsb({ phase: 'run', db: db.kind, props: workloadProps(workload, { ...dbProps(db), ...extra }), workloadName: workload, label });
  writeFileSync(`${RESULTS}ycsb-${label}.json`, `${JSON.stringify(json, null, 2)}\n`);
  runs.push(json);
  console.log(`${label}: ${line(json)}`);
  return json;
}

// ---------------------------------------------------------------------------
// Figures from the results

/** Mean over all operations (READ and UPDATE), weighted by count, µs. */
function meanUs(r: YcsbResult): number {
  let n = 0;
  let sum = 0;
  for (const [op, s] of Object.entries(r.operations)) {
    if (op === 'READ-MODIFY-WRITE') continue;
    n += s.count;
    sum += s.avgUs * s.count;
  }
  return n ? sum / n : 0;
}

/** The worst per-operation p99.9 (a conservative overall p99.9: the histograms are per operation). */
function p999Us(r: YcsbResult): number {
  return Math.max(0, ...Object.values(r.operations).map((s) => s.p999Us));
}

function p99Us(r: YcsbResult): number {
  return Math.max(0, ...Object.values(r.operations).map((s) => s.p99Us));
}

const ms = (us: number) => (us / 1000).toFixed(2);
const rate = (x: number) => Math.round(x).toLocaleString('en');

function line(r: YcsbResult): string {
  const ops = Object.entries(r.operations).map(([op, s]) => `${op} n=${s.count} avg ${ms(s.avgUs)} p99 ${ms(s.p99Us)} p99.9 ${ms(s.p999Us)} ms${s.errors ? ` errors ${s.errors}` : ''}`);
  return `${rate(r.overall.throughput)} ops/s (${r.mode}${r.targetRate ? ` @${rate(r.targetRate)}/s` : ''}, ${r.threads} threads${r.timedOut ? '' : ', ended by operationcount'}); ${ops.join('; ')}`;
}

// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  mkdirSync(RESULTS, { recursive: true });
  const started = Date.now();
  const scaling: ScalingRow[] = [];
  const largest = Math.max(...SCALING_NODES);

  // The ceiling: the bare uWS map server, workloads C and A.
  const baseline = await startBaseline();
  let baseC: YcsbResult;
  let baseA: YcsbResult;
  try {
    const db: Db = { kind: 'baseline', address: baseline.address };
    await load(db, 'the baseline');
    baseC = await run('baseline-c', db, 'workloadc');
    baseA = await run('baseline-a', db, 'workloada');
  } finally {
    await baseline.stop();
  }

  // (a) and (d, 1 node): ringkv, 1 node, N=1.
  let one: YcsbResult;
  {
    const cluster = await startCluster(1);
    try {
      const db: Db = { kind: 'ringkv', nodes: cluster.nodes, n: 1, r: 1, w: 1 };
      await load(db, 'ringkv 1 node (N=1)');
      one = await run('ringkv-1n-c', db, 'workloadc');
      if (SCALING_NODES.includes(1)) scaling.push(scalingRow(1, await run('ringkv-1n-a', db, 'workloada')));
    } finally {
      await cluster.stop();
    }
  }

  // (b), (d, 3 nodes) and (e): 3 nodes, (3,2,2).
  let three: YcsbResult;
  let openHalf: YcsbResult;
  const durability: Array<{ dw: number; inserts: YcsbResult }> = [];
  {
    const cluster = await startCluster(3);
    try {
      const db: Db = { kind: 'ringkv', nodes: cluster.nodes, n: 3, r: 2, w: 2 };
      await load(db, 'ringkv 3 nodes (3,2,2)');
      three = await run('ringkv-3n-a', db, 'workloada');
      if (SCALING_NODES.includes(3)) scaling.push(scalingRow(3, three));
      const half = Math.max(1, Math.floor(three.overall.throughput / 2));
      openHalf = await run('ringkv-3n-a-open', db, 'workloada', { target: half });
      for (const dw of [0, 1, 2]) {
        durability.push({ dw, inserts: await load({ ...db, dw }, `ringkv 3 nodes, dw=${dw}`, { table: `durable${dw}` }, `ringkv-3n-load-dw${dw}`) });
      }
    } finally {
      await cluster.stop();
    }
  }

  // (d) the other cluster sizes, (3,2,2) (N capped at the node count), and (c) on the largest.
  const openServer: YcsbResult[] = [];
  const openClient: YcsbResult[] = [];
  for (const count of SCALING_NODES.filter((n) => n !== 1 && n !== 3)) {
    const cluster = await startCluster(count);
    try {
      const n = Math.min(3, count);
      const db: Db = { kind: 'ringkv', nodes: cluster.nodes, n, r: Math.min(2, n), w: Math.min(2, n) };
      await load(db, `ringkv ${count} nodes`);
      const a = await run(`ringkv-${count}n-a`, db, 'workloada');
      scaling.push(scalingRow(count, a));
      if (count === largest) {
        const half = Math.max(1, Math.floor(a.overall.throughput / 2));
        const time = { target: half, maxexecutiontime: Math.max(1, Math.round(RUN_S / 2)) };
        for (let round = 1; round <= ROUTING_ROUNDS; round++) {
          openServer.push(await run(`ringkv-${count}n-a-open-server-${round}`, { ...db, routing: 'server' }, 'workloada', time));
          openClient.push(await run(`ringkv-${count}n-a-open-client-${round}`, { ...db, routing: 'client' }, 'workloada', time));
        }
      }
    } finally {
      await cluster.stop();
    }
  }
  scaling.sort((x, y) => x.nodes - y.nodes);
  writeFileSync(`${RESULTS}scaling.json`, `${JSON.stringify({ rows: scaling }, null, 2)}\n`);

  // Control: the ceiling server at the rate of (b)'s open loop, through the same generator.
  let control: YcsbResult;
  const again = await startBaseline();
  try {
    const db: Db = { kind: 'baseline', address: again.address };
    await load(db, 'the baseline (control)');
    control = await run('baseline-a-open', db, 'workloada', { target: openHalf.targetRate ?? 1 });
  } finally {
    await again.stop();
  }

  // (f) cost per request, per node and role (bench/roles.ts has the A/B form): one round.
  const roleBuilds: Build[] = [{ label: 'this', root: fileURLToPath(new URL('..', import.meta.url)) }];
  const roles = rolesReport(await runRoles(roleBuilds, { records: RECORDS, runS: Math.max(5, Math.round(RUN_S / 3)), idleS: 3, threads: Math.min(16, THREADS), rounds: 1, seed: SEED }), roleBuilds);

  const report = `${summary({ baseC, baseA, one, three, openHalf, control, openServer, openClient, largest, scaling, durability })}\n\nCost per request, per node and role (3 nodes, (3,2,2), every request to n1; bench/roles/measure.ts says how, \`npm run bench:roles\` runs it alone and A/B):\n\n${roles}`;
  console.log(`\n${report}\n\n(suite took ${((Date.now() - started) / 1000).toFixed(0)} s)`);
  if (process.argv.includes('--write')) {
    recordSection('ycsb', `## YCSB: ringkv against the bare uWebSockets.js ceiling\n\nCommand: \`npm run bench:suite -- --write\` — ${RECORDS.toLocaleString('en')} records of 10 × 100-byte fields, ${THREADS} threads, ${RUN_S} s per run, load generator in the same machine (one Node process; each ringkv node and the baseline in its own process; both driven through undici). Machine: ${machineLine()}. Date: ${today()}. Per-run JSON in \`bench/results/ycsb-*.json\`, pictures in \`bench/plots/\`.\n\n${report}`);
  }
  await drawPlots();
}

function summary(r: {
  baseC: YcsbResult; baseA: YcsbResult; one: YcsbResult; three: YcsbResult; openHalf: YcsbResult; control: YcsbResult;
  openServer: YcsbResult[]; openClient: YcsbResult[]; largest: number; scaling: ScalingRow[];
  durability: Array<{ dw: number; inserts: YcsbResult }>;
}): string {
  const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)}%`;
  // A run with errors measured something else than the target asks about.
  const verdict = (ok: boolean, ...from: YcsbResult[]) => {
    const failed = from.filter((x) => x.overall.errors > 0).map((x) => x.label);
    if (failed.length) return `not valid: errors in ${failed.join(', ')}`;
    return ok ? 'met' : '**missed**';
  };
  const ratioRow = (what: string, x: YcsbResult, ceiling: YcsbResult, needed: number) =>
    `| ${what} | ${rate(x.overall.throughput)} / ${rate(ceiling.overall.throughput)} ops/s = ${pct(x.overall.throughput, ceiling.overall.throughput)} | ${verdict(x.overall.throughput >= needed * ceiling.overall.throughput, x, ceiling)} |`;
  const { openServer: s, openClient: c } = r;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const list = (xs: number[]) => xs.map(ms).join(', ');
  const routingRow = s.length > 0 && c.length > 0
    ? `| client-driven routing lowers mean and p99.9 (${r.largest} nodes, open loop at ${rate(s[0]!.targetRate ?? 0)} ops/s, median of ${s.length} alternating pairs) | mean ${ms(median(c.map(meanUs)))} vs ${ms(median(s.map(meanUs)))} ms, p99.9 ${ms(median(c.map(p999Us)))} vs ${ms(median(s.map(p999Us)))} ms (client vs server; each run: client ${list(c.map(p999Us))}, server ${list(s.map(p999Us))} ms) | ${verdict(median(c.map(meanUs)) < median(s.map(meanUs)) && median(c.map(p999Us)) < median(s.map(p999Us)), ...c, ...s)} |`
    : '| client-driven routing | not measured (no cluster larger than 3 nodes in YCSB_SUITE_NODES) | |';
  const lines = [
    '| run | workload | mode | ops/s | mean ms | p99 ms | p99.9 ms | errors |',
    '|---|---|---|---:|---:|---:|---:|---:|',
    ...runs.map((x) => `| ${x.label} | ${x.workload} | ${x.phase === 'load' ? 'load (inserts)' : x.mode}${x.targetRate ? ` @ ${rate(x.targetRate)}/s` : ''} | ${rate(x.overall.throughput)} | ${ms(meanUs(x))} | ${ms(p99Us(x))} | ${ms(p999Us(x))} | ${x.overall.errors} |`),
    '',
    '| target | measured | |',
    '|---|---|---|',
    ratioRow('N=1 GET throughput ≥ 50% of the ceiling (workload C)', r.one, r.baseC, 0.5),
    ratioRow('3 nodes (3,2,2) workload A ≥ 20% of the ceiling', r.three, r.baseA, 0.2),
    `| p99.9 ≤ 10 ms at half the maximum (3 nodes, open loop, ${rate(r.openHalf.targetRate ?? 0)} ops/s, from intended start) | ${ms(p999Us(r.openHalf))} ms (control: the bare ceiling server at the same rate, same generator: ${ms(p999Us(r.control))} ms) | ${verdict(p999Us(r.openHalf) <= 10_000, r.openHalf)} |`,
    routingRow,
    '',
    '| nodes | (N,R,W) | ops/s (workload A, closed loop) | p99 ms | p99.9 ms | errors |',
    '|---:|---|---:|---:|---:|---:|',
    ...r.scaling.map((x) => `| ${x.nodes} | ${nrw(x.nodes)} | ${rate(x.throughput)} | ${ms(x.p99Us)} | ${ms(x.p999Us)} | ${x.errors} |`),
    '',
    '| durable acks (3 nodes, w=2, inserts) | inserts/s | mean ms | p99.9 ms | vs dw=0 |',
    '|---|---:|---:|---:|---:|',
    ...r.durability.map(({ dw, inserts }) =>
      `| dw=${dw} | ${rate(inserts.overall.throughput)} | ${ms(meanUs(inserts))} | ${ms(p999Us(inserts))} | ${pct(inserts.overall.throughput, r.durability[0]!.inserts.overall.throughput)} |`),
  ];
  return lines.join('\n');
}

/** bench/plot.ts (if present) turns bench/results/*.json into SVGs. */
async function drawPlots(): Promise<void> {
  const plot = fileURLToPath(new URL('./plot.ts', import.meta.url));
  if (!existsSync(plot)) {
    console.log('bench/plot.ts not found: no pictures');
    return;
  }
  const mod = (await import(pathToFileURL(plot).href)) as { plotResults?: () => Promise<unknown> };
  if (typeof mod.plotResults !== 'function') {
    console.log('bench/plot.ts has no plotResults(): no pictures');
    return;
  }
  await mod.plotResults();
}

await main();
process.exit(0);
