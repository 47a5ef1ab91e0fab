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
}

export interface StatusDoc {
  node: string;
  address: string;
  cluster: string;
  joined: boolean;
  ring: { version: number; claimant: string; partitions: number; digest: string };
  members: MemberView[];
  transfers?: unknown;
}

export interface RingDoc {
  partitionBits: number;
  version: number;
  claimant: string;
  owners: string[];
}
