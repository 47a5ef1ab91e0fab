// The simulator's storage model finds the class of bug it is for
// (docs/durability.md "Testing"): an engine that acknowledges a durable write
// before flushing it. Every engine in the simulation runs on a SimDisk, so a
// crash loses what was not flushed. In DURABILITY_SIM_CONFIG every write is
// w = 1, dw = 1 and the crash hits the isolated node while it is cut off: the
// writes it coordinated there have one copy, its own, which dw = 1 promises is
// on disk. With the broken engine option the crash loses them and the
// checker reports LOST (at the crash, during the run, and again at the end);
// with the real engine the same seed passes.
import { describe, expect, it } from 'vitest';
import { DEFAULT_SIM_CONFIG, type SimConfig, runSim } from './harness.js';
import { failureReport } from './report.js';

const DURABILITY_SIM_CONFIG: SimConfig = {
  ...DEFAULT_SIM_CONFIG,
  ops: [120, 160],
  loadMs: [3_000, 4_000],
  isolateMs: [1_500, 2_500],
  crashIsolatedChance: 1,
  w1Chance: 1,
  dw1Chance: 1,
  dataLossChance: 0,
};

/** Found by running seeds 1-25 with the broken option: 9 (and 2, 12, 13, 15, 21, 23, 24) lose a dw = 1 write. */
const SEED = 9;

describe('simulated storage: durable acknowledgements', () => {
  it(`seed ${SEED}: an engine acknowledging dw = 1 writes before the flush is caught as LOST; the real engine passes the same run`, async () => {
    const broken = await runSim(SEED, { ...DURABILITY_SIM_CONFIG, ackDurableBeforeFlush: true });
    const lost = broken.violations.filter((v) => v.startsWith('LOST'));
    // During the run (at the crash) and at the final check: a w = 1, dw = 1 write held by no node.
    expect(lost.some((v) => /w=1 dw=1.*held by no node at \d+ \(the crash of n\d\): its last copy was lost unflushed/.test(v)), lost.join('\n')).toBe(true);
    expect(lost.some((v) => /w=1 dw=1.*not superseded/.test(v)), lost.join('\n')).toBe(true);
    const lostOps = [...new Set(lost.map((v) => /^LOST acknowledged (op\d+) /.exec(v)![1]!))];

    const real = await runSim(SEED, DURABILITY_SIM_CONFIG);
    if (real.violations.length > 0) expect.fail(failureReport(real, 'test/sim/durability.sim.test.ts'));
    // The same writes were acknowledged (before the same crash) and survived it.
    for (const op of lostOps) expect(real.log.some((l) => l.includes(` ${op} ok dots `)), op).toBe(true);
    expect(real.log.some((l) => / engine crashed: /.test(l))).toBe(true);
  });

  // A real bug the storage model found (docs/durability.md "Testing"; in the
  // engines, not the simulator): n2 coordinates op10 (w=1, dw=0) as n2.3, its
  // copy reaches n3, n2 crashes 96 ms later before flushing and restarts with
  // the same actor at counter 2; op38 (read through n2 and a replica without
  // n2.3) is then coordinated as n2.3 too. n3 keeps n2.3=v10, the others
  // n2.3=v38 — replicas that never converge. Reported as a known bug, not a
  // violation, until the engines stop reusing counters after a crash; this
  // test then fails and the seed goes to REGRESSION_SEEDS.
  it('seed 65 (default config): a crash rolls an actor counter back and a dot is reused (known bug)', async () => {
    const r = await runSim(65);
    expect(r.violations).toEqual([]);
    expect(r.knownBugs.some((v) => v.startsWith('COUNTER ROLLBACK k3 n2.3 holds v10 and v38')), r.knownBugs.join('\n')).toBe(true);
  });
});
