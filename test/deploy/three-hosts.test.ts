// Three nodes as three hosts (issue 12, item 2): each `ringkv start --config
// FILE` runs in its own network namespace on a private bridge, listening on
// 0.0.0.0:8087 and advertising its bridge address, seeded by host name
// (h2 and h3 resolve h1's name inside their host, through its /etc/hosts), with one cluster
// secret file. The test talks to every node from the root namespace over the
// bridge (the client library, and the CLI inside a host), then cuts h3 off
// with nftables inside its namespace and heals it:
// - on the majority side writes keep working with (3,2,2), and h3 is
//   suspected by both; alone, h3 refuses a write (no quorum);
// - a bucket with n = 2 shows hinted handoff: a key whose primaries are h3
//   and a majority node is acknowledged by that node plus a hint on the other
//   (with N = 3 on three nodes there is no fallback left to hold a hint);
// - after the heal the hints are delivered (none pending, each one counted),
//   every acknowledged write reads back through every node, and, the nodes
//   stopped, every engine holds what it should: each default-bucket key on
//   all three disks, each n = 2 key on exactly two, no hint left.
// Needs root, `ip` and `nft` (skipped with the reason otherwise; under CI a
// missing tool fails).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingkvClient } from '../../src/client/index.js';
import { NativeEngine } from '../../src/engine/native/index.js';
import { decodeRecord } from '../../src/record/codec.js';
import { keyPreference, parseRingDocument } from '../../src/client/routing.js';
import type { NodeStatus } from '../../src/api-types.js';
import { waitFor } from '../helpers/cluster.js';
import { NetnsLab, probeNetns, skipReasonOrThrow } from '../helpers/netns.js';
import { CLI } from '../helpers/processes.js';
import { writeTestSecretFile } from '../helpers/secret.js';
import { tempDir } from '../helpers/tmp.js';
import type { ChildProcess } from 'node:child_process';

const PORT = 8087;
const PARTITION_BITS = 6;
const HOSTS = ['h1', 'h2', 'h3'];
/** The name h2 and h3 resolve to h1's address (as a DNS record would), through their /etc/hosts. */
const SEED_NAME = 'h1.ringkv.test';

const skip = skipReasonOrThrow(probeNetns(), 'three-hosts test');
if (skip !== null) console.log(`[three-hosts.test] skipped: ${skip} (needs root, iproute2 and nftables)`);

interface HostNode {
  name: string;
  address: string;
  dataDir: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

describe.skipIf(skip !== null)('a 3-node cluster as 3 hosts (network namespaces)', () => {
  const dir = tempDir('ringkv-3hosts-');
  let lab: NetnsLab;
  const nodes: HostNode[] = [];
  let token = '';
  const clients = new Map<string, RingkvClient>();
  const through = (host: string) => clients.get(host)!;

  const statusOf = async (host: string): Promise<NodeStatus> => {
    const res = await fetch(`http://${lab.host(host).address}:${PORT}/status`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(2_000) });
    return (await res.json()) as NodeStatus;
  };
  /** The sum of a metric's series on one node (its /metrics, Prometheus text). */
  const metric = async (host: string, name: string): Promise<number> => {
    const res = await fetch(`http://${lab.host(host).address}:${PORT}/metrics`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(2_000) });
    const text = await res.text();
    const values = [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].map((m) => Number(m[1]));
    if (values.length === 0) throw new Error(`${host} has no metric ${name}`);
    return values.reduce((a, b) => a + b, 0);
  };
  const healthOf = (s: NodeStatus, id: string) => s.members.find((m) => m.id === id)?.health;
  const logs = () => nodes.map((n) => `--- ${n.name}\n${n.output().split('\n').slice(-15).join('\n')}`).join('\n');

  beforeAll(async () => {
    lab = NetnsLab.create({ hosts: HOSTS, hostNames: { [SEED_NAME]: 'h1' } });
    writeTestSecretFile(dir.path); // cluster.secret, next to the config files
    for (const h of lab.hosts) {
      const config = join(dir.path, `${h.name}.yaml`);
      // Relative paths in the file are taken from its directory.
      writeFileSync(config, [
        `node_id: ${h.name}`,
        `listen: 0.0.0.0:${PORT}`,
        `advertise: ${h.address}:${PORT}`,
        `data_dir: ./${h.name}-data`,
        // h1 is its own seed, so it creates the cluster (and the first admin token); the others join through it by name.
        `seeds: [${h.name === 'h1' ? h.address : SEED_NAME}:${PORT}]`,
        'secret_file: cluster.secret',
        `partition_bits: ${PARTITION_BITS}`,
        'cache_mb: 16',
        'log_level: info',
        '',
      ].join('\n'));
      // Started with only PATH in the environment: everything comes from the file.
      const child = lab.spawn(h.name, process.execPath, [CLI, 'start', '--config', config], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout!.on('data', (d) => (output += d));
      child.stderr!.on('data', (d) => (output += d));
      nodes.push({ name: h.name, address: h.address, dataDir: join(dir.path, `${h.name}-data`), child, output: () => output, exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))) });
    }
    await waitFor(() => {
      for (const n of nodes) if (n.child.exitCode !== null) throw new Error(`${n.name} exited ${n.child.exitCode}:\n${n.output()}`);
      try {
        token = readFileSync(join(nodes[0]!.dataDir, 'admin.token'), 'utf8').trim();
        return token !== '';
      } catch {
        return false;
      }
    }, 30_000, 'h1 to create the cluster (admin.token)');
    for (const h of lab.hosts) clients.set(h.name, new RingkvClient({ nodes: [`${h.address}:${PORT}`], token, timeoutMs: 15_000 }));
    await waitFor(async () => {
      const views = await Promise.all(HOSTS.map(statusOf));
      return views.every((v) => v.joined && v.members.filter((m) => m.status === 'valid' && m.partitions > 0).length === 3 && v.members.every((m) => m.health !== 'suspect'))
        && new Set(views.map((v) => v.ring.digest)).size === 1;
    }, 45_000, `the three hosts to form one cluster\n${logs()}`);
  }, 90_000);

  afterAll(async () => {
    for (const c of clients.values()) c.close();
    for (const n of nodes) if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGKILL');
    lab?.destroy();
    const left = lab?.leftovers() ?? [];
    dir.remove();
    expect(left).toEqual([]);
  });

  it('joins through a seed host name, on the advertised addresses; puts and gets work through every node', async () => {
    for (const n of nodes.slice(1)) expect(n.output()).toContain(`"seed":"${nodes[0]!.address}:${PORT}"`);
    const view = await statusOf('h2');
    expect(Object.fromEntries(view.members.map((m) => [m.id, m.address]))).toEqual(Object.fromEntries(lab.hosts.map((h) => [h.name, `${h.address}:${PORT}`])));
    expect(await through('h1').bucketProps('kv')).toMatchObject({ n: 3, r: 2, w: 2 });
    for (const writer of HOSTS) {
      for (let i = 0; i < 5; i++) await through(writer).put('kv', `before-${writer}-${i}`, `v-${writer}-${i}`);
    }
    for (const reader of HOSTS) {
      for (const writer of HOSTS) {
        for (let i = 0; i < 5; i++) expect((await through(reader).get('kv', `before-${writer}-${i}`)).values.map(String)).toEqual([`v-${writer}-${i}`]);
      }
    }
    // The CLI inside a host, to another host over the bridge.
    const env = { PATH: process.env.PATH, RINGKV_TOKEN: token };
    lab.exec('h2', process.execPath, [CLI, 'put', 'kv', 'from-cli', 'cli-value', '--node', `${lab.host('h3').address}:${PORT}`], { env });
    expect(lab.exec('h3', process.execPath, [CLI, 'get', 'kv', 'from-cli', '--node', `${lab.host('h1').address}:${PORT}`], { env }).trim()).toBe('cli-value');
  }, 60_000);

  const acked = new Map<string, string>(); // "bucket/key" -> value, every write acknowledged while h3 was cut off

  it('h3 cut off: suspected by h1 and h2; writes through them keep working with (3,2,2), h3 alone refuses one; n = 2 keys of h3 go to hints', async () => {
    // The join's partition transfers done first: a transfer pass still due when the cut heals would copy every key
    // written meanwhile to its new replica, n = 2 buckets included, and this test checks where each key lands.
    await waitFor(async () => (await Promise.all(HOSTS.map(statusOf))).every((v) => Array.isArray(v.transfers) && v.transfers.length === 0), 60_000, `the join's transfers to finish\n${logs()}`);
    await through('h1').setBucketProps('pairs', { n: 2, r: 1, w: 2 });
    await waitFor(async () => (await through('h2').bucketProps('pairs')).n === 2 && (await through('h3').bucketProps('pairs')).n === 2, 10_000, 'the bucket props to spread');
    const storedBefore = (await metric('h1', 'ringkv_hints_stored_total')) + (await metric('h2', 'ringkv_hints_stored_total'));
    lab.cutOff('h3');
    await expect(fetch(`http://${lab.host('h3').address}:${PORT}/ping`, { signal: AbortSignal.timeout(1_000) })).rejects.toThrow();
    await waitFor(async () => healthOf(await statusOf('h1'), 'h3') === 'suspect' && healthOf(await statusOf('h2'), 'h3') === 'suspect', 30_000, `h1 and h2 to suspect h3\n${logs()}`);
    for (let i = 0; i < 20; i++) {
      const writer = i % 2 === 0 ? 'h1' : 'h2';
      await through(writer).put('kv', `cut-${i}`, `cut-value-${i}`);
      acked.set(`kv/cut-${i}`, `cut-value-${i}`);
      await through(writer).put('pairs', `cut-${i}`, `pair-value-${i}`);
      acked.set(`pairs/cut-${i}`, `pair-value-${i}`);
    }
    // On h3's side of the cut (the CLI inside h3, to its own loopback): once it suspects both others, a (3,2,2) write is refused.
    const inH3 = { PATH: process.env.PATH, RINGKV_TOKEN: token };
    await waitFor(() => {
      const s = lab.run('h3', process.execPath, [CLI, 'status', '--json', '--node', `127.0.0.1:${PORT}`], { env: inH3 });
      const view = JSON.parse(s.stdout) as NodeStatus;
      return healthOf(view, 'h1') === 'suspect' && healthOf(view, 'h2') === 'suspect';
    }, 30_000, 'h3 to suspect h1 and h2');
    const minority = lab.run('h3', process.execPath, [CLI, 'put', 'kv', 'minority-0', 'not-acknowledged', '--node', `127.0.0.1:${PORT}`], { env: inH3, timeoutMs: 30_000 });
    expect(minority.status, minority.stdout).not.toBe(0);
    expect(minority.stderr).toMatch(/UNAVAILABLE|TIMEOUT/);
    // Keys written before the cut are still read on the majority side.
    for (const reader of ['h1', 'h2']) expect((await through(reader).get('kv', 'before-h3-0')).values.map(String)).toEqual(['v-h3-0']);
    // About two thirds of the n = 2 keys have h3 as a primary: their second copy is a hint.
    const hintsPending = (await metric('h1', 'ringkv_hints_pending')) + (await metric('h2', 'ringkv_hints_pending'));
    const stored = (await metric('h1', 'ringkv_hints_stored_total')) + (await metric('h2', 'ringkv_hints_stored_total')) - storedBefore;
    expect(hintsPending).toBeGreaterThan(0);
    expect(stored).toBeGreaterThanOrEqual(hintsPending);
  }, 60_000);

  it('healed: h3 is up again, the hints are delivered, every acknowledged write reads back through every node', async () => {
    expect(acked.size).toBe(40);
    const deliveredBefore = (await metric('h1', 'ringkv_hints_delivered_total')) + (await metric('h2', 'ringkv_hints_delivered_total'));
    const pendingBefore = (await metric('h1', 'ringkv_hints_pending')) + (await metric('h2', 'ringkv_hints_pending'));
    lab.heal('h3');
    await waitFor(async () => {
      const views = await Promise.all(HOSTS.map(statusOf));
      return views.every((v) => v.members.every((m) => m.health === 'self' || m.health === 'up'));
    }, 30_000, `every node to see every other up again\n${logs()}`);
    await waitFor(async () => (await metric('h1', 'ringkv_hints_pending')) + (await metric('h2', 'ringkv_hints_pending')) === 0, 30_000, 'the hints to be delivered');
    const delivered = (await metric('h1', 'ringkv_hints_delivered_total')) + (await metric('h2', 'ringkv_hints_delivered_total')) - deliveredBefore;
    expect(delivered).toBe(pendingBefore);
    // h3 first: its reads read-repair its own copies of the default bucket (a read waits for the coordinator's own answer).
    for (const reader of ['h3', 'h1', 'h2']) {
      for (const [bk, value] of acked) {
        const [bucket, key] = bk.split('/') as [string, string];
        expect((await through(reader).get(bucket, key)).values.map(String), `${bk} through ${reader}`).toEqual([value]);
      }
    }
  }, 90_000);

  it('stopped, every engine holds what it should: default-bucket keys on all three disks, n = 2 keys on their two primaries, no hints', async () => {
    const ringRes = await fetch(`http://${lab.host('h1').address}:${PORT}/ring`, { headers: { authorization: `Bearer ${token}` } });
    const ring = parseRingDocument(await ringRes.json());
    const holders = (bk: string): string[] => {
      const [bucket, key] = bk.split('/') as [string, string];
      if (bucket === 'kv') return [...HOSTS];
      return [...keyPreference(ring, Buffer.from(bucket), Buffer.from(key))!.primaries].sort();
    };
    for (const n of nodes) n.child.kill('SIGTERM');
    for (const n of nodes) expect(await n.exited, `${n.name} exit code\n${n.output().slice(-2_000)}`).toBe(0);
    const copies = new Map<string, string[]>();
    for (const n of nodes) {
      const engine = await NativeEngine.open({ nodeId: n.name, path: n.dataDir, partitionBits: PARTITION_BITS });
      try {
        expect(await engine.hintTargets(), `hints left on ${n.name}`).toEqual([]);
        for (const [bk, value] of acked) {
          const [bucket, key] = bk.split('/') as [string, string];
          const record = await engine.get(Buffer.from(bucket), Buffer.from(key));
          if (record === null) continue;
          expect(decodeRecord(record).siblings.map((s) => String(s.value)), `${bk} on ${n.name}`).toEqual([value]);
          copies.set(bk, [...(copies.get(bk) ?? []), n.name]);
        }
      } finally {
        await engine.close();
      }
    }
    const wrong = [...acked.keys()].filter((bk) => JSON.stringify(copies.get(bk)?.sort()) !== JSON.stringify(holders(bk))).map((bk) => `${bk}: on ${copies.get(bk)?.join(',')}, primaries ${holders(bk).join(',')}`);
    expect(wrong).toEqual([]);
  }, 60_000);
});
