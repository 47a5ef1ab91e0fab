// Sets under a seeded simulation: K RingkvNode runtimes with PureEngines on
// one SimNetwork (node construction as in test/sim/harness.ts), random adds
// and removes through random nodes while one node is partitioned away (some
// ops with r = w = 1, so the cut-off side takes writes too), with message
// delay, reordering and drops; then heal, quiet, a read of every key with
// r = n, the read-repair window, and the checks.
//
// Every write a set update issues is recorded (SetStoreOptions.onWrite) with
// the state it read and the state it wrote. From that log, per element e:
//   A(e)  dots created for e (in a written state, not in the state it read),
//   K(e)  dots of e killed (in the state read, not in the state written:
//         removed, or replaced by a re-add, by a writer that had observed them).
// Every write lands at least on its coordinator, a primary, and the final
// read asks every primary; so the final set must hold for each e exactly
// A(e) \ K(e):
//   RESURRECTED  a killed dot is back (a removed element resurfaced);
//   LOST         a created dot nobody killed is missing (an add was lost);
//   PHANTOM      a dot nobody created;
//   DOT REUSED   two writes created the same dot (the actor/lock guarantee);
//   ACKED ADD    an acknowledged add whose element is absent although no
//                writer ever removed (or replaced) a dot of it;
//   DIVERGED     after the r = n read and its repairs, a primary's stored set
//                differs from the read.
// Seeds: RINGKV_SET_SIM_SEEDS=1,2,3 to replay; RINGKV_SET_SIM_COUNT for more.
import { describe, expect, it } from 'vitest';
import { type ClusterState, claimantOf, digest, maybeReclaim, validMembers, zonesOf } from '../../src/core/membership.js';
import * as orset from '../../src/core/orset.js';
import { partitionOf, preferenceList } from '../../src/core/ring.js';
import { decodeRecord } from '../../src/record/codec.js';
import { PureEngine } from '../../src/engine/pure/index.js';
import { RingkvNode } from '../../src/node/node.js';
import { stateOfRecord, type SetResult, type SetStore, type SetWriteEvent } from '../../src/node/sets.js';
import { SimNetwork } from '../../src/transport/sim-transport.js';
import { Rand } from '../helpers/random.js';

const BUCKET = 's';
const NODE_CONFIG = { requestTimeoutMs: 500, gossipIntervalMs: 1_000, readRepairWindowMs: 50, suspectForMs: 1_000 };

interface Op {
  id: number;
  kind: 'add' | 'readd' | 'remove' | 'remove-ctx';
  node: string;
  key: string;
  element: string;
  at: number;
  quick: boolean;
  outcome: 'pending' | 'ok' | 'fail';
  error?: string;
}

interface SetSimResult {
  seed: number;
  violations: string[];
  log: string[];
  /** siblings: writes whose read merged concurrent versions, and keys whose final record held some. */
  stats: { nodes: number; ops: number; acked: number; writes: number; siblings: number };
}

function uniform(rand: Rand): () => number {
  return () => rand.int(0, 0x3fffffff) / 0x40000000;
}

const dotStr = (d: orset.Dot): string => `${d.actor.split(':')[0]}.${d.counter}`;
const describeSet = (s: orset.OrSet): string =>
  `{${[...s.entries].map(([e, ds]) => `${e}:${ds.map(dotStr).join('|')}`).sort().join(' ')}}`;

async function runSetSim(seed: number): Promise<SetSimResult> {
  const rand = new Rand(seed);
  const k = rand.int(3, 5);
  const partitionBits = 4;
  const keys = Array.from({ length: rand.int(1, 3) }, (_, i) => `k${i}`);
  const ids = Array.from({ length: k }, (_, i) => `n${i + 1}`);
  const maxDelay = rand.int(2, 20);
  const dropRate = rand.int(0, 30) / 1000;
  const log: string[] = [];
  const violations: string[] = [];
  const network = new SimNetwork({ random: uniform(new Rand(seed ^ 0x5bd1e995)), minDelayMs: 1, maxDelayMs: maxDelay, dropRate });
  const note = (line: string): void => {
    log.push(`${network.now()} ${line}`);
  };
  note(`seed ${seed}: ${k} nodes, keys ${keys.join(',')}, delay 1..${maxDelay}, drop ${dropRate}`);

  // --- start, join ---------------------------------------------------------------
  const writes: Array<SetWriteEvent & { keyName: string }> = [];
  const engines = new Map<string, PureEngine>();
  const nodes = new Map<string, RingkvNode>();
  const stores = new Map<string, SetStore>();
  for (const [i, id] of ids.entries()) {
    const engine = await PureEngine.open({ nodeId: id, epoch: (i + 1).toString(16).padStart(16, '0'), partitionBits });
    engines.set(id, engine);
    const nodeRand = new Rand(seed * 31 + i);
    network.schedule(i === 0 ? 0 : rand.int(0, 1_000), () => {
      void RingkvNode.start({
        id,
        address: id,
        clusterName: 'sets',
        partitionBits,
        seeds: i === 0 ? [] : [ids[0]!],
        engine,
        transport: network.transport(id),
        clock: network.clock(id),
        random: uniform(nodeRand),
        config: NODE_CONFIG,
        sets: { defaultTimeoutMs: NODE_CONFIG.requestTimeoutMs, onWrite: (e) => writes.push({ ...e, keyName: e.key.toString('utf8') }) },
      }).then((node) => {
        nodes.set(id, node);
        stores.set(id, node.sets);
      });
    });
  }
  const agreed = (): ClusterState | null => {
    if (nodes.size !== k) return null;
    const all = ids.map((id) => nodes.get(id)!);
    if (!all.every((n) => n.hasJoined)) return null;
    const state = all[0]!.clusterState;
    if (!all.every((n) => digest(n.clusterState) === digest(state))) return null;
    if (validMembers(state).length !== k) return null;
    const claimant = claimantOf(state);
    if (claimant === null || maybeReclaim(state, claimant) !== null) return null;
    return state;
  };
  let joined: ClusterState | null = null;
  while (!joined && network.now() < 60_000) {
    await network.runFor(250);
    joined = agreed();
  }
  if (!joined) return { seed, violations: ['membership did not converge'], log, stats: { nodes: k, ops: 0, acked: 0, writes: 0, siblings: 0 } };
  void nodes.get(ids[0]!)!.setBucketProps(BUCKET, { type: 'set' });
  while (!ids.every((id) => nodes.get(id)!.bucketProps(BUCKET).type === 'set') && network.now() < 120_000) await network.runFor(250);
  note(`joined, set props everywhere`);

  // --- load with a partition -------------------------------------------------------
  const loadStart = network.now();
  const loadMs = rand.int(2_000, 5_000);
  const opCount = rand.int(20, 45);
  const ops: Op[] = [];
  const isolated = rand.pick(ids);
  const isolateAt = loadStart + rand.int(0, Math.floor(loadMs * 0.7));
  const isolateFor = rand.int(500, 3_000);
  // Half the ops come in bursts (concurrent updates through different nodes);
  // ops through the cut-off node mostly use r = w = 1, so they succeed there.
  const bursts = Array.from({ length: Math.max(1, Math.floor(opCount / 6)) }, () => loadStart + rand.int(0, loadMs - 50));
  const isolatedAt = (t: number): boolean => t >= isolateAt && t < isolateAt + isolateFor;
  // Adds mostly add new elements; re-adds and removes pick an element added to the same key before.
  const added = new Map(keys.map((key) => [key, [] as string[]]));
  for (let i = 0; i < opCount; i++) {
    const key = rand.pick(keys);
    const known = added.get(key)!;
    const roll = rand.int(0, 99);
    const kind: Op['kind'] = known.length === 0 || roll < 45 ? 'add' : roll < 60 ? 'readd' : roll < 80 ? 'remove' : 'remove-ctx';
    const element = kind === 'add' ? `e${i}` : rand.pick(known);
    if (kind === 'add') known.push(element);
    const node = rand.pick(ids);
    const at = rand.chance(0.5) ? loadStart + rand.int(0, loadMs) : rand.pick(bursts) + rand.int(0, 30);
    const quick = rand.chance(node === isolated && isolatedAt(at) ? 0.8 : 0.25);
    ops.push({ id: i, kind, node, key, element, at, quick, outcome: 'pending' });
  }
  network.schedule(isolateAt, () => {
    network.isolate(isolated);
    note(`isolate ${isolated} for ${isolateFor} ms`);
  });
  network.schedule(isolateAt + isolateFor, () => {
    network.heal();
    note(`heal ${isolated}`);
  });

  const run = async (op: Op): Promise<SetResult> => {
    const store = stores.get(op.node)!;
    const b = Buffer.from(BUCKET);
    const key = Buffer.from(op.key);
    const e = Buffer.from(op.element);
    const q = op.quick ? { r: 1, w: 1 } : {};
    if (op.kind === 'remove-ctx') {
      const seen = await store.setGet(b, key, q);
      return store.setUpdate(b, key, { remove: [e], context: seen.context }, q);
    }
    return store.setUpdate(b, key, op.kind === 'remove' ? { remove: [e] } : { add: [e] }, q);
  };
  for (const op of ops) {
    network.schedule(op.at, () => {
      run(op).then(
        (r) => {
          op.outcome = 'ok';
          note(`op${op.id} ${op.kind} ${op.element} ${op.key} via ${op.node}${op.quick ? ' r=w=1' : ''} ok -> ${describeSet(r.state)}`);
        },
        (err: unknown) => {
          op.outcome = 'fail';
          op.error = String((err as { code?: unknown }).code ?? err);
          note(`op${op.id} ${op.kind} ${op.element} ${op.key} via ${op.node} fail ${op.error}`);
          if (typeof (err as { code?: unknown }).code !== 'string') violations.push(`op${op.id}: unexpected error ${String(err)}`);
        },
      );
    });
  }

  await network.runUntil(loadStart + loadMs);
  network.heal();
  network.setDropRate(0);
  network.setDelay(1, Math.min(maxDelay, 10));
  const settle = network.now() + 30_000;
  while (ops.some((o) => o.outcome === 'pending') && network.now() < settle) await network.runFor(100);
  if (ops.some((o) => o.outcome === 'pending')) violations.push(`ops never settled`);
  await network.runFor(3_000);

  // --- final reads with r = n, repairs, checks ---------------------------------------
  const reader = stores.get(rand.pick(ids))!;
  const n = Math.min(3, k);
  const finals = new Map<string, SetResult | string>();
  for (const key of keys) {
    reader.setGet(Buffer.from(BUCKET), Buffer.from(key), { r: n }).then(
      (r) => finals.set(key, r),
      (err: unknown) => finals.set(key, String((err as { code?: unknown }).code ?? err)),
    );
  }
  while (finals.size < keys.length && network.now() < settle + 10_000) await network.runFor(50);
  await network.runFor(1_000);

  let siblings = writes.filter((w) => w.versions > 1).length;
  const created = new Map<string, string>(); // key/dot → element
  for (const w of writes) {
    for (const [e, dots] of w.next.entries) {
      const before = new Set((w.observed.entries.get(e) ?? []).map(dotStr));
      for (const d of dots) {
        if (before.has(dotStr(d))) continue;
        const id = `${w.keyName}/${dotStr(d)}`;
        if (created.has(id)) violations.push(`DOT REUSED ${id}: ${created.get(id)} and ${e}`);
        created.set(id, e);
      }
    }
  }
  for (const key of keys) {
    const final = finals.get(key);
    if (final === undefined || typeof final === 'string') {
      violations.push(`final read of ${key} failed: ${final ?? 'no answer'}`);
      continue;
    }
    note(`final ${key} ${describeSet(final.state)}`);
    const A = new Map<string, Set<string>>();
    const K = new Map<string, Set<string>>();
    const at = (m: Map<string, Set<string>>, e: string): Set<string> => m.get(e) ?? m.set(e, new Set()).get(e)!;
    for (const w of writes.filter((x) => x.keyName === key)) {
      for (const [e, dots] of w.next.entries) {
        const before = new Set((w.observed.entries.get(e) ?? []).map(dotStr));
        for (const d of dots) if (!before.has(dotStr(d))) at(A, e).add(dotStr(d));
      }
      for (const [e, dots] of w.observed.entries) {
        const after = new Set((w.next.entries.get(e) ?? []).map(dotStr));
        for (const d of dots) if (!after.has(dotStr(d))) at(K, e).add(dotStr(d));
      }
    }
    const elements = new Set([...A.keys(), ...final.state.entries.keys()]);
    for (const e of elements) {
      const have = new Set((final.state.entries.get(e) ?? []).map(dotStr));
      const made = A.get(e) ?? new Set<string>();
      const killed = K.get(e) ?? new Set<string>();
      for (const d of have) {
        if (killed.has(d)) violations.push(`RESURRECTED ${key} ${e} dot ${d} was removed by a writer that observed it`);
        if (!made.has(d)) violations.push(`PHANTOM ${key} ${e} dot ${d}`);
      }
      for (const d of made) if (!killed.has(d) && !have.has(d)) violations.push(`LOST ${key} ${e} dot ${d}`);
    }
    for (const op of ops) {
      if (op.key !== key || op.outcome !== 'ok' || (op.kind !== 'add' && op.kind !== 'readd')) continue;
      const e = Buffer.from(op.element).toString('latin1');
      if (!final.state.entries.has(e) && (K.get(e)?.size ?? 0) === 0) violations.push(`ACKED ADD op${op.id} of ${op.element} lost, never removed`);
    }
    // Convergence of the primaries after the r = n read and its repairs.
    const ring = joined.ring;
    const position = engines.get(ids[0]!)!.hashKey(Buffer.from(BUCKET), Buffer.from(key));
    const { primaries } = preferenceList(ring, partitionOf(ring, position), n, zonesOf(joined));
    const first = await engines.get(primaries[0]!)!.get(Buffer.from(BUCKET), Buffer.from(key));
    if (first && decodeRecord(first).siblings.length > 1) siblings++;
    for (const id of primaries) {
      const stored = stateOfRecord(await engines.get(id)!.get(Buffer.from(BUCKET), Buffer.from(key)));
      if (!orset.equals(stored, final.state)) violations.push(`DIVERGED ${key} at ${id}: ${describeSet(stored)} vs read ${describeSet(final.state)}`);
    }
  }

  for (const node of nodes.values()) await node.stop();
  for (const engine of engines.values()) await engine.close();
  return { seed, violations, log, stats: { nodes: k, ops: ops.length, acked: ops.filter((o) => o.outcome === 'ok').length, writes: writes.length, siblings } };
}

const explicit = process.env.RINGKV_SET_SIM_SEEDS?.split(',').map(Number);
const count = Number(process.env.RINGKV_SET_SIM_COUNT ?? 120);
const SEEDS = explicit ?? Array.from({ length: count }, (_, i) => 1000 + i);

describe('sets under a seeded simulation with a partition', () => {
  it(`keeps adds, never resurrects removes, converges (${SEEDS.length} seeds)`, async () => {
    let acked = 0;
    let ops = 0;
    let writes = 0;
    let siblings = 0;
    for (const seed of SEEDS) {
      const r = await runSetSim(seed);
      acked += r.stats.acked;
      ops += r.stats.ops;
      writes += r.stats.writes;
      siblings += r.stats.siblings;
      if (r.violations.length > 0) {
        throw new Error(`seed ${seed} (RINGKV_SET_SIM_SEEDS=${seed}):\n  ${r.violations.join('\n  ')}\n--- log tail ---\n${r.log.slice(-40).join('\n')}`);
      }
    }
    // The workload must do real work: most ops succeed, some fail (the partition).
    expect(acked).toBeGreaterThan(ops / 2);
    expect(writes).toBeGreaterThan(acked / 2);
    // ... and concurrent versions (partitioned writes, concurrent coordinators) meet in the final merge.
    if (!explicit) expect(siblings).toBeGreaterThan(SEEDS.length / 10);
  });

  it('is deterministic for a seed', async () => {
    const a = await runSetSim(42);
    const b = await runSetSim(42);
    expect(a.log).toEqual(b.log);
    expect(a.violations).toEqual([]);
  });
});
