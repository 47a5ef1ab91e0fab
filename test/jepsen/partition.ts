// Network partitions for the Jepsen-style run, with nftables: every node has
// its own loopback address (127.0.0.2, .3, …) and its peer connections leave
// from it (WsTransport localAddress), so cutting node A from node B is
// "drop A-ip → B-ip" for the two directions. The rules live in a table of
// this process's own (`inet ringkv_jepsen_<pid>`), match only the cluster's
// address + port pairs (other tests on the machine are untouched), and the
// table is deleted on close and, should close never run, on process exit.
import { execFileSync, spawnSync } from 'node:child_process';
import { probeRootTools } from '../helpers/netns.js';

export interface Endpoint {
  id: string;
  host: string;
  port: number;
}

export type PartitionSupport = { ok: true } | { ok: false; reason: string; nftMissing: boolean };

function nft(args: string[], input?: string): void {
  execFileSync('nft', args, { input, stdio: ['pipe', 'ignore', 'pipe'], timeout: 10_000 });
}

export class NftPartitioner {
  readonly table = `ringkv_jepsen_${process.pid}`;
  private open = false;
  private readonly onExit = () => this.deleteTable();

  /** Whether partitions can run here: root, an `nft` binary, and a kernel that lets us add a table. */
  static probe(): PartitionSupport {
    const support = probeRootTools(['nft']);
    return support.ok ? support : { ok: false, reason: support.reason, nftMissing: support.toolMissing };
  }

  /** Creates the table with an output-hook chain (loopback packets pass it once); throws when nft refuses. */
  setup(): void {
    this.deleteTable(); // a table left by an earlier process with our pid
    nft(['-f', '-'], [
      `add table inet ${this.table}`,
      `add chain inet ${this.table} cut { type filter hook output priority 0; policy accept; }`,
    ].join('\n'));
    this.open = true;
    process.once('exit', this.onExit);
  }

  /**
   * Cuts `side` from `rest`, both directions: a packet from A to B is either on
   * A's connection to B (to B's port) or on B's connection to A (from A's port).
   */
  cut(side: Endpoint[], rest: Endpoint[]): void {
    if (!this.open) throw new Error('partitioner not set up');
    const rules: string[] = [`flush chain inet ${this.table} cut`];
    for (const a of side) {
      for (const b of rest) {
        for (const [from, to] of [[a, b], [b, a]] as const) {
          rules.push(`add rule inet ${this.table} cut ip saddr ${from.host} ip daddr ${to.host} tcp dport ${to.port} drop`);
          rules.push(`add rule inet ${this.table} cut ip saddr ${from.host} ip daddr ${to.host} tcp sport ${from.port} drop`);
        }
      }
    }
    nft(['-f', '-'], rules.join('\n'));
  }

  heal(): void {
    if (this.open) nft(['flush', 'chain', 'inet', this.table, 'cut']);
  }

  /** The rules now in place (for tests and debugging). */
  rules(): string {
    return execFileSync('nft', ['list', 'chain', 'inet', this.table, 'cut'], { encoding: 'utf8', timeout: 10_000 });
  }

  close(): void {
    this.deleteTable();
    this.open = false;
    process.removeListener('exit', this.onExit);
  }

  private deleteTable(): void {
    // Synchronous, so it also runs from an exit hook; "no such table" is fine.
    spawnSync('nft', ['delete', 'table', 'inet', this.table], { stdio: 'ignore', timeout: 10_000 });
  }
}
