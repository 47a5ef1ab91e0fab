// `ringkv drain`, `ringkv forget` and `ringkv replace`: the operator's
// commands for rolling restarts and for members that are gone
// (docs/cluster.md "Drain", "Forget", "Replace"). Each is one admin request
// through the client library; replace then follows the transfers that
// refill the replacement.
import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import { RingkvClient } from '../client/index.js';
import { resolveToken, withTokenOptions, type TokenSource } from './token.js';

const TLS_CA_HELP = 'HTTPS: verify the node against this CA certificate (PEM); env RINGKV_TLS_CA';

function seconds(name: string, max: number) {
  return (raw: string): number => {
    const v = Number(raw);
    if (!Number.isInteger(v) || v < 0 || v > max) throw new InvalidArgumentError(`${name} must be an integer in 0..${max}`);
    return v;
  };
}

const clientFor = (o: TokenSource & { node: string; tlsCa?: string }) => {
  const caFile = o.tlsCa ?? process.env.RINGKV_TLS_CA;
  return new RingkvClient({ nodes: o.node.split(','), token: resolveToken(o), ...(caFile ? { tls: { ca: readFileSync(caFile) } } : {}) });
};

export function registerOpsCommands(program: Command, defaultNode: string): void {
  withTokenOptions(program.command('drain'))
    .description('drain a node before a restart: it stops coordinating client requests (clients and peers route around it), finishes those in flight, delivers its hints and flushes; then exits 0 (--exit) or stays up drained until restarted (--wait-restart)')
    .option('--node <host:port>', 'the node to drain', defaultNode)
    .option('--tls-ca <file>', TLS_CA_HELP)
    .option('--exit', 'stop the node once drained (its process exits 0; a supervisor restarts it)')
    .option('--wait-restart', 'keep the node up, drained (refusing client requests), until it is restarted')
    .option('--cancel', 'end a drain: the node coordinates client requests again')
    .option('--timeout <s>', 'stop waiting for in-flight requests and hints after this many seconds (then flush)', seconds('timeout', 3_600), 60)
    .option('--json', 'print the drain report as JSON')
    .action(async (o) => {
      const modes = [o.exit, o.waitRestart, o.cancel].filter((v) => v === true).length;
      if (modes !== 1) throw new InvalidArgumentError('give one of --exit, --wait-restart or --cancel');
      const c = clientFor(o);
      const report = (await c.drain(o.node, o.cancel ? { cancel: true } : { exit: o.exit === true, timeoutS: o.timeout })) as {
        node: string; state: string; inFlightAtStart: number; hintsDelivered: number; hintsLeft: number; transfersPending: number; timedOut: boolean; startedAtMs: number | null; finishedAtMs: number | null;
      };
      if (o.json) console.log(JSON.stringify(report, null, 2));
      if (o.cancel) {
        console.error(`${report.node} serves client requests again`);
        return;
      }
      const tookMs = report.finishedAtMs !== null && report.startedAtMs !== null ? report.finishedAtMs - report.startedAtMs : 0;
      console.error(
        `${report.node} drained in ${tookMs} ms: ${report.inFlightAtStart} requests were in flight, ${report.hintsDelivered} hints delivered, ` +
          `${report.hintsLeft} hints kept for unreachable nodes, ${report.transfersPending} partition transfers to resume after the restart` +
          (report.timedOut ? ' (the timeout passed first)' : ''),
      );
      console.error(o.exit ? `${report.node} is stopping (exit 0)` : `${report.node} stays up drained until it is restarted (or \`ringkv drain --cancel\`)`);
    });

  withTokenOptions(program.command('forget <member>'))
    .description('remove a member that left or is gone for good from the member list, cluster-wide (a tombstone keeps old gossip from bringing it back); --force when it is still valid or owns partitions: they go to the others and are re-replicated from the other replicas')
    .option('--node <host:port>', 'node to send the request to (not the member forgotten)', defaultNode)
    .option('--tls-ca <file>', TLS_CA_HELP)
    .option('--force', 'confirm: the member is gone for good although it still owns partitions (or was never marked as left)')
    .option('--timeout <s>', 'wait this long for the claimant to hand its partitions on', seconds('timeout', 3_600), 30)
    .action(async (member: string, o) => {
      const done = await clientFor(o).forget(member, { force: o.force === true, timeoutS: o.timeout });
      if (done.forgotten) console.error(`${member} forgotten`);
      else {
        console.error(`${member} marked as left; the claimant has not yet handed on its ${done.partitionsOwned} partitions: run the command again`);
        process.exitCode = 2;
      }
    });

  withTokenOptions(program.command('replace <dead-node> <new-node>'))
    .description('give a dead member\'s partitions one-for-one to a new member (started with --seeds, or with --replace <dead-node> which does this at its join); the other replicas stream them to it')
    .option('--node <host:port>', 'node to send the request to', defaultNode)
    .option('--tls-ca <file>', TLS_CA_HELP)
    .option('--force', 'replace a member this node does not suspect (it still answers)')
    .option('--timeout <s>', 'wait this long for the claimant\'s new ring', seconds('timeout', 3_600), 30)
    .option('--no-wait', 'return once the ring changed, without following the transfers')
    .action(async (dead: string, fresh: string, o) => {
      const c = clientFor(o);
      const done = await c.replace(dead, fresh, { force: o.force === true, timeoutS: o.timeout });
      if (!done.replaced) {
        console.error(`${fresh} is marked as ${dead}'s replacement; the claimant has not applied it yet: check \`ringkv status\``);
        process.exitCode = 2;
        return;
      }
      console.error(`${fresh} owns ${dead}'s ${done.partitions} partitions; ${dead} is marked as left`);
      if (!o.wait) return;
      await followTransfers(c, fresh, o.timeout);
    });
}

/** Prints the transfers to `target` as the members report them, until none is left (or the time is up). */
async function followTransfers(c: RingkvClient, target: string, timeoutS: number): Promise<void> {
  const deadline = Date.now() + Math.max(timeoutS, 60) * 1000;
  for (;;) {
    const ring = await c.ring();
    const members = ring.members.filter((m) => m.status !== 'left');
    const counts = await Promise.all(
      members.map(async (m) => {
        try {
          const s = (await c.status(m.address)) as { transfers?: Array<{ to: string; sent: number }> };
          const mine = (s.transfers ?? []).filter((t) => t.to === target);
          return { id: m.id, partitions: mine.length, sent: mine.reduce((n, t) => n + t.sent, 0) };
        } catch {
          return { id: m.id, partitions: 0, sent: 0 };
        }
      }),
    );
    const pending = counts.filter((x) => x.partitions > 0);
    if (pending.length === 0) {
      console.error(`every transfer to ${target} is done`);
      return;
    }
    console.error(`transfers to ${target}: ${pending.map((x) => `${x.id} ${x.partitions} partitions (${x.sent} objects sent)`).join(', ')}`);
    if (Date.now() > deadline) throw new Error(`transfers to ${target} still pending after ${Math.max(timeoutS, 60)} s`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
}
