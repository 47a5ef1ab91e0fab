// Real sockets on 127.0.0.1, ephemeral ports. Every wait is bounded.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import {
  ENVELOPE_BYTES,
  HOT_MARKER,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  TransportError,
  WsTransport,
  decodeFrames,
  encodeFrame,
  encodeReply,
  encodeRequest,
  listenPeerServer,
  makeProof,
  newNonce,
  openMessage,
  packValue,
  sealMessage,
  sessionTags,
} from '../../src/transport/index.js';
import type { Frame, HelloFrame, PeerRef, PeerSecret, PeerServer, Transcript, TransportEvent, WsTransportOptions } from '../../src/transport/index.js';
import { TEST_PEER_SECRETS } from '../helpers/secret.js';

const CLUSTER = 'test-cluster';

interface TestNode {
  t: WsTransport;
  srv: PeerServer;
  ref: PeerRef;
  events: TransportEvent[];
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function startNode(id: string, opts: Partial<WsTransportOptions> = {}, port?: number): Promise<TestNode> {
  const events: TransportEvent[] = [];
  const t = new WsTransport({ nodeId: id, cluster: CLUSTER, secrets: TEST_PEER_SECRETS, random: () => 0.5, onEvent: (e) => events.push(e), ...opts });
  const srv = await listenPeerServer(t, port === undefined ? {} : { port });
  const n = { t, srv, ref: { id, address: srv.address }, events };
  cleanups.push(async () => {
    await srv.close();
    await t.close();
  });
  return n;
}

async function stopNode(n: TestNode): Promise<void> {
  await n.srv.close();
  await n.t.close();
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function rejection(p: Promise<unknown>): Promise<TransportError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(TransportError);
    return e as TransportError;
  }
  throw new Error('expected a rejection');
}

/** Retries until the request succeeds (bounded). */
async function eventually<T>(fn: () => Promise<T>, attempts = 100, gapMs = 25): Promise<T> {
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await fn();
    } catch (e) {
      last = e;
      await sleep(gapMs);
    }
  }
  throw last;
}

/**
 * A raw ws client to a node's /peer endpoint; resolves when it closes (or
 * rejects after a bound). `messages` holds what came in, the envelope taken
 * off every message after the first (the server's hello). `hello()` makes
 * this client's hello (with its nonce); once the server's hello is in,
 * `auth()` makes the proof and `seal` envelopes the next message to send;
 * `handshake()` does all of it with the test secret.
 */
function rawClient(address: string, secret: PeerSecret = TEST_PEER_SECRETS.current): {
  ws: WebSocket;
  opened: Promise<void>;
  closed: Promise<number>;
  messages: Buffer[];
  hello: (cluster?: string, nodeId?: string, version?: number) => Buffer;
  auth: () => Buffer;
  seal: (payload: Buffer) => Buffer;
  handshake: () => Promise<void>;
} {
  const ws = new WebSocket(`ws://${address}/peer`, { perMessageDeflate: false });
  const messages: Buffer[] = [];
  const nonce = newNonce();
  let clientId = 'raw';
  let transcript: Transcript | null = null;
  let sendTag = 0;
  let recvTag = 0;
  let sent = 0;
  ws.on('message', (d) => {
    if (messages.length === 0) {
      messages.push(d as Buffer);
      const f = framesOf(d as Buffer)[0];
      if (f?.kind === 'hello' && f.nonce !== undefined) {
        transcript = { version: f.version, cluster: f.cluster, clientId, serverId: f.nodeId, clientNonce: nonce, serverNonce: f.nonce };
        const tags = sessionTags(secret, transcript);
        sendTag = tags.clientToServer;
        recvTag = tags.serverToClient;
      }
      return;
    }
    const o = openMessage(messages.length, d as Buffer, recvTag);
    if (!o.ok) throw new Error(`raw client got a bad envelope: ${o.reason}`);
    messages.push(o.payload);
  });
  ws.on('error', () => undefined);
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('close', () => reject(new Error('closed before open')));
  });
  const closed = new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('raw client not closed within 5 s')), 5000);
    ws.once('close', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
  opened.catch(() => undefined);
  closed.catch(() => undefined);
  cleanups.push(() => ws.terminate());
  const hello = (cluster = CLUSTER, nodeId = 'raw', version = PROTOCOL_VERSION): Buffer => {
    clientId = nodeId;
    return encodeFrame({ kind: 'hello', version, nodeId, cluster, nonce });
  };
  const auth = (): Buffer => {
    if (transcript === null) throw new Error('no server hello yet');
    return encodeFrame({ kind: 'auth', proof: makeProof(secret, 'client', transcript) });
  };
  return {
    ws,
    opened,
    closed,
    messages,
    hello,
    auth,
    seal: (payload) => sealMessage(++sent, payload, sendTag),
    handshake: async () => {
      await opened;
      ws.send(hello(), { binary: true });
      await until(() => messages.length >= 1, 'server hello');
      ws.send(auth(), { binary: true });
    },
  };
}

/** A plain hello without a nonce, as a peer of protocol version 3 or older sends it. */
function oldHello(cluster = CLUSTER, nodeId = 'raw', version = PROTOCOL_VERSION): Buffer {
  return encodeFrame({ kind: 'hello', version, nodeId, cluster });
}

/** Decodes a received message (which must be well-formed) into its frames. */
function framesOf(message: Buffer): Frame[] {
  // The raw client speaks PROTOCOL_VERSION, whose messages may carry hot frames.
  const d = decodeFrames(message, true);
  if (!d.ok) throw new Error(`bad message: ${d.reason}`);
  return d.frames;
}

/**
 * A raw peer on a `ws` server: answers a client's hello with its own (nonce
 * and proof made with the test secret, or `helloReply` instead), takes the
 * client's auth, then hands each later message (its frames' bytes, the
 * envelope checked and taken off, and its frames) to `onMessage`, with
 * `send` to answer (sealed). `messages` holds the hello and those payloads.
 */
async function rawPeerServer(
  onMessage: (send: (payload: Buffer) => void, message: Buffer, frames: Frame[]) => void,
  helloReply?: Buffer,
): Promise<{ ref: PeerRef; messages: Buffer[] }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const messages: Buffer[] = [];
  const secret = TEST_PEER_SECRETS.current;
  wss.on('connection', (ws) => {
    let received = 0;
    let sent = 0;
    let sendTag = 0;
    let recvTag = 0;
    const send = (payload: Buffer): void => ws.send(sealMessage(++sent, payload, sendTag));
    ws.on('message', (data) => {
      const message = data as Buffer;
      received += 1;
      if (received === 1) {
        messages.push(message);
        if (helloReply !== undefined) {
          ws.send(helloReply);
          return;
        }
        const f = framesOf(message)[0] as HelloFrame;
        const serverNonce = newNonce();
        const transcript: Transcript = { version: PROTOCOL_VERSION, cluster: CLUSTER, clientId: f.nodeId, serverId: 'rawsrv', clientNonce: f.nonce!, serverNonce };
        const tags = sessionTags(secret, transcript);
        sendTag = tags.serverToClient;
        recvTag = tags.clientToServer;
        ws.send(encodeFrame({ kind: 'hello', version: PROTOCOL_VERSION, nodeId: 'rawsrv', cluster: CLUSTER, nonce: serverNonce, proofs: [makeProof(secret, 'server', transcript)] }));
        return;
      }
      if (received === 2) return; // the client's auth (the node under test checks ours; this peer trusts it)
      const o = openMessage(received - 2, message, recvTag);
      if (!o.ok) throw new Error(`raw server got a bad envelope: ${o.reason}`);
      messages.push(o.payload);
      onMessage(send, o.payload, framesOf(o.payload));
    });
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  );
  const port = (wss.address() as net.AddressInfo).port;
  return { ref: { id: 'rawsrv', address: `127.0.0.1:${port}` }, messages };
}

/** Waits (bounded) until cond() holds. */
async function until(cond: () => boolean, what: string, attempts = 200, gapMs = 10): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (cond()) return;
    await sleep(gapMs);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('WsTransport', () => {
  it('request/response both ways, with the sender id', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    a.t.onRequest((from, type, body) => ({ at: 'a', from, type, body }));
    b.t.onRequest((from, type, body) => ({ at: 'b', from, type, body }));
    expect(await a.t.request(b.ref, 'ping', { n: 1 }, 2000)).toEqual({ at: 'b', from: 'a', type: 'ping', body: { n: 1 } });
    expect(await b.t.request(a.ref, 'ping', [2], 2000)).toEqual({ at: 'a', from: 'b', type: 'ping', body: [2] });
    // many concurrent requests on one connection, answered out of order
    b.t.onRequest(async (_f, _t, body) => {
      const i = body as number;
      await sleep((7 * i) % 13);
      return i * 2;
    });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => a.t.request(b.ref, 'double', i, 5000)));
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => i * 2));
    expect(a.t.peers()).toHaveLength(1);
  });

  it('Buffer bodies round-trip and arrive as Buffers', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    let seen: unknown;
    b.t.onRequest((_from, _type, body) => {
      seen = body;
      return { echo: body, extra: new Uint8Array([7, 8, 9]) };
    });
    const body = {
      key: Buffer.from('k\u0000ey'),
      raw: new Uint8Array([0, 255, 1]),
      big: Buffer.alloc(1 << 20, 0xab),
      pos: 2n ** 63n + 5n,
      nested: [{ v: Buffer.from([]) }],
    };
    const res = (await a.t.request(b.ref, 'put', body, 5000)) as { echo: typeof body; extra: Buffer };
    const s = seen as typeof body;
    expect(Buffer.isBuffer(s.key)).toBe(true);
    expect(Buffer.isBuffer(s.raw)).toBe(true);
    expect(Buffer.isBuffer(res.echo.key)).toBe(true);
    expect(Buffer.isBuffer(res.extra)).toBe(true);
    expect(res.echo.key.equals(body.key)).toBe(true);
    expect(Buffer.from(res.echo.raw).equals(Buffer.from(body.raw))).toBe(true);
    expect(res.echo.big.equals(body.big)).toBe(true);
    expect(res.echo.pos).toBe(body.pos);
    expect(res.echo.nested[0]!.v.length).toBe(0);
    expect([...res.extra]).toEqual([7, 8, 9]);
  });

  it('handler errors come back as REMOTE with message and code; notify is delivered', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    const notes: unknown[] = [];
    b.t.onRequest((from, type, body) => {
      if (type === 'gossip') {
        notes.push({ from, body });
        return;
      }
      if (type === 'sync-throw') throw Object.assign(new Error('bad thing'), { code: 'E_BAD' });
      return Promise.reject(new Error('async bad'));
    });
    const e1 = await rejection(a.t.request(b.ref, 'sync-throw', null, 2000));
    expect(e1.code).toBe('REMOTE');
    expect(e1.message).toBe('bad thing');
    expect(e1.remoteCode).toBe('E_BAD');
    const e2 = await rejection(a.t.request(b.ref, 'x', null, 2000));
    expect(e2).toMatchObject({ code: 'REMOTE', message: 'async bad' });
    a.t.notify(b.ref, 'gossip', { v: 1 });
    a.t.notify(b.ref, 'gossip', { v: 2 });
    for (let i = 0; i < 100 && notes.length < 2; i++) await sleep(10);
    expect(notes).toEqual([
      { from: 'a', body: { v: 1 } },
      { from: 'a', body: { v: 2 } },
    ]);
    // notify never throws, even with an unencodable body or to nowhere
    expect(() => a.t.notify(b.ref, 'gossip', { f: () => 1, s: Symbol('x') })).not.toThrow();
    expect(() => a.t.notify({ id: 'zz', address: '127.0.0.1:1' }, 'gossip', 1)).not.toThrow();
  });

  it('times out, and a late response is ignored', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    b.t.onRequest(async (_f, type) => {
      if (type === 'slow') await sleep(300);
      return type;
    });
    const t0 = Date.now();
    const e = await rejection(a.t.request(b.ref, 'slow', null, 100));
    expect(e.code).toBe('TIMEOUT');
    expect(Date.now() - t0).toBeLessThan(1000);
    await sleep(350); // the late response arrives and is dropped
    expect(await a.t.request(b.ref, 'fast', null, 2000)).toBe('fast');
  });

  it('fails fast with UNREACHABLE when nothing listens, and backs off', async () => {
    const a = await startNode('a');
    const dead = await startNode('dead');
    const address = dead.ref.address;
    await stopNode(dead);
    const ref = { id: 'dead', address };
    const t0 = Date.now();
    const e1 = await rejection(a.t.request(ref, 'x', null, 5000));
    expect(e1.code).toBe('UNREACHABLE');
    expect(Date.now() - t0).toBeLessThan(2000);
    const e2 = await rejection(a.t.request(ref, 'x', null, 5000)); // during backoff: immediate
    expect(e2.code).toBe('UNREACHABLE');
    expect(e2.message).toMatch(/retry in/);
    expect(a.events.some((ev) => ev.type === 'disconnected')).toBe(true);
  });

  it('peer restart: in-flight requests fail UNREACHABLE, then it reconnects', async () => {
    const a = await startNode('a', { backoffBaseMs: 20, backoffMaxMs: 200 });
    let b = await startNode('b');
    b.t.onRequest((_f, type) => (type === 'hang' ? new Promise(() => undefined) : 'b1'));
    expect(await a.t.request(b.ref, 'x', null, 2000)).toBe('b1');
    const hanging = rejection(a.t.request(b.ref, 'hang', null, 10_000));
    await sleep(50);
    const port = b.srv.port;
    await stopNode(b);
    const e = await hanging;
    expect(e.code).toBe('UNREACHABLE');
    b = await startNode('b', {}, port);
    b.t.onRequest(() => 'b2');
    expect(await eventually(() => a.t.request(b.ref, 'x', null, 1000))).toBe('b2');
    expect(a.events.filter((ev) => ev.type === 'connected').length).toBeGreaterThanOrEqual(2);
  });

  it('a restarted peer that connects in ends the backoff toward it at once', async () => {
    // A long backoff: without the early end, requests would fail for seconds.
    const a = await startNode('a', { backoffBaseMs: 5_000, backoffMaxMs: 5_000 });
    a.t.onRequest(() => 'a');
    let b = await startNode('b');
    b.t.onRequest(() => 'b1');
    expect(await a.t.request(b.ref, 'x', null, 2000)).toBe('b1');
    const port = b.srv.port;
    await stopNode(b);
    expect((await rejection(a.t.request(b.ref, 'x', null, 1000))).code).toBe('UNREACHABLE');
    expect((await rejection(a.t.request(b.ref, 'x', null, 1000))).message).toMatch(/retry in/);
    b = await startNode('b', {}, port);
    b.t.onRequest(() => 'b2');
    // b talks to a first (as a restarted node does when it gossips): a may retry b now.
    expect(await b.t.request(a.ref, 'x', null, 2000)).toBe('a');
    expect(await a.t.request(b.ref, 'x', null, 2000)).toBe('b2');
  });

  it('refuses a peer that is not the expected node or in another cluster', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    b.t.onRequest(() => 'ok');
    const e1 = await rejection(a.t.request({ id: 'c', address: b.ref.address }, 'x', null, 2000));
    expect(e1.code).toBe('UNREACHABLE');
    expect(e1.message).toMatch(/is node 'b'/);
    const other = new WsTransport({ nodeId: 'o', cluster: 'other-cluster', secrets: TEST_PEER_SECRETS });
    cleanups.push(() => other.close());
    const e2 = await rejection(other.request(b.ref, 'x', null, 2000));
    // Refused (close 1008 before the handshake), not merely unreachable: a joining node gives up on it (issue 11).
    expect(e2.code).toBe('REFUSED');
    expect(e2.message).toMatch(/refused \(1008: wrong cluster 'other-cluster'\)/);
    expect(e2.unsent).toBe(true);
    expect(b.events.some((ev) => ev.type === 'protocol-error' && /wrong cluster/.test(ev.reason))).toBe(true);
    expect(await a.t.request(b.ref, 'x', null, 2000)).toBe('ok');
  });

  it('closes connections that send garbage, and keeps serving others', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    b.t.onRequest((_f, _t, body) => body);
    expect(await a.t.request(b.ref, 'echo', 1, 2000)).toBe(1); // a's connection is open throughout

    // `handshake` cases run the whole (good) handshake first; `sealed` messages then carry a right envelope, so the frames inside are what is refused.
    const hello = oldHello; // the frames below are refused before a nonce would matter
    const cases: Array<{ name: string; frames: Array<Buffer | string>; handshake?: boolean; sealed?: boolean }> = [
      { name: 'garbage bytes', frames: [Buffer.from('\x00\xffnot msgpack at all\xc1')] },
      { name: 'msgpack of the wrong shape', frames: [packValue({ hello: true })] },
      { name: 'trailing bytes', frames: [Buffer.concat([hello(), Buffer.from([1])])] },
      { name: 'request before hello', frames: [encodeFrame({ kind: 'req', id: 1, type: 'echo', body: 1 })] },
      { name: 'wrong cluster', frames: [hello('another')] },
      { name: 'bad node id', frames: [packValue([0, PROTOCOL_VERSION, 'no spaces allowed', CLUSTER])] },
      { name: 'text frame', frames: ['hello'] },
      { name: 'second hello', frames: [hello()], handshake: true, sealed: true },
      { name: 'response from a client', frames: [encodeFrame({ kind: 'res', id: 1, ok: 1 })], handshake: true, sealed: true },
      { name: 'garbage after the handshake', frames: [Buffer.from([0xc1, 0xc1])], handshake: true, sealed: true },
      { name: 'a request without its envelope', frames: [encodeFrame({ kind: 'req', id: 1, type: 'echo', body: 1 })], handshake: true },
    ];
    for (const c of cases) {
      const raw = rawClient(b.ref.address);
      await raw.opened;
      if (c.handshake) await raw.handshake();
      c.frames.forEach((f) => {
        raw.ws.send(c.sealed && typeof f !== 'string' ? raw.seal(f) : f, { binary: typeof f !== 'string' });
      });
      const code = await raw.closed;
      expect(code, c.name).not.toBe(1000);
      expect(await a.t.request(b.ref, 'echo', c.name, 2000), c.name).toBe(c.name);
    }

    // raw TCP junk that is not even HTTP
    await new Promise<void>((resolve) => {
      const s = net.connect(b.srv.port, '127.0.0.1', () => {
        s.end('\x16\x03\x01 this is not http\r\n\r\n');
      });
      s.on('error', () => undefined);
      s.on('close', () => resolve());
      setTimeout(() => {
        s.destroy();
        resolve();
      }, 1000);
    });
    expect(await a.t.request(b.ref, 'echo', 'after tcp junk', 2000)).toBe('after tcp junk');
    // a's own connection was never disturbed
    expect(a.events.filter((ev) => ev.type === 'connected')).toHaveLength(1);
    expect(a.events.filter((ev) => ev.type === 'disconnected')).toHaveLength(0);
    expect(b.events.filter((ev) => ev.type === 'protocol-error').length).toBeGreaterThanOrEqual(cases.length);

    // a well-behaved raw client gets a hello back and answers to its requests
    const good = rawClient(b.ref.address);
    await good.handshake();
    good.ws.send(good.seal(encodeFrame({ kind: 'req', id: 5, type: 'echo', body: 'hi' })), { binary: true });
    for (let i = 0; i < 100 && good.messages.length < 2; i++) await sleep(10);
    expect(good.messages.length).toBe(2);
    expect(b.srv.endpoint.connections()).toBeGreaterThanOrEqual(2);
  });

  it('closes a connection that sends no hello in time', async () => {
    const b = await startNode('b', { helloTimeoutMs: 100 });
    const raw = rawClient(b.ref.address);
    await raw.opened;
    const code = await raw.closed;
    expect(code).toBe(1008);
  });

  it('closes on an oversize frame, then recovers', async () => {
    const a = await startNode('a', { backoffBaseMs: 20, backoffMaxMs: 100 });
    const b = await startNode('b', { maxPayloadLength: 64 * 1024 });
    b.t.onRequest((_f, _t, body) => (body as Buffer).length);
    expect(await a.t.request(b.ref, 'len', Buffer.alloc(1000), 2000)).toBe(1000);
    const e = await rejection(a.t.request(b.ref, 'len', Buffer.alloc(128 * 1024), 2000));
    expect(e.code).toBe('UNREACHABLE');
    expect(await eventually(() => a.t.request(b.ref, 'len', Buffer.alloc(10), 1000))).toBe(10);

    // and a raw client sending an oversize frame is closed, too
    const raw = rawClient(b.ref.address);
    await raw.handshake();
    raw.ws.send(raw.seal(encodeFrame({ kind: 'req', id: 1, type: 'len', body: Buffer.alloc(100 * 1024) })), { binary: true });
    expect(await raw.closed).not.toBe(1000);
  });

  it('fails fast with OVERLOADED when the connection is backed up', async () => {
    const a = await startNode('a', { maxBufferedBytes: 1024 });
    const b = await startNode('b');
    b.t.onRequest((_f, _t, body) => (Buffer.isBuffer(body) ? body.length : body));
    expect(await a.t.request(b.ref, 'x', 1, 2000)).toBe(1); // connection open, nothing buffered
    const big = a.t.request(b.ref, 'x', Buffer.alloc(24 * 1024 * 1024, 1), 20_000);
    const e = await rejection(a.t.request(b.ref, 'x', 2, 2000));
    expect(e.code).toBe('OVERLOADED');
    expect(await big).toBe(24 * 1024 * 1024);
    expect(await eventually(() => a.t.request(b.ref, 'x', 3, 2000))).toBe(3);

    // frames queued while connecting count too
    const c = await startNode('c');
    c.t.onRequest(() => 'c');
    const first = a.t.request(c.ref, 'x', Buffer.alloc(4096), 5000);
    const e2 = await rejection(a.t.request(c.ref, 'x', 1, 2000));
    expect(e2.code).toBe('OVERLOADED');
    expect(await first).toBe('c');
  });

  it('answers OVERLOADED when too many requests are in flight on a connection', async () => {
    const a = await startNode('a');
    const b = await startNode('b', { maxInflightPerConnection: 2 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    b.t.onRequest(async () => {
      await gate;
      return 'done';
    });
    const p1 = a.t.request(b.ref, 'x', null, 5000);
    const p2 = a.t.request(b.ref, 'x', null, 5000);
    const e = await rejection(a.t.request(b.ref, 'x', null, 5000));
    expect(e.code).toBe('OVERLOADED');
    release();
    expect(await Promise.all([p1, p2])).toEqual(['done', 'done']);
  });

  it('close() fails pending requests with CLOSED and refuses new ones', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    b.t.onRequest(() => new Promise(() => undefined));
    const p = rejection(a.t.request(b.ref, 'hang', null, 10_000));
    await sleep(50);
    await a.t.close();
    expect((await p).code).toBe('CLOSED');
    expect((await rejection(a.t.request(b.ref, 'x', null, 1000))).code).toBe('CLOSED');
    expect(() => a.t.notify(b.ref, 'x', null)).not.toThrow();
    // b's inbound side saw the connection go
    for (let i = 0; i < 100 && b.srv.endpoint.connections() > 0; i++) await sleep(10);
    expect(b.srv.endpoint.connections()).toBe(0);
  });

  it('rejects unencodable bodies and responses', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    b.t.onRequest(() => ({ bad: 10n ** 30n }));
    await expect(a.t.request(b.ref, 'x', { bad: 10n ** 30n }, 1000)).rejects.toThrow();
    const e = await rejection(a.t.request(b.ref, 'x', null, 2000));
    expect(e.code).toBe('REMOTE');
    expect(e.message).toMatch(/unencodable/);
  });

  describe('coalesced frames', () => {
    it('requests made in one turn travel in one message; the responses come back coalesced and matched', async () => {
      // The raw peer answers each message's requests with one message, in reverse order.
      const srv = await rawPeerServer((send, _m, frames) => {
        const answers = frames.map((f) => encodeFrame({ kind: 'res', id: (f as { id: number }).id, ok: (f as { body: unknown }).body }));
        send(Buffer.concat(answers.reverse()));
      });
      const a = await startNode('a');
      expect(await a.t.request(srv.ref, 'echo', 'first', 2000)).toBe('first');
      expect(srv.messages).toHaveLength(2); // hello alone, then the request
      const before = a.t.stats();
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => a.t.request(srv.ref, 'echo', { i }, 5000)));
      expect(results).toEqual(Array.from({ length: 100 }, (_, i) => ({ i })));
      const batch = srv.messages.slice(2);
      expect(batch).toHaveLength(1);
      expect(framesOf(batch[0]!).map((f) => (f as { body: { i: number } }).body.i)).toEqual(Array.from({ length: 100 }, (_, i) => i));
      const after = a.t.stats();
      expect(after.messagesSent - before.messagesSent).toBe(1);
      expect(after.framesSent - before.framesSent).toBe(100);
      expect(after.messagesReceived - before.messagesReceived).toBe(1);
      expect(after.framesReceived - before.framesReceived).toBe(100);
    });

    it('frames queued before the handshake follow the hello, which travels alone', async () => {
      const srv = await rawPeerServer((send, _m, frames) => {
        send(Buffer.concat(frames.map((f) => encodeFrame({ kind: 'res', id: (f as { id: number }).id, ok: null }))));
      });
      const a = await startNode('a');
      await Promise.all(Array.from({ length: 30 }, (_, i) => a.t.request(srv.ref, 'x', i, 5000)));
      a.t.notify(srv.ref, 'gossip', 'after');
      await until(() => srv.messages.length >= 3, 'the note');
      expect(framesOf(srv.messages[0]!)).toMatchObject([{ kind: 'hello', version: PROTOCOL_VERSION, nodeId: 'a', cluster: CLUSTER }]);
      expect(framesOf(srv.messages[1]!).map((f) => (f as { body: number }).body)).toEqual(Array.from({ length: 30 }, (_, i) => i));
      expect(framesOf(srv.messages[2]!)).toEqual([{ kind: 'note', type: 'gossip', body: 'after' }]);
    });

    it('keeps messages within the caps and frames in order', async () => {
      const srv = await rawPeerServer(() => undefined);
      const a = await startNode('a', { maxCoalescedBytes: 1000, maxCoalescedFrames: 10 });
      a.t.notify(srv.ref, 'n', -1);
      await until(() => srv.messages.length >= 2, 'the first note');
      for (let i = 0; i < 100; i++) a.t.notify(srv.ref, 'n', i === 50 ? Buffer.alloc(5000, 1) : i);
      await until(() => srv.messages.slice(2).flatMap(framesOf).length >= 100, 'all notes');
      const batches = srv.messages.slice(2);
      const seen: unknown[] = [];
      for (const m of batches) {
        const frames = framesOf(m);
        expect(frames.length).toBeLessThanOrEqual(10);
        if (frames.length > 1) expect(m.length).toBeLessThanOrEqual(1000);
        seen.push(...frames.map((f) => (f as { body: unknown }).body));
      }
      expect(batches.length).toBeLessThan(100);
      expect(seen.map((b) => (Buffer.isBuffer(b) ? 'big' : b))).toEqual(Array.from({ length: 100 }, (_, i) => (i === 50 ? 'big' : i)));
    });

    it('the server answers a message of requests with a message of responses', async () => {
      const b = await startNode('b');
      b.t.onRequest((_f, _t, body) => ({ twice: (body as number) * 2 }));
      const raw = rawClient(b.ref.address);
      await raw.handshake();
      expect(framesOf(raw.messages[0]!)).toMatchObject([{ kind: 'hello', version: PROTOCOL_VERSION, nodeId: 'b', cluster: CLUSTER }]);
      const reqs = Array.from({ length: 20 }, (_, i) => encodeFrame({ kind: 'req', id: 100 + i, type: 'x', body: i }));
      raw.ws.send(raw.seal(Buffer.concat(reqs)), { binary: true });
      await until(() => raw.messages.slice(1).flatMap(framesOf).length >= 20, 'responses');
      expect(raw.messages).toHaveLength(2);
      expect(framesOf(raw.messages[1]!)).toEqual(Array.from({ length: 20 }, (_, i) => ({ kind: 'res', id: 100 + i, ok: { twice: 2 * i } })));
      // received: hello, auth, the requests; sent: hello, the responses
      expect(b.t.stats()).toMatchObject({ messagesReceived: 3, framesReceived: 22, messagesSent: 2, framesSent: 21 });
      // bytes: the plain hello as it is, the sealed responses with their envelope
      expect(b.t.stats().bytesSent).toBe(raw.messages[0]!.length + ENVELOPE_BYTES + raw.messages[1]!.length);
    });

    it('between two nodes, many requests in flight share messages and each gets its own answer', async () => {
      const a = await startNode('a');
      const b = await startNode('b');
      b.t.onRequest(async (_f, type, body) => {
        const i = body as number;
        if (i % 3 === 0) await sleep(i % 7);
        return `${type}:${i}`;
      });
      const results = await Promise.all(Array.from({ length: 300 }, (_, i) => a.t.request(b.ref, `t${i % 5}`, i, 5000)));
      expect(results).toEqual(Array.from({ length: 300 }, (_, i) => `t${i % 5}:${i}`));
      const sa = a.t.stats();
      const sb = b.t.stats();
      expect(sa.framesSent).toBe(302); // hello + auth + 300 requests
      expect(sa.messagesSent).toBeLessThan(sa.framesSent);
      expect(sb.framesSent).toBe(301); // hello + 300 responses
      expect(sb.messagesSent).toBeLessThan(sb.framesSent);
      expect(sb).toMatchObject({ framesReceived: sa.framesSent, messagesReceived: sa.messagesSent, bytesReceived: sa.bytesSent });
      expect(sa.bytesReceived).toBe(sb.bytesSent);
    });

    it('the frames of one connection keep their order across turns', async () => {
      const a = await startNode('a', { maxCoalescedFrames: 7 });
      const b = await startNode('b');
      const got: number[] = [];
      b.t.onRequest((_f, _t, body) => {
        got.push(body as number);
        return null;
      });
      let n = 0;
      const requests: Array<Promise<unknown>> = [];
      for (let turn = 0; turn < 20; turn++) {
        for (let i = 0; i < 25; i++) {
          if (i % 2 === 0) a.t.notify(b.ref, 'note', n++);
          else requests.push(a.t.request(b.ref, 'req', n++, 5000));
        }
        await new Promise<void>((r) => setImmediate(r));
      }
      await Promise.all(requests);
      await until(() => got.length >= n, 'all frames');
      expect(got).toEqual(Array.from({ length: n }, (_, i) => i));
    });

    it('a message with a valid frame followed by garbage closes the connection, acting on none of it', async () => {
      // inbound: a raw client
      const b = await startNode('b');
      let handled = 0;
      b.t.onRequest(() => {
        handled += 1;
        return 'ok';
      });
      const raw = rawClient(b.ref.address);
      await raw.handshake();
      raw.ws.send(raw.seal(Buffer.concat([encodeFrame({ kind: 'req', id: 1, type: 'x', body: null }), Buffer.from('garbage!!')])), {
        binary: true,
      });
      expect(await raw.closed).toBe(1002);
      expect(handled).toBe(0);
      expect(b.events.some((e) => e.type === 'protocol-error' && e.side === 'inbound')).toBe(true);

      // outbound: a raw server answering with a valid response then garbage
      const srv = await rawPeerServer((send, _m, frames) => {
        send(Buffer.concat([encodeFrame({ kind: 'res', id: (frames[0] as { id: number }).id, ok: 1 }), Buffer.from([0xc1, 0x00])]));
      });
      const a = await startNode('a');
      const e = await rejection(a.t.request(srv.ref, 'x', null, 2000));
      expect(e.code).toBe('UNREACHABLE');
      expect(e.message).toMatch(/protocol error/);
      expect(a.events.some((ev) => ev.type === 'protocol-error' && ev.side === 'outbound')).toBe(true);
    });

    it('hello must travel alone, and a peer of another protocol version is refused with a clear reason', async () => {
      const b = await startNode('b');
      b.t.onRequest(() => 'ok');
      const raw = rawClient(b.ref.address);
      await raw.opened;
      raw.ws.send(Buffer.concat([raw.hello(), encodeFrame({ kind: 'req', id: 1, type: 'x', body: null })]), { binary: true });
      expect(await raw.closed).toBe(1002);
      expect(b.events.some((e) => e.type === 'protocol-error' && /hello must come alone/.test(e.reason))).toBe(true);

      const old = rawClient(b.ref.address);
      await old.opened;
      old.ws.send(oldHello(CLUSTER, 'old', 1), { binary: true });
      expect(await old.closed).toBe(1002);
      expect(b.events.some((e) => e.type === 'protocol-error' && e.reason === `protocol version 1, expected ${PROTOCOL_VERSION}`)).toBe(true);

      // and our client, reaching a server of version 1
      const srv = await rawPeerServer(() => undefined, oldHello(CLUSTER, 'rawsrv', 1));
      const a = await startNode('a');
      const e = await rejection(a.t.request(srv.ref, 'x', null, 2000));
      expect(e.code).toBe('UNREACHABLE');
      expect(e.message).toMatch(`protocol version 1, expected ${PROTOCOL_VERSION}`);
    });

    it('queued, unsent requests count toward maxBufferedBytes', async () => {
      const a = await startNode('a', { maxBufferedBytes: 1000 });
      const b = await startNode('b');
      b.t.onRequest((_f, _t, body) => (Buffer.isBuffer(body) ? body.length : body));
      expect(await a.t.request(b.ref, 'x', 1, 2000)).toBe(1); // open, nothing buffered
      const big = a.t.request(b.ref, 'x', Buffer.alloc(2000), 2000); // queued for the end of the turn
      expect(a.t.peers()[0]!.bufferedBytes).toBeGreaterThan(2000);
      const e = await rejection(a.t.request(b.ref, 'x', 2, 2000));
      expect(e.code).toBe('OVERLOADED');
      expect(await big).toBe(2000);
      expect(await a.t.request(b.ref, 'x', 3, 2000)).toBe(3);
    });

    it('queued, unsent responses count toward maxResponseBufferedBytes', async () => {
      const a = await startNode('a');
      const b = await startNode('b', { maxResponseBufferedBytes: 1000 });
      b.t.onRequest((_f, _t, body) => Buffer.alloc(body as number, 1));
      expect(((await a.t.request(b.ref, 'x', 600, 2000)) as Buffer).length).toBe(600); // one response fits
      // five in one turn: the third would queue 1200 bytes
      const results = await Promise.allSettled(Array.from({ length: 5 }, () => a.t.request(b.ref, 'x', 600, 2000)));
      expect(results.every((r) => r.status === 'rejected' && (r.reason as TransportError).code === 'UNREACHABLE')).toBe(true);
      expect(b.events.some((e) => e.type === 'protocol-error' && e.reason === 'response backpressure limit')).toBe(true);
    });
  });

  describe('protocol versions (a rolling upgrade)', () => {
    const b0 = Buffer.from('bk');
    const k0 = Buffer.from('key');
    const rec = Buffer.from('record bytes');

    it('version 5 answers a hot kv.get request with a hot reply, the same reply the node would get as msgpack', async () => {
      const b = await startNode('b');
      b.t.onRequest((_f, type, body) => (type === 'kv.get' ? { record: Buffer.concat([(body as { k: Buffer }).k, rec]) } : null));
      const raw = rawClient(b.ref.address);
      await raw.handshake();
      expect(framesOf(raw.messages[0]!)).toMatchObject([{ kind: 'hello', version: PROTOCOL_VERSION }]);
      raw.ws.send(raw.seal(encodeRequest({ kind: 'req', id: 9, type: 'kv.get', body: { b: b0, k: k0, ring: 3 } }, PROTOCOL_VERSION)), { binary: true });
      await until(() => raw.messages.length >= 2, 'the reply');
      expect(raw.messages[1]![0]).toBe(HOT_MARKER);
      expect(framesOf(raw.messages[1]!)).toEqual([{ kind: 'res', id: 9, ok: { record: Buffer.concat([k0, rec]) } }]);
    });

    it('a node of version 5 and one that speaks only 4 talk both ways: the newer offers 4 once the older refuses 5', async () => {
      const old = await startNode('old', { maxProtocolVersion: MIN_PROTOCOL_VERSION });
      const cur = await startNode('cur');
      const serve = (_f: string, type: string, body: unknown) => (type === 'kv.get' ? { record: (body as { k: Buffer }).k } : { durable: false });
      old.t.onRequest(serve);
      cur.t.onRequest(serve);
      // new -> old: refused at version 5, answered at 4.
      expect(await cur.t.request(old.ref, 'kv.get', { b: b0, k: k0 }, 5000)).toEqual({ record: k0 });
      expect(old.t.stats().authFailures.inbound.version).toBe(1);
      expect(await cur.t.request(old.ref, 'kv.merge', { b: b0, k: k0, record: rec }, 5000)).toEqual({ durable: false });
      // old -> new: the newer answers a version-4 hello in 4.
      expect(await old.t.request(cur.ref, 'kv.get', { b: b0, k: k0 }, 5000)).toEqual({ record: k0 });
      expect(cur.t.stats().authFailures.inbound.version).toBe(0);
      expect(cur.events.filter((e) => e.type === 'protocol-error')).toEqual([]);
      expect(old.events.filter((e) => e.type === 'protocol-error' && e.side === 'outbound')).toEqual([]);
    });

    it('between two nodes of version 5, hot requests and replies carry what msgpack would', async () => {
      const a = await startNode('a');
      const b = await startNode('b');
      b.t.onRequest((_f, type, body) => (type === 'kv.get' ? { record: null, reaped: (body as { k: Buffer }).k } : { durable: true, hinted: true }));
      // The first request goes before the handshake (msgpack); those after it, on the open connection, hot.
      for (let i = 0; i < 3; i++) {
        expect(await a.t.request(b.ref, 'kv.get', { b: b0, k: k0, hints: true }, 5000)).toEqual({ record: null, reaped: k0 });
        expect(await a.t.request(b.ref, 'kv.merge', { b: b0, k: k0, record: rec, hint: 'n3', lww: false }, 5000)).toEqual({ durable: true, hinted: true });
      }
      // A hot reply is smaller than its msgpack form: the bytes counted show the hot path was taken.
      const msgpackReply = encodeFrame({ kind: 'res', id: 6, ok: { durable: true, hinted: true } }).length;
      const hotReply = encodeReply({ kind: 'res', id: 6, ok: { durable: true, hinted: true } }, 'kv.merge', PROTOCOL_VERSION).length;
      expect(hotReply).toBeLessThan(msgpackReply);
    });
  });
});
