// The ring state (src/node/ring-state.ts) with a stub metadata store, and
// once on a real engine in a temporary directory: a change is on disk before
// it is current and before any listener hears of it; changes apply in turn;
// another cluster's state or an older ring is refused loudly; a failing
// listener does not silence the others; a restart finds what was adopted.
import { describe, expect, it } from 'vitest';
import { type ClusterState, addMember, createCluster, digest, maybeReclaim, setBucketProps } from '../../src/core/membership.js';
import { InvariantError } from '../../src/core/types.js';
import { NativeEngine } from '../../src/engine/native/index.js';
import { NodeError } from '../../src/node/errors.js';
import { NodeMetrics } from '../../src/node/metrics.js';
import { RingState, STATE_META, type RingStateContext } from '../../src/node/ring-state.js';
import { settle } from '../helpers/manual-clock.js';
import { tempDir } from '../helpers/tmp.js';

const FRESH = { id: 'n1', address: '127.0.0.1:7001', partitionBits: 4, clusterName: 'c1' };

/** Engine metadata in a map; `hold()` keeps the next puts from completing until `release()`. */
class MetaStore {
  readonly saved = new Map<string, Buffer>();
  puts = 0;
  private holding = false;
  private held: Array<() => void> = [];
  async metaGet(name: string): Promise<Buffer | null> {
    return this.saved.get(name) ?? null;
  }
  async metaPut(name: string, value: Uint8Array): Promise<void> {
    if (this.holding) await new Promise<void>((resolve) => this.held.push(resolve));
    this.saved.set(name, Buffer.from(value));
    this.puts++;
  }
  hold(): void {
    this.holding = true;
  }
  async release(): Promise<void> {
    this.holding = false;
    while (this.held.length > 0) this.held.shift()!();
    await settle();
  }
  /** The state as persisted now. */
  persisted(): ClusterState | null {
    const raw = this.saved.get(STATE_META);
    return raw ? (JSON.parse(raw.toString('utf8')) as ClusterState) : null;
  }
}

function setup() {
  const engine = new MetaStore();
  const metrics = new NodeMetrics('n1');
  const logs: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> = [];
  const ctx: RingStateContext = { engine, metrics, log: (level, msg, fields) => logs.push({ level, msg, fields }) };
  return { engine, metrics, logs, ctx };
}

/** A three-member cluster whose ring n1 (the claimant) has computed. */
function threeMembers(): ClusterState {
  let s = createCluster({ id: 'n1', address: '127.0.0.1:7001' }, 4, 'c1');
  s = addMember(s, { id: 'n2', address: '127.0.0.1:7002' });
  s = addMember(s, { id: 'n3', address: '127.0.0.1:7003' });
  return maybeReclaim(s, 'n1')!;
}

const gauge = async (metrics: NodeMetrics, name: string, labels: Record<string, string> = {}) =>
  (await metrics.registry.getSingleMetric(name)!.get()).values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;

describe('RingState', () => {
  it('persists a change before it is current and before a ring listener hears of it', async () => {
    const t = setup();
    const ring = new RingState(t.ctx, createCluster({ id: 'n1', address: '127.0.0.1:7001' }, 4, 'c1'), true);
    const before = ring.current;
    const heard: Array<{ current: number; persisted: number | undefined }> = [];
    ring.onRingChange(() => heard.push({ current: ring.current.ring.version, persisted: t.engine.persisted()?.ring.version }));
    const next = threeMembers();
    t.engine.hold();
    const adopted = ring.adopt(() => next);
    await settle();
    // The write is not done: nothing is current yet, and no listener was told.
    expect(ring.current).toBe(before);
    expect(heard).toEqual([]);
    await t.engine.release();
    expect(await adopted).toBe(next);
    expect(ring.current).toBe(next);
    // The listener ran once, after the write, with the new ring current.
    expect(heard).toEqual([{ current: next.ring.version, persisted: next.ring.version }]);
    expect(await gauge(t.metrics, 'ringkv_ring_version')).toBe(next.ring.version);
    expect(await gauge(t.metrics, 'ringkv_members', { status: 'valid' })).toBe(3);
  });

  it('applies changes in turn: each sees the state the one before it left', async () => {
    const t = setup();
    const ring = new RingState(t.ctx, threeMembers(), true);
    t.engine.hold();
    // Two changes asked while the first is still being written (two peers gossiping at once).
    const a = ring.adopt((s) => setBucketProps(s, 'a', { n: 2 }));
    const b = ring.adopt((s) => setBucketProps(s, 'b', { n: 2 }));
    await t.engine.release();
    await Promise.all([a, b]);
    expect(bucketN(ring.current, 'a')).toBe(2);
    expect(bucketN(ring.current, 'b')).toBe(2);
    expect(bucketN(t.engine.persisted()!, 'a')).toBe(2);
    expect(t.engine.puts).toBe(2);
  });

  it('changes nothing for a state with the same digest: no write, no listener', async () => {
    const t = setup();
    const state = threeMembers();
    const ring = new RingState(t.ctx, state, true);
    let told = 0;
    ring.onRingChange(() => told++);
    const copy = JSON.parse(JSON.stringify(state)) as ClusterState;
    expect(digest(copy)).toBe(digest(state));
    expect(await ring.adopt(() => copy)).toBe(state);
    expect(t.engine.puts).toBe(0);
    expect(told).toBe(0);
  });

  it("refuses another cluster's state and an older ring loudly, keeping its own", async () => {
    const t = setup();
    const state = threeMembers();
    const ring = new RingState(t.ctx, state, true);
    const other = createCluster({ id: 'n1', address: '127.0.0.1:7001' }, 4, 'c2');
    await expect(ring.adopt(() => other)).rejects.toThrow(InvariantError);
    const older = { ...state, members: { ...state.members, n4: { ...state.members.n3!, id: 'n4' } }, ring: { ...state.ring, version: state.ring.version - 1 } };
    await expect(ring.adopt(() => older)).rejects.toThrow(/adopting ring v1 over v2/);
    expect(ring.current).toBe(state);
    expect(t.engine.puts).toBe(0);
    // A refused change does not stop the next one.
    await ring.adopt((s) => setBucketProps(s, 'a', { n: 2 }));
    expect(bucketN(ring.current, 'a')).toBe(2);
  });

  it('tells every listener even when one throws, and logs the failure', async () => {
    const t = setup();
    const ring = new RingState(t.ctx, createCluster({ id: 'n1', address: '127.0.0.1:7001' }, 4, 'c1'), true);
    const told: string[] = [];
    ring.onRingChange(() => {
      told.push('first');
      throw new Error('planning failed');
    });
    ring.onRingChange(() => told.push('second'));
    await ring.adopt(() => threeMembers());
    expect(told).toEqual(['first', 'second']);
    expect(t.logs).toEqual([{ level: 'error', msg: 'ring change listener failed', fields: { error: 'Error: planning failed' } }]);
    // A change that keeps the ring (bucket properties) tells no listener.
    await ring.adopt((s) => setBucketProps(s, 'a', { n: 2 }));
    expect(told).toHaveLength(2);
  });

  it("replace takes a join's state wholesale and makes the state the cluster's", async () => {
    const t = setup();
    const ring = await RingState.load(t.ctx, { ...FRESH, id: 'n4', address: '127.0.0.1:7004' }, (s) => Object.keys(s.members).length > 1);
    expect(ring.joined).toBe(false);
    const joinedAt: boolean[] = [];
    ring.onRingChange(() => joinedAt.push(ring.joined));
    const admitted = addMember(threeMembers(), { id: 'n4', address: '127.0.0.1:7004' });
    await ring.replace(admitted);
    expect(ring.current).toBe(admitted);
    expect(ring.joined).toBe(true);
    expect(joinedAt).toEqual([true]);
    expect(digest(t.engine.persisted()!)).toBe(digest(admitted));
  });

  it('a restart on a real engine finds the state it adopted; another cluster\'s data directory is refused', async () => {
    const dir = tempDir();
    const open = () => NativeEngine.open({ path: dir.path, nodeId: 'n1', epoch: '0000000000000001', partitionBits: 4 });
    const joined = (s: ClusterState) => Object.keys(s.members).length > 1;
    try {
      let engine = await open();
      const first = await RingState.load({ ...setup().ctx, engine }, FRESH, joined);
      expect(Object.keys(first.current.members)).toEqual(['n1']);
      expect(first.joined).toBe(false);
      await first.adopt(() => threeMembers());
      const adopted = await first.adopt((s) => setBucketProps(s, 'a', { n: 2 }));
      await engine.close();

      engine = await open();
      const ctx = { ...setup().ctx, engine };
      const again = await RingState.load(ctx, FRESH, joined);
      expect(digest(again.current)).toBe(digest(adopted));
      expect(bucketN(again.current, 'a')).toBe(2);
      expect(again.joined).toBe(true);
      const refused = RingState.load(ctx, { ...FRESH, clusterName: 'c2' }, joined);
      await expect(refused).rejects.toThrow(NodeError);
      await expect(refused).rejects.toMatchObject({ code: 'CLUSTER_MISMATCH' });
      await engine.close();
    } finally {
      dir.remove();
    }
  });
});

function bucketN(state: ClusterState, bucket: string): number | undefined {
  return state.buckets[bucket]?.props.n;
}
