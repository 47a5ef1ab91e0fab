// `ringkv repair` and `ringkv aae status`: anti-entropy run now, with
// progress and a summary, and what each node last compared (docs/cluster.md
// "Repair on demand").
import { type Command, InvalidArgumentError } from 'commander';
import table from 'text-table';
import type { AaeStatus, RepairJob, RepairRequest, RingkvClient } from '../client/index.js';
import { RingkvError } from '../client/errors.js';
import { withTokenOptions, type TokenSource } from './token.js';

type ClientOptions = TokenSource & { node: string; tlsCa?: string };

export interface RepairCommandDeps {
  defaultNode: string;
  tlsCaHelp: string;
  client: (o: ClientOptions) => RingkvClient;
}

/** How often a running job is polled. */
const POLL_MS = 500;

function partitionArg(raw: string): number {
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 0 || v > 65535) throw new InvalidArgumentError('partition must be an integer in 0..65535');
  return v;
}

/** One job's progress as a line. */
export function progressLine(node: string, job: RepairJob): string {
  const repaired = job.keysRepaired.local + job.keysRepaired.remote;
  const failures = job.failedExchanges > 0 ? `, ${job.failedExchanges} exchanges failed` : '';
  return `${node}: ${job.partitions.compared}/${job.partitions.total} partitions compared, ${job.keysDiffered} keys differed, ${repaired} keys repaired${failures}`;
}

/** The summary over every node's job. */
export function summaryLines(jobs: ReadonlyArray<{ node: string; job: RepairJob }>): string[] {
  const sum = (f: (j: RepairJob) => number) => jobs.reduce((n, { job }) => n + f(job), 0);
  const lines = jobs.map(({ node, job }) => `${progressLine(node, job)} (${job.state}${job.error ? `: ${job.error}` : ''})`);
  lines.push(
    `total: ${sum((j) => j.partitions.compared)} partitions compared (${sum((j) => j.diverged)} partition-replica pairs differed, ${sum((j) => j.inSync)} were in sync), ` +
      `${sum((j) => j.keysDiffered)} keys differed, ${sum((j) => j.keysRepaired.local + j.keysRepaired.remote)} keys repaired ` +
      `(${sum((j) => j.keysRepaired.local)} on the repairing nodes, ${sum((j) => j.keysRepaired.remote)} on their peers), ` +
      `${sum((j) => j.failedExchanges)} exchanges failed, ${sum((j) => j.failedKeys)} keys failed`,
  );
  return lines;
}

/** `ringkv aae status` as text: a summary line, then the partitions asked for. */
export function aaeStatusLines(status: AaeStatus, nowMs: number, all: boolean): string[] {
  const ago = (at: number) => `${Math.max(0, Math.round((nowMs - at) / 1000))} s ago`;
  const lines = [
    `${status.node}: primary of ${status.partitions.length} partitions, ${status.compared} compared since it started, ` +
      (status.fullPassAtMs === null ? 'no full pass yet' : `full pass since ${new Date(status.fullPassAtMs).toISOString()} (${ago(status.fullPassAtMs)})`),
  ];
  const shown = status.partitions.filter((p) => all || (p.last !== null && (p.last.outcome === 'failed' || p.last.lastRepair !== null)));
  if (shown.length === 0) {
    lines.push(all ? 'no partitions' : 'no partition was repaired or failed since the node started (--all lists every partition)');
    return lines;
  }
  const rows = [['PARTITION', 'LAST COMPARED', 'WITH', 'OUTCOME', 'LAST REPAIR', 'WITH', 'KEYS DIFFERED', 'REPAIRED HERE', 'REPAIRED THERE']];
  for (const p of shown) {
    const l = p.last;
    const r = l?.lastRepair ?? null;
    rows.push([
      String(p.partition),
      l === null ? 'never' : ago(l.at),
      l?.peer ?? (p.peers.join(',') || '-'),
      l?.outcome ?? '-',
      r === null ? '-' : ago(r.at),
      r?.peer ?? '-',
      r === null ? '-' : String(r.keysDiffered),
      r === null ? '-' : String(r.repaired.local),
      r === null ? '-' : String(r.repaired.remote),
    ]);
  }
  lines.push(table(rows, { align: ['r', 'l', 'l', 'l', 'l', 'l', 'r', 'r', 'r'] }));
  return lines;
}

export function registerRepairCommands(program: Command, deps: RepairCommandDeps): void {
  withTokenOptions(program.command('repair'))
    .description('run anti-entropy now: each chosen node compares its partitions with their other replicas and repairs what differs (needs an admin token)')
    .option('--node <host:port>', 'run the repair on this node only (default: on every member, reached through RINGKV_NODE or 127.0.0.1:8087)')
    .option('--tls-ca <file>', deps.tlsCaHelp)
    .option('--partition <p>', 'only this partition (run by the nodes that are its primaries)', partitionArg)
    .option('--bucket <bucket>', 'only this bucket\'s keys')
    .option('--json', 'print the finished jobs as JSON')
    .action(async (o: ClientOptions & { partition?: number; bucket?: string; json?: boolean }) => {
      const entry = o.node ?? deps.defaultNode;
      const c = deps.client({ ...o, node: entry });
      const request: RepairRequest = { ...(o.partition === undefined ? {} : { partition: o.partition }), ...(o.bucket === undefined ? {} : { bucket: o.bucket }) };
      // The nodes that run it: the one named, or every member that is up (as the entry node sees them).
      const targets =
        o.node !== undefined
          ? [{ id: (await c.status(entry)).node, address: entry }]
          : (await c.status(entry)).members.filter((m) => m.status !== 'left' && m.health !== 'suspect').map((m) => ({ id: m.id, address: m.address }));
      const jobs: Array<{ node: string; address: string; job: RepairJob }> = [];
      for (const t of targets) {
        try {
          jobs.push({ node: t.id, address: t.address, job: await c.startRepair(request, { node: t.address }) });
        } catch (err) {
          // --partition on every member: the nodes that are no primary of it say so, and have nothing to do.
          if (o.node === undefined && o.partition !== undefined && err instanceof RingkvError && err.code === 'BAD_REQUEST') continue;
          throw err;
        }
      }
      if (jobs.length === 0) throw new Error('no node started a repair');
      process.stderr.write(`repair started on ${jobs.map((j) => `${j.node} (${j.job.id})`).join(', ')}\n`);
      let last = '';
      while (jobs.some((j) => j.job.state === 'running')) {
        await new Promise((r) => setTimeout(r, POLL_MS));
        for (const j of jobs) if (j.job.state === 'running') j.job = await c.repairJob(j.job.id, { node: j.address });
        const line = jobs.map((j) => progressLine(j.node, j.job)).join('; ');
        if (line !== last) process.stderr.write(`${line}\n`);
        last = line;
      }
      if (o.json) console.log(JSON.stringify(jobs.map(({ node, job }) => ({ node, ...job })), null, 2));
      else for (const line of summaryLines(jobs)) console.log(line);
      if (jobs.some((j) => j.job.state === 'failed' || j.job.failedExchanges > 0 || j.job.failedKeys > 0)) process.exitCode = 1;
    });

  const aae = program.command('aae').description('anti-entropy');
  withTokenOptions(aae.command('status'))
    .description('per partition a node is a primary of: when it was last compared, with whom, and what was repaired (needs an admin token)')
    .option('--node <host:port>', 'node to ask', deps.defaultNode)
    .option('--tls-ca <file>', deps.tlsCaHelp)
    .option('--all', 'list every partition, not only those that differed or failed at their last comparison')
    .option('--json', 'print the raw document')
    .action(async (o: ClientOptions & { all?: boolean; json?: boolean }) => {
      const status = await deps.client(o).aaeStatus({ node: o.node });
      if (o.json) console.log(JSON.stringify(status, null, 2));
      else for (const line of aaeStatusLines(status, Date.now(), o.all === true)) console.log(line);
    });
}
