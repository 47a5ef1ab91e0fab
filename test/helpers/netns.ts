// Hosts made of Linux network namespaces, for tests that need nodes on
// distinct addresses of a real (virtual) network: a bridge in the root
// namespace with an address of its own (the test process talks to the hosts
// over it), and per host a namespace joined to the bridge by a veth pair,
// with one address of a private /24. Every name carries a per-run tag and the
// /24 is one no interface here uses yet, so parallel runs do not collide.
// `cutOff` drops all of a host's traffic but loopback with an nftables table
// inside its namespace (gone with the namespace). `destroy` (also run on
// process exit, should afterAll never come) kills the processes started in
// the hosts and deletes the namespaces, the bridge and the files it wrote.
// Needs root, `ip` (iproute2) and `nft` (nftables): probeNetns says why not.
import { execFileSync, spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';

export type ToolSupport = { ok: true } | { ok: false; reason: string; /** A binary is missing (CI should have installed it), rather than not being root. */ toolMissing: boolean };

const INSTALL_HINT: Record<string, string> = { nft: 'apt-get install nftables', ip: 'apt-get install iproute2' };

/** Whether this process is root and has each of `tools` (run with `--version`). */
export function probeRootTools(tools: readonly string[]): ToolSupport {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return { ok: false, reason: 'not root', toolMissing: false };
  for (const tool of tools) {
    const v = spawnSync(tool, tool === 'ip' ? ['-V'] : ['--version'], { stdio: 'ignore', timeout: 10_000 });
    if (v.error || v.status !== 0) return { ok: false, reason: `\`${tool}\` not found (${INSTALL_HINT[tool] ?? `install ${tool}`})`, toolMissing: true };
  }
  return { ok: true };
}

/** Root, `ip` and `nft`, and a kernel that lets us make a namespace (a container may refuse). */
export function probeNetns(): ToolSupport {
  const tools = probeRootTools(['ip', 'nft']);
  if (!tools.ok) return tools;
  const name = `ringkv-probe-${process.pid}`;
  const made = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8', timeout: 10_000 });
  spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore', timeout: 10_000 });
  if (made.status !== 0) return { ok: false, reason: `cannot create a network namespace: ${made.stderr.trim()}`, toolMissing: false };
  return { ok: true };
}

/** Under CI=true a missing tool is a failure (CI installs them); elsewhere a reason to skip. */
export function skipReasonOrThrow(support: ToolSupport, test: string): string | null {
  if (support.ok) return null;
  if (support.toolMissing && process.env.CI === 'true') throw new Error(`${test} cannot run in CI: ${support.reason}`);
  return support.reason;
}

function run(args: string[], input?: string): void {
  try {
    execFileSync(args[0]!, args.slice(1), { input, stdio: ['pipe', 'ignore', 'pipe'], timeout: 10_000 });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`${args.join(' ')} failed: ${stderr || (err as Error).message}`);
  }
}

export interface NetnsHost {
  /** The name given to create (h1, h2, ...). */
  name: string;
  /** The network namespace (`ip netns exec <ns> ...`). */
  ns: string;
  /** Its address on the bridge. */
  address: string;
}

export interface NetnsLabOptions {
  hosts: string[];
  /** Names every host resolves (its /etc/hosts, through /etc/netns/<ns>/hosts): `name: host` maps a name to that host's address. */
  hostNames?: Record<string, string>;
}

/** Third octets of 10.213.X.0/24 that an interface here already uses. */
function usedSubnets(): Set<number> {
  const out = execFileSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8', timeout: 10_000 });
  return new Set([...out.matchAll(/inet 10\.213\.(\d+)\./g)].map((m) => Number(m[1])));
}

export class NetnsLab {
  readonly hosts: NetnsHost[];
  /** The root namespace's address on the bridge (where the test's requests come from). */
  readonly gateway: string;
  private readonly tag = randomBytes(3).toString('hex');
  private readonly bridge = `rkv${this.tag}br`;
  private readonly children = new Set<ChildProcess>();
  private readonly etcDirs: string[] = [];
  private destroyed = false;
  private readonly onExit = () => this.destroy();

  private constructor(names: string[], subnet: number) {
    this.gateway = `10.213.${subnet}.254`;
    this.hosts = names.map((name, i) => ({ name, ns: `ringkv-${this.tag}-${name}`, address: `10.213.${subnet}.${i + 1}` }));
  }

  /**
   * Creates the bridge and one namespace per host; undoes what it made when a
   * step fails. Another run may pick the same free /24 at the same moment:
   * whoever then finds two bridges on it gives it up and tries another.
   */
  static create(o: NetnsLabOptions): NetnsLab {
    const tried = new Set<number>();
    for (let attempt = 0; attempt < 5; attempt++) {
      const used = usedSubnets();
      const start = Math.floor(Math.random() * 250);
      const subnet = Array.from({ length: 250 }, (_, i) => ((start + i) % 250) + 1).find((s) => !used.has(s) && !tried.has(s));
      if (subnet === undefined) throw new Error('no free 10.213.X.0/24 subnet');
      tried.add(subnet);
      const lab = new NetnsLab(o.hosts, subnet);
      process.once('exit', lab.onExit);
      try {
        lab.build(o);
      } catch (err) {
        lab.destroy();
        throw err;
      }
      if (lab.subnetIsOurs()) return lab;
      lab.destroy();
    }
    throw new Error('no 10.213.X.0/24 subnet stayed free (other runs took each one tried)');
  }

  /** Only our bridge has an address on our /24 in the root namespace. */
  private subnetIsOurs(): boolean {
    const out = execFileSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8', timeout: 10_000 });
    const prefix = this.gateway.slice(0, this.gateway.lastIndexOf('.') + 1);
    return out.split('\n').filter((l) => l.includes(`inet ${prefix}`)).every((l) => l.includes(this.bridge));
  }

  private build(o: NetnsLabOptions): void {
    run(['ip', 'link', 'add', this.bridge, 'type', 'bridge']);
    run(['ip', 'addr', 'add', `${this.gateway}/24`, 'dev', this.bridge]);
    run(['ip', 'link', 'set', this.bridge, 'up']);
    const hostsFile = Object.entries(o.hostNames ?? {}).map(([name, host]) => `${this.host(host).address} ${name}`);
    this.hosts.forEach((h, i) => {
      const outside = `rkv${this.tag}v${i + 1}`;
      run(['ip', 'netns', 'add', h.ns]);
      run(['ip', 'link', 'add', outside, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns]);
      run(['ip', 'link', 'set', outside, 'master', this.bridge, 'up']);
      run(['ip', '-n', h.ns, 'addr', 'add', `${h.address}/24`, 'dev', 'eth0']);
      run(['ip', '-n', h.ns, 'link', 'set', 'eth0', 'up']);
      run(['ip', '-n', h.ns, 'link', 'set', 'lo', 'up']);
      // `ip netns exec` bind-mounts /etc/netns/<ns>/hosts over /etc/hosts for what runs in the host.
      const etc = `/etc/netns/${h.ns}`;
      mkdirSync(etc, { recursive: true });
      this.etcDirs.push(etc);
      writeFileSync(`${etc}/hosts`, ['127.0.0.1 localhost', `${h.address} ${h.name}`, ...hostsFile, ''].join('\n'));
    });
  }

  host(name: string): NetnsHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name}`);
    return h;
  }

  /** Starts `command args` inside the host (killed by destroy if still running). */
  spawn(host: string, command: string, args: string[], o: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.host(host).ns, command, ...args], o);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Runs `command args` inside the host to its end (bounded), returning stdout. */
  exec(host: string, command: string, args: string[], o: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): string {
    return execFileSync('ip', ['netns', 'exec', this.host(host).ns, command, ...args], {
      env: o.env,
      input: o.input,
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: o.timeoutMs ?? 20_000,
    });
  }

  /** Runs `command args` inside the host to its end (bounded), whatever its exit status. */
  run(host: string, command: string, args: string[], o: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync('ip', ['netns', 'exec', this.host(host).ns, command, ...args], { env: o.env, encoding: 'utf8', timeout: o.timeoutMs ?? 20_000 });
    if (r.error) throw r.error;
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** Drops every packet in and out of the host's network interface (loopback keeps working), both ways, at once. */
  cutOff(host: string): void {
    const ns = this.host(host).ns;
    run(['ip', 'netns', 'exec', ns, 'nft', '-f', '-'], [
      'add table inet ringkv_cut',
      'add chain inet ringkv_cut in { type filter hook input priority 0; policy accept; }',
      'add chain inet ringkv_cut out { type filter hook output priority 0; policy accept; }',
      'add rule inet ringkv_cut in iifname "eth0" drop',
      'add rule inet ringkv_cut out oifname "eth0" drop',
    ].join('\n'));
  }

  heal(host: string): void {
    run(['ip', 'netns', 'exec', this.host(host).ns, 'nft', 'delete', 'table', 'inet', 'ringkv_cut']);
  }

  /** Kills what runs in the hosts, deletes namespaces, veths (with them) and the bridge. Synchronous (an exit hook runs it); idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    process.removeListener('exit', this.onExit);
    for (const child of this.children) child.kill('SIGKILL');
    for (const h of this.hosts) {
      // Any process still in it (one the test did not start through spawn) goes too, or the namespace outlives its name.
      const pids = spawnSync('ip', ['netns', 'pids', h.ns], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
      for (const pid of pids.split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      // The veth pair first: the kernel would remove it with the namespace, but in the background.
      spawnSync('ip', ['link', 'del', `rkv${this.tag}v${this.hosts.indexOf(h) + 1}`], { stdio: 'ignore', timeout: 10_000 });
      spawnSync('ip', ['netns', 'del', h.ns], { stdio: 'ignore', timeout: 10_000 });
    }

    spawnSync('ip', ['link', 'del', this.bridge], { stdio: 'ignore', timeout: 10_000 });
    for (const dir of this.etcDirs) rmSync(dir, { recursive: true, force: true });
  }

  /** What of this lab is still on the machine (for the test's own clean-up check). */
  leftovers(): string[] {
    const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 10_000 });
    const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8', timeout: 10_000 });
    return [
      ...this.hosts.filter((h) => namespaces.includes(h.ns)).map((h) => `namespace ${h.ns}`),
      ...(links.includes(`rkv${this.tag}`) ? [`links rkv${this.tag}*`] : []),
    ];
  }
}
