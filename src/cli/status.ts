// `ringkv status`: the members as the asked node sees them, and the
// partition transfers of every member summed up per node (each member's own
// GET /status `transferSummary`), as plain aligned tables. `--json` prints
// the asked node's document as it is. The rendering is a pure function of
// the documents (renderStatus), tested with fixtures.
import type { Command } from 'commander';
import table from 'text-table';
import type { NodeStatus } from '../api-types.js';
import type { TransferSummary } from '../core/transfer-progress.js';

/** GET /status with what the server adds (src/server/index.ts). */
export interface StatusDocument extends NodeStatus {
  transfers?: Array<{ partition: number; to: string; sent: number; pass: number }>;
  transferSummary?: TransferSummary;
}

/** One member's transfers as it reported them, or why it could not be asked. */
export interface MemberTransfers {
  node: string;
  summary: TransferSummary | null;
  error?: string;
}

export function renderStatus(doc: StatusDocument, transfers: readonly MemberTransfers[]): string {
  const lines = [`cluster ${doc.cluster}, seen from ${doc.node}: ring v${doc.ring.version}, ${doc.ring.partitions} partitions, claimant ${doc.ring.claimant}`, ''];
  const members = doc.members.map((m) => [m.id, m.address, m.zone ?? '-', m.status, m.health, m.phi === undefined ? '-' : m.phi.toFixed(1), count(m.partitions)]);
  lines.push(table([['ID', 'ADDRESS', 'ZONE', 'STATUS', 'HEALTH', 'PHI', 'PARTITIONS'], ...members], { align: ['l', 'l', 'l', 'l', 'l', 'r', 'r'] }), '');

  const busy = transfers.filter((t) => t.summary === null || t.summary.sending > 0 || t.summary.receiving > 0);
  if (busy.length === 0) {
    lines.push('no partition transfers in progress');
  } else {
    lines.push('partition transfers, per node:');
    const rows = busy.map((t) => {
      const s = t.summary;
      if (s === null) return [t.node, '?', '?', '?', '?', '?', '?'];
      return [t.node, count(s.sending), count(s.receiving), count(s.moved.objects), bytes(s.moved.bytes), rate(s.rate), eta(s.etaSeconds)];
    });
    lines.push(table([['NODE', 'TO SEND', 'TO RECEIVE', 'OBJECTS MOVED', 'BYTES MOVED', 'RATE', 'ETA'], ...rows], { align: ['l', 'r', 'r', 'r', 'r', 'r', 'r'] }));
    for (const t of busy) if (t.error !== undefined) lines.push(`  ${t.node}: not asked: ${t.error}`);
  }
  return `${lines.join('\n')}\n`;
}

const count = (n: number): string => n.toLocaleString('en-US');

/** 1023 B, 1.5 KiB, 12.0 MiB ... */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

function rate(r: TransferSummary['rate']): string {
  if (r === null) return '-';
  return `${count(Math.round(r.objectsPerSec))} obj/s, ${bytes(Math.round(r.bytesPerSec))}/s`;
}

/** 45 s, 3 min 20 s, 2 h 5 min; '-' when it cannot be told. */
export function eta(seconds: number | null): string {
  if (seconds === null) return '-';
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

/** What the status command needs of a client. */
export interface StatusClient {
  status(node?: string): Promise<NodeStatus>;
}

/** Asks every member that has not left for its own transfers (the asked node's document is used for itself). */
export async function memberTransfers(client: StatusClient, doc: StatusDocument): Promise<MemberTransfers[]> {
  const members = doc.members.filter((m) => m.status !== 'left');
  return Promise.all(
    members.map(async (m): Promise<MemberTransfers> => {
      if (m.id === doc.node) return { node: m.id, summary: doc.transferSummary ?? null };
      try {
        const theirs = (await client.status(m.address)) as StatusDocument;
        return { node: m.id, summary: theirs.transferSummary ?? null, ...(theirs.transferSummary ? {} : { error: 'its /status has no transferSummary (an older version?)' }) };
      } catch (err) {
        return { node: m.id, summary: null, error: err instanceof Error ? err.message : String(err) };
      }
    }),
  );
}

/** The options of the command that reach the client (--node, --tls-ca, the token's). */
export interface StatusOptions {
  node: string;
  tlsCa?: string;
  token?: string;
  tokenFile?: string;
}

export function registerStatusCommands(program: Command, opts: { defaultNode: string; tlsCaHelp: string; withTokenOptions: (cmd: Command) => Command; client: (o: StatusOptions) => StatusClient }): void {
  opts
    .withTokenOptions(program.command('status'))
    .description('members, partition ownership and health as one node sees them, and every member\'s partition transfers')
    .option('--node <host:port>', 'node to ask', opts.defaultNode)
    .option('--tls-ca <file>', opts.tlsCaHelp)
    .option('--json', 'print the raw status document of the node asked')
    .action(async (o: StatusOptions & { json?: boolean }) => {
      const client = opts.client(o);
      const doc = (await client.status()) as StatusDocument;
      if (o.json) {
        console.log(JSON.stringify(doc, null, 2));
        return;
      }
      process.stdout.write(renderStatus(doc, await memberTransfers(client, doc)));
    });
}
