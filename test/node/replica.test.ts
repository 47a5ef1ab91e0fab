// The replica role (src/node/replica.ts) and its key gates, on a real pure
// engine with a small stub context (no node, no network).
import { afterEach, describe, expect, it } from 'vitest';
import { InvariantError } from '../../src/core/types.js';
import { decodeRecord, encodeRecord, recordContextBytes } from '../../src/record/codec.js';
import { PureEngine } from '../../src/engine/pure/index.js';
import { NodeError } from '../../src/node/errors.js';
import { KeyGates } from '../../src/node/key-gates.js';
import { keyId } from '../../src/record/keys.js';
import { decodePeerRequest } from '../../src/node/messages.js';
import { NodeMetrics } from '../../src/node/metrics.js';
import { Replica, type ReplicaContext } from '../../src/node/replica.js';

const B = Buffer.from('b');

describe('KeyGates', () => {
  it('a reap waits for the writes of its key in progress, and writes that start meanwhile wait for the reap', async () => {
    const gates = new KeyGates();
    const order: string[] = [];
    let finishWrite!: () => void;
    const w1 = gates.write(B, Buffer.from('k'), () => new Promise<void>((r) => (finishWrite = () => (order.push('w1 done'), r()))));
    await Promise.resolve();
    const reap = gates.exclusive(B, Buffer.from('k'), async () => void order.push('reap'));
    await Promise.resolve();
    expect(gates.reapUnderway(B, Buffer.from('k'))).toBe(true);
    const w2 = gates.write(B, Buffer.from('k'), async () => void order.push('w2'));
    // Another key is not held up.
    await gates.write(B, Buffer.from('other'), async () => void order.push('other'));
    finishWrite();
    await Promise.all([w1, reap, w2]);
    expect(order).toEqual(['other', 'w1 done', 'reap', 'w2']);
    expect(gates.size).toBe(0);
  });

  it('a batch enters many gates (a repeated key once) and leaves them all, even when it fails', async () => {
    const gates = new KeyGates();
    const ids = [keyId(B, Buffer.from('x')), keyId(B, Buffer.from('y')), keyId(B, Buffer.from('x'))];
    await expect(gates.writeMany(ids, async () => { expect(gates.size).toBe(2); throw new Error('boom'); })).rejects.toThrow('boom');
    expect(gates.size).toBe(0);
  });

  it('leaving a gate never entered is a loud invariant failure, not a silent return', () => {
    const gates = new KeyGates();
    expect(() => (gates as unknown as { leave(id: string): void }).leave(keyId(B, Buffer.from('k')))).toThrow(InvariantError);
  });
});

describe('Replica', () => {
  let engine: PureEngine | null = null;
  afterEach(async () => {
    await engine?.close();
    engine = null;
  });

  async function replica(over: Partial<ReplicaContext> = {}) {
    engine = await PureEngine.open({ nodeId: 'n1', epoch: '0000000000000001', partitionBits: 4 });
    const calls = { pulled: [] as string[], reaps: [] as Array<{ node: string; key: string }>, reaped: [] as string[] };
    let now = 1_000;
    const ctx: ReplicaContext = {
      id: 'n1',
      engine,
      clock: { now: () => now, setTimer: () => ({ cancel() {} }) } as unknown as ReplicaContext['clock'],
      metrics: new NodeMetrics('n1'),
      log: () => {},
      onReap: (e) => calls.reaped.push(e.key.toString()),
      checkJoined: () => {},
      ring: () => ({ version: 2, claimant: 'n1' }),
      pullState: (from) => void calls.pulled.push(from),
      modeOf: () => 'siblings',
      primariesOf: (_b, key) => (key.toString().startsWith('elsewhere') ? ['n2', 'n3'] : ['n1', 'n2']),
      isPrimaryMember: (node) => node === 'n2',
      receivingSources: () => null,
      sendReap: async (node, _b, key) => (calls.reaps.push({ node, key: key.toString() }), true),
      ...over,
    };
    const r = new Replica(ctx, { ttlMs: 60_000, maxEntries: 100 });
    await r.hints.load();
    await r.floors.load(now);
    return { r, calls, engine, tick: (ms: number) => (now += ms) };
  }

  /** A record as another node's coordinator would send it. */
  async function versionFrom(actor: string, key: string, value: string | null, context: Buffer | null = null): Promise<Buffer> {
    const other = await PureEngine.open({ nodeId: actor, epoch: '0000000000000002', partitionBits: 4 });
    try {
      return await other.coordinate({ bucket: B, key: Buffer.from(key), context, value: value === null ? null : Buffer.from(value), now: 1, mode: 'siblings', durable: false });
    } finally {
      await other.close();
    }
  }

  it('kv.merge with a hint for another node keeps it as a hint only; a read with hints sees it, a plain read does not', async () => {
    const { r, engine } = await replica();
    const rec = await versionFrom('n9', 'k', 'v');
    expect(await r.onMerge('n9', decodePeerRequest('kv.merge', { b: B, k: Buffer.from('k'), record: rec, hint: 'n2', durable: true }))).toEqual({ durable: true, hinted: true });
    expect(await engine.get(B, Buffer.from('k'))).toBeNull();
    expect(r.hints.pending()).toBe(1);
    expect((await r.onGet('n9', decodePeerRequest('kv.get', { b: B, k: Buffer.from('k') }))).record).toBeNull();
    const withHints = await r.onGet('n9', decodePeerRequest('kv.get', { b: B, k: Buffer.from('k'), hints: true }));
    expect(decodeRecord(withHints.record!).siblings.map((s) => s.value?.toString())).toEqual(['v']);
  });

  it('counts the replica requests it serves, by type (ringkv_replica_requests_total)', async () => {
    const metrics = new NodeMetrics('n1');
    const { r } = await replica({ metrics });
    const rec = await versionFrom('n9', 'k', 'v');
    await r.onMerge('n9', decodePeerRequest('kv.merge', { b: B, k: Buffer.from('k'), record: rec }));
    await r.onGet('n9', decodePeerRequest('kv.get', { b: B, k: Buffer.from('k') }));
    await r.onGet('n9', decodePeerRequest('kv.get', { b: B, k: Buffer.from('k') }));
    await r.onMergeBatch('n9', decodePeerRequest('kv.mergebatch', { items: [], durable: false }));
    const values = (await metrics.replicaRequests.get()).values.map((v) => [v.labels.type, v.value]);
    expect(Object.fromEntries(values)).toEqual({ 'kv.get': 2, 'kv.merge': 1, 'kv.mergebatch': 1 });
  });

  it('a merge of a key this node does not replicate under its ring is held as a hint for its first primary', async () => {
    const { r, engine } = await replica();
    const rec = await versionFrom('n9', 'elsewhere', 'v');
    await r.onMergeBatch('n9', decodePeerRequest('kv.mergebatch', { items: [{ b: B, k: Buffer.from('elsewhere'), record: rec }], durable: true }));
    expect(await engine.get(B, Buffer.from('elsewhere'))).toBeNull();
    expect((await engine.hintList('n2', 10)).map((h) => h.key.toString())).toEqual(['elsewhere']);
  });

  it('a read routed by a newer ring is refused (UNAVAILABLE) and this node pulls the sender\'s state', async () => {
    const { r, calls } = await replica();
    await expect(r.onGet('n3', decodePeerRequest('kv.get', { b: B, k: Buffer.from('k'), ring: 3 }))).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(calls.pulled).toEqual(['n3']);
  });

  it('after a reap, a stale copy from a primary is not merged back, and that primary is told to reap too', async () => {
    const { r, calls, engine } = await replica();
    const k = Buffer.from('gone');
    const live = await versionFrom('n2', 'gone', 'old');
    await r.mergeLocal(B, k, live, 'siblings', false);
    const tomb = await r.coordinate(B, k, recordContextBytes(live), null, 'siblings', true);
    expect(await r.onReapRequest('n2', decodePeerRequest('kv.reap', { b: B, k, record: tomb }))).toEqual({ reaped: true });
    expect(await engine.get(B, k)).toBeNull();
    expect(calls.reaped).toEqual(['gone']);
    // The stale live copy comes back from n2 (its reap was lost): dropped, and n2 is asked to reap.
    await r.onMerge('n2', decodePeerRequest('kv.merge', { b: B, k, record: live }));
    expect(await engine.get(B, k)).toBeNull();
    expect(calls.reaps).toEqual([{ node: 'n2', key: 'gone' }]);
    expect((await r.onGet('n2', decodePeerRequest('kv.get', { b: B, k }))).reaped).toEqual(tomb);
    // A new write after the reap gets a dot above the reaped ones (counter floor).
    const next = decodeRecord(await r.coordinate(B, k, null, Buffer.from('new'), 'siblings', false));
    expect(next.siblings[0]!.counter).toBeGreaterThan(decodeRecord(tomb).siblings[0]!.counter);
  });

  it('does not reap when no sibling survives merging the tombstone with the stored copy (inconsistent records), deleting nothing', async () => {
    const { r, engine } = await replica();
    const k = Buffer.from('k');
    // Each covers the other's only dot: their merge is empty (CORRUPT_RECORD inside), so there is nothing to reap.
    const context = [{ actor: Buffer.from('x:1'), counter: 1 }, { actor: Buffer.from('y:1'), counter: 1 }];
    const stored = encodeRecord({ context, siblings: [{ actor: Buffer.from('x:1'), counter: 1, timestamp: 1, tombstone: false, value: Buffer.from('v') }] });
    const tomb = encodeRecord({ context, siblings: [{ actor: Buffer.from('y:1'), counter: 1, timestamp: 2, tombstone: true, value: Buffer.alloc(0) }] });
    await r.mergeLocal(B, k, stored, 'siblings', false);
    expect(await r.onReapRequest('n2', decodePeerRequest('kv.reap', { b: B, k, record: tomb }))).toEqual({ reaped: false });
    expect(await engine.get(B, k)).toEqual(stored);
  });

  it('refuses to reap a record with a live sibling (BAD_REQUEST), deleting nothing', async () => {
    const { r, engine } = await replica();
    const live = await versionFrom('n2', 'k', 'v');
    await r.mergeLocal(B, Buffer.from('k'), live, 'siblings', false);
    await expect(r.onReapRequest('n2', decodePeerRequest('kv.reap', { b: B, k: Buffer.from('k'), record: live }))).rejects.toBeInstanceOf(NodeError);
    expect(await engine.get(B, Buffer.from('k'))).toEqual(live);
  });
});

