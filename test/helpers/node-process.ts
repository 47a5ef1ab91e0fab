// `ringkv start` as separate processes for tests (bin/ringkv.js, so dist/
// must be built): output captured, each process killed at cleanup, ports in
// the range the kernel does not hand out (see startOnStablePort).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const CLI = fileURLToPath(new URL('../../bin/ringkv.js', import.meta.url));
const run = promisify(execFile);

export interface NodeProcess {
  child: ChildProcess;
  /** stdout (pino's JSON lines) and stderr as received so far. */
  stdout(): string;
  stderr(): string;
  exit: Promise<number | null>;
}

const started: ChildProcess[] = [];

/** Spawns `ringkv start ARGS`. */
export function startNodeProcess(args: string[]): NodeProcess {
  const child = spawn(process.execPath, [CLI, 'start', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exit };
}

/** Waits (bounded) until the node at `address` answers GET /ping (open to everyone). */
export async function listening(p: NodeProcess, address: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (p.child.exitCode !== null) throw new Error(`node exited ${p.child.exitCode}:\n${p.stdout()}\n${p.stderr()}`);
    const pong = await fetch(`http://${address}/ping`, { signal: AbortSignal.timeout(1_000) }).then((r) => r.text(), () => '');
    if (pong === 'pong') return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`node did not come up at ${address}:\n${p.stdout()}\n${p.stderr()}`);
}

/** Distinct ports in 20000..31999 (below the ephemeral range: no outgoing connection takes them meanwhile). */
export function stablePorts(count: number): number[] {
  const base = 20_000 + Math.floor(Math.random() * (12_000 - count));
  return Array.from({ length: count }, (_, i) => base + i);
}

/** Runs the CLI (`ringkv ARGS`) to its end; never throws. */
export async function ringkv(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { timeout: 20_000, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** SIGTERM to every process this module started that still runs, then SIGKILL after `graceMs`. */
export async function stopNodeProcesses(graceMs = 5_000): Promise<void> {
  const running = started.splice(0).filter((c) => c.exitCode === null && c.signalCode === null);
  await Promise.all(
    running.map(
      (c) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            c.kill('SIGKILL');
            resolve();
          }, graceMs);
          c.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          c.kill('SIGTERM');
        }),
    ),
  );
}
