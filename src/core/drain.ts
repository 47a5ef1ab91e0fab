// Drain (docs/cluster.md "Drain"): the steps a node takes before it stops
// for a restart, as a pure decision on what it has observed. The driver
// (src/node/drain.ts) announces the drain, then asks `nextDrainStep` what to
// do after each observation, until it says 'done'. No clock here: the
// driver says whether the deadline passed.

export type DrainPhase = 'in-flight' | 'transfers' | 'handoff' | 'flush' | 'done';

export interface DrainObservation {
  readonly phase: DrainPhase;
  /** Client requests (and forwarded writes) this node is still coordinating. */
  readonly inFlight: number;
  /** Partition transfers this node still gives to nodes that answer (it may hold the only complete copy until they finish). */
  readonly transfersPending: number;
  /** Hints this node holds for other nodes. */
  readonly hintsPending: number;
  /** The last handoff round (null before the first): what it delivered, and whether any target could not be reached. */
  readonly lastRound: { readonly delivered: number; readonly unreachable: number } | null;
  /** The drain's deadline has passed: stop waiting, finish with what is left. */
  readonly deadlinePassed: boolean;
}

export type DrainStep =
  | { readonly kind: 'wait'; readonly phase: DrainPhase }
  | { readonly kind: 'handoff-round' }
  | { readonly kind: 'flush' }
  | { readonly kind: 'done' };

/**
 * What to do next:
 *  - 'in-flight': wait until nothing is coordinated here any more (the
 *    requests accepted before the drain finish and are answered);
 *  - 'transfers': wait until the partitions this node gives (after a join
 *    or leave) have reached their new replicas: until then their readers
 *    count this node's copy, and a restart in between leaves those
 *    partitions unreadable for as long as it is down;
 *  - 'handoff': deliver hints, a round at a time, until none is left — or a
 *    round delivered nothing while a target could not be reached (those
 *    hints stay on disk and go out after the restart);
 *  - 'flush': write everything to disk; then done.
 * Past the deadline, waiting stops and the drain goes straight to the flush.
 */
export function nextDrainStep(o: DrainObservation): DrainStep {
  switch (o.phase) {
    case 'in-flight':
      if (o.deadlinePassed) return { kind: 'flush' };
      return { kind: 'wait', phase: o.inFlight > 0 ? 'in-flight' : 'transfers' };
    case 'transfers':
      if (o.deadlinePassed) return { kind: 'flush' };
      return { kind: 'wait', phase: o.transfersPending > 0 ? 'transfers' : 'handoff' };
    case 'handoff': {
      if (o.hintsPending === 0 || o.deadlinePassed) return { kind: 'flush' };
      const stuck = o.lastRound !== null && o.lastRound.delivered === 0 && o.lastRound.unreachable > 0;
      return stuck ? { kind: 'flush' } : { kind: 'handoff-round' };
    }
    case 'flush':
    case 'done':
      return { kind: 'done' };
  }
}
