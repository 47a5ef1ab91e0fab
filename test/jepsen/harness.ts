// Jepsen-style harness: a ringkv cluster of real `ringkv start` processes,
// each on its own loopback address (127.0.0.2, .3, …; peer connections leave
// from it), and a seeded nemesis that pauses (SIGSTOP/SIGCONT), crashes
// (SIGKILL, then a restart with the same id, address and data directory) or
// partitions (nftables, partition.ts) while a workload runs, one fault at a
// time. Every wait is bounded in time.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rand } from '../helpers/random.js';
import type { NftPartitioner } from './partition.js';
import { tempDir } from '../helpers/tmp.js';
import { ensureSecretFile } from '../../src/server/peer-secrets.js';

const CLI = fileURLToPath(new URL('../../bin/ringkv.js', import.meta.url));

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export type NodeState = 'up' | 'paused' | 'killed';

export interface NodeProc {
  id: string;
  /** The node's own loopback address (listen, advertise and source of its peer connections). */
  host: string;
  port: number;
  address: string;
  dataDir: string;
  args: string[];
  child: ChildProcess | null;
  state: NodeState;
  /** Last lines of the node's stdout/stderr, for failure messages. */
  log: string[];
  starts: number;
  /** Set while the harness itself is ending the process. */
  expectExit: boolean;
}

/** A node process that exited without the harness killing it: a crash to report. */
export interface Crash {
  node: string;
  code: number | null;
  signal: string | null;
  log: string[];
}

export interface ClusterOptions {
  nodes: number;
  /** Pino level of the node processes (default warn). */
  logLevel?: string;
  /** How long to wait for the cluster to form (default 45 s). */
  formTimeoutMs?: number;
}

interface StatusView {
  joined: boolean;
  ring: { digest: string };
  members: Array<{ id: string; status: string; partitions: number; health: string }>;
}

async function fetchJson<T>(url: string, timeoutMs: number, headers: Record<string, string>): Promise<T> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
  if (res.status !== 200) throw new Error(`${url}: ${res.status}`);
  return (await res.json()) as T;
}

/** Clusters not closed yet: `closeAllClusters` (an afterAll) ends them even when a run was cut short. */
const live = new Set<Cluster>();

export async function closeAllClusters(): Promise<void> {
  await Promise.all([...live].map((c) => c.close()));
}

export class Cluster {
  readonly nodes: NodeProc[];
  readonly crashes: Crash[] = [];
  private readonly dir: { path: string; remove(): void };
  private closed = false;

  private constructor(dir: { path: string; remove(): void }, nodes: NodeProc[]) {
    this.dir = dir;
    this.nodes = nodes;
    live.add(this);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get addresses(): string[] {
    return this.nodes.map((n) => n.address);
  }

  private adminToken: string | undefined;
  /** The cluster's first admin token (tokens are on, as by default): n1 writes it to its data directory when it creates the cluster. */
  get token(): string | undefined {
    if (this.adminToken === undefined) {
      const file = join(this.nodes[0]!.dataDir, 'admin.token');
      if (existsSync(file)) this.adminToken = readFileSync(file, 'utf8').trim();
    }
    return this.adminToken;
  }

  private get authHeaders(): Record<string, string> {
    const token = this.token;
    return token === undefined ? {} : { authorization: `Bearer ${token}` };
  }

  /**
   * Starts `nodes` processes, node i on 127.0.0.(i+2) and consecutive ports
   * from a random base in 20000–40000 (another base if a port is taken), n1
   * first and the seed of the others, and waits until every node sees every member valid with
   * partitions and all agree on one ring digest.
   */
  static async start(opts: ClusterOptions): Promise<Cluster> {
    const logLevel = opts.logLevel ?? 'warn';
    let lastErr: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const basePort = 20_000 + Math.floor(Math.random() * (20_000 - opts.nodes));
      const dir = tempDir('ringkv-jepsen-');
      const nodes: NodeProc[] = [];
      const secretFile = join(dir.path, 'cluster.secret');
      ensureSecretFile(secretFile);
      for (let i = 0; i < opts.nodes; i++) {
        const id = `n${i + 1}`;
        const host = `127.0.0.${i + 2}`;
        const port = basePort + i;
        const address = `${host}:${port}`;
        const dataDir = join(dir.path, id);
        mkdirSync(dataDir, { recursive: true });
        const args = [CLI, 'start', '--node-id', id, '--listen', address, '--data-dir', dataDir, '--log-level', logLevel, '--secret-file', secretFile];
        if (i > 0) args.push('--seeds', `127.0.0.2:${basePort}`);
        nodes.push({ id, host, port, address, dataDir, args, child: null, state: 'killed', log: [], starts: 0, expectExit: false });
      }
      const cluster = new Cluster(dir, nodes);
      try {
        for (const n of nodes) {
          cluster.spawn(n);
          await cluster.waitListening(n, 20_000);
        }
        await cluster.waitConverged(opts.formTimeoutMs ?? 45_000);
        return cluster;
      } catch (err) {
        lastErr = err;
        await cluster.close();
      }
    }
    throw lastErr;
  }

  private spawn(n: NodeProc): void {
    if (this.closed) throw new Error('cluster closed');
    // The IPC channel makes a node stop when this process dies, even by SIGKILL.
    const child = spawn(process.execPath, n.args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line) n.log.push(line.slice(0, 500));
      if (n.log.length > 50) n.log.splice(0, n.log.length - 50);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.on('exit', (code, signal) => {
      if (n.child === child) {
        n.log.push(`[harness] ${n.id} exited (${signal ?? code})`);
        if (!n.expectExit) this.crashes.push({ node: n.id, code, signal, log: n.log.slice(-20) });
        n.state = 'killed';
        n.child = null;
      }
    });
    n.child = child;
    n.expectExit = false;
    n.state = 'up';
    n.starts++;
  }

  /** Bounded wait until the node answers /status as a joined member. */
  async waitListening(n: NodeProc, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (n.child === null) throw new Error(`${n.id} exited while starting:\n${n.log.join('\n')}`);
      try {
        const s = await fetchJson<StatusView>(`http://${n.address}/status`, 1_000, this.authHeaders);
        if (s.joined) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`${n.id} did not come up within ${timeoutMs} ms:\n${n.log.join('\n')}`);
  }

  /** Every node's view: all members valid with partitions, every peer 'up', one ring digest. */
  async converged(opts: { requireHealthy?: boolean } = {}): Promise<boolean> {
    try {
      const views = await Promise.all(this.nodes.map((n) => fetchJson<StatusView>(`http://${n.address}/status`, 1_000, this.authHeaders)));
      const count = this.nodes.length;
      const ok = views.every((v) =>
        v.joined
        && v.members.filter((m) => m.status === 'valid' && m.partitions > 0).length === count
        && (!opts.requireHealthy || v.members.every((m) => m.health === 'self' || m.health === 'up')));
      return ok && new Set(views.map((v) => v.ring.digest)).size === 1;
    } catch {
      return false;
    }
  }

  async waitConverged(timeoutMs: number, opts: { requireHealthy?: boolean } = {}): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await this.converged(opts)) return;
      await sleep(250);
    }
    throw new Error(`cluster did not converge within ${timeoutMs} ms\n${this.nodes.map((n) => `${n.id} (${n.state}):\n  ${n.log.slice(-10).join('\n  ')}`).join('\n')}`);
  }

  pause(i: number): void {
    const n = this.nodes[i]!;
    if (n.state !== 'up' || !n.child) throw new Error(`pause ${n.id}: it is ${n.state}`);
    n.child.kill('SIGSTOP');
    n.state = 'paused';
  }

  resume(i: number): void {
    const n = this.nodes[i]!;
    if (n.state !== 'paused' || !n.child) return;
    n.child.kill('SIGCONT');
    n.state = 'up';
  }

  /** SIGKILL, and wait (bounded) until the process is gone. */
  async kill(i: number): Promise<void> {
    const n = this.nodes[i]!;
    const child = n.child;
    if (!child) return;
    const gone = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    n.expectExit = true;
    child.kill('SIGKILL');
    await Promise.race([gone, sleep(10_000)]);
    n.state = 'killed';
    n.child = null;
  }

  /** Starts a killed node again: same id, port and data directory; waits until it answers as joined. */
  async restart(i: number, timeoutMs = 20_000): Promise<void> {
    const n = this.nodes[i]!;
    if (n.child) return;
    // The port was just freed; if the listen races the kernel, try again (bounded).
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.spawn(n);
      try {
        await this.waitListening(n, Math.max(1_000, deadline - Date.now()));
        return;
      } catch (err) {
        if (Date.now() >= deadline) throw err;
        await this.kill(i);
        await sleep(250);
      }
    }
  }

  /** Resumes paused nodes and restarts killed ones. */
  async ensureAllUp(): Promise<void> {
    for (let i = 0; i < this.nodes.length; i++) {
      const n = this.nodes[i]!;
      if (n.state === 'paused') this.resume(i);
      if (n.state === 'killed' || !n.child) await this.restart(i);
    }
  }

  /** Processes alive (not exited) and answering /ping. */
  async alive(): Promise<boolean[]> {
    return Promise.all(this.nodes.map(async (n) => {
      if (!n.child || n.state !== 'up') return false;
      try {
        const res = await fetch(`http://${n.address}/ping`, { signal: AbortSignal.timeout(2_000) });
        return (await res.text()) === 'pong';
      } catch {
        return false;
      }
    }));
  }

  /** Sum of a Prometheus metric over the nodes (counters and gauges without labels, or all label sets summed). */
  async metricSum(name: string): Promise<number> {
    let total = 0;
    for (const n of this.nodes) {
      try {
        const res = await fetch(`http://${n.address}/metrics`, { headers: this.authHeaders, signal: AbortSignal.timeout(2_000) });
        for (const line of (await res.text()).split('\n')) {
          if (line.startsWith(name + ' ') || line.startsWith(name + '{')) total += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
        }
      } catch {
        // a node that does not answer adds nothing
      }
    }
    return total;
  }

  /** SIGCONT and SIGTERM every node, SIGKILL what has not exited after 5 s, remove the data. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    live.delete(this);
    const exits = this.nodes.map((n) => {
      const child = n.child;
      if (!child) return Promise.resolve();
      n.expectExit = true;
      return new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, 5_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGCONT');
        child.kill('SIGTERM');
      });
    });
    await Promise.all(exits);
    for (const n of this.nodes) n.child = null;
    this.dir.remove();
  }
}

// ---------------------------------------------------------------------------
// Nemesis

export type FaultOp = 'pause' | 'kill' | 'partition';

export interface NemesisEvent {
  atMs: number;
  op: FaultOp;
  /** The node paused or killed; for a partition, the nodes cut from the rest (comma-separated). */
  node: string;
  downMs: number;
  /** Time from the restart to the node answering as joined (kill only). */
  restartMs?: number;
  /** Partition only: the rules were removed. */
  healed?: boolean;
  error?: string;
}

/** When a fault was in effect, in Date.now() ms (end null while it lasts). */
export interface FaultWindow {
  op: FaultOp;
  start: number;
  end: number | null;
}

export interface NemesisOptions {
  seed: number;
  /** Time a node stays stopped or dead (default 1000–3000 ms). */
  minDownMs?: number;
  maxDownMs?: number;
  /** Quiet time between faults (default 500–2000 ms). */
  minGapMs?: number;
  maxGapMs?: number;
  /** Probability of a kill rather than a pause (default 0.5). */
  killChance?: number;
  /** Partitions (none without one). */
  partitioner?: NftPartitioner;
  /** Probability that a fault is a partition, when there is a partitioner (default 1/3). */
  partitionChance?: number;
  /** How long a partition lasts before it heals (default 2000–5000 ms). */
  minPartitionMs?: number;
  maxPartitionMs?: number;
}

/**
 * One fault at a time, chosen by a seeded generator: SIGSTOP a node for
 * 1–3 s then SIGCONT; SIGKILL it and restart it 1–3 s later; or (with a
 * partitioner) cut a random minority of the nodes (1 to ⌊n/2⌋) from the
 * rest, both ways, for 2–5 s (the first fault, then a third of them). A fault always ends (the node is back, the
 * rules are gone) before the next begins.
 */
export class Nemesis {
  readonly events: NemesisEvent[] = [];
  readonly windows: FaultWindow[] = [];
  private stopping = false;
  private loop: Promise<void> | null = null;
  private readonly rand: Rand;
  private readonly started = Date.now();
  private wake: (() => void) | null = null;

  constructor(private readonly cluster: Cluster, private readonly opts: NemesisOptions) {
    this.rand = new Rand(opts.seed);
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops after the current fault is healed (bounded by one down time plus a restart). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
  }

  private async quiet(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.wake = null;
  }

  private async run(): Promise<void> {
    const o = { minDownMs: 1_000, maxDownMs: 3_000, minGapMs: 500, maxGapMs: 2_000, killChance: 0.5, partitionChance: 1 / 3, minPartitionMs: 2_000, maxPartitionMs: 5_000, ...this.opts };
    const nodes = this.cluster.nodes;
    while (!this.stopping && !this.cluster.isClosed) {
      await this.quiet(this.rand.int(o.minGapMs, o.maxGapMs));
      if (this.stopping) break;
      // The first fault is a partition when partitions run, so a short run has one too.
      const first = this.events.length === 0;
      const op: FaultOp = o.partitioner && (first || this.rand.chance(o.partitionChance)) ? 'partition' : this.rand.chance(o.killChance) ? 'kill' : 'pause';
      let ev: NemesisEvent;
      const window: FaultWindow = { op, start: Date.now(), end: null };
      try {
        if (op === 'partition') {
          // A random minority: shuffle the indexes (seeded) and take the first k.
          const order = nodes.map((_, i) => i);
          for (let i = order.length - 1; i > 0; i--) {
            const j = this.rand.int(0, i);
            [order[i], order[j]] = [order[j]!, order[i]!];
          }
          const k = this.rand.int(1, Math.floor(nodes.length / 2));
          const side = order.slice(0, k).sort((a, b) => a - b).map((i) => nodes[i]!);
          const rest = nodes.filter((n) => !side.includes(n));
          const downMs = this.rand.int(o.minPartitionMs, o.maxPartitionMs);
          ev = this.record(op, side.map((n) => n.id).join(','), downMs);
          window.start = Date.now();
          this.windows.push(window);
          try {
            o.partitioner!.cut(side, rest);
            await sleep(downMs);
          } finally {
            o.partitioner!.heal();
            ev.healed = true;
          }
        } else {
          const i = this.rand.int(0, nodes.length - 1);
          const downMs = this.rand.int(o.minDownMs, o.maxDownMs);
          ev = this.record(op, nodes[i]!.id, downMs);
          window.start = Date.now();
          this.windows.push(window);
          if (op === 'pause') {
            this.cluster.pause(i);
            await sleep(downMs);
            this.cluster.resume(i);
          } else {
            await this.cluster.kill(i);
            await sleep(downMs);
            const t0 = Date.now();
            await this.cluster.restart(i);
            ev.restartMs = Date.now() - t0;
          }
        }
      } catch (err) {
        const last = this.events[this.events.length - 1];
        if (last) last.error = err instanceof Error ? err.message.split('\n')[0] : String(err);
        // Heal whatever state the node is in before going on.
        if (!this.cluster.isClosed) await this.cluster.ensureAllUp().catch(() => {});
      } finally {
        window.end = Date.now();
      }
    }
  }

  private record(op: FaultOp, node: string, downMs: number): NemesisEvent {
    const ev: NemesisEvent = { atMs: Date.now() - this.started, op, node, downMs };
    this.events.push(ev);
    if (process.env.RINGKV_JEPSEN_DEBUG === '1') console.log(`[jepsen debug] ${new Date().toISOString().slice(11, 23)} nemesis ${op} ${node} for ${downMs} ms`);
    return ev;
  }
}
