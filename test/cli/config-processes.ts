// Real `ringkv` processes for the config and values tests: one-shot commands
// with stdin and byte-exact stdout, and `ringkv start` nodes (bounded waits,
// killed at the end of the file's tests).
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../bin/ringkv.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs `ringkv ...args` to its end (bounded), feeding `stdin`; stdout is kept as bytes. */
export function runCli(args: string[], o: { stdin?: Buffer; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: o.env ?? process.env, cwd: o.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ringkv ${args.join(' ')} did not finish:\n${stderr}`));
    }, o.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr });
    });
    // A command that does not read stdin may exit first: EPIPE is not the test's concern.
    child.stdin.on('error', () => undefined);
    child.stdin.end(o.stdin ?? Buffer.alloc(0));
  });
}

export interface StartedNode {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

const started: StartedNode[] = [];

/** Spawns `ringkv start ...args` with `env` (the parent's environment is not inherited beyond PATH and HOME unless given). */
export function startNode(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): StartedNode {
  const child = spawn(process.execPath, [CLI, 'start', ...args], {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const node = { child, output: () => output, exit };
  started.push(node);
  return node;
}

/** Waits (bounded) for the node's "listening" log line and returns the address it logged. */
export async function listening(s: StartedNode, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const m = /"address":"([^"]+)"[^\n]*"msg":"ringkv node listening"/.exec(s.output());
    if (m) return m[1]!;
    if (s.child.exitCode !== null) throw new Error(`node exited ${s.child.exitCode}:\n${s.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`node did not come up:\n${s.output()}`);
}

/** The exit code, or an error after timeoutMs. */
export async function exitWithin(s: StartedNode, timeoutMs: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`process still running after ${timeoutMs} ms:\n${s.output()}`)), timeoutMs);
  });
  try {
    return await Promise.race([s.exit, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function stopNode(s: StartedNode): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  s.child.kill('SIGTERM');
  await exitWithin(s, 15_000).catch(() => s.child.kill('SIGKILL'));
}

/** Stops every node this module started (afterAll). */
export async function stopAllNodes(): Promise<void> {
  await Promise.all(started.map(stopNode));
}
