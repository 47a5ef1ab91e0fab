// The put driver (src/node/put-driver.ts) on a real pure engine with a stub
// context: which primary a forwarded write goes to after which failure, and
// when the node coordinates it itself as a fallback. (The cluster tests run
// the same paths over real sockets; these pin the choice per failure kind.)
import { afterEach, describe, expect, it } from 'vitest';
import { quorum } from '../../src/core/quorum.js';
import { PureEngine } from '../../src/engine/pure/index.js';
import { NodeError } from '../../src/node/errors.js';
import { NodeMetrics } from '../../src/node/metrics.js';
import { PutDriver, type PutDriverContext } from '../../src/node/put-driver.js';
import { decodeRecord, encodeContext } from '../../src/record/index.js';
import { TransportError } from '../../src/transport/types.js';

const B = Buffer.from('b');
const K = Buffer.from('k');
// This node (n9) is no primary of the key: it forwards.
const PL = { primaries: ['n1', 'n2', 'n3'], fallbacks: ['n4'] };
const PROPS = { n: 3, r: 2, w: 2, dw: 0, mode: 'siblings' as const };

type Call = { node: string; type: string; body: Record<string, unknown> };
type Answer = (call: Call) => unknown;

describe('PutDriver', () => {
  let engine: PureEngine | null = null;
  afterEach(async () => {
    await engine?.close();
    engine = null;
  });

  async function driver(answer: Answer, suspected: readonly string[] = []) {
    engine = await PureEngine.open({ nodeId: 'n9', epoch: '0000000000000001', partitionBits: 4 });
    const calls: Call[] = [];
    const hints: Array<{ primary: string; record: Buffer }> = [];
    let now = 1_000;
    const ctx: PutDriverContext = {
      id: 'n9',
      engine,
      // A timer fires on the next turn, its delay passed (a backoff wait ends at once; a deadline comes after every stub reply).
      clock: {
        now: () => now,
        setTimer: (ms: number, fire: () => void) => {
          const handle = setImmediate(() => ((now += ms), fire()));
          return { cancel: () => clearImmediate(handle) };
        },
      } as unknown as PutDriverContext['clock'],
      metrics: new NodeMetrics('n9'),
      replica: {
        coordinate: () => {
          throw new Error('a non-primary never coordinates as a primary');
        },
        mergeLocal: async () => true,
        storeHint: async (primary: string, _b: Buffer, _k: Buffer, record: Buffer) => (hints.push({ primary, record }), false),
      } as unknown as PutDriverContext['replica'],
      writeRetries: 2,
      reapDelayMs: -1,
      healthAt: () => ({ isSuspect: (n) => suspected.includes(n), isMember: () => true }),
      coordinatesOwnWrites: (pl) => pl.primaries.includes('n9'),
      peerRequest: (async (node: string, type: string, body: Record<string, unknown>) => {
        const call = { node, type, body };
        calls.push(call);
        now += 1;
        return answer(call);
      }) as PutDriverContext['peerRequest'],
      scheduleReap: () => {},
    };
    return { d: new PutDriver(ctx), calls, hints };
  }
  const q = (req: { pw?: number } = {}) => quorum(PROPS, { timeoutMs: 1_000, ...req }, 5, 5_000);
  const unsent = (node: string) => new TransportError('UNAVAILABLE', `${node}: backoff`, node, undefined, true);
  const ok = { record: Buffer.from('r'), acks: 2 };

  it('after a failure that proves the primary never got the write, the next primary is asked, with the same write id', async () => {
    const { d, calls } = await driver(({ node }) => {
      if (node === 'n1') throw unsent(node);
      return ok;
    });
    await expect(d.put(B, K, null, Buffer.from('v'), q(), PL)).resolves.toEqual(ok);
    expect(calls.map((c) => `${c.node} ${c.type}`)).toEqual(['n1 kv.put', 'n2 kv.put']);
    expect(calls[0]!.body.wid).toBe(calls[1]!.body.wid);
  });

  it('after an ambiguous failure only that primary is asked again; if it never answers the write fails TIMEOUT and is not made elsewhere', async () => {
    const { d, calls, hints } = await driver(({ node }) => {
      throw new TransportError('TIMEOUT', `${node}: no answer`, node);
    });
    const err = await d.put(B, K, null, Buffer.from('v'), q(), PL).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodeError);
    expect((err as NodeError).code).toBe('TIMEOUT');
    expect(new Set(calls.map((c) => c.node))).toEqual(new Set(['n1']));
    expect(new Set(calls.map((c) => c.body.wid)).size).toBe(1);
    expect(hints).toEqual([]);
  });

  it('a primary that answers the repeat ends the write with its outcome', async () => {
    let asked = 0;
    const { d, calls } = await driver(({ node }) => {
      if (asked++ === 0) throw new TransportError('CLOSED', `${node}: connection lost`, node);
      return ok;
    });
    await expect(d.put(B, K, null, Buffer.from('v'), q(), PL)).resolves.toEqual(ok);
    expect(calls.map((c) => c.node)).toEqual(['n1', 'n1']);
  });

  it("a primary's refusal is the write's outcome (no other primary is asked)", async () => {
    const { d, calls } = await driver(({ node }) => {
      throw new TransportError('REMOTE', 'value too large', node, 'VALUE_TOO_LARGE');
    });
    await expect(d.put(B, K, null, Buffer.from('v'), q(), PL)).rejects.toMatchObject({ code: 'VALUE_TOO_LARGE' });
    expect(calls.map((c) => c.node)).toEqual(['n1']);
  });

  it('when no primary took it (pw = 0), this node coordinates it: its copy a hint for the first primary, under a one-off actor', async () => {
    const { d, calls, hints } = await driver(({ node, type }) => {
      if (type === 'kv.put') throw unsent(node);
      return { durable: false };
    });
    const result = await d.put(B, K, null, Buffer.from('v'), q(), PL);
    expect(calls.filter((c) => c.type === 'kv.put').map((c) => c.node)).toEqual(['n1', 'n2', 'n3']);
    expect(hints.map((h) => h.primary)).toEqual(['n1']);
    expect(result.record.equals(hints[0]!.record)).toBe(true);
    const [sibling] = decodeRecord(result.record).siblings;
    expect(sibling!.actor.toString()).toBe(`${engine!.actor}/f0`);
    // The other copies: to the other primaries (this node holds the first one's).
    expect(calls.filter((c) => c.type === 'kv.merge').map((c) => c.node).sort()).toEqual(['n2', 'n3']);
    expect(result.acks).toBeGreaterThanOrEqual(2);
  });

  it('a fallback write the engine refuses (bad or full context, value or metadata over a limit) stores nothing, and its one-off actor goes to the next write', async () => {
    const { d, calls, hints } = await driver(({ node, type }) => {
      if (type === 'kv.put') throw unsent(node);
      return { durable: false };
    });
    const full = encodeContext(Array.from({ length: 1024 }, (_, i) => ({ actor: Buffer.from(`w${String(i).padStart(4, '0')}`), counter: 1 })));
    const refused = [
      [Buffer.from([9, 9]), Buffer.from('v'), {}, 'BAD_CONTEXT'],
      [full, Buffer.from('v'), {}, 'BAD_CONTEXT'], // 1024 actors and the one-off one: the key's context is full
      [null, Buffer.alloc(engine?.limits.maxValueBytes ?? 0), {}, null],
      [null, Buffer.alloc((engine?.limits.maxValueBytes ?? 0) + 1), {}, 'VALUE_TOO_LARGE'],
      [null, Buffer.from('v'), { meta: [['Upper', 'x']] as Array<[string, string]> }, 'BAD_METADATA'],
    ] as const;
    const codes: Array<string | null> = [];
    for (const [context, value, attrs, code] of refused) {
      const before = hints.length;
      const err = await d.put(B, K, context, value, q(), PL, attrs).then(() => null, (e: unknown) => e);
      codes.push(err === null ? null : (err as NodeError).code);
      if (code !== null) expect(err, String(code)).toBeInstanceOf(NodeError);
      if (code !== null) expect(hints.length, `${code}: nothing held`).toBe(before);
    }
    expect(codes).toEqual(refused.map((r) => r[3]));
    // The one write taken got /f0; the refused ones used no number, so the next one gets /f1.
    await d.put(B, K, null, Buffer.from('w'), q(), PL);
    expect(hints.map((h) => decodeRecord(h.record).siblings[0]!.actor.toString())).toEqual([`${engine!.actor}/f0`, `${engine!.actor}/f1`]);
    expect(calls.filter((c) => c.type === 'kv.merge')).toHaveLength(4);
  });

  it('with pw > 0 suspected primaries are tried too, and a write no primary takes is refused, nothing stored', async () => {
    const { d, calls, hints } = await driver(({ node }) => {
      throw unsent(node);
    }, ['n1']);
    await expect(d.put(B, K, null, Buffer.from('v'), q({ pw: 1 }), PL)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    // Healthy primaries first, the suspected one last.
    expect(calls.map((c) => c.node)).toEqual(['n2', 'n3', 'n1']);
    expect(hints).toEqual([]);
  });

  it('a forwarded write coordinated twice under one write id runs once and answers the first outcome', async () => {
    const { d } = await driver(() => ok);
    let runs = 0;
    const run = async () => (runs++, ok);
    const first = await d.coordinateForwarded('w1', 1_000, run);
    const again = await d.coordinateForwarded('w1', 1_000, run);
    expect([first, again, runs]).toEqual([ok, ok, 1]);
  });
});
