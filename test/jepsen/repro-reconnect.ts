// Reproduction (availability, not safety): after a killed node restarts and
// answers /status as joined, the other nodes keep failing their requests to it
// fast (UNREACHABLE inside the peer transport) until their reconnect backoff
// (src/transport/ws-transport.ts: up to backoffMaxMs = 2 s, jittered) runs
// out, although the restarted node is already talking to them. A write with
// w=3 through n1 fails with QUORUM_FAILED meanwhile; in the Jepsen run, a
// second fault inside that window leaves a 3-node cluster without a quorum.
//   npx tsx test/jepsen/repro-reconnect.ts
import { RingkvClient, RingkvError } from '../../src/client/index.js';
import { Cluster, sleep } from './harness.js';
const c = await Cluster.start({ nodes: 3 });
const n1 = new RingkvClient({ nodes: [c.addresses[0]!], timeoutMs: 5000, token: c.token });
for (const downMs of [500, 1500, 3000, 3000, 2000]) {
  await c.kill(2);
  // traffic while n3 is down, so n1's connection to n3 fails and backs off
  const until = Date.now() + downMs;
  while (Date.now() < until) { await n1.put('b', `d${Date.now()}`, 'x', { w: 2 }).catch(() => {}); await sleep(20); }
  await c.restart(2);
  const up = Date.now();
  let firstOk = -1; let fails = 0; let last = '';
  while (Date.now() - up < 5000) {
    try { await n1.put('b', `u${Date.now()}-${fails}`, 'x', { w: 3, timeoutMs: 1000 }); firstOk = Date.now() - up; break; }
    catch (e) { fails++; last = `${(e as RingkvError).code} ${JSON.stringify((e as RingkvError).body)}`; }
    await sleep(20);
  }
  console.log(`n3 down ${downMs} ms: after /status joined, w=3 through n1 first succeeded after ${firstOk} ms (${fails} failures, last: ${last})`);
  await sleep(3000);
}
await c.close();
