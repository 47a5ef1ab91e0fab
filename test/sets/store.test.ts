// SetStore (src/node/sets.ts) against a stand-in node: a real PureEngine as
// the local replica, and a quorum read the test controls, so the cases the
// cluster rarely produces on its own are deterministic: a quorum read that
// misses this node's own last write, concurrent updates of one key on one
// node, a stored value that is not a set.
import { afterEach, describe, expect, it } from 'vitest';
import type { BucketProps } from '../../src/core/membership.js';
import * as orset from '../../src/core/orset.js';
import { PureEngine } from '../../src/engine/pure/index.js';
import type { RingkvNode } from '../../src/node/node.js';
import { SetError, SetStore, stateOfRecord } from '../../src/node/sets.js';

const B = Buffer.from('s');
const K = Buffer.from('k');

interface Fake {
  node: RingkvNode;
  engine: PureEngine;
  /** What the next quorum reads return: 'local' (the engine's record) or a fixed record. */
  quorum: { mode: 'local' } | { mode: 'fixed'; record: Buffer | null };
  props: BucketProps;
}

let engines: PureEngine[] = [];
afterEach(async () => {
  for (const e of engines) await e.close();
  engines = [];
});

async function fake(): Promise<Fake> {
  const engine = await PureEngine.open({ nodeId: 'n1', epoch: '00000000000000aa', partitionBits: 2 });
  engines.push(engine);
  const f: Fake = { engine, quorum: { mode: 'local' }, props: { n: 1, r: 1, w: 1, dw: 0, mode: 'siblings', type: 'set' }, node: null as unknown as RingkvNode };
  const node = {
    id: 'n1',
    engine,
    clusterState: { ring: { partitionBits: 2, owners: ['n1', 'n1', 'n1', 'n1'], version: 1, claimant: 'n1' } },
    bucketProps: () => f.props,
    registerService: () => undefined,
    preferenceListOf: () => ({ primaries: ['n1'], fallbacks: [] }),
    isSuspected: () => false,
    peerRequest: () => Promise.reject(new Error('no peers')),
    get: async () => ({ record: f.quorum.mode === 'local' ? await engine.get(B, K) : f.quorum.record, answered: 1 }),
    put: async (bucket: Buffer, key: Buffer, context: Buffer | null, value: Buffer | null) => ({
      record: await engine.coordinate({ bucket, key, context, value, now: 1, mode: 'siblings', durable: false }),
      acks: 1,
    }),
  };
  f.node = node as unknown as RingkvNode;
  return f;
}

const names = (s: { elements: Buffer[] }): string[] => s.elements.map(String);

describe('SetStore', () => {
  it('reads its own replica, so a stale quorum read never makes it reuse a dot', async () => {
    const f = await fake();
    const store = new SetStore(f.node);
    await store.setUpdate(B, K, { add: [Buffer.from('x')] });
    // The quorum read now misses that write (r = 1 answered by a stale replica).
    f.quorum = { mode: 'fixed', record: null };
    const r = await store.setUpdate(B, K, { add: [Buffer.from('y')] });
    expect(names(r)).toEqual(['x', 'y']);
    const stored = stateOfRecord(await f.engine.get(B, K));
    expect(orset.dotsOf(stored, Buffer.from('x'))).toEqual([{ actor: f.engine.actor, counter: 1 }]);
    expect(orset.dotsOf(stored, Buffer.from('y'))).toEqual([{ actor: f.engine.actor, counter: 2 }]);
  });

  it('serializes concurrent updates of one key on one node: every add gets its own dot', async () => {
    const f = await fake();
    const store = new SetStore(f.node);
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.setUpdate(B, K, { add: [Buffer.from(`e${i}`)] })));
    const stored = stateOfRecord(await f.engine.get(B, K));
    expect(orset.size(stored)).toBe(20);
    const counters = [...stored.entries.values()].flat().map((d) => d.counter).sort((a, b) => a - b);
    expect(counters).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('merges siblings on read and collapses them on the next update', async () => {
    const f = await fake();
    const store = new SetStore(f.node);
    // Two blind writes of different sets: two siblings.
    const a = orset.add(orset.empty(), 'a:1', Buffer.from('a'));
    const b = orset.add(orset.empty(), 'b:1', Buffer.from('b'));
    await f.node.put(B, K, null, orset.encode(a));
    await f.node.put(B, K, null, orset.encode(b));
    expect(names(await store.setGet(B, K))).toEqual(['a', 'b']);
    const r = await store.setUpdate(B, K, { remove: [Buffer.from('a')] });
    expect(names(r)).toEqual(['b']);
    const { decodeRecord } = await import('../../src/record/codec.js');
    expect(decodeRecord((await f.engine.get(B, K))!).siblings).toHaveLength(1);
  });

  it('does not write when nothing changes', async () => {
    const f = await fake();
    const store = new SetStore(f.node);
    expect(names(await store.setUpdate(B, K, { remove: [Buffer.from('ghost')] }))).toEqual([]);
    expect(await f.engine.get(B, K)).toBeNull();
    await store.setUpdate(B, K, { add: [Buffer.from('x')] });
    const before = await f.engine.get(B, K);
    await store.setUpdate(B, K, { remove: [Buffer.from('ghost')] });
    expect(await f.engine.get(B, K)).toEqual(before);
  });

  it('refuses a bucket that is not a set (or in lww mode), a value that is not a set, and bad operations', async () => {
    const f = await fake();
    const store = new SetStore(f.node);
    const code = async (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: unknown) => (e instanceof SetError ? e.code : `other: ${String(e)}`));
    expect(await code(store.setUpdate(B, K, {}))).toBe('BAD_REQUEST');
    expect(await code(store.setUpdate(B, K, { add: [Buffer.alloc(1025)] }))).toBe('BAD_REQUEST');
    expect(await code(store.setUpdate(B, K, { remove: [Buffer.from('x')], context: Buffer.from('junk') }))).toBe('BAD_CONTEXT');
    f.props = { ...f.props, mode: 'lww' };
    expect(await code(store.setGet(B, K))).toBe('NOT_A_SET');
    f.props = { n: 1, r: 1, w: 1, dw: 0, mode: 'siblings' };
    expect(await code(store.setGet(B, K))).toBe('NOT_A_SET');
    f.props = { ...f.props, type: 'set' };
    await f.node.put(B, K, null, Buffer.from('plain bytes'));
    expect(await code(store.setGet(B, K))).toBe('NOT_A_SET');
    expect(await code(store.setUpdate(B, K, { add: [Buffer.from('x')] }))).toBe('NOT_A_SET');
  });
});
