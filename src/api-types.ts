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
