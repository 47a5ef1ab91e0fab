// The reap verdict (docs/cluster.md "Deletes and tombstones"): whether a
// deleted key's tombstone may be removed now, from every member's answer to
// a reap check. Pure, so each rule is a table row (test/core/reap.test.ts);
// the reap driver (src/node/reap-driver.ts) gathers the answers and acts on
// the verdict, as riak_kv's reaper acts on its checks.
import { type Context, type DecodedRecord, covers, decodeRecord } from '../record/index.js';

/** One member's answer to a reap check: its copy of the key, whether it holds a hint for it, and the ring it routes by. */
export interface ReapCheck {
  record: Buffer | null;
  hinted: boolean;
  ringVersion: number;
  claimant: string;
}

/** Why a tombstone stays for now (a metric label each). */
export type ReapWait =
  | 'primary_unreachable'
  | 'member_unreachable'
  | 'ring_not_settled'
  | 'hint_pending'
  | 'primary_without_record'
  | 'replicas_differ'
  | 'stray_copy'
  | 'not_deleted';

export type ReapVerdict = { kind: 'reap'; tombstone: Buffer } | { kind: 'wait'; reason: ReapWait };

/** A record whose every sibling is a tombstone (and that has one). */
export function isAllTombstones(rec: DecodedRecord): boolean {
  return rec.siblings.length > 0 && rec.siblings.every((s) => s.tombstone);
}

/**
 * The tombstone may be reaped only if every member answered (null: it did
 * not), each from `ring` (a member still routing by an older ring could
 * answer a client with the value this reap removes); every primary holds
 * the byte-identical all-tombstone record and no hint for the key (an old
 * version waiting for handoff); and no other member holds a hint or a copy
 * (a stray copy). The first rule broken, in member order, is the reason.
 */
export function reapVerdict(
  members: readonly string[],
  primaries: readonly string[],
  checks: ReadonlyArray<ReapCheck | null>,
  ring: { version: number; claimant: string },
): ReapVerdict {
  if (checks.length !== members.length) throw new Error(`reap verdict: ${checks.length} checks for ${members.length} members`);
  const wait = (reason: ReapWait): ReapVerdict => ({ kind: 'wait', reason });
  let tombstone: Buffer | null = null;
  for (const [i, m] of members.entries()) {
    const c = checks[i];
    const primary = primaries.includes(m);
    if (!c) return wait(primary ? 'primary_unreachable' : 'member_unreachable');
    if (c.ringVersion !== ring.version || c.claimant !== ring.claimant) return wait('ring_not_settled');
    if (c.hinted) return wait('hint_pending');
    if (primary) {
      if (!c.record) return wait('primary_without_record');
      if (tombstone === null) tombstone = c.record;
      else if (!tombstone.equals(c.record)) return wait('replicas_differ');
    } else if (c.record) return wait('stray_copy');
  }
  if (tombstone === null || !isAllTombstones(decodeRecord(tombstone))) return wait('not_deleted');
  return { kind: 'reap', tombstone };
}

/** Whether every sibling of `rec` is covered by `ctx` (deleted history, once `ctx` is a reaped record's context). */
export function allCovered(rec: DecodedRecord, ctx: Context): boolean {
  return rec.siblings.every((s) => covers(ctx, s));
}

/**
 * What a primary asked to reap `tombstone` (a kv.reap, all tombstones) does
 * first with its stored copy of the key (the local reap plan; the replica
 * role runs it under the key's exclusive gate, src/node/replica.ts):
 * - `floor`: it holds nothing — it only remembers the tombstone as a floor,
 *   so a late stale copy cannot bring the value back; nothing is reaped;
 * - `reap`: it holds exactly the tombstone — reap it;
 * - `merge`: it holds other bytes whose every sibling the tombstone's context
 *   covers (a tombstone of its own, or history the delete saw) — merge the
 *   two, and reap the result only if it is all tombstones;
 * - `refuse`: it holds something the delete did not see (a newer write).
 */
export function localReapStep(stored: Buffer | null, tombstone: Buffer, tomb: DecodedRecord = decodeRecord(tombstone)): 'floor' | 'reap' | 'merge' | 'refuse' {
  if (!isAllTombstones(tomb)) throw new Error('a local reap of a record that is not all tombstones');
  if (stored === null) return 'floor';
  if (stored.equals(tombstone)) return 'reap';
  return allCovered(decodeRecord(stored), tomb.context) ? 'merge' : 'refuse';
}
