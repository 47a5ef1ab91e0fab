// Active anti-entropy: one exchange between the local replica and a remote
// replica of one partition, as a pure state machine over TicTac trees
// (docs/engine.md "TicTac trees"; DYNAMO.md "Anti-entropy").
//
//   root      both sides' partition root (8 bytes each); equal → in sync, done.
//   branches  both sides' 2^B branch hashes; differing branches, at most
//             maxBranches of them, are descended into.
//   segments  both sides' 2^S segment hashes of each chosen branch; differing
//             segments, at most maxSegments, are descended into.
//   keys      both sides' (bucket, key, leaf hash) of the chosen segments; a
//             key whose leaf hash differs or that one side lacks is in the
//             repair set (at most maxKeys).
//
// Whatever the limits cut off is found again by the next exchange: the
// repaired keys no longer differ, so the next round descends into the rest.
// When a list is cut, it is first rotated by `offset` (0..1) so that a
// difference that cannot be repaired (e.g. a key of a bucket with a smaller
// n, held by one replica only) never starves the others.
//
// No I/O: the state machine asks for data (`fetch` effects, one per side and
// step) and is fed the replies in their wire form (big-endian u64 groups for
// hashes; `encodeSegmentKeys` for key lists), so it can count the bytes that
// travel. Bytes are counted for the remote side only: the local side's
// answers never cross the network.

import { bufferView } from '../util/bytes.js';
import { keyId } from '../record/keys.js';

export type AaeSide = 'local' | 'remote';
export type AaeStep = 'root' | 'branches' | 'segments' | 'keys';
export const AAE_STEPS: readonly AaeStep[] = ['root', 'branches', 'segments', 'keys'];

export interface AaeLimits {
  /** Differing branches descended into per exchange. */
  maxBranches: number;
  /** Differing segments whose keys are fetched per exchange. */
  maxSegments: number;
  /** Keys in the repair set per exchange. */
  maxKeys: number;
}

export const DEFAULT_AAE_LIMITS: AaeLimits = { maxBranches: 64, maxSegments: 256, maxKeys: 1_000 };

export interface AaeExchangeOptions extends AaeLimits {
  partition: number;
  /** log2 of branches per partition tree (the engine's treeBranchBits). */
  branchBits: number;
  /** log2 of segments per branch (the engine's treeSegmentBits). */
  segmentBits: number;
  /** In [0, 1): where a cut list starts (rotation). Default 0. */
  offset?: number;
}

/** What to ask a side for; the partition is the exchange's. */
export type AaeQuery =
  | { step: 'root' }
  | { step: 'branches' }
  | { step: 'segments'; branches: number[] }
  | { step: 'keys'; segments: number[] };

export interface RepairKey {
  bucket: Buffer;
  key: Buffer;
  /** Whether each side holds the key (at least one does). */
  local: boolean;
  remote: boolean;
}

export interface StepBytes {
  /** Request payload sent to the remote side (partition u32 + index lists). */
  requested: number;
  /** Reply payload received from the remote side. */
  received: number;
}

export interface AaeResult {
  partition: number;
  /** in_sync: roots equal. diverged: roots differed (repair set possibly empty after a race). failed: a fetch failed. */
  outcome: 'in_sync' | 'diverged' | 'failed';
  error?: string;
  /** The last step reached. */
  step: AaeStep;
  bytes: Record<AaeStep, StepBytes>;
  totalBytes: number;
  differing: { branches: number; segments: number; keys: number };
  /** Every difference found at every level was followed (nothing left for the next round). */
  complete: boolean;
}

export type AaeEffect =
  | { kind: 'fetch'; side: AaeSide; query: AaeQuery }
  | { kind: 'repair'; keys: RepairKey[] }
  | { kind: 'done'; result: AaeResult };

export class AaeProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AaeProtocolError';
  }
}

/** Wire size of a request: u32 partition, then u16 branch or u32 segment indices. */
export function requestBytes(query: AaeQuery): number {
  switch (query.step) {
    case 'root':
    case 'branches':
      return 4;
    case 'segments':
      return 4 + 2 * query.branches.length;
    case 'keys':
      return 4 + 4 * query.segments.length;
  }
}

export class AaeExchange {
  private readonly opts: Required<AaeExchangeOptions>;
  private step: AaeStep = 'root';
  private pending: Partial<Record<AaeSide, true>> = {};
  private replies: Partial<Record<AaeSide, Buffer>> = {};
  private query: AaeQuery = { step: 'root' };
  private finished = false;
  private complete = true;
  private readonly bytes: Record<AaeStep, StepBytes> = {
    root: { requested: 0, received: 0 },
    branches: { requested: 0, received: 0 },
    segments: { requested: 0, received: 0 },
    keys: { requested: 0, received: 0 },
  };
  private readonly differing = { branches: 0, segments: 0, keys: 0 };

  constructor(options: AaeExchangeOptions) {
    const o = { offset: 0, ...options };
    for (const [name, v] of Object.entries({ maxBranches: o.maxBranches, maxSegments: o.maxSegments, maxKeys: o.maxKeys })) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer`);
    }
    for (const [name, v] of Object.entries({ branchBits: o.branchBits, segmentBits: o.segmentBits })) {
      if (!Number.isInteger(v) || v < 1 || v > 12) throw new RangeError(`${name} must be an integer in 1..12`);
    }
    if (!Number.isInteger(o.partition) || o.partition < 0) throw new RangeError('partition must be a non-negative integer');
    if (!(o.offset >= 0 && o.offset < 1)) throw new RangeError('offset must be in [0, 1)');
    this.opts = o;
  }

  get partition(): number {
    return this.opts.partition;
  }

  get done(): boolean {
    return this.finished;
  }

  /** The first requests: both roots. */
  start(): AaeEffect[] {
    if (this.step !== 'root' || this.pending.local || this.pending.remote || this.finished) throw new AaeProtocolError('exchange already started');
    return this.ask({ step: 'root' });
  }

  /** A side's reply to the current step's fetch, in wire form. */
  onReply(side: AaeSide, step: AaeStep, data: Uint8Array): AaeEffect[] {
    if (this.finished) return [];
    if (step !== this.step || !this.pending[side]) throw new AaeProtocolError(`unexpected ${side} reply for ${step} (at ${this.step})`);
    const buf = bufferView(data);
    this.checkShape(buf);
    delete this.pending[side];
    this.replies[side] = buf;
    if (side === 'remote') this.bytes[step].received += buf.length;
    if (this.pending.local || this.pending.remote) return [];
    const local = this.replies.local!;
    const remote = this.replies.remote!;
    this.replies = {};
    switch (this.step) {
      case 'root':
        return local.equals(remote) ? this.finish('in_sync') : this.ask({ step: 'branches' });
      case 'branches': {
        const diff = differingGroups(local, remote);
        this.differing.branches += diff.length;
        const chosen = this.cut(diff, this.opts.maxBranches);
        return chosen.length === 0 ? this.finish('diverged') : this.ask({ step: 'segments', branches: chosen });
      }
      case 'segments': {
        const q = this.query as { step: 'segments'; branches: number[] };
        const perBranch = 1 << this.opts.segmentBits;
        const diff: number[] = [];
        for (const [i, branch] of q.branches.entries()) {
          const lo = i * perBranch * 8;
          const hi = lo + perBranch * 8;
          for (const s of differingGroups(local.subarray(lo, hi), remote.subarray(lo, hi))) diff.push(branch * perBranch + s);
        }
        this.differing.segments += diff.length;
        const chosen = this.cut(diff, this.opts.maxSegments).sort((a, b) => a - b);
        return chosen.length === 0 ? this.finish('diverged') : this.ask({ step: 'keys', segments: chosen });
      }
      case 'keys': {
        const repair = compareKeyLists(decodeSegmentKeys(local), decodeSegmentKeys(remote));
        this.differing.keys += repair.length;
        const chosen = this.cut(repair, this.opts.maxKeys);
        const effects: AaeEffect[] = chosen.length > 0 ? [{ kind: 'repair', keys: chosen }] : [];
        return [...effects, ...this.finish('diverged')];
      }
    }
  }

  /** A side could not answer: the exchange ends (the next round retries). */
  onFailure(side: AaeSide, step: AaeStep, error: string): AaeEffect[] {
    if (this.finished) return [];
    if (step !== this.step || !this.pending[side]) throw new AaeProtocolError(`unexpected ${side} failure for ${step} (at ${this.step})`);
    this.pending = {};
    this.complete = false;
    return this.finish('failed', `${side} ${step}: ${error}`);
  }

  private ask(query: AaeQuery): AaeEffect[] {
    this.step = query.step;
    this.query = query;
    this.pending = { local: true, remote: true };
    this.bytes[query.step].requested += requestBytes(query);
    return [
      { kind: 'fetch', side: 'local', query },
      { kind: 'fetch', side: 'remote', query },
    ];
  }

  private cut<T>(items: T[], max: number): T[] {
    if (items.length <= max) return items;
    this.complete = false;
    const start = Math.floor(this.opts.offset * items.length);
    const rotated = [...items.slice(start), ...items.slice(0, start)];
    return rotated.slice(0, max);
  }

  private checkShape(buf: Buffer): void {
    const expect = (n: number): void => {
      if (buf.length !== n) throw new AaeProtocolError(`${this.step} reply is ${buf.length} bytes, expected ${n}`);
    };
    switch (this.step) {
      case 'root':
        return expect(8);
      case 'branches':
        return expect(8 << this.opts.branchBits);
      case 'segments':
        return expect((this.query as { branches: number[] }).branches.length * (8 << this.opts.segmentBits));
      case 'keys':
        decodeSegmentKeys(buf); // throws on a malformed list, before any state changes
        return;
    }
  }

  private finish(outcome: AaeResult['outcome'], error?: string): AaeEffect[] {
    this.finished = true;
    const totalBytes = AAE_STEPS.reduce((sum, s) => sum + this.bytes[s].requested + this.bytes[s].received, 0);
    const result: AaeResult = {
      partition: this.opts.partition,
      outcome,
      step: this.step,
      bytes: this.bytes,
      totalBytes,
      differing: { ...this.differing },
      complete: this.complete,
    };
    if (error !== undefined) result.error = error;
    return [{ kind: 'done', result }];
  }
}

/** Indices of the 8-byte groups that differ between two equally long buffers. */
function differingGroups(a: Buffer, b: Buffer): number[] {
  const out: number[] = [];
  for (let off = 0; off < a.length; off += 8) {
    if (a.readBigUInt64BE(off) !== b.readBigUInt64BE(off)) out.push(off / 8);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Key lists on the wire: per key `u8 bucketLen ‖ bucket ‖ u16 keyLen ‖ key ‖
// 8-byte leaf hash`, in the order segmentKeys returned them (disk-key order).

export interface HashedKey {
  bucket: Uint8Array;
  key: Uint8Array;
  hash: Uint8Array;
}

export function encodeSegmentKeys(keys: readonly HashedKey[]): Buffer {
  let size = 0;
  for (const k of keys) size += 1 + k.bucket.length + 2 + k.key.length + 8;
  const out = Buffer.allocUnsafe(size);
  let off = 0;
  for (const k of keys) {
    if (k.bucket.length < 1 || k.bucket.length > 255 || k.key.length > 65535 || k.hash.length !== 8) throw new RangeError('bad segment key');
    off = out.writeUInt8(k.bucket.length, off);
    out.set(k.bucket, off);
    off += k.bucket.length;
    off = out.writeUInt16BE(k.key.length, off);
    out.set(k.key, off);
    off += k.key.length;
    out.set(k.hash, off);
    off += 8;
  }
  return out;
}

export function decodeSegmentKeys(buf: Buffer): Array<{ bucket: Buffer; key: Buffer; hash: Buffer }> {
  const out: Array<{ bucket: Buffer; key: Buffer; hash: Buffer }> = [];
  let off = 0;
  const need = (n: number): void => {
    if (off + n > buf.length) throw new AaeProtocolError('truncated key list');
  };
  while (off < buf.length) {
    need(1);
    const bl = buf.readUInt8(off);
    off += 1;
    need(bl + 2);
    const bucket = buf.subarray(off, off + bl);
    off += bl;
    const kl = buf.readUInt16BE(off);
    off += 2;
    need(kl + 8);
    const key = buf.subarray(off, off + kl);
    off += kl;
    const hash = buf.subarray(off, off + 8);
    off += 8;
    out.push({ bucket, key, hash });
  }
  return out;
}

/** Keys whose leaf hashes differ or that one side lacks, local order first, then remote-only keys. */
export function compareKeyLists(
  local: ReadonlyArray<{ bucket: Buffer; key: Buffer; hash: Buffer }>,
  remote: ReadonlyArray<{ bucket: Buffer; key: Buffer; hash: Buffer }>,
): RepairKey[] {
  const remoteByKey = new Map<string, Buffer>();
  for (const r of remote) remoteByKey.set(keyId(r.bucket, r.key), r.hash);
  const out: RepairKey[] = [];
  const seen = new Set<string>();
  for (const l of local) {
    const id = keyId(l.bucket, l.key);
    seen.add(id);
    const rh = remoteByKey.get(id);
    if (rh === undefined) out.push({ bucket: Buffer.from(l.bucket), key: Buffer.from(l.key), local: true, remote: false });
    else if (!rh.equals(l.hash)) out.push({ bucket: Buffer.from(l.bucket), key: Buffer.from(l.key), local: true, remote: true });
  }
  for (const r of remote) {
    if (!seen.has(keyId(r.bucket, r.key))) out.push({ bucket: Buffer.from(r.bucket), key: Buffer.from(r.key), local: false, remote: true });
  }
  return out;
}

/**
 * Runs an exchange to its end, asking `fetch` for each side's data (both
 * sides of a step in parallel) and `repair` for the repair set. Returns the
 * result. Pure plumbing: whatever I/O happens is in the callbacks.
 */
export async function driveExchange(
  exchange: AaeExchange,
  fetch: (side: AaeSide, query: AaeQuery) => Promise<Uint8Array>,
  repair: (keys: RepairKey[]) => Promise<void>,
): Promise<AaeResult> {
  let effects = exchange.start();
  for (;;) {
    const fetches: Array<{ side: AaeSide; query: AaeQuery }> = [];
    let result: AaeResult | null = null;
    for (const e of effects) {
      if (e.kind === 'fetch') fetches.push(e);
      else if (e.kind === 'repair') await repair(e.keys);
      else result = e.result;
    }
    if (result) return result;
    if (fetches.length === 0) throw new AaeProtocolError('exchange stalled');
    const replies = await Promise.all(
      fetches.map((f) =>
        fetch(f.side, f.query).then(
          (data) => ({ f, ok: true as const, data }),
          (err: unknown) => ({ f, ok: false as const, err }),
        ),
      ),
    );
    effects = [];
    for (const r of replies) {
      if (exchange.done) break;
      if (!r.ok) {
        effects.push(...exchange.onFailure(r.f.side, r.f.query.step, errorText(r.err)));
        continue;
      }
      try {
        effects.push(...exchange.onReply(r.f.side, r.f.query.step, r.data));
      } catch (err) {
        if (!(err instanceof AaeProtocolError)) throw err;
        effects.push(...exchange.onFailure(r.f.side, r.f.query.step, err.message));
      }
    }
  }
}

function errorText(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  const msg = err instanceof Error ? err.message : String(err);
  return typeof code === 'string' ? `${code}: ${msg}` : msg;
}
