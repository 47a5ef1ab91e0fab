// What peer authentication costs (issue 11): the time from a fresh
// connection to the answer of its first request (TCP + WebSocket upgrade +
// hello/auth exchange + one ping), and the round trip of requests on an
// open connection, between two WsTransports on 127.0.0.1.
//   npx tsx bench/peer-handshake.ts [connections] [requests]
import { performance } from 'node:perf_hooks';
import { PeerSecret, WsTransport, listenPeerServer } from '../src/transport/index.js';

const connections = Number(process.argv[2] ?? 300);
const requests = Number(process.argv[3] ?? 5000);
const secrets = { current: PeerSecret.from('bench secret, 32 bytes or so, fine'), previous: PeerSecret.from('the previous bench secret, also fine') };

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

const server = new WsTransport({ nodeId: 'srv', cluster: 'bench', secrets });
server.onRequest(() => 'pong');
const srv = await listenPeerServer(server);
const ref = { id: 'srv', address: srv.address };

const connect: number[] = [];
for (let i = 0; i < connections; i++) {
  // A new transport per sample: a fresh connection and handshake each time.
  const client = new WsTransport({ nodeId: `c${i}`, cluster: 'bench', secrets: { current: secrets.previous } });
  const t0 = performance.now();
  await client.request(ref, 'ping', null, 5_000);
  connect.push(performance.now() - t0);
  await client.close();
}

const client = new WsTransport({ nodeId: 'c', cluster: 'bench', secrets });
await client.request(ref, 'ping', null, 5_000);
const rtt: number[] = [];
for (let i = 0; i < requests; i++) {
  const t0 = performance.now();
  await client.request(ref, 'ping', i, 5_000);
  rtt.push(performance.now() - t0);
}
await client.close();
await srv.close();
await server.close();

const fmt = (xs: number[]) => `p50 ${quantile(xs, 0.5).toFixed(3)} ms, p99 ${quantile(xs, 0.99).toFixed(3)} ms`;
console.log(`fresh connection to first answer (${connections}, client holding the server's previous secret): ${fmt(connect)}`);
console.log(`request round trip on an open connection (${requests}): ${fmt(rtt)}`);
