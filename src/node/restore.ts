// Merging whole records into the cluster (POST /admin/merge, used by
// `ringkv restore`; docs/backup.md). Each record goes to every primary of
// its key through the ordinary replica merge (the DVV sync, reap floors
// applied), as replication and read repair deliver copies: a version the
// cluster already superseded is dropped, a concurrent one becomes a
// sibling, nothing newer is lost. Merging is idempotent, so a batch sent
// again (a restore run again) changes nothing more.
import { decodeRecord, type ConflictMode } from '../record/index.js';
import { EngineError } from '../engine/types.js';
import type { ServiceContext } from './context.js';
import { NodeError } from './errors.js';
import { MAX_MERGE_BATCH } from './messages.js';

/** What merging records uses of the node. */
export type RecordMergeContext = Pick<ServiceContext, 'id' | 'peerRequest'> & {
  /** The key's primaries and the bucket's w and mode (throws for a bad key). */
  placement(bucket: Buffer, key: Buffer): { primaries: readonly string[]; w: number; mode: ConflictMode };
  /** Merges into this node's own copy (the replica role's merge, floors applied). */
  mergeLocal(bucket: Buffer, key: Buffer, record: Buffer, mode: ConflictMode, durable: boolean): Promise<unknown>;
  requestTimeoutMs: number;
};

export interface MergeItem {
  bucket: Buffer;
  key: Buffer;
  record: Buffer;
}

export interface MergeOutcome {
  /** Items at least w primaries merged (durably). */
  merged: number;
  /** The others, by index in the batch: why (too few primaries answered, or the item itself is bad). */
  failed: Array<{ index: number; error: string; message: string }>;
}

/** Most records one POST /admin/merge may carry. */
export const MAX_RESTORE_BATCH = MAX_MERGE_BATCH;

export class RecordMerger {
  constructor(private readonly ctx: RecordMergeContext) {}

  /** Merges every item into its key's primaries (one 'kv.mergebatch' per primary, durable); each item needs w of them. */
  async mergeAll(items: readonly MergeItem[]): Promise<MergeOutcome> {
    if (items.length > MAX_RESTORE_BATCH) throw new NodeError('BAD_REQUEST', `at most ${MAX_RESTORE_BATCH} objects per merge`);
    const failed: MergeOutcome['failed'] = [];
    const acks = new Array<number>(items.length).fill(0);
    const need = new Array<number>(items.length).fill(0);
    const modes: ConflictMode[] = [];
    const byNode = new Map<string, number[]>();
    items.forEach((item, index) => {
      try {
        decodeRecord(item.record);
        const { primaries, w, mode } = this.ctx.placement(item.bucket, item.key);
        need[index] = w;
        modes[index] = mode;
        for (const node of primaries) {
          const list = byNode.get(node) ?? [];
          list.push(index);
          byNode.set(node, list);
        }
      } catch (err) {
        need[index] = -1;
        failed.push({ index, ...describe(err) });
      }
    });
    const errors = new Map<number, string>();
    await Promise.all(
      [...byNode].map(async ([node, indices]) => {
        try {
          if (node === this.ctx.id) {
            await Promise.all(indices.map((i) => this.ctx.mergeLocal(items[i]!.bucket, items[i]!.key, items[i]!.record, modes[i]!, true)));
          } else {
            const body = { items: indices.map((i) => ({ b: items[i]!.bucket, k: items[i]!.key, record: items[i]!.record, lww: modes[i] === 'lww' })), durable: true };
            await this.ctx.peerRequest(node, 'kv.mergebatch', body, this.ctx.requestTimeoutMs);
          }
          for (const i of indices) acks[i]!++;
        } catch (err) {
          for (const i of indices) errors.set(i, `${node}: ${(err as Error).message}`);
        }
      }),
    );
    let merged = 0;
    items.forEach((_, index) => {
      if (need[index] === -1) return;
      if (acks[index]! >= need[index]!) merged++;
      else failed.push({ index, error: 'QUORUM_FAILED', message: `${acks[index]} of w=${need[index]} primaries merged it${errors.has(index) ? ` (${errors.get(index)})` : ''}` });
    });
    failed.sort((a, b) => a.index - b.index);
    return { merged, failed };
  }
}

function describe(err: unknown): { error: string; message: string } {
  if (err instanceof NodeError) return { error: err.code, message: err.message };
  if (err instanceof EngineError) return { error: err.code === 'CORRUPT_RECORD' || err.code === 'INVALID_ARGUMENT' ? 'BAD_REQUEST' : err.code, message: err.message };
  return { error: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
}
