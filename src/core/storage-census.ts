// Object and tombstone counts of one node's store, as a background census
// builds them (the driver: src/node/storage-census.ts). sled has no O(1)
// count (Tree::len walks every key) and the engine keeps no counters, so
// the counts come from scanning partitions, a bounded budget at a time: a
// partition's figures are those of its last complete scan, and the totals
// are the sum over the partitions scanned so far. A partition whose TicTac
// root (which every write to it changes) is what it was when its last scan
// began is skipped: an idle node scans nothing, a busy one only what changed.
// This state machine holds where the scan is and what it found; it does no I/O.
import { invariant } from './types.js';

/** What one scanned page held. */
export interface CensusPage {
  /** Records with at least one live sibling. */
  objects: number;
  /** Records whose every sibling is a tombstone (deleted, not reaped yet). */
  tombstones: number;
  /** Cursor of the next page of the same partition; null: the partition is done. */
  next: Uint8Array | null;
}

export interface CensusTotals {
  objects: number;
  tombstones: number;
  /** Partitions with figures from a complete scan (Q once the first pass is over). */
  partitionsKnown: number;
  /** Full passes over every partition (those unchanged since their last scan skipped) since start. */
  passes: number;
  /** When the last full pass finished (the clock's ms), or null before the first. */
  lastPassMs: number | null;
}

export class StorageCensus {
  /** Figures of each partition's last complete scan; -1: not scanned yet. */
  private readonly objectsOf: Int32Array;
  private readonly tombstonesOf: Int32Array;
  /** Each partition's root (8 bytes) when its last complete scan began. */
  private readonly scannedRoots: Uint8Array;
  private readonly startRoot = new Uint8Array(8);
  private partition = 0;
  private after: Uint8Array | null = null;
  /** Counts of the partition being scanned, so far. */
  private running = { objects: 0, tombstones: 0 };
  private totals: CensusTotals = { objects: 0, tombstones: 0, partitionsKnown: 0, passes: 0, lastPassMs: null };

  constructor(readonly partitions: number) {
    invariant(Number.isInteger(partitions) && partitions >= 1, 'a census needs at least one partition');
    this.objectsOf = new Int32Array(partitions).fill(-1);
    this.tombstonesOf = new Int32Array(partitions).fill(-1);
    this.scannedRoots = new Uint8Array(partitions * 8);
  }

  /**
   * The page to scan next (a partition and the cursor inside it), given the
   * engine's current roots (Q × 8 bytes, `treeRoots()`); null when no
   * partition changed since its last scan.
   */
  next(roots: Uint8Array, nowMs: number): { partition: number; after: Uint8Array | null } | null {
    invariant(roots.length === this.partitions * 8, 'one 8-byte root per partition');
    if (this.after !== null) return { partition: this.partition, after: this.after };
    for (let i = 0; i < this.partitions; i++) {
      const p = this.partition;
      if (this.objectsOf[p]! < 0 || !sameRoot(roots, this.scannedRoots, p)) {
        this.startRoot.set(roots.subarray(p * 8, p * 8 + 8));
        return { partition: p, after: null };
      }
      this.advance(nowMs);
    }
    return null;
  }

  /** The page `next()` named was scanned at `nowMs` and held this. */
  onPage(page: CensusPage, nowMs: number): void {
    invariant(page.objects >= 0 && page.tombstones >= 0, 'a page holds no negative count');
    this.running.objects += page.objects;
    this.running.tombstones += page.tombstones;
    if (page.next !== null) {
      this.after = page.next;
      return;
    }
    const p = this.partition;
    const t = this.totals;
    if (this.objectsOf[p]! < 0) t.partitionsKnown++;
    else {
      t.objects -= this.objectsOf[p]!;
      t.tombstones -= this.tombstonesOf[p]!;
    }
    this.objectsOf[p] = this.running.objects;
    this.tombstonesOf[p] = this.running.tombstones;
    t.objects += this.running.objects;
    t.tombstones += this.running.tombstones;
    invariant(t.objects >= 0 && t.tombstones >= 0 && t.partitionsKnown <= this.partitions, 'census totals stay within their partitions');
    this.scannedRoots.set(this.startRoot, p * 8);
    this.running = { objects: 0, tombstones: 0 };
    this.after = null;
    this.advance(nowMs);
  }

  private advance(nowMs: number): void {
    this.partition = (this.partition + 1) % this.partitions;
    if (this.partition === 0) {
      this.totals.passes++;
      this.totals.lastPassMs = nowMs;
    }
  }

  /** The current totals (a copy). */
  current(): CensusTotals {
    return { ...this.totals };
  }

  /** Records (objects and tombstones) of one partition at its last complete scan, or null if it was not scanned yet. */
  recordsIn(partition: number): number | null {
    const o = this.objectsOf[partition];
    return o === undefined || o < 0 ? null : o + this.tombstonesOf[partition]!;
  }
}

function sameRoot(roots: Uint8Array, scanned: Uint8Array, p: number): boolean {
  for (let i = p * 8; i < p * 8 + 8; i++) if (roots[i] !== scanned[i]) return false;
  return true;
}
