// Run by large-send.test.ts inside a network namespace of its own (unshare
// -rn), whose loopback it sets to MTU 1500 as on a real network. b answers
// requests with 16-116 KiB replies after a short delay; a asks through the
// proxy, which blocks (reads nothing, so b's kernel send buffer fills) and
// passes by turns. Prints one JSON line: what came back, and every protocol
// error. Bounded: stops at the first protocol error, after `total`
// requests, after `maxRounds` rounds, or after `durationMs`.
import { execFileSync } from 'node:child_process';
import { TransportError, WsTransport, listenPeerServer } from '../../src/transport/index.js';
import type { TransportEvent } from '../../src/transport/index.js';
import { startWsProxy } from '../helpers/ws-proxy.js';
import { seededRandom } from '../helpers/random.js';
import { TEST_PEER_SECRETS } from '../helpers/secret.js';

const durationMs = Number(process.argv[2] ?? 10_000);
const total = Number(process.argv[3] ?? 4000);
const maxRounds = Number(process.argv[4] ?? Infinity);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

execFileSync('ip', ['link', 'set', 'lo', 'mtu', '1500', 'up']);

const reasons: string[] = [];
const onEvent = (e: TransportEvent): void => {
  if (e.type === 'protocol-error') reasons.push(`${e.side}: ${e.reason}`);
};
const b = new WsTransport({ nodeId: 'b', cluster: 'large-send', secrets: TEST_PEER_SECRETS, onEvent });
b.onRequest(async (_from, _type, body) => {
  const { i, size, delayMs } = body as { i: number; size: number; delayMs: number };
  await sleep(delayMs);
  return { i, pad: Buffer.alloc(size, i & 0xff) };
});
const srv = await listenPeerServer(b);
const proxy = await startWsProxy(srv.port);
const a = new WsTransport({ nodeId: 'a', cluster: 'large-send', secrets: TEST_PEER_SECRETS, random: () => 0.5, backoffBaseMs: 5, backoffMaxMs: 40, onEvent });
const ref = { id: 'b', address: proxy.address };
const rand = seededRandom(1662);
const deadline = Date.now() + durationMs;
const done = () => reasons.length > 0 || rounds >= maxRounds || Date.now() >= deadline;

let ok = 0;
let failed = 0;
let rounds = 0;
const wrong: number[] = [];
let next = 0;
const ask = async (i: number, size: number, delayMs: number): Promise<void> => {
  try {
    const r = (await a.request(ref, 'big', { i, size, delayMs }, 5000)) as { i: number; pad: Buffer };
    if (r.i !== i || !Buffer.isBuffer(r.pad) || !r.pad.equals(Buffer.alloc(size, i & 0xff))) wrong.push(i);
    else ok += 1;
  } catch (e) {
    if (!(e instanceof TransportError)) throw e;
    failed += 1;
  }
};
// Each round on a new connection: its kernel send buffer starts small, as after every reconnect in a fault run.
while (next < total && !done()) {
  rounds += 1;
  proxy.cut();
  for (let k = 0; k < 100; k++) {
    try {
      await a.request(ref, 'big', { i: -1, size: 1, delayMs: 0 }, 2000);
      break;
    } catch {
      await sleep(10);
    }
  }
  // The requests reach b at once; b's replies go out while the proxy reads nothing, then it passes again.
  const asked: Array<Promise<void>> = [];
  for (let k = 0; k < 12 && next < total; k++) asked.push(ask(next++, 16 * 1024 + Math.floor(rand() * 100_000), 5 + Math.floor(rand() * 40)));
  await sleep(2);
  proxy.mode = 'block';
  await sleep(20 + Math.floor(rand() * 40));
  proxy.mode = 'pass';
  await Promise.all(asked);
}
const protocolErrors = a.stats().protocolErrors + b.stats().protocolErrors;
await a.close();
await proxy.close();
await srv.close();
await b.close();
console.log(JSON.stringify({ rounds, requests: next, ok, failed, wrong, protocolErrors, reasons }));
