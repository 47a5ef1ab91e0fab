// Hinted handoff (DYNAMO.md "Sloppy quorum"): a replica written to a fallback
// node lives in that node's hint store (engine.hintPut, never its objects
// store), naming the primary it is meant for. This module holds
//
// - HintStore: the node's access to its hints, with an in-memory index
//   (target → keys) so a read can find the hint of ONE key without an engine
//   hintGet, and so the number of pending hints is known. The engine is the
//   durable copy: the index is rebuilt from it when the node starts, so hints
//   survive restarts. (Temporary: an engine `hintGet(target, bucket, key)`
//   would let `lookup` skip listing the target's hints.)
// - HandoffService: every `handoffIntervalMs`, for each hint target that is a
//   live member and not suspected, lists up to `handoffBatch` hints
//   (engine.hintList) and sends them to the target in one 'kv.mergebatch'
//   (merged together there, sharing flushes); on the ack it deletes each
//   hint with engine.hintDelete, a compare-and-delete: a
//   hint updated while it was in flight stays for the next round. At most one
//   round runs at a time; a target that fails a request is left for the next
//   round.
import { partitionOf } from '../core/ring.js';
import type { Engine } from '../engine/types.js';
import { isTransportError, type Timer } from '../transport/types.js';
import { keyId } from '../record/index.js';
import { MAX_MERGE_BATCH } from './messages.js';
import type { ServiceContext } from './context.js';

/** What hinted handoff uses of the node. */
export type HandoffContext = Pick<ServiceContext, 'id' | 'metrics' | 'engine' | 'clock' | 'clusterState' | 'hasJoined' | 'bucketProps' | 'preferenceListOf' | 'isSuspected' | 'peerRequest'>;

export { MAX_MERGE_BATCH };

/** Lists every hint of a target (the native engine caps a limit at u32). */
const ALL = 0xffffffff;

export class HintStore {
  /** target → bkey ids of the hints held for it. */
  private readonly index = new Map<string, Set<string>>();

  constructor(private readonly engine: Engine) {}

  /** Rebuilds the index from the engine (at start). */
  async load(): Promise<void> {
    this.index.clear();
    for (const target of await this.engine.hintTargets()) {
      const ids = new Set<string>();
      for (const h of await this.engine.hintList(target, ALL)) ids.add(keyId(h.bucket, h.key));
      if (ids.size > 0) this.index.set(target, ids);
    }
  }

  /** Stores (DVV-merges) a hint; returns the hint as now stored. */
  async put(target: string, bucket: Uint8Array, key: Uint8Array, record: Uint8Array): Promise<Buffer> {
    const stored = await this.engine.hintPut(target, bucket, key, record);
    let ids = this.index.get(target);
    if (!ids) this.index.set(target, (ids = new Set()));
    ids.add(keyId(bucket, key));
    return stored;
  }

  /** Compare-and-delete (see engine.hintDelete). */
  async delete(target: string, bucket: Uint8Array, key: Uint8Array, record: Uint8Array): Promise<boolean> {
    const deleted = await this.engine.hintDelete(target, bucket, key, record);
    if (deleted) {
      const ids = this.index.get(target);
      ids?.delete(keyId(bucket, key));
      if (ids?.size === 0) this.index.delete(target);
    }
    return deleted;
  }

  /** The hint records held for one key (any target), usually none. */
  async lookup(bucket: Buffer, key: Buffer): Promise<Buffer[]> {
    const id = keyId(bucket, key);
    const out: Buffer[] = [];
    for (const [target, ids] of this.index) {
      if (!ids.has(id)) continue;
      // No engine hintGet: list the target's hints (usually few) and pick the key.
      for (const h of await this.engine.hintList(target, ids.size + 64)) {
        if (h.bucket.equals(bucket) && h.key.equals(key)) out.push(h.record);
      }
    }
    return out;
  }

  /** Hints held, as the index counts them. */
  pending(): number {
    let n = 0;
    for (const ids of this.index.values()) n += ids.size;
    return n;
  }

  /** Hints held per target node, as the index counts them. */
  pendingByTarget(): Map<string, number> {
    return new Map([...this.index].map(([target, ids]) => [target, ids.size]));
  }

  targets(): string[] {
    return [...this.index.keys()].sort();
  }
}

/** A key's object merged with any hints held for it (what a fallback answers a read with). */
export function withHints(engine: Pick<Engine, 'reconcile'>, record: Buffer | null, hints: readonly Buffer[]): Buffer | null {
  const all = record ? [record, ...hints] : [...hints];
  // Hints are kept in siblings mode: merge the same way (the coordinator applies lww when reconciling).
  return all.length === 0 ? null : engine.reconcile(all, 'siblings');
}

export interface HandoffConfig {
  /** Time between delivery rounds. Default 1000 ms. */
  handoffIntervalMs: number;
  /** Hints per target per round at most. Default 100. */
  handoffBatch: number;
  /** Deadline of each delivery request. */
  requestTimeoutMs: number;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export interface HandoffRound {
  delivered: number;
  /** Delivered but changed meanwhile (kept for the next round). */
  kept: number;
  /** Targets skipped (suspected, unknown or left). */
  skipped: string[];
  /** Targets whose delivery failed this round. */
  failed: string[];
}

export class HandoffService {
  private timer: Timer | null = null;
  private inFlight: Promise<HandoffRound> | null = null;
  private stopped = false;

  constructor(
    private readonly node: HandoffContext,
    private readonly hints: HintStore,
    private readonly config: HandoffConfig,
  ) {}

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.node.clock.setTimer(this.config.handoffIntervalMs, () => {
      void this.runRound()
        .catch((err: unknown) => this.config.log?.('warn', 'handoff round failed', { error: String(err) }))
        .finally(() => this.schedule());
    });
  }

  /** One delivery round (or the one already running). */
  runRound(): Promise<HandoffRound> {
    this.inFlight ??= this.round().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  /**
   * Hints for a node that left: merge each into the key's current primaries
   * (the same merge as replication), then drop it. A hint whose primaries did
   * not all take it stays for the next round.
   */
  private async rehome(target: string, result: HandoffRound): Promise<void> {
    const engine = this.node.engine;
    const ring = this.node.clusterState.ring;
    const owners = new Set(ring.owners).size;
    const batch = await engine.hintList(target, Math.min(this.config.handoffBatch, MAX_MERGE_BATCH));
    const byPrimary = new Map<string, Array<{ hint: (typeof batch)[number]; lww: boolean }>>();
    for (const hint of batch) {
      const props = this.node.bucketProps(hint.bucket.toString('utf8'));
      const partition = partitionOf(ring, engine.hashKey(hint.bucket, hint.key));
      for (const primary of this.node.preferenceListOf(partition, Math.min(props.n, owners)).primaries) {
        const list = byPrimary.get(primary) ?? [];
        list.push({ hint, lww: props.mode === 'lww' });
        byPrimary.set(primary, list);
      }
    }
    const failed = new Set<(typeof batch)[number]>();
    for (const [primary, items] of byPrimary) {
      try {
        if (primary === this.node.id) {
          await engine.mergeMany(items.map(({ hint, lww }) => ({ bucket: hint.bucket, key: hint.key, record: hint.record, mode: lww ? 'lww' : 'siblings', durable: true })));
        } else {
          const body = { items: items.map(({ hint, lww }) => ({ b: hint.bucket, k: hint.key, record: hint.record, lww })), durable: true };
          await this.node.peerRequest(primary, 'kv.mergebatch', body, this.config.requestTimeoutMs);
        }
      } catch (err) {
        if (!isTransportError(err)) throw err;
        items.forEach(({ hint }) => failed.add(hint));
        result.failed.push(primary);
      }
    }
    for (const hint of batch) {
      if (failed.has(hint)) continue;
      if (await this.hints.delete(target, hint.bucket, hint.key, hint.record)) {
        result.delivered++;
        this.node.metrics.hintsDelivered.inc();
      } else result.kept++;
    }
  }

  private async round(): Promise<HandoffRound> {
    const result: HandoffRound = { delivered: 0, kept: 0, skipped: [], failed: [] };
    const engine = this.node.engine;
    for (const target of await engine.hintTargets()) {
      if (this.stopped) break;
      const member = this.node.clusterState.members[target];
      // Only a joined node's view can say a member left (an unjoined node knows only itself).
      const forgotten = member === undefined && this.node.clusterState.forgotten?.[target] !== undefined;
      if (target !== this.node.id && this.node.hasJoined && (member?.status === 'left' || forgotten)) {
        // The node the hints were for left the cluster (or was forgotten): they go to the keys' current primaries instead.
        await this.rehome(target, result);
        continue;
      }
      if (target === this.node.id || !member || member.status === 'left' || this.node.isSuspected(target)) {
        result.skipped.push(target);
        continue;
      }
      const batch = await engine.hintList(target, Math.min(this.config.handoffBatch, MAX_MERGE_BATCH));
      if (batch.length === 0 || this.stopped) continue;
      const items = batch.map((h) => ({ b: h.bucket, k: h.key, record: h.record, lww: this.node.bucketProps(h.bucket.toString('utf8')).mode === 'lww' }));
      try {
        // One request for the batch; durable: the hints are deleted right after, so the target must not lose them in a crash.
        await this.node.peerRequest(target, 'kv.mergebatch', { items, durable: true }, this.config.requestTimeoutMs);
      } catch (err) {
        // Unreachable or refusing: the whole batch is tried again next round (merging twice is harmless).
        if (!isTransportError(err)) throw err;
        result.failed.push(target);
        continue;
      }
      // Compare-and-delete: a hint updated while it was in flight stays for the next round.
      const deleted = await Promise.all(batch.map((h) => this.hints.delete(target, h.bucket, h.key, h.record)));
      for (const d of deleted) {
        if (d) {
          result.delivered++;
          this.node.metrics.hintsDelivered.inc();
        } else result.kept++;
      }
    }
    this.node.metrics.hintsPending.set(this.hints.pending());
    return result;
  }
}
