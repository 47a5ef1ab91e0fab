// The write state machine (Dynamo §4.6, §5): the coordinating replica has
// already created the new version locally (it counts as the first ack, and
// as a primary ack: only a primary coordinates); the record goes to one
// target per other replica slot, and the client is answered once W acks (and
// DW durable acks, and PW primary acks) are in, or as soon as that has
// become impossible.
//
// Sloppy quorum: a slot's target is its primary, or — when the node runtime
// suspects that primary — a fallback node carrying a hint naming the primary
// (`hintFor`). A fallback stores the record in its hint store and acks; a
// hinted ack counts toward W and DW, never toward PW. When an attempt fails
// (the request errored or timed out), the slot is retried on the next unused
// fallback, again with a hint for the slot's primary, at most `maxRetries`
// times per slot and only until the deadline. Retries go on after a
// successful reply, so the write still reaches N nodes when it can.

export interface ReplicaTarget {
  node: string;
  /** The primary this copy is meant for, when `node` is a fallback holding it as a hint. */
  hintFor: string | null;
}

export type PutEffect =
  | { kind: 'send'; node: string; hintFor: string | null }
  | { kind: 'reply'; ok: true; acks: number; durableAcks: number; primaryAcks: number }
  | {
      kind: 'reply';
      ok: false;
      code: 'QUORUM_FAILED' | 'TIMEOUT';
      acks: number;
      needed: number;
      durableAcks: number;
      durableNeeded: number;
      primaryAcks: number;
      primaryNeeded: number;
    }
  | { kind: 'done' };

export interface PutOptions {
  /** Substitutes not already targeted, in the order to try them (healthy ones first). Default none. */
  fallbacks?: readonly string[];
  /** Acks required from primaries (not hinted), the coordinator's own included. Default 0. */
  pw?: number;
  /** Further attempts per slot after a failed one. Default 2. */
  maxRetries?: number;
}

interface Slot {
  /** The primary this slot's copy belongs to. */
  readonly primary: string;
  node: string;
  hintFor: string | null;
  retries: number;
  state: 'pending' | 'acked' | 'failed';
}

export class PutCoordinator {
  private readonly slots: Slot[];
  private readonly byNode = new Map<string, Slot>();
  private readonly fallbacks: string[];
  private readonly pw: number;
  private readonly maxRetries: number;
  private acks = 1;
  private primaryAcks = 1;
  private durableAcks: number;
  private replied = false;
  private finished = false;
  private expired = false;

  constructor(
    /** One target per other replica slot: a node name (a primary) or a target with its hint. */
    others: ReadonlyArray<string | ReplicaTarget>,
    private readonly w: number,
    private readonly dw: number,
    /** Whether the coordinator's own write was flushed to disk. */
    localDurable: boolean,
    opts: PutOptions = {},
  ) {
    this.pw = opts.pw ?? 0;
    this.maxRetries = opts.maxRetries ?? 2;
    if (w < 1 || dw < 0 || dw > w || this.pw < 0) throw new Error(`bad quorum w=${w} dw=${dw} pw=${this.pw}`);
    if (!Number.isInteger(this.maxRetries) || this.maxRetries < 0) throw new Error(`bad maxRetries ${this.maxRetries}`);
    this.slots = others.map((o) => {
      const t = typeof o === 'string' ? { node: o, hintFor: null } : o;
      return { primary: t.hintFor ?? t.node, node: t.node, hintFor: t.hintFor, retries: 0, state: 'pending' as const };
    });
    for (const s of this.slots) {
      if (this.byNode.has(s.node)) throw new Error('replicas must be distinct');
      this.byNode.set(s.node, s);
    }
    this.fallbacks = (opts.fallbacks ?? []).filter((f) => !this.byNode.has(f));
    if (new Set(this.fallbacks).size !== this.fallbacks.length) throw new Error('fallbacks must be distinct');
    this.durableAcks = localDurable ? 1 : 0;
  }

  start(): PutEffect[] {
    const effects: PutEffect[] = this.slots.map((s) => ({ kind: 'send', node: s.node, hintFor: s.hintFor }) as const);
    return [...effects, ...this.progress()];
  }

  onAck(node: string, durable: boolean): PutEffect[] {
    const slot = this.current(node);
    if (!slot) return [];
    slot.state = 'acked';
    this.acks++;
    if (durable) this.durableAcks++;
    if (slot.hintFor === null) this.primaryAcks++;
    return this.progress();
  }

  /** The attempt on `node` failed: retry its slot on the next fallback, if any is left and time remains. */
  onFailure(node: string): PutEffect[] {
    const slot = this.current(node);
    if (!slot) return [];
    const effects: PutEffect[] = [];
    const next = !this.expired && slot.retries < this.maxRetries ? this.fallbacks.shift() : undefined;
    if (next === undefined) slot.state = 'failed';
    else {
      slot.retries++;
      slot.node = next;
      slot.hintFor = slot.primary;
      this.byNode.set(next, slot);
      effects.push({ kind: 'send', node: next, hintFor: slot.primary });
    }
    return [...effects, ...this.progress()];
  }

  /** The client's deadline passed: fail if the quorum is not in; no retries from now on. */
  onDeadline(): PutEffect[] {
    this.expired = true;
    if (this.replied) return [];
    this.replied = true;
    return [this.failure('TIMEOUT')];
  }

  private current(node: string): Slot | undefined {
    const slot = this.byNode.get(node);
    return slot && slot.node === node && slot.state === 'pending' && !this.finished ? slot : undefined;
  }

  private satisfied(): boolean {
    return this.acks >= this.w && this.durableAcks >= this.dw && this.primaryAcks >= this.pw;
  }

  private progress(): PutEffect[] {
    const effects: PutEffect[] = [];
    const pending = this.slots.filter((s) => s.state === 'pending');
    if (!this.replied) {
      // A pending slot can still ack; only one still aimed at its primary can add a primary ack.
      const primaryPending = pending.filter((s) => s.hintFor === null).length;
      if (this.satisfied()) {
        this.replied = true;
        effects.push({ kind: 'reply', ok: true, acks: this.acks, durableAcks: this.durableAcks, primaryAcks: this.primaryAcks });
      } else if (
        this.acks + pending.length < this.w ||
        this.durableAcks + pending.length < this.dw ||
        this.primaryAcks + primaryPending < this.pw
      ) {
        this.replied = true;
        effects.push(this.failure('QUORUM_FAILED'));
      }
    }
    if (pending.length === 0 && !this.finished) {
      this.finished = true;
      effects.push({ kind: 'done' });
    }
    return effects;
  }

  private failure(code: 'QUORUM_FAILED' | 'TIMEOUT'): PutEffect {
    return {
      kind: 'reply',
      ok: false,
      code,
      acks: this.acks,
      needed: this.w,
      durableAcks: this.durableAcks,
      durableNeeded: this.dw,
      primaryAcks: this.primaryAcks,
      primaryNeeded: this.pw,
    };
  }
}
