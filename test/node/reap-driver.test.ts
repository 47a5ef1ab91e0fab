// The reaping protocol's queue (src/node/reap-driver.ts) with a stub context
// and a manual clock: reaps wait their delay, run at most `maxRunning` at a
// time, are refused beyond `maxPending`, and a stopped driver runs none. The
// protocol's verdicts over real nodes are in test/cluster/reap.test.ts.
import { describe, expect, it } from 'vitest';
import { PureEngine } from '../../src/engine/pure/index.js';
import { NodeMetrics } from '../../src/node/metrics.js';
import { ReapDriver, type ReapCheck, type ReapDriverContext } from '../../src/node/reap-driver.js';
import { ReapFloors } from '../../src/node/reaper.js';
import { encodeRecord } from '../../src/record/index.js';
import { ManualClock, settle } from '../helpers/manual-clock.js';

const DELAY_MS = 3_000;
const TOMBSTONE = encodeRecord({
  context: [{ actor: Buffer.from('n1:0000000000000001'), counter: 1 }],
  siblings: [{ actor: Buffer.from('n1:0000000000000001'), counter: 1, timestamp: 1, tombstone: true, value: Buffer.alloc(0) }],
});

async function setup(limits: { maxPending: number; maxRunning: number }) {
  const engine = await PureEngine.open({ nodeId: 'n1', epoch: '0000000000000001', partitionBits: 4 });
  const clock = new ManualClock();
  const metrics = new NodeMetrics('n1');
  let running = 0;
  let maxSeen = 0;
  const checked: string[] = [];
  const reaped: string[] = [];
  const gates: Array<() => void> = [];
  let hold = false;
  const ctx: ReapDriverContext = {
    id: 'n1',
    clock,
    metrics,
    log: () => undefined,
    floors: new ReapFloors(engine, { ttlMs: 60_000, maxEntries: 1000 }),
    reapDelayMs: DELAY_MS,
    reapFloorTtlMs: 60_000,
    requestTimeoutMs: 1_000,
    ring: () => ({ version: 7, claimant: 'n1' }),
    primariesOf: () => ['n1'],
    isSuspect: () => false,
    memberIds: () => ['n1'],
    local: {
      reapCheck: async (_b, key): Promise<ReapCheck> => {
        running++;
        maxSeen = Math.max(maxSeen, running);
        checked.push(key.toString());
        if (hold) await new Promise<void>((resolve) => gates.push(resolve));
        running--;
        return { record: TOMBSTONE, hinted: false, ringVersion: 7, claimant: 'n1' };
      },
      reapLocal: async (_b, key) => (reaped.push(key.toString()), true),
    },
    peerRequest: () => Promise.reject(new Error('a one-member cluster asks no peer')),
  };
  const driver = new ReapDriver(ctx, limits);
  const outcome = async (name: string) => (await metrics.registry.getSingleMetric('ringkv_reap_attempts_total')!.get()).values.find((v) => v.labels.outcome === name)?.value ?? 0;
  return {
    engine,
    clock,
    driver,
    checked,
    reaped,
    outcome,
    maxSeen: () => maxSeen,
    holdChecks: () => void (hold = true),
    release: async () => {
      hold = false;
      while (gates.length > 0) gates.shift()!();
      await settle();
    },
  };
}

const key = (i: number) => Buffer.from(`k${i}`);

describe('ReapDriver', () => {
  it('reaps a delete only after its delay, in the order the deletes came', async () => {
    const t = await setup({ maxPending: 100, maxRunning: 8 });
    for (let i = 0; i < 3; i++) t.driver.schedule(Buffer.from('b'), key(i), 3);
    await t.clock.advance(DELAY_MS - 1);
    expect(t.checked).toEqual([]);
    await t.clock.advance(1);
    expect(t.reaped).toEqual(['k0', 'k1', 'k2']);
    expect(await t.outcome('reaped')).toBe(3);
    expect(t.driver.pending).toBe(0);
    await t.engine.close();
  });

  it('runs at most maxRunning reaps at once and finishes the rest as they end', async () => {
    const t = await setup({ maxPending: 100, maxRunning: 4 });
    t.holdChecks();
    for (let i = 0; i < 20; i++) t.driver.schedule(Buffer.from('b'), key(i), 3);
    await t.clock.advance(DELAY_MS);
    expect(t.checked).toHaveLength(4);
    expect(t.driver.pending).toBe(20);
    for (let round = 0; round < 10 && t.reaped.length < 20; round++) await t.release().then(() => t.holdChecks());
    await t.release();
    await t.clock.advance(0);
    expect(t.maxSeen()).toBe(4);
    expect([...t.reaped].sort()).toEqual(Array.from({ length: 20 }, (_, i) => `k${i}`).sort());
    expect(t.driver.pending).toBe(0);
    await t.engine.close();
  });

  it('keeps the tombstones of deletes beyond maxPending (counted), and reaps the rest', async () => {
    const t = await setup({ maxPending: 5, maxRunning: 8 });
    for (let i = 0; i < 8; i++) t.driver.schedule(Buffer.from('b'), key(i), 3);
    expect(await t.outcome('too_many_pending')).toBe(3);
    await t.clock.advance(DELAY_MS);
    expect(t.reaped).toEqual(['k0', 'k1', 'k2', 'k3', 'k4']);
    await t.engine.close();
  });

  it('holds one timer for the whole queue, and a stopped driver reaps nothing', async () => {
    const t = await setup({ maxPending: 100, maxRunning: 8 });
    t.driver.start(); // the floor sweep's timer
    const before = t.clock.liveTimers;
    for (let i = 0; i < 50; i++) t.driver.schedule(Buffer.from('b'), key(i), 3);
    expect(t.clock.liveTimers).toBe(before + 1);
    t.driver.stop();
    expect(t.clock.liveTimers).toBe(0);
    await t.clock.advance(DELAY_MS * 2);
    expect(t.checked).toEqual([]);
    t.driver.schedule(Buffer.from('b'), key(99), 3);
    await t.clock.advance(DELAY_MS);
    expect(t.checked).toEqual([]);
    await t.engine.close();
  });
});
