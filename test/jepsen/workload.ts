// Jepsen-style workloads and checker: concurrent clients add unique elements
// to keys while the nemesis runs; every add is recorded as acknowledged,
// failed or indeterminate; after the cluster heals, a final r=3 read of each
// key must contain every acknowledged element (siblings + union merge, and
// set buckets). LWW buckets are measured, not judged: they lose writes by
// design (DYNAMO.md, the Jepsen lesson). Read-your-writes is measured too:
// after each acknowledged add (siblings, sets) the same client reads the key
// at once (default R=2, W=2, N=3, so R + W > N); a read without the element
// is a miss, counted apart during partitions, other faults and quiet time.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { RingkvClient, RingkvError } from '../../src/client/index.js';
import { Rand } from '../helpers/random.js';
import { machineLine, recordSection, today } from '../../bench/results-file.js';
import { Cluster, Nemesis, sleep, type Crash, type FaultWindow, type NemesisEvent } from './harness.js';
import { NftPartitioner } from './partition.js';

export type Mode = 'siblings' | 'set' | 'lww';
export type Outcome = 'ok' | 'fail' | 'info';

export interface WorkloadSpec {
  name: string;
  mode: Mode;
  bucket: string;
  keys: string[];
  clients: number;
}

export interface AddRecord {
  key: string;
  element: string;
  outcome: Outcome;
  /** Error code for fail/info. */
  reason?: string;
}

export interface WorkloadResult {
  spec: WorkloadSpec;
  records: AddRecord[];
  /** Final elements per key (union of the siblings for a kv bucket). */
  final: Map<string, Set<string>>;
  /** Most siblings (live values) one workload read returned. */
  maxSiblings: number;
  /** Reads right after an acknowledged add (siblings and set workloads). */
  ryw: RywSample[];
}

export interface RywSample {
  /** Date.now() before the write and after the read. */
  start: number;
  end: number;
  result: 'hit' | 'miss' | 'error';
}

export type RywPhase = 'partition' | 'other fault' | 'quiet';

/** Read-your-writes counts: reads that answered, of those without the element, reads that failed. */
export interface RywTally {
  reads: number;
  misses: number;
  errors: number;
}

export interface Tally {
  attempted: number;
  acknowledged: number;
  lost: number;
  failed: number;
  indeterminate: number;
  /** Not acknowledged (failed or indeterminate) yet present in the final read. */
  unackedPresent: number;
  /** Of those, definitely failed (an error answer before or instead of a write): should be 0. */
  failedPresent: number;
  finalElements: number;
  /** A sample of lost elements, for the report. */
  lostSample: string[];
  /** Most siblings one read returned (kv buckets). */
  maxSiblings: number;
  /** Why adds were not acknowledged: reason → count (e.g. `read:QUORUM_FAILED`, `CLIENT_TIMEOUT`). */
  reasons: Record<string, number>;
}

export interface JepsenOptions {
  nodes: number;
  seconds: number;
  seed: number;
  /** Concurrent clients per workload. */
  clients: number;
  /** Keys of the many-keys workloads. */
  manyKeys: number;
  /** Settle phase bound (ms). */
  settleMs: number;
  /** Server-side deadline of each operation (ms); the client waits one second more. */
  opTimeoutMs: number;
  /** Quiet time between two faults of the nemesis, ms (default 500–2000). */
  gapMs: [number, number];
  /** Try network partitions (nftables; skipped with a log line when not root or without `nft`). */
  partitions: boolean;
  /** Label of the run in bench/RESULTS.md (a labelled run has its own block beside the others). */
  label?: string;
  log?: (line: string) => void;
}

export interface JepsenReport {
  opts: JepsenOptions;
  results: Array<{ spec: WorkloadSpec; tally: Tally }>;
  byMode: Record<Mode, Tally>;
  nemesis: NemesisEvent[];
  /** Partitions: whether they ran, and why not. */
  partitions: { enabled: boolean; skipped: string | null };
  /** Read-your-writes after acknowledged adds, siblings and set workloads, by the fault in effect. */
  ryw: Record<'siblings' | 'set', Record<RywPhase | 'all', RywTally>>;
  settle: { ms: number; rounds: number; stable: boolean; hintsPending: number; readFailures: number };
  metrics: Record<string, number>;
  aliveAtEnd: boolean[];
  /** Node processes that exited on their own (not killed by the nemesis). */
  crashes: Crash[];
  restarts: Record<string, number>;
  wallMs: number;
}

// ---------------------------------------------------------------------------
// Values of kv buckets: a newline-separated list of elements, merged by union.

const decode = (v: Buffer): string[] => (v.length === 0 ? [] : v.toString('utf8').split('\n'));
const encode = (s: Set<string>): Buffer => Buffer.from([...s].sort().join('\n'), 'utf8');
export const unionOf = (values: Buffer[]): Set<string> => {
  const out = new Set<string>();
  for (const v of values) for (const e of decode(v)) out.add(e);
  return out;
};

/** Decides whether a failed operation may still have taken effect. */
export function classify(err: unknown, phase: 'read' | 'write'): { outcome: Outcome; reason: string } {
  if (process.env.RINGKV_JEPSEN_DEBUG === '1') {
    const e = err as RingkvError;
    console.log(`[jepsen debug] ${new Date().toISOString().slice(11, 23)} ${phase} ${e.code ?? e} ${e.message?.slice(0, 80)} ${JSON.stringify(e.body ?? null).slice(0, 200)}`);
  }
  // A read that failed means the element was never sent anywhere.
  if (phase === 'read') return { outcome: 'fail', reason: `read:${reasonOf(err)}` };
  if (err instanceof RingkvError) {
    if (err.code === 'CLIENT_TIMEOUT') return { outcome: 'info', reason: err.code };
    if (err.code === 'UNREACHABLE') {
      // Refused everywhere: nothing was sent. Reset or closed mid-request: it may have been processed.
      const failures = ((err.body as { failures?: Array<{ error: string }> } | undefined)?.failures) ?? [];
      const refused = failures.length > 0 && failures.every((f) => f.error === 'ECONNREFUSED');
      return { outcome: refused ? 'fail' : 'info', reason: err.code };
    }
    // 4xx: refused up front (TOO_MANY_SIBLINGS stores nothing, BAD_REQUEST is ours).
    if (err.status >= 400 && err.status < 500) return { outcome: 'fail', reason: err.code };
    // 503 QUORUM_FAILED / TIMEOUT / 500: some replica may have stored it.
    return { outcome: 'info', reason: err.code };
  }
  return { outcome: 'info', reason: reasonOf(err) };
}

function reasonOf(err: unknown): string {
  if (err instanceof RingkvError) return err.code;
  return (err as { name?: string } | null)?.name ?? 'error';
}

/** A well-mixed 31-bit seed for one stream of a run (splitmix32 finaliser): Rand's first outputs track its seed. */
export function subSeed(seed: number, stream: number): number {
  let z = (Math.imul(seed, 0x9e3779b9) + Math.imul(stream + 1, 0x7f4a7c15)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) & 0x7fffffff;
}

// ---------------------------------------------------------------------------

/**
 * One client per node, each talking to that node only. A workload client
 * makes each add and its read-your-writes read through the same node, so
 * both are coordinated on the same side of any partition: across a partition
 * a sloppy quorum promises no read-your-writes (each side can make its own
 * quorum), on one side it does when its nodes agree on who is healthy.
 */
function pinnedClients(addresses: string[], opTimeoutMs: number, token: string | undefined): RingkvClient[] {
  return addresses.map((a) => new RingkvClient({ nodes: [a], timeoutMs: opTimeoutMs + 1_000, token }));
}

/** One client: adds unique elements until the deadline (read-modify-write with the context, or /sets). */
async function runClient(spec: WorkloadSpec, index: number, clients: RingkvClient[], rand: Rand, deadline: number, opTimeoutMs: number, result: WorkloadResult): Promise<void> {
  const out = result.records;
  let seq = 0;
  while (Date.now() < deadline) {
    const key = rand.pick(spec.keys);
    const client = rand.pick(clients);
    const element = `c${index}-${seq++}`;
    const rec: AddRecord = { key, element, outcome: 'ok' };
    out.push(rec);
    const start = Date.now();
    if (spec.mode === 'set') {
      try {
        await client.setUpdate(spec.bucket, key, { add: [element] }, { timeoutMs: opTimeoutMs });
      } catch (err) {
        Object.assign(rec, classify(err, 'write'));
      }
    } else {
      let read;
      try {
        read = await client.get(spec.bucket, key, { timeoutMs: opTimeoutMs });
      } catch (err) {
        Object.assign(rec, classify(err, 'read'));
      }
      if (read) {
        result.maxSiblings = Math.max(result.maxSiblings, read.values.length);
        const merged = unionOf(read.values);
        merged.add(element);
        try {
          await client.put(spec.bucket, key, encode(merged), { context: read.context, timeoutMs: opTimeoutMs });
        } catch (err) {
          Object.assign(rec, classify(err, 'write'));
        }
      }
    }
    // LWW is left out: another client's later write replaces ours by design.
    if (rec.outcome === 'ok' && spec.mode !== 'lww') {
      const seen = await readsOwnAdd(client, spec, key, element, opTimeoutMs);
      result.ryw.push({ start, end: Date.now(), result: seen });
    }
    // A little think time keeps a 2-core machine from drowning in requests.
    await sleep(rand.int(0, 10));
  }
}

/** The same client reads the key right after its acknowledged add, with the bucket's default R. */
async function readsOwnAdd(client: RingkvClient, spec: WorkloadSpec, key: string, element: string, opTimeoutMs: number): Promise<RywSample['result']> {
  try {
    if (spec.mode === 'set') {
      const s = await client.setGet(spec.bucket, key, { timeoutMs: opTimeoutMs });
      return s.elements.some((e) => e.toString('utf8') === element) ? 'hit' : 'miss';
    }
    const got = await client.get(spec.bucket, key, { timeoutMs: opTimeoutMs });
    return unionOf(got.values).has(element) ? 'hit' : 'miss';
  } catch {
    return 'error';
  }
}

/** Which fault a read-your-writes sample overlapped: a partition first, then a pause or kill, else quiet. */
export function rywPhase(sample: RywSample, windows: FaultWindow[]): RywPhase {
  const overlaps = (w: FaultWindow) => w.start <= sample.end && (w.end === null || w.end >= sample.start);
  if (windows.some((w) => w.op === 'partition' && overlaps(w))) return 'partition';
  if (windows.some((w) => w.op !== 'partition' && overlaps(w))) return 'other fault';
  return 'quiet';
}

export function tallyRyw(samples: RywSample[], windows: FaultWindow[]): Record<RywPhase | 'all', RywTally> {
  const out = Object.fromEntries((['all', 'partition', 'other fault', 'quiet'] as const).map((k) => [k, { reads: 0, misses: 0, errors: 0 }])) as Record<RywPhase | 'all', RywTally>;
  for (const s of samples) {
    for (const t of [out.all, out[rywPhase(s, windows)]]) {
      if (s.result === 'error') t.errors++;
      else {
        t.reads++;
        if (s.result === 'miss') t.misses++;
      }
    }
  }
  return out;
}

/** The final value of a key with r=3: union of the live siblings, or the set's elements. */
async function finalRead(client: RingkvClient, spec: WorkloadSpec, key: string, opTimeoutMs: number): Promise<Set<string>> {
  if (spec.mode === 'set') {
    const s = await client.setGet(spec.bucket, key, { r: 3, timeoutMs: opTimeoutMs });
    return new Set(s.elements.map((e) => e.toString('utf8')));
  }
  const got = await client.get(spec.bucket, key, { r: 3, timeoutMs: opTimeoutMs });
  return unionOf(got.values);
}

export function tally(result: WorkloadResult): Tally {
  const t: Tally = { attempted: 0, acknowledged: 0, lost: 0, failed: 0, indeterminate: 0, unackedPresent: 0, failedPresent: 0, finalElements: 0, lostSample: [], maxSiblings: result.maxSiblings, reasons: {} };
  for (const s of result.final.values()) t.finalElements += s.size;
  for (const r of result.records) {
    t.attempted++;
    const present = result.final.get(r.key)?.has(r.element) ?? false;
    if (r.outcome === 'ok') {
      t.acknowledged++;
      if (!present) {
        t.lost++;
        if (t.lostSample.length < 10) t.lostSample.push(`${r.key}/${r.element}`);
      }
    } else {
      const why = `${r.outcome}:${r.reason ?? '?'}`;
      t.reasons[why] = (t.reasons[why] ?? 0) + 1;
      if (r.outcome === 'fail') t.failed++;
      else t.indeterminate++;
      if (present) {
        t.unackedPresent++;
        if (r.outcome === 'fail') t.failedPresent++;
      }
    }
  }
  return t;
}

function sumTallies(ts: Tally[]): Tally {
  const out: Tally = { attempted: 0, acknowledged: 0, lost: 0, failed: 0, indeterminate: 0, unackedPresent: 0, failedPresent: 0, finalElements: 0, lostSample: [], maxSiblings: 0, reasons: {} };
  for (const t of ts) {
    out.maxSiblings = Math.max(out.maxSiblings, t.maxSiblings);
    for (const [k, v] of Object.entries(t.reasons)) out.reasons[k] = (out.reasons[k] ?? 0) + v;
    for (const k of ['attempted', 'acknowledged', 'lost', 'failed', 'indeterminate', 'unackedPresent', 'failedPresent', 'finalElements'] as const) out[k] += t[k];
    out.lostSample.push(...t.lostSample.slice(0, 10 - out.lostSample.length));
  }
  return out;
}

export function workloadSpecs(o: Pick<JepsenOptions, 'clients' | 'manyKeys'>): WorkloadSpec[] {
  const many = Array.from({ length: o.manyKeys }, (_, i) => `k${i}`);
  const specs: WorkloadSpec[] = [];
  for (const mode of ['siblings', 'set', 'lww'] as const) {
    const bucket = `jepsen-${mode}`;
    specs.push({ name: `${mode}, 1 key`, mode, bucket, keys: ['cart'], clients: o.clients });
    specs.push({ name: `${mode}, ${o.manyKeys} keys`, mode, bucket, keys: many, clients: o.clients });
  }
  return specs;
}

/**
 * The whole run: start the cluster, set the bucket properties, run every
 * workload at once under the nemesis, heal, settle, read with r=3, check.
 * The cluster is closed before this returns (or throws).
 */
export async function runJepsen(opts: JepsenOptions): Promise<JepsenReport> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const t0 = Date.now();
  log(`[jepsen] seed ${opts.seed}: ${opts.nodes} nodes, ${opts.seconds} s, ${opts.clients} clients per workload`);
  const { partitioner, skipped } = openPartitioner(opts, log);
  let cluster: Cluster;
  try {
    cluster = await Cluster.start({ nodes: opts.nodes });
  } catch (err) {
    partitioner?.close();
    throw err;
  }
  try {
    log(`[jepsen] cluster up in ${Date.now() - t0} ms: ${cluster.addresses.join(', ')}`);
    const admin = new RingkvClient({ nodes: cluster.addresses, timeoutMs: 5_000, token: cluster.token });
    await admin.setBucketProps('jepsen-set', { type: 'set' });
    await admin.setBucketProps('jepsen-lww', { mode: 'lww' });
    // Gossip spreads bucket properties: wait (bounded) until every node has them.
    const propsDeadline = Date.now() + 20_000;
    for (;;) {
      const views = await Promise.all(cluster.addresses.map(async (a) => [await admin.bucketProps('jepsen-set', { node: a }), await admin.bucketProps('jepsen-lww', { node: a })] as const));
      if (views.every(([s, l]) => (s as { type?: string }).type === 'set' && l.mode === 'lww')) break;
      if (Date.now() > propsDeadline) throw new Error('bucket properties did not spread within 20 s');
      await sleep(200);
    }

    const specs = workloadSpecs(opts);
    const results: WorkloadResult[] = specs.map((spec) => ({ spec, records: [], final: new Map(), maxSiblings: 0, ryw: [] }));
    const nemesis = new Nemesis(cluster, { seed: subSeed(opts.seed, 0), minGapMs: opts.gapMs[0], maxGapMs: opts.gapMs[1], partitioner: partitioner ?? undefined });
    const deadline = Date.now() + opts.seconds * 1_000;
    nemesis.start();
    let clientIndex = 0;
    const running: Promise<void>[] = [];
    const clients = pinnedClients(cluster.addresses, opts.opTimeoutMs, cluster.token);
    for (const r of results) {
      for (let c = 0; c < r.spec.clients; c++) {
        clientIndex++;
        running.push(runClient(r.spec, c, clients, new Rand(subSeed(opts.seed, clientIndex)), deadline, opts.opTimeoutMs, r));
      }
    }
    await Promise.all(running);
    await nemesis.stop();
    log(`[jepsen] workload done after ${Date.now() - t0} ms; nemesis: ${nemesis.events.filter((e) => e.op === 'pause').length} pauses, ${nemesis.events.filter((e) => e.op === 'kill').length} kills, ${nemesis.events.filter((e) => e.op === 'partition').length} partitions${nemesis.events.some((e) => e.error) ? `, errors: ${nemesis.events.filter((e) => e.error).map((e) => e.error).join('; ')}` : ''}`);

    // Heal: every node up, one ring, every peer seen as up.
    await cluster.ensureAllUp();
    await cluster.waitConverged(30_000, { requireHealthy: true });

    // Settle (bounded): read every key with r=3 until two rounds in a row agree and no hints are pending.
    const reader = new RingkvClient({ nodes: cluster.addresses, timeoutMs: opts.opTimeoutMs + 1_000, token: cluster.token });
    const settleStart = Date.now();
    let previous = '';
    let rounds = 0;
    let stable = false;
    let hintsPending = 0;
    let readFailures = 0;
    while (Date.now() - settleStart < opts.settleMs) {
      rounds++;
      let readFailed = false;
      for (const r of results) {
        for (const key of r.spec.keys) {
          try {
            r.final.set(key, await finalRead(reader, r.spec, key, opts.opTimeoutMs));
          } catch (err) {
            readFailed = true;
            readFailures++;
            log(`[jepsen] final read ${r.spec.bucket}/${key} failed: ${reasonOf(err)}`);
          }
        }
      }
      hintsPending = await cluster.metricSum('ringkv_hints_pending');
      const snapshot = results.map((r) => [...r.final.entries()].map(([k, s]) => `${k}:${[...s].sort().join(',')}`).join(';')).join('|');
      if (!readFailed && hintsPending === 0 && snapshot === previous) {
        stable = true;
        break;
      }
      previous = readFailed ? '' : snapshot;
      await sleep(1_000);
    }
    const settle = { ms: Date.now() - settleStart, rounds, stable, hintsPending, readFailures };

    const tallied = results.map((r) => ({ spec: r.spec, tally: tally(r) }));
    const byMode = Object.fromEntries((['siblings', 'set', 'lww'] as const).map((m) => [m, sumTallies(tallied.filter((t) => t.spec.mode === m).map((t) => t.tally))])) as Record<Mode, Tally>;
    const metrics: Record<string, number> = {};
    for (const name of ['ringkv_hints_stored_total', 'ringkv_hints_delivered_total', 'ringkv_fallback_writes_total', 'ringkv_read_repairs_total']) {
      metrics[name] = await cluster.metricSum(name);
    }
    const aliveAtEnd = await cluster.alive();
    const restarts = Object.fromEntries(cluster.nodes.map((n) => [n.id, n.starts - 1]));
    const ryw = {
      siblings: tallyRyw(results.filter((r) => r.spec.mode === 'siblings').flatMap((r) => r.ryw), nemesis.windows),
      set: tallyRyw(results.filter((r) => r.spec.mode === 'set').flatMap((r) => r.ryw), nemesis.windows),
    };
    const partitions = { enabled: partitioner !== null, skipped };
    const report: JepsenReport = { opts, results: tallied, byMode, nemesis: nemesis.events, partitions, ryw, settle, metrics, aliveAtEnd, crashes: [...cluster.crashes], restarts, wallMs: 0 };
    report.wallMs = Date.now() - t0;
    return report;
  } finally {
    // The rules go first: a node must not be left cut off while the cluster closes.
    partitioner?.close();
    await cluster.close();
  }
}

/**
 * The partition nemesis when it can run. Not root, or no `nft`: skipped with a
 * log line, except that CI (CI=true) without `nft` fails (.ci/run installs it).
 */
function openPartitioner(opts: JepsenOptions, log: (line: string) => void): { partitioner: NftPartitioner | null; skipped: string | null } {
  if (!opts.partitions) return { partitioner: null, skipped: 'RINGKV_JEPSEN_PARTITIONS=0' };
  const support = NftPartitioner.probe();
  if (!support.ok) {
    if (support.nftMissing && process.env.CI === 'true') throw new Error(`jepsen: partitions cannot run in CI: ${support.reason}`);
    log(`[jepsen] partition nemesis SKIPPED: ${support.reason} (pauses and kills only)`);
    return { partitioner: null, skipped: support.reason };
  }
  const p = new NftPartitioner();
  try {
    p.setup();
  } catch (err) {
    p.close();
    const reason = `nft refused the table: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
    if (process.env.CI === 'true') throw new Error(`jepsen: partitions cannot run in CI: ${reason}`);
    log(`[jepsen] partition nemesis SKIPPED: ${reason} (pauses and kills only)`);
    return { partitioner: null, skipped: reason };
  }
  log(`[jepsen] partition nemesis on: nftables table inet ${p.table}`);
  return { partitioner: p, skipped: null };
}

// ---------------------------------------------------------------------------
// Reporting

export function formatTable(report: JepsenReport): string {
  const rows = [
    '| workload | adds attempted | acknowledged | lost (acked, missing) | failed | indeterminate | unacked but present | final elements | max siblings on a read |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const row = (name: string, t: Tally) => `| ${name} | ${t.attempted} | ${t.acknowledged} | ${t.lost}${t.acknowledged ? ` (${((100 * t.lost) / t.acknowledged).toFixed(1)}%)` : ''} | ${t.failed} | ${t.indeterminate} | ${t.unackedPresent} | ${t.finalElements} | ${name.startsWith('set') || name.startsWith('**set') ? '—' : t.maxSiblings} |`;
  for (const r of report.results) rows.push(row(r.spec.name, r.tally));
  for (const m of ['siblings', 'set', 'lww'] as const) rows.push(row(`**${m} (all)**`, report.byMode[m]));
  return rows.join('\n');
}

const pct = (t: RywTally) => `${t.misses} / ${t.reads}${t.reads ? ` (${((100 * t.misses) / t.reads).toFixed(2)}%)` : ''}`;

/** Read-your-writes misses / reads that answered, by mode and by the fault in effect. */
export function formatRywTable(report: JepsenReport): string {
  const phases = ['all', 'partition', 'other fault', 'quiet'] as const;
  const both = Object.fromEntries(phases.map((p) => [p, {
    reads: report.ryw.siblings[p].reads + report.ryw.set[p].reads,
    misses: report.ryw.siblings[p].misses + report.ryw.set[p].misses,
    errors: report.ryw.siblings[p].errors + report.ryw.set[p].errors,
  }])) as Record<(typeof phases)[number], RywTally>;
  const rows = [
    '| read-your-writes misses / reads | all | during a partition | during a pause or kill | no fault | reads that failed |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const [name, t] of [['siblings', report.ryw.siblings], ['set', report.ryw.set], ['**both**', both]] as const) {
    rows.push(`| ${name} | ${phases.map((p) => pct(t[p])).join(' | ')} | ${t.all.errors} |`);
  }
  return rows.join('\n');
}

export function formatSummary(report: JepsenReport): string {
  const ev = report.nemesis;
  const kills = ev.filter((e) => e.op === 'kill');
  const parts = ev.filter((e) => e.op === 'partition');
  const restartMs = kills.map((e) => e.restartMs).filter((x): x is number => x !== undefined);
  const sizes = parts.map((e) => e.node.split(',').length);
  const sizeRange = sizes.length === 0 ? 'no' : Math.min(...sizes) === Math.max(...sizes) ? String(sizes[0]) : `${Math.min(...sizes)}–${Math.max(...sizes)}`;
  return [
    `seed ${report.opts.seed}; ${report.opts.nodes} nodes; ${report.opts.seconds} s of workload; ${report.opts.clients} clients per workload; wall time ${(report.wallMs / 1000).toFixed(1)} s`,
    `nemesis: ${ev.filter((e) => e.op === 'pause').length} pauses (SIGSTOP 1–3 s), ${kills.length} kills (SIGKILL, restart after 1–3 s), ${report.partitions.enabled ? `${parts.length} partitions (nftables, ${sizeRange} nodes cut from the rest for 2–5 s), ${parts.filter((e) => e.healed).length} heals` : `partitions skipped (${report.partitions.skipped})`}, ${report.opts.gapMs[0]}–${report.opts.gapMs[1]} ms between faults (restart to joined ${restartMs.length ? `${Math.min(...restartMs)}–${Math.max(...restartMs)} ms` : 'n/a'})${ev.some((e) => e.error) ? `; nemesis errors: ${ev.filter((e) => e.error).map((e) => `${e.op} ${e.node}: ${e.error}`).join('; ')}` : ''}`,
    `read-your-writes (the same client reads the key right after each acknowledged add; bucket defaults N=3 R=2 W=2): misses ${pct({ reads: report.ryw.siblings.all.reads + report.ryw.set.all.reads, misses: report.ryw.siblings.all.misses + report.ryw.set.all.misses, errors: 0 })} overall; during partitions ${pct({ reads: report.ryw.siblings.partition.reads + report.ryw.set.partition.reads, misses: report.ryw.siblings.partition.misses + report.ryw.set.partition.misses, errors: 0 })}; otherwise ${pct({ reads: report.ryw.siblings['other fault'].reads + report.ryw.set['other fault'].reads + report.ryw.siblings.quiet.reads + report.ryw.set.quiet.reads, misses: report.ryw.siblings['other fault'].misses + report.ryw.set['other fault'].misses + report.ryw.siblings.quiet.misses + report.ryw.set.quiet.misses, errors: 0 })}`,
    `settle: ${report.settle.stable ? 'stable' : 'NOT stable'} after ${report.settle.rounds} rounds / ${(report.settle.ms / 1000).toFixed(1)} s (hints pending ${report.settle.hintsPending}; r=3 reads that failed meanwhile: ${report.settle.readFailures}); all nodes alive at the end: ${report.aliveAtEnd.every(Boolean)}; node processes that exited on their own: ${report.crashes.length ? report.crashes.map((c) => `${c.node} (${c.signal ?? c.code})`).join(', ') : 'none'}`,
    `adds not acknowledged, by outcome:reason: ${(['siblings', 'set', 'lww'] as const).map((m) => `${m} {${Object.entries(report.byMode[m].reasons).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}}`).join('; ')}`,
    `cluster metrics (sum over nodes, since each node's last start): ${Object.entries(report.metrics).map(([k, v]) => `${k.replace(/^ringkv_/, '')} ${v}`).join(', ')}`,
  ].join('\n');
}

const RESULTS = fileURLToPath(new URL('../../bench/RESULTS.md', import.meta.url));

/**
 * Writes the run into bench/RESULTS.md between `<!-- jepsen:start -->` and
 * `<!-- jepsen:end -->`: one block per cluster size (`<!-- jepsen-run:nodes=N -->`),
 * so a 3-node and a 5-node run can stand side by side; a new run replaces
 * the block of its own size.
 */
export function writeResults(report: JepsenReport, command: string, machineNote?: string): void {
  const n = report.opts.nodes;
  const label = report.opts.label;
  const key = label ? `nodes=${n} label=${label.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')}` : `nodes=${n}`;
  const block = [
    `<!-- jepsen-run:${key} -->`,
    `### ${n} nodes, ${report.opts.seconds} s${report.partitions.enabled ? ', with partitions' : ''}${label ? ` — ${label}` : ''}`,
    '',
    `Command: \`${command}\`. Machine: ${machineLine()}${machineNote ? ` (${machineNote})` : ''}. Date: ${today()}.`,
    '',
    formatTable(report),
    '',
    formatRywTable(report),
    '',
    ...formatSummary(report).split('\n').map((l) => `- ${l}`),
    '<!-- jepsen-run:end -->',
  ].join('\n');
  const current = readFileSync(RESULTS, 'utf8');
  const start = current.indexOf('<!-- jepsen:start -->');
  const end = current.indexOf('<!-- jepsen:end -->');
  const old = start >= 0 && end > start ? current.slice(start, end) : '';
  // One block per cluster size and label: a labelled run (e.g. before / after a change) stands beside the others.
  const blocks = new Map<string, string>();
  for (const m of old.matchAll(/<!-- jepsen-run:(nodes=\d+(?: label=[a-z0-9-]+)?) -->[\s\S]*?<!-- jepsen-run:end -->/g)) blocks.set(m[1]!, m[0]);
  blocks.set(key, block);
  const order = (k: string) => [Number(/nodes=(\d+)/.exec(k)![1]), k] as const;
  const section = [
    '## Jepsen-style test: acknowledged adds under process pauses, crashes and network partitions',
    '',
    `Real \`ringkv start\` processes, each on its own loopback address 127.0.0.2, .3, … (its peer connections leave from it) (test/jepsen/harness.ts, workload.ts, partition.ts; runs before the partition nemesis were all on 127.0.0.1). ${report.opts.clients} concurrent clients per workload, all ${report.results.length} workloads at once, each client adding unique elements to one key or to ${report.opts.manyKeys} keys: kv buckets by read-modify-write with the context (union of the siblings on read, the paper's shopping cart; one bucket in the default sibling mode, one with \`{"mode":"lww"}\`), set buckets (\`{"type":"set"}\`) by \`POST /sets\`. The nemesis (seeded) SIGSTOPs a node for 1–3 s, or SIGKILLs it and restarts it (same id, port and data directory) 1–3 s later, or (as root with \`nft\`, a third of the faults) cuts a random minority of 1 to ⌊n/2⌋ nodes from the rest in both directions with nftables drop rules (table \`inet ringkv_jepsen_<pid>\`, deleted at the end) and heals after 2–5 s; one fault at a time. Clients go on meanwhile; one whose request lands in the minority gets timeouts or 503s, which are not acknowledged. Then every node is brought up, the cluster settles (bounded: r=3 reads of every key until two rounds agree and no hints are pending), and the final r=3 read of each key is checked against the history. "Failed": an error answer that stored nothing (the read of the read-modify-write failed, or a 4xx); "indeterminate": client timeout, 503/500, or a connection lost mid-request — such a write may or may not have been stored ("unacked but present"). Sibling mode and sets must lose 0 acknowledged adds (the test asserts it); LWW is only measured. Read-your-writes: after each acknowledged add in the sibling and set workloads the same client reads the key at once (bucket defaults N=3, R=2, W=2: R + W > N); a read that answers without the element is a miss, counted by the fault in effect from the write to the read (a partition; a pause or kill; none). Default \`npm test\` run: 5 nodes, 25 s. Label a run with \`RINGKV_JEPSEN_LABEL\` to keep it beside the others.`,
    '',
    ...[...blocks.keys()].sort((a, b) => { const [na, la] = order(a); const [nb, lb] = order(b); return na - nb || la.localeCompare(lb); }).flatMap((k) => [blocks.get(k)!, '']),
  ].join('\n');
  recordSection('jepsen', section);
}

/** Options from the environment: RINGKV_JEPSEN_SECONDS, _NODES, _SEED, _CLIENTS, _KEYS, _SETTLE_SECONDS, _GAP_MS (lo-hi), _PARTITIONS (0/1), _LABEL. */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): JepsenOptions {
  const range = (name: string, dflt: [number, number]): [number, number] => {
    const raw = env[`RINGKV_JEPSEN_${name}`];
    if (raw === undefined || raw === '') return dflt;
    const m = /^(\d+)-(\d+)$/.exec(raw);
    if (!m || Number(m[1]) > Number(m[2]) || Number(m[2]) > 60_000) throw new Error(`RINGKV_JEPSEN_${name} must be lo-hi (ms, lo <= hi <= 60000)`);
    return [Number(m[1]), Number(m[2])];
  };
  const num = (name: string, dflt: number, min: number, max: number): number => {
    const raw = env[`RINGKV_JEPSEN_${name}`];
    if (raw === undefined || raw === '') return dflt;
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min || v > max) throw new Error(`RINGKV_JEPSEN_${name} must be an integer in ${min}..${max}`);
    return v;
  };
  return {
    nodes: num('NODES', 5, 3, 7),
    seconds: num('SECONDS', 25, 1, 3_600),
    seed: num('SEED', Math.floor(Math.random() * 1_000_000), 0, 2 ** 31 - 1),
    clients: num('CLIENTS', 5, 1, 50),
    manyKeys: num('KEYS', 20, 1, 1_000),
    settleMs: num('SETTLE_SECONDS', 30, 1, 600) * 1_000,
    opTimeoutMs: 3_000,
    gapMs: range('GAP_MS', [500, 2_000]),
    partitions: num('PARTITIONS', 1, 0, 1) === 1,
    label: env.RINGKV_JEPSEN_LABEL || undefined,
  };
}
