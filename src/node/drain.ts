// The drain driver (docs/cluster.md "Drain"): announces the drain (the
// node's own member entry, pushed to every member), then follows the pure
// steps of src/core/drain.ts — wait for in-flight requests and for the
// partition transfers it gives, deliver hints, flush — and reports what it did. What happens after (exit, or stay up
// drained until restarted) is the owner's choice (src/server/index.ts).
import { type DrainPhase, nextDrainStep } from '../core/drain.js';
import type { Clock } from '../transport/types.js';
import type { HandoffRound } from './handoff.js';

/** What draining uses of the node and its engine. */
export interface DrainContext {
  readonly id: string;
  readonly clock: Clock;
  /** Sets the node's drain flag and tells every reachable member. */
  setDraining(on: boolean): Promise<void>;
  /** Requests being coordinated now. */
  activeRequests(): number;
  deliverHints(): Promise<HandoffRound>;
  hintsPending(): number;
  /** Partition transfers this node still has to give (they resume after a restart). */
  transfersPending(): number;
  /** Of those, the ones to nodes that answer (waited for: one to a node that is down cannot finish now). */
  transfersToReachable(): number;
  flush(): Promise<void>;
}

export interface DrainReport {
  node: string;
  state: 'serving' | 'draining' | 'drained';
  phase: DrainPhase | null;
  startedAtMs: number | null;
  finishedAtMs: number | null;
  /** Requests being coordinated when the drain began. */
  inFlightAtStart: number;
  hintsDelivered: number;
  /** Hints still held (for nodes that could not be reached): on disk, delivered after the restart. */
  hintsLeft: number;
  transfersPending: number;
  /** The deadline passed before every step finished. */
  timedOut: boolean;
}

/** How often the in-flight count is looked at. */
const POLL_MS = 10;

export class Drainer {
  private report: DrainReport;
  private running: Promise<DrainReport> | null = null;

  constructor(private readonly ctx: DrainContext) {
    this.report = blank(ctx.id);
  }

  /** The drain's state now (for /status). */
  status(): DrainReport {
    return { ...this.report, ...(this.report.state === 'serving' ? {} : { hintsLeft: this.ctx.hintsPending(), transfersPending: this.ctx.transfersPending() }) };
  }

  /** Drains (or joins the drain already running, or answers the finished one); resolves with the report once flushed. */
  drain(timeoutMs: number): Promise<DrainReport> {
    this.running ??= this.run(timeoutMs);
    return this.running;
  }

  /** Ends a drain that finished: the node coordinates client requests again. */
  async cancel(): Promise<DrainReport> {
    if (this.running) await this.running;
    this.running = null;
    await this.ctx.setDraining(false);
    this.report = blank(this.ctx.id);
    return this.status();
  }

  private async run(timeoutMs: number): Promise<DrainReport> {
    const clock = this.ctx.clock;
    const started = clock.now();
    const deadline = started + timeoutMs;
    this.report = { ...blank(this.ctx.id), state: 'draining', phase: 'in-flight', startedAtMs: started, inFlightAtStart: this.ctx.activeRequests() };
    await this.ctx.setDraining(true);
    let phase: DrainPhase = 'in-flight';
    let lastRound: { delivered: number; unreachable: number } | null = null;
    for (;;) {
      const step = nextDrainStep({
        phase,
        inFlight: this.ctx.activeRequests(),
        transfersPending: this.ctx.transfersToReachable(),
        hintsPending: this.ctx.hintsPending(),
        lastRound,
        deadlinePassed: clock.now() >= deadline,
      });
      if (step.kind === 'done') break;
      if (step.kind === 'wait') {
        if (step.phase === phase) await sleep(clock, POLL_MS);
        phase = step.phase;
      } else if (step.kind === 'handoff-round') {
        phase = 'handoff';
        const round = await this.ctx.deliverHints();
        this.report.hintsDelivered += round.delivered;
        lastRound = { delivered: round.delivered, unreachable: round.failed.length + round.skipped.length };
      } else {
        phase = 'flush';
        this.report.timedOut = clock.now() >= deadline;
        await this.ctx.flush();
      }
      this.report.phase = phase;
    }
    this.report = { ...this.report, state: 'drained', phase: 'done', finishedAtMs: clock.now(), hintsLeft: this.ctx.hintsPending(), transfersPending: this.ctx.transfersPending() };
    return { ...this.report };
  }
}

function blank(node: string): DrainReport {
  return { node, state: 'serving', phase: null, startedAtMs: null, finishedAtMs: null, inFlightAtStart: 0, hintsDelivered: 0, hintsLeft: 0, transfersPending: 0, timedOut: false };
}

function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(ms, resolve));
}
