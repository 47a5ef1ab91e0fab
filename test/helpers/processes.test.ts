// The process helpers keep their promises: a stop escalates to SIGKILL when
// SIGTERM is ignored, a wait fails at once (with the output) when the process
// exits first, a command that cannot start is not "running", a group's close
// removes its temporary directories, and stable ports are free and distinct.
import { existsSync } from 'node:fs';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { ProcessGroup, isRunning, stopProcess, untilOutput, untilPing } from './processes.js';
import { closedPort, stablePorts } from './server.js';

describe('ProcessGroup', () => {
  it('stopProcess: SIGTERM when it suffices, SIGKILL after the grace time when it is ignored', async () => {
    const group = new ProcessGroup();
    try {
      const polite = group.spawn('/bin/sh', ['-c', 'echo up; exec sleep 30']);
      const stubborn = group.spawn('/bin/sh', ['-c', 'trap "" TERM; echo up; exec sleep 30']);
      await Promise.all([untilOutput(polite, /up/), untilOutput(stubborn, /up/)]);
      expect(await stopProcess(polite, 5_000)).toBe('terminated');
      expect(await stopProcess(stubborn, 200)).toBe('killed');
      expect(stubborn.child.signalCode).toBe('SIGKILL');
      expect(await stopProcess(polite)).toBe('exited');
    } finally {
      await group.close(0);
    }
  });

  it('a wait ends as soon as the process exits, with its output, however long the bound', async () => {
    const group = new ProcessGroup();
    try {
      const p = group.spawn('/bin/sh', ['-c', 'echo going; sleep 0.2; exit 3']);
      await expect(untilPing(p, `127.0.0.1:${await closedPort()}`, 600_000)).rejects.toThrow(/exited 3 before answering[^]*going/);
      await expect(untilOutput(p, /never printed/, 600_000)).rejects.toThrow(/exited 3/);
    } finally {
      await group.close(0);
    }
  }, 30_000);

  it('a command that cannot be spawned has exited (null), is not running, and says why', async () => {
    const group = new ProcessGroup();
    const p = group.spawn('/nonexistent/ringkv-test-command', []);
    expect(await p.exit).toBeNull();
    expect(isRunning(p)).toBe(false);
    await expect(untilOutput(p, /never printed/, 600_000)).rejects.toThrow(/ENOENT/);
    await group.close();
  });

  it('close stops what runs and removes the temporary directories', async () => {
    const group = new ProcessGroup();
    const dir = group.tempDir('ringkv-group-');
    const p = group.spawn('/bin/sh', ['-c', 'echo up; exec sleep 30'], { cwd: dir.path });
    await untilOutput(p, /up/);
    await group.close(5_000);
    expect(isRunning(p)).toBe(false);
    expect(existsSync(dir.path)).toBe(false);
  });
});

describe('stablePorts', () => {
  it('gives distinct ports below the ephemeral range that can be listened on', async () => {
    const ports = await stablePorts(3);
    expect(new Set(ports).size).toBe(3);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(20_000);
      expect(port).toBeLessThan(32_000);
      const srv = net.createServer();
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(port, '127.0.0.1', resolve);
      });
      await new Promise((r) => srv.close(r));
    }
  });
});
