// The connect timeout counts the time this process ran, not a stall of it
// (issue 9: a connection attempt in flight during a 5 s stall of the event
// loop was failed by its late timer before the handshake replies queued
// behind it were read; the next requests to the healthy peer failed
// UNREACHABLE and the node suspected it). Real sockets on 127.0.0.1.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TransportError, WsTransport, listenPeerServer } from '../../src/transport/index.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** Blocks this thread (timers, I/O, every socket of this process) for `ms`. */
function stall(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

async function transport(id: string, connectTimeoutMs: number): Promise<{ t: WsTransport; address: string }> {
  const t = new WsTransport({ nodeId: id, cluster: 'stall', connectTimeoutMs, random: () => 0.5 });
  const srv = await listenPeerServer(t);
  cleanups.push(async () => {
    await srv.close();
    await t.close();
  });
  return { t, address: srv.address };
}

describe('connect timeout and a stall of this process', () => {
  it('an attempt in flight during a stall longer than connectTimeoutMs completes once the loop runs again', async () => {
    const a = await transport('a', 400);
    const b = await transport('b', 400);
    b.t.onRequest(async (from, type) => ({ from, type }));
    const reply = a.t.request({ id: 'b', address: b.address }, 'ping', {}, 10_000);
    // The attempt has started (TCP connect, upgrade request); nothing of it has been read yet.
    expect(a.t.peers()).toMatchObject([{ id: 'b', state: 'connecting' }]);
    stall(1_000);
    await expect(reply).resolves.toEqual({ from: 'a', type: 'ping' });
    expect(a.t.peers()).toMatchObject([{ id: 'b', state: 'open' }]);
  });

  it('a peer that accepts TCP and never answers the handshake still fails the attempt: connect timeout, UNREACHABLE', async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          silent.close(() => r());
        }),
    );
    const port = (silent.address() as net.AddressInfo).port;
    const a = await transport('a', 400);
    const err = await a.t.request({ id: 'x', address: `127.0.0.1:${port}` }, 'ping', {}, 20_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect(err).toMatchObject({ code: 'UNREACHABLE' });
    expect((err as Error).message).toContain('connect timeout');
    expect(sockets.size).toBe(1);
  });
});
