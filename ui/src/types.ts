// The documents the page reads (the node's src/api-types.ts NodeStatus and
// src/http/wire.ts RingDocument), only the fields it uses; every field is
// checked where it is read, so an older or newer node shows what it can.
export interface MemberView {
  id: string;
  address: string;
  zone: string | null;
  status: 'valid' | 'leaving' | 'left' | string;
  partitions: number;
  health: 'self' | 'up' | 'suspect' | string;
  phi: number;
  lastHeardMsAgo: number | null;
  /** True while the member drains before a restart (docs/cluster.md "Drain"). */
  draining?: boolean;
}

/** /status `transferSummary` (src/core/transfer-progress.ts). */
export interface TransferSummary {
  sending: number;
  receiving: number;
  moved: { objects: number; bytes: number };
  rate: { objectsPerSec: number; bytesPerSec: number } | null;
  remainingObjects: number | null;
  etaSeconds: number | null;
}

/** /status `drain` (src/node/drain.ts DrainReport), the fields shown. */
export interface DrainView {
  state: 'serving' | 'draining' | 'drained' | string;
  phase: string | null;
  hintsLeft: number;
  transfersPending: number;
  timedOut: boolean;
}

/** POST /admin/repair, GET /admin/repair/:id (src/api-types.ts RepairJob). */
export interface RepairJobView {
  id: string;
  state: 'running' | 'done' | 'failed' | string;
  request: { partition?: number; bucket?: string };
  partitions: { total: number; compared: number };
  inSync: number;
  diverged: number;
  keysDiffered: number;
  keysRepaired: { local: number; remote: number };
  failedExchanges: number;
  failedKeys: number;
  current: number | null;
  error: string | null;
}

export interface StatusDoc {
  node: string;
  address: string;
  cluster: string;
  joined: boolean;
  ring: { version: number; claimant: string; partitions: number; digest: string };
  members: MemberView[];
  transfers?: unknown;
  transferSummary?: TransferSummary;
  drain?: DrainView;
}

export interface RingDoc {
  partitionBits: number;
  version: number;
  claimant: string;
  owners: string[];
}
