// A restore that cannot reach enough replicas stops with an error saying
// how far it got, claims nothing more, and a run with --resume after the
// cluster is whole again completes it. Also `--out DIR`. Real CLI processes,
// real nodes.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server/index.js';
import { CLI } from '../helpers/processes.js';
import { startOnStablePort } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';
import { converged, start, writeAll } from '../listing/helpers.js';

const exec = promisify(execFile);
const dir = tempDir('ringkv-restore-failure-');
const running = new Set<RunningServer>();

async function ringkv(...args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await exec(process.execPath, [CLI, ...args], { timeout: 50_000 });
    return { code: 0, stderr };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

afterAll(async () => {
  await Promise.all([...running].map((n) => n.close(500)));
  dir.remove();
});

describe('restore after a failure', () => {
  it('stops when too few primaries take a batch, and --resume completes it once they are back', async () => {
    const boot = async (id: string, data: string, seeds: string[], port = 0) => {
      const n = await start(id, data, seeds, port, { node: { gossipIntervalMs: 100, requestTimeoutMs: 1_000 } });
      running.add(n);
      return n;
    };
    // The source: one node, n = 1 (so a backup needs nothing else).
    const source = await boot('s1', `${dir.path}/s1`, []);
    await writeAll(source.address, Array.from({ length: 300 }, (_, i) => ({ bucket: 'rf', key: `k${i}`, value: `v${i}` })));
    const backups = `${dir.path}/backups`;
    await exec('mkdir', ['-p', backups]);
    const made = await ringkv('backup', '--out', backups, '--node', source.address);
    expect(made.code, made.stderr).toBe(0);
    const file = `${backups}/ringkv.bak`;
    expect(existsSync(file)).toBe(true);

    // The target: 3 nodes (n2 and n3 restart on their ports); then 2 of them stop.
    const t1 = await boot('t1', `${dir.path}/t1`, []);
    const t2 = await startOnStablePort((port) => boot('t2', `${dir.path}/t2`, [t1.address], port));
    const t3 = await startOnStablePort((port) => boot('t3', `${dir.path}/t3`, [t1.address], port));
    await converged([t1, t2, t3], 3);
    const ports = [t2.port, t3.port];
    for (const n of [t2, t3]) {
      await n.close(500);
      running.delete(n);
    }
    const failed = await ringkv('restore', file, '--node', t1.address, '--batch', '100');
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/were not merged .*QUORUM_FAILED.*0 objects are merged: run again with --resume/);

    const back = [await boot('t2', `${dir.path}/t2`, [t1.address], ports[0]), await boot('t3', `${dir.path}/t3`, [t1.address], ports[1])];
    await converged([t1, ...back], 3);
    const done = await ringkv('restore', file, '--node', t1.address, '--batch', '100', '--resume');
    expect(done.code, done.stderr).toBe(0);
    expect(done.stderr).toMatch(/300 objects merged/);
    for (const i of [0, 150, 299]) {
      const res = await fetch(`http://${back[1]!.address}/kv/rf/k${i}`);
      expect(await res.text()).toBe(`v${i}`);
    }
  }, 120_000);
});
