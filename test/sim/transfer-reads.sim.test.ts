// Reads during partition transfers (see harness.ts, SimConfig.transferReads):
// every seed has a join and/or a leave while clients write, nothing else goes
// wrong, and r = n reads run every 50 ms on random nodes until the change has
// settled. A node still receiving a partition is no source for its reads
// (docs/cluster.md "Partition transfer"), so every such read that answers
// holds every write acknowledged before it began (or a causal successor).
// Default seeds 1-100; RINGKV_SIM_SEEDS works as for cluster.sim.test.ts.
import { describe, expect, it } from 'vitest';
import { TRANSFER_READS_SIM_CONFIG, runSim } from './harness.js';
import { failureReport, range, seedsFromEnv } from './report.js';

const seeds = seedsFromEnv(range(1, 100));
const CHUNK = 25;
// Simulated time is bounded inside each run (event and time limits), so the wall-clock limit only
// guards against a hang; 25 seeds are CPU work that took over 60 s on 2 shared cores under a hog.
const CHUNK_TIMEOUT_MS = 600_000;

describe('reads during partition transfers', () => {
  for (let i = 0; i < seeds.length; i += CHUNK) {
    const chunk = seeds.slice(i, i + CHUNK);
    it(`seeds ${chunk[0]}..${chunk[chunk.length - 1]}: r = n reads during joins and leaves miss no acknowledged write`, async () => {
      const failures: string[] = [];
      const totals = { probeReads: 0, transferReads: 0, transferred: 0 };
      for (const seed of chunk) {
        const result = await runSim(seed, TRANSFER_READS_SIM_CONFIG);
        if (result.violations.length > 0) failures.push(failureReport(result, 'test/sim/transfer-reads.sim.test.ts'));
        totals.probeReads += result.stats.probeReads;
        totals.transferReads += result.stats.transferReads;
        totals.transferred += result.stats.transferred;
      }
      if (failures.length > 0) expect.fail(failures.join('\n\n'));
      // The reads did run during transfers, and some went to a giver instead of a receiving replica.
      if (chunk.length === CHUNK) {
        expect(totals.probeReads, JSON.stringify(totals)).toBeGreaterThan(100);
        expect(totals.transferred, JSON.stringify(totals)).toBeGreaterThan(0);
        expect(totals.transferReads, JSON.stringify(totals)).toBeGreaterThan(0);
      }
    }, CHUNK_TIMEOUT_MS);
  }
});
