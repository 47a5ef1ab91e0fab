// The write state machine (Dynamo §5): the coordinating replica has already
// created the new version locally (it counts as the first ack); the record
// goes to the other replicas, and the client is answered once W acks (and
// DW durable acks) are in, or as soon as that has become impossible.

export type PutEffect =
  | { kind: 'send'; node: string }
  | { kind: 'reply'; ok: true; acks: number; durableAcks: number }
  | { kind: 'reply'; ok: false; code: 'QUORUM_FAILED' | 'TIMEOUT'; acks: number; needed: number; durableAcks: number; durableNeeded: number }
  | { kind: 'done' };

export class PutCoordinator {
  private readonly pending: Set<string>;
  private acks = 1;
  private durableAcks: number;
  private replied = false;
  private finished = false;

  constructor(
    /** The other replicas that should receive the record. */
    private readonly others: readonly string[],
    private readonly w: number,
    private readonly dw: number,
    /** Whether the coordinator's own write was flushed to disk. */
    localDurable: boolean,
  ) {
    if (w < 1 || dw < 0 || dw > w) throw new Error(`bad quorum w=${w} dw=${dw}`);
    this.pending = new Set(others);
    if (this.pending.size !== others.length) throw new Error('replicas must be distinct');
    this.durableAcks = localDurable ? 1 : 0;
  }

  start(): PutEffect[] {
    const effects: PutEffect[] = this.others.map((node) => ({ kind: 'send', node }) as const);
    return [...effects, ...this.progress()];
  }

  onAck(node: string, durable: boolean): PutEffect[] {
    if (!this.pending.delete(node)) return [];
    this.acks++;
    if (durable) this.durableAcks++;
    return this.progress();
  }

  onFailure(node: string): PutEffect[] {
    if (!this.pending.delete(node)) return [];
    return this.progress();
  }

  onDeadline(): PutEffect[] {
    if (this.replied) return [];
    this.replied = true;
    return [this.failure('TIMEOUT')];
  }

  private satisfied(): boolean {
    return this.acks >= this.w && this.durableAcks >= this.dw;
  }

  private progress(): PutEffect[] {
    const effects: PutEffect[] = [];
    if (!this.replied) {
      if (this.satisfied()) {
        this.replied = true;
        effects.push({ kind: 'reply', ok: true, acks: this.acks, durableAcks: this.durableAcks });
      } else if (this.acks + this.pending.size < this.w || this.durableAcks + this.pending.size < this.dw) {
        this.replied = true;
        effects.push(this.failure('QUORUM_FAILED'));
      }
    }
    if (this.pending.size === 0 && !this.finished) {
      this.finished = true;
      effects.push({ kind: 'done' });
    }
    return effects;
  }

  private failure(code: 'QUORUM_FAILED' | 'TIMEOUT'): PutEffect {
    return { kind: 'reply', ok: false, code, acks: this.acks, needed: this.w, durableAcks: this.durableAcks, durableNeeded: this.dw };
  }
}
