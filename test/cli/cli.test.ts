// The `ringkv` command as a user runs it: `ringkv dev` starts a 3-process
// cluster, `ringkv put/get/delete/status` talk to it from another process,
// and Ctrl-C (SIGINT) stops every node cleanly with the data kept.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_PARTITION_BITS } from '../../src/engine/types.js';
import { waitFor } from '../helpers/cluster.js';
import { CLI, ProcessGroup, exitWithin, ringkv as runRingkv, untilOutput } from '../helpers/processes.js';
import { stablePortRun } from '../helpers/server.js';

const run = promisify(execFile);
const processes = new ProcessGroup();
afterAll(() => processes.close(0));

/** Starts `ringkv dev` and resolves once it reports the cluster up (bounded). */
async function startDev(dataDir: string, basePort: number) {
  const dev = processes.spawn(process.execPath, [CLI, 'dev', '--data-dir', dataDir, '--base-port', String(basePort)]);
  await untilOutput(dev, /nodes up/, 40_000);
  return dev;
}

/** Environment the CLI runs with beyond this process's (a test sets RINGKV_TOKEN_FILE here). */
const cliEnv: Record<string, string> = {};
const ringkv = (...args: string[]) => runRingkv(args, cliEnv);

describe('ringkv command', () => {
  it('refuses to start when uWebSockets.js fell back to its slow emulation', async () => {
    const dir = processes.tempDir('ringkv-cli-');
    const res = await run(process.execPath, [CLI, 'start', '--listen', '127.0.0.1:0', '--data-dir', dir.path], {
      timeout: 20_000,
      env: { ...process.env, UWS_USE_FALLBACK: '1' },
    }).then(() => ({ code: 0, stderr: '' }), (err: { code: number; stderr: string }) => err);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/refuses to start/);
  });

  it('dev cluster, then put/get/delete/status from another process, then a clean stop that keeps the data', async () => {
    const dir = processes.tempDir('ringkv-cli-');
    // Below the ephemeral range (32768+ here): the restart below takes the same ports again, and an outgoing
    // connection may have been given one meanwhile (the random base used to reach 39,999).
    const basePort = await stablePortRun(3);
    const node = (i: number) => `127.0.0.1:${basePort + i}`;
    const dev = await startDev(dir.path, basePort);

    // Tokens are on: without one the nodes refuse; dev says where its admin token is, and the CLI takes it from there.
    const tokenFile = join(dir.path, 'token');
    // Printed just after the 'nodes up' line startDev waits for, maybe in a later chunk of the pipe.
    await waitFor(() => dev.output().includes(`admin token in ${tokenFile}`), 5_000, `dev names its admin token file:\n${dev.output()}`);
    const refused = await ringkv('get', 'cart', 'alice', '--node', node(1));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/UNAUTHORIZED \(401\)/);
    cliEnv.RINGKV_TOKEN_FILE = tokenFile;

    const first = await ringkv('put', 'cart', 'alice', 'milk', '--node', node(1));
    expect(first.code, first.stderr).toBe(0);
    expect((await ringkv('get', 'cart', 'alice', '--node', node(2))).stdout).toBe('milk\n');

    // A blind write makes a sibling; a CLI put (which reads the context first) resolves it.
    await ringkv('put', 'cart', 'alice', 'eggs', '--blind', '--node', node(0));
    const two = await ringkv('get', 'cart', 'alice', '--node', node(0));
    expect(two.stdout.split('\n').filter(Boolean).sort()).toEqual(['eggs', 'milk']);
    expect(two.stderr).toMatch(/2 siblings/);
    await ringkv('put', 'cart', 'alice', 'milk,eggs', '--node', node(2));
    expect((await ringkv('get', 'cart', 'alice', '--node', node(1))).stdout).toBe('milk,eggs\n');

    await ringkv('put', 'cart', 'bob', 'tea', '--node', node(0));
    expect((await ringkv('delete', 'cart', 'bob', '--node', node(1))).code).toBe(0);
    const gone = await ringkv('get', 'cart', 'bob', '--node', node(2));
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/not found \(deleted\)/);

    const status = JSON.parse((await ringkv('status', '--json', '--node', node(0))).stdout) as { members: Array<{ status: string; partitions: number }> };
    expect(status.members.map((m) => m.status)).toEqual(['valid', 'valid', 'valid']);
    expect(status.members.reduce((s, m) => s + m.partitions, 0)).toBe(2 ** DEFAULT_PARTITION_BITS);

    const bad = await ringkv('get', 'cart', 'x'.repeat(2000), '--node', node(0));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/KEY_TOO_LARGE \(400\)/);

    dev.child.kill('SIGINT');
    expect(await exitWithin(dev, 15_000)).toBe(0);
    expect(dev.output()).toMatch(/stopping the cluster/);

    // Same directory again: the cluster comes back with its data.
    const again = await startDev(dir.path, basePort);
    expect((await ringkv('get', 'cart', 'alice', '--node', node(0))).stdout).toBe('milk,eggs\n');
    again.child.kill('SIGTERM');
    expect(await exitWithin(again, 15_000)).toBe(0);
    delete cliEnv.RINGKV_TOKEN_FILE;
  }, 120_000);
});

describe('finding 6: the CLI reads every documented limit', () => {
  it('finding 6: get and put on a key whose context covers 1024 actors (a header over 16 KiB)', async () => {
    const { startTestNode } = await import('../helpers/server.js');
    const { RingkvClient } = await import('../../src/client/index.js');
    const { encodeContext } = await import('../../src/record/codec.js');
    const n = await startTestNode('cli-limits');
    try {
      // 1023 actors; the coordinator adds its own: the context read back covers 1024.
      const entries = Array.from({ length: 1023 }, (_, i) => {
        const actor = Buffer.alloc(8, 0x61);
        actor.writeUInt16BE(0x6000 + i, 0);
        return { actor, counter: 1 };
      });
      const context = encodeContext(entries).toString('base64url');
      await new RingkvClient({ nodes: [n.address] }).put('limits', 'ctx', 'big', { context });
      const got = await ringkv('get', 'limits', 'ctx', '--node', n.address);
      expect(got.code, got.stderr).toBe(0);
      expect(got.stdout).toBe('big\n');
      const put = await ringkv('put', 'limits', 'ctx', 'bigger', '--node', n.address);
      expect(put.code, put.stderr).toBe(0);
      expect((await ringkv('get', 'limits', 'ctx', '--node', n.address)).stdout).toBe('bigger\n');
      const key = 'k'.repeat(1024);
      expect((await ringkv('put', 'limits', key, 'long key', '--node', n.address)).code).toBe(0);
      expect((await ringkv('get', 'limits', key, '--node', n.address)).stdout).toBe('long key\n');
    } finally {
      await n.close();
    }
  }, 60_000);
});
