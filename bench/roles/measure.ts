// Cost per request, per node and role (issue 15, item 1): a 3-node (3,2,2)
// cluster of real `ringkv start` processes, every client request sent to n1,
// so n1 is the coordinator of every request (it also holds one of the three
// replicas, read and written in process) and n2, n3 are replicas only. Phases,
// each measured on its own:
//   idle  no load: the background work's CPU (gossip, anti-entropy, timers)
//   put   RECORDS blind inserts (YCSB load phase: PUTs without a context)
//   get   RUN_S of reads of those records (YCSB workload C, closed loop)
// after an unmeasured warm-up (JIT) on a table of its own. Per node and
// phase: CPU µs from /proc/<pid>/stat (utime+stime, all threads), V8 heap
// bytes allocated, GC pauses and event-loop delay (bench/roles/probe.mjs,
// loaded into the node), peer messages and bytes (ringkv_peer_*_total on
// /metrics), replica requests served (ringkv_replica_requests_total). The
// coordinator's figures are per client request; a replica's per replica
// request it served (one kv.get per GET, one kv.merge per PUT at (3,2,2)).
//
// Several builds (checkouts of the project, e.g. before and after a change)
// run in one invocation, alternated round by round in a rotating order, so a
// drift of the shared machine's load falls on all of them alike; the report
// gives each build's medians and, per round, each build's ratio to the first.
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startCluster, type BenchCluster } from '../cluster.js';
import { processCpuSplitUs } from '../processes.js';
import { readPropertyFile, runYcsb, type YcsbResult } from '../ycsb/index.js';

const WORKLOADS = fileURLToPath(new URL('../ycsb/workloads/', import.meta.url));
const PROBE = fileURLToPath(new URL('./probe.mjs', import.meta.url));

export interface RolesConfig {
  /** Records inserted in the put phase (and read in the get phase). */
  records: number;
  /** Seconds of the get phase. */
  runS: number;
  /** Seconds of the idle phase. */
  idleS: number;
  threads: number;
  rounds: number;
  seed: number;
  /**
   * Open loop at this many ops/s (YCSB `target`) in the put and get phases,
   * or 0: closed loop. CPU per request falls as load rises (more frames share
   * each peer message and wake-up), so builds compared closed loop at
   * different throughputs differ by that too; at one fixed rate they do not.
   */
  targetOpsPerS?: number;
}

/** A checkout of the project to run: its bin/ringkv.js and dist/. */
export interface Build {
  label: string;
  root: string;
  /** The read_fanout of the benchmark's buckets (issue 15 item 3), set on n1 after the start; absent: the bucket default. */
  readFanout?: 'all' | 'quorum';
}

export type Phase = 'idle' | 'put' | 'get';
export type Role = 'coordinator' | 'replica';

/** What the probe in a node reports for one phase (bench/roles/probe.mjs). */
interface ProbeFigures {
  heapAllocatedBytes: number;
  gcs: number;
  majorGcs: number;
  gcPauseUs: number;
  loopDelayMs: { p50: number; p99: number; p999: number; max: number; samples: number };
}

/** One node in one phase. */
export interface NodePhase {
  node: string;
  role: Role;
  cpuUs: number;
  /** The kernel's part of cpuUs (stime). */
  systemCpuUs: number;
  /** Client requests coordinated (ringkv_requests_total). */
  coordinated: number;
  /** Replica requests served (ringkv_replica_requests_total), by type. */
  replicaRequests: Record<string, number>;
  peerMessages: number;
  peerFrames: number;
  /** null: the build has no ringkv_peer_bytes_total. */
  peerBytes: number | null;
  probe: ProbeFigures;
}

export interface PhaseResult {
  phase: Phase;
  seconds: number;
  /** Client operations done (YCSB), 0 for idle. */
  operations: number;
  errors: number;
  throughput: number;
  /** The load generator's own CPU (this process), µs. */
  generatorCpuUs: number;
  nodes: NodePhase[];
}

export interface RoundResult {
  build: string;
  round: number;
  phases: PhaseResult[];
}

// ---------------------------------------------------------------------------
// Reading a node

/** The samples of the named metrics in a Prometheus text exposition, summed over their labels unless `by` names one to keep. */
function metricSums(text: string, name: string, by?: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    const space = line.lastIndexOf(' ');
    const value = Number(line.slice(space + 1));
    let key = '';
    if (by !== undefined) key = new RegExp(`[{,]${by}="([^"]*)"`).exec(line)?.[1] ?? '';
    out.set(key, (out.get(key) ?? 0) + value);
  }
  return out;
}

interface Scrape {
  coordinated: number;
  replica: Map<string, number>;
  messages: number;
  frames: number;
  bytes: number | null;
}

async function scrape(address: string, token: string): Promise<Scrape> {
  const res = await fetch(`http://${address}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`GET /metrics on ${address}: HTTP ${res.status}`);
  const text = await res.text();
  const one = (name: string): number | null => {
    const m = metricSums(text, name);
    return m.size === 0 ? null : m.get('')!;
  };
  return {
    coordinated: one('ringkv_requests_total') ?? 0,
    replica: metricSums(text, 'ringkv_replica_requests_total', 'type'),
    messages: one('ringkv_peer_messages_total') ?? 0,
    frames: one('ringkv_peer_frames_total') ?? 0,
    bytes: one('ringkv_peer_bytes_total'),
  };
}

/** Sends `msg` to a node's probe and resolves with its answer of kind `answer`. */
function ask<T>(proc: ChildProcess, msg: { probe: string }, answer: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.off('message', onMessage);
      reject(new Error(`node ${proc.pid}: no '${answer}' from the probe within 10 s`));
    }, 10_000);
    const onMessage = (m: unknown) => {
      if (m === null || typeof m !== 'object' || (m as { probe?: unknown }).probe !== answer) return;
      clearTimeout(timer);
      proc.off('message', onMessage);
      resolve(m as T);
    };
    proc.on('message', onMessage);
    proc.send(msg);
  });
}

// ---------------------------------------------------------------------------
// Load

type Overrides = Record<string, string | number>;

function props(workload: 'workloada' | 'workloadc', cfg: RolesConfig, cluster: BenchCluster, overrides: Overrides) {
  const p = readPropertyFile(WORKLOADS + workload);
  const all: Overrides = {
    recordcount: cfg.records,
    operationcount: 10_000_000,
    threadcount: cfg.threads,
    seed: cfg.seed,
    maxexecutiontime: cfg.runS,
    // Every request to n1: it coordinates, n2 and n3 only serve as replicas.
    'ringkv.nodes': cluster.nodes[0]!,
    'ringkv.routing': 'server',
    'ringkv.n': 3,
    'ringkv.r': 2,
    'ringkv.w': 2,
    'ringkv.dw': 0,
    ...(cfg.targetOpsPerS ? { target: cfg.targetOpsPerS } : {}),
    ...overrides,
  };
  for (const [k, v] of Object.entries(all)) p.set(k, String(v));
  return p;
}

async function insert(cfg: RolesConfig, cluster: BenchCluster, table: string, count: number): Promise<YcsbResult> {
  const { json } = await runYcsb({
    phase: 'load',
    db: 'ringkv',
    props: props('workloada', cfg, cluster, { table, recordcount: count, operationcount: count, maxexecutiontime: 300 }),
    workloadName: 'workloada',
  });
  if (json.overall.operations < count) throw new Error(`inserted ${json.overall.operations} of ${count} records into ${table}`);
  return json;
}

async function read(cfg: RolesConfig, cluster: BenchCluster, table: string, count: number, seconds: number): Promise<YcsbResult> {
  const { json } = await runYcsb({
    phase: 'run',
    db: 'ringkv',
    props: props('workloadc', cfg, cluster, { table, recordcount: count, maxexecutiontime: seconds }),
    workloadName: 'workloadc',
  });
  return json;
}

/** Runs `work` as one measured phase on every node of the cluster. */
async function measure(phase: Phase, cluster: BenchCluster, work: () => Promise<YcsbResult | null>): Promise<PhaseResult> {
  const { procs, nodes, token } = cluster;
  const before = await Promise.all(nodes.map((n) => scrape(n, token)));
  await Promise.all(procs.map((p) => ask(p, { probe: 'reset' }, 'reset-done')));
  const cpuBefore = procs.map((p) => processCpuSplitUs(p.pid!));
  const generatorBefore = process.cpuUsage();
  const started = performance.now();
  const result = await work();
  const seconds = (performance.now() - started) / 1000;
  const generator = process.cpuUsage(generatorBefore);
  const cpuAfter = procs.map((p) => processCpuSplitUs(p.pid!));
  const probes = await Promise.all(procs.map((p) => ask<ProbeFigures>(p, { probe: 'read' }, 'figures')));
  const after = await Promise.all(nodes.map((n) => scrape(n, token)));
  return {
    phase,
    seconds,
    operations: result?.overall.operations ?? 0,
    errors: result?.overall.errors ?? 0,
    throughput: result?.overall.throughput ?? 0,
    generatorCpuUs: generator.user + generator.system,
    nodes: nodes.map((_, i) => {
      const b = before[i]!;
      const a = after[i]!;
      const replicaRequests: Record<string, number> = {};
      for (const [type, v] of a.replica) replicaRequests[type] = v - (b.replica.get(type) ?? 0);
      return {
        node: `n${i + 1}`,
        role: i === 0 ? 'coordinator' : 'replica',
        cpuUs: cpuAfter[i]!.userUs + cpuAfter[i]!.systemUs - cpuBefore[i]!.userUs - cpuBefore[i]!.systemUs,
        systemCpuUs: cpuAfter[i]!.systemUs - cpuBefore[i]!.systemUs,
        coordinated: a.coordinated - b.coordinated,
        replicaRequests,
        peerMessages: a.messages - b.messages,
        peerFrames: a.frames - b.frames,
        peerBytes: a.bytes === null || b.bytes === null ? null : a.bytes - b.bytes,
        probe: probes[i]!,
      } satisfies NodePhase;
    }),
  };
}

/** One round of one build: a fresh cluster, warm-up, then the idle, put and get phases. */
export async function runRound(build: Build, round: number, cfg: RolesConfig): Promise<RoundResult> {
  // ROLES_CPU_PROF_DIR: each node writes a V8 CPU profile of its whole run there (CPU.<date>.<pid>...; open in Chrome DevTools or speedscope).
  const prof = process.env.ROLES_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.ROLES_CPU_PROF_DIR}`] : [];
  const cluster = await startCluster(3, { root: build.root, nodeArgs: [...prof, '--import', PROBE], ipc: true });
  if (prof.length > 0) console.log(`round ${round} ${build.label}: profiles of ${cluster.procs.map((p, i) => `n${i + 1} pid ${p.pid}`).join(', ')}`);
  try {
    if (build.readFanout) {
      // In force on every member when the call returns (docs/http.md "Buckets").
      for (const table of ['warmup', 'usertable']) {
        const res = await fetch(`http://${cluster.nodes[0]}/buckets/${table}/props`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${cluster.token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ props: { read_fanout: build.readFanout } }),
        });
        if (!res.ok) throw new Error(`PUT /buckets/${table}/props read_fanout=${build.readFanout}: HTTP ${res.status} ${await res.text()}`);
      }
    }
    // Warm-up (JIT, connections, caches), on its own table.
    const warm = Math.min(2_000, cfg.records);
    const closed = { ...cfg, targetOpsPerS: 0 };
    await insert(closed, cluster, 'warmup', warm);
    await read(closed, cluster, 'warmup', warm, Math.min(3, cfg.runS));
    const phases: PhaseResult[] = [];
    phases.push(await measure('idle', cluster, async () => {
      await new Promise((r) => setTimeout(r, cfg.idleS * 1000));
      return null;
    }));
    phases.push(await measure('put', cluster, () => insert(cfg, cluster, 'usertable', cfg.records)));
    phases.push(await measure('get', cluster, () => read(cfg, cluster, 'usertable', cfg.records, cfg.runS)));
    return { build: build.label, round, phases };
  } finally {
    await cluster.stop();
  }
}

/** Every round of every build, alternated: round r runs the builds starting from build r mod count. */
export async function runRoles(builds: Build[], cfg: RolesConfig, log: (line: string) => void = console.log): Promise<RoundResult[]> {
  const out: RoundResult[] = [];
  for (let round = 1; round <= cfg.rounds; round++) {
    for (let j = 0; j < builds.length; j++) {
      const build = builds[(round - 1 + j) % builds.length]!;
      const r = await runRound(build, round, cfg);
      out.push(r);
      log(`round ${round} ${build.label}: ${headline(r)}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Figures

/** The per-request figures of one role in one phase of a round. */
export interface RoleFigures {
  /** CPU µs per request (the coordinator: per client request; a replica: per replica request it served). */
  cpuUs: number;
  /** The kernel's part of it (stime: syscalls, loopback TCP). */
  systemCpuUs: number;
  /** The same less the background CPU the node spent while idle, over the phase's length. */
  netCpuUs: number;
  heapBytes: number;
  gcPauseUs: number;
  /** Peer messages and payload bytes (both directions) per request. */
  peerMessages: number;
  peerBytes: number | null;
  loopP99Ms: number;
  loopP999Ms: number;
  loopMaxMs: number;
}

function perRequest(n: NodePhase, requests: number, idleCpuUsPerS: number, seconds: number): RoleFigures {
  const per = (x: number) => (requests > 0 ? x / requests : 0);
  return {
    cpuUs: per(n.cpuUs),
    systemCpuUs: per(n.systemCpuUs),
    netCpuUs: per(Math.max(0, n.cpuUs - idleCpuUsPerS * seconds)),
    heapBytes: per(n.probe.heapAllocatedBytes),
    gcPauseUs: per(n.probe.gcPauseUs),
    peerMessages: per(n.peerMessages),
    peerBytes: n.peerBytes === null ? null : per(n.peerBytes),
    loopP99Ms: n.probe.loopDelayMs.p99,
    loopP999Ms: n.probe.loopDelayMs.p999,
    loopMaxMs: n.probe.loopDelayMs.max,
  };
}

/** The requests a node served in its role in a phase (a build without the replica counter: the client operations). */
function servedBy(n: NodePhase, p: PhaseResult): number {
  if (n.role === 'coordinator') return p.operations;
  const counted = Object.values(n.replicaRequests).reduce((a, b) => a + b, 0);
  return Object.keys(n.replicaRequests).length > 0 ? counted : p.operations;
}

/** Coordinator and replica figures (replicas: the mean of n2 and n3) of the put or get phase of a round. */
export function roleFigures(r: RoundResult, phase: 'put' | 'get'): Record<Role, RoleFigures> {
  const p = r.phases.find((x) => x.phase === phase)!;
  const idle = r.phases.find((x) => x.phase === 'idle')!;
  const figures = p.nodes.map((n, i) => perRequest(n, servedBy(n, p), idle.nodes[i]!.cpuUs / idle.seconds, p.seconds));
  const replicas = figures.slice(1);
  const mean = (f: (x: RoleFigures) => number) => replicas.reduce((s, x) => s + f(x), 0) / replicas.length;
  const meanOrNull = (f: (x: RoleFigures) => number | null) => (replicas.some((x) => f(x) === null) ? null : mean((x) => f(x)!));
  return {
    coordinator: figures[0]!,
    replica: {
      cpuUs: mean((x) => x.cpuUs),
      systemCpuUs: mean((x) => x.systemCpuUs),
      netCpuUs: mean((x) => x.netCpuUs),
      heapBytes: mean((x) => x.heapBytes),
      gcPauseUs: mean((x) => x.gcPauseUs),
      peerMessages: mean((x) => x.peerMessages),
      peerBytes: meanOrNull((x) => x.peerBytes),
      loopP99Ms: Math.max(...replicas.map((x) => x.loopP99Ms)),
      loopP999Ms: Math.max(...replicas.map((x) => x.loopP999Ms)),
      loopMaxMs: Math.max(...replicas.map((x) => x.loopMaxMs)),
    },
  };
}

function headline(r: RoundResult): string {
  const get = roleFigures(r, 'get');
  const put = roleFigures(r, 'put');
  const p = (ph: Phase) => r.phases.find((x) => x.phase === ph)!;
  return `GET ${Math.round(p('get').throughput)} ops/s coordinator ${get.coordinator.cpuUs.toFixed(1)} µs, replica ${get.replica.cpuUs.toFixed(1)} µs; PUT ${Math.round(p('put').throughput)} ops/s coordinator ${put.coordinator.cpuUs.toFixed(1)} µs, replica ${put.replica.cpuUs.toFixed(1)} µs; errors ${p('get').errors + p('put').errors}`;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const range = (xs: number[], digits: number) => (xs.length > 1 ? ` (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})` : '');
const med = (xs: number[], digits: number) => `${median(xs).toFixed(digits)}${range(xs, digits)}`;

/** The report: per build the median over rounds (min–max), and with several builds each one's per-round ratios to the first. */
export function rolesReport(results: RoundResult[], builds: Build[]): string {
  const lines: string[] = [];
  lines.push('| build | phase | role | CPU µs/req | of it kernel | net of idle | heap B/req | GC pause µs/req | peer msgs/req | peer B/req | loop delay p99 / p99.9 / max ms |');
  lines.push('|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const b of builds) {
    const rounds = results.filter((r) => r.build === b.label);
    for (const phase of ['get', 'put'] as const) {
      for (const role of ['coordinator', 'replica'] as const) {
        const f = rounds.map((r) => roleFigures(r, phase)[role]);
        const bytes = f.every((x) => x.peerBytes !== null) ? med(f.map((x) => x.peerBytes!), 0) : 'n/a';
        lines.push(
          `| ${b.label} | ${phase.toUpperCase()} | ${role} | ${med(f.map((x) => x.cpuUs), 1)} | ${med(f.map((x) => x.systemCpuUs), 1)} | ${med(f.map((x) => x.netCpuUs), 1)} | ${med(f.map((x) => x.heapBytes), 0)} | ${med(f.map((x) => x.gcPauseUs), 2)} | ${med(f.map((x) => x.peerMessages), 2)} | ${bytes} | ${median(f.map((x) => x.loopP99Ms)).toFixed(1)} / ${median(f.map((x) => x.loopP999Ms)).toFixed(1)} / ${median(f.map((x) => x.loopMaxMs)).toFixed(1)} |`,
        );
      }
    }
  }
  lines.push('');
  // Per client request, both replicas together: what a smaller read fan-out saves (a replica's per-kv.get figure above does not show it).
  lines.push('| build | replica requests per GET (n2+n3) | replicas\' CPU µs per GET (n2+n3) | replicas\' CPU µs per PUT (n2+n3) |');
  lines.push('|---|---:|---:|---:|');
  for (const b of builds) {
    const rounds = results.filter((r) => r.build === b.label);
    const ph = (r: RoundResult, p: Phase) => r.phases.find((x) => x.phase === p)!;
    const perOp = (r: RoundResult, p: Phase, f: (n: NodePhase) => number) => ph(r, p).nodes.slice(1).reduce((s, n) => s + f(n), 0) / Math.max(1, ph(r, p).operations);
    const served = (n: NodePhase) => Object.values(n.replicaRequests).reduce((a, x) => a + x, 0);
    lines.push(`| ${b.label} | ${med(rounds.map((r) => perOp(r, 'get', served)), 2)} | ${med(rounds.map((r) => perOp(r, 'get', (n) => n.cpuUs)), 1)} | ${med(rounds.map((r) => perOp(r, 'put', (n) => n.cpuUs)), 1)} |`);
  }
  lines.push('');
  lines.push('| build | GET ops/s | PUT ops/s | errors | idle CPU µs/s (n1, n2, n3) | generator CPU µs/op (GET, PUT) |');
  lines.push('|---|---:|---:|---:|---|---|');
  for (const b of builds) {
    const rounds = results.filter((r) => r.build === b.label);
    const ph = (r: RoundResult, p: Phase) => r.phases.find((x) => x.phase === p)!;
    const idle = [0, 1, 2].map((i) => median(rounds.map((r) => ph(r, 'idle').nodes[i]!.cpuUs / ph(r, 'idle').seconds)).toFixed(0)).join(', ');
    const gen = (p: Phase) => median(rounds.map((r) => ph(r, p).generatorCpuUs / Math.max(1, ph(r, p).operations))).toFixed(1);
    const errors = rounds.reduce((s, r) => s + ph(r, 'get').errors + ph(r, 'put').errors, 0);
    lines.push(`| ${b.label} | ${med(rounds.map((r) => ph(r, 'get').throughput), 0)} | ${med(rounds.map((r) => ph(r, 'put').throughput), 0)} | ${errors} | ${idle} | ${gen('get')}, ${gen('put')} |`);
  }
  if (builds.length > 1) {
    const base = builds[0]!;
    lines.push('');
    lines.push(`| CPU µs/req ratio to ${base.label} (median of rounds, min–max) | ${builds.slice(1).map((b) => b.label).join(' | ')} |`);
    lines.push(`|---|${builds.slice(1).map(() => '---:').join('|')}|`);
    for (const phase of ['get', 'put'] as const) {
      for (const role of ['coordinator', 'replica'] as const) {
        const cells = builds.slice(1).map((b) => {
          const ratios: number[] = [];
          for (let round = 1; ; round++) {
            const x = results.find((r) => r.build === b.label && r.round === round);
            const y = results.find((r) => r.build === base.label && r.round === round);
            if (!x || !y) break;
            ratios.push(roleFigures(x, phase)[role].cpuUs / roleFigures(y, phase)[role].cpuUs);
          }
          return med(ratios, 3);
        });
        lines.push(`| ${phase.toUpperCase()} ${role} | ${cells.join(' | ')} |`);
      }
    }
  }
  return lines.join('\n');
}
