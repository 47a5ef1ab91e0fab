// Child processes and ports for the benches that run real ringkv processes
// (bench/suite.ts, bench/security.ts): every child is tracked and killed when
// the bench exits however it ends.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const children = new Set<ChildProcess>();
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

export interface SpawnOptions {
  /** Working directory: another checkout of the project (an A/B build, bench/roles.ts). Default this project's root. */
  cwd?: string;
  /** Open an IPC channel to the child (child.send / 'message'). */
  ipc?: boolean;
}

/** `node <args>` from the project root, stderr shown, killed when this process exits. */
export function spawnTracked(args: string[], opts: SpawnOptions = {}): ChildProcess {
  const stdio: Array<'ignore' | 'inherit' | 'ipc'> = ['ignore', 'ignore', 'inherit'];
  if (opts.ipc) stdio.push('ipc');
  const child = spawn(process.execPath, args, { cwd: opts.cwd ?? root, stdio });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/** SIGTERM each, SIGKILL after 5 s; resolves when all have exited. */
export async function stopChildren(list: ChildProcess[]): Promise<void> {
  await Promise.all(
    list.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          const force = setTimeout(() => c.kill('SIGKILL'), 5_000);
          c.once('exit', () => {
            clearTimeout(force);
            resolve();
          });
          c.kill('SIGTERM');
        }),
    ),
  );
}

/** A 127.0.0.1 port free right now (bound, then released), so parallel runs on the machine do not collide. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Polls `check` every 200 ms until it is true (bounded by timeoutMs). A check
 * that throws counts as "not yet", unless `fatal(err)` says the wait is over.
 */
export async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 60_000, fatal: (err: unknown) => boolean = () => false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await check().catch((err: unknown) => {
      if (fatal(err)) throw err;
      return false;
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const CLOCK_TICKS_PER_S = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * utime + stime of a process so far, all its threads, µs (from
 * /proc/<pid>/stat: the fields after the command's closing parenthesis; in
 * clock ticks, 10 ms each here). On a shared machine throughput moves with
 * whatever else runs, but the CPU a process spends per request does not
 * (much): it is the cost itself.
 */
export function processCpuUs(pid: number): number {
  const { userUs, systemUs } = processCpuSplitUs(pid);
  return userUs + systemUs;
}

/** utime and stime apart (system time: the kernel's work for the process, e.g. loopback TCP on each write). */
export function processCpuSplitUs(pid: number): { userUs: number; systemUs: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  const us = (ticks: string | undefined) => (Number(ticks) / CLOCK_TICKS_PER_S) * 1e6;
  return { userUs: us(fields[11]), systemUs: us(fields[12]) };
}
