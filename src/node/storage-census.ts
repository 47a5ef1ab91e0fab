// The storage census's driver: scans the store partition by partition in the
// background, a bounded budget per tick, and feeds src/core/storage-census.ts,
// whose counts /metrics reports. Why a scan and not counters kept by the
// write paths: sled has no O(1) count, the engine's merge does not say whether
// a key was new, and counters persisted beside the data would need the write
// path's crash consistency in the Rust engine. The cost is staleness: a
// partition's figures are those of its last scan (the first pass over 100k
// objects took ~20 s here, bench/RESULTS.md; after it, only partitions
// written to since are scanned again).
import { StorageCensus, type CensusTotals } from '../core/storage-census.js';
import type { Engine } from '../engine/types.js';
import { EngineError } from '../engine/types.js';
import { decodeRecord } from '../record/index.js';
import type { Clock, Timer } from '../transport/types.js';
import { isAllTombstones } from './reaper.js';

export interface StorageCensusOptions {
  /** Time between ticks (default 250 ms). */
  intervalMs: number;
  /** Records read per tick at most (default 2000: 8000 a second). */
  recordsPerTick: number;
  /** Record bytes read per tick at most (default 4 MiB: large values stop a tick early). */
  bytesPerTick: number;
  /** Scans per tick at most (an empty partition costs one; default 1024). */
  scansPerTick: number;
  /** Records per scan (default 128). */
  pageSize: number;
}

export const DEFAULT_STORAGE_CENSUS_OPTIONS: StorageCensusOptions = {
  intervalMs: 250,
  recordsPerTick: 2_000,
  bytesPerTick: 4 * 1024 * 1024,
  scansPerTick: 1_024,
  pageSize: 128,
};

export class StorageCensusService {
  private readonly census: StorageCensus;
  private readonly opts: StorageCensusOptions;
  private timer: Timer | null = null;
  private stopped = false;

  constructor(
    private readonly engine: Pick<Engine, 'partitionBits' | 'scanPartition' | 'treeRoots'>,
    private readonly clock: Clock,
    /** Skip a tick while client requests are slow (the node's ForegroundLoad). */
    private readonly shouldYield: () => Promise<boolean>,
    opts: Partial<StorageCensusOptions> = {},
  ) {
    this.opts = { ...DEFAULT_STORAGE_CENSUS_OPTIONS, ...opts };
    this.census = new StorageCensus(2 ** engine.partitionBits);
  }

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  totals(): CensusTotals {
    return this.census.current();
  }

  /** Records of a partition at its last scan (null: not scanned yet). */
  recordsIn(partition: number): number | null {
    return this.census.recordsIn(partition);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.clock.setTimer(this.opts.intervalMs, () => {
      this.tick().then(
        () => this.schedule(),
        (err: unknown) => {
          // A closed engine ends the census; anything else is retried next tick.
          if (!(err instanceof EngineError && err.code === 'CLOSED')) this.schedule();
        },
      );
    });
  }

  /** One tick: scans until a budget is spent. */
  async tick(): Promise<void> {
    if (this.stopped || (await this.shouldYield())) return;
    let records = 0;
    let bytes = 0;
    const roots = this.engine.treeRoots();
    for (let scans = 0; scans < this.opts.scansPerTick && records < this.opts.recordsPerTick && bytes < this.opts.bytesPerTick; scans++) {
      const step = this.census.next(roots, this.clock.now());
      if (step === null) return; // nothing changed since the last scans
      const { partition, after } = step;
      const page = await this.engine.scanPartition(partition, after, this.opts.pageSize);
      if (this.stopped) return;
      let tombstones = 0;
      for (const item of page.items) {
        bytes += item.record.length;
        if (isAllTombstones(decodeRecord(item.record))) tombstones++;
      }
      records += page.items.length;
      this.census.onPage({ objects: page.items.length - tombstones, tombstones, next: page.next }, this.clock.now());
    }
  }
}
