// The read state machine (Dynamo §5): ask the replicas, answer as soon as R
// have replied, keep listening for late replies, then read-repair every
// replica whose copy differs from the reconciled one. Pure: replies,
// failures and timer expiries come in as calls; effects come out as data.

/** Reconciles replica records (DVV merge); null when there is no record at all. */
export type Reconcile = (records: readonly Uint8Array[]) => Uint8Array | null;

export type GetEffect =
  | { kind: 'reply'; ok: true; record: Uint8Array | null; answered: number }
  | { kind: 'reply'; ok: false; code: 'QUORUM_FAILED' | 'TIMEOUT'; answered: number; needed: number }
  | { kind: 'repair'; node: string; record: Uint8Array }
  | { kind: 'done' };

type Answer = { record: Uint8Array | null } | { failed: string };

export class GetCoordinator {
  private readonly answers = new Map<string, Answer>();
  private replied = false;
  private finished = false;

  constructor(
    /** Nodes asked, each once. */
    private readonly replicas: readonly string[],
    private readonly r: number,
    private readonly reconcile: Reconcile,
    private readonly equal: (a: Uint8Array, b: Uint8Array) => boolean,
  ) {
    if (new Set(replicas).size !== replicas.length) throw new Error('replicas must be distinct');
    if (r < 1) throw new Error('r must be at least 1');
  }

  get hasReplied(): boolean {
    return this.replied;
  }

  onReply(node: string, record: Uint8Array | null): GetEffect[] {
    if (!this.expects(node)) return [];
    this.answers.set(node, { record });
    return this.progress();
  }

  onFailure(node: string, reason: string): GetEffect[] {
    if (!this.expects(node)) return [];
    this.answers.set(node, { failed: reason });
    return this.progress();
  }

  /** The client's deadline passed: fail if R answers have not come in. */
  onDeadline(): GetEffect[] {
    if (this.replied) return [];
    this.replied = true;
    return [{ kind: 'reply', ok: false, code: 'TIMEOUT', answered: this.records().length, needed: this.r }];
  }

  /** The late-reply window after the answer closed: repair with what came in. */
  onLateWindowEnd(): GetEffect[] {
    return this.finish();
  }

  private expects(node: string): boolean {
    return !this.finished && this.replicas.includes(node) && !this.answers.has(node);
  }

  private records(): Array<{ node: string; record: Uint8Array | null }> {
    const out: Array<{ node: string; record: Uint8Array | null }> = [];
    for (const [node, a] of this.answers) if ('record' in a) out.push({ node, record: a.record });
    return out;
  }

  private progress(): GetEffect[] {
    const effects: GetEffect[] = [];
    const answered = this.records();
    if (!this.replied) {
      if (answered.length >= this.r) {
        this.replied = true;
        effects.push({ kind: 'reply', ok: true, record: this.merge(answered), answered: answered.length });
      } else if (answered.length + this.outstanding() < this.r) {
        this.replied = true;
        effects.push({ kind: 'reply', ok: false, code: 'QUORUM_FAILED', answered: answered.length, needed: this.r });
      }
    }
    if (this.outstanding() === 0 && this.replied) effects.push(...this.finish());
    return effects;
  }

  private outstanding(): number {
    return this.replicas.length - this.answers.size;
  }

  private merge(answered: ReadonlyArray<{ record: Uint8Array | null }>): Uint8Array | null {
    const present = answered.flatMap((a) => (a.record ? [a.record] : []));
    return present.length === 0 ? null : this.reconcile(present);
  }

  /** Repairs every replica that answered with something other than the reconciled record. */
  private finish(): GetEffect[] {
    if (this.finished) return [];
    this.finished = true;
    const answered = this.records();
    const merged = this.merge(answered);
    const effects: GetEffect[] = [];
    if (merged) {
      for (const { node, record } of answered) {
        if (!record || !this.equal(record, merged)) effects.push({ kind: 'repair', node, record: merged });
      }
    }
    effects.push({ kind: 'done' });
    return effects;
  }
}
