// Per-key gates of the replica role: writes of one key (coordinate, merge)
// run concurrently with each other, and a reap of the key runs alone —
// after the writes in progress, before any that start meanwhile. A write
// that read "no floor" must not land after the reap (it would start from an
// absent object: counter 1, or a deleted value back), and the engine alone
// does not order them.
import { invariant } from '../core/types.js';
import { keyId } from '../record/keys.js';

interface KeyGate {
  /** Writes of the key in progress. */
  writes: number;
  /** A reap of the key in progress (resolves when it is over). */
  reap: Promise<void> | null;
  /** The reap waiting for the writes to finish. */
  idle: Array<() => void>;
}

export class KeyGates {
  private readonly gates = new Map<string, KeyGate>();

  /** Keys with a gate open (writes or a reap in progress); 0 when idle. */
  get size(): number {
    return this.gates.size;
  }

  /** A reap of the key holds its gate (writes must wait for it). */
  reapUnderway(bucket: Uint8Array, key: Uint8Array): boolean {
    return this.gates.size > 0 && this.gates.get(keyId(bucket, key))?.reap != null;
  }

  /** Runs a write of the key outside any reap of it; writes of one key still run concurrently. */
  async write<T>(bucket: Uint8Array, key: Uint8Array, fn: () => Promise<T>): Promise<T> {
    const id = keyId(bucket, key);
    await this.enter(id);
    try {
      return await fn();
    } finally {
      this.leave(id);
    }
  }

  /** Enters the gates of many keys for one batch: in sorted order, so no batch deadlocks with a reap. */
  async writeMany<T>(ids: readonly string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(ids)].sort();
    for (const id of sorted) await this.enter(id);
    try {
      return await fn();
    } finally {
      for (const id of sorted) this.leave(id);
    }
  }

  /** Runs a reap of the key alone: after the key's writes in progress, before any that start meanwhile. */
  async exclusive<T>(bucket: Uint8Array, key: Uint8Array, fn: () => Promise<T>): Promise<T> {
    const id = keyId(bucket, key);
    let g = this.gates.get(id);
    while (g?.reap) {
      await g.reap;
      g = this.gates.get(id);
    }
    if (!g) this.gates.set(id, (g = { writes: 0, reap: null, idle: [] }));
    const gate = g;
    let release!: () => void;
    gate.reap = new Promise<void>((r) => (release = r));
    if (gate.writes > 0) await new Promise<void>((r) => gate.idle.push(r));
    invariant(gate.writes === 0 && this.gates.get(id) === gate, 'a reap runs with writes of its key in progress');
    try {
      return await fn();
    } finally {
      invariant(gate.writes === 0, 'a write entered a key gate during its reap');
      gate.reap = null;
      this.gates.delete(id);
      release();
    }
  }

  private async enter(id: string): Promise<void> {
    for (;;) {
      const g = this.gates.get(id);
      if (g?.reap) {
        await g.reap;
        continue;
      }
      if (g) g.writes++;
      else this.gates.set(id, { writes: 1, reap: null, idle: [] });
      return;
    }
  }

  private leave(id: string): void {
    const g = this.gates.get(id);
    // Every leave follows its enter, and a gate with writes is never deleted: a miss is a bug here.
    invariant(g !== undefined && g.writes > 0, () => `key gate left without being entered (${g ? 'no writes' : 'no gate'})`);
    g.writes--;
    if (g.writes > 0) return;
    for (const f of g.idle.splice(0)) f();
    if (!g.reap) this.gates.delete(id);
  }
}
