import { describe, expect, it } from 'vitest';
import { SimNetwork, TransportError } from '../../src/transport/index.js';
import type { SimNetworkOptions, SimTraceEvent, Transport } from '../../src/transport/index.js';
import { seededRandom } from '../helpers/random.js';

const ref = (id: string) => ({ id, address: id });

function settle(p: Promise<unknown>): Promise<{ ok: unknown } | { err: string }> {
  return p.then(
    (ok) => ({ ok }),
    (e: unknown) => ({ err: e instanceof TransportError ? e.code : String(e) }),
  );
}

function network(seed: number, opts: Partial<SimNetworkOptions> = {}) {
  const trace: SimTraceEvent[] = [];
  const net = new SimNetwork({ random: seededRandom(seed), minDelayMs: 1, maxDelayMs: 20, trace: (e) => trace.push(e), ...opts });
  return { net, trace };
}

/** A little workload: nodes that forward, gossip and answer, with timers. */
async function workload(seed: number, dropRate: number) {
  const { net, trace } = network(seed, { dropRate });
  const ids = ['n1', 'n2', 'n3', 'n4'];
  const log: string[] = [];
  for (const id of ids) {
    const t = net.transport(id);
    const clock = net.clock(id);
    t.onRequest(async (from, type, body) => {
      log.push(`${net.now()} ${id}<-${from} ${type} ${JSON.stringify(body)}`);
      if (type === 'fwd') {
        const next = ids[(ids.indexOf(id) + 1) % ids.length]!;
        const r = await settle(t.request(ref(next), 'get', body, 50));
        return { via: id, r };
      }
      if (type === 'gossip') return undefined;
      return { at: id, body };
    });
    clock.setTimer(5, () => t.notify(ref(ids[0]!), 'gossip', { from: id }));
  }
  const results: Array<Promise<unknown>> = [];
  for (let i = 0; i < 40; i++) {
    const from = ids[i % ids.length]!;
    const to = ids[(i * 7 + 1) % ids.length]!;
    results.push(settle(net.transport(from).request(ref(to), i % 3 === 0 ? 'fwd' : 'get', i, 100)));
  }
  await net.runUntil(1000);
  return { trace, log, results: await Promise.all(results), now: net.now() };
}

describe('SimNetwork', () => {
  it('is deterministic for a seed (same trace twice), and seeds differ', async () => {
    const a = await workload(7, 0.1);
    const b = await workload(7, 0.1);
    expect(a.trace.length).toBeGreaterThan(100);
    expect(b.trace).toEqual(a.trace);
    expect(b.log).toEqual(a.log);
    expect(b.results).toEqual(a.results);
    const c = await workload(8, 0.1);
    expect(c.trace).not.toEqual(a.trace);
    // with drops, some requests timed out and some succeeded
    const codes = a.results.map((r) => ('err' in (r as object) ? (r as { err: string }).err : 'ok'));
    expect(codes).toContain('ok');
    expect(codes).toContain('TIMEOUT');
  });

  it('delivers in time order and reorders by random delay', async () => {
    let reordered = false;
    for (let seed = 1; seed <= 20 && !reordered; seed++) {
      const { net } = network(seed, { minDelayMs: 1, maxDelayMs: 50 });
      const got: number[] = [];
      net.transport('b').onRequest((_f, type, body) => {
        if (type === 'n') got.push(body as number);
      });
      for (let i = 0; i < 10; i++) net.transport('a').notify(ref('b'), 'n', i);
      await net.runUntil(100);
      expect([...got].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      reordered = got.some((v, i) => v !== i);
    }
    expect(reordered).toBe(true);
  });

  it('request/response, remote errors, Buffer bodies copied', async () => {
    const { net } = network(1);
    const a = net.transport('a');
    const b = net.transport('b');
    b.onRequest((from, type, body) => {
      if (type === 'fail') throw Object.assign(new Error('nope'), { code: 'E_NOPE' });
      (body as { k: Buffer }).k[0] = 0; // mutating the received copy must not touch the sender's
      return { from, body };
    });
    const sent = { k: Buffer.from('key') };
    const p = a.request(ref('b'), 'echo', sent, 100);
    const q = a.request(ref('b'), 'fail', null, 100).catch((e: unknown) => e);
    await net.runUntil(100);
    const r = (await p) as { from: string; body: { k: Buffer } };
    expect(r.from).toBe('a');
    expect(Buffer.isBuffer(r.body.k)).toBe(true);
    expect(r.body.k.toString()).toBe('\u0000ey');
    expect(sent.k.toString()).toBe('key');
    const e = (await q) as TransportError;
    expect(e).toBeInstanceOf(TransportError);
    expect(e).toMatchObject({ code: 'REMOTE', message: 'nope', remoteCode: 'E_NOPE', peer: 'b' });
  });

  it('partitions drop messages (TIMEOUT), heal restores, isolate cuts one node', async () => {
    const { net, trace } = network(3);
    for (const id of ['a', 'b', 'c']) net.transport(id).onRequest(() => id);
    const a = net.transport('a');
    net.partition(['a'], ['b']);
    const p1 = settle(a.request(ref('b'), 'x', null, 100));
    const p2 = settle(a.request(ref('c'), 'x', null, 100));
    await net.runFor(200);
    expect(await p1).toEqual({ err: 'TIMEOUT' });
    expect(await p2).toEqual({ ok: 'c' });
    expect(trace.some((e) => e.event === 'drop' && e.reason === 'partitioned')).toBe(true);

    net.heal();
    const p3 = settle(a.request(ref('b'), 'x', null, 100));
    await net.runFor(200);
    expect(await p3).toEqual({ ok: 'b' });

    net.isolate('c');
    const p4 = settle(a.request(ref('c'), 'x', null, 100));
    const p5 = settle(net.transport('c').request(ref('b'), 'x', null, 100));
    const p6 = settle(a.request(ref('b'), 'x', null, 100));
    await net.runFor(200);
    expect([await p4, await p5, await p6]).toEqual([{ err: 'TIMEOUT' }, { err: 'TIMEOUT' }, { ok: 'b' }]);

    // a partition that starts while a message is in flight drops it on arrival
    net.heal();
    const p7 = settle(a.request(ref('b'), 'x', null, 100));
    net.partition(['b'], ['a']);
    await net.runFor(200);
    expect(await p7).toEqual({ err: 'TIMEOUT' });
  });

  it('drop rate', async () => {
    const { net } = network(4, { dropRate: 1 });
    net.transport('b').onRequest(() => 'b');
    const p1 = settle(net.transport('a').request(ref('b'), 'x', null, 100));
    await net.runFor(200);
    expect(await p1).toEqual({ err: 'TIMEOUT' });
    net.setDropRate(0);
    const p2 = settle(net.transport('a').request(ref('b'), 'x', null, 100));
    await net.runFor(200);
    expect(await p2).toEqual({ ok: 'b' });
  });

  it('crash: requests to it time out, its timers stop; restart gives a new incarnation', async () => {
    const { net } = network(5);
    const a = net.transport('a');
    a.onRequest(() => new Promise(() => undefined)); // never answers, so b's own request is pending at the crash
    const b1 = net.transport('b');
    b1.onRequest(async () => {
      await new Promise<void>((r) => net.clock('b').setTimer(30, r));
      return 'b1';
    });
    let ticks = 0;
    const tick = () => {
      ticks++;
      net.clock('b').setTimer(10, tick);
    };
    net.clock('b').setTimer(10, tick);
    await net.runFor(35);
    expect(ticks).toBe(3);

    const inFlight = settle(a.request(ref('b'), 'x', null, 100)); // b is handling it when it crashes
    const fromB = settle(b1.request(ref('a'), 'x', null, 100)); // b's own pending request
    await net.runFor(25);
    net.crash('b');
    expect(net.isUp('b')).toBe(false);
    const toDead = settle(a.request(ref('b'), 'x', null, 100));
    await net.runFor(200);
    expect(await inFlight).toEqual({ err: 'TIMEOUT' });
    expect(await toDead).toEqual({ err: 'TIMEOUT' });
    expect(await fromB).toEqual({ err: 'TIMEOUT' });
    const ticksAtCrash = ticks;
    await net.runFor(100);
    expect(ticks).toBe(ticksAtCrash); // the dead incarnation's timers do not fire

    const b2 = net.restart('b');
    expect(b2).not.toBe(b1);
    expect(net.transport('b')).toBe(b2);
    b2.onRequest(() => 'b2');
    const again = settle(a.request(ref('b'), 'x', null, 100));
    const zombie = settle(b1.request(ref('a'), 'x', null, 100)); // the old incarnation stays dead
    await net.runFor(200);
    expect(await again).toEqual({ ok: 'b2' });
    expect(await zombie).toEqual({ err: 'TIMEOUT' });
    expect(ticks).toBe(ticksAtCrash);
  });

  it('close() rejects pending with CLOSED; no handler answers REMOTE', async () => {
    const { net } = network(6);
    const a: Transport = net.transport('a');
    net.transport('b'); // exists, but has no handler
    const p1 = settle(a.request(ref('b'), 'x', null, 100));
    await net.runFor(100);
    expect(await p1).toEqual({ err: 'REMOTE' });
    net.transport('c').onRequest(() => new Promise(() => undefined));
    const p2 = settle(a.request(ref('c'), 'x', null, 100));
    await net.runFor(5);
    await a.close();
    expect(await p2).toEqual({ err: 'CLOSED' });
    expect(await settle(a.request(ref('c'), 'x', null, 100))).toEqual({ err: 'CLOSED' });
    expect(() => a.notify(ref('c'), 'x', null)).not.toThrow();
  });

  it('virtual clock: timers in time order, ties in scheduling order, cancel works', async () => {
    const { net } = network(9, { startMs: 1000 });
    const clock = net.clock();
    const order: string[] = [];
    clock.setTimer(20, () => order.push('t20'));
    clock.setTimer(10, () => order.push('t10a'));
    clock.setTimer(10, () => order.push('t10b'));
    const c = clock.setTimer(15, () => order.push('cancelled'));
    net.schedule(1005, () => order.push(`abs@${net.now()}`));
    c.cancel();
    expect(clock.now()).toBe(1000);
    expect(await net.step()).toBe(true);
    expect(net.now()).toBe(1005);
    await net.runUntil(1015);
    expect(net.now()).toBe(1015);
    expect(order).toEqual(['abs@1005', 't10a', 't10b']);
    await net.runUntil(2000);
    expect(order).toEqual(['abs@1005', 't10a', 't10b', 't20']);
    expect(await net.step()).toBe(false);
    expect(net.nextEventAt()).toBeUndefined();
    // runaway zero-delay loops are bounded
    const spin = () => clock.setTimer(0, spin);
    spin();
    await expect(net.runUntil(3000, 1000)).rejects.toThrow(/more than 1000 events/);
  });
});
