// Finding 1 of issue 9: after faults healed, nodes saw peer messages that
// did not decode. Real transports on 127.0.0.1 talk through a TCP proxy
// (test/helpers/ws-proxy.ts) that stalls, slows, cuts and corrupts the
// traffic. Every wait and load loop is bounded in count and time.
import { afterEach, describe, expect, it } from 'vitest';
import { TransportError, WsTransport, listenPeerServer } from '../../src/transport/index.js';
import type { PeerRef, TransportEvent, WsTransportOptions } from '../../src/transport/index.js';
import { startWsProxy } from '../helpers/ws-proxy.js';
import type { Mutator, WsProxy } from '../helpers/ws-proxy.js';
import { seededRandom } from '../helpers/random.js';
import { TEST_PEER_SECRETS } from '../helpers/secret.js';

const CLUSTER = 'faults';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The request's result once the connection is back (a bounded number of tries past the backoff). */
async function eventually(fn: () => Promise<unknown>): Promise<unknown> {
  let last: unknown;
  for (let i = 0; i < 100; i++) {
    try {
      return await fn();
    } catch (e) {
      last = e;
      await sleep(20);
    }
  }
  throw last;
}

interface Pair {
  a: WsTransport;
  b: WsTransport;
  proxy: WsProxy;
  /** b, reached through the proxy. */
  ref: PeerRef;
  events: { a: TransportEvent[]; b: TransportEvent[] };
}

/** a dials b through a proxy; b answers `reply-<body>` and records what it was asked. */
async function pairThroughProxy(mutate?: Mutator, opts: Partial<WsTransportOptions> = {}): Promise<Pair & { asked: unknown[] }> {
  const events = { a: [] as TransportEvent[], b: [] as TransportEvent[] };
  const b = new WsTransport({ nodeId: 'b', cluster: CLUSTER, secrets: TEST_PEER_SECRETS, onEvent: (e) => events.b.push(e) });
  const asked: unknown[] = [];
  b.onRequest(async (_from, _type, body) => {
    asked.push(body);
    if (typeof body === 'object' && body !== null && 'delayMs' in body) await sleep((body as { delayMs: number }).delayMs);
    return { reply: body };
  });
  const srv = await listenPeerServer(b);
  const proxy = await startWsProxy(srv.port, mutate ? { mutate } : {});
  const a = new WsTransport({
    secrets: TEST_PEER_SECRETS,
    nodeId: 'a',
    cluster: CLUSTER,
    random: () => 0.5,
    backoffBaseMs: 5,
    backoffMaxMs: 40,
    onEvent: (e) => events.a.push(e),
    ...opts,
  });
  cleanups.push(async () => {
    await a.close();
    await proxy.close();
    await srv.close();
    await b.close();
  });
  return { a, b, proxy, ref: { id: 'b', address: proxy.address }, events, asked };
}

/** Changes byte `text`'s last character (x -> x^1) inside the payload, if `text` is in it. */
function flipLastChar(payload: Buffer, text: string): boolean {
  const at = payload.indexOf(text);
  if (at < 0) return false;
  payload[at + text.length - 1]! ^= 0x01;
  return true;
}

describe('finding 1: peer messages across faults', () => {
  it('finding 1: a byte changed inside a server->client message closes the connection; the changed reply is never delivered', async () => {
    let flipped = 0;
    // 'answer-1' -> 'answer-0': still well-formed msgpack, a different valid reply.
    const p = await pairThroughProxy((dir, index, payload) => {
      if (dir === 'toClient' && index > 1 && flipped === 0 && flipLastChar(payload, 'answer-1')) flipped += 1;
    });
    const e = await p.a.request(p.ref, 'x', 'answer-1', 2000).then(
      (v) => v,
      (err: unknown) => err,
    );
    expect(flipped).toBe(1);
    expect(e).toBeInstanceOf(TransportError);
    expect((e as TransportError).code).toBe('UNREACHABLE');
    expect((e as TransportError).message).toMatch(/protocol error: envelope: checksum mismatch/);
    expect(p.events.a.some((ev) => ev.type === 'protocol-error' && ev.side === 'outbound')).toBe(true);
    expect(p.a.stats().protocolErrors).toBe(1);
    // a new connection, and the next request goes through untouched
    expect(await eventually(() => p.a.request(p.ref, 'x', 'answer-2', 2000))).toEqual({ reply: 'answer-2' });
    expect(p.proxy.connections()).toBe(2);
  });

  it('finding 1: a byte changed inside a client->server message closes the connection; the changed request is never handled', async () => {
    let flipped = 0;
    const p = await pairThroughProxy((dir, index, payload) => {
      if (dir === 'toServer' && index > 1 && flipped === 0 && flipLastChar(payload, 'ask-1')) flipped += 1;
    });
    const e = await p.a.request(p.ref, 'x', 'ask-1', 2000).then(
      (v) => v,
      (err: unknown) => err,
    );
    expect(flipped).toBe(1);
    expect((e as TransportError).code).toBe('UNREACHABLE');
    expect(p.asked).toEqual([]); // neither 'ask-0' nor 'ask-1'
    expect(p.events.b.some((ev) => ev.type === 'protocol-error' && ev.side === 'inbound' && /checksum mismatch/.test(ev.reason))).toBe(true);
    expect(p.b.stats().protocolErrors).toBe(1);
    expect(await eventually(() => p.a.request(p.ref, 'x', 'ask-2', 2000))).toEqual({ reply: 'ask-2' });
  });

  it('finding 1: a message repeated in the stream is refused by its sequence number', async () => {
    // The proxy gives the second response message the first one's bytes: whole, well-formed, sealed right, but a repeat.
    let held: Buffer | null = null;
    const p = await pairThroughProxy((dir, index, payload) => {
      if (dir !== 'toClient' || index < 2 || index > 3) return;
      if (index === 2) held = Buffer.from(payload);
      else if (held && held.length === payload.length) {
        const mine = Buffer.from(payload);
        held.copy(payload); // message 3 now carries message 2's bytes again: a repeat
        held = mine;
      }
    });
    // Two requests in separate turns make two response messages of the same size.
    const r1 = await p.a.request(p.ref, 'x', 'rep-1', 2000);
    expect(r1).toEqual({ reply: 'rep-1' });
    const e = await p.a.request(p.ref, 'x', 'rep-2', 2000).then(
      (v) => v,
      (err: unknown) => err,
    );
    expect((e as TransportError).code).toBe('UNREACHABLE');
    expect((e as TransportError).message).toMatch(/envelope: message 1, expected 2/);
  });

  it('finding 1: through stalls, slow links and cuts in the middle of messages, every request gets its own reply or a transport error', async () => {
    const p = await pairThroughProxy(undefined, { maxCoalescedBytes: 16 * 1024 });
    const rand = seededRandom(9);
    const deadline = Date.now() + 8000;
    let stop = false;
    let cuts = 0;
    const chaos = (async () => {
      // at most 200 fault steps
      for (let step = 0; step < 200 && !stop && Date.now() < deadline; step++) {
        const r = rand();
        if (r < 0.35) p.proxy.mode = 'pass';
        else if (r < 0.6) p.proxy.mode = 'stall';
        else if (r < 0.9) p.proxy.mode = 'slow';
        else cuts += p.proxy.cut();
        await sleep(10 + Math.floor(rand() * 60));
      }
      p.proxy.mode = 'pass';
    })();
    let ok = 0;
    let failed = 0;
    const wrong: string[] = [];
    let next = 0;
    const total = 600;
    const worker = async (): Promise<void> => {
      while (next < total && Date.now() < deadline) {
        const i = next++;
        // Sizes across the coalescing cap and the proxy's slow chunks; some replies wait, so they cross faults.
        const size = i % 10 === 0 ? 20_000 + (i % 7) * 3000 : (i * 37) % 900;
        const body = { i, pad: Buffer.alloc(size, i & 0xff), tag: `req-${i}`, delayMs: i % 5 === 0 ? 20 : 0 };
        try {
          const res = (await p.a.request(p.ref, 'echo', body, 1000)) as { reply: typeof body };
          const got = res.reply;
          if (got.i !== i || got.tag !== `req-${i}` || !Buffer.isBuffer(got.pad) || !got.pad.equals(body.pad)) wrong.push(`request ${i}`);
          else ok += 1;
        } catch (e) {
          expect(e).toBeInstanceOf(TransportError);
          failed += 1;
          await sleep(5);
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    stop = true;
    await chaos;
    expect(wrong).toEqual([]);
    expect(ok).toBeGreaterThan(0);
    expect(cuts + failed).toBeGreaterThan(0); // the faults happened
    // Faults end connections; they never make a message that fails to open or decode.
    const protocolErrors = [...p.events.a, ...p.events.b].filter((e) => e.type === 'protocol-error');
    expect(protocolErrors).toEqual([]);
    // and once the faults stop, requests flow again
    p.proxy.mode = 'pass';
    expect(await eventually(() => p.a.request(p.ref, 'echo', 'after', 1000))).toEqual({ reply: 'after' });
  });
});
