// The peer message/frame counters a node exports, over real sockets on 127.0.0.1.
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { registerPeerMetrics } from '../../src/server/peer-metrics.js';
import { WsTransport, listenPeerServer } from '../../src/transport/index.js';
import { TEST_PEER_SECRETS } from '../helpers/secret.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function start(id: string): Promise<{ t: WsTransport; address: string }> {
  const t = new WsTransport({ nodeId: id, cluster: 'm', secrets: TEST_PEER_SECRETS });
  const srv = await listenPeerServer(t);
  cleanups.push(async () => {
    await srv.close();
    await t.close();
  });
  return { t, address: srv.address };
}

async function counts(registry: Registry, name: string): Promise<Record<string, number>> {
  const m = await registry.getSingleMetric(name)!.get();
  return Object.fromEntries(m.values.map((v) => [String(v.labels.direction), v.value]));
}

describe('peer metrics', () => {
  it('export messages and frames by direction; frames outnumber messages when requests share a turn', async () => {
    const a = await start('a');
    const b = await start('b');
    b.t.onRequest((_f, _t, body) => body);
    const registry = new Registry();
    registerPeerMetrics(registry, () => a.t.stats());
    registerPeerMetrics(registry, () => a.t.stats()); // a second call adds nothing
    await Promise.all(Array.from({ length: 50 }, (_, i) => a.t.request({ id: 'b', address: b.address }, 'x', i, 5000)));
    const messages = await counts(registry, 'ringkv_peer_messages_total');
    const frames = await counts(registry, 'ringkv_peer_frames_total');
    expect(frames).toEqual({ sent: 52, received: 51 }); // hello + 50 each way, and a's auth
    expect(messages.sent).toBeLessThan(frames.sent!);
    expect(messages.received).toBeLessThan(frames.received!);
    expect(await registry.metrics()).toMatch(/ringkv_peer_frames_total\{direction="sent"\} 52/);
  });
});
