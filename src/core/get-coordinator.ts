// The read state machine (Dynamo §5): ask the replicas, answer as soon as R
// have replied, keep listening for late replies, then read-repair every
// replica whose copy differs from the reconciled one. Pure: replies,
// failures and timer expiries come in as calls; effects come out as data.
//
// Sloppy quorum: the node asks the key's primaries, replacing a suspected
// primary by a fallback. A fallback answers from its objects *and* from any
// hint it holds for the key (it may hold the newest acknowledged version
// while the primary is down), so its answer counts toward R. It is never
// read-repaired: repairs go to primaries only (a fallback has no business
// storing the key; its hint reaches the primary by handoff). PR (Riak's
// "primary read") additionally requires that many answers from primaries.
//
// Partition transfer: a replica still receiving the key's partition is no
// source on its own. Its answer comes in as a stand-in reply: its own copy
// merged with that of a node that has the partition (its giver, an old
// primary), and counts as the replica's answer toward R and PR; read repair
// compares the replica's own copy.
//
// Read-your-writes through one node: a node coordinates its writes itself
// when it is a primary, else forwards them to the first healthy primary, and
// that coordinator's own copy holds every write it acknowledged — the other
// copies may be hints on fallbacks the reader does not ask (the coordinator
// suspected a primary the reader trusts, e.g. just after a heal). So the
// reader names that node `awaited`: the answer waits for its reply (or its
// failure) besides R, and R + W > N then gives read-your-writes through one
// node even when the two disagree on who else is healthy.
//
// Fan-out (docs/cluster.md "Read fan-out"): with `ask` below the number of
// replicas (a bucket with read_fanout 'quorum'), the first `ask` are asked at
// once (start()) and the others in order only when the read needs them: one
// more for each asked replica that fails (or, before the answer, is slow:
// onSlow, Cassandra's speculative retry) while R (or PR) answers can no
// longer come from those asked, and every one left as soon as two answers
// differ (a replica missed a write: read the rest so that the reply's basis
// is R answers as always and read repair reaches every replica it can). With
// R agreeing answers in, nothing more is asked. R + W > N read-your-writes
// holds as with every replica asked: the R answers meet every write's W.

import { invariant } from './types.js';

/** Reconciles replica records (DVV merge); null when there is no record at all. */
export type Reconcile = (records: readonly Uint8Array[]) => Uint8Array | null;

export type GetEffect =
  | { kind: 'reply'; ok: true; record: Uint8Array | null; answered: number }
  | { kind: 'reply'; ok: false; code: 'QUORUM_FAILED' | 'TIMEOUT'; answered: number; needed: number; primaryAnswered: number; primaryNeeded: number }
  | { kind: 'repair'; node: string; record: Uint8Array }
  /** Read this replica (a request to it, or this node's own copy); `why`: the first asks, or why the read asks one more (fan-out quorum). */
  | { kind: 'ask'; node: string; why: AskReason }
  | { kind: 'done' };

export type AskReason = 'first' | 'failed' | 'slow' | 'differ';

type Answer = { record: Uint8Array | null; standIn?: { own: Uint8Array | null } } | { failed: string };

export interface GetOptions {
  /** Which of the replicas asked are primaries (the rest are fallbacks). Default: all of them. */
  primaries?: readonly string[];
  /** Answers required from primaries. Default 0. */
  pr?: number;
  /** A replica whose reply (or failure) the answer waits for, besides R: the node this reader's writes are coordinated by (see above); among the first `ask`. */
  awaited?: string;
  /** How many of the replicas (from the first) start() asks; the rest are asked only when needed (see above). Default: all. */
  ask?: number;
}

export class GetCoordinator {
  private readonly answers = new Map<string, Answer>();
  private readonly primaries: ReadonlySet<string>;
  private readonly pr: number;
  private readonly awaited: string | undefined;
  /** Replicas asked so far (each answers, fails, or is still out). */
  private readonly asked = new Set<string>();
  private replied = false;
  private finished = false;

  constructor(
    /** Nodes asked, each once. */
    private readonly replicas: readonly string[],
    private readonly r: number,
    private readonly reconcile: Reconcile,
    private readonly equal: (a: Uint8Array, b: Uint8Array) => boolean,
    opts: GetOptions = {},
  ) {
    if (new Set(replicas).size !== replicas.length) throw new Error('replicas must be distinct');
    if (r < 1) throw new Error('r must be at least 1');
    this.primaries = new Set(opts.primaries ?? replicas);
    this.pr = opts.pr ?? 0;
    if (!Number.isInteger(this.pr) || this.pr < 0) throw new Error(`bad pr ${this.pr}`);
    const ask = opts.ask ?? replicas.length;
    if (!Number.isInteger(ask) || ask < Math.min(r, replicas.length) || ask > replicas.length) throw new Error(`bad ask ${ask} for r=${r} of ${replicas.length} replicas`);
    for (const node of replicas.slice(0, ask)) this.asked.add(node);
    if (opts.awaited !== undefined && !this.asked.has(opts.awaited)) throw new Error(`awaited ${opts.awaited} is not among the replicas asked`);
    this.awaited = opts.awaited;
  }

  /** The first requests: one `ask` per replica asked at once. */
  start(): GetEffect[] {
    return [...this.asked].map((node) => ({ kind: 'ask', node, why: 'first' }));
  }

  /** Replicas asked so far, in the order asked. */
  get askedReplicas(): readonly string[] {
    return [...this.asked];
  }

  get hasReplied(): boolean {
    return this.replied;
  }

  onReply(node: string, record: Uint8Array | null): GetEffect[] {
    if (!this.expects(node)) return [];
    this.answers.set(node, { record });
    return this.progress();
  }

  /**
   * `node` is still receiving the key's partition: `own` is its copy,
   * `record` its copy merged with a source's (the giver's).
   */
  onStandInReply(node: string, own: Uint8Array | null, record: Uint8Array | null): GetEffect[] {
    if (!this.expects(node)) return [];
    this.answers.set(node, { record, standIn: { own } });
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
    return [{ kind: 'reply', ok: false, code: 'TIMEOUT', answered: this.records().length, needed: this.r, primaryAnswered: this.primaryAnswered(), primaryNeeded: this.pr }];
  }

  /**
   * The replicas asked have not given R answers after the node's
   * speculative-retry delay: ask the next one (Cassandra's speculative
   * retry). Nothing once the answer is out or every replica is asked.
   */
  onSlow(): GetEffect[] {
    if (this.replied || this.finished) return [];
    const next = this.replicas.find((n) => !this.asked.has(n));
    return next === undefined ? [] : this.askOne(next, 'slow');
  }

  /** The late-reply window after the answer closed: repair with what came in. */
  onLateWindowEnd(): GetEffect[] {
    return this.finish();
  }

  private expects(node: string): boolean {
    return !this.finished && this.asked.has(node) && !this.answers.has(node);
  }

  private askOne(node: string, why: AskReason): GetEffect[] {
    invariant(!this.asked.has(node) && this.replicas.includes(node), () => `${node} asked twice or not a replica`);
    this.asked.add(node);
    return [{ kind: 'ask', node, why }];
  }

  /** Two answers differ (a copy, or a stand-in's own copy against its merged one): some replica missed a write. */
  private disagree(): boolean {
    let first: Uint8Array | null | undefined;
    for (const a of this.answers.values()) {
      if (!('record' in a)) continue;
      const own = a.standIn ? a.standIn.own : a.record;
      for (const x of [own, a.record]) {
        if (first === undefined) first = x;
        else if (first === null || x === null ? first !== x : !this.equal(first, x)) return true;
      }
    }
    return false;
  }

  /** Asks the replicas the read needs now (see the top of the file); nothing when every one is asked. */
  private more(): GetEffect[] {
    const unasked = this.replicas.filter((n) => !this.asked.has(n));
    if (unasked.length === 0) return [];
    if (this.disagree()) return unasked.flatMap((n) => this.askOne(n, 'differ'));
    if (this.replied) return [];
    const effects: GetEffect[] = [];
    const short = () => this.records().length + this.outstanding() < this.r;
    const primaryShort = () => this.primaryAnswered() + this.outstandingPrimaries() < this.pr;
    // Short of primaries (pr): the next primaries (they count toward R too), never a fallback for that.
    for (const node of unasked) if (primaryShort() && this.primaries.has(node)) effects.push(...this.askOne(node, 'failed'));
    for (const node of unasked) if (short() && !this.asked.has(node)) effects.push(...this.askOne(node, 'failed'));
    return effects;
  }

  private records(): Array<{ node: string; record: Uint8Array | null; own: Uint8Array | null }> {
    const out: Array<{ node: string; record: Uint8Array | null; own: Uint8Array | null }> = [];
    for (const [node, a] of this.answers) if ('record' in a) out.push({ node, record: a.record, own: a.standIn ? a.standIn.own : a.record });
    return out;
  }

  private progress(): GetEffect[] {
    const effects: GetEffect[] = this.more();
    const answered = this.records();
    if (!this.replied) {
      const primaryAnswered = this.primaryAnswered();
      const awaitedIn = this.awaited === undefined || this.answers.has(this.awaited);
      if (answered.length >= this.r && primaryAnswered >= this.pr && awaitedIn) {
        this.replied = true;
        effects.push({ kind: 'reply', ok: true, record: this.merge(answered), answered: answered.length });
      } else if (answered.length + this.outstanding() < this.r || primaryAnswered + this.outstandingPrimaries() < this.pr) {
        // (more() asked every replica that could still help: none is left.)
        this.replied = true;
        effects.push({ kind: 'reply', ok: false, code: 'QUORUM_FAILED', answered: answered.length, needed: this.r, primaryAnswered, primaryNeeded: this.pr });
      }
    }
    if (this.outstanding() === 0 && this.replied) effects.push(...this.finish());
    return effects;
  }

  /** Asked and not answered yet (nor failed). */
  private outstanding(): number {
    return this.asked.size - this.answers.size;
  }

  private outstandingPrimaries(): number {
    return [...this.asked].filter((n) => this.primaries.has(n) && !this.answers.has(n)).length;
  }

  private primaryAnswered(): number {
    return this.records().filter((a) => this.primaries.has(a.node)).length;
  }

  private merge(answered: ReadonlyArray<{ record: Uint8Array | null }>): Uint8Array | null {
    const present = answered.flatMap((a) => (a.record ? [a.record] : []));
    return present.length === 0 ? null : this.reconcile(present);
  }

  /** Repairs every primary that answered with something other than the reconciled record. */
  private finish(): GetEffect[] {
    if (this.finished) return [];
    this.finished = true;
    const answered = this.records();
    const merged = this.merge(answered);
    const effects: GetEffect[] = [];
    if (merged) {
      for (const { node, own } of answered) {
        if (!this.primaries.has(node)) continue;
        if (!own || !this.equal(own, merged)) effects.push({ kind: 'repair', node, record: merged });
      }
    }
    effects.push({ kind: 'done' });
    return effects;
  }
}
