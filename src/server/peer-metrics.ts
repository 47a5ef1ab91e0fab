// Prometheus counters for the peer transport's messages and frames, read from
// WsTransport.stats() at scrape time. Frames per message (rate of frames over
// rate of messages) shows how well peer frames coalesce under load.
import { Counter } from 'prom-client';
import type { Registry } from 'prom-client';
import { AUTH_FAILURE_REASONS } from '../transport/peer-auth.js';
import type { TransportCounter, TransportStats } from '../transport/ws-transport.js';

export function registerPeerMetrics(registry: Registry, stats: () => TransportStats): void {
  const counter = (name: string, help: string, sent: TransportCounter, received: TransportCounter): void => {
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
  if (!registry.getSingleMetric('ringkv_peer_auth_failures_total')) {
    new Counter<'side' | 'reason'>({
      name: 'ringkv_peer_auth_failures_total',
      help: 'Peer connections closed because their handshake failed, by side (inbound: a peer connecting here; outbound: a peer this node connected to) and reason (bad-proof: no proof of the cluster secret; timeout, wrong-cluster, version, wrong-node, malformed)',
      labelNames: ['side', 'reason'],
      registers: [registry],
      collect() {
        const s = stats().authFailures;
        this.reset();
        for (const side of ['inbound', 'outbound'] as const) {
          for (const reason of AUTH_FAILURE_REASONS) this.inc({ side, reason }, s[side][reason]);
        }
      },
    });
  }
  counter('ringkv_peer_bytes_total', 'Bytes of those messages (their payloads: envelope and frames), by direction', 'bytesSent', 'bytesReceived');
  counter('ringkv_peer_frames_total', 'Peer frames (requests, responses, notes, hello, bye) carried by those messages, by direction', 'framesSent', 'framesReceived');
}
