// The dashboard's static files on a real node with tokens on: the page and
// its assets are served open, with their content types, cache and security
// headers, while every data route the page calls still needs a token; the
// files are read from the build output once, and a missing build says how
// to make it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadUiFiles } from '../../src/http/ui-routes.js';
import { startTestNode, type TestNode } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';

let node: TestNode;
beforeAll(async () => {
  node = await startTestNode('ui1', { auth: { required: true } });
});
afterAll(async () => {
  await node?.close();
});

describe('GET /ui', () => {
  it('serves the page and the assets it names without a token; the data routes it calls still need one', async () => {
    const page = await fetch(`${node.url}/ui`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await page.text();
    const assets = [...html.matchAll(/(?:src|href)="(\/ui\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.some((a) => a.endsWith('.js'))).toBe(true);
    expect(assets.some((a) => a.endsWith('.css'))).toBe(true);
    // Nothing from elsewhere: every script and style sheet is one of the node's own.
    expect(html).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
    for (const asset of assets) {
      const res = await fetch(`${node.url}${asset}`);
      expect(res.status, asset).toBe(200);
      expect(res.headers.get('content-type'), asset).toBe(asset.endsWith('.js') ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8');
      expect(res.headers.get('cache-control'), asset).toBe('public, max-age=31536000, immutable');
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(100);
    }
    for (const path of ['/status', '/ring', '/metrics']) expect((await fetch(`${node.url}${path}`)).status, path).toBe(401);
  });

  it('the address typed with a trailing slash leads to the page, without a token', async () => {
    const slash = await fetch(`${node.url}/ui/`, { redirect: 'manual' });
    expect(slash.status).toBe(308);
    expect(slash.headers.get('location')).toBe('/ui');
    const followed = await fetch(`${node.url}/ui/`);
    expect(followed.status).toBe(200);
    expect(followed.url).toBe(`${node.url}/ui`);
    expect(await followed.text()).toContain('/ui/assets/');
  });

  it('an unknown asset or a path outside assets/ is a JSON 404, never a file from elsewhere', async () => {
    for (const path of ['/ui/assets/nope.js', '/ui/assets/..%2f..%2fpackage.json', '/ui/assets/%2E%2E%2Findex.html']) {
      const res = await fetch(`${node.url}${path}`);
      expect(res.status, path).toBe(404);
      expect(await res.json()).toMatchObject({ error: 'NOT_FOUND' });
    }
    // Not a dashboard route: the catch-all, which tells a stranger nothing but 401.
    expect((await fetch(`${node.url}/ui/index.html`)).status).toBe(401);
    // Other methods: 405 (with a valid token) naming GET.
    expect((await fetch(`${node.url}/ui`, { method: 'POST' })).status).toBe(401);
  });

  it('reads every file of the build directory once; an empty one has no page', () => {
    const dir = tempDir('ringkv-ui-files-');
    try {
      expect(loadUiFiles(dir.path).index).toBeNull();
      mkdirSync(join(dir.path, 'assets'));
      writeFileSync(join(dir.path, 'index.html'), '<!doctype html>');
      writeFileSync(join(dir.path, 'assets', 'a-1.js'), 'x');
      writeFileSync(join(dir.path, 'assets', 'b-2.css'), 'y');
      writeFileSync(join(dir.path, 'assets', 'c.bin'), 'z');
      const ui = loadUiFiles(dir.path);
      expect(ui.index?.contentType).toBe('text/html; charset=utf-8');
      expect([...ui.files.keys()].sort()).toEqual(['/ui/assets/a-1.js', '/ui/assets/b-2.css', '/ui/assets/c.bin', '/ui/index.html']);
      expect(ui.files.get('/ui/assets/c.bin')?.contentType).toBe('application/octet-stream');
      // Read once: a change on disk afterwards is not served until the next start.
      writeFileSync(join(dir.path, 'assets', 'a-1.js'), 'changed');
      expect(ui.files.get('/ui/assets/a-1.js')?.body.toString()).toBe('x');
    } finally {
      dir.remove();
    }
  });
});
