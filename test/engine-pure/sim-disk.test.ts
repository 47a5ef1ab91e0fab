// The simulator's storage model (store.ts "Storage model"): a PureEngine on a
// SimDisk loses every write not flushed when it crashes, and keeps every one
// its durability claims cover — a durable coordinate/merge/mergeMany, flush(),
// metaPut, a reap, and the periodic flush on the simulator's clock. The
// restarted engine's trees match its objects (the AAE state is the durable one).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PureEngine, SimDisk, type SimStorage } from '../../src/engine/pure/index.js';
import { SimNetwork } from '../../src/transport/sim-transport.js';
import { EPOCH, b, expectCode, put } from './helpers.js';

const OPTS = { nodeId: 'n1', epoch: EPOCH, partitionBits: 3, treeBranchBits: 2, treeSegmentBits: 2 };

const openOn = (disk: SimDisk, more: Omit<SimStorage, 'disk'> = {}): Promise<PureEngine> => PureEngine.open(OPTS, { disk, ...more });

/** A copy of a disk's current contents (to open it without touching the original). */
function copyOf(disk: SimDisk): SimDisk {
  const c = new SimDisk();
  const bytes = disk.bytes();
  if (bytes.length > 0) c.append(bytes);
  return c;
}

const value = async (e: PureEngine, key: string): Promise<string | null> => {
  const got = await e.get(b('b'), b(key));
  return got === null ? null : got.toString('latin1');
};

/** A fresh memory engine with the same actor that ran only `writes`: the state a recovered engine must equal. */
async function reference(writes: Array<{ key: string; value: string; now: number }>): Promise<PureEngine> {
  const e = await PureEngine.open(OPTS);
  for (const w of writes) await put(e, w.key, w.value, null, { now: w.now });
  return e;
}

describe('SimDisk storage model', () => {
  it('a crash loses what was not flushed and keeps what a durable write or flush() covered', async () => {
    const disk = new SimDisk();
    const e = await openOn(disk);
    await put(e, 'durable', 'd', null, { durable: true });
    await put(e, 'flushed', 'f');
    await e.flush();
    await put(e, 'volatile', 'v');
    expect(await value(e, 'volatile')).not.toBeNull(); // reads see the write at once
    const roots = e.treeRoots();
    e.crash();
    await expectCode(() => e.getSync(b('b'), b('durable')), 'CLOSED');

    const r = await openOn(disk);
    // An unclean shutdown: the restarted engine writes as a new actor (its key counters may have rolled back).
    expect(r.actor).not.toBe(e.actor);
    expect(await value(r, 'durable')).not.toBeNull();
    expect(await value(r, 'flushed')).not.toBeNull();
    expect(await value(r, 'volatile')).toBeNull();
    // Trees are rebuilt from the durable objects: the lost write is gone from them too.
    expect(r.treeRoots().equals(roots)).toBe(false);
    const ref = await reference([{ key: 'durable', value: 'd', now: 1000 }, { key: 'flushed', value: 'f', now: 1000 }]);
    expect(r.treeRoots().equals(ref.treeRoots())).toBe(true);
    await r.close();
    await ref.close();
  });

  it('durable merge and mergeMany are on the disk when they resolve; a non-durable merge and a hint are not', async () => {
    const src = await PureEngine.open({ ...OPTS, nodeId: 'n2' });
    const rec = (k: string) => put(src, k, `${k}-value`);
    const disk = new SimDisk();
    const e = await openOn(disk);
    await e.merge({ bucket: b('b'), key: b('m1'), record: await rec('m1'), mode: 'siblings', durable: true });
    await e.mergeMany([
      { bucket: b('b'), key: b('m2'), record: await rec('m2'), mode: 'siblings', durable: false },
      { bucket: b('b'), key: b('m3'), record: await rec('m3'), mode: 'siblings', durable: true },
    ]);
    e.mergeSync({ bucket: b('b'), key: b('m4'), record: await rec('m4'), mode: 'siblings' });
    await e.hintPut('n3', b('b'), b('h1'), await rec('h1'));
    e.crash();
    const r = await openOn(disk);
    expect(await value(r, 'm1')).not.toBeNull();
    expect(await value(r, 'm2')).not.toBeNull(); // shared the batch's flush
    expect(await value(r, 'm3')).not.toBeNull();
    expect(await value(r, 'm4')).toBeNull();
    expect(await r.hintList('n3', 10)).toEqual([]); // hintPut alone waits for a flush
    // metaPut is durable, and flushes the hint written before it.
    await r.hintPut('n3', b('b'), b('h2'), await rec('h2'));
    await r.metaPut('app.x', b('1'));
    r.crash();
    const r2 = await openOn(disk);
    expect((await r2.metaGet('app.x'))?.toString()).toBe('1');
    expect((await r2.hintList('n3', 10)).map((h) => h.key.toString())).toEqual(['h2']);
    await r2.close();
    await src.close();
  });

  it('the periodic flush runs every flushEveryMs of simulated time on the given clock', async () => {
    const network = new SimNetwork({ random: () => 0.5 });
    const disk = new SimDisk();
    const e = await PureEngine.open({ ...OPTS, flushEveryMs: 500 }, { disk, clock: network.clock() });
    await put(e, 'a', 'x');
    await network.runFor(499);
    await put(e, 'b', 'y');
    const early = await openOn(copyOf(disk));
    expect(await value(early, 'a')).toBeNull(); // not flushed before 500 ms
    await early.close();
    await network.runFor(1); // the 500 ms tick
    await put(e, 'c', 'z');
    e.crash();
    await network.runFor(2_000); // a crashed engine's timer writes nothing more
    const r = await openOn(disk);
    expect([await value(r, 'a'), await value(r, 'b'), await value(r, 'c')].map((v) => v !== null)).toEqual([true, true, false]);
    await r.close();
  });

  it('the broken ackDurableBeforeFlush option acknowledges durable writes the crash then loses', async () => {
    const disk = new SimDisk();
    const e = await openOn(disk, { ackDurableBeforeFlush: true });
    await put(e, 'k', 'v', null, { durable: true });
    e.crash();
    const r = await openOn(disk);
    expect(await value(r, 'k')).toBeNull();
    await r.close();
  });

  it('sim storage needs a SimDisk and no path; a file-backed engine cannot crash()', async () => {
    await expectCode(PureEngine.open({ ...OPTS, path: '/nonexistent' }, { disk: new SimDisk() }), 'INVALID_ARGUMENT');
    await expectCode(PureEngine.open(OPTS, { disk: {} as SimDisk }), 'INVALID_ARGUMENT');
    const dir = await mkdtemp(join(tmpdir(), 'ringkv-simdisk-'));
    try {
      const e = await PureEngine.open({ ...OPTS, path: dir });
      await expectCode(() => e.crash(), 'INVALID_ARGUMENT');
      await put(e, 'k', 'v'); // still open
      await e.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('property: after any writes, flushes and a crash, the restarted engine equals one that ran the flushed prefix', async () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('put' as const), key: fc.constantFrom('a', 'b', 'c', 'd'), durable: fc.boolean() }),
      fc.record({ kind: fc.constant('flush' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 30 }), async (ops) => {
        const disk = new SimDisk();
        const e = await openOn(disk);
        const writes: Array<{ key: string; value: string; now: number }> = [];
        let flushed = 0;
        for (const [i, o] of ops.entries()) {
          if (o.kind === 'flush') {
            await e.flush();
            flushed = writes.length;
            continue;
          }
          writes.push({ key: o.key, value: `v${i}`, now: 1000 + i });
          await put(e, o.key, `v${i}`, null, { now: 1000 + i, durable: o.durable });
          if (o.durable) flushed = writes.length;
        }
        e.crash();
        const r = await openOn(disk);
        const ref = await reference(writes.slice(0, flushed));
        for (const key of ['a', 'b', 'c', 'd']) {
          const [got, want] = [await r.get(b('b'), b(key)), await ref.get(b('b'), b(key))];
          expect(got === null ? null : got.toString('hex')).toBe(want === null ? null : want.toString('hex'));
        }
        expect(r.treeRoots().toString('hex')).toBe(ref.treeRoots().toString('hex'));
        await r.close();
        await ref.close();
      }),
      { numRuns: 60 },
    );
  });
});
