// Transfers the node gives (its /status `transfers`: partition, target,
// objects sent, pass 1..3), followed from poll to poll: how many of the
// partitions planned since the transfers began are done, and at what rate
// objects go out. A transfer's total is not known ahead, so progress counts
// partitions and their passes (docs/dashboard.md).
export interface TransferRow {
  partition: number;
  to: string;
  /** Objects sent so far (every pass). */
  sent: number;
  /** 1: the first copy; 2 and 3: catch-up passes for writes routed by the old ring. */
  pass: number;
}

export const PASSES = 3;

export interface TargetProgress {
  to: string;
  planned: number;
  done: number;
  pending: number;
  /** Objects sent to this target so far, over the transfers still pending. */
  sent: number;
  /** 0..1: finished partitions plus the passes of pending ones. */
  progress: number;
  objectsPerS: number | null;
}

export interface TransferView {
  planned: number;
  done: number;
  progress: number;
  objectsPerS: number | null;
  targets: TargetProgress[];
  rows: ReadonlyArray<TransferRow & { objectsPerS: number | null }>;
}

const keyOf = (r: TransferRow): string => `${r.partition}>${r.to}`;

export class TransferTracker {
  /** Every transfer seen since the node last had none pending, by key → target. */
  private seen = new Map<string, string>();
  private last: { atMs: number; sent: Map<string, number> } | null = null;

  update(rows: readonly TransferRow[], atMs: number): TransferView {
    if (rows.length === 0) this.seen.clear();
    for (const r of rows) this.seen.set(keyOf(r), r.to);
    const prev = this.last;
    const seconds = prev === null ? 0 : (atMs - prev.atMs) / 1000;
    const rowRate = (r: TransferRow): number | null => {
      const before = prev?.sent.get(keyOf(r));
      return before === undefined || seconds <= 0 || r.sent < before ? null : (r.sent - before) / seconds;
    };
    const withRates = rows.map((r) => ({ ...r, objectsPerS: rowRate(r) }));
    this.last = { atMs, sent: new Map(rows.map((r) => [keyOf(r), r.sent])) };

    const targets = new Map<string, TargetProgress>();
    for (const to of new Set(this.seen.values())) targets.set(to, { to, planned: 0, done: 0, pending: 0, sent: 0, progress: 0, objectsPerS: null });
    const pendingByKey = new Map(withRates.map((r) => [keyOf(r), r]));
    let credit = 0;
    for (const [key, to] of this.seen) {
      const t = targets.get(to)!;
      t.planned++;
      const row = pendingByKey.get(key);
      if (row === undefined) {
        t.done++;
        t.progress++;
        credit++;
      } else {
        t.pending++;
        t.sent += row.sent;
        const partial = (Math.min(row.pass, PASSES) - 1) / PASSES;
        t.progress += partial;
        credit += partial;
        if (row.objectsPerS !== null) t.objectsPerS = (t.objectsPerS ?? 0) + row.objectsPerS;
      }
    }
    for (const t of targets.values()) t.progress = t.planned > 0 ? t.progress / t.planned : 1;
    const rates = withRates.map((r) => r.objectsPerS).filter((r): r is number => r !== null);
    return {
      planned: this.seen.size,
      done: this.seen.size - rows.length,
      progress: this.seen.size > 0 ? credit / this.seen.size : 1,
      objectsPerS: rates.length > 0 ? rates.reduce((a, b) => a + b, 0) : null,
      targets: [...targets.values()].sort((a, b) => a.to.localeCompare(b.to)),
      rows: withRates,
    };
  }
}

/** /status `transfers` as rows; anything malformed is left out (the page shows what it understands). */
export function transferRows(doc: unknown): TransferRow[] {
  if (!Array.isArray(doc)) return [];
  return doc.filter(
    (r): r is TransferRow =>
      typeof r === 'object' && r !== null && typeof r.partition === 'number' && typeof r.to === 'string' && typeof r.sent === 'number' && typeof r.pass === 'number',
  );
}
