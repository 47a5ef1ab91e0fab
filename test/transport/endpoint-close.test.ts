// A node that stops while a peer is still in its handshake with it: the
// endpoint's `bye` is sealed, and a connection that has not finished the
// handshake has no session tags and reads its messages plain, so a sealed
// bye there decoded as garbage ("not msgpack: Unexpected end of MessagePack
// data": a protocol error the peer counted). Seen as a flake of
// test/cluster/handoff.test.ts when n4 stopped under a reconnecting peer.
// A connection still in its handshake is closed (1001) with nothing sent.
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { PROTOCOL_VERSION, WsTransport, decodeFrames, encodeFrame, listenPeerServer } from '../../src/transport/index.js';
import { newNonce } from '../../src/transport/peer-auth.js';
import { TEST_PEER_SECRETS } from '../helpers/secret.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A raw client at the server's /peer that records every message and how the connection closed. */
async function rawClient(address: string): Promise<{ ws: WebSocket; messages: Buffer[]; closed: Promise<number> }> {
  const ws = new WebSocket(`ws://${address}/peer`, { perMessageDeflate: false });
  ws.on('error', () => undefined);
  cleanups.push(() => ws.terminate());
  const messages: Buffer[] = [];
  ws.on('message', (d) => messages.push(d as Buffer));
  const closed = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('not closed within 5 s')), 5_000);
    ws.once('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  closed.catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, messages, closed };
}

async function server(): Promise<{ address: string; close: () => Promise<void> }> {
  const t = new WsTransport({ nodeId: 'srv', cluster: 'bye', secrets: TEST_PEER_SECRETS });
  const srv = await listenPeerServer(t);
  cleanups.push(async () => {
    await srv.close();
    await t.close();
  });
  return srv;
}

describe('a stopping endpoint and connections still in their handshake', () => {
  it('closes a connection that sent no hello yet (1001) with nothing sent on it', async () => {
    const srv = await server();
    const c = await rawClient(srv.address);
    await srv.close();
    expect(await c.closed).toBe(1001);
    expect(c.messages).toEqual([]);
  });

  it('after its hello the client got only the plain server hello, never a sealed message it cannot read', async () => {
    const srv = await server();
    const c = await rawClient(srv.address);
    c.ws.send(encodeFrame({ kind: 'hello', version: PROTOCOL_VERSION, nodeId: 'cli', cluster: 'bye', nonce: newNonce() }), { binary: true });
    const deadline = Date.now() + 5_000;
    while (c.messages.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await srv.close();
    expect(await c.closed).toBe(1001);
    // Every message it got reads plain, as a client in its handshake reads them: the server hello alone.
    expect(c.messages.map((m) => decodeFrames(m).ok && decodeFrames(m).frames.map((f) => f.kind))).toEqual([['hello']]);
  });
});
