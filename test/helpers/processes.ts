// Real processes for tests: a command run to its end (bounded), and
// long-running ones (`ringkv start` nodes, an entrypoint script) spawned into
// a ProcessGroup that tracks them, waits for them (/ping or a log line, bounded,
// failing at once with their output when they exit first), stops them
// (SIGTERM, then SIGKILL after a grace time) and removes its temporary
// directories. `ringkv` runs bin/ringkv.js: dist/ must be built.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { writeTestSecretFile } from './secret.js';
import { randomStablePort } from './server.js';
import { tempDir } from './tmp.js';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = fileURLToPath(new URL('../../bin/ringkv.js', import.meta.url));

const execFileAsync = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An environment of PATH and HOME only, plus `extra` (nothing else of the test runner's leaks into the process). */
export function minimalEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, ...extra };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  /** The whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Killed (SIGKILL) and the promise rejected after this long; default 20 s. */
  timeoutMs?: number;
}

function runToEnd(command: string, args: string[], o: RunOptions & { stdin?: Buffer }): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: o.env ?? process.env, cwd: o.cwd, stdio: [o.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timeoutMs = o.timeoutMs ?? 20_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not finish within ${timeoutMs} ms:\n${Buffer.concat(out).toString()}\n${stderr}`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr });
    });
    if (o.stdin !== undefined) {
      // A command that does not read stdin may exit first: EPIPE is not the test's concern.
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(o.stdin);
    }
  });
}

/** Runs `command args` to its end (killed, and rejected, after timeoutMs). */
export async function run(command: string, args: string[], o: RunOptions = {}): Promise<RunResult> {
  const { code, stdout, stderr } = await runToEnd(command, args, o);
  return { code, stdout: stdout.toString(), stderr };
}

/** Runs `ringkv ...args` to its end (bounded), feeding `stdin` (empty by default); stdout is kept as bytes. */
export function runCli(args: string[], o: RunOptions & { stdin?: Buffer } = {}): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return runToEnd(process.execPath, [CLI, ...args], { ...o, stdin: o.stdin ?? Buffer.alloc(0) });
}

/**
 * Runs `ringkv ...args` to its end with this process's environment plus
 * `env` (or `o.baseEnv` plus `env`); resolves with the exit code and output,
 * never rejects (a command killed at timeoutMs, default 60 s, has code -1).
 */
export async function ringkv(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  o: { timeoutMs?: number; cwd?: string; baseEnv?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI, ...args], { timeout: o.timeoutMs ?? 60_000, cwd: o.cwd, env: { ...(o.baseEnv ?? process.env), ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** A long-running process and what it printed so far. */
export interface TrackedProcess {
  child: ChildProcess;
  /** stdout and stderr together, as they came. */
  output(): string;
  /** stdout alone (a node's pino JSON lines). */
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (null when killed by a signal) once the process has exited. */
  exit: Promise<number | null>;
}

/** Started (a command that could not be spawned has no pid) and not exited yet. */
export function isRunning(p: TrackedProcess): boolean {
  return p.child.pid !== undefined && p.child.exitCode === null && p.child.signalCode === null;
}

/** The exit code, or an error with the process's output after timeoutMs. */
export async function exitWithin(p: TrackedProcess, timeoutMs: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`process still running after ${timeoutMs} ms:\n${p.output()}`)), timeoutMs);
  });
  try {
    return await Promise.race([p.exit, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * SIGTERM, then SIGKILL when it has not exited after `graceMs` (0: SIGKILL at
 * once); resolves once it has exited (or 5 s after the SIGKILL at the most),
 * with how: 'exited' (before this call), 'terminated' (SIGTERM sufficed) or 'killed'.
 */
export async function stopProcess(p: TrackedProcess, graceMs = 15_000): Promise<'exited' | 'terminated' | 'killed'> {
  if (!isRunning(p)) return 'exited';
  if (graceMs > 0) {
    p.child.kill('SIGTERM');
    if (await exitWithin(p, graceMs).then(() => true, () => false)) return 'terminated';
  }
  p.child.kill('SIGKILL');
  await exitWithin(p, 5_000).catch(() => undefined);
  return 'killed';
}

/** Polls `check` (every 50 ms, bounded) until it gives a value; throws with the output once the process has exited without it. */
async function whileRunning<T>(p: TrackedProcess, what: string, timeoutMs: number, check: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await check();
    if (found !== undefined) return found;
    if (!isRunning(p)) throw new Error(`exited ${p.child.exitCode ?? p.child.signalCode} before ${what}:\n${p.output()}`);
    if (Date.now() >= deadline) throw new Error(`not ${what} within ${timeoutMs} ms:\n${p.output()}`);
    await sleep(50);
  }
}

/** Waits (bounded) until `address` (host:port) answers GET /ping with 200 while `p` runs. */
export async function untilPing(p: TrackedProcess, address: string, timeoutMs = 20_000): Promise<void> {
  await whileRunning(p, `answering http://${address}/ping`, timeoutMs, async () => {
    if (!isRunning(p)) return undefined; // another process on the port must not count
    const ok = await fetch(`http://${address}/ping`, { signal: AbortSignal.timeout(1_000) }).then(
      async (r) => (await r.arrayBuffer(), r.status === 200),
      () => false,
    );
    return ok ? true : undefined;
  });
}

/** Waits (bounded) until `p`'s output matches `pattern`; returns the match. */
export function untilOutput(p: TrackedProcess, pattern: RegExp, timeoutMs = 20_000): Promise<RegExpExecArray> {
  return whileRunning(p, `printing ${pattern}`, timeoutMs, () => pattern.exec(p.output()) ?? undefined);
}

/** Waits (bounded) for a node's "ringkv node listening" log line (log level info or lower) and returns the address it logged. */
export async function untilListening(p: TrackedProcess, timeoutMs = 20_000): Promise<string> {
  return (await untilOutput(p, /"address":"([^"]+)"[^\n]*"msg":"ringkv node listening"/, timeoutMs))[1]!;
}

/** The path of the first admin token a node that created its cluster writes to its data directory. */
export function adminTokenFile(dataDir: string): string {
  return join(dataDir, 'admin.token');
}

/** The first admin token from a node's data directory (throws when it is not there). */
export function readAdminToken(dataDir: string): string {
  const file = adminTokenFile(dataDir);
  if (!existsSync(file)) throw new Error(`no ${file}`);
  return readFileSync(file, 'utf8').trim();
}

/** Long-running processes and temporary directories that a test file (or a cluster) owns and cleans up together. */
export class ProcessGroup {
  private readonly processes = new Set<TrackedProcess>();
  private readonly dirs: Array<{ remove(): void }> = [];

  /** Spawns `command args` (stdin closed, stdout and stderr captured); `env` is the whole environment (default: this process's). */
  spawn(command: string, args: string[], o: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): TrackedProcess {
    const child = spawn(command, args, { env: o.env ?? process.env, cwd: o.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      output += d;
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      output += d;
    });
    const exit = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      // Not started at all (no such command): no 'exit' follows.
      child.on('error', (err) => {
        output += `\n${String(err)}`;
        if (child.pid === undefined) resolve(null);
      });
    });
    const p: TrackedProcess = { child, output: () => output, stdout: () => stdout, stderr: () => stderr, exit };
    this.processes.add(p);
    return p;
  }

  /** Spawns `ringkv start ...args`. */
  startNode(args: string[], o: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): TrackedProcess {
    return this.spawn(process.execPath, [CLI, 'start', ...args], o);
  }

  /** A temporary directory removed by close(). */
  tempDir(prefix: string): { path: string; remove(): void } {
    const dir = tempDir(prefix);
    this.dirs.push(dir);
    return dir;
  }

  /** Stops every process of the group still running (see stopProcess). */
  async stopAll(graceMs = 15_000): Promise<void> {
    await Promise.all([...this.processes].map((p) => stopProcess(p, graceMs)));
  }

  /** stopAll, then the temporary directories are removed. */
  async close(graceMs = 15_000): Promise<void> {
    await this.stopAll(graceMs);
    this.processes.clear();
    for (const d of this.dirs.splice(0)) d.remove();
  }
}

/** A `ringkv start` node of a ProcessCluster. */
export interface NodeProcess extends TrackedProcess {
  id: string;
  address: string;
  url: string;
  dataDir: string;
}

export interface ProcessClusterOptions {
  /** Prefix of the temporary root directory (each node's data directory is ROOT/ID). */
  prefix?: string;
  /** Given to every node's `ringkv start` after the cluster's own flags. */
  args?: string[];
  /** Default warn (the "listening" line that start() waits for needs info). */
  logLevel?: string;
  /** Time a node has after SIGTERM at close() before SIGKILL (0: SIGKILL at once). Default 5 s. */
  stopGraceMs?: number;
}

/**
 * Real `ringkv start` processes on 127.0.0.1 sharing the test cluster secret
 * (a 0600 file in the root directory), each restartable on its port and data
 * directory; close() stops them and removes the data.
 */
export class ProcessCluster {
  readonly nodes = new Map<string, NodeProcess>();
  private readonly group = new ProcessGroup();
  readonly root: { path: string; remove(): void };
  readonly secretFile: string;

  constructor(private readonly o: ProcessClusterOptions = {}) {
    this.root = this.group.tempDir(o.prefix ?? 'ringkv-procs-');
    this.secretFile = writeTestSecretFile(this.root.path);
  }

  dataDirOf(id: string): string {
    return join(this.root.path, id);
  }

  /** Spawns (or restarts, on its port and data directory) node `id` without waiting for it; `seeds` for its first start. */
  spawn(id: string, port: number, seeds: string[] = [], args: string[] = []): NodeProcess {
    const address = `127.0.0.1:${port}`;
    const dataDir = this.dataDirOf(id);
    const argv = ['--node-id', id, '--listen', address, '--data-dir', dataDir, '--secret-file', this.secretFile, '--log-level', this.o.logLevel ?? 'warn'];
    if (seeds.length > 0) argv.push('--seeds', seeds.join(','));
    const p = this.group.startNode([...argv, ...(this.o.args ?? []), ...args]);
    const node: NodeProcess = { ...p, id, address, url: `http://${address}`, dataDir };
    this.nodes.set(id, node);
    return node;
  }

  /** Waits until `node` answers /ping (and throws at once, with its output, when it exits first). */
  async waitUp(node: NodeProcess, timeoutMs = 20_000): Promise<void> {
    await untilPing(node, node.address, timeoutMs);
  }

  /**
   * Spawns node `id` and waits for its "listening" line (the cluster's
   * logLevel must be info). Without `port`, on a random port below the
   * kernel's ephemeral range (see startOnStablePort), another one when the
   * node exits first (the port was taken).
   */
  async start(id: string, seeds: string[] = [], port?: number): Promise<NodeProcess> {
    let lastLog = '';
    for (let attempt = 0; attempt < (port === undefined ? 10 : 1); attempt++) {
      const node = this.spawn(id, port ?? randomStablePort(), seeds);
      try {
        await untilListening(node);
        return node;
      } catch (err) {
        lastLog = String(err);
        if (isRunning(node)) {
          await stopProcess(node, 0);
          break;
        }
      }
    }
    throw new Error(`${id} did not start:\n${lastLog}`);
  }

  /** SIGKILL: no shutdown, no goodbye to the peers. */
  async kill(id: string): Promise<void> {
    await stopProcess(this.nodes.get(id)!, 0);
  }

  /** Starts a killed node again on its port and data directory, and waits for its "listening" line. */
  async restart(id: string): Promise<NodeProcess> {
    const n = this.nodes.get(id)!;
    return this.start(id, [], Number(n.address.split(':')[1]));
  }

  /** The cluster's first admin token, written by the node that created it. */
  adminToken(first = 'n1'): string {
    return readAdminToken(this.dataDirOf(first));
  }

  /** Stops every node still running (SIGTERM, SIGKILL after stopGraceMs) and removes the data. */
  async close(): Promise<void> {
    await this.group.close(this.o.stopGraceMs ?? 5_000);
  }
}
