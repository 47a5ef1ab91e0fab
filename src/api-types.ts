// Shapes of the HTTP API's documents that both the node (which builds them)
// and the client SDK (which reads them) name: defined once here, with no
// runtime code, so the client never imports the node runtime to type them.
import type { MemberStatus } from './core/membership.js';

/** What a node knows of a member's liveness (src/node/peers.ts). */
export interface PeerHealth {
  /** `self`: the answering node; `suspect`: phi above the threshold, or its last request failed. */
  health: 'self' | 'up' | 'suspect';
  /** The phi accrual detector's value now (0 for self), two decimals. */
  phi: number;
  /** null: never heard from. */
  lastHeardMsAgo: number | null;
}

/** One member in GET /status. */
export interface NodeStatusMember extends PeerHealth {
  id: string;
  address: string;
  zone: string | null;
  status: MemberStatus;
  /** Partitions it owns in the answering node's ring. */
  partitions: number;
  /** Present (true) while it drains (docs/cluster.md "Drain"). */
  draining?: true;
  /** Present while it is marked to take over this member's partitions (replace). */
  replaces?: string;
}

/** GET /status (and the answer of join and leave): the answering node's view of the cluster. */
export interface NodeStatus {
  node: string;
  address: string;
  cluster: string;
  joined: boolean;
  ring: { version: number; claimant: string; partitions: number; digest: string };
  members: NodeStatusMember[];
  /** What the server adds (e.g. `transfers`, src/server/index.ts). */
  [field: string]: unknown;
}

/** What POST /admin/repair asks for. */
export interface RepairRequest {
  /** One partition (the node must be a primary of it); every partition it is a primary of when omitted. */
  partition?: number;
  /** Repair only this bucket's keys. */
  bucket?: string;
}

/** Keys written by a repair on the answering node (local) and on its peers (remote). */
export interface RepairCounts {
  local: number;
  remote: number;
}

/** A repair job (POST /admin/repair, GET /admin/repair/{id}; src/node/repair.ts). */
export interface RepairJob {
  id: string;
  state: 'running' | 'done' | 'failed';
  request: RepairRequest;
  startedAtMs: number;
  finishedAtMs: number | null;
  partitions: { total: number; compared: number };
  /** Partition-peer pairs that were already equal / that differed. */
  inSync: number;
  diverged: number;
  /** Keys the first exchange of each partition-peer pair found different (within its segment limit). */
  keysDiffered: number;
  keysRepaired: RepairCounts;
  /** Exchanges that failed (a peer unreachable, a timeout): their partitions are not known to be repaired. */
  failedExchanges: number;
  /** Keys whose repair failed (see the node's log). */
  failedKeys: number;
  /** The partition being compared now. */
  current: number | null;
  error: string | null;
}

/** The last anti-entropy comparison of one partition by a node. */
export interface PartitionAaeRecord {
  /** When it ended (the node's clock, ms since the epoch). */
  at: number;
  peer: string;
  outcome: 'in_sync' | 'diverged' | 'failed';
  /** Keys found different (0 when the roots were equal). */
  keysDiffered: number;
  repaired: RepairCounts;
  /** The last comparison of the partition that repaired keys (this one, or an earlier one), since the node started. */
  lastRepair: { at: number; peer: string; keysDiffered: number; repaired: RepairCounts } | null;
}

/** GET /admin/aae: each partition the node is a primary of. */
export interface AaeStatus {
  node: string;
  partitions: Array<{ partition: number; peers: string[]; last: PartitionAaeRecord | null }>;
  /** Partitions compared at least once since the node started. */
  compared: number;
  /** Every partition was compared since this time (the oldest last comparison); null until each was. */
  fullPassAtMs: number | null;
}
