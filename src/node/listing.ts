// Listings (docs/listing.md): a bucket's keys, its objects (for export) and
// the cluster's bucket names, a page at a time, from an opaque cursor.
//
// Both ends of 'list.page': as a replica this service scans one partition
// of its own store from a disk-key cursor (src/engine scanPartition), keeps
// the requested bucket's records and answers how far it scanned; as the
// coordinator of a page it walks the partitions in index order, reads each
// from the replicas the coverage plan names (src/core/coverage.ts), merges
// their pages by disk key, drops keys whose merged record holds tombstones
// only, and stops at the page's limit, byte budget or time budget. The
// coordinator keeps one partition page at a time: its memory is bounded by
// the page, never by the bucket.
import { MAX_CURSOR_CHARS, type ListCursor, type ListingKind, CursorError, decodeCursor, encodeCursor } from '../core/list-cursor.js';
import { comparePoints, mergePages, planPartition, replicasToRead, type MergedPages, type ReplicaPage, type ScanPoint } from '../core/coverage.js';
import { invariant } from '../core/types.js';
import { DEFAULT_BUCKET_PROPS } from '../core/membership.js';
import { decodeRecord, encodeRecord, makeBkey, type ConflictMode } from '../record/index.js';
import type { KeyRecord } from '../engine/types.js';
import type { ServiceContext } from './context.js';
import { NodeError } from './errors.js';
import { MAX_LIST_PAGE, MAX_LIST_RUN, MAX_PENDING_SOURCES, type PeerReply, type PeerRequest } from './messages.js';
import { isAllTombstones } from './reaper.js';

/** What listings use of the node. */
export type ListingContext = Pick<ServiceContext, 'id' | 'engine' | 'clock' | 'clusterState' | 'hasJoined' | 'bucketProps' | 'preferenceListOf' | 'isSuspected' | 'peerRequest' | 'registerService'> & {
  /** For a partition this node is still receiving: the nodes holding it fully (its givers) for `bucket`'s keys (null: every bucket's); else null. */
  receivingSourcesOf(partition: number, bucket: Buffer | null): readonly string[] | null;
  /** A peer routes by a newer ring than this node's: fetch its state now. */
  pullState(node: string): void;
};

export interface ListingOptions {
  /** A replica scans at most this many objects per 'list.page' (bounds the time of one request). */
  replicaScanBudget: number;
  /** A replica's reply stops once its records pass this many bytes (at least one record). */
  replicaReplyBytes: number;
  /** A page is answered after this long even with fewer keys than asked (its cursor goes on). */
  pageTimeMs: number;
  /** Of one 'list.page' request. */
  requestTimeoutMs: number;
}

export const DEFAULT_LISTING_OPTIONS: ListingOptions = {
  replicaScanBudget: 5_000,
  replicaReplyBytes: 4 * 1024 * 1024,
  pageTimeMs: 2_000,
  requestTimeoutMs: 5_000,
};

/** Page sizes the HTTP API accepts (docs/listing.md "Limits"). */
export const LISTING_LIMITS = Object.freeze({
  keys: { default: 1_000, max: MAX_LIST_PAGE },
  objects: { default: 100, max: 1_000 },
  buckets: { default: 100, max: 1_000 },
  /** An objects page stops once its records pass this many bytes (at least one record). */
  objectsPageBytes: 8 * 1024 * 1024,
});

/** Objects per engine scan call of the replica side. */
const SCAN_CHUNK = 256;

export interface PageRequest {
  limit: number;
  /** The cursor a previous page returned (null: from the start). */
  cursor: string | null;
  /** Replicas read per partition (default n − w + 1 of the bucket, at most n). */
  r?: number;
  /** Objects listings: all-tombstone records too (a backup keeps deletes not reaped yet). */
  tombstones?: boolean;
}

export interface KeysPage {
  keys: Buffer[];
  cursor: string | null;
}
export interface ObjectsPage {
  objects: KeyRecord[];
  cursor: string | null;
}
export interface BucketsPage {
  buckets: Buffer[];
  cursor: string | null;
}

type PageItem = { b: Buffer; k: Buffer; record: Buffer };
/** A 'list.page' reply as the coordinator uses it (Buffers, as decoded). */
type PageReply = PeerReply<'list.page'>;

export class ListingService {
  private readonly opts: ListingOptions;

  constructor(
    private readonly node: ListingContext,
    opts: Partial<ListingOptions> = {},
  ) {
    this.opts = { ...DEFAULT_LISTING_OPTIONS, ...opts };
    node.registerService({ 'list.page': (from, req) => this.servePage(from, req) });
  }

  // ---------------------------------------------------------------------------
  // Coordinator

  /** One page of a bucket's live keys, in (partition, disk-key) order. */
  async listKeys(bucket: Buffer, req: PageRequest): Promise<KeysPage> {
    const page = await this.walk('keys', bucket, { ...req, tombstones: false }, false, Infinity);
    return { keys: page.items.map((i) => i.k), cursor: page.cursor };
  }

  /** One page of live objects (of one bucket, or of every bucket with null; with `tombstones`, deleted ones too) with their merged records. */
  async listObjects(bucket: Buffer | null, req: PageRequest): Promise<ObjectsPage> {
    const page = await this.walk('objects', bucket, req, true, LISTING_LIMITS.objectsPageBytes);
    return { objects: page.items.map((i) => ({ bucket: i.b, key: i.k, record: i.record })), cursor: page.cursor };
  }

  /**
   * One page of bucket names holding a live key, in byte order. Every page
   * scans every object of the cluster (one replica per partition): bucket
   * names are not indexed.
   */
  async listBuckets(req: Omit<PageRequest, 'r'>): Promise<BucketsPage> {
    this.checkJoined();
    const q = 2 ** this.node.clusterState.partitionBits;
    const start = this.decode('buckets', null, req.cursor);
    const last = start?.lastBucket ?? null;
    // The `limit` smallest names after `last`, sorted: bounded by the page.
    const best: Buffer[] = [];
    const consider = (name: Buffer) => {
      if (best.length === req.limit && Buffer.compare(name, best.at(-1)!) >= 0) return;
      let lo = 0;
      let hi = best.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (Buffer.compare(best[mid]!, name) < 0) lo = mid + 1;
        else hi = mid;
      }
      if (best[lo]?.equals(name)) return;
      best.splice(lo, 0, name);
      if (best.length > req.limit) best.pop();
    };
    const n = this.largestN();
    let at: ScanPoint = { partition: 0, after: null };
    while (at.partition < q) {
      const { pages, merged } = await this.readRun(at, null, MAX_LIST_PAGE, { values: false, buckets: true, last }, 1, n);
      for (const name of pages[0]!.buckets) consider(name);
      at = merged.until;
    }
    const cursor = best.length === req.limit ? this.encode('buckets', null, { partition: 0, after: null, lastBucket: best.at(-1)! }) : null;
    return { buckets: best, cursor };
  }

  /** Walks partitions from the cursor, collecting live records, until the page is full or its time is up. */
  private async walk(kind: 'keys' | 'objects', bucket: Buffer | null, req: PageRequest, values: boolean, maxBytes: number): Promise<{ items: PageItem[]; cursor: string | null }> {
    this.checkJoined();
    const q = 2 ** this.node.clusterState.partitionBits;
    const start = this.decode(kind, bucket, req.cursor);
    let at: ScanPoint = { partition: start?.partition ?? 0, after: start?.after ?? null };
    const n = bucket ? this.node.bucketProps(bucket.toString('utf8')).n : this.largestN();
    const want = this.replicasWanted(bucket, n, req.r);
    const mode: ConflictMode = bucket ? this.node.bucketProps(bucket.toString('utf8')).mode : 'siblings';
    const items: PageItem[] = [];
    let bytes = 0;
    const deadline = this.node.clock.now() + this.opts.pageTimeMs;
    outer: while (at.partition < q) {
      if (items.length >= req.limit || bytes >= maxBytes || this.node.clock.now() >= deadline) break;
      const { merged } = await this.readRun(at, bucket, req.limit - items.length, { values, buckets: false, last: null }, want, n);
      for (const { partition, diskKey, items: copies } of merged.keys) {
        const first = copies[0]!;
        const modeOf = bucket ? mode : this.node.bucketProps(first.b.toString('utf8')).mode;
        // Replicas in sync (the usual case) hold the same bytes: nothing to reconcile.
        const same = copies.every((c) => c.record.equals(first.record));
        const record = same ? first.record : this.node.engine.reconcile(copies.map((c) => c.record), modeOf);
        if (req.tombstones === true || !isAllTombstones(decodeRecord(record))) {
          items.push({ b: first.b, k: first.k, record });
          bytes += record.length;
        }
        if (items.length >= req.limit || bytes >= maxBytes) {
          at = { partition, after: diskKey };
          break outer;
        }
      }
      invariant(comparePoints(merged.until, at) > 0, 'a listing step made no progress');
      at = merged.until;
    }
    return { items, cursor: at.partition >= q ? null : this.encode(kind, bucket, { partition: at.partition, after: at.after, lastBucket: null }) };
  }

  /** The partitions from `partition` on that share its plan (at most MAX_LIST_RUN): one request each reads them. */
  private runEnd(partition: number, n: number, want: number): number {
    const q = 2 ** this.node.clusterState.partitionBits;
    const plan = (p: number) => planPartition({ partition: p, primaries: this.node.preferenceListOf(p, n).primaries, self: this.node.id, usable: (node) => this.usable(node) }, want).join(',');
    const first = plan(partition);
    let end = partition + 1;
    while (end < q && end - partition < MAX_LIST_RUN && plan(end) === first) end++;
    return end;
  }

  /**
   * Reads from `at` on `want` replicas (fewer when fewer are usable), a run
   * of partitions that share a plan in one request per replica. When a
   * replica fails, is on another ring, or is still receiving a partition,
   * the run shrinks to its first partition, which is re-planned on another
   * replica (a receiving replica's givers are candidates). UNAVAILABLE when
   * no replica answers.
   */
  private async readRun(
    at: ScanPoint,
    bucket: Buffer | null,
    limit: number,
    how: { values: boolean; buckets: boolean; last: Buffer | null },
    want: number,
    n: number,
  ): Promise<{ pages: Array<{ items: PageItem[]; buckets: Buffer[] }>; merged: MergedPages<PageItem> }> {
    const partition = at.partition;
    const { primaries } = this.node.preferenceListOf(partition, n);
    const excluded = new Set<string>();
    const extra: string[] = [];
    let end = this.runEnd(partition, n, want);
    let pages = new Map<string, PageReply>();
    const failures: string[] = [];
    const ring = this.node.clusterState.ring.version;
    for (;;) {
      const body = { p: partition, pEnd: end, after: at.after, b: bucket, limit, values: how.values, buckets: how.buckets, last: how.last, ring };
      const plan = planPartition({ partition, primaries, self: this.node.id, usable: (node) => this.usable(node), excluded, extra }, want);
      const ask = plan.filter((node) => !pages.has(node));
      if (ask.length === 0) break;
      const replies = await Promise.allSettled(ask.map((node) => (node === this.node.id ? this.servePage(node, body) : this.node.peerRequest(node, 'list.page', body, this.opts.requestTimeoutMs))));
      let refused = false;
      replies.forEach((reply, i) => {
        const node = ask[i]!;
        if (reply.status === 'rejected') {
          excluded.add(node);
          failures.push(`${node}: ${(reply.reason as Error).message}`);
          refused = true;
          return;
        }
        const r = reply.value as PageReply;
        if (r.pending) {
          excluded.add(node);
          for (const s of r.pending) if (!extra.includes(s)) extra.push(s);
          refused = true;
          return;
        }
        if (r.stale) {
          excluded.add(node);
          if (r.ring !== undefined && r.ring > ring) this.node.pullState(node);
          failures.push(`${node}: on ring v${r.ring ?? '?'}, this node on v${ring}`);
          refused = true;
          return;
        }
        pages.set(node, r);
      });
      // A replacement is a replica of the first partition only: read that one alone, from every replica anew.
      if (refused && end > partition + 1) {
        end = partition + 1;
        pages = new Map();
      }
    }
    if (pages.size === 0) {
      throw new NodeError('UNAVAILABLE', `no replica of partition ${partition} could be read${failures.length ? ` (${failures.slice(0, 3).join('; ')})` : ''}; retry the page with the same cursor`);
    }
    const replicaPages: Array<ReplicaPage<PageItem>> = [...pages.values()].map((page) => ({
      items: page.items.map((item) => {
        const diskKey = this.diskKeyOf(item.b, item.k);
        return { partition: this.partitionOfDiskKey(diskKey), diskKey, item };
      }),
      until: { partition: page.at ?? end, after: page.through ?? null },
    }));
    const merged = mergePages(replicaPages);
    invariant(merged.until.partition <= end, 'a replica scanned past the run it was asked for');
    return { pages: [...pages.values()].map((p) => ({ items: p.items, buckets: (p.buckets ?? []) as Buffer[] })), merged };
  }

  private usable(node: string): boolean {
    const m = this.node.clusterState.members[node];
    return m !== undefined && m.status !== 'left' && !this.node.isSuspected(node);
  }

  // ---------------------------------------------------------------------------
  // Replica

  /** One page of this node's copy of a run of partitions (the 'list.page' handler; the coordinator calls it for itself too). */
  async servePage(from: string, req: PeerRequest<'list.page'>): Promise<PageReply> {
    this.checkJoined();
    const ring = this.node.clusterState.ring.version;
    if (req.ring !== ring) {
      if (req.ring > ring) this.node.pullState(from);
      return { items: [], through: null, stale: true, ring };
    }
    const engine = this.node.engine;
    const q = 2 ** engine.partitionBits;
    const end = req.pEnd ?? req.p + 1;
    if (req.p >= q || end <= req.p || end > q || end - req.p > MAX_LIST_RUN) throw new NodeError('BAD_REQUEST', `partitions ${req.p}..${end} not a run of 1..${MAX_LIST_RUN} in 0..${q}`);
    // A partition still being received: this copy is no source on its own.
    const pending = new Set<string>();
    for (let p = req.p; p < end; p++) for (const s of this.node.receivingSourcesOf(p, req.b) ?? []) pending.add(s);
    if (pending.size > 0) return { items: [], through: null, pending: [...pending].slice(0, MAX_PENDING_SOURCES) };
    const items: PageItem[] = [];
    const buckets = new Map<string, Buffer>();
    const bucketList = () => (req.buckets ? [...buckets.values()] : undefined);
    let p = req.p;
    let after: Buffer | null = req.after;
    let scanned = 0;
    let bytes = 0;
    while (p < end) {
      if (scanned >= this.opts.replicaScanBudget) return { items, buckets: bucketList(), at: p, through: after };
      const page = await engine.scanPartition(p, after, Math.min(SCAN_CHUNK, this.opts.replicaScanBudget - scanned));
      for (let i = 0; i < page.items.length; i++) {
        const item = page.items[i]!;
        scanned++;
        let full = false;
        if (req.buckets) {
          const id = item.bucket.toString('latin1');
          if (!buckets.has(id) && (req.last === null || Buffer.compare(item.bucket, req.last) > 0) && !isAllTombstones(decodeRecord(item.record))) {
            buckets.set(id, item.bucket);
            full = buckets.size >= req.limit;
          }
        } else if (req.b === null || item.bucket.equals(req.b)) {
          const record = req.values ? item.record : withoutValues(item.record);
          items.push({ b: item.bucket, k: item.key, record });
          bytes += record.length;
          full = items.length >= req.limit || bytes >= this.opts.replicaReplyBytes;
        }
        if (full) {
          // Stopped at item i: the next page starts after it.
          if (i === page.items.length - 1 && page.next === null) return { items, buckets: bucketList(), at: p + 1, through: null };
          return { items, buckets: bucketList(), at: p, through: this.diskKeyOf(item.bucket, item.key) };
        }
      }
      if (page.next === null) {
        p++;
        after = null;
      } else {
        after = page.next;
      }
    }
    return { items, buckets: bucketList(), at: end, through: null };
  }

  // ---------------------------------------------------------------------------

  private diskKeyOf(bucket: Buffer, key: Buffer): Buffer {
    const bkey = makeBkey(bucket, key);
    const out = Buffer.allocUnsafe(8 + bkey.length);
    out.writeBigUInt64BE(this.node.engine.hashKey(bucket, key), 0);
    bkey.copy(out, 8);
    return out;
  }

  private partitionOfDiskKey(diskKey: Buffer): number {
    return Number(diskKey.readBigUInt64BE(0) >> BigInt(64 - this.node.clusterState.partitionBits));
  }

  private checkJoined(): void {
    if (!this.node.hasJoined) throw new NodeError('UNAVAILABLE', 'this node has not joined its cluster yet');
  }

  /** The replication factor that covers every bucket: the largest n in use. */
  private largestN(): number {
    let n = DEFAULT_BUCKET_PROPS.n;
    for (const entry of Object.values(this.node.clusterState.buckets)) n = Math.max(n, entry.props.n);
    return n;
  }

  private replicasWanted(bucket: Buffer | null, n: number, r: number | undefined): number {
    if (r !== undefined) {
      if (!Number.isInteger(r) || r < 1 || r > n) throw new NodeError('BAD_REQUEST', `r must be 1..${n} (the bucket's n)`);
      return r;
    }
    const w = bucket ? this.node.bucketProps(bucket.toString('utf8')).w : DEFAULT_BUCKET_PROPS.w;
    return replicasToRead(n, w);
  }

  private encode(kind: ListingKind, bucket: Buffer | null, c: ListCursor): string {
    return encodeCursor({ kind, bucket, partitionBits: this.node.clusterState.partitionBits }, c);
  }

  private decode(kind: ListingKind, bucket: Buffer | null, text: string | null): ListCursor | null {
    if (text === null) return null;
    if (text.length > MAX_CURSOR_CHARS) throw new NodeError('BAD_REQUEST', 'cursor: too long');
    const partitionBits = this.node.clusterState.partitionBits;
    try {
      return decodeCursor(text, { kind, bucket, partitionBits }, (partition, dk) => this.diskKeyProblem(partition, dk));
    } catch (err) {
      if (err instanceof CursorError) throw new NodeError('BAD_REQUEST', err.message);
      throw err;
    }
  }

  /** Why a cursor's disk key is not a disk key of its partition (null: it is). */
  private diskKeyProblem(partition: number, dk: Buffer): string | null {
    if (dk.length < 8 + 3) return 'disk key too short';
    const bkey = dk.subarray(8);
    const zero = bkey.indexOf(0);
    if (zero < 1 || zero > 255 || zero === bkey.length - 1) return 'disk key is not position ‖ bucket ‖ 0x00 ‖ key';
    const b = Buffer.from(bkey.subarray(0, zero));
    const k = Buffer.from(bkey.subarray(zero + 1));
    // Any bucket's: a page may stop after another bucket's object (the last one a replica scanned); the check binds the cursor to its bucket.
    let position: bigint;
    try {
      position = this.node.engine.hashKey(b, k);
    } catch {
      return 'disk key names no valid key';
    }
    if (dk.readBigUInt64BE(0) !== position) return "disk key's position is not its key's";
    if (Number(position >> BigInt(64 - this.node.clusterState.partitionBits)) !== partition) return 'disk key is not in its partition';
    return null;
  }
}

/** A record with every sibling's value emptied: what a keys listing needs to tell live from deleted, without the values. */
function withoutValues(record: Buffer): Buffer {
  const rec = decodeRecord(record);
  if (rec.siblings.every((s) => s.value.length === 0)) return record;
  return encodeRecord({ context: rec.context, siblings: rec.siblings.map((s) => ({ ...s, value: Buffer.alloc(0) })) });
}
