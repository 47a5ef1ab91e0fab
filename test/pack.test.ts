// The shipped package: `npm pack` carries the prebuilt linux-x64-gnu addon,
// and the tarball installs and opens an engine where cargo is not on the PATH
// and no install script runs.
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers/tmp.js';

const root = new URL('..', import.meta.url).pathname;
const dirs: Array<{ remove(): void }> = [];
afterAll(() => dirs.forEach((d) => d.remove()));

/** PATH without any directory that holds cargo or rustc. */
function pathWithoutCargo(): string {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((d) => d && !existsSync(join(d, 'cargo')) && !existsSync(join(d, 'rustc')))
    .join(delimiter);
}

describe('npm package', () => {
  it('installs from its tarball without cargo, opens a native engine and serves the dashboard', () => {
    const work = tempDir('ringkv-pack-');
    dirs.push(work);
    // The build already ran (npm ci → prepare); pack what it produced.
    const packed = JSON.parse(
      execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work.path], { cwd: root, encoding: 'utf8' }),
    ) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = packed[0]!.files.map((f) => f.path);
    expect(files).toContain('native/ringkv-engine.linux-x64-gnu.node');
    expect(files).toContain('native/binding.cjs');
    expect(files.some((f) => f.startsWith('crates/') || f.startsWith('test/'))).toBe(false);
    // The dashboard's build (docs/dashboard.md), not its sources: the page and its hashed script and style sheet.
    expect(files).toContain('dist-ui/index.html');
    expect(files.filter((f) => /^dist-ui\/assets\/index-[\w-]+\.(js|css)$/.test(f)).length).toBe(2);
    expect(files.some((f) => f.startsWith('ui/'))).toBe(false);

    const app = join(work.path, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }));
    const env = { ...process.env, PATH: pathWithoutCargo(), npm_config_audit: 'false', npm_config_fund: 'false' };
    expect(() => execFileSync('cargo', ['--version'], { env, stdio: 'ignore' })).toThrow();
    execFileSync('npm', ['install', join(work.path, packed[0]!.filename)], { cwd: app, env, stdio: 'pipe' });

    const script = `
      import { NativeEngine } from 'ringkv/engine';
      const e = await NativeEngine.open({ path: ${JSON.stringify(join(work.path, 'data'))}, nodeId: 'packed' });
      const record = await e.coordinate({ bucket: Buffer.from('b'), key: Buffer.from('k'), context: null,
        value: Buffer.from('hello'), now: 1, mode: 'siblings', durable: true });
      const back = await e.get(Buffer.from('b'), Buffer.from('k'));
      console.log(JSON.stringify({ actor: e.actor, same: back.equals(record), hasValue: back.includes(Buffer.from('hello')) }));
      await e.close();`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: app, env, encoding: 'utf8' });
    const result = JSON.parse(out.trim()) as { actor: string; same: boolean; hasValue: boolean };
    expect(result.actor).toMatch(/^packed:[0-9a-f]{16}$/);
    expect(result.same).toBe(true);
    expect(result.hasValue).toBe(true);

    // A node started from the installed package serves its dashboard at /ui.
    const serve = `
      import { startServer } from 'ringkv/server';
      const s = await startServer({ nodeId: 'packed', port: 0, dataDir: ${JSON.stringify(join(work.path, 'node'))}, insecureLoopback: true });
      const page = await fetch('http://' + s.address + '/ui');
      const html = await page.text();
      const script = html.match(/src="(\\/ui\\/assets\\/[^"]+\\.js)"/)[1];
      const asset = await fetch('http://' + s.address + script);
      await s.close(500);
      console.log(JSON.stringify({ ui: page.status, type: page.headers.get('content-type'), asset: asset.status, assetType: asset.headers.get('content-type') }));`;
    const served = execFileSync(process.execPath, ['--input-type=module', '-e', serve], { cwd: app, env, encoding: 'utf8' });
    const last = served.trim().split('\n').filter((l) => l.startsWith('{"ui"')).at(-1)!;
    expect(JSON.parse(last)).toEqual({ ui: 200, type: 'text/html; charset=utf-8', asset: 200, assetType: 'text/javascript; charset=utf-8' });
  }, 180_000);
});
