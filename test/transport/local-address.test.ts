// Outbound peer connections leave from the node's own address: on a
// multi-homed host (here: several loopback addresses) a peer sees the node's
// listen address as the source, and per-address firewall rules (the Jepsen
// partition nemesis) can cut one pair of nodes. Real sockets on 127.0.0.0/8.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { startServer } from '../../src/server/index.js';
import { WsTransport, listenPeerServer } from '../../src/transport/index.js';
import { tempDir } from '../helpers/tmp.js';
import { TEST_PEER_SECRETS } from '../helpers/secret.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A WebSocket server on `host` that records the source address of every connection. */
async function recordingPeer(host: string): Promise<{ address: string; sources: string[] }> {
  const sources: string[] = [];
  const http: Server = createServer();
  const wss = new WebSocketServer({ server: http, path: '/peer' });
  wss.on('connection', (ws, req) => {
    sources.push(req.socket.remoteAddress ?? '?');
    ws.close();
  });
  await new Promise<void>((resolve) => http.listen(0, host, resolve));
  cleanups.push(() => new Promise<void>((resolve) => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    http.close(() => resolve());
  }));
  return { address: `${host}:${(http.address() as AddressInfo).port}`, sources };
}

async function until(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

describe('outbound peer connections: source address', () => {
  it('WsTransport with localAddress connects from it, and requests work', async () => {
    const peer = await recordingPeer('127.0.0.3');
    const a = new WsTransport({ nodeId: 'a', cluster: 'la', secrets: TEST_PEER_SECRETS, localAddress: '127.0.0.2' });
    cleanups.push(() => a.close());
    await a.request({ id: 'p', address: peer.address }, 'ping', null, 2_000).catch(() => undefined);
    await until(() => peer.sources.length > 0, 5_000);
    expect(peer.sources[0]).toBe('127.0.0.2');

    // A full round trip between two transports on their own addresses.
    const b = new WsTransport({ nodeId: 'b', cluster: 'la', secrets: TEST_PEER_SECRETS, localAddress: '127.0.0.3' });
    b.onRequest((from, type, body) => ({ from, type, body }));
    const srv = await listenPeerServer(b, { host: '127.0.0.3' });
    cleanups.push(async () => {
      await srv.close();
      await b.close();
    });
    expect(await a.request({ id: 'b', address: srv.address }, 'echo', 'hi', 2_000)).toEqual({ from: 'a', type: 'echo', body: 'hi' });
  });

  it('a node listening on 127.0.0.2 reaches its seed from 127.0.0.2', async () => {
    const seed = await recordingPeer('127.0.0.3');
    const dir = tempDir('ringkv-localaddr-');
    cleanups.push(() => dir.remove());
    // Joining through a seed that closes every connection fails; what matters is where it connected from.
    const started = startServer({
      nodeId: 'n1',
      host: '127.0.0.2',
      port: 0,
      peerSecrets: TEST_PEER_SECRETS,
      dataDir: dir.path,
      seeds: [seed.address],
      logger: pino({ level: 'silent' }),
      node: { gossipIntervalMs: 50 },
    });
    const server = await started;
    cleanups.push(() => server.close(1_000));
    await until(() => seed.sources.length > 0, 10_000);
    expect(seed.sources.length).toBeGreaterThan(0);
    expect(new Set(seed.sources)).toEqual(new Set(['127.0.0.2']));
  });
});
