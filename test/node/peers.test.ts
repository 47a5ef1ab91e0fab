// Peers and failure detection (src/node/peers.ts) on a scripted transport:
// which request outcomes make a peer suspected, and what clears it.
import { describe, expect, it } from 'vitest';
import { Peers } from '../../src/node/peers.js';
import { TransportError } from '../../src/transport/index.js';
import type { Clock, Transport } from '../../src/transport/types.js';

function setup() {
  let now = 10_000;
  const timers: Array<{ at: number; fn: () => void }> = [];
  const clock = { now: () => now, setTimer: (ms: number, fn: () => void) => (timers.push({ at: now + ms, fn }), { cancel() {} }) } as unknown as Clock;
  let outcome: 'ok' | TransportError = 'ok';
  const sent: string[] = [];
  const transport = {
    request: async (peer: { id: string; address: string }, type: string) => {
      sent.push(`${peer.id}@${peer.address} ${type}`);
      if (outcome !== 'ok') throw outcome;
      return { pong: true };
    },
  } as unknown as Transport;
  const members: Record<string, string> = { n2: '127.0.0.1:2', n3: '127.0.0.1:3' };
  const peers = new Peers({ id: 'n1', transport, clock, addressOf: (n) => members[n] }, { threshold: 8, firstHeartbeatEstimateMs: 1_000 });
  const runTimers = () => timers.splice(0).forEach((t) => t.fn());
  return { peers, sent, set: (o: typeof outcome) => (outcome = o), advance: (ms: number) => (now += ms), runTimers, now: () => now };
}

describe('Peers', () => {
  it('a refused connection convicts at once; any sign of life (a reply, an error reply, an inbound request) clears it', async () => {
    const p = setup();
    expect(await p.peers.request('n2', 'ping', {}, 100)).toEqual({ pong: true });
    expect(p.sent).toEqual(['n2@127.0.0.1:2 ping']);
    expect(p.peers.isSuspect('n2', p.now())).toBe(false);
    p.set(new TransportError('UNREACHABLE', 'refused', 'n2'));
    await expect(p.peers.request('n2', 'ping', {}, 100)).rejects.toMatchObject({ code: 'UNREACHABLE' });
    expect(p.peers.isSuspect('n2', p.now())).toBe(true);
    expect(p.peers.health('n2', p.now()).health).toBe('suspect');
    p.set(new TransportError('REMOTE', 'it said no', 'n2'));
    await expect(p.peers.request('n2', 'ping', {}, 100)).rejects.toMatchObject({ code: 'REMOTE' });
    expect(p.peers.isSuspect('n2', p.now())).toBe(false);
    p.set(new TransportError('UNREACHABLE', 'refused', 'n2'));
    await expect(p.peers.request('n2', 'ping', {}, 100)).rejects.toThrow();
    p.peers.heardFrom('n2');
    expect(p.peers.isSuspect('n2', p.now())).toBe(false);
  });

  it('a timeout convicts only after the I/O queued behind it, and not if the peer was heard from since the request went out', async () => {
    const p = setup();
    await p.peers.request('n3', 'ping', {}, 100);
    p.advance(100);
    p.set(new TransportError('TIMEOUT', 'slow', 'n3'));
    await expect(p.peers.request('n3', 'ping', {}, 100)).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(p.peers.isSuspect('n3', p.now())).toBe(false); // judged on a 0 ms timer
    p.peers.heardFrom('n3'); // its reply was queued behind the timeout
    p.runTimers();
    expect(p.peers.isSuspect('n3', p.now())).toBe(false);
    p.advance(100);
    await expect(p.peers.request('n3', 'ping', {}, 100)).rejects.toMatchObject({ code: 'TIMEOUT' });
    p.runTimers();
    expect(p.peers.isSuspect('n3', p.now())).toBe(true);
  });

  it('a probe that times out convicts nobody (phi judges silence); a refused probe convicts at once; a data request that times out still does (issue 9)', async () => {
    const p = setup();
    await p.peers.request('n3', 'ping', {}, 100, { probe: true });
    p.advance(100);
    p.set(new TransportError('TIMEOUT', 'slow', 'n3'));
    await expect(p.peers.request('n3', 'ping', {}, 100, { probe: true })).rejects.toMatchObject({ code: 'TIMEOUT' });
    p.runTimers();
    expect(p.peers.isSuspect('n3', p.now())).toBe(false);
    await expect(p.peers.request('n3', 'kv.merge', {}, 100)).rejects.toMatchObject({ code: 'TIMEOUT' });
    p.runTimers();
    expect(p.peers.isSuspect('n3', p.now())).toBe(true);
    p.peers.heardFrom('n3');
    p.set(new TransportError('UNREACHABLE', 'refused', 'n3'));
    await expect(p.peers.request('n3', 'ping', {}, 100, { probe: true })).rejects.toMatchObject({ code: 'UNREACHABLE' });
    expect(p.peers.isSuspect('n3', p.now())).toBe(true);
  });

  it("a stall of this node's event loop before its first timer tick convicts no one (issue 9: ticks started a tick late)", async () => {
    const p = setup();
    await p.peers.request('n2', 'ping', {}, 100);
    p.peers.startLocalTicks(500, () => undefined);
    // The loop stalls 5 s before the first tick's timer could run: no timer, no arrival.
    p.advance(5_000);
    expect(p.peers.isSuspect('n2', p.now())).toBe(false);
    expect(p.peers.detector.localPauses()).toEqual({ count: 1, lastMs: 5_000 });
    // A peer that stays silent once the loop runs again is still convicted.
    for (let t = 0; t < 20 && !p.peers.isSuspect('n2', p.now()); t++) {
      p.advance(500);
      p.runTimers();
    }
    expect(p.peers.isSuspect('n2', p.now())).toBe(true);
  });

  it('never suspects itself, and refuses a request to a node that is not a member (INTERNAL, nothing sent)', async () => {
    const p = setup();
    expect(p.peers.isSuspect('n1', p.now())).toBe(false);
    expect(p.peers.health('n1', p.now())).toEqual({ health: 'self', phi: 0, lastHeardMsAgo: 0 });
    await expect(p.peers.request('ghost', 'ping', {}, 100)).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(p.sent).toEqual([]);
  });
});
