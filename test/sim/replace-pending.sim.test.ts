// Seeded simulation of the replace-process finding (issue 9; docs/cluster.md
// "Replace"): real RingkvNode runtimes on the SimNetwork (PureEngine). n1
// starts, n3 joins, then n2 — so n2 grows lists whose first old replica,
// and so giver, is n3. Keys are written at w = 3; n3 crashes for good at a
// seeded time (before or after its catch-up pass to n2), n4 joins with
// `replaces: n3`. Once every live node has the replacement ring, every key
// must read at r = 3 through each live node, with the written value — long
// before the receivers give the dead giver up (receiveGoneMs is beyond the
// run). Seeds vary message delays, join and crash times.
// Default seeds 1-20; RINGKV_SIM_SEEDS works as for cluster.sim.test.ts.
import { describe, expect, it } from 'vitest';
import { PureEngine, SimDisk } from '../../src/engine/pure/index.js';
import { RingkvNode } from '../../src/node/node.js';
import { SimNetwork } from '../../src/transport/sim-transport.js';
import { Rand } from '../helpers/random.js';
import { range, seedsFromEnv } from './report.js';

const PARTITION_BITS = 6;
const NODE_CONFIG = { requestTimeoutMs: 500, gossipIntervalMs: 200, readRepairWindowMs: 50, handoffIntervalMs: 1_000 };
// A dead giver is given up only after 10 min (virtual): the reads must not need that.
const TRANSFERS = { intervalMs: 50, catchUpAfterMs: 5_000, timeoutMs: 1_000, receiveCheckMs: 1_000, receiveGoneMs: 600_000, receiveLimitMs: 600_000 };
const AAE = { intervalMs: 1e9, requestTimeoutMs: 500, shouldYield: () => false };
/** Virtual time each wait may take. */
const WAIT_LIMIT_MS = 60_000;

interface SeedResult {
  violations: string[];
  /** Partitions n2 still received from n3 alone when the reads ran (the finding's schedule). */
  pendingFromDead: number;
  reads: number;
  log: string[];
}

async function simulate(seed: number): Promise<SeedResult> {
  const rand = new Rand(seed);
  const network = new SimNetwork({ random: () => rand.float(), minDelayMs: 1, maxDelayMs: rand.int(1, 20) });
  const nodes = new Map<string, RingkvNode>();
  const violations: string[] = [];
  const log: string[] = [];
  const note = (line: string) => log.push(`${network.now()} ${line}`);

  const start = async (id: string, seeds: string[], replaces?: string): Promise<void> => {
    const engine = await PureEngine.open({ nodeId: id, epoch: '0'.repeat(15) + String(nodes.size + 1), partitionBits: PARTITION_BITS }, { disk: new SimDisk(), clock: network.clock(id) });
    const nodeRand = new Rand(seed * 31 + nodes.size + 1);
    RingkvNode.start({
      id, address: id, clusterName: 'sim', partitionBits: PARTITION_BITS, seeds, engine, transport: network.transport(id), clock: network.clock(id),
      random: () => nodeRand.float(), config: NODE_CONFIG, antiEntropy: AAE, transfers: TRANSFERS, ...(replaces === undefined ? {} : { replaces }),
    }).then(
      (node) => {
        nodes.set(id, node);
        note(`${id} started`);
      },
      (err: unknown) => violations.push(`${id} did not start: ${String(err)}`),
    );
  };
  /** Runs the network until `check` holds; false (and a violation) after WAIT_LIMIT_MS of virtual time. */
  const until = async (check: () => boolean, what: string): Promise<boolean> => {
    const limit = network.now() + WAIT_LIMIT_MS;
    while (!check()) {
      if (network.now() >= limit || violations.length > 0) {
        violations.push(`timed out (virtual ${WAIT_LIMIT_MS} ms): ${what}`);
        return false;
      }
      await network.runFor(50);
    }
    return true;
  };
  /** Runs the network until `p` settles. */
  const settle = async <T,>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> => {
    let out: { ok: true; value: T } | { ok: false; error: unknown } | null = null;
    p.then((value) => (out = { ok: true, value }), (error: unknown) => (out = { ok: false, error }));
    const limit = network.now() + WAIT_LIMIT_MS;
    while (out === null && network.now() < limit) await network.runFor(10);
    return out ?? { ok: false, error: new Error('never settled') };
  };
  const owners = (id: string) => new Set(nodes.get(id)?.clusterState.ring.owners ?? []);
  const sameRing = (ids: string[]) => ids.every((id) => nodes.get(id)?.clusterState.ring.version === nodes.get(ids[0]!)?.clusterState.ring.version);

  await start('n1', []);
  if (!(await until(() => nodes.has('n1'), 'n1 up'))) return { violations, pendingFromDead: 0, reads: 0, log };
  await start('n3', ['n1']);
  if (!(await until(() => owners('n1').size === 2 && owners('n3').size === 2, 'n1 and n3 on one ring'))) return { violations, pendingFromDead: 0, reads: 0, log };
  await network.runFor(rand.int(0, 1_000));
  await start('n2', ['n1']);
  const three = ['n1', 'n2', 'n3'];
  if (!(await until(() => three.every((id) => owners(id).size === 3) && sameRing(three), 'three owners'))) return { violations, pendingFromDead: 0, reads: 0, log };
  note(`ring v${nodes.get('n1')!.clusterState.ring.version}: n2 receives ${nodes.get('n2')!.transfers.receiving().filter((e) => e.givers.includes('n3')).length} partitions from n3`);

  const keys = Array.from({ length: rand.int(20, 60) }, (_, i) => `k${i}`);
  for (const k of keys) {
    const put = await settle(nodes.get('n1')!.put(Buffer.from('rp'), Buffer.from(k), null, Buffer.from(`v-${k}`), { w: 3 }));
    if (!put.ok) violations.push(`put ${k} failed: ${String(put.error)}`);
  }

  // n3 crashes for good, before or after it finished giving to n2 (its catch-up pass comes 5 s after the first).
  await network.runFor(rand.int(0, 6_000));
  note(`crash n3 (n2 still receives ${nodes.get('n2')!.transfers.receiving().filter((e) => e.givers.includes('n3')).length} partitions from it)`);
  network.crash('n3');
  nodes.get('n3')!.transfers.stop();
  nodes.get('n3')!.antiEntropy.stop();
  nodes.delete('n3');
  if (!(await until(() => nodes.get('n1')!.isSuspected('n3'), 'n1 suspects n3'))) return { violations, pendingFromDead: 0, reads: 0, log };
  await start('n4', ['n1'], 'n3');
  const live = ['n1', 'n2', 'n4'];
  const replaced = () =>
    live.every((id) => nodes.get(id)?.clusterState.members.n3?.status === 'left' && !owners(id).has('n3') && owners(id).size === 3) && sameRing(live);
  if (!(await until(replaced, 'the replacement ring on every live node'))) return { violations, pendingFromDead: 0, reads: 0, log };
  const pendingFromDead = nodes.get('n2')!.transfers.receiving().filter((e) => e.givers.length === 1 && e.givers[0] === 'n3').length;
  note(`replaced: ring v${nodes.get('n1')!.clusterState.ring.version}; n2 still receives ${pendingFromDead} partitions from n3 alone`);

  // Every key at r = 3 through every live node, right away. A read that fails is retried once: the first
  // read n4 coordinates asks n3 (the node it replaces, its first giver) before it has ever heard from it,
  // and in the simulator a crashed node does not refuse, it is silent — that request times out (and makes
  // n3 suspected there) as the read does. What the finding was is no such warm-up: it failed every time.
  let reads = 0;
  for (const id of live) {
    for (const k of keys) {
      reads++;
      const read = () => settle(nodes.get(id)!.get(Buffer.from('rp'), Buffer.from(k), { r: 3 }));
      let got = await read();
      if (!got.ok) {
        note(`r = 3 read of ${k} via ${id} failed once: ${String(got.error)}`);
        got = await read();
      }
      if (!got.ok) violations.push(`r = 3 read of ${k} via ${id} failed twice: ${String(got.error)}`);
      else {
        const values = got.value.decoded?.siblings.filter((s) => !s.tombstone).map((s) => s.value.toString('utf8')) ?? [];
        if (values.length !== 1 || values[0] !== `v-${k}`) violations.push(`r = 3 read of ${k} via ${id}: ${JSON.stringify(values)}`);
      }
    }
  }
  for (const node of nodes.values()) await settle(node.stop());
  return { violations, pendingFromDead, reads, log };
}

const seeds = seedsFromEnv(range(1, 20));

describe('replace after a crash of a node still giving to a joiner (simulated)', () => {
  it(`seeds ${seeds[0]}..${seeds[seeds.length - 1]}: every key reads at r = 3 once the replacement ring is everywhere`, async () => {
    const failures: string[] = [];
    let covered = 0;
    let reads = 0;
    for (const seed of seeds) {
      const result = await simulate(seed);
      reads += result.reads;
      if (result.pendingFromDead > 0) covered++;
      if (result.violations.length > 0) {
        failures.push(`seed ${seed} (rerun: RINGKV_SIM_SEEDS=${seed} npx vitest run test/sim/replace-pending.sim.test.ts):\n  ${result.violations.slice(0, 12).join('\n  ')}\n  ${result.log.join('\n  ')}`);
      }
    }
    if (failures.length > 0) expect.fail(`${failures.length} of ${seeds.length} seeds failed\n${failures.join('\n\n')}`);
    // The schedule of the finding did occur (n2 still waiting for the dead n3 while the reads ran) in some seeds.
    if (seeds.length >= 10) expect(covered, `seeds with n2 still receiving from the dead n3 (${reads} reads)`).toBeGreaterThan(0);
  }, 300_000);
});
