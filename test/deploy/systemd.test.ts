// deploy/systemd/ringkv.service: systemd's own checks (`systemd-analyze
// verify` with no warning, and `security --offline` at an exposure of at most
// 2.0) where systemd-analyze exists; the hardening the unit promises; and its
// ExecStart line with its Environment= and the example config: accepted by
// `ringkv config check`, every flag one `ringkv start` has, and (as root,
// with `ip` and `nft`) run for real in a network namespace of its own, as
// the unit would run it, until the node answers /ping.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NetnsLab, probeNetns, skipReasonOrThrow } from '../helpers/netns.js';
import { writeTestSecretFile } from '../helpers/secret.js';
import { CLI, ProcessGroup, REPO, exitWithin, run, untilPing } from '../helpers/processes.js';

const UNIT_FILE = join(REPO, 'deploy/systemd/ringkv.service');
const EXAMPLE_CONFIG = join(REPO, 'deploy/systemd/ringkv.yaml');
const INSTALLED_CONFIG = '/etc/ringkv/ringkv.yaml';

/** A unit file's sections: every key's values in order (a key may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const at = line.indexOf('=');
    if (current === undefined || at < 0) throw new Error(`not a unit line: ${line}`);
    const key = line.slice(0, at).trim();
    current.set(key, [...(current.get(key) ?? []), line.slice(at + 1).trim()]);
  }
  return sections;
}

const unitText = readFileSync(UNIT_FILE, 'utf8');
const unit = parseUnit(unitText);
const service = unit.get('Service')!;
const one = (key: string): string | undefined => service.get(key)?.at(-1);
const execStart = one('ExecStart')!.split(/\s+/);
/** Environment= lines as the service gets them, with %d (its credentials directory) given. */
function unitEnv(credentialsDir: string): Record<string, string> {
  return Object.fromEntries((service.get('Environment') ?? []).map((e) => {
    const at = e.indexOf('=');
    return [e.slice(0, at), e.slice(at + 1).replaceAll('%d', credentialsDir)];
  }));
}

const processes = new ProcessGroup();
const dir = processes.tempDir('ringkv-systemd-');
afterAll(() => processes.close());

const hasAnalyze = spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0;
if (!hasAnalyze) console.log('[systemd.test] systemd-analyze not found: the unit is checked by its own parse only');

describe('deploy/systemd/ringkv.service', () => {
  it('has the hardened [Service] section it promises', () => {
    expect(one('User')).toBe('ringkv');
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('ReadWritePaths')).toBe('/var/lib/ringkv');
    expect(one('StateDirectory')).toBe('ringkv');
    expect(one('ProtectHome')).toBe('yes');
    expect(one('PrivateTmp')).toBe('yes');
    expect(one('CapabilityBoundingSet')).toBe('');
    expect(one('RestrictAddressFamilies')!.split(/\s+/).sort()).toEqual(['AF_INET', 'AF_INET6', 'AF_UNIX']);
    expect(Number(one('LimitNOFILE'))).toBeGreaterThanOrEqual(65536);
    expect(one('Restart')).toBe('on-failure');
    // `ringkv start` exits 78 for a configuration it refuses (src/cli/start.ts EXIT_CONFIG_REFUSED).
    expect(one('RestartPreventExitStatus')).toBe('78');
    expect(one('LoadCredential')).toBe('cluster.secret:/etc/ringkv/cluster.secret');
    // V8's JIT writes code: MemoryDenyWriteExecute would kill node.
    expect(service.has('MemoryDenyWriteExecute')).toBe(false);
    expect(unit.get('Install')?.get('WantedBy')).toEqual(['multi-user.target']);
  });

  it.skipIf(!hasAnalyze)('passes systemd-analyze verify without a warning, and security --offline at exposure <= 2.0', () => {
    // verify needs ExecStart's binary on this machine: the in-repo one stands in for /usr/bin/ringkv.
    const copy = join(dir.path, 'ringkv.service');
    writeFileSync(copy, unitText.replace(/^ExecStart=\S+/m, `ExecStart=${CLI}`));
    const verify = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8', timeout: 20_000 });
    expect(verify.status, verify.stderr).toBe(0);
    expect(verify.stderr.trim()).toBe('');
    // A misspelt key is only a warning for systemd (exit 0): the empty stderr above is what catches it.
    const typo = join(dir.path, 'typo.service');
    writeFileSync(typo, unitText.replace(/^ExecStart=\S+/m, `ExecStart=${CLI}`).replace('ProtectHome=yes', 'ProtectHomes=yes'));
    expect(spawnSync('systemd-analyze', ['verify', typo], { encoding: 'utf8', timeout: 20_000 }).stderr).toContain("Unknown key 'ProtectHomes'");
    const security = spawnSync('systemd-analyze', ['security', '--offline=yes', '--threshold=20', copy], { encoding: 'utf8', timeout: 20_000 });
    expect(security.status, security.stdout).toBe(0);
  });

  it('ExecStart is `ringkv start --config /etc/ringkv/ringkv.yaml`: every flag is one ringkv start has, and the example config with the unit\'s environment passes config check', async () => {
    expect(execStart.slice(1)).toEqual(['start', '--config', INSTALLED_CONFIG]);
    const help = await run(process.execPath, [CLI, 'start', '--help']);
    for (const flag of execStart.filter((a) => a.startsWith('--'))) expect(help.stdout).toContain(`${flag} `);
    const credentials = join(dir.path, 'credentials');
    mkdirSync(credentials);
    writeTestSecretFile(credentials);
    const check = await run(process.execPath, [CLI, 'config', 'check', '--env', EXAMPLE_CONFIG], { env: { PATH: process.env.PATH, ...unitEnv(credentials) } });
    expect(check.code, check.stderr).toBe(0);
    expect(check.stdout).toMatch(/^ {2}data_dir +\/var\/lib\/ringkv +file$/m);
    expect(check.stdout).toMatch(new RegExp(`^ {2}secret_file +${credentials}/cluster.secret +env RINGKV_CLUSTER_SECRET_FILE$`, 'm'));
    // The secret file the credential stands for is readable: no warning about it.
    expect(check.stderr).toBe('');
  });

  const netns = probeNetns();
  const skip = skipReasonOrThrow(netns, 'systemd unit run');
  if (skip !== null) console.log(`[systemd.test] the ExecStart run is skipped: ${skip}`);

  it.skipIf(skip !== null)('ExecStart with the example config runs a node (in a namespace of its own: the file listens on 0.0.0.0:8087)', async () => {
    const lab = NetnsLab.create({ hosts: ['n1'] });
    try {
      const host = lab.host('n1');
      const credentials = join(dir.path, 'run-credentials');
      mkdirSync(credentials);
      writeTestSecretFile(credentials);
      // The example, on this host's address and a temporary data directory; everything else as shipped.
      const example = readFileSync(EXAMPLE_CONFIG, 'utf8');
      const config = join(dir.path, 'ringkv.yaml');
      writeFileSync(config, example.replaceAll('10.0.0.1', host.address).replace(/^data_dir: .*$/m, `data_dir: ${join(dir.path, 'data')}`));
      expect(example).toMatch(/^listen: 0\.0\.0\.0:8087$/m);
      const args = execStart.slice(1).map((a) => (a === INSTALLED_CONFIG ? config : a));
      const node = processes.spawn('ip', ['netns', 'exec', host.ns, process.execPath, CLI, ...args], { env: { PATH: process.env.PATH, ...unitEnv(credentials) } });
      await untilPing(node, `${host.address}:8087`, 30_000);
      expect(node.output()).toContain('"msg":"ringkv node listening"');
      node.child.kill('SIGTERM');
      expect(await exitWithin(node, 15_000)).toBe(0);
    } finally {
      lab.destroy();
    }
  }, 60_000);
});
