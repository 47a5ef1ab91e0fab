// Peers and failure detection (riak_core_node_watcher's job): requests to
// members with the suspicion bookkeeping, the phi accrual detector fed with
// every sign of life, and the verdict "suspected" the replica choices use.
import { PhiAccrualDetector, type PhiOptions } from '../core/failure-detector.js';
import { isTransportError, type Clock, type Timer, type Transport } from '../transport/types.js';
import { NodeError } from './errors.js';
import type { PeerHealth } from '../api-types.js';

export interface PeersContext {
  readonly id: string;
  readonly transport: Transport;
  readonly clock: Clock;
  /** A member's address; undefined for a node that is not a member. */
  addressOf(node: string): string | undefined;
}

export type { PeerHealth };

export class Peers {
  /** Phi accrual failure detector, fed with every sign of life of a peer. */
  readonly detector: PhiAccrualDetector;
  /** Peer → time its last request failed UNREACHABLE/TIMEOUT (cleared by any sign of life). */
  private readonly failedAt = new Map<string, number>();
  /** The steady tick of the detector's view of this node's own event loop (see startLocalTicks). */
  private tickTimer: Timer | null = null;
  private stopped = false;
  private pausesLogged = 0;

  constructor(
    private readonly ctx: PeersContext,
    detector: Partial<PhiOptions>,
  ) {
    this.detector = new PhiAccrualDetector(detector);
  }

  /**
   * Ticks the detector now and every `everyMs`, so it can tell this node's
   * own stalls from its peers' silence; a stall it saw is logged. The first
   * tick is now, not after `everyMs`: a detector only judges pauses once it
   * has ticked, and a stall within the first `everyMs` (a node that joined
   * fast, then a GC pause) convicted every peer (issue 9).
   */
  startLocalTicks(everyMs: number, warn: (msg: string, fields: Record<string, unknown>) => void): void {
    if (this.stopped) return;
    this.detector.localTick(this.ctx.clock.now());
    this.scheduleLocalTick(everyMs, warn);
  }

  private scheduleLocalTick(everyMs: number, warn: (msg: string, fields: Record<string, unknown>) => void): void {
    if (this.stopped) return;
    this.tickTimer = this.ctx.clock.setTimer(everyMs, () => {
      this.detector.localTick(this.ctx.clock.now());
      const pauses = this.detector.localPauses();
      if (pauses.count > this.pausesLogged) {
        this.pausesLogged = pauses.count;
        warn('local pause: not suspecting peers for it', { pauseMs: pauses.lastMs, maxLocalPauseMs: this.detector.options.maxLocalPauseMs });
      }
      this.scheduleLocalTick(everyMs, warn);
    });
  }

  /** Stops the ticks. */
  stop(): void {
    this.stopped = true;
    this.tickTimer?.cancel();
  }

  /**
   * A request to a member, with the suspicion bookkeeping. A `probe`
   * (heartbeat ping, gossip exchange) feeds phi with its reply, and its
   * TIMEOUT convicts nobody: probes run with short timeouts (one gossip
   * interval), and a loaded peer that answers one late is slow, not gone;
   * phi judges silence. A refused connection convicts a probe's peer at once
   * as it does any other's; a data request's TIMEOUT still does too (issue 9:
   * under load, 100 ms pings that timed out marked healthy primaries suspect,
   * and writes with W = N failed with a node down).
   */
  async request(node: string, type: string, body: unknown, timeoutMs: number, opts: { probe?: boolean } = {}): Promise<unknown> {
    const address = this.ctx.addressOf(node);
    if (address === undefined) throw new NodeError('INTERNAL', `unknown member ${node}`);
    const sentAt = this.ctx.clock.now();
    try {
      const reply = await this.ctx.transport.request({ id: node, address }, type, body, timeoutMs);
      this.heardFrom(node);
      return reply;
    } catch (err) {
      if (isTransportError(err, 'UNREACHABLE') || isTransportError(err, 'REFUSED')) this.failedAt.set(node, this.ctx.clock.now());
      else if (isTransportError(err, 'TIMEOUT')) {
        if (opts.probe !== true) this.timedOut(node, sentAt);
      }
      else if (isTransportError(err, 'REMOTE')) this.heardFrom(node); // it answered, with an error
      throw err;
    }
  }

  /** Evidence of life of a peer: a reply (even an error) or an inbound request. */
  heardFrom(node: string): void {
    this.detector.heartbeat(node, this.ctx.clock.now());
    this.failedAt.delete(node);
  }

  /**
   * A peer is suspected when its phi is above the threshold (silent for
   * much longer than usual), or when its last request failed UNREACHABLE or
   * TIMEOUT and it has not shown a sign of life since (the fast path: a
   * refused connection convicts at once). A suspected peer is routed around,
   * and probed by the heartbeats (RingkvNode.heartbeats) until it answers again.
   */
  isSuspect(node: string, now: number): boolean {
    if (node === this.ctx.id) return false;
    return this.failedAt.has(node) || !this.detector.isAvailable(node, now);
  }

  /** A member's health as this node sees it. */
  health(node: string, now: number): PeerHealth {
    if (node === this.ctx.id) return { health: 'self', phi: 0, lastHeardMsAgo: 0 };
    const heard = this.detector.lastHeard(node);
    return {
      health: this.isSuspect(node, now) ? 'suspect' : 'up',
      phi: Math.round(this.detector.phi(node, now) * 100) / 100,
      lastHeardMsAgo: heard === undefined ? null : now - heard,
    };
  }

  /** The phi of a member now (0: never heard from, or self). */
  phi(node: string, now: number): number {
    return node === this.ctx.id ? 0 : this.detector.phi(node, now);
  }

  lastHeard(node: string): number | undefined {
    return this.detector.lastHeard(node);
  }

  /**
   * A request to `node` sent at `sentAt` timed out. Timers run before the
   * I/O of the same loop turn, so a timeout that fired late (this node was
   * busy) can have the peer's reply, or other traffic from it, queued behind
   * it: judge after that I/O has run (a 0 ms timer), and only if nothing came
   * from the peer since the request went out and this node did not stall.
   */
  private timedOut(node: string, sentAt: number): void {
    this.ctx.clock.setTimer(0, () => {
      const now = this.ctx.clock.now();
      const heard = this.detector.lastHeard(node);
      if ((heard !== undefined && heard >= sentAt) || this.detector.localPauseSince(sentAt, now)) return;
      this.failedAt.set(node, now);
    });
  }
}
