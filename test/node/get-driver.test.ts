// The get driver (src/node/get-driver.ts) on a real pure engine with a stub
// context: a replica still receiving the key's partition counts only with
// the copy of a giver that has it, following givers that are themselves
// still receiving (a cluster that grew twice in a row).
import { afterEach, describe, expect, it } from 'vitest';
import { quorum } from '../../src/core/quorum.js';
import { PureEngine } from '../../src/engine/pure/index.js';
import { GetDriver, type GetDriverContext } from '../../src/node/get-driver.js';
import { NodeMetrics } from '../../src/node/metrics.js';
import { decodeRecord, encodeRecord, finish, update } from '../../src/record/index.js';
import { TransportError } from '../../src/transport/types.js';

const B = Buffer.from('b');
const K = Buffer.from('k');
const PL = { primaries: ['n1', 'n2', 'n3'], fallbacks: ['n4', 'n5'] };

/** A record with one sibling written by `actor` (concurrent with every other actor's). */
function recordOf(actor: string, value: string): Buffer {
  return encodeRecord(finish(update(null, [], Buffer.from(actor), { value: Buffer.from(value), now: 1 }), 'siblings', 100));
}

const values = (record: Buffer | null) => (record ? decodeRecord(record).siblings.map((s) => s.value.toString()).sort() : null);

type Answer = (node: string) => { record: Buffer | null; pending?: string[] };

describe('GetDriver', () => {
  let engine: PureEngine | null = null;
  afterEach(async () => {
    await engine?.close();
    engine = null;
  });

  async function driver(answer: Answer, suspects: readonly string[] = []) {
    engine = await PureEngine.open({ nodeId: 'n9', epoch: '0000000000000001', partitionBits: 4 });
    const asked: string[] = [];
    const ctx: GetDriverContext = {
      id: 'n9',
      engine,
      clock: { now: () => 1_000, setTimer: () => ({ cancel() {} }) } as unknown as GetDriverContext['clock'],
      metrics: new NodeMetrics('n9'),
      readRepairWindowMs: 100,
      readRetryAfterMs: 0,
      preference: () => PL,
      healthAt: () => ({ isSuspect: () => false, isMember: () => true }),
      isSuspect: (node: string) => suspects.includes(node),
      isKnownMember: () => true,
      coordinatesOwnWrites: () => false,
      ringVersion: () => 3,
      hasFloor: () => false,
      receivingSources: () => null,
      localRecord: async () => ({ record: null, reaped: null }),
      peerRequest: (async (node: string, type: string) => {
        expect(type).toBe('kv.get');
        asked.push(node);
        return answer(node);
      }) as GetDriverContext['peerRequest'],
      sendMerge: async () => false,
      reapRepair: () => {},
    };
    return { d: new GetDriver(ctx), asked };
  }
  const q = quorum({ n: 3, r: 3, w: 2, dw: 0, mode: 'siblings' }, { timeoutMs: 1_000 }, 5, 5_000);


  it("a receiving replica's copy counts together with its givers' along the chain, up to one that has the partition", async () => {
    const { d, asked } = await driver((node) => {
      if (node === 'n3') return { record: recordOf('a3', 'v3'), pending: ['n4'] };
      if (node === 'n4') return { record: recordOf('a4', 'v4'), pending: ['n5'] };
      return { record: recordOf(`a-${node}`, `v-${node}`) };
    });
    const { record, answered } = await d.get(B, K, q);
    expect(answered).toBe(3);
    expect(values(record)).toEqual(['v-n1', 'v-n2', 'v-n5', 'v3', 'v4']);
    expect(asked.sort()).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);
  });

  it('healthy givers one hop further come before a suspected giver: a dead host that never answers is not waited for (issue 9)', async () => {
    // n3 receives from n6 (dead and suspected: a real request would only time out, here it fails at once)
    // and n4, which still receives from n5.
    const { d, asked } = await driver((node) => {
      if (node === 'n6') throw new TransportError('TIMEOUT', 'no answer', node);
      if (node === 'n3') return { record: recordOf('a3', 'v3'), pending: ['n6', 'n4'] };
      if (node === 'n4') return { record: recordOf('a4', 'v4'), pending: ['n6', 'n5'] };
      return { record: recordOf(`a-${node}`, `v-${node}`) };
    }, ['n6']);
    const { record, answered } = await d.get(B, K, q);
    expect(answered).toBe(3);
    expect(values(record)).toEqual(['v-n1', 'v-n2', 'v-n5', 'v3', 'v4']);
    expect(asked).not.toContain('n6');
  });

  it('a receiving replica whose givers all fail counts as failed: r = n is not reached', async () => {
    const { d } = await driver((node) => {
      if (node === 'n3') return { record: recordOf('a3', 'v3'), pending: ['n4'] };
      if (node === 'n4') throw new TransportError('TIMEOUT', 'no answer', node);
      return { record: recordOf(`a-${node}`, `v-${node}`) };
    });
    await expect(d.get(B, K, q)).rejects.toMatchObject({ code: 'QUORUM_FAILED' });
  });
});

describe('GetDriver with fan-out quorum (the coordinator n1 is a replica)', () => {
  let engine: PureEngine | null = null;
  afterEach(async () => {
    await engine?.close();
    engine = null;
  });

  /** `answer` gives each replica's copy (n1's is local); a promise that never settles is a replica that does not answer. */
  async function driver(answer: (node: string) => Promise<Buffer | null>) {
    engine = await PureEngine.open({ nodeId: 'n1', epoch: '0000000000000001', partitionBits: 4 });
    const asked: string[] = [];
    const repaired: string[] = [];
    const timers: Array<{ at: number; fire: () => void }> = [];
    const ctx: GetDriverContext = {
      id: 'n1',
      engine,
      clock: { now: () => 1_000, setTimer: (ms: number, fire: () => void) => (timers.push({ at: ms, fire }), { cancel() {} }) } as unknown as GetDriverContext['clock'],
      metrics: new NodeMetrics('n1'),
      readRepairWindowMs: 100,
      readRetryAfterMs: 50,
      preference: () => PL,
      healthAt: () => ({ isSuspect: () => false, isMember: () => true }),
      isSuspect: () => false,
      isKnownMember: () => true,
      coordinatesOwnWrites: () => true,
      ringVersion: () => 3,
      hasFloor: () => false,
      receivingSources: () => null,
      localRecord: async () => ({ record: await answer('n1'), reaped: null }),
      peerRequest: (async (node: string) => {
        asked.push(node);
        return { record: await answer(node) };
      }) as GetDriverContext['peerRequest'],
      sendMerge: async (node) => {
        repaired.push(node);
        return true;
      },
      reapRepair: () => {},
    };
    const extra = async (reason: string) => (await ctx.metrics.readExtraAsks.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
    return { d: new GetDriver(ctx), asked, repaired, extra, fireRetry: () => timers.find((t) => t.at === 50)!.fire() };
  }
  const q = quorum({ n: 3, r: 2, w: 2, dw: 0, mode: 'siblings', read_fanout: 'quorum' }, { timeoutMs: 1_000 }, 5, 5_000);
  const settle = () => new Promise((r) => setTimeout(r, 20));

  it('R agreeing copies: one peer kv.get (n2), no repair', async () => {
    const same = recordOf('a1', 'v');
    const { d, asked, repaired } = await driver(async () => same);
    const { record, answered } = await d.get(B, K, q);
    expect(answered).toBe(2);
    expect(values(record)).toEqual(['v']);
    await settle();
    expect(asked).toEqual(['n2']);
    expect(repaired).toEqual([]);
  });

  it('n2 answers differently: n3 is asked too, the reply is the reconciled copy, the stale replicas are repaired', async () => {
    const newer = recordOf('a1', 'new');
    const { d, asked, repaired, extra } = await driver(async (node) => (node === 'n2' ? null : newer));
    const { record } = await d.get(B, K, q);
    expect(values(record)).toEqual(['new']);
    await settle();
    expect(asked).toEqual(['n2', 'n3']);
    expect(repaired).toEqual(['n2']);
    expect(await extra('differ')).toBe(1);
  });

  it('n2 fails: n3 is asked instead', async () => {
    const same = recordOf('a1', 'v');
    const { d, asked, extra } = await driver(async (node) => {
      if (node === 'n2') throw new TransportError('UNREACHABLE', 'refused', node);
      return same;
    });
    expect((await d.get(B, K, q)).answered).toBe(2);
    expect(asked).toEqual(['n2', 'n3']);
    expect(await extra('failed')).toBe(1);
  });

  it('n2 does not answer: the speculative retry asks n3, and the read answers without n2', async () => {
    const same = recordOf('a1', 'v');
    const { d, asked, fireRetry, extra } = await driver((node) => (node === 'n2' ? new Promise<Buffer | null>(() => {}) : Promise.resolve(same)));
    const read = d.get(B, K, q);
    await settle();
    expect(asked).toEqual(['n2']);
    fireRetry();
    const { answered } = await read;
    expect(answered).toBe(2);
    expect(asked).toEqual(['n2', 'n3']);
    expect(await extra('slow')).toBe(1);
  });

  it('fanout all (the request overrides the bucket): every replica is asked', async () => {
    const same = recordOf('a1', 'v');
    const { d, asked } = await driver(async () => same);
    await d.get(B, K, quorum({ n: 3, r: 2, w: 2, dw: 0, mode: 'siblings', read_fanout: 'quorum' }, { timeoutMs: 1_000, readFanout: 'all' }, 5, 5_000));
    await settle();
    expect(asked.sort()).toEqual(['n2', 'n3']);
  });
});
