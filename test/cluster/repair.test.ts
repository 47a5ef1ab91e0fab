// Repair on demand, as an operator runs it: a replica's data for one
// partition is wiped on disk while its node is stopped (Engine.dropPartition
// on the stopped node's data directory); after the restart, `ringkv repair
// --partition P` (a real CLI process) restores every key of it from the
// other replicas and reports how many it repaired; `ringkv aae status` shows
// the comparison; a token without the admin role cannot start a repair.
import { readFileSync, writeFileSync } from 'node:fs';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { NativeEngine } from '../../src/engine/native/index.js';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/index.js';
import { waitFor } from '../helpers/cluster.js';
import { ringkv as runRingkv } from '../helpers/processes.js';
import { TEST_PEER_SECRETS } from '../helpers/secret.js';
import { startOnStablePort } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';

const B = Buffer.from('repair');
const KEYS = 600;

const dir = tempDir('ringkv-repair-');
/** Environment of the CLI processes beyond this one's (RINGKV_NODE: the node a command without --node talks to). */
const cliEnv: Record<string, string> = {};
const nodes: Array<RunningServer | undefined> = [];
afterAll(async () => {
  await Promise.all(nodes.map((n) => n?.close(500)));
  dir.remove();
});

const base = (): Partial<ServerOptions> => ({
  peerSecrets: TEST_PEER_SECRETS,
  logger: pino({ level: 'silent' }),
  node: { gossipIntervalMs: 100, requestTimeoutMs: 2_000 },
  // Only the repair under test may refill the wiped partition.
  antiEntropy: { intervalMs: 1e9 },
});
const ids = ['n1', 'n2', 'n3'];
const start = (i: number, port: number) =>
  startServer({ ...base(), port, nodeId: ids[i]!, dataDir: `${dir.path}/${ids[i]}`, seeds: i === 0 ? [] : [nodes[0]!.address] } as ServerOptions);

const ringkv = (...args: string[]) => runRingkv(args, cliEnv, { timeoutMs: 60_000 });

describe('ringkv repair', () => {
  it('restores a partition wiped on one replica and reports the keys it repaired', async () => {
    for (let i = 0; i < 3; i++) nodes.push(await startOnStablePort((port) => start(i, port)));
    const [n1, , n3] = nodes as RunningServer[];
    await waitFor(() => nodes.every((n) => Object.values(n!.node.clusterState.members).filter((m) => m.status === 'valid').length === 3), 15_000, '3 members');
    // The claim that gives n2 and n3 their partitions is on every node (the first rings of a join do not place them yet).
    await waitFor(
      () => nodes.every((n) => n!.node.hasJoined && new Set(n!.node.clusterState.ring.owners).size === 3 && n!.node.clusterState.ring.version === n1!.node.clusterState.ring.version),
      15_000,
      'one ring with 3 owners on every node',
    );
    const adminToken = readFileSync(n1!.adminTokenFile!, 'utf8').trim();
    const tokenFile = `${dir.path}/admin.token`;
    writeFileSync(tokenFile, adminToken, { mode: 0o600 });

    for (let i = 0; i < KEYS; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => n1!.node.put(B, Buffer.from(`k${i + j}`), null, Buffer.from(`v${i + j}`), { w: 3 })));
    }
    // The partition with the most keys (with 3 nodes and n = 3, every node is a primary of every partition).
    const partitionOf = (key: string) => Number(n1!.engine.hashKey(B, Buffer.from(key)) >> BigInt(64 - n1!.engine.partitionBits));
    const byPartition = new Map<number, string[]>();
    for (let i = 0; i < KEYS; i++) byPartition.set(partitionOf(`k${i}`), [...(byPartition.get(partitionOf(`k${i}`)) ?? []), `k${i}`]);
    const [p, keysOfP] = [...byPartition.entries()].sort((a, b) => b[1].length - a[1].length)[0]!;
    expect(n3!.node.preferenceListOf(p, 3).primaries).toContain('n3');
    for (const k of keysOfP) expect(await n3!.engine.get(B, Buffer.from(k))).not.toBeNull();

    // Every transfer of the cluster's formation is done (their catch-up pass would refill p itself).
    await waitFor(() => nodes.every((n) => n!.transfers.status().length === 0 && n!.transfers.receiving().length === 0), 30_000, 'transfers done');
    // n3 stops; its copy of p is wiped on disk; it starts again on its port.
    const port = n3!.port;
    await n3!.close(500);
    nodes[2] = undefined;
    const engine = await NativeEngine.open({ nodeId: 'n3', path: `${dir.path}/n3` });
    expect(await engine.dropPartition(p)).toBe(keysOfP.length);
    nodes[2] = await start(2, port);
    const restarted = nodes[2]!;
    for (const k of keysOfP) expect(await restarted.engine.get(B, Buffer.from(k))).toBeNull();
    await waitFor(() => restarted.node.hasJoined && !restarted.node.isSuspected('n1') && !restarted.node.isSuspected('n2'), 15_000, 'n3 trusts its peers again');

    // A token without the admin role is refused.
    const reader = await ringkv('token', 'create', '--role', 'read', '--node', n1!.address, '--token-file', tokenFile);
    expect(reader.code, reader.stderr).toBe(0);
    const readerToken = reader.stdout.match(/rkv_[A-Za-z0-9_-]{43}/)![0];
    const refused = await ringkv('repair', '--partition', String(p), '--node', restarted.address, '--token', readerToken);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/FORBIDDEN \(403\)/);

    const repaired = await ringkv('repair', '--partition', String(p), '--node', restarted.address, '--token-file', tokenFile);
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(repaired.stdout).toContain(`${keysOfP.length} keys repaired (${keysOfP.length} on the repairing nodes, 0 on their peers)`);
    expect(repaired.stdout).toMatch(/total: 1 partitions compared/);
    for (const k of keysOfP) expect(await restarted.engine.get(B, Buffer.from(k))).toEqual(await n1!.engine.get(B, Buffer.from(k)));
    expect(restarted.engine.treeRoots().subarray(p * 8, p * 8 + 8)).toEqual(n1!.engine.treeRoots().subarray(p * 8, p * 8 + 8));

    const aae = await ringkv('aae', 'status', '--node', restarted.address, '--token-file', tokenFile);
    expect(aae.code, aae.stderr).toBe(0);
    // Last compared with n2 (in sync), last repaired from n1: every key of p, all written here.
    expect(aae.stdout).toMatch(new RegExp(`^\\s*${p}\\s+\\d+ s ago\\s+n[12]\\s+in_sync\\s+\\d+ s ago\\s+n[12]\\s+${keysOfP.length}\\s+${keysOfP.length}\\s+0$`, 'm'));

    // Run again, without --node: on every member (each a primary of p, each comparing with the two others): nothing left to repair.
    cliEnv.RINGKV_NODE = n1!.address;
    const again = await ringkv('repair', '--partition', String(p), '--token-file', tokenFile);
    expect(again.code, again.stderr).toBe(0);
    for (const id of ['n1', 'n2', 'n3']) expect(again.stderr).toMatch(new RegExp(`repair started on .*${id} \\(r\\d+\\)`));
    expect(again.stdout).toContain('0 keys repaired');
    expect(again.stdout).toMatch(/total: 3 partitions compared \(0 partition-replica pairs differed, 6 were in sync\)/);
  });
});
