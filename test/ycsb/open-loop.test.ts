// Coordinated omission: a server stall must show in the latency an open-loop
// run reports, because each operation is timed from its intended start on the
// fixed schedule. The closed loop (and the open loop's own per-request
// service time) only see the few requests in flight when the stall began.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBaselineServer, type BaselineServer } from '../../bench/baseline/uws-map-server.js';
import { runYcsb, type Properties } from '../../bench/ycsb/index.js';

const STALL_MS = 500;

describe('open loop measures from the intended start', () => {
  let server: BaselineServer;
  const props = (extra: Record<string, string>): Properties =>
    new Map(Object.entries({
      recordcount: '100', operationcount: '1200', readproportion: '1', updateproportion: '0', requestdistribution: 'zipfian',
      threadcount: '4', maxexecutiontime: '20', 'baseline.address': server.address, seed: '3', ...extra,
    }));

  beforeAll(async () => {
    server = await startBaselineServer();
    const load = await runYcsb({ phase: 'load', db: 'baseline', props: props({}), workloadName: 'stall' });
    expect(load.json.overall.errors).toBe(0);
  });
  afterAll(() => server?.close());

  it('a 500 ms stall lifts the open loop\'s p99 to about the stall, while per-request latency hides it', async () => {
    // 400 ops/s for 3 s; the server holds every answer for 500 ms starting 1 s in.
    const stall = setTimeout(() => server.stall(STALL_MS), 1_000);
    const open = await runYcsb({ phase: 'run', db: 'baseline', props: props({ target: '400' }), workloadName: 'stall' }).finally(() => clearTimeout(stall));
    expect(open.json.mode).toBe('open');
    expect(open.json.targetRate).toBe(400);
    expect(open.json.overall).toMatchObject({ operations: 1200, errors: 0 });

    const intended = open.json.operations.READ!;
    const service = open.json.serviceTime!.READ!;
    // The schedule paces the run (the last of 1200 is due at 1199/400 s) and
    // no request leaves before its intended start.
    expect(open.json.overall.runtimeMs).toBeGreaterThanOrEqual(2_997);
    expect(intended.minUs).toBeGreaterThanOrEqual(service.minUs);
    expect(intended.avgUs).toBeGreaterThanOrEqual(service.avgUs);
    // The first operation due in the stall waits (almost) all of it; the ~200
    // scheduled during it wait for its end, so more than 1% of all wait most of it.
    expect(intended.maxUs).toBeGreaterThanOrEqual(STALL_MS * 1000 * 0.95);
    expect(intended.p99Us).toBeGreaterThanOrEqual(STALL_MS * 1000 * 0.9);
    // Timed from when each request was sent, only the handful in flight at the stall saw it.
    expect(service.p99Us).toBeLessThan(STALL_MS * 1000 * 0.5);
    expect(open.text).toMatch(/^\[Intended-READ\], 99thPercentileLatency\(us\), \d+$/m);
    // The per-second series shows the stall in the interval it fell in.
    expect(Math.max(...open.json.timeseries.map((t) => t.ops.READ?.p999Us ?? 0))).toBeGreaterThanOrEqual(STALL_MS * 1000 * 0.9);
  });

  it('the same stall in a closed loop barely moves p99: the loop simply stops sending', async () => {
    const stall = setTimeout(() => server.stall(STALL_MS), 500);
    const closed = await runYcsb({ phase: 'run', db: 'baseline', props: props({ operationcount: '1000000', maxexecutiontime: '2' }), workloadName: 'stall' })
      .finally(() => clearTimeout(stall));
    expect(closed.json.mode).toBe('closed');
    const read = closed.json.operations.READ!;
    expect(read.maxUs).toBeGreaterThanOrEqual(STALL_MS * 1000 * 0.9); // the 4 requests in flight
    expect(read.count).toBeGreaterThan(400); // so those 4 are under 1%
    expect(read.p99Us).toBeLessThan(STALL_MS * 1000 * 0.5);
  });
});
