// Prometheus metrics of one node, in a registry of its own so several nodes
// can live in one process (tests, the simulator).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class NodeMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'op' | 'outcome'>;
  readonly latency: Histogram<'op'>;
  readonly siblings: Histogram;
  readonly readRepairs: Counter;
  readonly forwarded: Counter<'op'>;
  readonly nonPrimaryReads: Counter;
  readonly members: Gauge<'status'>;
  readonly ringVersion: Gauge;
  readonly hintsStored: Counter;
  readonly hintsDelivered: Counter;
  readonly hintsPending: Gauge;
  readonly fallbackWrites: Counter;
  readonly fallbackCoordinated: Counter;
  readonly transferReads: Counter;
  readonly tombstonesReaped: Counter;
  readonly reapAttempts: Counter<'outcome'>;
  readonly reapFloors: Gauge;
  readonly gossipRefused: Counter;
  readonly replicaRequests: Counter<'type'>;

  constructor(nodeId: string, opts: { defaultMetrics?: boolean } = {}) {
    this.registry.setDefaultLabels({ node: nodeId });
    const registers = [this.registry];
    this.gossipRefused = new Counter({
      name: 'ringkv_gossip_refused_entries_total',
      help: 'Gossiped member entries this node kept its own version of: a change only the member itself may make, relayed by another (docs/security.md)',
      registers,
    });
    this.requests = new Counter({
      name: 'ringkv_requests_total',
      help: 'Client requests coordinated by this node, by operation and outcome',
      labelNames: ['op', 'outcome'],
      registers,
    });
    this.latency = new Histogram({
      name: 'ringkv_request_duration_seconds',
      help: 'Client request latency at the coordinating node',
      labelNames: ['op'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.3, 1, 5],
      registers,
    });
    this.siblings = new Histogram({
      name: 'ringkv_get_siblings',
      help: 'Siblings in the reconciled object of each successful read',
      buckets: [1, 2, 3, 5, 10, 25, 100],
      registers,
    });
    this.readRepairs = new Counter({
      name: 'ringkv_read_repairs_total',
      help: 'Replicas sent a reconciled object after a read found them stale',
      registers,
    });
    this.forwarded = new Counter({
      name: 'ringkv_forwarded_total',
      help: 'Writes forwarded to a preference-list node to coordinate',
      labelNames: ['op'],
      registers,
    });
    this.nonPrimaryReads = new Counter({
      name: 'ringkv_non_primary_reads_total',
      help: 'Reads this node coordinated without being a primary of the key (all N replicas remote; client-driven routing avoids them)',
      registers,
    });
    this.members = new Gauge({
      name: 'ringkv_members',
      help: 'Cluster members by status, as this node sees them',
      labelNames: ['status'],
      registers,
    });
    this.ringVersion = new Gauge({ name: 'ringkv_ring_version', help: 'Version of the ring this node holds', registers });
    this.hintsStored = new Counter({
      name: 'ringkv_hints_stored_total',
      help: 'Replicas this node accepted as a fallback, stored as hints for a down primary',
      registers,
    });
    this.hintsDelivered = new Counter({
      name: 'ringkv_hints_delivered_total',
      help: 'Hints this node handed off to their primary (and deleted)',
      registers,
    });
    this.hintsPending = new Gauge({ name: 'ringkv_hints_pending', help: 'Hints this node holds for other nodes, not delivered yet', registers });
    this.fallbackWrites = new Counter({
      name: 'ringkv_fallback_writes_total',
      help: 'Replicas of writes this node coordinated that went to a fallback (with a hint) instead of a primary',
      registers,
    });
    this.fallbackCoordinated = new Counter({
      name: 'ringkv_fallback_coordinated_total',
      help: 'Writes this node coordinated while no primary of the key was reachable (stored as hints, under a one-off actor)',
      registers,
    });
    this.transferReads = new Counter({
      name: 'ringkv_transfer_reads_total',
      help: 'Replica reads sent to a partition\'s giver because the replica asked was still receiving the partition',
      registers,
    });
    this.tombstonesReaped = new Counter({
      name: 'ringkv_tombstones_reaped_total',
      help: 'Deleted objects (all-tombstone records) this node removed from its store for good',
      registers,
    });
    this.reapAttempts = new Counter({
      name: 'ringkv_reap_attempts_total',
      help: 'Tombstone reaps this node coordinated, by outcome (reaped, or why the tombstone was kept)',
      labelNames: ['outcome'],
      registers,
    });
    this.reapFloors = new Gauge({
      name: 'ringkv_reap_floors',
      help: 'Reaped keys this node remembers (their causal context: counter floor and resurrection guard)',
      registers,
    });
    this.replicaRequests = new Counter({
      name: 'ringkv_replica_requests_total',
      help: 'Peer requests this node served as a replica of the key, by type (kv.get: a read; kv.merge: a write, repair or handoff; kv.mergebatch: a batch of them): the replica role\'s work, beside ringkv_requests_total for the coordinator\'s',
      labelNames: ['type'],
      registers,
    });
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'ringkv_process_' });
  }
}
