// The web dashboard (docs/dashboard.md): static files built by `npm run
// build:ui` into dist-ui/, read once per process and served at /ui. The page
// holds no data; everything it shows it fetches from the token-protected
// routes (/status, /ring, /metrics, /admin/*) with the token its user pastes.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpResponse, TemplatedApp } from '../transport/uws.js';
import { STOPPING_HEADER } from './wire.js';

/** Where the build puts the dashboard: the package's dist-ui/, beside dist/ and src/. */
export const UI_DIR = fileURLToPath(new URL('../../dist-ui/', import.meta.url));

/** Largest file served: the build's bundle is ~100 KiB; anything far larger there is not ours. */
const MAX_FILE_BYTES = 4 * 1024 * 1024;

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.map': 'application/json',
  '.woff2': 'font/woff2',
};

/**
 * Every answer: the page runs only its own scripts and talks only to the
 * node that served it (connect-src 'self'), cannot be framed, sends no
 * referrer (a URL never holds the token, but say so anyway).
 */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

interface StaticFile {
  body: Buffer;
  contentType: string;
  /** Hashed asset names never change content: cached for a year. The page itself is revalidated. */
  cacheControl: string;
}

export interface UiFiles {
  /** URL path (`/ui/assets/index-abc.js`) → file. */
  files: ReadonlyMap<string, StaticFile>;
  /** Null when the build output is missing (then /ui says how to build it). */
  index: StaticFile | null;
}

/** Reads the build output under `dir` (default UI_DIR). Missing or empty: no files, no index. */
export function loadUiFiles(dir: string = UI_DIR): UiFiles {
  const files = new Map<string, StaticFile>();
  const walk = (at: string): void => {
    let names: string[];
    try {
      names = readdirSync(at);
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(at, name);
      const info = statSync(path);
      if (info.isDirectory()) walk(path);
      else if (info.isFile() && info.size <= MAX_FILE_BYTES) {
        const url = `/ui/${relative(dir, path).split(sep).join('/')}`;
        const immutable = url.startsWith('/ui/assets/');
        files.set(url, {
          body: readFileSync(path),
          contentType: CONTENT_TYPES[extname(name)] ?? 'application/octet-stream',
          cacheControl: immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
        });
      }
    }
  };
  walk(dir);
  return { files, index: files.get('/ui/index.html') ?? null };
}

let loaded: UiFiles | null = null;

/** The files of this process, read on first use (the first node's start) and kept. */
function uiFiles(): UiFiles {
  loaded ??= loadUiFiles();
  return loaded;
}

/**
 * `GET /ui` (the page) and `GET /ui/assets/:file` (its scripts and styles),
 * open to anyone: they hold no cluster data. `stopping()`: the node is
 * stopping (then 503 and close, as every other route answers).
 */
export function registerUiRoutes(app: TemplatedApp, stopping: () => boolean): void {
  const ui = uiFiles();
  const serve = (res: HttpResponse, file: StaticFile | null, url: string): void => {
    if (stopping()) return sendJson(res, '503 Service Unavailable', { error: 'NODE_STOPPING', message: 'this node is stopping: open the dashboard of another node' }, true);
    if (file) return sendFile(res, file);
    const message = ui.index === null ? 'this installation has no dashboard build: run `npm run build:ui` in the ringkv package' : `no dashboard file ${url}`;
    sendJson(res, '404 Not Found', { error: 'NOT_FOUND', message }, false);
  };
  app.get('/ui', (res) => serve(res, ui.index, '/ui'));
  // The address as typed with a slash: to the page (its asset paths are absolute, so either works; one address is cached).
  app.get('/ui/', (res) => {
    if (stopping()) return serve(res, null, '/ui/');
    res.cork(() => {
      res.writeStatus('308 Permanent Redirect');
      res.writeHeader('location', '/ui');
      res.writeHeader('cache-control', 'no-cache');
      res.end();
    });
  });
  app.get('/ui/assets/:file', (res, req) => {
    const url = req.getUrl();
    serve(res, ui.files.get(url) ?? null, url);
  });
}

function sendFile(res: HttpResponse, file: StaticFile): void {
  res.cork(() => {
    res.writeStatus('200 OK');
    res.writeHeader('content-type', file.contentType);
    res.writeHeader('cache-control', file.cacheControl);
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.writeHeader(k, v);
    res.end(file.body);
  });
}

function sendJson(res: HttpResponse, status: string, doc: { error: string; message: string }, close: boolean): void {
  res.cork(() => {
    res.writeStatus(status);
    res.writeHeader('content-type', 'application/json');
    res.writeHeader('cache-control', 'no-store');
    // As every route's 503 NODE_STOPPING says it (src/http/api.ts): not acted on, ask another node.
    if (doc.error === 'NODE_STOPPING') res.writeHeader(STOPPING_HEADER, '1');
    res.end(JSON.stringify(doc), close);
  });
}
