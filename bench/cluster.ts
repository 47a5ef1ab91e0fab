// A cluster of real `ringkv start` processes on 127.0.0.1 for the benches
// (bench/suite.ts, bench/roles.ts): started, joined into one ring, waited on
// until the joins' partition handoffs are done (the steady state a benchmark
// measures), stopped with their data directories removed.
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../test/helpers/tmp.js';
import { ensureSecretFile } from '../src/server/peer-secrets.js';
import { freePort, spawnTracked, stopChildren, waitUntil } from './processes.js';

interface StatusDoc {
  ring: { digest: string };
  members: Array<{ status: string; partitions: number }>;
  /** Partition handoffs still under way (present in newer nodes). */
  transfers?: unknown[];
}

export interface BenchCluster {
  /** host:port of each node, n1 first. */
  nodes: string[];
  /** The node processes, in the order of `nodes`. */
  procs: ChildProcess[];
  /** The cluster's first admin token (also set as RINGKV_TOKEN for the YCSB binding). */
  token: string;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** The checkout whose bin/ringkv.js runs (an A/B build). Default this project. */
  root?: string;
  /** Node options before bin/ringkv.js (e.g. `--import <probe>`). */
  nodeArgs?: string[];
  /** Spawn each node with an IPC channel. */
  ipc?: boolean;
}

export async function startCluster(count: number, opts: ClusterOptions = {}): Promise<BenchCluster> {
  const data = tempDir(`ringkv-bench-${count}n-`);
  const nodes: string[] = [];
  for (let i = 0; i < count; i++) nodes.push(`127.0.0.1:${await freePort()}`);
  const secretFile = `${data.path}/cluster.secret`;
  ensureSecretFile(secretFile);
  const bin = opts.root ? path.join(opts.root, 'bin/ringkv.js') : 'bin/ringkv.js';
  const procs = nodes.map((address, i) => {
    const args = [...(opts.nodeArgs ?? []), bin, 'start', '--node-id', `n${i + 1}`, '--listen', address, '--data-dir', `${data.path}/n${i + 1}`, '--log-level', 'warn', '--secret-file', secretFile];
    if (i > 0) args.push('--seeds', nodes[0]!);
    return spawnTracked(args, { cwd: opts.root, ipc: opts.ipc });
  });
  const stop = async () => {
    await stopChildren(procs);
    data.remove();
  };
  try {
    // Tokens are on (the default): n1 writes the cluster's first admin token; the YCSB binding takes it from RINGKV_TOKEN.
    const tokenFile = `${data.path}/n1/admin.token`;
    await waitUntil(async () => existsSync(tokenFile), 'the admin token');
    const token = readFileSync(tokenFile, 'utf8').trim();
    process.env.RINGKV_TOKEN = token;
    const headers = { authorization: `Bearer ${token}` };
    const statuses = () => Promise.all(nodes.map(async (n) => (await (await fetch(`http://${n}/status`, { headers })).json()) as StatusDoc));
    await waitUntil(async () => {
      const docs = await statuses();
      return docs.every((d) => d.ring.digest === docs[0]!.ring.digest && d.members.filter((m) => m.status === 'valid' && m.partitions > 0).length === count);
    }, `${count} ringkv node(s) on one ring`);
    // Measure the steady state: wait until the joins' partition handoffs are
    // done (reads during a handoff can miss their quorum), then a little more.
    await waitUntil(async () => (await statuses()).every((d) => (d.transfers?.length ?? 0) === 0), `the partition handoffs of ${count} node(s)`, 180_000);
    if (count > 1) await new Promise((r) => setTimeout(r, 2_000));
    return { nodes, procs, token, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
