// Prometheus counters for the peer transport's messages and frames, read from
// WsTransport.stats() at scrape time. Frames per message (rate of frames over
// rate of messages) shows how well peer frames coalesce under load.
import { Counter } from 'prom-client';
import type { Registry } from 'prom-client';
import type { TransportStats } from '../transport/ws-transport.js';

export function registerPeerMetrics(registry: Registry, stats: () => TransportStats): void {
  const counter = (name: string, help: string, sent: keyof TransportStats, received: keyof TransportStats): void => {
    if (registry.getSingleMetric(name)) return;
    new Counter<'direction'>({
      name,
      help,
      labelNames: ['direction'],
      registers: [registry],
      collect() {
        const s = stats();
        this.reset();
        this.inc({ direction: 'sent' }, s[sent]);
        this.inc({ direction: 'received' }, s[received]);
      },
    });
  };
  counter('ringkv_peer_messages_total', 'WebSocket messages between this node and its peers, by direction', 'messagesSent', 'messagesReceived');
  counter('ringkv_peer_frames_total', 'Peer frames (requests, responses, notes, hello, bye) carried by those messages, by direction', 'framesSent', 'framesReceived');
}
