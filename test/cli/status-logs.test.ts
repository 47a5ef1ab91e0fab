// What an operator reads in the logs: nodes started together (racing each
// other, as `npm start` does) retry their join quietly, and only a node that
// cannot join for joinQuietMs warns, once, then rate-limited; and a running
// node's log level changes with `ringkv log-level LEVEL` (admin only).
import { Writable } from 'node:stream';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/cluster.js';
import { ProcessGroup, readAdminToken, ringkv, untilPing } from '../helpers/processes.js';
import { writeTestSecretFile } from '../helpers/secret.js';
import { closedPort, stablePort, stablePorts, startTestNode, type TestNode } from '../helpers/server.js';

const processes = new ProcessGroup();
const inProcess: TestNode[] = [];
afterAll(async () => {
  await processes.stopAll(5_000);
  await Promise.allSettled(inProcess.map((n) => n.close()));
  await processes.close();
});

interface LogLine {
  level: number;
  msg: string;
  error?: string;
  failingForMs?: number;
}
const lines = (text: string): LogLine[] =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
const JOIN_FAILED = 'join through seed failed; retrying';

describe('joins at start-up', () => {
  it('nodes started before their seed retry at debug level only, then join', async () => {
    const dir = processes.tempDir('ringkv-quiet-join-');
    const secretFile = writeTestSecretFile(dir.path);
    const ports = await stablePorts(3);
    const address = (i: number) => `127.0.0.1:${ports[i]}`;
    const start = (i: number, level: string) =>
      processes.startNode([
        '--node-id', `n${i + 1}`, '--listen', address(i), '--data-dir', join(dir.path, `n${i + 1}`), '--secret-file', secretFile,
        '--partition-bits', '6', '--log-level', level, ...(i > 0 ? ['--seeds', address(0)] : []),
      ]);
    // n2 and n3 come up first (n2 logging at debug, n3 at the default info); their seed n1 a few seconds later.
    const n2 = start(1, 'debug');
    const n3 = start(2, 'info');
    await Promise.all([untilPing(n2, address(1)), untilPing(n3, address(2))]);
    await waitFor(() => lines(n2.stdout()).filter((l) => l.msg === JOIN_FAILED).length >= 2, 20_000, 'n2 retried its join at least twice');
    const n1 = start(0, 'info');
    await untilPing(n1, address(0));
    const token = readAdminToken(join(dir.path, 'n1'));
    await waitFor(async () => {
      const res = await fetch(`http://${address(0)}/status`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(2_000) });
      const doc = (await res.json()) as { members: Array<{ status: string; partitions: number }> };
      return doc.members.length === 3 && doc.members.every((m) => m.status === 'valid' && m.partitions > 0);
    }, 30_000, 'three valid members');

    // The race happened: n2's debug lines show the refused connections.
    const failures = lines(n2.stdout()).filter((l) => l.msg === JOIN_FAILED);
    expect(failures.length).toBeGreaterThanOrEqual(2);
    expect(failures.every((l) => l.level === 20)).toBe(true);
    expect(failures.some((l) => /ECONNREFUSED|unreachable|connect/i.test(l.error ?? ''))).toBe(true);
    // At info (what `ringkv start` logs by default), nothing about it; warn or above, on neither.
    expect(lines(n3.stdout()).filter((l) => l.msg === JOIN_FAILED)).toEqual([]);
    for (const p of [n2, n3]) {
      expect(lines(p.stdout()).filter((l) => l.level >= 40 && /join/i.test(l.msg))).toEqual([]);
      expect(p.stderr()).toBe('');
      expect(lines(p.stdout()).some((l) => l.msg === 'joined cluster' && l.level === 30)).toBe(true);
    }
  }, 120_000);

  it('a node that cannot join for joinQuietMs warns once, and not again within joinWarnEveryMs', async () => {
    const logged: LogLine[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        logged.push(...lines(chunk.toString()));
        done();
      },
    });
    const node = await startTestNode('lonely', {
      seeds: [`127.0.0.1:${await closedPort()}`],
      logger: pino({ level: 'debug' }, stream),
      node: { gossipIntervalMs: 100, joinQuietMs: 1_000, joinWarnEveryMs: 60_000 },
    });
    inProcess.push(node);
    await waitFor(() => logged.filter((l) => l.msg === JOIN_FAILED).length >= 25, 30_000, '25 failed join attempts');
    const failures = logged.filter((l) => l.msg === JOIN_FAILED);
    const warnings = failures.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.failingForMs).toBeGreaterThanOrEqual(1_000);
    // Every attempt before the deadline, and every one after the warning, at debug.
    const first = failures.indexOf(warnings[0]!);
    expect(first).toBeGreaterThan(0);
    expect(failures.filter((l) => l.level === 20)).toHaveLength(failures.length - 1);
    expect(failures.slice(0, first).every((l) => (l.failingForMs ?? Infinity) < 1_000)).toBe(true);
  }, 60_000);
});

describe('ringkv log-level', () => {
  it('turns debug lines on and off in a running node', async () => {
    const dir = processes.tempDir('ringkv-log-level-');
    const port = await stablePort();
    const address = `127.0.0.1:${port}`;
    // Its seed never answers: it retries its join every second, a debug line each time.
    const p = processes.startNode(['--node-id', 'solo', '--listen', address, '--data-dir', dir.path, '--insecure-loopback', '--log-level', 'info', '--seeds', `127.0.0.1:${await closedPort()}`]);
    await untilPing(p, address);
    await new Promise((r) => setTimeout(r, 2_500));
    expect(lines(p.stdout()).filter((l) => l.level < 30)).toEqual([]);

    const on = await ringkv(['log-level', 'debug', '--node', address]);
    expect(on.code, on.stderr).toBe(0);
    expect(on.stderr).toContain('log level info → debug');
    await waitFor(() => lines(p.stdout()).some((l) => l.level === 20 && l.msg === JOIN_FAILED), 10_000, 'a debug line after the change');
    expect(lines(p.stdout()).some((l) => l.msg === 'log level changed' && l.level === 30)).toBe(true);

    const off = await ringkv(['log-level', 'info', '--node', address]);
    expect(off.code, off.stderr).toBe(0);
    const debugLines = () => lines(p.stdout()).filter((l) => l.level === 20).length;
    await new Promise((r) => setTimeout(r, 500));
    const count = debugLines();
    await new Promise((r) => setTimeout(r, 2_500));
    expect(debugLines()).toBe(count);

    const bad = await ringkv(['log-level', 'loud', '--node', address]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/BAD_REQUEST \(400\).*level must be one of trace, debug, info, warn, error, fatal, silent/);
  }, 60_000);

  it('needs an admin token where tokens are on', async () => {
    const dir = processes.tempDir('ringkv-log-level-auth-');
    const port = await stablePort();
    const address = `127.0.0.1:${port}`;
    const p = processes.startNode(['--node-id', 'a1', '--listen', address, '--data-dir', join(dir.path, 'a1'), '--secret-file', writeTestSecretFile(dir.path), '--log-level', 'info']);
    await untilPing(p, address);
    const admin = readAdminToken(join(dir.path, 'a1'));
    const made = await fetch(`http://${address}/admin/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ role: 'read' }),
      signal: AbortSignal.timeout(5_000),
    });
    const reader = ((await made.json()) as { token: string }).token;

    expect((await ringkv(['log-level', 'debug', '--node', address], { RINGKV_TOKEN: '' })).stderr).toMatch(/UNAUTHORIZED \(401\)/);
    const refused = await ringkv(['log-level', 'debug', '--node', address], { RINGKV_TOKEN: reader });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/FORBIDDEN \(403\).*role 'admin'/);
    const done = await ringkv(['log-level', 'debug', '--node', address], { RINGKV_TOKEN: admin });
    expect(done.code, done.stderr).toBe(0);
    await waitFor(() => lines(p.stdout()).some((l) => l.msg === 'log level changed'), 5_000, 'the change logged');
  }, 60_000);
});
