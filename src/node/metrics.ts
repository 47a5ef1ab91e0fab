// Prometheus metrics of one node, in a registry of its own so several nodes
// can live in one process (tests, the simulator).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';


export class NodeMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'op' | 'outcome'>;
  readonly latency: Histogram<'op'>;
  readonly siblings: Histogram;
  readonly readRepairs: Counter;
  /** Fan-out quorum: replicas asked beyond the first R, by reason (src/core/get-coordinator.ts). */
  readonly readExtraAsks: Counter<'reason'>;
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
    this.readExtraAsks = new Counter({
      name: 'ringkv_read_extra_asks_total',
      help: "Replicas a read with fan-out quorum asked beyond its first R, by reason (failed: one asked failed; slow: no R answers after readRetryAfterMs; differ: two answers differed)",
      labelNames: ['reason'],
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
    if (opts.defaultMetrics) this.processRegistry = processMetricsRegistry();
  }

  /** The process-wide default metrics this node's /metrics shows too (null: none). */
  private readonly processRegistry: Registry | null = null;

  /** The Prometheus text of /metrics: this node's metrics, then the process's. */
  async exposition(): Promise<string> {
    const own = await this.registry.metrics();
    if (this.processRegistry === null) return own;
    return `${own.endsWith('\n') ? own : `${own}\n`}${await this.processRegistry.metrics()}`;
  }
}

let processRegistry: Registry | null = null;

/**
 * prom-client's default process and runtime metrics, under their standard
 * names (process_*, nodejs_*, as Node.js dashboards expect), in one registry
 * per process: they describe the process, and each collectDefaultMetrics
 * starts an event-loop monitor and a GC observer that are never released, so
 * one per node would pile up in a process that starts many nodes (tests).
 * No `node` label: Prometheus's `instance` tells the process.
 */
export function processMetricsRegistry(): Registry {
  if (processRegistry === null) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

// ---------------------------------------------------------------------------
// Figures read from the services at scrape time, through what each exposes
// (the interfaces below; the services match them structurally): no service
// keeps a metric object for these, and no metric reaches into a service.

/** Hinted handoff: hints held per target node (src/node/handoff.ts HintStore). */
export interface HintCounts {
  pendingByTarget(): ReadonlyMap<string, number>;
}

/** Anti-entropy (src/node/anti-entropy.ts AntiEntropyService.progress). */
export interface AaeProgressSource {
  progress(): {
    partitionsCompared: number;
    passCompared: number;
    primaryPartitions: number;
    fullPasses: number;
    lastFullPassMs: number | null;
  };
}

/** Partition transfer (src/node/transfer.ts TransferService.progress). */
export interface TransferProgressSource {
  progress(): {
    sending: number;
    receiving: number;
    sent: { objects: number; bytes: number; partitions: number };
    received: { objects: number; bytes: number; partitions: number };
  };
}

/** Storage figures (src/node/storage-census.ts and the data directory). */
export interface StorageSource {
  census(): { objects: number; tombstones: number; partitionsKnown: number; passes: number; lastPassMs: number | null };
  /** Bytes of the files in the data directory (may be a few seconds old). */
  diskBytes(): Promise<number>;
  /** Estimated bytes of the in-memory TicTac trees. */
  treeBytes(): number;
}

/** Label values and the value to report for them. */
type Sample = readonly [Record<string, string>, number];

/** A gauge or counter whose values are read at each scrape (`read`); registered once per registry. */
function scraped(kind: 'gauge' | 'counter', registry: Registry, name: string, help: string, labelNames: string[], read: () => Sample[] | Promise<Sample[]>): void {
  if (registry.getSingleMetric(name)) return;
  if (kind === 'gauge') {
    new Gauge({
      name, help, labelNames, registers: [registry],
      async collect() {
        const samples = await read();
        this.reset();
        for (const [labels, v] of samples) this.set(labels, v);
      },
    });
  } else {
    new Counter({
      name, help, labelNames, registers: [registry],
      async collect() {
        const samples = await read();
        this.reset();
        for (const [labels, v] of samples) this.inc(labels, v);
      },
    });
  }
}

const seconds = (ms: number | null): number => (ms === null ? 0 : ms / 1000);

export function registerServiceMetrics(registry: Registry, s: { hints: HintCounts; antiEntropy: AaeProgressSource; transfers: TransferProgressSource }): void {
  scraped('gauge', registry, 'ringkv_hints_pending_by_target', 'Hints this node holds, by the node they are for (handoff delivers them once it is reachable)', ['target'], () =>
    [...s.hints.pendingByTarget()].map(([target, n]) => [{ target }, n] as const),
  );

  const aae = () => s.antiEntropy.progress();
  scraped('counter', registry, 'ringkv_aae_partitions_compared_total', 'Partitions whose tree roots this node compared with another primary of them', [], () => [[{}, aae().partitionsCompared]]);
  scraped('counter', registry, 'ringkv_aae_full_passes_total', 'Full anti-entropy passes: every partition this node is a primary of compared at least once', [], () => [[{}, aae().fullPasses]]);
  scraped('gauge', registry, 'ringkv_aae_last_full_pass_timestamp_seconds', 'When the last full anti-entropy pass finished (Unix time; 0: none yet)', [], () => [[{}, seconds(aae().lastFullPassMs)]]);
  scraped('gauge', registry, 'ringkv_aae_pass_partitions', 'The current anti-entropy pass: partitions this node is a primary of (total) and those compared so far (compared)', ['state'], () => {
    const p = aae();
    return [[{ state: 'total' }, p.primaryPartitions], [{ state: 'compared' }, p.passCompared]];
  });

  const xfer = () => s.transfers.progress();
  scraped('gauge', registry, 'ringkv_transfer_partitions_pending', 'Partition transfers still to do: to send (one per partition and receiving node) and to receive', ['direction'], () => {
    const p = xfer();
    return [[{ direction: 'send' }, p.sending], [{ direction: 'receive' }, p.receiving]];
  });
  const moved = (name: string, help: string, field: 'objects' | 'bytes' | 'partitions') =>
    scraped('counter', registry, name, help, ['direction'], () => {
      const p = xfer();
      return [[{ direction: 'sent' }, p.sent[field]], [{ direction: 'received' }, p.received[field]]];
    });
  moved('ringkv_transfer_objects_total', 'Objects (records) moved by partition transfer, by direction', 'objects');
  moved('ringkv_transfer_bytes_total', 'Bucket, key and record bytes moved by partition transfer, by direction', 'bytes');
  moved('ringkv_transfer_partitions_total', 'Partition transfers completed (sent: both passes given and acknowledged; received: no longer pending here)', 'partitions');
}

export function registerStorageMetrics(registry: Registry, s: StorageSource): void {
  scraped('gauge', registry, 'ringkv_storage_disk_bytes', 'Bytes of the files in this node\'s data directory', [], async () => [[{}, await s.diskBytes()]]);
  scraped('gauge', registry, 'ringkv_storage_records', 'Records in this node\'s store by kind (object: a live value; tombstone: deleted, not reaped yet), as the background census last counted them', ['kind'], () => {
    const c = s.census();
    return [[{ kind: 'object' }, c.objects], [{ kind: 'tombstone' }, c.tombstones]];
  });
  scraped('gauge', registry, 'ringkv_storage_census_partitions', 'Partitions the storage census has counted (out of Q); the record counts cover these', [], () => [[{}, s.census().partitionsKnown]]);
  scraped('counter', registry, 'ringkv_storage_census_passes_total', 'Full passes of the storage census over every partition', [], () => [[{}, s.census().passes]]);
  scraped('gauge', registry, 'ringkv_storage_census_last_pass_timestamp_seconds', 'When the storage census last finished a full pass (Unix time; 0: none yet)', [], () => [[{}, seconds(s.census().lastPassMs)]]);
  scraped('gauge', registry, 'ringkv_storage_tree_bytes', 'Estimated memory of the anti-entropy (TicTac) trees, from Q, the tree geometry and the partitions written to', [], () => [[{}, s.treeBytes()]]);
}
