// The seeded simulation (harness.ts) with the bucket's read_fanout 'quorum'
// (issue 15 item 3; docs/cluster.md "Read fan-out"): reads ask R replicas
// first and the rest only on a failure, a slow replica or differing answers.
//   - the cluster simulation's faults and invariants (no acknowledged write
//     lost, replicas converge after the final r = n reads, hints delivered,
//     no resurrection);
//   - transfer-read mode with probes at r = pr = R (2 of 3) and writes at
//     pw = w: STALE READ is then read-your-writes at R + W > N, through
//     joins and leaves too.
// Default: seeds 1-40 each; RINGKV_SIM_SEEDS=... as for the other sims.
import { describe, expect, it } from 'vitest';
import { DEFAULT_SIM_CONFIG, TRANSFER_READS_SIM_CONFIG, runSim } from './harness.js';
import { failureReport, range, seedsFromEnv } from './report.js';

const seeds = seedsFromEnv(range(1, 40));
const CHUNK = 20;
// Bounded in virtual time inside each run; the wall-clock limit only guards against a hang on a shared machine.
const CHUNK_TIMEOUT_MS = 600_000;

describe('cluster simulation, read_fanout quorum', () => {
  for (let i = 0; i < seeds.length; i += CHUNK) {
    const chunk = seeds.slice(i, i + CHUNK);
    it(`seeds ${chunk[0]}..${chunk[chunk.length - 1]}: no acknowledged write lost, replicas converge`, async () => {
      const failures: string[] = [];
      const quorum = { gets: 0, replicaGets: 0 };
      for (const seed of chunk) {
        const result = await runSim(seed, { ...DEFAULT_SIM_CONFIG, readFanout: 'quorum' });
        if (result.violations.length > 0) failures.push(failureReport(result, 'test/sim/read-fanout.sim.test.ts'));
        quorum.gets += result.stats.gets;
        quorum.replicaGets += result.stats.replicaGets;
      }
      if (failures.length > 0) expect.fail(failures.join('\n\n'));
      // The fan-out was in force: fewer peer kv.get per read than the same seed's run with 'all' asks.
      const all = await runSim(chunk[0]!);
      const perRead = (x: { gets: number; replicaGets: number }) => x.replicaGets / x.gets;
      expect(perRead(quorum), JSON.stringify({ quorum, all: all.stats })).toBeLessThan(0.8 * perRead(all.stats));
    }, CHUNK_TIMEOUT_MS);
  }
});

describe('transfer-read simulation, read_fanout quorum, probes at r = pr = 2 (read-your-writes at R + W > N)', () => {
  for (let i = 0; i < seeds.length; i += CHUNK) {
    const chunk = seeds.slice(i, i + CHUNK);
    it(`seeds ${chunk[0]}..${chunk[chunk.length - 1]}: no stale read`, async () => {
      const failures: string[] = [];
      let probes = 0;
      for (const seed of chunk) {
        const result = await runSim(seed, { ...TRANSFER_READS_SIM_CONFIG, readFanout: 'quorum', probeR: 'r' });
        if (result.violations.length > 0) failures.push(failureReport(result, 'test/sim/read-fanout.sim.test.ts'));
        probes += result.stats.probeReads;
      }
      if (failures.length > 0) expect.fail(failures.join('\n\n'));
      expect(probes).toBeGreaterThan(0);
    }, CHUNK_TIMEOUT_MS);
  }
});
